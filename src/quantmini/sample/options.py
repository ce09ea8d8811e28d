"""Option contracts (OCC tickers) on the sample's underlyings, priced with Black-Scholes.

Each session lists weekly Friday expirations for five weeks plus the monthly (third Friday) ones for
three months, strikes around spot at the standard increments, calls and puts. After a forward split of
an underlying, the contracts listed before it keep trading under an adjusted root with a digit
(``XYZ1``) and their old strikes, delivering ``split_to / split_from`` times as many shares.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from quantmini.core.calendar import is_session, last_known_session
from quantmini.sample.bars import FloatArray, IntArray
from quantmini.sample.csvformat import PRICE_SCALE, VOLUME_SCALE

_RATE = 0.04
_STRIKES_EACH_SIDE = 4
_ADJUSTED_STRIKES_EACH_SIDE = 3


def occ_ticker(root: str, expiration: dt.date, kind: str, strike: float) -> str:
    """``O:`` + root + ``YYMMDD`` + ``C|P`` + strike×1000 on 8 digits (``O:SPY241220C00500000``)."""
    return f"O:{root}{expiration:%y%m%d}{kind}{round(strike * 1000):08d}"


def strike_increment(spot: float) -> float:
    """Standard listing increment for an underlying trading at ``spot``."""
    for bound, step in ((10.0, 0.5), (50.0, 1.0), (200.0, 2.5), (500.0, 5.0)):
        if spot < bound:
            return step
    return 10.0


def strikes_around(spot: float, each_side: int) -> list[float]:
    """``2 * each_side + 1`` positive strikes centred on the increment nearest ``spot``."""
    step = strike_increment(spot)
    centre = max(round(spot / step), each_side + 1) * step
    return [round(centre + i * step, 3) for i in range(-each_side, each_side + 1)]


def _expiry_day(friday: dt.date) -> dt.date:
    """The Friday, or the session before it when the Friday is an exchange holiday."""
    if friday > last_known_session() or is_session(friday):
        return friday
    day = friday - dt.timedelta(days=1)
    while not is_session(day):
        day -= dt.timedelta(days=1)
    return day


def expirations(session: dt.date) -> list[dt.date]:
    """Expirations listed on ``session``: five weekly Fridays and three monthly (third Friday) ones."""
    first_friday = session + dt.timedelta(days=(4 - session.weekday()) % 7)
    fridays = {first_friday + dt.timedelta(weeks=w) for w in range(5)}
    year, month = session.year, session.month
    for _ in range(4):
        first = dt.date(year, month, 1)
        third = first + dt.timedelta(days=(4 - first.weekday()) % 7 + 14)
        if third >= session:
            fridays.add(third)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    days = sorted({_expiry_day(f) for f in fridays})
    return [d for d in days if d >= session][:8]


@dataclass(frozen=True, slots=True)
class ContractSet:
    """Contracts traded on one underlying and session: tickers and pricing inputs, one row each."""

    tickers: list[str]
    strike: FloatArray
    years: FloatArray
    is_call: NDArray[np.bool_]
    multiplier: FloatArray


def contract_set(
    root: str, session: dt.date, listed: list[tuple[dt.date, float]], multiplier: float = 1.0
) -> ContractSet:
    """Calls and puts on every (expiration, strike) of ``listed`` that has not expired by ``session``."""
    tickers: list[str] = []
    strike: list[float] = []
    years: list[float] = []
    call: list[bool] = []
    for expiration, k in listed:
        if expiration < session:
            continue
        for kind in ("C", "P"):
            tickers.append(occ_ticker(root, expiration, kind, k))
            strike.append(k)
            years.append(((expiration - session).days + 0.5) / 365.0)
            call.append(kind == "C")
    return ContractSet(
        tickers,
        np.array(strike, dtype=np.float64),
        np.array(years, dtype=np.float64),
        np.array(call, dtype=np.bool_),
        np.full(len(tickers), multiplier),
    )


def standard_listing(session: dt.date, spot: float) -> list[tuple[dt.date, float]]:
    """(expiration, strike) pairs listed on ``session`` for an underlying at ``spot``."""
    strikes = strikes_around(spot, _STRIKES_EACH_SIDE)
    return [(e, k) for e in expirations(session) for k in strikes]


def adjusted_listing(last_pre_split: dt.date, spot: float) -> list[tuple[dt.date, float]]:
    """Monthly contracts open before a split, kept (old strikes) under the adjusted root."""
    strikes = strikes_around(spot, _ADJUSTED_STRIKES_EACH_SIDE)
    monthly = [e for e in expirations(last_pre_split) if 15 <= e.day <= 21]
    return [(e, k) for e in monthly for k in strikes]


def _norm_cdf(x: FloatArray) -> FloatArray:
    """Standard normal CDF via the Abramowitz-Stegun 7.1.26 erf approximation (error < 2e-7)."""
    z = np.abs(x) / np.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf = 1.0 - poly * np.exp(-z * z)
    return np.asarray(0.5 * (1.0 + np.sign(x) * erf), dtype=np.float64)


def black_scholes(spot: FloatArray, contracts: ContractSet, vol: float) -> FloatArray:
    """Option premiums per share of the standard deliverable (spot scaled by the contract multiplier)."""
    s = spot * contracts.multiplier
    k, t = contracts.strike, contracts.years
    sigma = vol * (1.0 + 0.5 * np.abs(np.log(k / s)))
    sqrt_t = sigma * np.sqrt(t)
    d1 = (np.log(s / k) + (_RATE + 0.5 * sigma**2) * t) / sqrt_t
    d2 = d1 - sqrt_t
    discount = np.exp(-_RATE * t)
    call = s * _norm_cdf(d1) - k * discount * _norm_cdf(d2)
    put = k * discount * _norm_cdf(-d2) - s * _norm_cdf(-d1)
    return np.asarray(np.where(contracts.is_call, call, put), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class OptionDay:
    """Daily bars of the contracts that traded on one session (prices $0.0001, volumes 1e-6 shares)."""

    tickers: list[str]
    open: IntArray
    high: IntArray
    low: IntArray
    close: IntArray
    volume: IntArray
    transactions: IntArray


def option_day(
    rng: np.random.Generator, contracts: ContractSet, spot_open: float, spot_close: float, vol: float
) -> OptionDay:
    """Daily bars of the contracts in ``contracts`` that trade (near the money trades more often)."""
    n = len(contracts.tickers)
    moneyness = np.abs(np.log(contracts.strike / (spot_close * contracts.multiplier)))
    traded = rng.random(n) < np.clip(0.9 - 4.0 * moneyness, 0.15, 0.9)
    open_f = black_scholes(np.full(n, spot_open), contracts, vol)
    close_f = black_scholes(np.full(n, spot_close), contracts, vol)
    open_u = _option_units(open_f)
    close_u = _option_units(close_f)
    spread = np.abs(rng.normal(0.0, 0.06, (2, n)))
    high_u = np.maximum(
        _option_units(np.maximum(open_f, close_f) * (1 + spread[0])), np.maximum(open_u, close_u)
    )
    low_u = np.minimum(
        _option_units(np.minimum(open_f, close_f) * (1 - spread[1])), np.minimum(open_u, close_u)
    )
    shares = np.floor(rng.lognormal(np.log(250.0), 1.2, n) * np.exp(-8.0 * moneyness)) + 1.0
    trades = np.clip(np.rint(shares / rng.uniform(2.0, 8.0, n)), 1, shares)
    keep = np.nonzero(traded)[0]
    return OptionDay(
        [contracts.tickers[i] for i in keep],
        open_u[keep],
        high_u[keep],
        low_u[keep],
        close_u[keep],
        (shares[keep] * VOLUME_SCALE).astype(np.int64),
        trades[keep].astype(np.int64),
    )


def _option_units(premium: FloatArray) -> IntArray:
    """Premiums on a $0.01 tick, never below one tick."""
    cents = np.maximum(np.rint(premium * 100.0), 1.0)
    return (cents * (PRICE_SCALE // 100)).astype(np.int64)


@dataclass(frozen=True, slots=True)
class OptionMinutes:
    """Traded minutes of a session's contracts: row index into the day's contracts and minute offset."""

    contract: IntArray
    minute: IntArray
    open: IntArray
    high: IntArray
    low: IntArray
    close: IntArray
    volume: IntArray
    transactions: IntArray


def option_minutes(rng: np.random.Generator, day: OptionDay, regular_minutes: int) -> OptionMinutes:
    """Sparse regular-hours minute bars for the contracts of ``day`` (offsets from the open)."""
    n, m = len(day.tickers), regular_minutes
    day_shares = day.volume / VOLUME_SCALE
    p = np.clip(0.005 + day_shares / 20000.0, 0.005, 0.2)[:, None]
    traded = rng.random((n, m)) < p
    rows, cols = np.nonzero(traded)
    frac = cols / max(m - 1, 1)
    o, c = day.open[rows] / PRICE_SCALE, day.close[rows] / PRICE_SCALE
    mid = np.maximum(o + (c - o) * frac, 0.01) * rng.lognormal(0.0, 0.02, len(rows))
    open_f = mid * rng.lognormal(0.0, 0.01, len(rows))
    open_u, close_u = _option_units(open_f), _option_units(mid)
    spread = np.abs(rng.normal(0.0, 0.01, (2, len(rows))))
    high_u = np.maximum(_option_units(np.maximum(open_f, mid) * (1 + spread[0])), np.maximum(open_u, close_u))
    low_u = np.minimum(_option_units(np.minimum(open_f, mid) * (1 - spread[1])), np.minimum(open_u, close_u))
    expected = np.maximum(p[rows, 0] * m, 1.0)
    shares = np.floor(day_shares[rows] / expected * rng.lognormal(0.0, 0.7, len(rows))) + 1.0
    trades = np.clip(np.rint(shares / rng.uniform(1.0, 5.0, len(rows))), 1, shares)
    return OptionMinutes(
        rows.astype(np.int64),
        cols.astype(np.int64),
        open_u,
        high_u,
        low_u,
        close_u,
        (shares * VOLUME_SCALE).astype(np.int64),
        trades.astype(np.int64),
    )
