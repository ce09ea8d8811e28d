"""What a silver transform sees — a window of sessions — and the window arithmetic features are built from.

A silver partition for session D is a pure function of the bronze rows of D and of the ``lookback``
sessions before it (plus declared reference tables and corporate actions). Transforms get those rows
as a :class:`SessionWindow` and return the rows of the output sessions.

Windows count **sessions of the exchange calendar**, as Qlib does on its global calendar: rows are
aligned to every session of the window (:func:`align`), a session where a ticker has no bar is a null
row, and a value ``k`` sessions back is :func:`lag`. A feature over ``n`` sessions is null when any of
them is missing (no partial windows, no look-ahead).

Every window statistic is computed from the ``n`` lagged values in a fixed order (:func:`total`), never
with a running sum: the result for session D then depends only on the values in D's window, so computing
a year at once, or D alone in a daily update, gives bit-identical numbers.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from quantmini.core.adjustment import entity_of

#: Multiplier columns joined to aligned rows (1.0 on sessions without corporate actions).
MULTIPLIER_COLUMNS = ("split_multiplier", "total_multiplier")


@dataclass(frozen=True, slots=True)
class FactorContext:
    """Corporate actions as a transform may use them.

    ``multipliers``: ``ticker, session_date, split_multiplier, total_multiplier`` for the window's
    sessions that have actions (see :func:`quantmini.core.adjustment.session_multipliers`); ``events``:
    per-company events up to the last output session; ``spans``: which company each ticker names when.
    """

    multipliers: pl.DataFrame
    events: pl.DataFrame
    spans: pl.DataFrame


@dataclass(frozen=True, slots=True)
class SessionWindow:
    """Inputs of one silver computation.

    ``bars``: bronze rows of every session of ``sessions`` that has a partition (in no particular order;
    rows of sessions that are not outputs hold only the part's ``lookback_columns`` when it declares
    them, the other columns null); ``sessions``: the
    calendar sessions of the window, oldest first (the lookback, then the outputs); ``outputs``: the
    sessions whose rows the transform returns; ``references``: reference tables by name; ``inputs``:
    the rows of the part's :class:`~quantmini.datasets.base.SilverInput` tables for the output sessions,
    by source; ``settings``: the values of the part's settings keys.
    """

    bars: pl.DataFrame
    sessions: tuple[dt.date, ...]
    outputs: tuple[dt.date, ...]
    references: Mapping[str, pl.DataFrame] = field(default_factory=dict)
    factors: FactorContext | None = None
    inputs: Mapping[str, pl.DataFrame] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)


def series_of(window: SessionWindow, bars: pl.DataFrame | None = None) -> pl.Series:
    """The series (entity) each of ``bars`` (default: the window's) belongs to: a renamed company's bars
    under its old and new tickers are one series, a reused ticker's two companies are two. Without
    corporate-action context, each ticker is a series."""
    frame = window.bars if bars is None else bars
    spans = window.factors.spans if window.factors is not None else None
    if spans is None or spans.is_empty() or "entity" not in spans.columns:
        return frame["ticker"].alias("_series")
    return entity_of(frame, "session_date", spans).alias("_series")


def align(window: SessionWindow, columns: Sequence[str]) -> pl.DataFrame:
    """Every series of the window × every session of the window, sorted by (series, session_date).

    A series is a company (:func:`series_of`): its rows hold the bars of whichever ticker it traded under.
    Holds ``columns`` of the bars (null where the series has no bar that session; ``ticker`` too),
    ``_series``, ``_pos`` (the session's index in the window), ``_present`` (a bar exists) and the
    corporate-action multipliers.
    """
    calendar = pl.DataFrame(
        {"session_date": list(window.sessions), "_pos": list(range(len(window.sessions)))},
        schema={"session_date": pl.Date(), "_pos": pl.Int32()},
    )
    bars = window.bars.select(
        "ticker", "session_date", *[c for c in columns if c not in ("ticker", "session_date")]
    ).with_columns(series_of(window))
    grid = bars.select("_series").unique().sort("_series").join(calendar, how="cross")
    frame = grid.join(
        bars.with_columns(pl.lit(True).alias("_present")), on=["_series", "session_date"], how="left"
    ).with_columns(pl.col("_present").fill_null(False))
    if window.factors is not None and not window.factors.multipliers.is_empty():
        frame = frame.join(
            window.factors.multipliers.select(
                pl.col("entity").alias("_series"), "session_date", *MULTIPLIER_COLUMNS
            ),
            on=["_series", "session_date"],
            how="left",
        )
    else:
        frame = frame.with_columns(pl.lit(None, dtype=pl.Float64).alias(c) for c in MULTIPLIER_COLUMNS)
    return frame.with_columns(pl.col(c).fill_null(1.0) for c in MULTIPLIER_COLUMNS).sort("_series", "_pos")


def lag(expr: pl.Expr, k: int) -> pl.Expr:
    """``expr`` ``k`` sessions back on an :func:`align`-ed frame (null before the window starts).

    Aligned frames hold the same sessions for every series, so a plain shift never crosses into another
    series once the rows before position ``k`` are masked.
    """
    if k == 0:
        return expr
    return pl.when(pl.col("_pos") >= k).then(expr.shift(k))


def total(values: Sequence[pl.Expr]) -> pl.Expr:
    """Sum in the given order; null when any value is null."""
    return functools.reduce(operator.add, values)


def product(values: Sequence[pl.Expr]) -> pl.Expr:
    """Product in the given order; null when any value is null."""
    return functools.reduce(operator.mul, values)


def with_window_stats(frame: pl.DataFrame, name: str, values: Sequence[pl.Expr]) -> pl.DataFrame:
    """Add ``<name>_mean`` and ``<name>_std`` (sample, ddof = 1) of ``values`` — typically the lags of a
    column — computed two-pass from materialised columns; null when any value is null."""
    n = len(values)
    lags = [f"_{name}_{k}" for k in range(n)]
    frame = frame.with_columns(v.alias(c) for v, c in zip(values, lags, strict=True))
    mean = f"{name}_mean"
    frame = frame.with_columns((total([pl.col(c) for c in lags]) / n).alias(mean))
    deviations = [(pl.col(c) - pl.col(mean)) ** 2 for c in lags]
    return frame.with_columns((total(deviations) / (n - 1)).sqrt().alias(f"{name}_std")).drop(lags)


def with_relative_basis(frame: pl.DataFrame, multiplier: str, k: int) -> tuple[pl.DataFrame, list[pl.Expr]]:
    """Add, for j = 1..k-1, the product of ``multiplier`` over the j sessions ending at the current one;
    return the frame and the expressions for j = 0..k-1 (element 0 is 1).

    Element j converts a value j sessions back into the current session's share basis: a raw price of
    D−j is multiplied by (a raw volume divided by) ``∏ multiplier(D−i), i < j`` — the actions between
    D−j and D (a 2:1 split has multiplier 1/2).
    """
    names = [f"_{multiplier}_basis_{j}" for j in range(1, k)]
    previous: pl.Expr | None = None
    for j, name in enumerate(names, start=1):
        step = lag(pl.col(multiplier), j - 1)
        frame = frame.with_columns((step if previous is None else previous * step).alias(name))
        previous = pl.col(name)
    return frame, [pl.lit(1.0), *(pl.col(n) for n in names)]


def finite_or_null(expr: pl.Expr) -> pl.Expr:
    """``expr`` where finite, null where NaN or infinite: silver never stores a non-finite number."""
    return pl.when(expr.is_finite()).then(expr)


def output_rows(frame: pl.DataFrame, window: SessionWindow) -> pl.DataFrame:
    """Rows of ``frame`` (aligned) that are real bars of an output session."""
    outputs = pl.Series(list(window.outputs), dtype=pl.Date)
    return frame.filter(pl.col("_present") & pl.col("session_date").is_in(outputs.implode()))
