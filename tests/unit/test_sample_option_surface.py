"""Sample option prices against the recorded volatility surface, and the options-contracts REST table.

An independent scalar Black-Scholes-Merton and ``scipy.optimize.brentq`` recover the implied volatility
of every day open and close and compare it with the volatility ``sample.json`` says generated it. Times
to expiry come from zoneinfo and exchange_calendars' XNYS closes (early closes included), never from
the code under test: expiration at the expiration date's close, the day close observed at the session's
close, the day open at 09:30 ET and a minute bar at its end.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import math
import re
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import pandas as pd
import pytest
from scipy.optimize import brentq

from quantmini.core.reference import options_contracts_from_payload
from quantmini.sample import generate_sample

START, END = dt.date(2025, 11, 24), dt.date(2025, 12, 5)
OCC = re.compile(r"^O:([A-Z0-9.]+?)(\d{6})([CP])(\d{8})$")
MIN_TICKS = 5  # premiums or time values below this many ticks say little about volatility
NEW_YORK = ZoneInfo("America/New_York")
NS = 1_000_000_000
YEAR_NS = 365 * 86_400 * NS


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("surface")
    generate_sample(
        root,
        START,
        END,
        tickers=10,
        seed=11,
        data_types=("stocks_daily", "options_daily", "options_minute"),
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


def stock_prices(out: Path, column: str) -> dict[tuple[str, str], float]:
    """``column`` per (ticker, session) from the stock files, rows stamped on another session dropped."""
    stocks = day_rows(out, "us_stocks_sip/day_aggs_v1")
    stamped = pd.to_datetime(stocks["window_start"], unit="ns", utc=True).dt.tz_convert("America/New_York")
    stocks = stocks[stamped.dt.strftime("%Y-%m-%d") == stocks["session"]].drop_duplicates(
        ["ticker", "session"]
    )
    return {
        (t, s): float(c) for t, s, c in zip(stocks["ticker"], stocks["session"], stocks[column], strict=True)
    }


def wall_ns(day: dt.date, hour: int, minute: int) -> int:
    """UTC nanoseconds of a New York wall time."""
    return int(dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=NEW_YORK).timestamp()) * NS


@cache
def xnys() -> Any:
    return xcals.get_calendar("XNYS", start="2025-01-02", end="2026-12-31")


def close_ns(day: dt.date) -> int:
    """The day's regular close (early closes included); 16:00 ET on a day that is not a session."""
    stamp = pd.Timestamp(day)
    if xnys().is_session(stamp):
        return int(xnys().session_close(stamp).value)
    return wall_ns(day, 16, 0)


def years(expiration: dt.date, observed_ns: int) -> float:
    return (close_ns(expiration) - observed_ns) / YEAR_NS


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


@cache
def contract_inputs(out: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (contract, session) traded: spots at the day open and close, strike, side, rate, yield, the
    expiration and the generating volatility (the surface at the day close), from the files and
    ``sample.json`` only."""
    rec = record(out)["options"]
    pricing = rec["pricing"]
    opens, closes = stock_prices(out, "open"), stock_prices(out, "close")
    options = day_rows(out, "us_options_opra/day_aggs_v1")
    inputs = {}
    for ticker, session in zip(options["ticker"], options["session"], strict=True):
        match = OCC.match(ticker)
        assert match is not None, ticker
        root, yymmdd, kind, strike_text = match.groups()
        spec = rec["roots"][root]
        name = spec["underlying"]
        scale = spec["shares_per_contract"] / 100
        if spec["index"]:
            level = rec["index_levels"][name][session]
            spot_open, spot_close = level["open"] * scale, level["close"] * scale
        else:
            spot_open, spot_close = opens[name, session] * scale, closes[name, session] * scale
        strike = int(strike_text) / 1000
        expiration = dt.datetime.strptime(yymmdd, "%y%m%d").date()
        t = max(years(expiration, close_ns(dt.date.fromisoformat(session))), pricing["surface_min_years"])
        r, q = pricing["rate"], pricing["dividend_yield"][name]
        surface = pricing["surfaces"][name]
        x = math.log(strike / (spot_close * math.exp((r - q) * t)))
        sigma = (
            pricing["atm_vol"][name][session]
            * (1 + surface["term"] * math.log(t / pricing["reference_years"]))
            * (1 + surface["skew"] * x + surface["curvature"] * x * x)
        )
        inputs[ticker, session] = {
            "root": root,
            "spot_open": spot_open,
            "spot_close": spot_close,
            "strike": strike,
            "expiration": expiration,
            "call": kind == "C",
            "r": r,
            "q": q,
            "sigma": sigma,
            "tick": pricing["tick"],
        }
    return inputs


def priced_days(out: Path) -> list[dict[str, Any]]:
    """Every day open (observed 09:30 ET, opening spot) and close (observed at the session's close,
    closing spot) with its pricing inputs; ``t`` is the time to expiry at the observation."""
    inputs = contract_inputs(out)
    options = day_rows(out, "us_options_opra/day_aggs_v1")
    rows = []
    for ticker, session_text, open_, close in zip(
        options["ticker"], options["session"], options["open"], options["close"], strict=True
    ):
        row = inputs[ticker, session_text]
        session = dt.date.fromisoformat(session_text)
        for side, price, observed in (
            ("open", open_, wall_ns(session, 9, 30)),
            ("close", close, close_ns(session)),
        ):
            t = years(row["expiration"], observed)
            rows.append(
                row
                | {"ticker": ticker, "session": session, "side": side, "price": float(price)}
                | {"spot": row[f"spot_{side}"], "t": t}
            )
    return rows


def expected_price(row: dict[str, Any]) -> float:
    """The model premium (intrinsic value once expired) with the one-tick floor, before tick rounding."""
    s, k, t, call = row["spot"], row["strike"], row["t"], row["call"]
    if t <= 0:
        model = max(s - k if call else k - s, 0.0)
    else:
        model = bsm(s, k, t, row["r"], row["q"], row["sigma"], call)
    return max(model, row["tick"])


def test_day_prices_are_bsm_of_the_recorded_surface_rounded_to_the_tick(out: Path) -> None:
    rows = priced_days(out)
    live = [row for row in rows if row["t"] > 0]
    for row in live:
        model = expected_price(row)
        assert abs(model - row["price"]) <= row["tick"] / 2 + 1e-9, (row, model)
    assert {row["side"] for row in live} == {"open", "close"}
    assert len([row for row in live if row["price"] >= 2 * row["tick"]]) >= len(live) // 2


def test_expiration_day_closes_are_intrinsic_and_opens_are_not(out: Path) -> None:
    rows = [row for row in priced_days(out) if row["expiration"] == row["session"]]
    closes = [row for row in rows if row["side"] == "close"]
    for row in closes:
        s, k = row["spot"], row["strike"]
        intrinsic = max(s - k if row["call"] else k - s, 0.0)
        ticks = max(round(intrinsic / row["tick"]), 1)
        assert row["t"] == 0.0
        assert abs(row["price"] - ticks * row["tick"]) <= 1e-9, (row, intrinsic)
    # both of the range's expiration Fridays, the 13:00 close after Thanksgiving among them
    assert {row["session"] for row in closes} == {dt.date(2025, 11, 28), dt.date(2025, 12, 5)}
    assert sum(row["price"] > 2 * row["tick"] for row in closes) >= 10
    # the same contracts at 09:30 still hold time value: at least one open exceeds its intrinsic value
    opens = [row for row in rows if row["side"] == "open"]
    assert all(row["t"] > 0 for row in opens)
    time_value = [
        row["price"] - max(row["spot"] - row["strike"] if row["call"] else row["strike"] - row["spot"], 0.0)
        for row in opens
    ]
    assert max(time_value) >= MIN_TICKS * opens[0]["tick"]


def test_first_and_last_regular_minutes_price_at_the_bar_end(out: Path) -> None:
    """The underlying's minute path starts at the day open and ends at the day close, so the bars of the
    first (09:30) and last regular minute are priced at known spots, at the bar's end (start + 60 s)."""
    inputs = contract_inputs(out)
    minutes = day_rows(out, "us_options_opra/minute_aggs_v1")
    checked = {"first": 0, "last": 0, "expired": 0}
    for ticker, session_text, start, close in zip(
        minutes["ticker"], minutes["session"], minutes["window_start"], minutes["close"], strict=True
    ):
        session = dt.date.fromisoformat(session_text)
        end = int(start) + 60 * NS
        if int(start) == wall_ns(session, 9, 30):
            which, spot_side = "first", "spot_open"
        elif end == close_ns(session):
            which, spot_side = "last", "spot_close"
        else:
            continue
        row = inputs[ticker, session_text]
        t = years(row["expiration"], end)
        model = expected_price(row | {"spot": row[spot_side], "t": t})
        assert abs(model - float(close)) <= row["tick"] / 2 + 1e-9, (ticker, session, which, close, model)
        checked[which] += 1
        checked["expired"] += t <= 0
    assert checked["first"] >= 20, checked
    assert checked["last"] >= 20, checked
    assert checked["expired"] >= 1, checked


def test_implied_vol_recovers_the_generating_vol(out: Path) -> None:
    rows = [row for row in priced_days(out) if row["t"] > 0]
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
