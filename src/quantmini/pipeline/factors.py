"""The lake's adjustment factors, rebuilt on every run from reference data and a few cached prices.

Inputs: the cleaned split and dividend records (with the vendor's split-adjusted amount and fetch time
where the records carry them), the lake's entities (:mod:`quantmini.pipeline.entities`: which company
each ticker names when), and — for each due dividend — the raw close its
multiplier is measured against and that close's session. That close is looked up in the stocks_daily
bronze partitions of the :data:`DIVIDEND_CLOSE_LOOKBACK` sessions before the ex-date and cached with the
checksums of the partitions it was read from, so a run reads prices only for new dividends or changed
partitions: the cost follows the new data, not the history.

Outputs (``silver/reference/``): the compact factor table ``adjustment_factors`` (one row per ticker and
span of constant factors), ``corporate_events`` (per company and date), ``entities`` (which company a
ticker names when; written by :mod:`quantmini.pipeline.entities`), ``dividend_closes`` (the cache),
``rejected_actions`` (records not applied, with a reason) and, when statements were pulled,
``statement_ratios``. Files are rewritten only when their content changed. Actions dated after the lake's
last session are *pending*: not applied yet.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import hashlib
import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from quantmini.core.adjustment import (
    DIVIDEND_CLOSE_SCHEMA,
    corporate_events,
    factor_intervals,
    session_multipliers,
    with_entity,
)
from quantmini.core.calendar import sessions as exchange_sessions
from quantmini.core.corporate_actions import clean_dividends, clean_splits
from quantmini.core.entities import SPANS_SCHEMA, series_boundaries
from quantmini.core.ratios import statement_items, statement_ratios
from quantmini.core.reference import DIVIDENDS_SCHEMA, SPLITS_SCHEMA
from quantmini.datasets import get_spec
from quantmini.io.lake import Lake
from quantmini.io.parquet import read_parquet_files, write_parquet_atomic
from quantmini.io.reference_store import load_reference
from quantmini.pipeline.entities import EntityOutcome, refresh_entities
from quantmini.pipeline.fingerprint import write_if_changed
from quantmini.pipeline.partitions import PartitionIndex

#: The data type whose raw closes price dividends.
PRICE_SOURCE = "stocks_daily"
#: Sessions before an ex-date searched for the company's last close; a dividend whose company has no bar
#: in them is not applied (reported in ``rejected_actions``).
DIVIDEND_CLOSE_LOOKBACK = 10
#: Partitions read at once when pricing many new dividends (bounds memory on a first build).
_READ_BATCH = 256

_CLOSE_CACHE_SCHEMA: dict[str, pl.DataType] = {
    "entity": pl.String(),
    "ex_dividend_date": pl.Date(),
    "close_before": pl.Float64(),
    "found": pl.Int32(),
    "basis": pl.String(),
}


def digest_of(session_digests: list[str]) -> str:
    """Digest of the multipliers of consecutive sessions, from their :attr:`FactorState.session_digests`
    (what a window-scoped silver part depends on)."""
    return hashlib.sha256("|".join(session_digests).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class FactorState:
    """The factors of this run, as tables and as digests the planners compare with manifests."""

    events: pl.DataFrame
    spans: pl.DataFrame
    intervals: pl.DataFrame
    #: Per session: a digest of the corporate-action multipliers of every ticker on that session.
    session_digests: dict[dt.date, str] = field(default_factory=dict)
    #: Per session: a digest of every split up to that session.
    split_history: dict[dt.date, str] = field(default_factory=dict)
    as_of: dt.date | None = None

    def history_digest(self, session: dt.date) -> str:
        """Digest of every split up to ``session`` (what a history-scoped value depends on)."""
        keys = sorted(self.split_history)
        i = bisect.bisect_right(keys, session)
        return self.split_history[keys[i - 1]] if i else ""


@dataclass(frozen=True, slots=True)
class FactorOutcome:
    """What the factor step found, for the summary."""

    splits_used: int = 0
    dividends_used: int = 0
    rejected: int = 0
    entities: EntityOutcome = field(default_factory=EntityOutcome)
    pending: int = 0
    intervals: int = 0
    closes_read: int = 0
    changed: bool = False


def refresh_factors(lake: Lake, prices: PartitionIndex) -> tuple[FactorState, FactorOutcome]:
    """Rebuild the factor tables from reference data and ``prices`` (the stocks_daily bronze index)."""
    calendar_name = get_spec(PRICE_SOURCE).calendar
    splits = clean_splits(_reference(lake, "splits", SPLITS_SCHEMA))
    dividends = clean_dividends(_reference(lake, "dividends", DIVIDENDS_SCHEMA))
    sessions = prices.sessions
    if not sessions:
        spans = pl.DataFrame(schema=SPANS_SCHEMA)
        empty = FactorState(events=pl.DataFrame(), spans=spans, intervals=pl.DataFrame())
        return empty, FactorOutcome()
    first, as_of = sessions[0], sessions[-1]
    calendar = exchange_sessions(first - dt.timedelta(days=3 * DIVIDEND_CLOSE_LOOKBACK), as_of, calendar_name)
    entities, entity_outcome = refresh_entities(lake, prices, calendar, splits.accepted)
    spans = entities.select(list(SPANS_SCHEMA))
    # Actions on or before the first session adjust no stored bar; actions after the last are pending.
    relevant_splits = splits.accepted.filter(pl.col("execution_date") > first)
    relevant_divs = dividends.accepted.filter(pl.col("ex_dividend_date") > first)
    pending = (
        relevant_splits.filter(pl.col("execution_date") > as_of).height
        + relevant_divs.filter(pl.col("ex_dividend_date") > as_of).height
    )
    due_divs = relevant_divs.filter(pl.col("ex_dividend_date") <= as_of)
    closes, closes_read = _dividend_closes(lake, due_divs, spans, prices, calendar)
    events, unapplied = corporate_events(relevant_splits, due_divs, closes, spans, as_of)
    intervals = factor_intervals(events, spans)
    multipliers = session_multipliers(events, spans, calendar)
    state = FactorState(
        events=events,
        spans=spans,
        intervals=intervals,
        session_digests=_per_session(multipliers, series_boundaries(spans, calendar)),
        split_history=_split_history(events, calendar),
        as_of=as_of,
    )
    rejected = pl.concat(
        [
            splits.rejected.select("ticker", pl.lit("split").alias("kind"), "reason"),
            dividends.rejected.select("ticker", pl.lit("dividend").alias("kind"), "reason"),
            unapplied.select("ticker", pl.lit("dividend").alias("kind"), "reason"),
        ],
        how="vertical_relaxed",
    )
    changed = entity_outcome.changed
    for name, table in (
        ("adjustment_factors", intervals),
        ("corporate_events", events),
        ("rejected_actions", rejected),
    ):
        changed |= write_if_changed(lake.silver_reference(name), table)
    _write_statement_ratios(lake)
    outcome = FactorOutcome(
        splits_used=relevant_splits.filter(pl.col("execution_date") <= as_of).height,
        dividends_used=due_divs.height - unapplied.height,
        rejected=rejected.height,
        entities=entity_outcome,
        pending=pending,
        intervals=intervals.height,
        closes_read=closes_read,
        changed=changed,
    )
    return state, outcome


def load_factor_tables(lake: Lake) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """``(events, spans, intervals)`` as the last factor step wrote them (empty tables if none); the
    spans are the entities' (``ticker, valid_from, valid_to, entity``)."""
    frames = []
    for name, columns in (
        ("corporate_events", None),
        ("entities", tuple(SPANS_SCHEMA)),
        ("adjustment_factors", None),
    ):
        path = lake.silver_reference(name)
        frames.append(read_parquet_files([path], columns=columns) if path.exists() else pl.DataFrame())
    return frames[0], frames[1], frames[2]


def _dividend_closes(
    lake: Lake,
    dividends: pl.DataFrame,
    spans: pl.DataFrame,
    prices: PartitionIndex,
    calendar: list[dt.date],
) -> tuple[pl.DataFrame, int]:
    """``dividends``' closes (:data:`DIVIDEND_CLOSE_SCHEMA`), from the cache or the bronze partitions of the
    sessions before each ex-date; also how many partitions were read.

    A cached row records which of the sessions before the ex-date held the close (``found``), so the
    close's session is derived from the calendar rather than stored."""
    wanted = with_entity(dividends, "ex_dividend_date", spans).select("entity", "ex_dividend_date").unique()
    cache_path = lake.silver_reference("dividend_closes")
    cached = (
        read_parquet_files([cache_path]) if cache_path.exists() else pl.DataFrame(schema=_CLOSE_CACHE_SCHEMA)
    )
    shas = {s: p.sha256 for s, p in prices.partitions.items()}

    def before(ex_date: dt.date) -> list[dt.date]:
        i = bisect.bisect_left(calendar, ex_date)
        return calendar[max(0, i - DIVIDEND_CLOSE_LOOKBACK) : i][::-1]

    @functools.cache  # many dividends share an ex-date
    def basis(ex_date: dt.date, found: int | None) -> str:
        searched = before(ex_date)[: found if found else DIVIDEND_CLOSE_LOOKBACK]
        text = "|".join(f"{s}:{shas.get(s, '-')}" for s in searched)
        return hashlib.sha256(text.encode()).hexdigest()

    rows: list[dict[str, object]] = []
    hits = {
        (r["entity"], r["ex_dividend_date"]): r
        for r in cached.iter_rows(named=True)
        if r["basis"] == basis(r["ex_dividend_date"], r["found"])
    }
    misses = []
    for entity, ex_date in wanted.iter_rows():
        hit = hits.get((entity, ex_date))
        if hit is not None:
            rows.append(hit)
        else:
            misses.append((entity, ex_date))
    found, read = _look_up_closes(lake, misses, spans, prices, before)
    for entity, ex_date in misses:
        k, close = found.get((entity, ex_date), (None, None))
        rows.append(
            {
                "entity": entity,
                "ex_dividend_date": ex_date,
                "close_before": close,
                "found": k,
                "basis": basis(ex_date, k),
            }
        )
    table = pl.DataFrame(rows, schema=_CLOSE_CACHE_SCHEMA).sort("entity", "ex_dividend_date")
    if misses or table.height != cached.height:
        write_parquet_atomic(table.to_arrow(), cache_path)
    close_dates = pl.Series(
        "close_date",
        [
            before(ex_date)[k - 1] if k else None
            for ex_date, k in table.select("ex_dividend_date", "found").iter_rows()
        ],
        dtype=pl.Date(),
    )
    return table.with_columns(close_dates).select(list(DIVIDEND_CLOSE_SCHEMA)), read


def _look_up_closes(
    lake: Lake,
    misses: list[tuple[str, dt.date]],
    spans: pl.DataFrame,
    prices: PartitionIndex,
    before: Callable[[dt.date], list[dt.date]],
) -> tuple[dict[tuple[str, dt.date], tuple[int, float]], int]:
    """For each (entity, ex-date): the first of the sessions before it where the company had a bar."""
    if not misses:
        return {}, 0
    requests: dict[dt.date, list[tuple[str, dt.date, int]]] = defaultdict(list)
    for entity, ex_date in misses:
        for k, session in enumerate(before(ex_date), start=1):
            if session in prices.partitions:
                requests[session].append((entity, ex_date, k))
    spec = get_spec(PRICE_SOURCE)
    found: dict[tuple[str, dt.date], tuple[int, float]] = {}
    sessions = sorted(requests)
    for start in range(0, len(sessions), _READ_BATCH):
        batch = sessions[start : start + _READ_BATCH]
        request = pl.DataFrame(
            [(entity, ex_date, k, s) for s in batch for entity, ex_date, k in requests[s]],
            schema={
                "entity": pl.String(),
                "ex_dividend_date": pl.Date(),
                "k": pl.Int32(),
                "session_date": pl.Date(),
            },
            orient="row",
        )
        named = request.join(spans.select("ticker", "entity", "valid_from", "valid_to"), on="entity").filter(
            (pl.col("session_date") >= pl.col("valid_from")) & (pl.col("session_date") < pl.col("valid_to"))
        )
        bars = read_parquet_files(
            [lake.bronze_partition(spec, s) for s in batch], columns=("ticker", "session_date", "close")
        )
        hit = named.join(bars, on=["ticker", "session_date"]).sort("entity", "ex_dividend_date", "k")
        for entity, ex_date, k, close in hit.select("entity", "ex_dividend_date", "k", "close").iter_rows():
            key = (entity, ex_date)
            if key not in found or k < found[key][0]:
                found[key] = (k, close)
    return found, len(sessions)


def _per_session(multipliers: pl.DataFrame, boundaries: pl.DataFrame) -> dict[dt.date, str]:
    """Per session, a digest of its corporate-action multipliers and of the series that start or change
    ticker on it (a window crossing either computes differently)."""
    digests = digests_by(multipliers, "session_date", ["ticker", "split_multiplier", "total_multiplier"])
    for session, digest in digests_by(boundaries, "session_date", ["ticker", "previous"]).items():
        digests[session] = _digest([digests.get(session, ""), digest])
    return digests


def _split_history(events: pl.DataFrame, calendar: list[dt.date]) -> dict[dt.date, str]:
    if events.is_empty():
        return {}
    splits = events.filter(pl.col("split_multiplier") != 1.0).sort("event_date", "entity")
    by_session: dict[dt.date, list[tuple[str, str]]] = defaultdict(list)
    for entity, date, split in splits.select("entity", "event_date", "split_multiplier").iter_rows():
        i = bisect.bisect_left(calendar, date)
        if i < len(calendar):
            by_session[calendar[i]].append((entity, float(split).hex()))
    history: dict[dt.date, str] = {}
    running = ""
    for session in sorted(by_session):
        running = _digest([running, by_session[session]])
        history[session] = running
    return history


def factor_digests(intervals: pl.DataFrame) -> dict[str, str]:
    """Digests of each ticker's (or instrument's) rows of the compact factor table."""
    return digests_by(intervals, "ticker", ["valid_from", "valid_to", "split_factor", "adj_factor"])


def split_digests(intervals: pl.DataFrame) -> dict[str, str]:
    """Digests of each ticker's (or instrument's) spans of constant ``split_factor`` (other than 1): the
    factor table's spans joined where only a dividend cut them, so a dividend changes no digest."""
    if intervals.is_empty():
        return {}
    spans = intervals.filter(pl.col("split_factor") != 1.0).sort("ticker", "valid_from")
    starts = (
        (pl.col("split_factor") != pl.col("split_factor").shift().over("ticker"))
        | (pl.col("valid_from") != pl.col("valid_to").shift().over("ticker"))
    ).fill_null(True)
    merged = (
        spans.with_columns(starts.cum_sum().alias("_span"))
        .group_by("ticker", "_span")
        .agg(pl.col("valid_from").min(), pl.col("valid_to").max(), pl.col("split_factor").first())
    )
    return digests_by(merged, "ticker", ["valid_from", "valid_to", "split_factor"])


def digests_by(frame: pl.DataFrame, key: str, columns: list[str]) -> dict[Any, str]:
    """Per value of ``key``: a SHA-256 of its rows' ``columns``, floats by their exact bits."""
    if frame.is_empty():
        return {}
    texts = [
        (pl.col(c).reinterpret(signed=True) if frame.schema[c] == pl.Float64 else pl.col(c)).cast(pl.String)
        for c in columns
    ]
    joined = (
        frame.sort(key, *columns)
        .select(key, pl.concat_str(texts, separator="|").alias("_row"))
        .group_by(key, maintain_order=True)
        .agg(pl.col("_row").str.join("\n"))
    )
    return {k: hashlib.sha256(text.encode()).hexdigest() for k, text in joined.iter_rows()}


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, default=str).encode()).hexdigest()


def _write_statement_ratios(lake: Lake) -> None:
    financials = load_reference(lake, "financials")
    if financials is None or financials.is_empty():
        return
    write_if_changed(lake.silver_reference("statement_ratios"), statement_ratios(statement_items(financials)))


def _reference(lake: Lake, name: str, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    frame = load_reference(lake, name)
    return pl.DataFrame(schema=schema) if frame is None else frame
