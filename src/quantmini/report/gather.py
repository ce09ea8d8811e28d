"""Read what the lake report shows: the lake's status from the manifests
(:func:`~quantmini.pipeline.status.lake_status`: states, rows and quarantine reasons per session), the
last run record, the corporate-action tables and, for each chosen symbol, its raw and adjusted closes
through the query layer.

Only aggregates leave this module, besides the chosen symbols' closes.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from quantmini.core.reconciliation import CHECK_SCHEMA
from quantmini.io.lake import Lake
from quantmini.io.parquet import read_parquet_files
from quantmini.io.reference_store import load_reference
from quantmini.pipeline.factors import PRICE_SOURCE
from quantmini.pipeline.status import LakeStatus, lake_status
from quantmini.query import QueryEngine, QuerySpec
from quantmini.query.engine import partition_sessions
from quantmini.report.aggregates import layer_rows

#: The reconciliation's per-session findings (a silver table of stocks_daily).
CHECKS_TABLE = "corporate_action_checks"
ACTIONS_SCHEMA: dict[str, pl.DataType] = {
    "year": pl.Int32(),
    "splits": pl.UInt32(),
    "reverse_splits": pl.UInt32(),
    "dividends": pl.UInt32(),
}


@dataclass(frozen=True, slots=True)
class CorporateActions:
    """Reference splits and dividends per year, the reconciliation's findings, rejected records."""

    per_year: pl.DataFrame
    """:data:`ACTIONS_SCHEMA`, one row per year with any action."""
    findings: pl.DataFrame
    """The ``corporate_action_checks`` rows (:data:`~quantmini.core.reconciliation.CHECK_SCHEMA`)."""
    rejected: pl.DataFrame
    """``kind, reason, records``: action records the factor step could not use."""


@dataclass(frozen=True, slots=True)
class SymbolSeries:
    """One chosen symbol: its raw and adjusted closes and the company's splits and dividends."""

    symbol: str
    closes: pl.DataFrame
    """``session_date, ticker, raw, adjusted`` (the ticker the company traded under that session)."""
    events: pl.DataFrame
    """``event_date, kind`` (``split`` or ``dividend``), ``multiplier``: what earlier prices are
    multiplied by for this event (split-only for splits, the dividend's own factor for dividends)."""
    notes: tuple[str, ...]
    """How the symbol was resolved (a renamed company, a reused ticker)."""


@dataclass(frozen=True, slots=True)
class ReportFacts:
    """Everything the report renders."""

    root: Path
    rows: pl.DataFrame
    """Rows per partition and layer (:data:`~quantmini.report.aggregates.ROWS_SCHEMA`)."""
    quarantine: pl.DataFrame
    """Quarantined rows per bronze partition and reason (``QUARANTINE_SCHEMA``)."""
    last_run: dict[str, Any] | None
    coverage: LakeStatus
    actions: CorporateActions
    symbols: tuple[SymbolSeries, ...]


def gather(
    lake: Lake, symbols: Sequence[str] = (), start: dt.date | None = None, end: dt.date | None = None
) -> ReportFacts:
    """The report's facts for sessions ``start`` … ``end`` (default: all)."""
    coverage = lake_status(lake, None, start, end)
    rows, quarantine = layer_rows(coverage)
    span = _price_span(coverage, start, end)
    if span is None:
        series = tuple(SymbolSeries(s, _empty_closes(), _empty_events(), ()) for s in symbols)
    else:
        series = symbol_series(lake, symbols, *span)
    return ReportFacts(
        root=lake.root.resolve(),
        rows=rows,
        quarantine=quarantine,
        last_run=last_run(lake),
        coverage=coverage,
        actions=corporate_actions(lake, start, end),
        symbols=series,
    )


def _price_span(
    coverage: LakeStatus, start: dt.date | None, end: dt.date | None
) -> tuple[dt.date, dt.date] | None:
    """The sessions the symbol charts cover: ``start`` … ``end``, open ends taken from the prices' bronze
    layer; ``None`` when the lake holds no prices."""
    for status in coverage.types:
        if status.data_type == PRICE_SOURCE:
            bronze = status.layer("bronze")
            if bronze.first is not None and bronze.last is not None:
                return start or bronze.first, end or bronze.last
    return None


def last_run(lake: Lake) -> dict[str, Any] | None:
    """The newest readable run record under ``<root>/_runs`` (run ids sort by their start time), with its
    ``id``; ``None`` when there is none (a lake whose runs predate run records)."""
    for path in sorted(lake.root.joinpath("_runs").glob("*.json"), reverse=True):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(record, dict):
            return {"id": path.stem, **record}
    return None


def corporate_actions(lake: Lake, start: dt.date | None, end: dt.date | None) -> CorporateActions:
    """Reference actions per year, reconciliation findings and rejected records within range."""
    splits = load_reference(lake, "splits")
    dividends = load_reference(lake, "dividends")
    years: list[pl.DataFrame] = []
    if splits is not None:
        splits = _in_range(splits, "execution_date", start, end)
        years.append(
            splits.group_by(pl.col("execution_date").dt.year().alias("year")).agg(
                (pl.col("split_to") > pl.col("split_from")).sum().alias("splits"),
                (pl.col("split_to") < pl.col("split_from")).sum().alias("reverse_splits"),
            )
        )
    if dividends is not None:
        dividends = _in_range(dividends, "ex_dividend_date", start, end)
        years.append(
            dividends.group_by(pl.col("ex_dividend_date").dt.year().alias("year")).agg(
                pl.len().alias("dividends")
            )
        )
    per_year = pl.DataFrame(schema=ACTIONS_SCHEMA)
    for frame in years:
        per_year = per_year.join(frame, on="year", how="full", coalesce=True, suffix="_new")
        for name in frame.columns[1:]:
            per_year = per_year.with_columns(pl.coalesce(f"{name}_new", name).alias(name)).drop(f"{name}_new")
    per_year = per_year.select(pl.col(c).cast(t).fill_null(0) for c, t in ACTIONS_SCHEMA.items()).sort("year")

    checks = partition_sessions(lake.silver_dir(CHECKS_TABLE))
    files = [
        lake.silver_partition(CHECKS_TABLE, s)
        for s in checks
        if (start is None or s >= start) and (end is None or s <= end)
    ]
    findings = (
        read_parquet_files(files, columns=list(CHECK_SCHEMA)) if files else pl.DataFrame(schema=CHECK_SCHEMA)
    )
    rejected_path = lake.silver_reference("rejected_actions")
    rejected = pl.DataFrame(schema={"kind": pl.String(), "reason": pl.String(), "records": pl.UInt32()})
    if rejected_path.exists():
        rejected = (
            read_parquet_files([rejected_path], columns=["kind", "reason"])
            .group_by("kind", "reason")
            .agg(pl.len().alias("records"))
            .sort("kind", "reason")
        )
    return CorporateActions(per_year, findings.sort("session_date", "ticker"), rejected)


def _in_range(frame: pl.DataFrame, column: str, start: dt.date | None, end: dt.date | None) -> pl.DataFrame:
    if start is not None:
        frame = frame.filter(pl.col(column) >= start)
    if end is not None:
        frame = frame.filter(pl.col(column) <= end)
    return frame


def symbol_series(
    lake: Lake, symbols: Sequence[str], start: dt.date, end: dt.date
) -> tuple[SymbolSeries, ...]:
    """Raw and total-return adjusted closes of each symbol (a company: every ticker it traded under) and
    its splits and dividends between ``start`` and ``end``."""
    engine = QueryEngine(lake.root, cache_size=0)
    events_path = lake.silver_reference("corporate_events")
    events = read_parquet_files([events_path]) if events_path.exists() else None
    found = []
    for symbol in symbols:
        raw = _closes(engine, symbol, start, end, "none").rename({"close": "raw"})
        adjusted = _closes(engine, symbol, start, end, "total_return").rename({"close": "adjusted"})
        closes = raw.join(adjusted, on=["ticker", "session_date"], how="left").sort("session_date")
        resolution = engine.resolve(QuerySpec(PRICE_SOURCE, (symbol,), start, end))
        entities = sorted(resolution.entities) if resolution is not None and resolution.entities else [symbol]
        found.append(
            SymbolSeries(
                symbol=symbol,
                closes=closes.select("session_date", "ticker", "raw", "adjusted"),
                events=_symbol_events(events, entities, start, end),
                notes=resolution.notes if resolution is not None else (),
            )
        )
    return tuple(found)


def _closes(engine: QueryEngine, symbol: str, start: dt.date, end: dt.date, adjustment: str) -> pl.DataFrame:
    """``ticker, session_date, close`` of ``symbol``'s company in one adjustment."""
    fields = ("ticker", "session_date", "close")
    return engine.query(QuerySpec(PRICE_SOURCE, (symbol,), start, end, fields, adjustment=adjustment))


def _symbol_events(
    events: pl.DataFrame | None, entities: list[str], start: dt.date, end: dt.date
) -> pl.DataFrame:
    """Splits and dividends of ``entities`` in range, one row each (a session with both has two)."""
    if events is None or events.is_empty():
        return _empty_events()
    mine = _in_range(events.filter(pl.col("entity").is_in(entities)), "event_date", start, end)
    splits = mine.filter(pl.col("split_multiplier") != 1).select(
        "event_date", pl.lit("split").alias("kind"), pl.col("split_multiplier").alias("multiplier")
    )
    dividends = mine.filter(pl.col("total_multiplier") != pl.col("split_multiplier")).select(
        "event_date",
        pl.lit("dividend").alias("kind"),
        (pl.col("total_multiplier") / pl.col("split_multiplier")).alias("multiplier"),
    )
    return pl.concat([splits, dividends]).sort("event_date", "kind")


def _empty_closes() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "session_date": pl.Date(),
            "ticker": pl.String(),
            "raw": pl.Float64(),
            "adjusted": pl.Float64(),
        }
    )


def _empty_events() -> pl.DataFrame:
    return pl.DataFrame(schema={"event_date": pl.Date(), "kind": pl.String(), "multiplier": pl.Float64()})
