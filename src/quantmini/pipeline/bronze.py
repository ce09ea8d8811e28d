"""Bronze stage: landed CSV → validated, typed, sorted Parquet plus a quarantine table, per session."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import polars as pl
import pyarrow as pa

from quantmini._exceptions import ValidationError
from quantmini.core.bronze import QUARANTINE_SCHEMA, to_bronze
from quantmini.core.calendar import REGULAR_CLOSE, SessionBounds, early_closes, session_bounds
from quantmini.core.parsing import parse_lines, split_header
from quantmini.core.quality import check_rows, quality_report, resolve_duplicates
from quantmini.datasets.base import DatasetSpec
from quantmini.io.gzip_lines import gzip_chunks, read_lines
from quantmini.io.lake import Lake
from quantmini.io.manifest import read_manifest, sha256_file, write_manifest
from quantmini.io.parquet import remove_if_exists, write_parquet_atomic
from quantmini.pipeline.landing_versions import prune_kept_version

IngestStatus = Literal["ingested", "unchanged", "not_landed"]


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    """What the bronze stage did for one session file, with its row accounting."""

    session: dt.date
    status: IngestStatus
    rows_in: int = 0
    rows_bronze: int = 0
    rows_quarantined: int = 0
    duplicates: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    #: Why the stored partition was rebuilt although its input had not changed (it was damaged).
    repaired: str | None = None
    #: Bytes of the landed file read and of the bronze and quarantine files written (``ingested`` only).
    bytes_in: int = 0
    bytes_out: int = 0


def settled(lake: Lake, spec: DatasetSpec, session: dt.date) -> IngestOutcome | None:
    """The outcome of ``session`` when nothing is to be done (not landed, or bronze already holds exactly
    the landed file, intact); ``None`` when it must be ingested. Reads manifests only."""
    landed = read_manifest(lake.manifest("landing", spec, session))
    if landed is None:
        return IngestOutcome(session, "not_landed")
    previous = read_manifest(lake.manifest("bronze", spec, session))
    if (
        previous is None
        or previous.get("input_sha256") != landed["sha256"]
        or _damage(lake.bronze_partition(spec, session), previous) is not None
    ):
        return None
    prune_kept_version(lake, spec, session, landed)
    return IngestOutcome(
        session,
        "unchanged",
        rows_in=int(previous["rows_in"]),
        rows_bronze=int(previous["rows_bronze"]),
        rows_quarantined=int(previous["rows_quarantined"]),
        duplicates=int(previous["duplicates"]),
        reasons=dict(previous.get("reasons", {})),
    )


def ingest_session(lake: Lake, spec: DatasetSpec, session: dt.date, *, force: bool = False) -> IngestOutcome:
    """Ingest the landed file of ``session`` unless bronze already holds that exact input."""
    done = None if force else settled(lake, spec, session)
    if done is not None:
        return done
    landed = read_manifest(lake.manifest("landing", spec, session))
    if landed is None:
        return IngestOutcome(session, "not_landed")
    manifest_path = lake.manifest("bronze", spec, session)
    bronze_path = lake.bronze_partition(spec, session)
    previous = read_manifest(manifest_path)
    damage = None if previous is None else _damage(bronze_path, previous)

    key = str(landed["key"])
    source_file = f"landing/{key}"
    regular_close = early_closes(session, session, spec.calendar).get(session, REGULAR_CLOSE)
    scan = _scan(lake.landing_file(key), source_file, spec, session_bounds(session, regular_close))
    result = resolve_duplicates(scan.good, spec)
    bronze = to_bronze(result.kept, spec, regular_close)
    conflicted = result.quarantined
    if conflicted.height:
        raw = read_lines(lake.landing_file(key), source_file, set(conflicted["line"].to_list()))
        conflicted = conflicted.with_columns(
            pl.col("line").replace_strict(raw, return_dtype=pl.String).alias("raw")
        )
    else:
        conflicted = conflicted.with_columns(pl.lit(None, dtype=pl.String).alias("raw"))
    quarantine = _quarantine_table(
        pl.concat([scan.bad, conflicted], how="vertical_relaxed"), source_file, session
    )

    rows_out = bronze.num_rows + quarantine.num_rows + result.duplicates
    if rows_out != scan.rows_in:
        raise ValidationError(
            f"{source_file}: rows not conserved: {scan.rows_in} in, {bronze.num_rows} bronze + "
            f"{quarantine.num_rows} quarantined + {result.duplicates} duplicates = {rows_out}"
        )

    write_parquet_atomic(bronze, bronze_path)
    quarantine_path = lake.quarantine_partition(spec, session)
    if quarantine.num_rows:
        write_parquet_atomic(quarantine, quarantine_path)
    else:
        remove_if_exists(quarantine_path)
    reasons = dict(Counter(quarantine.column("reason").to_pylist()))
    output_size = bronze_path.stat().st_size
    quality = quality_report(scan.rows_in, bronze.num_rows, result.duplicates, reasons)
    write_manifest(
        manifest_path,
        {
            "input_key": key,
            "input_sha256": landed["sha256"],
            "session": session.isoformat(),
            "rows_in": scan.rows_in,
            "rows_bronze": bronze.num_rows,
            "rows_quarantined": quarantine.num_rows,
            "duplicates": result.duplicates,
            "reasons": reasons,
            "quality": quality,
            "output_sha256": sha256_file(bronze_path),
            "output_size": output_size,
        },
    )
    prune_kept_version(lake, spec, session, landed)
    return IngestOutcome(
        session,
        "ingested",
        rows_in=scan.rows_in,
        rows_bronze=bronze.num_rows,
        rows_quarantined=quarantine.num_rows,
        duplicates=result.duplicates,
        reasons=reasons,
        repaired=None
        if damage is None or previous is None or previous.get("input_sha256") != landed["sha256"]
        else f"{bronze_path} was damaged ({damage}); rebuilt from landing/{key}",
        bytes_in=lake.landing_file(key).stat().st_size,
        bytes_out=output_size + (quarantine_path.stat().st_size if quarantine.num_rows else 0),
    )


def _damage(path: Path, manifest: dict[str, object]) -> str | None:
    """Why the stored partition cannot be trusted (missing, or not the size its manifest recorded)."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return "missing"
    recorded = manifest.get("output_size")
    if recorded is not None and int(str(recorded)) != size:
        return f"{size:,} bytes, its manifest recorded {int(str(recorded)):,}"
    return None


@dataclass(frozen=True, slots=True)
class _Scan:
    """One file read chunk by chunk: rows passing the row rules, rejected rows (with raw text), rows in."""

    good: pl.DataFrame
    bad: pl.DataFrame
    rows_in: int


def _scan(path: Path, source_file: str, spec: DatasetSpec, bounds: SessionBounds) -> _Scan:
    """Decompress, parse and row-check ``path`` one chunk at a time (memory: a few chunks + typed rows)."""
    good: list[pl.DataFrame] = []
    bad: list[pl.DataFrame] = []
    line = 0  # 0 until the header is read; then the file line number of the chunk's first line
    for chunk in gzip_chunks(path, source_file):
        if line == 0:
            chunk = split_header(chunk, spec.csv_columns, source_file)
            line = 2
        parsed = parse_lines(chunk, spec.csv_columns, first_line=line)
        split = check_rows(parsed.rows, bounds=bounds, spec=spec)
        rejected = split.bad
        if rejected.height:
            raw = _lines_text(chunk, [n - line + 1 for n in rejected["line"].to_list()])
            rejected = rejected.with_columns(pl.Series("raw", raw, dtype=pl.String))
        else:
            rejected = rejected.with_columns(pl.lit(None, dtype=pl.String).alias("raw"))
        bad += [parsed.rejects.select(_REJECT_COLUMNS), rejected.select(_REJECT_COLUMNS)]
        good.append(split.good)
        line += parsed.rows_in
    if line == 0:
        raise ValidationError(f"{source_file}: file is empty (no header)")
    rows = pl.concat(good, rechunk=False) if good else pl.DataFrame()
    return _Scan(good=rows, bad=pl.concat(bad, how="vertical_relaxed"), rows_in=line - 2)


_REJECT_COLUMNS = ("line", "reason", "detail", "ticker", "raw")


def _quarantine_table(rejected: pl.DataFrame, source_file: str, session: dt.date) -> pa.Table:
    frame = rejected.sort("line").with_columns(
        pl.lit(source_file).alias("source_file"),
        pl.lit(session, dtype=pl.Date).alias("session_date"),
    )
    return (
        frame.select(QUARANTINE_SCHEMA.names)
        .to_arrow(compat_level=pl.CompatLevel.oldest())
        .cast(QUARANTINE_SCHEMA)
    )


def _lines_text(data: bytes, lines: list[int]) -> list[str]:
    """The text of the given 1-based line numbers of ``data`` (only called when rows were rejected)."""
    all_lines = data.split(b"\n")
    return [all_lines[n - 1].decode("utf-8", errors="replace").rstrip("\r") for n in lines]
