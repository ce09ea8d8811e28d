"""Gold stage: the Qlib provider root of daily bars, validated, plus the DuckDB catalog."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from quantmini._exceptions import ConfigurationError
from quantmini.core.calendar import sessions as exchange_sessions
from quantmini.core.gold import QLIB_DAY_FIELDS, qlib_daily_frame
from quantmini.datasets.base import DatasetSpec
from quantmini.io.duckdb_catalog import build_catalog
from quantmini.io.lake import Lake
from quantmini.io.manifest import read_manifest, write_manifest
from quantmini.io.parquet import read_parquet_files
from quantmini.io.qlib_writer import validate_qlib_root, write_qlib_root
from quantmini.pipeline.fingerprint import fingerprint
from quantmini.pipeline.silver import SILVER_VERSION, bronze_sessions

ConvertStatus = Literal["converted", "unchanged", "no_input"]


@dataclass(frozen=True, slots=True)
class ConvertOutcome:
    """What the gold stage did."""

    status: ConvertStatus
    symbols: int = 0
    calendar_days: int = 0
    files: int = 0
    renamed: tuple[tuple[str, str], ...] = ()


def convert(lake: Lake, spec: DatasetSpec) -> ConvertOutcome:
    """Write the Qlib root for ``spec`` from silver (skipped when silver did not change)."""
    if not spec.has_qlib_gold:
        raise ConfigurationError(
            f"the Qlib gold layer is built for daily stock bars; {spec.name} has none yet"
        )
    silver_stage = read_manifest(lake.stage_manifest("silver", spec))
    sessions = sorted(s for s in bronze_sessions(lake, spec) if lake.silver_partition(spec, s).exists())
    if silver_stage is None or not sessions:
        return ConvertOutcome("no_input")
    root = lake.qlib_root(spec.frequency)
    key = fingerprint(
        {"silver": silver_stage.get("fingerprint"), "version": SILVER_VERSION, "fields": QLIB_DAY_FIELDS}
    )
    stage_path = lake.stage_manifest("gold", spec)
    previous = read_manifest(stage_path)
    if previous is not None and previous.get("fingerprint") == key and root.exists():
        validate_qlib_root(root, spec.frequency)
        return ConvertOutcome(
            "unchanged",
            symbols=int(previous.get("symbols", 0)),
            calendar_days=int(previous.get("calendar_days", 0)),
        )

    silver = read_parquet_files([lake.silver_partition(spec, s) for s in sessions])
    frame = qlib_daily_frame(silver)
    calendar = exchange_sessions(sessions[0], sessions[-1], spec.calendar)
    summary = write_qlib_root(root, frame, freq=spec.frequency, fields=QLIB_DAY_FIELDS, calendar=calendar)
    validate_qlib_root(root, spec.frequency)
    build_catalog(lake.root, [spec.name])
    renamed = tuple(sorted(summary.renamed.items()))
    write_manifest(
        stage_path,
        {
            "fingerprint": key,
            "symbols": summary.symbols,
            "calendar_days": len(calendar),
            "renamed": dict(renamed),
        },
    )
    return ConvertOutcome(
        "converted",
        symbols=summary.symbols,
        calendar_days=len(calendar),
        files=summary.files,
        renamed=renamed,
    )
