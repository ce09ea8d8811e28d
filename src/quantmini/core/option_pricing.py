"""Black–Scholes–Merton prices, greeks and implied volatility for equity options, vectorised with numpy.

Every contract is priced as a **European** option on a stock paying a continuous dividend yield ``q``,
with a continuous risk-free rate ``r``. US equity options are American-style: an American call on a
dividend payer, or an American put, is worth at least the European value (early exercise premium), so
this model is an approximation for them — usually small for short-dated, near-the-money contracts, large
for deep in-the-money puts when rates are high. An implied volatility computed here is the vol that makes
the *European* price match the quote.

Units and conventions, for every function:

* ``is_call``: booleans, ``True`` for a call, ``False`` for a put (``contract_type == "call"``).
* ``spot``, ``strike`` and prices in the same currency; ``t`` in years (e.g. calendar days / 365);
  ``vol``, ``r`` and ``q`` annualised and continuously compounded (``0.2`` is 20 %).
* Arguments are arrays or scalars that numpy broadcasts together; results have the broadcast shape.

No Python loop runs per contract: the normal CDF is evaluated from a table of exact values (built once
with :func:`math.erfc`) and its Taylor expansion, and the implied-volatility solver iterates over whole
arrays, dropping contracts as they converge.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: Search interval of :func:`implied_vol`: a vol outside it is reported, not returned.
VOL_MIN = 1e-4
VOL_MAX = 5.0
#: Convergence: the model price is within ``PRICE_TOL * max(1, price)`` of the quote and the next Newton
#: step would move the vol by less than ``VOL_TOL``, or the last step moved it by less than ``VOL_TOL``.
PRICE_TOL = 1e-8
VOL_TOL = 1e-7
MAX_ITERATIONS = 64

#: Why :func:`implied_vol` returned no vol ("" when it returned one).
REASON_INVALID_INPUT = "invalid_input"  # spot/strike not finite and > 0, t/r/q/vol inputs not finite
REASON_EXPIRED = "expired"  # t <= 0
REASON_NO_PRICE = "no_price"  # price not finite or <= 0
REASON_BELOW_INTRINSIC = "below_intrinsic"  # below the discounted intrinsic value (arbitrage)
REASON_ABOVE_UPPER_BOUND = "above_upper_bound"  # call >= S·e^(-qT), put >= K·e^(-rT) (arbitrage)
REASON_VOL_BELOW_RANGE = "vol_below_range"  # within the bounds, but the vol would be below VOL_MIN
REASON_VOL_ABOVE_RANGE = "vol_above_range"  # within the bounds, but the vol would be above VOL_MAX
REASON_NO_CONVERGENCE = "no_convergence"  # no vol met the tolerance in MAX_ITERATIONS
IV_REASONS = (
    "",
    REASON_INVALID_INPUT,
    REASON_EXPIRED,
    REASON_NO_PRICE,
    REASON_BELOW_INTRINSIC,
    REASON_ABOVE_UPPER_BOUND,
    REASON_VOL_BELOW_RANGE,
    REASON_VOL_ABOVE_RANGE,
    REASON_NO_CONVERGENCE,
)

Floats = NDArray[np.float64]

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
# Normal CDF table: nodes every 2^-9 on [-39, 9]. Below -39 the CDF underflows to 0; above 9 it is 1 to
# double precision. Between nodes a 10-term Taylor series (|h| <= 2^-10) keeps the relative error near
# machine precision, in the far lower tail too (where 1 - N(-x) would lose every digit).
_CDF_LOW = -39.0
_CDF_HIGH = 9.0
_CDF_STEP = 2.0**-9
_CDF_TERMS = 10


class Greeks(NamedTuple):
    """Sensitivities of one option price (arrays of the broadcast shape).

    ``delta`` per 1.00 of spot, ``gamma`` per 1.00 of spot squared, ``vega`` per 1.00 of vol (a move
    from 0.20 to 1.20; divide by 100 for one vol point), ``theta`` per **calendar day** (the change in
    value when one day passes, all else equal: the per-year rate divided by 365).
    """

    delta: Floats
    gamma: Floats
    vega: Floats
    theta: Floats


@lru_cache(maxsize=1)
def _cdf_table() -> tuple[Floats, Floats]:
    count = round((_CDF_HIGH - _CDF_LOW) / _CDF_STEP) + 1
    nodes: Floats = _CDF_LOW + _CDF_STEP * np.arange(count, dtype=np.float64)
    # Once per process, ~25k nodes: exact values that the vectorised series starts from.
    cdf = np.array([0.5 * math.erfc(-x / math.sqrt(2.0)) for x in nodes.tolist()], dtype=np.float64)
    return cdf, nodes


def norm_cdf(x: ArrayLike) -> Floats:
    """Standard normal CDF, to near double precision (relative, in the lower tail too)."""
    x = np.asarray(x, dtype=np.float64)
    cdf, nodes = _cdf_table()
    inside = np.clip(np.nan_to_num(x, nan=0.0), _CDF_LOW, _CDF_HIGH)
    k = np.rint((inside - _CDF_LOW) / _CDF_STEP).astype(np.int64)
    x0 = nodes[k]
    h = inside - x0
    # N(x0 + h) = N(x0) + φ(x0)·Σ_{n>=1} (-1)^(n-1) He_{n-1}(x0) h^n / n!, since φ^(m) = (-1)^m He_m φ.
    he_prev, he = np.zeros_like(x0), np.ones_like(x0)  # He_{-1} (unused), He_0
    power = h.copy()  # h^n / n!
    total = power * he
    for n in range(2, _CDF_TERMS + 1):
        he_prev, he = he, x0 * he - (n - 2) * he_prev  # He_{n-1}
        power = power * h / n
        total = total - power * he if n % 2 == 0 else total + power * he
    value = cdf[k] + np.exp(-0.5 * x0 * x0) * _INV_SQRT_2PI * total
    value = np.where(x < _CDF_LOW, 0.0, np.where(x > _CDF_HIGH, 1.0, value))
    return np.where(np.isnan(x), np.nan, value)


def norm_pdf(x: ArrayLike) -> Floats:
    """Standard normal density."""
    x = np.asarray(x, dtype=np.float64)
    density: Floats = np.exp(-0.5 * x * x) * _INV_SQRT_2PI
    return density


def _sign(is_call: ArrayLike) -> NDArray[np.float64]:
    flags = np.asarray(is_call)
    if flags.dtype != np.bool_:
        raise TypeError(f"is_call must be booleans (True for a call), got dtype {flags.dtype}")
    return np.where(flags, 1.0, -1.0)


def _floats(*values: ArrayLike) -> list[Floats]:
    return [np.asarray(v, dtype=np.float64) for v in np.broadcast_arrays(*values)]


def bsm_price(
    is_call: ArrayLike,
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    vol: ArrayLike,
    r: ArrayLike,
    q: ArrayLike,
) -> Floats:
    """European option price under Black–Scholes–Merton.

    ``t <= 0`` gives the intrinsic value ``max(±(S - K), 0)``; ``vol == 0`` the discounted intrinsic value
    of the forward; a negative vol gives NaN.
    """
    w, spot, strike, t, vol, r, q = _floats(_sign(is_call), spot, strike, t, vol, r, q)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        t_pos = np.maximum(t, 0.0)
        spot_q = spot * np.exp(-q * t_pos)
        strike_r = strike * np.exp(-r * t_pos)
        sig_t = vol * np.sqrt(t_pos)
        d1 = (np.log(spot_q / strike_r)) / sig_t + 0.5 * sig_t
        d2 = d1 - sig_t
        price = w * (spot_q * norm_cdf(w * d1) - strike_r * norm_cdf(w * d2))
        deterministic = np.maximum(w * (spot_q - strike_r), 0.0)
        price = np.where(sig_t > 0, price, deterministic)
    return np.where(vol >= 0, price, np.nan)  # NaN for a negative or missing vol


def greeks(
    is_call: ArrayLike,
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    vol: ArrayLike,
    r: ArrayLike,
    q: ArrayLike,
) -> Greeks:
    """Delta, gamma, vega (per 1.00 vol) and theta (per calendar day) — see :class:`Greeks`.

    NaN where ``t <= 0`` or ``vol <= 0``: at expiry, or without volatility, the sensitivities are
    not defined (kinks of the payoff).
    """
    w, spot, strike, t, vol, r, q = _floats(_sign(is_call), spot, strike, t, vol, r, q)
    defined = (t > 0) & (vol > 0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        sqrt_t = np.sqrt(np.where(defined, t, np.nan))
        spot_q = spot * np.exp(-q * t)
        strike_r = strike * np.exp(-r * t)
        sig_t = vol * sqrt_t
        d1 = np.log(spot_q / strike_r) / sig_t + 0.5 * sig_t
        d2 = d1 - sig_t
        n1, n2, pdf1 = norm_cdf(w * d1), norm_cdf(w * d2), norm_pdf(d1)
        delta = w * np.exp(-q * t) * n1
        gamma = np.exp(-q * t) * pdf1 / (spot * sig_t)
        vega = spot_q * pdf1 * sqrt_t
        theta_year = -spot_q * pdf1 * vol / (2.0 * sqrt_t) - w * (r * strike_r * n2 - q * spot_q * n1)
    return Greeks(delta=delta, gamma=gamma, vega=vega, theta=theta_year / 365.0)


def implied_vol(
    price: ArrayLike,
    is_call: ArrayLike,
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    r: ArrayLike,
    q: ArrayLike,
) -> tuple[Floats, NDArray[np.str_]]:
    """The Black–Scholes–Merton vol that reproduces ``price``, and why there is none where there is none.

    Returns ``(iv, reason)``: ``iv`` is NaN exactly where ``reason`` is not ``""`` (one of
    :data:`IV_REASONS`), so a contract never gets a vol that does not price it. Checks, in order: inputs
    (``invalid_input``), ``t <= 0`` (``expired``), the quote (``no_price``), the no-arbitrage bounds
    ``max(±(S·e^(-qT) - K·e^(-rT)), 0) <= price < S·e^(-qT)`` (call) or ``K·e^(-rT)`` (put)
    (``below_intrinsic`` — below the lower bound by more than the price tolerance — and
    ``above_upper_bound``), then whether the vol lies in [:data:`VOL_MIN`, :data:`VOL_MAX`]
    (``vol_below_range``: the quote is, to the model, intrinsic value; ``vol_above_range``).

    The solver starts from the Corrado–Miller approximation and takes Newton steps on vega inside a
    bracket that every step narrows, bisecting when a Newton step would leave the bracket or shrinks too
    slowly (deep out-of-the-money quotes, where vega is nearly zero). A vol is accepted when the model
    price is within ``PRICE_TOL * max(1, price)`` of the quote and within ``VOL_TOL`` of the root by
    Newton's estimate (``|error| / vega``), or when the last step moved it less than ``VOL_TOL`` (the
    bracket has closed in on the root); after :data:`MAX_ITERATIONS` steps the reason is
    ``no_convergence``.
    """
    w, price, spot, strike, t, r, q = _floats(_sign(is_call), price, spot, strike, t, r, q)
    shape = price.shape
    w, price, spot, strike, t, r, q = (a.ravel() for a in (w, price, spot, strike, t, r, q))
    code = np.zeros(price.shape, dtype=np.int8)
    iv = np.full(price.shape, np.nan)

    def flag(mask: NDArray[np.bool_], reason: str) -> None:
        code[(code == 0) & mask] = IV_REASONS.index(reason)

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        flag(
            ~(np.isfinite(spot) & np.isfinite(strike) & np.isfinite(t) & np.isfinite(r) & np.isfinite(q))
            | ~(spot > 0)
            | ~(strike > 0),
            REASON_INVALID_INPUT,
        )
        flag(t <= 0, REASON_EXPIRED)
        flag(~np.isfinite(price) | ~(price > 0), REASON_NO_PRICE)
        spot_q = spot * np.exp(-q * t)
        strike_r = strike * np.exp(-r * t)
        lower = np.maximum(w * (spot_q - strike_r), 0.0)
        upper = np.where(w > 0, spot_q, strike_r)
        tol = PRICE_TOL * np.maximum(1.0, price)
        flag(price < lower - tol, REASON_BELOW_INTRINSIC)
        flag(price >= upper, REASON_ABOVE_UPPER_BOUND)

        rows = np.flatnonzero(code == 0)
        problem = _Problem(
            w=w[rows],
            price=price[rows],
            spot_q=spot_q[rows],
            strike_r=strike_r[rows],
            sqrt_t=np.sqrt(t[rows]),
            tol=tol[rows],
            log_forward_moneyness=np.log(spot_q[rows] / strike_r[rows]),
        )
        below = problem.price_at(np.full(rows.size, VOL_MIN))[0] >= problem.price
        above = problem.price_at(np.full(rows.size, VOL_MAX))[0] <= problem.price
        code[rows[below]] = IV_REASONS.index(REASON_VOL_BELOW_RANGE)
        code[rows[above & ~below]] = IV_REASONS.index(REASON_VOL_ABOVE_RANGE)
        solve = ~(below | above)
        found, converged = _solve(problem.take(solve))
        rows = rows[solve]
        iv[rows[converged]] = found[converged]
        code[rows[~converged]] = IV_REASONS.index(REASON_NO_CONVERGENCE)
    reasons = np.array(IV_REASONS)[code]
    return iv.reshape(shape), reasons.reshape(shape)


class _Problem(NamedTuple):
    """Contracts whose vol is being solved for, one row each (1-D arrays)."""

    w: Floats
    price: Floats
    spot_q: Floats
    strike_r: Floats
    sqrt_t: Floats
    tol: Floats
    log_forward_moneyness: Floats  # ln(S·e^(-qT) / (K·e^(-rT)))

    def take(self, rows: NDArray[np.bool_] | NDArray[np.intp]) -> _Problem:
        return _Problem(*(a[rows] for a in self))

    def price_at(self, vol: Floats) -> tuple[Floats, Floats]:
        """Model price and vega at ``vol``."""
        sig_t = vol * self.sqrt_t
        d1 = self.log_forward_moneyness / sig_t + 0.5 * sig_t
        d2 = d1 - sig_t
        model = self.w * (self.spot_q * norm_cdf(self.w * d1) - self.strike_r * norm_cdf(self.w * d2))
        return model, self.spot_q * norm_pdf(d1) * self.sqrt_t

    def initial_guess(self) -> Floats:
        """Corrado–Miller (1996): good near the money, a usable start elsewhere once clipped."""
        call = np.where(self.w > 0, self.price, self.price + self.spot_q - self.strike_r)  # parity
        gap = self.spot_q - self.strike_r
        excess = call - 0.5 * gap
        root = np.sqrt(np.maximum(excess * excess - gap * gap / math.pi, 0.0))
        guess = math.sqrt(2.0 * math.pi) / (self.spot_q + self.strike_r) * (excess + root) / self.sqrt_t
        return np.clip(np.nan_to_num(guess, nan=0.5), 2.0 * VOL_MIN, 0.5 * VOL_MAX)


def _solve(problem: _Problem) -> tuple[Floats, NDArray[np.bool_]]:
    """Safeguarded Newton (Numerical Recipes' ``rtsafe`` rule) over all rows at once.

    Rows leave the working set as they converge, so the late iterations run on the few hard contracts.
    """
    n = problem.price.size
    found = np.full(n, np.nan)
    converged = np.zeros(n, dtype=np.bool_)
    active = np.arange(n)
    vol = problem.initial_guess()
    low, high = np.full(n, VOL_MIN), np.full(n, VOL_MAX)
    last_step = high - low
    for _ in range(MAX_ITERATIONS):
        if active.size == 0:
            break
        model, vega = problem.price_at(vol)
        error = model - problem.price
        # Accurate in price and in vol: the next Newton step would move the vol by less than VOL_TOL.
        close = (np.abs(error) <= problem.tol) & (np.abs(error) <= VOL_TOL * vega)
        # The price rises with vol: the root lies below a vol that overprices.
        high = np.where(error > 0, vol, high)
        low = np.where(error > 0, low, vol)
        newton = vol - error / vega
        bisect = ~((newton > low) & (newton < high)) | ~(np.abs(2.0 * error) <= np.abs(last_step * vega))
        step_to = np.where(bisect, 0.5 * (low + high), newton)
        last_step = step_to - vol
        done = close | (np.abs(last_step) <= VOL_TOL)
        result = np.where(close, vol, step_to)
        found[active[done]] = result[done]
        converged[active[done]] = True
        keep = ~done
        active, vol, low, high, last_step = (
            active[keep],
            step_to[keep],
            low[keep],
            high[keep],
            last_step[keep],
        )
        problem = problem.take(keep)
    return found, converged
