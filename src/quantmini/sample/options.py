"""Option contracts (OCC tickers) on the sample's underlyings, priced with Black-Scholes-Merton.

Each session lists weekly Friday expirations for five weeks plus the monthly (third Friday) ones for
three months, strikes around spot at the standard increments, calls and puts. After a forward split of
an underlying, the contracts listed before it keep trading under an adjusted root with a digit
(``XYZ1``) and their old strikes, delivering ``split_to / split_from`` times as many shares. An index
lists its third-Friday contracts under one root (``SPX``) and the other weeks under another (``SPXW``).

Premiums are European Black-Scholes-Merton values at the rate :data:`RATE`, a continuous dividend yield
and a volatility read off a :class:`VolSurface`, rounded to the vendor's $0.01 tick: a pricing
library recovers the generating volatility up to that rounding.

Time to expiry follows the project's one convention: ``(expiration instant - observation instant)`` over
a 365-day year, both in UTC nanoseconds. A contract expires at the regular close of its expiration date
(the early close on a short session, 16:00 ET on a day that is not a session); the daily close is
observed at the session's regular close, the daily open at 09:30 ET and a minute bar at its end. From
the expiration close on, a contract is worth its intrinsic value.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from quantmini.core.calendar import close_instants_ns, is_session, last_known_session
from quantmini.sample.bars import FloatArray, IntArray
from quantmini.sample.csvformat import PRICE_SCALE, VOLUME_SCALE

#: Risk-free rate (continuous, annual) of every premium.
RATE = 0.04
#: Price increment of option premiums in the flat files.
TICK = 0.01
#: Expiration (years) at which the term factor of :class:`VolSurface` is 1.
REFERENCE_YEARS = 0.25
#: Nanoseconds in the 365-day year of every time to expiry.
YEAR_NS = 365 * 86_400 * 1_000_000_000
#: Shortest time to expiry (one hour, in years) the surface is read at: ``ln(t / REFERENCE_YEARS)`` stays
#: finite at the close of the expiration day, where the premium no longer depends on volatility.
SURFACE_MIN_YEARS = 1.0 / (365 * 24)
_MINUTE_NS = 60 * 1_000_000_000
_STRIKES_EACH_SIDE = 4
#: Extra strikes per side per √year to expiration (see :func:`_strikes_each_side`).
_STRIKE_SPREAD = 20.0
#: Listed strikes stay within a factor e^0.5 (0.61 to 1.65) of the spot.
_STRIKE_BAND = 0.5
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
    #: UTC nanoseconds of the expiration date's regular close.
    expires: IntArray
    is_call: NDArray[np.bool_]
    multiplier: FloatArray


def years_to_expiry(expires: IntArray, observed: IntArray | int) -> FloatArray:
    """Time to expiry in 365-day years from the UTC-nanosecond instant(s) ``observed`` (<= 0 once expired)."""
    return np.asarray((expires - observed) / YEAR_NS, dtype=np.float64)


def contract_set(
    root: str, session: dt.date, listed: list[tuple[dt.date, float]], multiplier: float = 1.0
) -> ContractSet:
    """Calls and puts on every (expiration, strike) of ``listed`` that has not expired by ``session``."""
    tickers: list[str] = []
    strike: list[float] = []
    expires: list[int] = []
    call: list[bool] = []
    closes = close_instants_ns([e for e, _ in listed if e >= session])
    for expiration, k in listed:
        if expiration < session:
            continue
        for kind in ("C", "P"):
            tickers.append(occ_ticker(root, expiration, kind, k))
            strike.append(k)
            expires.append(closes[expiration])
            call.append(kind == "C")
    return ContractSet(
        tickers,
        np.array(strike, dtype=np.float64),
        np.array(expires, dtype=np.int64),
        np.array(call, dtype=np.bool_),
        np.full(len(tickers), multiplier),
    )


def _strikes_each_side(session: dt.date, expiration: dt.date) -> int:
    """Strikes listed on each side of the money: more for later expirations (the ±25-delta strikes of a
    two-month contract lie ~10 % from the spot), as exchanges list them."""
    return _STRIKES_EACH_SIDE + math.ceil(_STRIKE_SPREAD * math.sqrt((expiration - session).days / 365.0))


def _listing(session: dt.date, spot: float, days: list[dt.date]) -> list[tuple[dt.date, float]]:
    """Strikes of each expiration, kept within :data:`_STRIKE_BAND` of the spot (in log terms)."""
    low, high = spot * math.exp(-_STRIKE_BAND), spot * math.exp(_STRIKE_BAND)
    return [
        (e, k) for e in days for k in strikes_around(spot, _strikes_each_side(session, e)) if low <= k <= high
    ]


def standard_listing(session: dt.date, spot: float) -> list[tuple[dt.date, float]]:
    """(expiration, strike) pairs listed on ``session`` for an underlying at ``spot``."""
    return _listing(session, spot, expirations(session))


def adjusted_listing(last_pre_split: dt.date, spot: float) -> list[tuple[dt.date, float]]:
    """Monthly contracts open before a split, kept (old strikes) under the adjusted root."""
    strikes = strikes_around(spot, _ADJUSTED_STRIKES_EACH_SIDE)
    monthly = [e for e in expirations(last_pre_split) if 15 <= e.day <= 21]
    return [(e, k) for e in monthly for k in strikes]


def index_listings(session: dt.date, level: float) -> dict[str, list[tuple[dt.date, float]]]:
    """Index contracts on ``session``: third-Friday monthlies under ``SPX``, other weeks under ``SPXW``."""
    days = expirations(session)
    monthly = [e for e in days if 15 <= e.day <= 21]
    weekly = [e for e in days if not 15 <= e.day <= 21]
    return {"SPX": _listing(session, level, monthly), "SPXW": _listing(session, level, weekly)}


def _norm_cdf(x: FloatArray) -> FloatArray:
    """Standard normal CDF through :func:`math.erf` (exact to double precision, no SciPy at run time)."""
    erf = np.asarray(np.frompyfunc(math.erf, 1, 1)(np.asarray(x) / math.sqrt(2.0)), dtype=np.float64)
    return np.asarray(0.5 * (1.0 + erf), dtype=np.float64)


def black_scholes(
    spot: FloatArray,
    strike: FloatArray,
    years: FloatArray,
    is_call: NDArray[np.bool_],
    sigma: FloatArray,
    dividend_yield: FloatArray,
) -> FloatArray:
    """European Black-Scholes-Merton premiums (rate :data:`RATE`, continuous ``dividend_yield``)."""
    sqrt_t = sigma * np.sqrt(years)
    d1 = (np.log(spot / strike) + (RATE - dividend_yield + 0.5 * sigma**2) * years) / sqrt_t
    d2 = d1 - sqrt_t
    carry = spot * np.exp(-dividend_yield * years)
    discount = strike * np.exp(-RATE * years)
    call = carry * _norm_cdf(d1) - discount * _norm_cdf(d2)
    put = discount * _norm_cdf(-d2) - carry * _norm_cdf(-d1)
    return np.asarray(np.where(is_call, call, put), dtype=np.float64)


def premium(
    spot: FloatArray,
    strike: FloatArray,
    years: FloatArray,
    is_call: NDArray[np.bool_],
    sigma: FloatArray,
    dividend_yield: FloatArray,
) -> FloatArray:
    """:func:`black_scholes` while time remains; the intrinsic value once ``years <= 0`` (expired)."""
    live = years > 0.0
    model = black_scholes(spot, strike, np.where(live, years, 1.0), is_call, sigma, dividend_yield)
    intrinsic = np.maximum(np.where(is_call, spot - strike, strike - spot), 0.0)
    return np.asarray(np.where(live, model, intrinsic), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class VolSurface:
    """Generating volatility of one underlying: ATM level per session, skew, smile and term structure.

    ``sigma = atm * (1 + term * ln(t / REFERENCE_YEARS)) * (1 + skew * x + curvature * x**2)`` with
    ``x = ln(K / F)`` the log-moneyness against the forward ``F = S * exp((r - q) * t)`` and ``t`` the
    time to expiry floored at :data:`SURFACE_MIN_YEARS`. ``curvature`` exceeds ``skew**2 / 4`` and
    ``|term|`` stays small, so both factors are positive on every listed strike and expiration: no
    clipping hides the formula.
    """

    skew: float
    curvature: float
    term: float

    def sigma(
        self, atm: float, spot: FloatArray, strike: FloatArray, years: FloatArray, dividend_yield: float
    ) -> FloatArray:
        """Volatility at each ``strike`` and time to expiry ``years``, the underlying (deliverable-scaled)
        at ``spot``."""
        t = np.maximum(years, SURFACE_MIN_YEARS)
        forward = spot * np.exp((RATE - dividend_yield) * t)
        x = np.log(strike / forward)
        level = atm * (1.0 + self.term * np.log(t / REFERENCE_YEARS))
        return np.asarray(level * (1.0 + self.skew * x + self.curvature * x**2), dtype=np.float64)

    def record(self) -> dict[str, float]:
        """The parameters as ``sample.json`` keeps them."""
        return {"skew": self.skew, "curvature": self.curvature, "term": self.term}


def draw_surface(rng: np.random.Generator, index: bool) -> VolSurface:
    """A put-skewed smile (steeper for an index) with a mild term structure."""
    skew = float(rng.uniform(-0.45, -0.3) if index else rng.uniform(-0.25, -0.05))
    return VolSurface(skew, float(rng.uniform(0.05, 0.2)), float(rng.uniform(-0.04, 0.02)))


@dataclass(frozen=True, slots=True)
class OptionDay:
    """Daily bars of the contracts that traded on one session (prices $0.0001, volumes 1e-6 shares).

    The pricing inputs of each row ride along so minute bars reprice the same contracts: the strike,
    expiration instant, side, deliverable multiplier, generating volatility, dividend yield and the
    index of the underlying's intraday spot path.
    """

    tickers: list[str]
    open: IntArray
    high: IntArray
    low: IntArray
    close: IntArray
    volume: IntArray
    transactions: IntArray
    strike: FloatArray
    expires: IntArray
    is_call: NDArray[np.bool_]
    multiplier: FloatArray
    sigma: FloatArray
    dividend_yield: FloatArray
    path: IntArray


@dataclass(frozen=True, slots=True)
class Quote:
    """What prices one underlying's contracts on a session: spots, ATM vol, surface, yield, path index,
    and the instants (UTC nanoseconds) the daily open and close are observed at."""

    spot_open: float
    spot_close: float
    atm: float
    surface: VolSurface
    dividend_yield: float
    path: int
    open_ns: int
    close_ns: int


def option_day(rng: np.random.Generator, contracts: ContractSet, quote: Quote) -> OptionDay:
    """Daily bars of the contracts in ``contracts`` that trade (near the money trades more often).

    Each contract's volatility comes from the surface at the close (sticky strike through the session);
    the close is the :func:`premium` at the closing spot and instant, the open the one at the opening
    spot and instant.
    """
    n = len(contracts.tickers)
    s_open = quote.spot_open * contracts.multiplier
    s_close = quote.spot_close * contracts.multiplier
    moneyness = np.abs(np.log(contracts.strike / s_close))
    traded = rng.random(n) < np.clip(0.9 - 4.0 * moneyness, 0.15, 0.9)
    t_open = years_to_expiry(contracts.expires, quote.open_ns)
    t_close = years_to_expiry(contracts.expires, quote.close_ns)
    sigma = quote.surface.sigma(quote.atm, s_close, contracts.strike, t_close, quote.dividend_yield)
    q = np.full(n, quote.dividend_yield)
    open_f = premium(s_open, contracts.strike, t_open, contracts.is_call, sigma, q)
    close_f = premium(s_close, contracts.strike, t_close, contracts.is_call, sigma, q)
    open_u = option_units(open_f)
    close_u = option_units(close_f)
    spread = np.abs(rng.normal(0.0, 0.06, (2, n)))
    high_u = np.maximum(
        option_units(np.maximum(open_f, close_f) * (1 + spread[0])), np.maximum(open_u, close_u)
    )
    low_u = np.minimum(
        option_units(np.minimum(open_f, close_f) * (1 - spread[1])), np.minimum(open_u, close_u)
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
        contracts.strike[keep],
        contracts.expires[keep],
        contracts.is_call[keep],
        contracts.multiplier[keep],
        sigma[keep],
        q[keep],
        np.full(len(keep), quote.path, dtype=np.int64),
    )


def spot_path(
    rng: np.random.Generator, spot_open: float, spot_close: float, daily_vol: float, minutes: int
) -> FloatArray:
    """Regular-hours spot of each minute: a Brownian bridge in log price from the open to the close."""
    m = max(minutes, 1)
    steps = rng.normal(0.0, daily_vol / np.sqrt(m), m)
    walk = np.cumsum(steps) - steps[0]
    frac = np.arange(m) / max(m - 1, 1)
    bridge = walk - frac * walk[-1]
    log_path = np.log(spot_open) + frac * (np.log(spot_close) - np.log(spot_open)) + bridge
    return np.asarray(np.exp(log_path), dtype=np.float64)


def option_units(premium: FloatArray) -> IntArray:
    """Premiums on the vendor's $0.01 tick (nearest tick), never below one tick."""
    cents = np.maximum(np.rint(premium / TICK), 1.0)
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


def option_minutes(
    rng: np.random.Generator, day: OptionDay, opening_ns: int, regular_minutes: int, paths: FloatArray
) -> OptionMinutes:
    """Sparse regular-hours minute bars for the contracts of ``day`` (offsets from the open at
    ``opening_ns``, UTC nanoseconds).

    ``paths[p, minute]`` is the spot of underlying path ``p``; each minute close is the contract's
    :func:`premium` there at the bar's end, with the day's volatility of the contract.
    """
    n, m = len(day.tickers), regular_minutes
    day_shares = day.volume / VOLUME_SCALE
    p = np.clip(0.005 + day_shares / 20000.0, 0.005, 0.2)[:, None]
    traded = rng.random((n, m)) < p
    rows, cols = np.nonzero(traded)
    spot = paths[day.path[rows], cols] * day.multiplier[rows]
    bar_end = opening_ns + (cols.astype(np.int64) + 1) * _MINUTE_NS
    years = years_to_expiry(day.expires[rows], bar_end)
    close_f = premium(
        spot, day.strike[rows], years, day.is_call[rows], day.sigma[rows], day.dividend_yield[rows]
    )
    open_f = close_f * rng.lognormal(0.0, 0.01, len(rows))
    open_u, close_u = option_units(open_f), option_units(close_f)
    spread = np.abs(rng.normal(0.0, 0.01, (2, len(rows))))
    high_u = np.maximum(
        option_units(np.maximum(open_f, close_f) * (1 + spread[0])), np.maximum(open_u, close_u)
    )
    low_u = np.minimum(
        option_units(np.minimum(open_f, close_f) * (1 - spread[1])), np.minimum(open_u, close_u)
    )
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
