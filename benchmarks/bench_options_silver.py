"""Options silver on a realistic OPRA day: the per-contract transform, the per-underlying aggregates and
the pipeline's silver stage, each against the IV solver alone on the same arrays.

    uv run python benchmarks/bench_options_silver.py --workdir DIR [--contracts 1000000] [--repeat 3]

One session (2025-06-11, a Wednesday) is generated once per ``--workdir``:

* ~1 M option contracts on 5,000 underlyings with very skewed counts: the index and ETF complexes
  (SPX/SPXW, SPY, QQQ, IWM, NDX/NDXP, RUT/RUTW, VIX/VIXW) and a dozen single stocks carry 9-62 k
  contracts each, the rest follow a Zipf tail down to about a dozen. Expirations: daily for the index
  and ETF complexes (0DTE rows included), weeklies, monthlies for a year, LEAPS Januaries (some past
  the exchange calendar's known end); strikes at the listing increments ($1, $5 above $1,000, for the
  active names) spanning ±3 standard deviations of each expiry (deep ITM and OTM; a chain that would
  reach zero starts at the lowest increment instead). 1 % of the stocks also
  have an adjusted root (``XYZ1``, 150 shares); dotted class shares trade under their letters (``BRKB``).
* Closes are Black–Scholes–Merton values of a skewed smile (r = 4.5 %, per-underlying dividend yields
  given as ``options.dividend_yields``) with a little noise, rounded to the tick ($0.05 above $3 outside
  the penny names, else $0.01, at least $0.01); 0.3 % of deep ITM closes are stale, below intrinsic
  value; 3 % of the bars have zero volume.
* ~8,000 stock closes of the day (the optionable stocks but 1 % halted ones, and 3,000 others);
  indexes have none.
* The options-contracts reference holds 95 % of the day's contracts plus 20 % more that did not trade.

The lake is built with the pipeline itself: the vendor CSV files are written to a local mirror and the
landing and bronze stages run on them (a few seconds): the bronze partitions and manifests are then
exactly the ones a user's lake holds, contract fields and sort order included.

Each measurement runs in its own child interpreter, which reads its inputs and times one step (wall and
CPU seconds) while a thread samples its RSS every 20 ms; the table shows the RSS before the step (the
inputs, read) and the peak during it. Runs alternate between steps; medians of ``--repeat`` runs are
shown, all runs in brackets. The steps:

* ``solver``: ``implied_vol`` on the arrays the transform hands it (the rows that get past the
  transform's own checks), then ``greeks`` — the baseline of the ratios;
* ``transform``: ``options_daily_silver`` on a ``SessionWindow`` of the bronze rows, the stock closes,
  the reference and the settings;
* ``aggregates``: ``underlying_aggregates`` on the transform's output;
* ``engine``: ``PipelineRunner.build(last_stage="silver")`` after the lake's options silver is removed
  — plan, reads, both transforms, partition writes and manifests — at each of ``--budgets`` GB.

Also ``implied_vol`` against the scalar ``scipy.optimize.brentq`` loop of ``bench_option_iv.py`` on
10,000 of the solver's rows, (``--profile``) a cProfile of the transform, and (``--before SRC``) every
row but the solver's again with quantmini imported from another source tree, e.g. an earlier
commit's ``src`` (``git archive COMMIT src | tar -x -C DIR``).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import dataclasses
import datetime as dt
import io
import json
import math
import os
import pstats
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import polars as pl

from bench_engine_data import ticker_names
from bench_option_iv import RATE, best_of, scalar_iv
from bench_stage_memory import Sampler
from quantmini.config.settings import Settings
from quantmini.core.option_pricing import bsm_price, greeks, implied_vol
from quantmini.core.option_silver import options_daily_silver, underlying_aggregates
from quantmini.core.reference import OPTIONS_CONTRACTS_SCHEMA
from quantmini.core.window import SessionWindow
from quantmini.datasets import get_spec
from quantmini.io.lake import Lake
from quantmini.io.reference_store import load_reference, store_reference
from quantmini.io.source import LocalMirrorSource
from quantmini.pipeline.runner import PipelineReport, PipelineRunner
from quantmini.sample.csvformat import PRICE_SCALE, VOLUME_SCALE, format_rows, write_csv_gz
from quantmini.sample.options import strike_increment
from quantmini.sample.timeline import midnight_ns

SESSION = dt.date(2025, 6, 11)
FETCHED = dt.datetime(2025, 6, 11, 22, tzinfo=dt.UTC)
OPTIONS = get_spec("options_daily")
STOCKS = get_spec("stocks_daily")
#: Checks the transform makes before the solver: rows with one of these reasons never reach it.
BEFORE_SOLVER = ("unresolved_contract", "no_underlying_price", "zero_volume", "expiration_day", "expired")
STEPS = ("solver", "transform", "aggregates", "engine")
#: Functions whose cumulative time ``--profile`` reports (module stem, function).
PROFILED = (
    "option_contracts.with_deliverables",
    "option_pricing.implied_vol",
    "option_pricing.greeks",
    "option_silver._priced",
    "option_silver._trading_days",
)
T = TypeVar("T")

#: The heavy complexes: underlying → (roots, contracts, spot, ATM vol, index, daily expirations).
HEAVY: dict[str, tuple[tuple[str, ...], int, float, float, bool, bool]] = {
    "SPX": (("SPX", "SPXW"), 62_000, 6_020.0, 0.14, True, True),
    "SPY": (("SPY",), 58_000, 602.0, 0.14, False, True),
    "QQQ": (("QQQ",), 52_000, 532.0, 0.18, False, True),
    "IWM": (("IWM",), 30_000, 212.0, 0.21, False, True),
    "NDX": (("NDX", "NDXP"), 24_000, 21_700.0, 0.18, True, True),
    "TSLA": (("TSLA",), 24_000, 326.0, 0.62, False, False),
    "NVDA": (("NVDA",), 22_000, 142.0, 0.45, False, False),
    "RUT": (("RUT", "RUTW"), 16_000, 2_120.0, 0.21, True, True),
    "AAPL": (("AAPL",), 16_000, 198.0, 0.27, False, False),
    "AMZN": (("AMZN",), 15_000, 213.0, 0.31, False, False),
    "META": (("META",), 14_000, 694.0, 0.35, False, False),
    "MSFT": (("MSFT",), 13_000, 472.0, 0.24, False, False),
    "AMD": (("AMD",), 12_000, 121.0, 0.48, False, False),
    "PLTR": (("PLTR",), 11_000, 135.0, 0.75, False, False),
    "GOOGL": (("GOOGL",), 11_000, 177.0, 0.30, False, False),
    "VIX": (("VIX", "VIXW"), 9_000, 17.3, 0.95, True, False),
    "TLT": (("TLT",), 9_000, 86.5, 0.15, False, False),
    "SMCI": (("SMCI",), 9_000, 43.0, 0.85, False, False),
}


# --------------------------------------------------------------------------------------------- data

_Root = tuple[str, str, int, float, float, float, float, bool, bool, bool, bool]


def third_friday(year: int, month: int) -> dt.date:
    first = dt.date(year, month, 1)
    return first + dt.timedelta(days=(4 - first.weekday()) % 7 + 14)


def expirations(count: int, daily: bool) -> list[dt.date]:
    """Expirations listed on :data:`SESSION` for an underlying with ``count`` contracts."""
    weeks, months, leaps = (8, 12, 3) if count >= 20_000 else (6, 9, 2) if count >= 2_000 else (4, 6, 2)
    if count < 300:
        weeks, months, leaps = (2, 4, 1) if count >= 60 else (0, 3, 1)
    friday = SESSION + dt.timedelta(days=(4 - SESSION.weekday()) % 7)
    days = {friday + dt.timedelta(weeks=w) for w in range(weeks)}
    year, month = SESSION.year, SESSION.month
    for _ in range(months + 1):
        if (third := third_friday(year, month)) >= SESSION:
            days.add(third)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    days.update(third_friday(SESSION.year + 1 + k, 1) for k in range(leaps))
    if daily:
        days.update(SESSION + dt.timedelta(days=d) for d in range(21) if (SESSION.weekday() + d) % 7 < 5)
    if count >= 20_000:  # quarter ends and December LEAPS of the big complexes
        days.update({dt.date(2025, 6, 30), dt.date(2025, 9, 30), dt.date(2025, 12, 31)})
        days.update(third_friday(SESSION.year + 1 + k, 12) for k in range(leaps - 1))
    return sorted(d for d in days if d.weekday() < 5)


def tail_counts(rng: np.random.Generator, n: int, total: int) -> np.ndarray:
    """Zipf-like contract counts of ``n`` underlyings summing to about ``total`` (at least 10 each)."""
    weights = 1.0 / (np.arange(n) + 12.0) ** 1.15 * np.exp(rng.normal(0, 0.25, n))
    counts = np.maximum(10, np.round(weights / weights.sum() * total))
    for _ in range(5):
        counts = np.maximum(10, np.round(counts * (total / counts.sum())))
    return np.sort(counts.astype(np.int64))[::-1]


def chain(
    rng: np.random.Generator, count: int, spot: float, vol: float, daily: bool, monthly: bool, fine: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(expiration ordinals, strikes) of about ``count / 2`` strikes, each listed as a call and a put;
    ``monthly``: third Fridays only (``SPX`` beside ``SPXW``); ``fine``: the $1 ($5 above $1,000)
    increments of the most active names."""
    days = expirations(count, daily)
    if monthly:
        days = [d for d in days if d.weekday() == 4 and 15 <= d.day <= 21]
    dte = np.array([(d - SESSION).days for d in days], dtype=np.float64)
    weight = 1.0 / (1.0 + dte / 20.0) ** 0.35
    pairs = np.maximum(1, np.round(weight / weight.sum() * count / 2)).astype(int)
    step = strike_increment(spot) if not fine else 1.0 if spot < 1_000 else 5.0
    out_days, out_strikes = [], []
    for day, n, years in zip(days, pairs, np.maximum(dte, 0.5) / 365.0, strict=True):
        half = spot * min(0.95, max(0.04, 3.0 * vol * math.sqrt(years)))
        spacing = max(step, math.ceil(2 * half / n / step) * step)
        centre = (round(spot / step) + int(rng.integers(-1, 2))) * step
        lowest = max(step, centre - spacing * ((n - 1) // 2))  # a long chain shifts up from zero
        grid = np.round(lowest + spacing * np.arange(n), 3)
        out_days.append(np.full(grid.size, day.toordinal()))
        out_strikes.append(grid)
    return np.concatenate(out_days), np.concatenate(out_strikes)


def universe(
    rng: np.random.Generator, contracts: int, underlyings: int, stocks: int
) -> tuple[pl.DataFrame, list[str]]:
    """One row per OCC root (root, underlying, contracts, spot, vol, q, shares, index, daily, monthly,
    penny), and the stocks without options."""
    names = [n for n in ticker_names(stocks + 200, rng) if n not in HEAVY][: stocks - len(HEAVY)]
    order = rng.permutation(len(names))
    optionable = [names[i] for i in order[: underlyings - len(HEAVY)]]
    rows: list[_Root] = []
    for underlying, (roots, count, spot, vol, index, daily) in HEAVY.items():
        q = 0.013 if underlying in ("SPX", "SPY") else 0.006 if index or daily else 0.004
        share = [0.2, 0.8] if len(roots) == 2 else [1.0]
        for root, part in zip(roots, share, strict=True):
            monthly = len(roots) == 2 and root == underlying
            rows.append(
                (root, underlying, round(count * part), spot, vol, q, 100.0, index, daily, monthly, True)
            )
    tail = tail_counts(rng, len(optionable), contracts - sum(v[1] for v in HEAVY.values()))
    spots = np.exp(rng.normal(math.log(35), 1.0, len(optionable))).clip(1.5, 2500)
    vols = np.exp(rng.normal(math.log(0.45), 0.35, len(optionable))).clip(0.12, 2.5)
    yields = np.where(
        rng.random(len(optionable)) < 0.35, np.round(rng.uniform(0.005, 0.05, len(optionable)), 4), 0.0
    )
    for rank, (name, count, spot, vol, q) in enumerate(
        zip(optionable, tail, spots, vols, yields, strict=True)
    ):
        root, penny = name.replace(".", ""), rank < 400
        rows.append(
            (root, name, int(count), float(spot), float(vol), float(q), 100.0, False, False, False, penny)
        )
        if rng.random() < 0.01 and "." not in name:  # an adjusted root after a 3-for-2 split
            rows.append(
                (f"{root}1", name, 24, float(spot), float(vol), float(q), 150.0, False, False, False, False)
            )
    schema = [
        "root",
        "underlying",
        "contracts",
        "spot",
        "vol",
        "q",
        "shares",
        "index",
        "daily",
        "monthly",
        "penny",
    ]
    return pl.DataFrame(rows, schema=schema, orient="row"), [n for n in names if n not in set(optionable)]


def option_rows(rng: np.random.Generator, roots: pl.DataFrame) -> pl.DataFrame:
    """The day's option bars in dollars and contracts, beside their root, underlying and shares."""
    parts = []
    for root, underlying, count, spot, vol, q, shares, _, daily, monthly, penny in roots.iter_rows():
        value = spot * shares / 100  # what the strike is quoted against
        expiry, strike = chain(rng, count, value, vol, daily, monthly, penny and count >= 2_000)
        parts.append(
            pl.DataFrame({"expiry": expiry, "strike": strike}).with_columns(
                pl.lit(root).alias("root"),
                pl.lit(underlying).alias("underlying"),
                pl.lit(value).alias("spot"),
                pl.lit(vol).alias("atm"),
                pl.lit(q).alias("q"),
                pl.lit(shares).alias("shares"),
                pl.lit(penny).alias("penny"),
            )
        )
    frame = pl.concat(parts)
    epoch = dt.date(1970, 1, 1).toordinal()
    frame = pl.concat([frame.with_columns(pl.lit(c).alias("call")) for c in (True, False)]).with_columns(
        (pl.col("expiry") - epoch).cast(pl.Int32).cast(pl.Date).alias("expiration")
    )
    n = frame.height
    dte = (frame["expiry"].to_numpy() - SESSION.toordinal()).astype(np.float64)
    t = dte / 365.0
    spot, strike, atm, q = (frame[c].to_numpy() for c in ("spot", "strike", "atm", "q"))
    call = frame["call"].to_numpy()
    t_floor = np.maximum(t, 0.25 / 365)  # 0DTE: a quarter of a day of time value
    z = np.log(strike / (spot * np.exp((RATE - q) * t))) / (atm * np.sqrt(t_floor))
    vol = np.clip(atm * (t_floor / 0.25) ** -0.08 * (1 + 0.08 * z * z - 0.12 * z), 0.5 * atm, 4.0)
    lower = np.maximum(np.where(call, 1, -1) * (spot * np.exp(-q * t) - strike * np.exp(-RATE * t)), 0.0)
    model = bsm_price(call, spot, strike, t_floor, vol, RATE, q)
    fair = lower + (model - lower) * np.exp(rng.normal(0, 0.05, n))  # noise on the time value
    tick = np.where(frame["penny"].to_numpy() | (fair < 3.0), 0.01, 0.05)
    close = np.maximum(np.round(fair / tick) * tick, 0.01)
    intrinsic = np.maximum(np.where(call, spot - strike, strike - spot), 0.0)
    stale = (intrinsic > 0.1 * spot) & (rng.random(n) < 0.003)  # a trade before the underlying moved
    close = np.where(stale, np.maximum(0.01, np.round(intrinsic - rng.uniform(0.05, 0.5, n), 2)), close)
    liquid = np.exp(-0.5 * np.minimum(z * z, 50)) / (1 + dte / 30)
    volume = np.round(np.exp(rng.normal(np.log(5 + 600 * liquid), 1.3))).clip(min=1)
    volume[rng.random(n) < 0.03] = 0
    move = np.exp(rng.normal(0, 0.06, n))
    open_ = np.maximum(0.01, np.round(close * move, 2))
    top, bottom = np.maximum(open_, close), np.minimum(open_, close)
    high = np.maximum(top, np.round(top * (1 + np.abs(rng.normal(0, 0.08, n))), 2))
    low = np.maximum(0.01, np.minimum(bottom, np.round(bottom * (1 - np.abs(rng.normal(0, 0.08, n))), 2)))
    trades = np.where(volume > 0, np.maximum(1, volume / rng.uniform(1, 20, n)), 0).astype(np.int64)
    strike_text = (pl.col("strike") * 1000).round().cast(pl.Int64).cast(pl.String).str.zfill(8)
    ticker = pl.concat_str(
        pl.lit("O:"),
        "root",
        pl.col("expiration").dt.strftime("%y%m%d"),
        pl.when("call").then(pl.lit("C")).otherwise(pl.lit("P")),
        strike_text,
    )
    return frame.with_columns(
        ticker.alias("ticker"),
        pl.Series("open", open_),
        pl.Series("high", high),
        pl.Series("low", low),
        pl.Series("close", close),
        pl.Series("volume", volume),
        pl.Series("transactions", trades),
    ).unique("ticker", keep="first", maintain_order=True)


def stock_rows(rng: np.random.Generator, roots: pl.DataFrame, others: list[str]) -> pl.DataFrame:
    """The day's stock bars: the optionable stocks at their spot (1 % halted: no bar) and the others."""
    listed = roots.filter(~pl.col("index")).unique("underlying").select("underlying", "spot")
    listed = listed.filter(pl.Series(rng.random(listed.height) >= 0.01))
    extra = pl.DataFrame(
        {"underlying": others, "spot": np.exp(rng.normal(math.log(20), 1.2, len(others))).clip(0.05, 900)}
    )
    frame = pl.concat([listed, extra]).rename({"underlying": "ticker", "spot": "close"})
    n = frame.height
    close = frame["close"].to_numpy()
    open_ = close * np.exp(rng.normal(0, 0.01, n))
    volume = np.round(np.exp(rng.normal(math.log(3e5), 1.5, n)))
    return frame.with_columns(
        pl.Series("open", open_),
        pl.Series("high", np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.01, n)))),
        pl.Series("low", np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.01, n)))),
        pl.Series("volume", volume),
        pl.Series("transactions", np.maximum(1, volume / 150).astype(np.int64)),
    )


def vendor_text(frame: pl.DataFrame, *, option: bool) -> str:
    """The vendor's CSV lines of bars in dollars (prices at the $0.01 tick, $0.0001 below $1)."""
    price = {c: frame[c].to_numpy() for c in ("open", "high", "low", "close")}
    units = {
        c: np.where(v >= 1, np.rint(v * 100) * 100, np.rint(v * PRICE_SCALE)).astype(np.int64)
        for c, v in price.items()
    }
    table = pl.DataFrame(
        {
            "ticker": frame["ticker"],
            "volume": (frame["volume"].to_numpy() * VOLUME_SCALE).astype(np.int64),
            **{c: np.maximum(u, 1) for c, u in units.items()},
            "window_start": np.full(frame.height, midnight_ns(SESSION), dtype=np.int64),
            "transactions": frame["transactions"],
        }
    )
    return format_rows(table, decimal=False, option=option)


def reference_rows(rng: np.random.Generator, options: pl.DataFrame) -> pl.DataFrame:
    """The options-contracts reference: 95 % of the day's contracts and 20 % more that did not trade
    (the next strike up, half an increment away)."""
    known = options.filter(pl.Series(rng.random(options.height) < 0.95))
    untraded = options.sample(fraction=0.2, seed=int(rng.integers(1 << 31))).with_columns(
        (pl.col("strike") + 0.5).alias("strike")
    )
    strike_text = (pl.col("strike") * 1000).round().cast(pl.Int64).cast(pl.String).str.zfill(8)
    untraded = untraded.with_columns(
        pl.concat_str(
            pl.lit("O:"),
            "root",
            pl.col("expiration").dt.strftime("%y%m%d"),
            pl.when("call").then(pl.lit("C")).otherwise(pl.lit("P")),
            strike_text,
        ).alias("ticker")
    )
    adjusted = pl.col("shares") != 100
    rows = pl.concat([known, untraded]).unique("ticker", keep="first")
    return rows.select(
        "ticker",
        pl.col("underlying").alias("underlying_ticker"),
        pl.when("call").then(pl.lit("call")).otherwise(pl.lit("put")).alias("contract_type"),
        pl.lit("american").alias("exercise_style"),
        pl.col("expiration").alias("expiration_date"),
        pl.col("strike").alias("strike_price"),
        pl.col("shares").alias("shares_per_contract"),
        pl.lit("BATO").alias("primary_exchange"),
        pl.when(adjusted).then(pl.lit("OCASPN")).otherwise(pl.lit("OCASPS")).alias("cfi"),
        pl.lit(0, dtype=pl.Int64).alias("correction"),
    ).cast(OPTIONS_CONTRACTS_SCHEMA)  # type: ignore[arg-type]


def prepare(workdir: Path, contracts: int, underlyings: int, stocks: int, seed: int) -> dict[str, Any]:
    """Generate the day's files once and build the lake with the pipeline's own landing and bronze."""
    meta_path = workdir / "meta.json"
    if meta_path.exists():
        return dict(json.loads(meta_path.read_text()))
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    roots, others = universe(rng, contracts, underlyings, stocks)
    options = option_rows(rng, roots)
    stock_bars = stock_rows(rng, roots, others)
    source = workdir / "source"
    write_csv_gz(source / "flatfiles" / OPTIONS.source_key(SESSION), vendor_text(options, option=True))
    write_csv_gz(source / "flatfiles" / STOCKS.source_key(SESSION), vendor_text(stock_bars, option=False))
    generated = time.perf_counter() - t0
    lake = Lake(workdir / "lake")
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(lake.root)
    reference = reference_rows(rng, options)
    store_reference(lake, "options_contracts", reference, FETCHED)
    timings = {}
    for spec in (STOCKS, OPTIONS):
        t0 = time.perf_counter()
        report = PipelineRunner(lake, spec).run(
            LocalMirrorSource(source), SESSION, SESSION, last_stage="bronze"
        )
        if report.failures:
            raise SystemExit(f"{spec.name} bronze: {report.failures}")
        timings[spec.name] = time.perf_counter() - t0
    yields = dict(roots.filter(pl.col("q") > 0).unique("underlying").select("underlying", "q").iter_rows())
    per_underlying = options.group_by("underlying").len()["len"].to_numpy()
    meta = {
        "contracts": options.height,
        "underlyings": int(roots["underlying"].n_unique()),
        "roots": roots.height,
        "stocks": stock_bars.height,
        "reference": reference.height,
        "top": sorted(per_underlying.tolist(), reverse=True)[:3],
        "median_contracts": float(np.median(per_underlying)),
        "expirations": int(options["expiration"].n_unique()),
        "zero_volume": int((options["volume"] == 0).sum()),
        "generated_s": generated,
        "landing_bronze_s": timings,
        "dividend_yields": yields,
    }
    meta_path.write_text(json.dumps(meta))
    return meta


# ------------------------------------------------------------------------------------ measuring


def settings_of(meta: dict[str, Any]) -> dict[str, Any]:
    """The pricing settings as ``window.settings`` holds them."""
    return {
        "options.risk_free_rate": RATE,
        "options.dividend_yield": 0.0,
        "options.dividend_yields": meta["dividend_yields"],
    }


def window_of(lake: Lake, meta: dict[str, Any]) -> SessionWindow:
    """The ``SessionWindow`` the engine hands ``options_daily_silver`` for the session."""
    bars = pl.read_parquet(lake.bronze_partition(OPTIONS, SESSION))
    stocks = pl.read_parquet(
        lake.bronze_partition(STOCKS, SESSION), columns=["ticker", "session_date", "close"]
    )
    reference = load_reference(lake, "options_contracts")
    assert reference is not None
    return SessionWindow(
        bars,
        (SESSION,),
        (SESSION,),
        references={"options_contracts": reference},
        inputs={"stocks_daily": stocks},
        settings=settings_of(meta),
    )


def solver_inputs(silver: pl.DataFrame) -> dict[str, np.ndarray]:
    """The arrays ``options_daily_silver`` hands the solver: rows past its own checks."""
    rows = silver.filter(pl.col("iv_reason").is_null() | ~pl.col("iv_reason").is_in(BEFORE_SOLVER))
    return {
        "price": rows["close"].to_numpy(),
        "call": (rows["option_type"] == "call").to_numpy(),
        "spot": rows["underlying_price"].to_numpy(),
        "strike": rows["strike"].to_numpy(),
        "t": rows["years"].to_numpy(),
        "q": rows["dividend_yield"].to_numpy(),
        "iv": rows["iv"].fill_null(np.nan).to_numpy(),
    }


def solve(data: dict[str, np.ndarray]) -> np.ndarray:
    iv, _ = implied_vol(data["price"], data["call"], data["spot"], data["strike"], data["t"], RATE, data["q"])
    greeks(data["call"], data["spot"], data["strike"], data["t"], iv, RATE, data["q"])
    return iv


def measured(fn: Callable[[], T], rows: int) -> dict[str, Any]:
    """Wall seconds of ``fn()``, its user and system CPU seconds (every thread; system time is mostly
    page faults on fresh memory), the RSS before it (its inputs, read) and the peak RSS while it ran
    (sampled every 20 ms)."""
    sampler = Sampler()
    inputs_mb = sampler.take()[1]
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    fn()
    seconds, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
    return {
        "seconds": seconds,
        "user": r1.ru_utime - r0.ru_utime,
        "sys": r1.ru_stime - r0.ru_stime,
        "rows": rows,
        "inputs_mb": inputs_mb,
        "peak_mb": sampler.take()[0],
    }


def child(step: str, workdir: Path, budget: float) -> dict[str, Any]:
    """One measurement in this (fresh) process."""
    meta = json.loads((workdir / "meta.json").read_text())
    lake = Lake(workdir / "lake")
    silver_path = workdir / "silver.parquet"
    if step == "engine":
        options = {key.removeprefix("options."): value for key, value in settings_of(meta).items()}
        runner = PipelineRunner(lake, OPTIONS, memory_budget_gb=budget, settings=Settings(options=options))
        report = PipelineReport(OPTIONS.name)
        result = measured(lambda: runner.build(report, last_stage="silver"), 0)
        if report.failures:
            raise SystemExit(f"silver failed: {report.failures}")
        return result | {"rows": next(o.rows for o in report.silver if o.table == OPTIONS.name)}
    if step in ("transform", "profile"):
        window = window_of(lake, meta)
        # The exchange calendar and the CDF table load on first use: outside the measurement.
        options_daily_silver(dataclasses.replace(window, bars=window.bars.head(1000)))
        if step == "profile":
            return profile(window)
        return measured(lambda: options_daily_silver(window), window.bars.height)
    if step == "aggregates":
        rows = pl.read_parquet(silver_path)
        window = SessionWindow(pl.DataFrame(), (SESSION,), (SESSION,), inputs={"options_daily": rows})
        return measured(lambda: underlying_aggregates(window), rows.height)
    if step == "solver":
        data = solver_inputs(pl.read_parquet(silver_path))
        solve({k: v[:100] for k, v in data.items()})  # the CDF table, outside the measurement
        return measured(lambda: solve(data), len(data["price"]))
    if step == "prepare":
        out = options_daily_silver(window_of(lake, meta))
        out.write_parquet(silver_path)
        data = solver_inputs(out)
        return {
            "rows": out.height,
            "solver_rows": len(data["price"]),
            "same_iv": bool(np.array_equal(solve(data), data["iv"], equal_nan=True)),
            "reasons": {k or "iv": v for k, v in out.group_by("iv_reason").len().iter_rows()},
            "sources": {k or "unresolved": v for k, v in out.group_by("contract_source").len().iter_rows()},
        }
    raise SystemExit(f"unknown step {step}")


def profile(window: SessionWindow) -> dict[str, Any]:
    """cProfile of one transform: the cumulative seconds of its main parts, and the listing."""
    profiler = cProfile.Profile()
    t0 = time.perf_counter()
    profiler.runcall(options_daily_silver, window)
    total = time.perf_counter() - t0
    stats = pstats.Stats(profiler)
    cumulative = {f"{Path(k[0]).stem}.{k[2]}": v[3] for k, v in stats.stats.items()}  # type: ignore[attr-defined]
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats("quantmini", 20)
    return {"seconds": total, **{p: cumulative.get(p, 0.0) for p in PROFILED}, "listing": text.getvalue()}


def run_child(step: str, workdir: Path, budget: float = 4.0, source: Path | None = None) -> dict[str, Any]:
    """``child(step, …)`` in a fresh interpreter; ``source``: import quantmini from that ``src`` instead."""
    command = [sys.executable, __file__, "--child", step, "--workdir", str(workdir), "--budget", str(budget)]
    env = None if source is None else {**os.environ, "PYTHONPATH": str(source)}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode:
        raise RuntimeError(f"child {step} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def forget_silver(lake: Lake) -> None:
    """Remove the options silver tables and their manifests (the engine then rebuilds them)."""
    for table in ("options_daily", "options_underlying_daily"):
        for path in (lake.root / "silver" / table, lake.root / "_manifests" / "silver" / table):
            shutil.rmtree(path, ignore_errors=True)


def versus_brentq(workdir: Path, rows: int, seed: int) -> dict[str, float]:
    """``implied_vol`` and ``bench_option_iv.scalar_iv`` on the same ``rows`` of the solver's arrays."""
    data = solver_inputs(pl.read_parquet(workdir / "silver.parquet"))
    pick = np.sort(np.random.default_rng(seed).choice(len(data["price"]), rows, replace=False))
    sample = {k: v[pick] for k, v in data.items()}
    vector = lambda: implied_vol(  # noqa: E731
        sample["price"], sample["call"], sample["spot"], sample["strike"], sample["t"], RATE, sample["q"]
    )[0]
    t_vec, iv = best_of(vector)
    t_scalar, iv_scalar = best_of(lambda: scalar_iv(sample))
    both = np.isfinite(iv) & np.isfinite(iv_scalar)
    return {
        "vector": t_vec,
        "scalar": t_scalar,
        "agree": float(np.max(np.abs(iv[both] - iv_scalar[both]))),
        "differ": int(np.sum(np.isfinite(iv) != np.isfinite(iv_scalar))),
    }


def spread(runs: list[dict[str, Any]], key: str = "seconds") -> str:
    return ", ".join(f"{r[key]:.2f}" for r in runs)


LABELS = {
    "solver": "solver alone: `implied_vol` + `greeks`",
    "transform": "`options_daily_silver`",
    "aggregates": "`underlying_aggregates`",
}


def describe(meta: dict[str, Any], prepared: dict[str, Any]) -> None:
    top = ", ".join(f"{c:,}" for c in meta["top"])
    bronze = ", ".join(f"{k} {v:.1f} s" for k, v in meta["landing_bronze_s"].items())
    reasons = sorted(prepared["reasons"].items(), key=lambda kv: -kv[1])
    print(
        f"{meta['contracts']:,} contracts on {meta['underlyings']:,} underlyings ({meta['roots']:,} roots; "
        f"largest {top}, median {meta['median_contracts']:.0f}), {meta['expirations']} expirations, "
        f"{meta['zero_volume']:,} zero-volume bars; {meta['stocks']:,} stock closes; reference "
        f"{meta['reference']:,} contracts; landing + bronze {bronze}"
    )
    print(
        f"solver rows {prepared['solver_rows']:,} of {prepared['rows']:,}; the solver alone gives the "
        f"transform's IVs: {'yes' if prepared['same_iv'] else 'NO'}"
    )
    print("iv_reason:", ", ".join(f"{k} {v:,}" for k, v in reasons))
    print("contract_source:", ", ".join(f"{k} {v:,}" for k, v in prepared["sources"].items()))


@dataclasses.dataclass(frozen=True)
class Run:
    """One row of the table: a step, the engine's budget, the quantmini sources it imports."""

    label: str
    step: str
    budget: float = 4.0
    source: Path | None = None


def plan(steps: list[str], budgets: list[float], before: Path | None) -> list[Run]:
    runs = [Run(LABELS[s], s) for s in steps if s != "engine"]
    if "engine" in steps:
        runs += [Run(f"engine silver stage, budget {b:g} GB", "engine", b) for b in budgets]
    if before is not None:
        runs += [Run(f"{r.label} — before", r.step, r.budget, before) for r in runs if r.step != "solver"]
    return runs


def measure(workdir: Path, runs: list[Run], repeat: int) -> dict[Run, list[dict[str, Any]]]:
    """Every run ``repeat`` times, alternating; each engine run after the options silver is removed."""
    results: dict[Run, list[dict[str, Any]]] = {run: [] for run in runs}
    for _ in range(repeat):
        for run in runs:
            if run.step == "engine":
                forget_silver(Lake(workdir / "lake"))
            results[run].append(run_child(run.step, workdir, run.budget, run.source))
    return results


def report(results: dict[Run, list[dict[str, Any]]]) -> None:
    solver = [done for run, done in results.items() if run.step == "solver"]
    base = statistics.median(r["seconds"] for r in solver[0]) if solver else math.nan
    print("\n| step | rows | seconds (runs) | CPU user + sys s | rows/s | × solver | RSS before → peak |")
    print("|---|---|---|---|---|---|---|")
    for run, done in results.items():
        seconds = statistics.median(r["seconds"] for r in done)
        user = statistics.median(r["user"] for r in done)
        system = statistics.median(r["sys"] for r in done)
        rows = done[0]["rows"]
        before = statistics.median(r["inputs_mb"] for r in done)
        peak = statistics.median(r["peak_mb"] for r in done)
        print(
            f"| {run.label} | {rows:,} | {seconds:.2f} ({spread(done)}) | {user:.2f} + {system:.2f} "
            f"| {rows / seconds:,.0f} | {seconds / base:.1f} | {before:,.0f} → {peak:,.0f} MB |"
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--contracts", type=int, default=1_000_000)
    parser.add_argument("--underlyings", type=int, default=5_000)
    parser.add_argument("--stocks", type=int, default=8_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS))
    parser.add_argument(
        "--budgets", type=float, nargs="+", default=[4.0, 1.0], help="of the engine runs (GB)"
    )
    parser.add_argument("--scalar-rows", type=int, default=10_000)
    parser.add_argument("--profile", action="store_true", help="cProfile the transform once")
    parser.add_argument(
        "--before", type=Path, help="a quantmini src directory to measure the transform and engine of too"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--budget", type=float, default=4.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.workdir, args.budget)))
        return 0
    args.workdir.mkdir(parents=True, exist_ok=True)
    meta = prepare(args.workdir, args.contracts, args.underlyings, args.stocks, args.seed)
    prepared = run_child("prepare", args.workdir)
    describe(meta, prepared)
    for source in [None, args.before] if args.profile and args.before else [None] if args.profile else []:
        found = run_child("profile", args.workdir, source=source)
        print(found.pop("listing"))
        parts = ", ".join(f"{k} {v:.2f}" for k, v in found.items())
        print(f"profiled{' (before)' if source else ''}, cumulative seconds: {parts}")
    report(measure(args.workdir, plan(args.steps, args.budgets, args.before), args.repeat))
    if args.scalar_rows:
        iv = versus_brentq(args.workdir, args.scalar_rows, args.seed)
        print(
            f"\nimplied_vol vs the scalar brentq loop, {args.scalar_rows:,} solver rows (best of 3): "
            f"{iv['vector']:.3f} s vs {iv['scalar']:.3f} s = {iv['scalar'] / iv['vector']:.0f}×; "
            f"max |Δ vol| {iv['agree']:.1e}; a vol found by one only: {iv['differ']}"
        )
    return 0 if prepared["same_iv"] else 1


if __name__ == "__main__":
    sys.exit(main())
