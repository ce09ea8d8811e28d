"""Sample option prices against the recorded volatility surface, and the options-contracts REST table.

An independent scalar Black-Scholes-Merton and ``scipy.optimize.brentq`` recover the implied volatility
of every day close and compare it with the volatility ``sample.json`` says generated it.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import math
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from scipy.optimize import brentq

from quantmini.core.reference import options_contracts_from_payload
from quantmini.sample import generate_sample

START, END = dt.date(2025, 11, 24), dt.date(2025, 12, 5)
OCC = re.compile(r"^O:([A-Z0-9.]+?)(\d{6})([CP])(\d{8})$")
MIN_TICKS = 5  # premiums or time values below this many ticks say little about volatility


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("surface")
    generate_sample(
        root,
        START,
        END,
        tickers=10,
        seed=11,
        data_types=("stocks_daily", "options_daily"),
        option_underlyings=4,
    )
    return root


def record(out: Path) -> dict[str, Any]:
    return dict(json.loads((out / "sample.json").read_text()))


def day_rows(out: Path, prefix: str) -> pd.DataFrame:
    parts = []
    for path in sorted((out / "flatfiles" / prefix).rglob("*.csv.gz")):
        frame = pd.read_csv(io.StringIO(gzip.decompress(path.read_bytes()).decode()), dtype={"ticker": str})
        frame["session"] = path.name[:10]
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)


def stock_closes(out: Path) -> dict[tuple[str, str], float]:
    """Close per (ticker, session) from the stock files, rows stamped on another session dropped."""
    stocks = day_rows(out, "us_stocks_sip/day_aggs_v1")
    stamped = pd.to_datetime(stocks["window_start"], unit="ns", utc=True).dt.tz_convert("America/New_York")
    stocks = stocks[stamped.dt.strftime("%Y-%m-%d") == stocks["session"]].drop_duplicates(
        ["ticker", "session"]
    )
    return {
        (t, s): float(c) for t, s, c in zip(stocks["ticker"], stocks["session"], stocks["close"], strict=True)
    }


def norm_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def bsm(spot: float, strike: float, t: float, r: float, q: float, sigma: float, call: bool) -> float:
    d1 = (math.log(spot / strike) + (r - q + sigma * sigma / 2) * t) / (sigma * math.sqrt(t))
    d2 = d1 - sigma * math.sqrt(t)
    if call:
        return spot * math.exp(-q * t) * norm_cdf(d1) - strike * math.exp(-r * t) * norm_cdf(d2)
    return strike * math.exp(-r * t) * norm_cdf(-d2) - spot * math.exp(-q * t) * norm_cdf(-d1)


def premium_gap(
    sigma: float, spot: float, strike: float, t: float, r: float, q: float, call: bool, price: float
) -> float:
    return bsm(spot, strike, t, r, q, sigma, call) - price


def vega(spot: float, strike: float, t: float, r: float, q: float, sigma: float) -> float:
    d1 = (math.log(spot / strike) + (r - q + sigma * sigma / 2) * t) / (sigma * math.sqrt(t))
    return spot * math.exp(-q * t) * math.exp(-d1 * d1 / 2) / math.sqrt(2 * math.pi) * math.sqrt(t)


def priced_closes(out: Path) -> list[dict[str, Any]]:
    """Every day close with its pricing inputs, read from the files and ``sample.json`` only."""
    rec = record(out)["options"]
    pricing = rec["pricing"]
    closes = stock_closes(out)
    options = day_rows(out, "us_options_opra/day_aggs_v1")
    rows = []
    for ticker, session, close in zip(options["ticker"], options["session"], options["close"], strict=True):
        match = OCC.match(ticker)
        assert match is not None, ticker
        root, yymmdd, kind, strike_text = match.groups()
        spec = rec["roots"][root]
        name = spec["underlying"]
        level = rec["index_levels"][name][session]["close"] if spec["index"] else closes[name, session]
        spot = level * spec["shares_per_contract"] / 100
        strike = int(strike_text) / 1000
        expiration = dt.datetime.strptime(yymmdd, "%y%m%d").date()
        t = ((expiration - dt.date.fromisoformat(session)).days + 0.5) / 365
        r, q = pricing["rate"], pricing["dividend_yield"][name]
        surface = pricing["surfaces"][name]
        x = math.log(strike / (spot * math.exp((r - q) * t)))
        sigma = (
            pricing["atm_vol"][name][session]
            * (1 + surface["term"] * math.log(t / pricing["reference_years"]))
            * (1 + surface["skew"] * x + surface["curvature"] * x * x)
        )
        rows.append(
            {"ticker": ticker, "root": root, "price": float(close), "spot": spot, "strike": strike, "t": t}
            | {"r": r, "q": q, "sigma": sigma, "call": kind == "C", "tick": pricing["tick"]}
        )
    return rows


def test_day_closes_are_bsm_of_the_recorded_surface_rounded_to_the_tick(out: Path) -> None:
    rows = priced_closes(out)
    checked = 0
    for row in rows:
        if row["price"] < 2 * row["tick"]:
            continue  # a one-tick floor is not a rounding of the model price
        model = bsm(row["spot"], row["strike"], row["t"], row["r"], row["q"], row["sigma"], row["call"])
        assert abs(model - row["price"]) <= row["tick"] / 2 + 1e-9, (row, model)
        checked += 1
    assert checked >= len(rows) // 2


def test_implied_vol_recovers_the_generating_vol(out: Path) -> None:
    rows = priced_closes(out)
    recovered: dict[str, int] = {}
    for row in rows:
        s, k, t, r, q, call = row["spot"], row["strike"], row["t"], row["r"], row["q"], row["call"]
        tick = row["tick"]
        forward_value = s * math.exp(-q * t) - k * math.exp(-r * t)
        bound = max(forward_value if call else -forward_value, 0.0)
        if row["price"] < MIN_TICKS * tick or row["price"] - bound < MIN_TICKS * tick:
            continue
        implied = brentq(premium_gap, 1e-4, 5.0, args=(s, k, t, r, q, call, row["price"]))
        # |BSM(true) - close| <= tick / 2 and vega is unimodal in sigma, so by the mean value theorem
        # |implied - true| <= (tick / 2) / (the smaller vega at the two ends).
        slope = min(vega(s, k, t, r, q, implied), vega(s, k, t, r, q, row["sigma"]))
        tolerance = tick / 2 / slope + 1e-9
        assert abs(implied - row["sigma"]) <= tolerance, (row, implied, tolerance)
        recovered[row["root"]] = recovered.get(row["root"], 0) + 1
    record_roots = set(record(out)["options"]["roots"])
    assert set(recovered) == record_roots, (recovered, record_roots)
    assert sum(recovered.values()) >= len(rows) // 3


def contracts_json(out: Path) -> dict[str, Any]:
    return dict(json.loads((out / "rest/v3/reference/options/contracts.json").read_text()))


def test_contracts_table_maps_index_class_share_and_adjusted_roots(out: Path) -> None:
    payload = contracts_json(out)
    assert payload["status"] == "OK"
    by_root: dict[str, list[dict[str, Any]]] = {}
    for result in payload["results"]:
        match = OCC.match(result["ticker"])
        assert match is not None
        by_root.setdefault(match.group(1), []).append(result)
        assert result["strike_price"] == int(match.group(4)) / 1000
        assert result["contract_type"] == {"C": "call", "P": "put"}[match.group(3)]
        assert result["expiration_date"] == dt.datetime.strptime(match.group(2), "%y%m%d").date().isoformat()
    assert {r["underlying_ticker"] for r in by_root["SPXW"] + by_root["SPX"]} == {"SPX"}
    assert {r["exercise_style"] for r in by_root["SPXW"] + by_root["SPX"]} == {"european"}
    assert {r["underlying_ticker"] for r in by_root["BRKB"]} == {"BRK.B"}
    adjusted = record(out)["options"]["adjusted_roots"]
    assert adjusted
    for root in adjusted:
        underlying = root.rstrip("0123456789")
        for result in by_root[root]:
            assert result["underlying_ticker"] == underlying
            assert result["shares_per_contract"] == 1000  # 100 x the sample's 1:10 split
            assert result["additional_underlyings"] == [
                {"amount": 1000, "type": "equity", "underlying": underlying}
            ]
    standard = [r for root, rs in by_root.items() if root not in adjusted for r in rs]
    assert {r["shares_per_contract"] for r in standard} == {100}
    assert all("additional_underlyings" not in r for r in standard)
    assert len(options_contracts_from_payload(payload)) == len(payload["results"])


def test_contracts_table_omits_exactly_the_recorded_contracts(out: Path) -> None:
    traded = set(day_rows(out, "us_options_opra/day_aggs_v1")["ticker"])
    listed = {r["ticker"] for r in contracts_json(out)["results"]}
    unlisted = set(record(out)["options"]["unlisted_contracts"])
    assert listed == traded - unlisted
    assert unlisted <= traded
    roots = {OCC.match(t).group(1) for t in unlisted}  # type: ignore[union-attr]
    adjusted = set(record(out)["options"]["adjusted_roots"])
    assert len(unlisted) == 4
    assert {"SPXW", "BRKB"} <= roots
    assert roots & adjusted
    assert roots - adjusted - {"SPXW", "BRKB", "SPX"}
