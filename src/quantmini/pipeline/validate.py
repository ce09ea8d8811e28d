"""Re-check stored bronze and silver partitions of a data type: read each partition and manifest, apply the
checks."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from quantmini.core.bronze_checks import partition_violations
from quantmini.core.silver_checks import silver_violations
from quantmini.datasets.base import DatasetSpec
from quantmini.io.lake import Lake
from quantmini.io.manifest import read_manifest, sha256_file


@dataclass(frozen=True, slots=True)
class PartitionCheck:
    """One stored partition: its manifest's quality report and what is wrong with it now."""

    session: dt.date
    rows: int
    quality: dict[str, Any]
    violations: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SilverCheck:
    """One stored partition of a silver table and what is wrong with it now."""

    table: str
    session: dt.date
    rows: int
    violations: list[str] = field(default_factory=list)


def stored_sessions(
    lake: Lake, spec: DatasetSpec, start: dt.date | None, end: dt.date | None
) -> list[dt.date]:
    """Sessions with a bronze partition or a bronze manifest, within ``[start, end]`` when given."""
    return _sessions(lake.bronze_dir(spec), lake.manifest_dir("bronze", spec), start, end)


def _sessions(partitions: Path, manifests: Path, start: dt.date | None, end: dt.date | None) -> list[dt.date]:
    """Sessions with a partition under ``partitions`` or a manifest under ``manifests``, in the range."""
    found: set[dt.date] = set()
    if partitions.exists():
        for part in partitions.glob("date=*"):
            found.add(dt.date.fromisoformat(part.name.removeprefix("date=")))
    if manifests.exists():
        found.update(dt.date.fromisoformat(p.stem) for p in manifests.glob("*.json"))
    return sorted(d for d in found if (start is None or d >= start) and (end is None or d <= end))


def check_bronze(
    lake: Lake, spec: DatasetSpec, start: dt.date | None = None, end: dt.date | None = None
) -> list[PartitionCheck]:
    """Re-check every stored bronze partition of ``spec`` in the range, oldest first."""
    results: list[PartitionCheck] = []
    for session in stored_sessions(lake, spec, start, end):
        manifest = read_manifest(lake.manifest("bronze", spec, session))
        quality = _quality(manifest)
        path = lake.bronze_partition(spec, session)
        if not path.exists():
            results.append(PartitionCheck(session, 0, quality, ["manifest present but partition missing"]))
            continue
        try:
            table = pq.read_table(path)
        except (pa.ArrowException, OSError) as exc:
            results.append(PartitionCheck(session, 0, quality, [f"unreadable Parquet: {exc}"]))
            continue
        violations = partition_violations(table, spec, session, manifest, sha256_file(path))
        results.append(PartitionCheck(session, table.num_rows, quality, violations))
    return results


def check_silver(
    lake: Lake, spec: DatasetSpec, start: dt.date | None = None, end: dt.date | None = None
) -> list[SilverCheck]:
    """Re-check every stored partition of every silver table of ``spec`` in the range, table by table,
    oldest first."""
    results: list[SilverCheck] = []
    for part in spec.silver:
        name = part.table(spec.name)
        schema, keys = part.output_schema(spec.bronze_schema), spec.silver_keys(part)
        for session in _sessions(lake.silver_dir(name), lake.manifest_dir("silver", name), start, end):
            manifest = read_manifest(lake.manifest("silver", name, session))
            path = lake.silver_partition(name, session)
            if not path.exists():
                results.append(SilverCheck(name, session, 0, ["manifest present but partition missing"]))
                continue
            try:
                table = pq.read_table(path)
            except (pa.ArrowException, OSError) as exc:
                results.append(SilverCheck(name, session, 0, [f"unreadable Parquet: {exc}"]))
                continue
            violations = silver_violations(table, schema, keys, session, manifest, sha256_file(path))
            results.append(SilverCheck(name, session, table.num_rows, violations))
    return results


def _quality(manifest: dict[str, Any] | None) -> dict[str, Any]:
    if manifest is None:
        return {}
    stored = manifest.get("quality")
    if isinstance(stored, dict):
        return stored
    # Manifests written before the quality report existed carry the same figures at the top level.
    return {
        key: manifest.get(key)
        for key in ("rows_in", "rows_bronze", "rows_quarantined", "duplicates", "reasons")
    }
