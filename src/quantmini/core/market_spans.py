"""Membership rows → the spans of a Qlib market file, as pure functions of frames.

A market file (``instruments/<market>.txt``) lists each member instrument with the spans of consecutive
sessions it belongs to the market: ``SYMBOL<TAB>first<TAB>last``, several lines for an instrument whose
membership breaks. Qlib's ``D.list_instruments(D.instruments(market))`` returns them as they are.

"Consecutive" counts the sessions the lake has data for (its silver partitions): a session missing from
the lake breaks no span. Spans of a history built piece by piece (:func:`join_spans` of the pieces)
equal the spans of the whole (:func:`spans_of`), so a daily update reads only the new sessions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Final

import polars as pl

from quantmini._exceptions import ValidationError
from quantmini.core.adjustment import BEGINNING, END_OF_TIME
from quantmini.core.entities import instrument_of
from quantmini.core.qlib_encoding import check_symbol, stored_symbol

SPAN_COLUMNS: Final[dict[str, pl.DataType]] = {
    "universe": pl.String(),
    "instrument": pl.String(),
    "first": pl.Date(),
    "last": pl.Date(),
}
#: Columns of the frame mapping tickers to instrument names (see :func:`name_instruments`).
INSTRUMENT_COLUMNS: Final[dict[str, pl.DataType]] = {
    "ticker": pl.String(),
    "valid_from": pl.Date(),
    "valid_to": pl.Date(),
    "instrument": pl.String(),
}


def name_instruments(rows: pl.DataFrame, instruments: pl.DataFrame | None) -> tuple[pl.DataFrame, set[str]]:
    """``rows`` (``ticker``, ``session_date`` …) with ``instrument``, the name Qlib knows the row's
    security by; and the names left out because Qlib cannot store them.

    ``instruments`` (:data:`INSTRUMENT_COLUMNS`, the lake's company spans: see
    :func:`quantmini.core.entities.instrument_of`) names a ticker's rows from ``valid_from`` to before
    ``valid_to`` (null: open); a row it does not cover, or an empty ``instrument``, keeps its ticker. Names
    are then stored as the Qlib root stores symbols (:func:`~quantmini.core.qlib_encoding.stored_symbol`:
    ``BApA`` → ``BA_PA``); a name that cannot be stored is dropped with its rows.
    """
    named = rows.with_columns(pl.col("ticker").alias("instrument"))
    if instruments is not None and not instruments.is_empty():
        name = instrument_of(rows, _checked(instruments))
        named = rows.with_columns(
            pl.when(name == "").then(pl.col("ticker")).otherwise(name).alias("instrument")
        )
    names = named["instrument"].unique().to_list()
    stored: dict[str, str] = {}
    skipped: set[str] = set()
    for name in names:
        try:
            check_symbol(stored_symbol(name))
        except ValidationError:
            skipped.add(name)
        else:
            stored[name] = stored_symbol(name)
    kept = named.filter(~pl.col("instrument").is_in(sorted(skipped)))
    return kept.with_columns(pl.col("instrument").replace_strict(stored, return_dtype=pl.String)), skipped


def _checked(instruments: pl.DataFrame) -> pl.DataFrame:
    missing = [c for c in INSTRUMENT_COLUMNS if c not in instruments.columns]
    if missing:
        raise ValidationError(
            f"the instrument names frame lacks column(s) {missing}; it needs {list(INSTRUMENT_COLUMNS)}"
        )
    return instruments.select(pl.col(c).cast(t) for c, t in INSTRUMENT_COLUMNS.items()).with_columns(
        pl.col("valid_from").fill_null(BEGINNING),
        pl.col("valid_to").fill_null(END_OF_TIME),
        pl.col("instrument").fill_null(""),
    )


def spans_of(rows: pl.DataFrame, sessions: Sequence[dt.date]) -> pl.DataFrame:
    """The spans (:data:`SPAN_COLUMNS`) of membership rows (``universe``, ``instrument``,
    ``session_date``): runs of consecutive ``sessions`` (sorted; every row's session among them)."""
    days = rows.select("universe", "instrument", pl.col("session_date").alias("first"))
    return join_spans(days.with_columns(pl.col("first").alias("last")), sessions)


def join_spans(spans: pl.DataFrame, sessions: Sequence[dt.date]) -> pl.DataFrame:
    """``spans`` with overlapping or adjacent spans of one (universe, instrument) joined — adjacent: one
    starts at the session of ``sessions`` after the other's last — sorted by universe, instrument,
    first."""
    if spans.is_empty():
        return pl.DataFrame(schema=SPAN_COLUMNS)
    index = pl.DataFrame(
        {"day": list(sessions), "_i": range(len(sessions))}, schema={"day": pl.Date(), "_i": pl.Int64()}
    )
    # Integers for the sort: a code per (universe, instrument), sessions by position.
    member = pl.concat_str("universe", "instrument", separator="\t").cast(pl.Categorical).to_physical()
    located = (
        spans.join(index.rename({"day": "first", "_i": "_first"}), on="first", how="left")
        .join(index.rename({"day": "last", "_i": "_last"}), on="last", how="left")
        .with_columns(member.cast(pl.Int64).alias("_member"))
        .sort("_member", "_first")
    )
    if located["_first"].null_count() or located["_last"].null_count():
        raise ValidationError("a market span starts or ends on a session the lake does not have")
    # The furthest session the earlier spans of the member reach.
    reach = pl.col("_last").cum_max().shift(1).over("_member")
    starts = (pl.col("_first") > reach + 1).fill_null(True)
    return (
        located.with_columns(starts.cum_sum().alias("_run"))
        .group_by("_run")
        .agg(
            pl.col("universe").first(),
            pl.col("instrument").first(),
            pl.col("first").min(),
            pl.col("last").max(),
        )
        .sort("universe", "instrument", "first")
        .select(list(SPAN_COLUMNS))
    )


def spans_before(spans: pl.DataFrame, day: dt.date, previous: dt.date | None) -> pl.DataFrame:
    """``spans`` as they were before session ``day``: spans from ``day`` on dropped, the others ending at
    ``previous`` (the lake's session before ``day``) at the latest."""
    if previous is None:
        return pl.DataFrame(schema=SPAN_COLUMNS)
    return spans.filter(pl.col("first") < day).with_columns(
        pl.when(pl.col("last") >= day).then(pl.lit(previous)).otherwise(pl.col("last")).alias("last")
    )


def market_text(spans: pl.DataFrame) -> str:
    """The lines of one market's file: ``SYMBOL<TAB>first<TAB>last`` sorted by symbol, then first."""
    lines = spans.sort("instrument", "first").select(
        pl.concat_str(
            "instrument",
            pl.col("first").dt.strftime("%Y-%m-%d"),
            pl.col("last").dt.strftime("%Y-%m-%d"),
            separator="\t",
        )
    )
    return "".join(f"{line}\n" for line in lines.to_series())
