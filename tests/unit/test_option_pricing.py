"""Black–Scholes–Merton prices, greeks and implied vols against a scalar reference written here.

The reference prices one contract at a time with a normal CDF from :func:`math.erf` / :func:`math.erfc`,
finds vols with :func:`scipy.optimize.brentq` and greeks by central differences of its own price; the
identities (put–call parity) need no model at all.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.optimize import brentq

from quantmini.core import option_pricing
from quantmini.core.option_pricing import IV_REASONS, bsm_price, greeks, implied_vol, norm_cdf

SPOT = 100.0
MONEYNESS = (0.3, 0.5, 0.8, 0.95, 1.0, 1.05, 1.25, 2.0, 3.0)  # K / S
EXPIRIES = (1 / 365, 7 / 365, 30 / 365, 0.25, 1.0, 2.0)
VOLS = (0.05, 0.2, 0.5, 1.0, 3.0)
RATES = ((0.05, 0.02), (-0.005, 0.03))  # (r, q)


def ref_cdf(x: float) -> float:
    # erfc keeps relative precision in the lower tail, where 1 + erf(x) would cancel.
    return 0.5 * math.erfc(-x / math.sqrt(2.0)) if x < 0 else 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def ref_price(call: bool, s: float, k: float, t: float, vol: float, r: float, q: float) -> float:
    fwd_s, fwd_k = s * math.exp(-q * t), k * math.exp(-r * t)
    sd = vol * math.sqrt(t)
    d1 = math.log(fwd_s / fwd_k) / sd + sd / 2
    d2 = d1 - sd
    if call:
        return fwd_s * ref_cdf(d1) - fwd_k * ref_cdf(d2)
    return fwd_k * ref_cdf(-d2) - fwd_s * ref_cdf(-d1)


def ref_vega(s: float, k: float, t: float, vol: float, r: float, q: float) -> float:
    sd = vol * math.sqrt(t)
    d1 = (math.log(s / k) + (r - q) * t) / sd + sd / 2
    return s * math.exp(-q * t) * math.exp(-d1 * d1 / 2) / math.sqrt(2 * math.pi) * math.sqrt(t)


def grid() -> dict[str, np.ndarray]:
    rows = list(itertools.product((True, False), MONEYNESS, EXPIRIES, VOLS, RATES))
    return {
        "call": np.array([c for c, *_ in rows]),
        "strike": np.array([SPOT * m for _, m, *_ in rows]),
        "t": np.array([t for _, _, t, _, _ in rows]),
        "vol": np.array([v for *_, v, _ in rows]),
        "r": np.array([rq[0] for *_, rq in rows]),
        "q": np.array([rq[1] for *_, rq in rows]),
    }


def ref_prices(g: dict[str, np.ndarray], vol: np.ndarray | None = None) -> np.ndarray:
    vols = g["vol"] if vol is None else vol
    return np.array(
        [
            ref_price(bool(c), SPOT, k, t, v, r, q)
            for c, k, t, v, r, q in zip(g["call"], g["strike"], g["t"], vols, g["r"], g["q"], strict=True)
        ]
    )


def test_norm_cdf_matches_erf_to_double_precision() -> None:
    x = np.linspace(-38.0, 9.5, 100_003)
    expected = np.array([ref_cdf(v) for v in x])
    got = norm_cdf(x)
    np.testing.assert_allclose(got, expected, rtol=5e-13, atol=1e-300)  # subnormals: absolute
    assert norm_cdf(-40.0) == 0.0
    assert norm_cdf(12.0) == 1.0
    assert math.isnan(norm_cdf(float("nan")))


def test_prices_match_the_scalar_reference_on_the_grid() -> None:
    g = grid()
    got = bsm_price(g["call"], SPOT, g["strike"], g["t"], g["vol"], g["r"], g["q"])
    np.testing.assert_allclose(got, ref_prices(g), rtol=1e-12, atol=1e-12 * SPOT)


def test_put_call_parity() -> None:
    g = grid()
    args = (SPOT, g["strike"], g["t"], g["vol"], g["r"], g["q"])
    call, put = bsm_price(True, *args), bsm_price(False, *args)
    forward_gap = SPOT * np.exp(-g["q"] * g["t"]) - g["strike"] * np.exp(-g["r"] * g["t"])
    np.testing.assert_allclose(call - put, forward_gap, rtol=0, atol=1e-12 * SPOT * 3)


def test_limits_at_expiry_and_without_vol() -> None:
    # Expired: intrinsic value. No vol: the discounted forward's intrinsic value. Negative vol: NaN.
    got = bsm_price([True, False, True, False], 100.0, [90.0, 90.0, 110.0, 110.0], 0.0, 0.3, 0.05, 0.0)
    np.testing.assert_array_equal(got, [10.0, 0.0, 0.0, 10.0])
    got = bsm_price(True, 100.0, 90.0, 1.0, 0.0, 0.05, 0.02)
    assert got == pytest.approx(100 * math.exp(-0.02) - 90 * math.exp(-0.05), rel=1e-15)
    assert math.isnan(bsm_price(True, 100.0, 90.0, 1.0, -0.1, 0.05, 0.02))
    assert math.isnan(bsm_price(True, 100.0, 90.0, 1.0, float("nan"), 0.05, 0.02))


def test_arrays_broadcast() -> None:
    strikes = np.array([[90.0], [100.0], [110.0]])
    vols = np.array([0.1, 0.2, 0.3, 0.4])
    got = bsm_price(np.array([True, False, True, False]), 100.0, strikes, 0.5, vols, 0.03, 0.01)
    assert got.shape == (3, 4)
    assert got[2, 1] == pytest.approx(ref_price(False, 100.0, 110.0, 0.5, 0.2, 0.03, 0.01), rel=1e-13)
    iv, reason = implied_vol(got, np.array([True, False, True, False]), 100.0, strikes, 0.5, 0.03, 0.01)
    assert iv.shape == reason.shape == (3, 4)
    np.testing.assert_allclose(iv, np.broadcast_to(vols, (3, 4)), atol=1e-7)


def test_is_call_must_be_booleans() -> None:
    with pytest.raises(TypeError, match="is_call"):
        bsm_price(np.array(["call"]), 100.0, 100.0, 1.0, 0.2, 0.0, 0.0)


def test_greeks_match_central_differences_of_the_reference() -> None:
    # Steps and tolerances follow each greek's natural scale (σ√T·S is the width of the price's kink):
    # a wrong term in a formula is off by far more than 1e-7 of it.
    g = grid()
    got = greeks(g["call"], SPOT, g["strike"], g["t"], g["vol"], g["r"], g["q"])
    for i in range(g["t"].size):
        c, k, t, v, r, q = (g[name][i] for name in ("call", "strike", "t", "vol", "r", "q"))

        contract = (bool(c), k, r, q)

        def price(s: float = SPOT, t: float = t, v: float = v, contract: tuple = contract) -> float:
            call, k, r, q = contract
            return ref_price(call, s, k, t, v, r, q)

        width = SPOT * v * math.sqrt(t)
        h_delta, h_gamma, h_vol, h_t = 1e-4 * width, 1e-3 * width, 1e-5 * v, 1e-5 * t
        delta = (price(s=SPOT + h_delta) - price(s=SPOT - h_delta)) / (2 * h_delta)
        gamma = (price(s=SPOT + h_gamma) - 2 * price() + price(s=SPOT - h_gamma)) / h_gamma**2
        vega = (price(v=v + h_vol) - price(v=v - h_vol)) / (2 * h_vol)
        theta_day = -(price(t=t + h_t) - price(t=t - h_t)) / (2 * h_t) / 365
        context = f"call={c} K={k} t={t} vol={v} r={r} q={q}"
        assert abs(got.delta[i] - delta) <= 1e-7, context
        assert abs(got.gamma[i] - gamma) <= 1e-5 / width, context
        assert abs(got.vega[i] - vega) <= 1e-7 * SPOT * math.sqrt(t), context
        assert abs(got.theta[i] - theta_day) <= 1e-7 * width / t / 365, context


def test_greeks_parity_and_units() -> None:
    g = grid()
    args = (SPOT, g["strike"], g["t"], g["vol"], g["r"], g["q"])
    call, put = greeks(True, *args), greeks(False, *args)
    disc_q, disc_r = np.exp(-g["q"] * g["t"]), np.exp(-g["r"] * g["t"])
    np.testing.assert_allclose(call.delta - put.delta, disc_q, atol=1e-12)
    np.testing.assert_allclose(call.gamma, put.gamma, rtol=1e-12)
    np.testing.assert_allclose(call.vega, put.vega, rtol=1e-12)
    # d(C - P)/d(calendar day) = (q·S·e^(-qT) - r·K·e^(-rT)) / 365
    expected = (g["q"] * SPOT * disc_q - g["r"] * g["strike"] * disc_r) / 365
    np.testing.assert_allclose(call.theta - put.theta, expected, atol=1e-12)
    # Vega per 1.00 vol: an ATM one-year option with zero carry has vega S·φ(σ/2) ≈ 0.4·S.
    atm = greeks(True, 100.0, 100.0, 1.0, 0.2, 0.0, 0.0)
    assert atm.vega == pytest.approx(100 * math.exp(-0.01 / 2) / math.sqrt(2 * math.pi), rel=1e-12)


def test_greeks_are_undefined_at_expiry_and_without_vol() -> None:
    got = greeks(True, 100.0, 100.0, np.array([0.0, 1.0, -1.0]), np.array([0.2, 0.0, 0.2]), 0.05, 0.0)
    for values in got:
        assert np.isnan(values).all()


def test_implied_vol_round_trips_on_the_grid() -> None:
    # Rule: where the reference vega exceeds 1e-4·S the vol comes back within 1e-6 of the one that made
    # the price; elsewhere (vol barely moves the price) the reference price at the returned vol matches
    # the quote within 1e-8·max(1, price). A contract without a vol must be one whose price is, to
    # double precision, its value at VOL_MIN (the quote says nothing about vol).
    g = grid()
    prices = ref_prices(g)
    iv, reason = implied_vol(prices, g["call"], SPOT, g["strike"], g["t"], g["r"], g["q"])
    assert set(reason.tolist()) <= {"", "vol_below_range", "no_price"}
    assert np.isnan(iv[reason != ""]).all()
    assert np.isfinite(iv[reason == ""]).all()
    recovered = 0
    for i in range(iv.size):
        c, k, t, v, r, q = (g[name][i] for name in ("call", "strike", "t", "vol", "r", "q"))
        c, price = bool(c), prices[i]
        vega = ref_vega(SPOT, k, t, v, r, q)
        context = f"call={c} K={k} t={t} vol={v} r={r} q={q} price={price} reason={reason[i]}"
        if reason[i] == "no_price":
            assert price <= 0, context
        elif reason[i] == "vol_below_range":
            assert ref_price(c, SPOT, k, t, option_pricing.VOL_MIN, r, q) >= price - 1e-13 * SPOT, context
        elif vega > 1e-4 * SPOT:
            assert abs(iv[i] - v) <= 1e-6, context
            recovered += 1
        else:
            assert abs(ref_price(c, SPOT, k, t, iv[i], r, q) - price) <= 1e-8 * max(1.0, price), context
    assert recovered > 0.6 * iv.size


def test_implied_vol_agrees_with_brentq() -> None:
    g = grid()
    prices = ref_prices(g)
    iv, reason = implied_vol(prices, g["call"], SPOT, g["strike"], g["t"], g["r"], g["q"])
    checked = 0
    for i in np.flatnonzero(reason == ""):
        c, k, t, v, r, q = (g[name][i] for name in ("call", "strike", "t", "vol", "r", "q"))
        if ref_vega(SPOT, k, t, v, r, q) <= 1e-4 * SPOT:
            continue
        args = (bool(c), SPOT, k, t)
        expected = brentq(
            lambda s, a=args, r=r, q=q, p=prices[i]: ref_price(*a, s, r, q) - p, 1e-4, 5.0, xtol=1e-12
        )
        assert iv[i] == pytest.approx(expected, abs=1e-6)
        checked += 1
    assert checked > 500


@pytest.mark.parametrize("t", [1e-6, 1 / (365 * 24), 1 / 365])
@pytest.mark.parametrize("call", [True, False])
def test_near_expiry_contracts(t: float, call: bool) -> None:
    strikes = np.array([97.0, 99.5, 100.0, 100.5, 103.0])
    vols = np.array([0.8, 0.3, 0.25, 0.3, 0.8])
    prices = np.array(
        [ref_price(call, 100.0, k, t, v, 0.05, 0.01) for k, v in zip(strikes, vols, strict=True)]
    )
    iv, reason = implied_vol(prices, call, 100.0, strikes, t, 0.05, 0.01)
    for i, k in enumerate(strikes):
        if reason[i] == "":
            vega = ref_vega(100.0, k, t, vols[i], 0.05, 0.01)
            if vega > 1e-4 * 100.0:
                assert iv[i] == pytest.approx(vols[i], abs=1e-6)
            else:
                assert ref_price(call, 100.0, k, t, iv[i], 0.05, 0.01) == pytest.approx(prices[i], abs=1e-8)
        else:
            assert reason[i] in ("vol_below_range", "no_price")
    assert reason[2] == ""  # at the money, the vol is always there to find
    assert iv[2] == pytest.approx(0.25, abs=1e-6)


def test_every_reason() -> None:
    s, k, t, r, q = 100.0, 100.0, 1.0, 0.05, 0.02
    fwd_s, fwd_k = s * math.exp(-q * t), k * math.exp(-r * t)
    cases = [
        # (price, call, spot, strike, t, expected reason)
        (10.0, True, -1.0, k, t, "invalid_input"),
        (10.0, True, s, float("nan"), t, "invalid_input"),
        (10.0, True, s, k, float("inf"), "invalid_input"),
        (10.0, True, s, k, 0.0, "expired"),
        (10.0, False, s, k, -0.1, "expired"),
        (float("nan"), True, s, k, t, "no_price"),
        (0.0, False, s, k, t, "no_price"),
        (-1.0, True, s, k, t, "no_price"),
        # A 50-strike call is worth at least S·e^(-qT) - K·e^(-rT) ≈ 50.46.
        (50.0, True, s, 50.0, t, "below_intrinsic"),
        # A 150-strike put: at least K·e^(-rT) - S·e^(-qT) ≈ 44.66.
        (44.0, False, s, 150.0, t, "below_intrinsic"),
        (fwd_s, True, s, k, t, "above_upper_bound"),
        (fwd_k + 1.0, False, s, k, t, "above_upper_bound"),
        # Within the bounds, but the vol would be below 1e-4 (ATM: vol ≈ price·√(2π) / (S·√T)) ...
        (1e-4, True, s, s * math.exp((r - q) * t), t, "vol_below_range"),
        # ... or above 5 (the 5.0-vol price is below the quote).
        (ref_price(True, s, k, t, 5.0, r, q) + 0.1, True, s, k, t, "vol_above_range"),
        (ref_price(False, s, k, t, 5.0, r, q) + 0.1, False, s, k, t, "vol_above_range"),
        (ref_price(True, s, k, t, 0.3, r, q), True, s, k, t, ""),
    ]
    price, call, spot, strike, expiry, expected = (np.array(column) for column in zip(*cases, strict=True))
    iv, reason = implied_vol(price, call.astype(bool), spot, strike, expiry, r, q)
    assert reason.tolist() == expected.tolist()
    assert np.isnan(iv[reason != ""]).all()
    assert iv[-1] == pytest.approx(0.3, abs=1e-7)
    assert set(reason.tolist()) | {"no_convergence"} == set(IV_REASONS)


def test_no_convergence_within_the_iteration_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    # A deep out-of-the-money quote needs bisection steps; with one iteration allowed it cannot converge,
    # and it must then get a reason rather than the last iterate.
    price = ref_price(True, 100.0, 250.0, 0.5, 0.9, 0.03, 0.0)
    monkeypatch.setattr(option_pricing, "MAX_ITERATIONS", 1)
    iv, reason = implied_vol(price, True, 100.0, 250.0, 0.5, 0.03, 0.0)
    assert reason == "no_convergence"
    assert np.isnan(iv)
    monkeypatch.undo()
    iv, reason = implied_vol(price, True, 100.0, 250.0, 0.5, 0.03, 0.0)
    assert reason == ""
    assert iv == pytest.approx(0.9, abs=1e-6)
