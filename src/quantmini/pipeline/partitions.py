"""What the lake holds, read from manifests: per-session partitions of a stage, verified cheaply.

Planning reads manifests only (no Parquet data): a partition counts when its manifest exists and the file
has the size the manifest recorded. A file whose size differs (a torn write, a truncated copy) or that is
missing is *damaged*: it is named, and the stage that made it re-derives it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantmini.io.lake import PARTITION_FILE
from quantmini.io.manifest import read_manifest, session_manifests


@dataclass(frozen=True, slots=True)
class Partition:
    """One complete partition: its file's checksum, size and rows, and the identity of its inputs."""

    session: dt.date
    sha256: str
    size: int | None
    rows: int
    identity: str | None = None


@dataclass(frozen=True, slots=True)
class Damaged:
    """A partition whose manifest and file disagree."""

    session: dt.date
    path: Path
    reason: str


@dataclass(frozen=True, slots=True)
class PartitionIndex:
    """Complete partitions by session, and damaged ones."""

    partitions: dict[dt.date, Partition]
    damaged: list[Damaged]

    @property
    def sessions(self) -> list[dt.date]:
        """Sessions with a complete partition, oldest first."""
        return sorted(self.partitions)


def index_partitions(manifest_dir: Path, partition_dir: Path) -> PartitionIndex:
    """Read every ``YYYY-MM-DD.json`` manifest below ``manifest_dir``, each describing the partition
    ``partition_dir/date=YYYY-MM-DD/part.parquet``. Manifests must record ``output_sha256`` (and ideally
    ``output_size``)."""
    partitions: dict[dt.date, Partition] = {}
    damaged: list[Damaged] = []
    try:
        manifests = session_manifests(manifest_dir)
    except FileNotFoundError:
        return PartitionIndex(partitions, damaged)
    partitions_dir = str(partition_dir)
    for session, manifest_path in manifests:
        manifest = _read_json(manifest_path)
        if manifest is None or "output_sha256" not in manifest:
            continue
        path = f"{partitions_dir}/date={session.isoformat()}/{PARTITION_FILE}"
        try:
            size = os.stat(path).st_size
        except FileNotFoundError:
            damaged.append(Damaged(session, Path(path), "the file is missing"))
            continue
        recorded = manifest.get("output_size")
        if recorded is not None and int(recorded) != size:
            reason = f"the file has {size:,} bytes, its manifest recorded {int(recorded):,}"
            damaged.append(Damaged(session, Path(path), reason))
            continue
        partitions[session] = Partition(
            session=session,
            sha256=str(manifest["output_sha256"]),
            size=size,
            rows=int(manifest.get("rows_bronze", manifest.get("rows", 0))),
            identity=manifest.get("identity"),
        )
    return PartitionIndex(partitions, damaged)


def _read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return read_manifest(Path(path))  # logs why it is ignored
    return data if isinstance(data, dict) else None
