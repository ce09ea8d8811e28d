"""Bronze stage: landed CSV → validated, typed, sorted Parquet plus a quarantine table, per session."""

from __future__ import annotations

import datetime as dt
import gzip
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

import polars as pl
import pyarrow as pa

from quantmini._exceptions import StorageError, ValidationError
from quantmini.core.bronze import QUARANTINE_SCHEMA, to_bronze
from quantmini.core.calendar import REGULAR_CLOSE, early_closes
from quantmini.core.parsing import parse_csv
from quantmini.core.quality import apply_rules
from quantmini.datasets.base import DatasetSpec
from quantmini.io.lake import Lake
from quantmini.io.manifest import read_manifest, sha256_file, write_manifest
from quantmini.io.parquet import remove_if_exists, write_parquet_atomic

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


def ingest_session(lake: Lake, spec: DatasetSpec, session: dt.date, *, force: bool = False) -> IngestOutcome:
    """Ingest the landed file of ``session`` unless bronze already holds that exact input."""
    landed = read_manifest(lake.manifest("landing", spec, session))
    if landed is None:
        return IngestOutcome(session, "not_landed")
    manifest_path = lake.manifest("bronze", spec, session)
    bronze_path = lake.bronze_partition(spec, session)
    previous = read_manifest(manifest_path)
    if (
        not force
        and previous is not None
        and previous.get("input_sha256") == landed["sha256"]
        and bronze_path.exists()
    ):
        return IngestOutcome(
            session,
            "unchanged",
            rows_in=int(previous["rows_in"]),
            rows_bronze=int(previous["rows_bronze"]),
            rows_quarantined=int(previous["rows_quarantined"]),
            duplicates=int(previous["duplicates"]),
            reasons=dict(previous.get("reasons", {})),
        )

    key = str(landed["key"])
    source_file = f"landing/{key}"
    data = _decompress(lake, key, source_file)
    parsed = parse_csv(data, spec.csv_columns, source_file)
    result = apply_rules(parsed.rows, session=session, spec=spec)
    bronze = to_bronze(
        result.kept, spec, early_closes(session, session, spec.calendar).get(session, REGULAR_CLOSE)
    )
    quarantine = _quarantine_table(parsed.rejects, result.quarantined, data, source_file, session)

    rows_out = bronze.num_rows + quarantine.num_rows + result.duplicates
    if rows_out != parsed.rows_in:
        raise ValidationError(
            f"{source_file}: rows not conserved: {parsed.rows_in} in, {bronze.num_rows} bronze + "
            f"{quarantine.num_rows} quarantined + {result.duplicates} duplicates = {rows_out}"
        )

    write_parquet_atomic(bronze, bronze_path)
    quarantine_path = lake.quarantine_partition(spec, session)
    if quarantine.num_rows:
        write_parquet_atomic(quarantine, quarantine_path)
    else:
        remove_if_exists(quarantine_path)
    reasons = dict(Counter(quarantine.column("reason").to_pylist()))
    write_manifest(
        manifest_path,
        {
            "input_key": key,
            "input_sha256": landed["sha256"],
            "session": session.isoformat(),
            "rows_in": parsed.rows_in,
            "rows_bronze": bronze.num_rows,
            "rows_quarantined": quarantine.num_rows,
            "duplicates": result.duplicates,
            "reasons": reasons,
            "output_sha256": sha256_file(bronze_path),
        },
    )
    return IngestOutcome(
        session,
        "ingested",
        rows_in=parsed.rows_in,
        rows_bronze=bronze.num_rows,
        rows_quarantined=quarantine.num_rows,
        duplicates=result.duplicates,
        reasons=reasons,
    )


def _decompress(lake: Lake, key: str, source_file: str) -> bytes:
    path = lake.landing_file(key)
    try:
        compressed = path.read_bytes()
    except FileNotFoundError:
        raise StorageError(
            f"{source_file} is in the landing manifest but missing on disk; re-run landing"
        ) from None
    except OSError as exc:
        raise StorageError(f"cannot read {source_file}: {exc.strerror or exc}") from exc
    try:
        return gzip.decompress(compressed)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValidationError(f"{source_file}: corrupt or truncated gzip ({exc})") from exc


def _quarantine_table(
    rejects: pl.DataFrame,
    rule_rejects: pl.DataFrame,
    data: bytes,
    source_file: str,
    session: dt.date,
) -> pa.Table:
    if rule_rejects.height:
        raw = _lines_text(data, rule_rejects["line"].to_list())
        rule_rejects = rule_rejects.with_columns(pl.Series("raw", raw, dtype=pl.String))
    else:
        rule_rejects = rule_rejects.with_columns(pl.lit(None, dtype=pl.String).alias("raw"))
    frame = pl.concat(
        [rejects.select("line", "reason", "detail", "ticker", "raw"), rule_rejects.select(rejects.columns)],
        how="vertical_relaxed",
    ).sort("line")
    frame = frame.with_columns(
        pl.lit(source_file).alias("source_file"),
        pl.lit(session, dtype=pl.Date).alias("session_date"),
    )
    return frame.select(QUARANTINE_SCHEMA.names).to_arrow().cast(QUARANTINE_SCHEMA)


def _lines_text(data: bytes, lines: list[int]) -> list[str]:
    """The text of the given 1-based line numbers (only called when rows were quarantined)."""
    all_lines = data.split(b"\n")
    return [all_lines[n - 1].decode("utf-8", errors="replace").rstrip("\r") for n in lines]
