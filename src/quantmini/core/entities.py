"""Company identity: which security each ticker names on each date, as permanent entities.

A ticker is a name, not a company: companies change names (``FB`` → ``META``) and retired names are
taken by other companies. An **entity** is one security over its whole life. It is identified by, in
order of preference:

1. the vendor's **composite FIGI** (else the share-class FIGI) of the tickers reference and of the
   ticker-change events: every ticker a FIGI was traded under belongs to one entity;
2. otherwise (flat files only, or a ticker the reference does not know) the **ticker itself**, cut into
   separate entities where its bars show a reused ticker: a listing gap of at least
   :data:`REUSE_GAP` sessions without a bar, after which the close differs from the last close before the
   gap by more than :data:`REUSE_JUMP` × (splits executed in the gap accounted for). Such cuts are
   *inferred* and reported as such.

The result is a table of **spans** — ``ticker, valid_from, valid_to`` (exclusive) and the ``entity`` it
names then — with no two entities on one ticker and no two tickers of one entity on the same date:

* a ticker-change event starts a ticker's span on its date (the company's first ticker from the
  beginning: bars before the listing date are its own); the reference's ``delisted_utc`` (the last day
  traded) ends one;
* where two entities claim one ticker, the later claim wins from its start;
* bars of a ticker outside every claim (a company the reference does not know) form an entity of their
  own, ``TICKER@first-bar``.

Every entity has a Qlib **instrument** name: its latest ticker; when another entity later trades under
that ticker, the earlier one's is the ticker with the date of its last bar, ``OLD_20200313``. Renamed
companies are therefore one instrument under their current ticker, and two companies never share one.
"""

from __future__ import annotations

import datetime as dt
import math

import polars as pl

from quantmini.core.adjustment import BEGINNING, END_OF_TIME, span_value

#: Sessions without a bar that end a ticker's run of trading (a listing gap).
REUSE_GAP = 20
#: A run after a listing gap is another company when its first close differs from the last close
#: before the gap by at least this factor (after splits executed in the gap).
REUSE_JUMP = 1.5

#: Runs of trading: a ticker's bars with no gap of :data:`REUSE_GAP` sessions inside.
RUNS_SCHEMA: dict[str, pl.DataType] = {
    "ticker": pl.String(),
    "first": pl.Date(),
    "last": pl.Date(),
    "first_close": pl.Float64(),
    "last_close": pl.Float64(),
    "bars": pl.Int64(),
}

#: What the engine joins on: the entity a ticker names over ``[valid_from, valid_to)``.
SPANS_SCHEMA: dict[str, pl.DataType] = {
    "ticker": pl.String(),
    "valid_from": pl.Date(),
    "valid_to": pl.Date(),
    "entity": pl.String(),
}

#: What the gold stage joins on: the Qlib instrument of a ticker's bars over ``[valid_from, valid_to)``.
INSTRUMENT_SPANS_SCHEMA: dict[str, pl.DataType] = {
    "ticker": pl.String(),
    "valid_from": pl.Date(),
    "valid_to": pl.Date(),
    "instrument": pl.String(),
}

#: ``silver/reference/entities``: one row per span, with what is known of its entity.
ENTITIES_SCHEMA: dict[str, pl.DataType] = {
    **SPANS_SCHEMA,
    "instrument": pl.String(),
    "first_bar": pl.Date(),
    "last_bar": pl.Date(),
    "name": pl.String(),
    "type": pl.String(),
    "composite_figi": pl.String(),
    "share_class_figi": pl.String(),
    "cik": pl.String(),
    #: ``events`` (ticker-change events), ``reference`` (tickers reference), ``ticker`` (bars only) or
    #: ``inferred`` (bars only, a reused ticker detected from a listing gap and a price jump).
    "source": pl.String(),
}

_ATTRIBUTES = ("name", "type", "composite_figi", "share_class_figi", "cik")
_DAY = dt.timedelta(days=1)


def _claims(tickers: pl.DataFrame | None, events: pl.DataFrame | None) -> pl.DataFrame:
    """What the reference says: ``ticker, entity, valid_from, valid_to, source`` and attributes."""
    schema = {**SPANS_SCHEMA, "source": pl.String(), **{a: pl.String() for a in _ATTRIBUTES}}
    parts = [pl.DataFrame(schema=schema)]
    attributes = pl.DataFrame(schema={"entity": pl.String(), **{a: pl.String() for a in _ATTRIBUTES}})
    if tickers is not None and not tickers.is_empty():
        known = tickers.with_columns(
            pl.coalesce("composite_figi", "share_class_figi").alias("entity")
        ).filter(pl.col("entity").is_not_null() & pl.col("ticker").is_not_null())
        # The reference keeps every version of a record (a listing later marked delisted): the latest
        # fetched one of each ticker and entity counts.
        order = [c for c in ("fetched_at", "last_updated_utc") if c in known.columns]
        known = known.sort([*order, "active"], descending=[*(False for _ in order), True], nulls_last=False)
        known = known.unique(subset=["ticker", "entity"], keep="last", maintain_order=True)
        attributes = (
            known.sort("active", "list_date", nulls_last=False)
            .group_by("entity")
            .agg(pl.col(a).drop_nulls().last() for a in _ATTRIBUTES)
        )
        parts.append(
            known.select(
                "ticker",
                pl.col("list_date").fill_null(BEGINNING).alias("valid_from"),
                (pl.col("delisted_utc").dt.date() + _DAY).fill_null(END_OF_TIME).alias("valid_to"),
                "entity",
                pl.lit("reference").alias("source"),
            ).unique()
        )
    if events is not None and not events.is_empty():
        changes = (
            events.filter(pl.col("event_type") == "ticker_change")
            .with_columns(pl.coalesce("composite_figi", pl.lit("cik:") + pl.col("cik")).alias("entity"))
            .filter(pl.col("entity").is_not_null() & pl.col("ticker").is_not_null())
            .unique(subset=["entity", "date", "ticker"])
            .sort("entity", "date", "ticker")
        )
        # A repeated event for the ticker already held changes nothing.
        changes = changes.filter(
            pl.col("ticker").shift(1).over("entity").is_null()
            | (pl.col("ticker") != pl.col("ticker").shift(1).over("entity"))
        )
        event_claims = changes.select(
            "ticker",
            pl.col("date").alias("valid_from"),
            pl.col("date").shift(-1).over("entity").fill_null(END_OF_TIME).alias("valid_to"),
            "entity",
            pl.lit("events").alias("source"),
        )
        # Events date a ticker's start exactly; the reference may still end it (delisting).
        ends = parts[-1].group_by("ticker", "entity").agg(pl.col("valid_to").max().alias("_ref_to"))
        event_claims = event_claims.join(ends, on=["ticker", "entity"], how="left").with_columns(
            pl.min_horizontal("valid_to", pl.col("_ref_to").fill_null(END_OF_TIME)).alias("valid_to")
        )
        parts[-1] = parts[-1].join(event_claims, on=["ticker", "entity"], how="anti")
        parts.append(event_claims.drop("_ref_to"))
    claims = pl.concat([p.select(*SPANS_SCHEMA, "source") for p in parts], how="vertical_relaxed")
    return claims.join(attributes, on="entity", how="left").select(list(schema)).cast(schema)  # type: ignore[arg-type]


def _resolve(claims: pl.DataFrame) -> pl.DataFrame:
    """Claims made disjoint: per entity one ticker at a time, per ticker one entity at a time."""
    if claims.is_empty():
        return claims
    # One ticker at a time per entity: a span starts no earlier than the entity's previous one ended.
    claims = claims.sort("entity", "valid_to", "valid_from").with_columns(
        pl.max_horizontal(
            "valid_from", pl.col("valid_to").shift(1).over("entity").fill_null(BEGINNING)
        ).alias("valid_from")
    )
    claims = claims.filter(pl.col("valid_from") < pl.col("valid_to"))
    # An entity's first span reaches back to the previous claim on its ticker (bars before a listing
    # date are the company's own), or to the beginning.
    first_of_entity = pl.col("valid_from") == pl.col("valid_from").min().over("entity")
    claims = claims.sort("ticker", "valid_from", "valid_to").with_columns(
        pl.when(first_of_entity)
        .then(
            pl.min_horizontal("valid_from", pl.col("valid_to").shift(1).over("ticker").fill_null(BEGINNING))
        )
        .otherwise(pl.col("valid_from"))
        .alias("valid_from")
    )
    # One entity at a time per ticker: the later claim wins from its start.
    claims = claims.sort("ticker", "valid_from", "valid_to").with_columns(
        pl.min_horizontal(
            "valid_to", pl.col("valid_from").shift(-1).over("ticker").fill_null(END_OF_TIME)
        ).alias("valid_to")
    )
    return claims.filter(pl.col("valid_from") < pl.col("valid_to"))


def reused_runs(runs: pl.DataFrame, splits: pl.DataFrame | None = None) -> pl.DataFrame:
    """``runs`` with ``reused``: the run starts another company (a listing gap and a price jump).

    ``splits`` (cleaned: ticker, execution_date, split_from, split_to) executed in a gap are accounted for:
    a 1:10 reverse split during a halt is not a jump.
    """
    ordered = runs.sort("ticker", "first").with_columns(
        pl.col("last").shift(1).over("ticker").alias("_prev_last"),
        pl.col("last_close").shift(1).over("ticker").alias("_prev_close"),
    )
    basis = pl.lit(1.0)
    if splits is not None and not splits.is_empty():
        in_gap = (
            ordered.filter(pl.col("_prev_last").is_not_null())
            .select("ticker", "first", "_prev_last")
            .join(splits.select("ticker", "execution_date", "split_from", "split_to"), on="ticker")
            .filter(
                (pl.col("execution_date") > pl.col("_prev_last"))
                & (pl.col("execution_date") <= pl.col("first"))
            )
            .group_by("ticker", "first")
            .agg((pl.col("split_from") / pl.col("split_to")).product().alias("_basis"))
        )
        ordered = ordered.join(in_gap, on=["ticker", "first"], how="left")
        basis = pl.col("_basis").fill_null(1.0)
    jump = (pl.col("first_close") / (pl.col("_prev_close") * basis)).log().abs()
    reused = pl.col("_prev_last").is_not_null() & (jump >= math.log(REUSE_JUMP)).fill_null(False)
    return ordered.with_columns(reused.alias("reused")).drop(
        "_prev_last", "_prev_close", "_basis", strict=False
    )


def _from_runs(runs: pl.DataFrame, splits: pl.DataFrame | None) -> pl.DataFrame:
    """Spans of tickers the reference does not know, from their bars: one entity per run of trading
    that starts another company (the first keeps the ticker as its id)."""
    judged = reused_runs(runs, splits)
    first = pl.col("first") == pl.col("first").min().over("ticker")
    starts = judged.filter(pl.col("reused") | first)
    return starts.sort("ticker", "first").select(
        "ticker",
        pl.when(first).then(pl.lit(BEGINNING)).otherwise(pl.col("first")).alias("valid_from"),
        pl.col("first").shift(-1).over("ticker").fill_null(END_OF_TIME).alias("valid_to"),
        pl.when(first)
        .then(pl.col("ticker"))
        .otherwise(pl.col("ticker") + "@" + pl.col("first").dt.strftime("%Y-%m-%d"))
        .alias("entity"),
        pl.when(first).then(pl.lit("ticker")).otherwise(pl.lit("inferred")).alias("source"),
    )


def _holes(resolved: pl.DataFrame, runs: pl.DataFrame) -> pl.DataFrame:
    """Spans of bars of claimed tickers that fall outside every claim: entities of their own."""
    ordered = resolved.sort("ticker", "valid_from")
    gaps = pl.concat(
        [
            ordered.group_by("ticker")
            .agg(pl.col("valid_from").min().alias("valid_to"))
            .select("ticker", pl.lit(BEGINNING).alias("valid_from"), "valid_to"),
            ordered.select(
                "ticker",
                pl.col("valid_to").alias("valid_from"),
                pl.col("valid_from").shift(-1).over("ticker").fill_null(END_OF_TIME).alias("valid_to"),
            ),
        ]
    ).filter(pl.col("valid_from") < pl.col("valid_to"))
    traded = gaps.join(runs.select("ticker", "first", "last"), on="ticker").filter(
        (pl.col("first") < pl.col("valid_to")) & (pl.col("last") >= pl.col("valid_from"))
    )
    return (
        traded.group_by("ticker", "valid_from", "valid_to")
        .agg(pl.max_horizontal("first", "valid_from").min().alias("_first_bar"))
        .select(
            "ticker",
            "valid_from",
            "valid_to",
            (pl.col("ticker") + "@" + pl.col("_first_bar").dt.strftime("%Y-%m-%d")).alias("entity"),
            pl.lit("ticker").alias("source"),
        )
    )


def _bar_bounds(spans: pl.DataFrame, runs: pl.DataFrame) -> pl.DataFrame:
    """``first_bar``/``last_bar`` of each span from the runs overlapping it (a run cut by a span
    boundary gives the boundary's date: runs keep no single bars)."""
    overlap = (
        spans.select("ticker", "valid_from", "valid_to")
        .join(runs.select("ticker", "first", "last"), on="ticker")
        .filter((pl.col("first") < pl.col("valid_to")) & (pl.col("last") >= pl.col("valid_from")))
        .group_by("ticker", "valid_from")
        .agg(
            pl.max_horizontal("first", "valid_from").min().alias("first_bar"),
            pl.min_horizontal("last", pl.col("valid_to") - _DAY).max().alias("last_bar"),
        )
    )
    return spans.join(overlap, on=["ticker", "valid_from"], how="left")


def _instruments(table: pl.DataFrame) -> pl.DataFrame:
    """Each entity's Qlib instrument: its latest ticker, dated by its last bar when a later entity
    trades under that ticker."""
    latest = (
        table.sort("entity", "valid_from")
        .group_by("entity")
        .agg(
            pl.col("ticker").last().alias("_ticker"),
            pl.col("valid_to").last().alias("_to"),
            pl.col("last_bar").max().alias("_last_bar"),
        )
    )
    later = (
        latest.join(table.select("ticker", "entity", "valid_from"), left_on="_ticker", right_on="ticker")
        .filter((pl.col("entity_right") != pl.col("entity")) & (pl.col("valid_from") >= pl.col("_to")))
        .select("entity")
        .unique()
    )
    last = pl.coalesce("_last_bar", pl.col("_to") - _DAY)
    named = latest.with_columns(
        pl.when(pl.col("entity").is_in(later["entity"].implode()))
        .then(pl.col("_ticker") + "_" + last.dt.strftime("%Y%m%d"))
        .otherwise(pl.col("_ticker"))
        .alias("instrument")
    )
    return table.join(named.select("entity", "instrument"), on="entity", how="left")


def entity_table(
    tickers: pl.DataFrame | None,
    events: pl.DataFrame | None,
    runs: pl.DataFrame,
    splits: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The entities (:data:`ENTITIES_SCHEMA`) of the tickers reference, the ticker-change events and the
    runs of trading of every ticker with bars (:data:`RUNS_SCHEMA`)."""
    claims = _resolve(_claims(tickers, events))
    unknown = runs.join(claims.select("ticker").unique(), on="ticker", how="anti")
    spans = pl.concat(
        [
            claims.select(*SPANS_SCHEMA, "source"),
            _holes(claims, runs).select(*SPANS_SCHEMA, "source"),
            _from_runs(unknown, splits).select(*SPANS_SCHEMA, "source"),
        ],
        how="vertical_relaxed",
    )
    attributes = claims.select("entity", *_ATTRIBUTES).unique(subset=["entity"])
    table = _instruments(_bar_bounds(spans, runs)).join(attributes, on="entity", how="left")
    return table.select([pl.col(n).cast(t) for n, t in ENTITIES_SCHEMA.items()]).sort("ticker", "valid_from")


def instrument_of(frame: pl.DataFrame, spans: pl.DataFrame, date_column: str = "session_date") -> pl.Series:
    """The instrument of each row's (``ticker``, ``date_column``); the ticker where no span covers it."""
    return span_value(frame, date_column, spans, "instrument")


def series_boundaries(spans: pl.DataFrame, sessions: list[dt.date]) -> pl.DataFrame:
    """Where a series starts or changes ticker: ``session_date, ticker, previous`` per span that starts
    inside history (``previous``: the entity's ticker before, null for a new entity), at the first session
    on or after its start. A window crossing one of these sessions joins or cuts series there."""
    schema = {"session_date": pl.Date(), "ticker": pl.String(), "previous": pl.String()}
    if spans.is_empty() or not sessions:
        return pl.DataFrame(schema=schema)
    calendar = pl.DataFrame({"session_date": sessions}, schema={"session_date": pl.Date()}).sort(
        "session_date"
    )
    starts = (
        spans.sort("entity", "valid_from")
        .with_columns(pl.col("ticker").shift(1).over("entity").alias("previous"))
        .filter(pl.col("valid_from") > BEGINNING)
        .sort("valid_from")
    )
    mapped = starts.join_asof(
        calendar.with_columns(pl.col("session_date").alias("valid_from")),
        on="valid_from",
        strategy="forward",
        check_sortedness=False,
    ).filter(pl.col("session_date").is_not_null())
    return mapped.select(list(schema)).sort("session_date", "ticker")
