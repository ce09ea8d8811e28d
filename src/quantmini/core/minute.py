"""Silver features of minute stock bars, their daily roll-ups and the exchange-local minute calendar.

Intraday windows count **minute slots**, as the daily features count calendar sessions: the slots of a
session are its exchange-local minutes, a minute without a bar (the vendor writes no bar for a minute
without trades) is an empty slot, and a value ``k`` minutes back is the bar of the slot ``k`` minutes
earlier of the *same* session — null when that slot is empty or before the session's first bar. A
window is never taken across sessions, so the overnight gap never counts as one minute.

* ``ret_1m``, ``ret_5m``, ``ret_15m``, ``ret_30m``: simple returns ``close(t) / close(t−h) − 1``
  over ``h`` slots. Pre-market, regular and after-hours bars are one session: the 09:30 return compares
  with the 09:29 pre-market bar. No adjustment is needed: splits and dividends take effect between
  sessions.
* ``rv_30m``: sample standard deviation (ddof = 1) of ``ret_1m`` over the 30 slots ending at ``t`` (31
  consecutive bars) — simple returns, as ``vol_20d`` is of ``ret_1d``; not annualised.
* ``vwap_dist``: ``close ÷ VWAP − 1`` with the session's cumulative VWAP from 09:30 up to and including
  the bar, from the typical price ``(high + low + close) / 3`` weighted by volume (the files carry no
  per-bar VWAP). Regular-session bars only — the benchmark VWAP of a day — null on extended-hours bars.
* ``volume_rel_20d``: volume ÷ the mean split-adjusted volume of the same exchange-local minute over the
  20 previous sessions. A session where the ticker has bars but none that minute counts as volume 0
  (nothing traded; this includes minutes after an early close, so the mean dips by up to 1/20 in the 20
  sessions after a half day); a session where the ticker has no bar at all makes the feature null, as a
  missing daily bar does for the daily features.

Window statistics follow :mod:`quantmini.core.window`: sums of lagged values in a fixed order, never a
running sum across sessions, so any grouping of output sessions gives bit-identical rows. The VWAP's
cumulative sums run over one session's bars in time order, which are the same rows however sessions are
grouped. Values are finite or null.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Literal

import polars as pl

from quantmini._exceptions import ConfigurationError
from quantmini.core import calendar as exchange_calendar
from quantmini.core.calendar import EXTENDED_OPEN, REGULAR_CLOSE, REGULAR_OPEN
from quantmini.core.window import SessionWindow, align, finite_or_null, lag, with_relative_basis

#: Return horizons in minute slots.
RETURN_HORIZONS = (1, 5, 15, 30)
VOLATILITY_WINDOW = 30
#: Previous sessions averaged by ``volume_rel_20d`` (the part's lookback).
VOLUME_SESSIONS = 20
FEATURES = ("ret_1m", "ret_5m", "ret_15m", "ret_30m", "rv_30m", "vwap_dist", "volume_rel_20d")
#: After-hours trading ends four hours after the regular close: 20:00, or 17:00 after a 13:00 close.
AFTER_HOURS = dt.timedelta(hours=4)

#: Columns of :func:`minute_daily_rollups`; prices and volumes of the regular session only, except
#: ``extended_volume``.
DAILY_ROLLUP_SCHEMA = pl.Schema(
    {
        "ticker": pl.String(),
        "session_date": pl.Date(),
        "open": pl.Float64(),
        "high": pl.Float64(),
        "low": pl.Float64(),
        "close": pl.Float64(),
        "volume": pl.Float64(),
        "vwap": pl.Float64(),
        "bar_count": pl.Int64(),
        "extended_volume": pl.Float64(),
    }
)

_KEYS = ("ticker", "session_date")
_DAY_MINUTES = 1440


def minute_of_day(column: str = "ts") -> pl.Expr:
    """Exchange-local minute of the day (09:30 is 570) of the tz-aware ``ts`` column, as ``_minute``.

    Local, not UTC: the same clock minute on both sides of a DST change is the same slot.
    """
    ts = pl.col(column)
    return (ts.dt.hour().cast(pl.Int32) * 60 + ts.dt.minute().cast(pl.Int32)).alias("_minute")


def output_bars(window: SessionWindow) -> pl.DataFrame:
    """Bars of the output sessions with ``_minute``, sorted by (ticker, session_date, _minute)."""
    outputs = pl.Series(list(window.outputs), dtype=pl.Date).implode()
    return (
        window.bars.filter(pl.col("session_date").is_in(outputs))
        .with_columns(minute_of_day())
        .sort(*_KEYS, "_minute")
    )


def slot_grid(bars: pl.DataFrame) -> pl.DataFrame:
    """Every minute slot from each ticker's first to its last bar of each session, with the bars joined
    (null where a slot is empty) and ``_offset``, the slots since the first bar; sorted by slot.

    Only the span a ticker trades is filled in, so a thinly traded ticker costs no more than its span.
    """
    spans = bars.group_by(_KEYS).agg(
        pl.col("_minute").min().alias("_first"), pl.col("_minute").max().alias("_last")
    )
    grid = spans.select(
        *_KEYS,
        "_first",
        pl.int_ranges("_first", pl.col("_last") + 1, dtype=pl.Int32).alias("_minute"),
    ).explode("_minute")
    return (
        grid.join(bars.with_columns(pl.lit(True).alias("_present")), on=[*_KEYS, "_minute"], how="left")
        .with_columns(
            (pl.col("_minute") - pl.col("_first")).alias("_offset"), pl.col("_present").fill_null(False)
        )
        .sort(*_KEYS, "_minute")
    )


def slot_lag(expr: pl.Expr, k: int) -> pl.Expr:
    """``expr`` ``k`` slots back on a :func:`slot_grid` (null before the ticker's first bar of the session).

    Each (ticker, session) is a contiguous run of slots, so a shift never leaves it once rows fewer than
    ``k`` slots after its first bar are masked.
    """
    if k == 0:
        return expr
    return pl.when(pl.col("_offset") >= k).then(expr.shift(k))


def with_total(frame: pl.DataFrame, name: str, terms: Sequence[pl.Expr]) -> pl.DataFrame:
    """Add ``name``, the sum of ``terms`` in the given order (null when any is null).

    One column per step, the same additions as :func:`~quantmini.core.window.total`, without holding
    every term at once: a full-market minute grid has millions of rows per session.
    """
    frame = frame.with_columns(terms[0].alias(name))
    for term in terms[1:]:
        frame = frame.with_columns((pl.col(name) + term).alias(name))
    return frame


def with_sample_std(frame: pl.DataFrame, name: str, values: Sequence[pl.Expr]) -> pl.DataFrame:
    """Add ``name``, the sample standard deviation (ddof = 1) of ``values``, two-pass."""
    n = len(values)
    mean = f"_{name}_mean"
    frame = with_total(frame, mean, values).with_columns(pl.col(mean) / n)
    frame = with_total(frame, f"_{name}_ss", [(v - pl.col(mean)) ** 2 for v in values])
    return frame.with_columns((pl.col(f"_{name}_ss") / (n - 1)).sqrt().alias(name)).drop(mean, f"_{name}_ss")


def with_intraday_features(grid: pl.DataFrame) -> pl.DataFrame:
    """Add the returns, ``rv_30m`` and ``vwap_dist`` to a :func:`slot_grid`."""
    close = pl.col("close")
    frame = grid.with_columns(
        finite_or_null(close / slot_lag(close, h) - 1).alias(f"ret_{h}m") for h in RETURN_HORIZONS
    )
    ret = pl.col("ret_1m")
    frame = with_sample_std(frame, "_rv", [slot_lag(ret, k) for k in range(VOLATILITY_WINDOW)])
    regular = pl.col("_present") & pl.col("regular_session")
    typical = (pl.col("high") + pl.col("low") + close) / 3
    cumulative_value = pl.when(regular).then(typical * pl.col("volume")).cum_sum().over(_KEYS)
    cumulative_volume = pl.when(regular).then(pl.col("volume")).cum_sum().over(_KEYS)
    return frame.with_columns(
        finite_or_null(pl.col("_rv")).alias("rv_30m"),
        finite_or_null(pl.when(regular).then(close / (cumulative_value / cumulative_volume) - 1)).alias(
            "vwap_dist"
        ),
    )


def session_scales(window: SessionWindow) -> pl.DataFrame:
    """Per ticker and output session, ``_scale_j`` (j = 1..20): what divides a raw volume of ``j``
    sessions back to put it in the output session's share basis; null when the ticker has no bar then.
    """
    presence = window.bars.select(*_KEYS).unique()
    frame = align(dataclasses.replace(window, bars=presence), [])
    frame, basis = with_relative_basis(frame, "split_multiplier", VOLUME_SESSIONS + 1)
    outputs = pl.Series(list(window.outputs), dtype=pl.Date).implode()
    return frame.with_columns(
        pl.when(lag(pl.col("_present"), j)).then(basis[j]).alias(f"_scale_{j}")
        for j in range(1, VOLUME_SESSIONS + 1)
    ).filter(pl.col("_present") & pl.col("session_date").is_in(outputs))


def with_relative_volume(rows: pl.DataFrame, window: SessionWindow) -> pl.DataFrame:
    """Add ``volume_rel_20d`` to output rows (with ``_minute``): one join per previous session, each
    looking up the same ticker and minute ``j`` sessions back, summed in the order j = 1..20.

    The joins run on one integer key — (ticker, session, minute) packed so that ``j`` sessions back is
    ``key − j·1440`` — over the few columns they need; the result keeps the rows' order.
    """
    n = len(window.sessions)
    positions = pl.DataFrame(
        {"session_date": list(window.sessions), "_pos": list(range(n))},
        schema={"session_date": pl.Date(), "_pos": pl.Int64()},
    )
    tickers = window.bars.select("ticker").unique().with_row_index("_tid").cast({"_tid": pl.Int64})
    key = ((pl.col("_tid") * n + pl.col("_pos")) * _DAY_MINUTES + pl.col("_minute")).alias("_key")

    def keyed(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.join(positions, on="session_date", maintain_order="left").join(
            tickers, on="ticker", maintain_order="left"
        )

    volumes = keyed(window.bars.select(*_KEYS, minute_of_day(), "volume")).select(key, "_pos", "volume")
    frame = keyed(rows.select(*_KEYS, "_minute", "volume")).join(
        session_scales(window), on=list(_KEYS), how="left", maintain_order="left"
    )
    frame = frame.with_columns(key)
    outputs = frame["_pos"].unique()
    for j in range(1, VOLUME_SESSIONS + 1):
        earlier = volumes.filter(pl.col("_pos").is_in((outputs - j).implode())).select(
            pl.col("_key") + j * _DAY_MINUTES, pl.col("volume").alias("_earlier")
        )
        frame = frame.join(earlier, on="_key", how="left", maintain_order="left")
        term = pl.col("_earlier").fill_null(0.0) / pl.col(f"_scale_{j}")
        frame = frame.with_columns(
            (term if j == 1 else pl.col("_volume_sum") + term).alias("_volume_sum")
        ).drop("_earlier")
    mean = pl.col("_volume_sum") / VOLUME_SESSIONS
    relative = frame.select(finite_or_null(pl.col("volume") / mean).alias("volume_rel_20d"))
    return rows.with_columns(relative.to_series())


def stocks_minute_silver(window: SessionWindow) -> pl.DataFrame:
    """Silver rows of the output sessions: the bronze columns plus :data:`FEATURES`.

    ``volume_rel_20d`` needs the 20 previous sessions in the window (lookback 20) and the split
    multipliers of the window's sessions; the other features need the output session only.
    """
    columns = window.bars.columns
    grid = slot_grid(output_bars(window))
    rows = with_intraday_features(grid).filter(pl.col("_present"))
    rows = with_relative_volume(rows, window)
    return rows.sort("ticker", "window_start").select(
        *columns, *(pl.col(name).cast(pl.Float64) for name in FEATURES)
    )


def minute_daily_rollups(window: SessionWindow) -> pl.DataFrame:
    """Per ticker and output session, the regular-session bar of the day built from minute bars.

    ``open``/``close`` are the first/last regular bar's, ``vwap`` is Σ typical·volume ÷ Σ volume over
    regular bars, ``bar_count`` counts them, ``extended_volume`` sums the other bars. A ticker trading
    only outside regular hours has a row with null prices, ``volume`` and ``bar_count`` 0. Sums are the
    last value of a cumulative sum in time order, so they never depend on how a group-by is partitioned.
    """
    bars = output_bars(window)
    regular = pl.col("regular_session")
    typical = (pl.col("high") + pl.col("low") + pl.col("close")) / 3
    sums = bars.with_columns(
        pl.when(regular).then(pl.col("volume")).cum_sum().over(_KEYS).alias("_volume"),
        pl.when(regular).then(typical * pl.col("volume")).cum_sum().over(_KEYS).alias("_value"),
        pl.when(~regular).then(pl.col("volume")).cum_sum().over(_KEYS).alias("_extended"),
    )
    day = sums.group_by(_KEYS).agg(
        pl.col("open").filter(regular).first(),
        pl.col("high").filter(regular).max(),
        pl.col("low").filter(regular).min(),
        pl.col("close").filter(regular).last(),
        pl.col("_volume").drop_nulls().last().fill_null(0.0).alias("volume"),
        pl.col("_value").drop_nulls().last().alias("_value"),
        regular.sum().alias("bar_count"),
        pl.col("_extended").drop_nulls().last().fill_null(0.0).alias("extended_volume"),
    )
    return (
        day.with_columns(finite_or_null(pl.col("_value") / pl.col("volume")).alias("vwap"))
        .select((pl.col(name).cast(dtype) for name, dtype in DAILY_ROLLUP_SCHEMA.items()))
        .sort(*_KEYS)
    )


def regular_minutes(
    sessions: Sequence[dt.date],
    calendar: str = "XNYS",
    session: Literal["regular", "extended"] = "regular",
) -> list[dt.datetime]:
    """Bar starts of ``sessions`` as naive exchange-local datetimes, in order (Qlib's minute calendar).

    ``regular``: 09:30 to the close (390 bars, 210 on a 13:00 early close). ``extended``: 04:00 to four
    hours after the close, the hours of the vendor's minute files (960 bars, 780 on an early close).
    Local wall-clock times do not move across DST changes; sessions never contain one.
    """
    if session not in ("regular", "extended"):
        raise ConfigurationError(f"session: {session!r} is not 'regular' or 'extended'")
    if not sessions:
        return []
    first, last = min(sessions), max(sessions)
    known = set(exchange_calendar.sessions(first, last, calendar))
    strays = sorted(set(sessions) - known)
    if strays:
        raise ConfigurationError(f"sessions: {strays[0]} is not a {calendar} session")
    early = exchange_calendar.early_closes(first, last, calendar)
    minutes: list[dt.datetime] = []
    for day in sessions:
        close = dt.datetime.combine(day, early.get(day, REGULAR_CLOSE))
        start = dt.datetime.combine(day, REGULAR_OPEN if session == "regular" else EXTENDED_OPEN)
        end = close if session == "regular" else close + AFTER_HOURS
        count = int((end - start) / dt.timedelta(minutes=1))
        minutes.extend(start + dt.timedelta(minutes=i) for i in range(count))
    return minutes
