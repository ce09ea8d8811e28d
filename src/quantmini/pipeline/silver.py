"""Silver stage for daily bars: adjustment factors from cleaned corporate actions, adjusted prices, features.

Features need each symbol's history across partitions, so the stage reads the bronze history, computes,
and rewrites only the session partitions whose content changed. It is skipped entirely when neither
bronze nor the reference tables changed since the last run.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

import polars as pl

from quantmini._exceptions import ConfigurationError
from quantmini.core.adjustment import adjustment_factors, split_factors_on
from quantmini.core.corporate_actions import clean_dividends, clean_splits, renames_from_events
from quantmini.core.features import apply_adjustment, daily_features
from quantmini.core.ratios import daily_ratios, statement_items, statement_ratios
from quantmini.core.reconciliation import reconcile_splits
from quantmini.core.reference import DIVIDENDS_SCHEMA, SPLITS_SCHEMA
from quantmini.datasets.base import DatasetSpec
from quantmini.io.lake import Lake
from quantmini.io.manifest import read_manifest, sha256_file, write_manifest
from quantmini.io.parquet import read_parquet_files, write_parquet_atomic
from quantmini.io.reference_store import load_reference
from quantmini.pipeline.fingerprint import fingerprint, table_digest

#: Bump when the silver computation changes, so existing silver is recomputed.
SILVER_VERSION = 2

SILVER_EXTRA_COLUMNS: tuple[str, ...] = (
    "split_factor",
    "adj_factor",
    "adj_open",
    "adj_high",
    "adj_low",
    "adj_close",
    "adj_volume",
    "ret_1d",
    "ret_5d",
    "ret_20d",
    "vol_20d",
    "volume_z_20d",
)

EnrichStatus = Literal["enriched", "unchanged", "no_input"]


@dataclass(frozen=True, slots=True)
class EnrichOutcome:
    """What the silver stage did."""

    status: EnrichStatus
    sessions_total: int = 0
    sessions_written: int = 0
    rows: int = 0
    splits_used: int = 0
    dividends_used: int = 0
    corporate_actions_rejected: int = 0
    renames_applied: int = 0
    reconciliation_findings: int = 0
    financial_ratio_rows: int = 0


def bronze_sessions(lake: Lake, spec: DatasetSpec) -> dict[dt.date, str]:
    """Sessions with a complete bronze partition, mapped to the partition's checksum."""
    found: dict[dt.date, str] = {}
    directory = lake.manifest_dir("bronze", spec)
    for path in sorted(directory.glob("*.json")) if directory.exists() else []:
        manifest = read_manifest(path)
        session = dt.date.fromisoformat(path.stem)
        if manifest is not None and lake.bronze_partition(spec, session).exists():
            found[session] = str(manifest.get("output_sha256"))
    return found


def enrich(lake: Lake, spec: DatasetSpec) -> EnrichOutcome:
    """Build or refresh the silver layer of a daily stock dataset."""
    if not spec.has_silver:
        raise ConfigurationError(f"the silver layer is built for daily stock bars; {spec.name} has none yet")
    sessions = bronze_sessions(lake, spec)
    if not sessions:
        return EnrichOutcome("no_input")
    reference = {
        name: sha256_file(lake.reference_table(name)) if lake.reference_table(name).exists() else None
        for name in ("splits", "dividends", "ticker_events", "financials")
    }
    bronze = {s.isoformat(): digest for s, digest in sessions.items()}
    key = fingerprint({"version": SILVER_VERSION, "bronze": bronze, "reference": reference})
    stage_path = lake.stage_manifest("silver", spec)
    stage = read_manifest(stage_path)
    if (
        stage is not None
        and stage.get("fingerprint") == key
        and all(lake.silver_partition(spec, s).exists() for s in sessions)
    ):
        return EnrichOutcome("unchanged", sessions_total=len(sessions), rows=int(stage.get("rows", 0)))

    bars = read_parquet_files([lake.bronze_partition(spec, s) for s in sessions])
    splits = clean_splits(_reference_or_empty(lake, "splits", SPLITS_SCHEMA))
    dividends = clean_dividends(_reference_or_empty(lake, "dividends", DIVIDENDS_SCHEMA))
    events = load_reference(lake, "ticker_events")
    renames = renames_from_events(events) if events is not None else None
    closes = bars.select("ticker", "session_date", "close")
    factors = adjustment_factors(closes, splits.accepted, dividends.accepted, renames)
    write_parquet_atomic(factors.to_arrow(), lake.adjustment_factors())
    checks = reconcile_splits(closes, splits.accepted)
    write_parquet_atomic(
        checks.to_arrow(), lake.root / "silver" / "reference" / "corporate_action_checks.parquet"
    )
    financial_ratios = _write_financial_ratios(lake, bars, factors, splits.accepted)
    rejected = pl.concat(
        [
            splits.rejected.select("ticker", pl.lit("split").alias("kind"), "reason"),
            dividends.rejected.select("ticker", pl.lit("dividend").alias("kind"), "reason"),
        ]
    )
    write_parquet_atomic(rejected.to_arrow(), lake.root / "silver" / "reference" / "rejected_actions.parquet")

    columns = [*spec.bronze_schema.names, *SILVER_EXTRA_COLUMNS]
    silver = daily_features(apply_adjustment(bars, factors)).select(columns)
    written = 0
    for (session,), part in silver.partition_by("session_date", as_dict=True, maintain_order=False).items():
        assert isinstance(session, dt.date)
        table = part.sort(list(spec.sort_columns)).to_arrow()
        digest = table_digest(table)
        manifest_path = lake.manifest("silver", spec, session)
        previous = read_manifest(manifest_path)
        target = lake.silver_partition(spec, session)
        if previous is not None and previous.get("content_sha256") == digest and target.exists():
            continue
        write_parquet_atomic(table, target)
        write_manifest(
            manifest_path, {"session": session.isoformat(), "rows": table.num_rows, "content_sha256": digest}
        )
        written += 1
    write_manifest(stage_path, {"fingerprint": key, "rows": silver.height, "sessions": len(sessions)})
    return EnrichOutcome(
        "enriched",
        sessions_total=len(sessions),
        sessions_written=written,
        rows=silver.height,
        splits_used=splits.accepted.height,
        dividends_used=dividends.accepted.height,
        corporate_actions_rejected=rejected.height,
        renames_applied=0 if renames is None else renames.height,
        reconciliation_findings=checks.height,
        financial_ratio_rows=financial_ratios,
    )


def _write_financial_ratios(
    lake: Lake, bars: pl.DataFrame, factors: pl.DataFrame, splits: pl.DataFrame
) -> int:
    """Statement ratios per filing and point-in-time daily ratios, when statements were pulled."""
    financials = load_reference(lake, "financials")
    if financials is None or financials.is_empty():
        return 0
    items = statement_items(financials)
    write_parquet_atomic(
        statement_ratios(items).to_arrow(), lake.root / "silver" / "reference" / "statement_ratios.parquet"
    )
    priced = bars.select("ticker", "session_date", "close").join(
        factors.select("ticker", "session_date", "split_factor"), on=["ticker", "session_date"], how="left"
    )
    filing_factors = split_factors_on(items.select("ticker", pl.col("filing_date").alias("date")), splits)
    daily = daily_ratios(
        priced.filter(pl.col("ticker").is_in(items["ticker"].unique().implode())), items, filing_factors
    )
    write_parquet_atomic(daily.to_arrow(), lake.root / "silver" / "reference" / "daily_ratios.parquet")
    return daily.height


def _reference_or_empty(lake: Lake, name: str, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    frame = load_reference(lake, name)
    return pl.DataFrame(schema=schema) if frame is None else frame
