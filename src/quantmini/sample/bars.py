"""Vectorised price and volume paths: daily bars for the whole universe, minute bars per session.

Daily prices follow a geometric random walk (an overnight gap and an intraday return per session) on a
*continuing* path; raw prices are that path times a factor that changes at each corporate action,
exactly as the vendor's unadjusted files show them: after a split raw prices are multiplied by
``split_from / split_to`` (volumes by the inverse), and on an ex-dividend date raw prices drop by the
cash amount, i.e. they are multiplied by ``1 - cash / previous raw close``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from quantmini.sample.csvformat import PRICE_SCALE, VOLUME_SCALE, to_price_units
from quantmini.sample.universe import Universe

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]

_GAP_VOL = 0.001
_VOLUME_SIGMA = 0.45


@dataclass(frozen=True, slots=True)
class DailyBars:
    """Raw daily bars, ``(tickers, sessions)`` arrays; prices in $0.0001, volumes in 1e-6 shares."""

    open: IntArray
    high: IntArray
    low: IntArray
    close: IntArray
    volume: IntArray
    transactions: IntArray
    alive: NDArray[np.bool_]
    #: Cash amount in dollars of each dividend, keyed by ``(ticker, session index)``.
    cash: dict[tuple[int, int], float]


def round_cash(amount: float) -> float:
    """A dividend amount as the vendor lists it: cents, or 4 decimals below five cents."""
    return max(round(amount, 2), 0.01) if amount >= 0.05 else max(round(amount, 4), 0.0001)


def daily_bars(universe: Universe, decimal: NDArray[np.bool_], seed: int) -> DailyBars:
    """Raw daily bars of every ticker; ``decimal[s]`` says whether session ``s`` has fractional volumes."""
    rng = np.random.default_rng([seed, 2])
    specs = universe.tickers
    n_t, n_s = len(specs), universe.n_sessions
    vol = np.array([t.daily_vol for t in specs])[:, None]
    gap = rng.normal(0.0, _GAP_VOL, (n_t, n_s))
    intraday = rng.normal(0.0002 - 0.5 * vol**2, vol, (n_t, n_s))
    log_close = np.log([t.price for t in specs])[:, None] + np.cumsum(gap + intraday, axis=1)
    cont_close = np.exp(log_close)
    cont_open = np.exp(log_close - intraday)
    wick = np.abs(rng.normal(0.0, 0.5, (2, n_t, n_s))) * vol
    cont_high = np.maximum(cont_open, cont_close) * np.exp(wick[0])
    cont_low = np.minimum(cont_open, cont_close) * np.exp(-wick[1])

    factor = np.ones((n_t, n_s))
    volume_mult = np.ones((n_t, n_s))
    cash: dict[tuple[int, int], float] = {}
    events = sorted(
        [(s.index, 0, s.ticker, s.split_from / s.split_to) for s in universe.splits]
        + [(d.index, 1, d.ticker, d.yield_) for d in universe.dividends]
    )
    for index, kind, ticker, value in events:
        if kind == 0:
            factor[ticker, index:] *= value
            volume_mult[ticker, index:] /= value
            continue
        prev_close = to_price_units(np.array([cont_close[ticker, index - 1] * factor[ticker, index - 1]]))
        prev = float(prev_close[0]) / PRICE_SCALE
        amount = round_cash(value * prev)
        cash[(ticker, index)] = amount
        factor[ticker, index:] *= 1.0 - amount / prev

    open_ = to_price_units(cont_open * factor)
    close = to_price_units(cont_close * factor)
    high = np.maximum(to_price_units(cont_high * factor), np.maximum(open_, close))
    low = np.minimum(to_price_units(cont_low * factor), np.minimum(open_, close))

    mean_volume = np.array([t.mean_volume for t in specs])[:, None]
    noise = rng.lognormal(-0.5 * _VOLUME_SIGMA**2, _VOLUME_SIGMA, (n_t, n_s))
    base_volume = mean_volume * noise * (1.0 + 15.0 * np.abs(intraday))
    shares = base_volume * volume_mult
    volume = _volume_units(shares, decimal[None, :])
    size = np.array([t.trade_size for t in specs])[:, None]
    trades = np.rint(base_volume / size * rng.lognormal(0.0, 0.15, (n_t, n_s)))
    transactions = np.clip(trades, 1, np.maximum(1, volume // VOLUME_SCALE)).astype(np.int64)

    session_index = np.arange(n_s)[None, :]
    first = np.array([t.first for t in specs])[:, None]
    last = np.array([t.last for t in specs])[:, None]
    alive = (session_index >= first) & (session_index <= last)
    return DailyBars(open_, high, low, close, volume, transactions, alive, cash)


def _volume_units(shares: FloatArray, decimal: NDArray[np.bool_]) -> IntArray:
    """Shares → 1e-6 units: whole shares (at least one) on integer sessions, 6 decimals otherwise."""
    shares = np.maximum(shares, 1.0)
    whole = np.floor(shares) * VOLUME_SCALE
    fractional = np.rint(shares * VOLUME_SCALE)
    return np.where(decimal, fractional, whole).astype(np.int64)


@dataclass(frozen=True, slots=True)
class MinuteWindow:
    """Minutes of one session, counted from 04:00 ET: trading ends at ``end``; regular ``[open, close)``."""

    end: int
    regular_open: int
    regular_close: int


@dataclass(frozen=True, slots=True)
class MinuteRows:
    """Traded minutes of a chunk of tickers, sorted by ticker then minute."""

    ticker: IntArray
    minute: IntArray
    open: IntArray
    high: IntArray
    low: IntArray
    close: IntArray
    volume: IntArray
    transactions: IntArray


def minute_rows(
    rng: np.random.Generator,
    day: tuple[IntArray, IntArray, IntArray, IntArray],
    daily_vol: FloatArray,
    trade_size: FloatArray,
    window: MinuteWindow,
    *,
    decimal: bool,
    extended: bool = True,
) -> MinuteRows:
    """Minute bars for tickers whose day bar is ``day`` = (open, close, volume units, mean volume).

    The minute path is a Brownian bridge in log price from the day's open to its close, so minute and
    day bars sit at the same price level. Only minutes with trades are returned; trading is denser in
    regular hours, and outside them only when ``extended``.
    """
    day_open, day_close, day_volume, liquidity = (a.astype(np.float64) for a in day)
    k, n = len(day_open), window.end
    minutes = np.arange(n)
    regular = (minutes >= window.regular_open) & (minutes < window.regular_close)
    # Liquid names trade every regular minute, as large caps do; thin ones leave gaps.
    p_regular = np.clip(0.2 * np.log10(np.maximum(liquidity, 1.0)) - 0.3, 0.1, 1.0)[:, None]
    p_minute = np.where(regular[None, :], p_regular, 0.2 * p_regular**2 if extended else 0.0)
    traded = rng.random((k, n)) < p_minute

    o = day_open / PRICE_SCALE
    c = day_close / PRICE_SCALE
    step = (daily_vol / np.sqrt(n))[:, None]
    walk = np.cumsum(rng.normal(0.0, 1.0, (k, n)), axis=1) * step
    frac = minutes / max(n - 1, 1)
    log_path = np.log(o)[:, None] + frac * np.log(c / o)[:, None] + 0.8 * (walk - frac * walk[:, -1:])
    close_f = np.exp(log_path)
    open_f = np.concatenate([o[:, None], close_f[:, :-1]], axis=1)
    wick = np.abs(rng.normal(0.0, 0.5, (2, k, n))) * step

    rel = (minutes - window.regular_open) / max(window.regular_close - window.regular_open, 1)
    weight = np.where(regular, 1.0 + 3.0 * (2.0 * rel - 1.0) ** 2, 0.08)
    weight = weight / weight[regular].sum() if regular.any() else weight / weight.sum()
    shares_f = (day_volume / VOLUME_SCALE)[:, None] * weight[None, :]

    rows, cols = np.nonzero(traded)
    open_sel, close_sel = open_f[rows, cols], close_f[rows, cols]
    open_u = to_price_units(open_sel)
    close_u = to_price_units(close_sel)
    top = to_price_units(np.maximum(open_sel, close_sel) * np.exp(wick[0][rows, cols]))
    bottom = to_price_units(np.minimum(open_sel, close_sel) * np.exp(-wick[1][rows, cols]))
    high_u = np.maximum(top, np.maximum(open_u, close_u))
    low_u = np.minimum(bottom, np.minimum(open_u, close_u))
    shares = shares_f[rows, cols] * rng.lognormal(-0.32, 0.8, len(rows))
    volume = _volume_units(shares, np.array(decimal))
    trades = np.rint(shares / trade_size[rows] * rng.lognormal(0.0, 0.3, len(rows)))
    transactions = np.clip(trades, 1, np.maximum(1, volume // VOLUME_SCALE)).astype(np.int64)
    return MinuteRows(
        rows.astype(np.int64), cols.astype(np.int64), open_u, high_u, low_u, close_u, volume, transactions
    )
