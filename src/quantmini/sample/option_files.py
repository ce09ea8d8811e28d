"""Option flat files of a sample: ``options_daily`` and ``options_minute`` on the chosen underlyings.

The plan decides the underlyings (stocks, a class share, an index), their OCC roots and how every
contract is priced; ``sample.json`` records it so tests can recompute each premium.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from quantmini.core.calendar import REGULAR_OPEN, close_instants_ns, local_instant_ns
from quantmini.datasets import get_spec
from quantmini.sample.bars import DailyBars, FloatArray
from quantmini.sample.csvformat import PRICE_SCALE, format_rows, write_csv_gz
from quantmini.sample.options import (
    RATE,
    REFERENCE_YEARS,
    SURFACE_MIN_YEARS,
    TICK,
    OptionDay,
    Quote,
    VolSurface,
    adjusted_listing,
    contract_set,
    draw_surface,
    index_listings,
    option_day,
    option_minutes,
    spot_path,
    standard_listing,
)
from quantmini.sample.stock_files import FileLog
from quantmini.sample.timeline import Timeline
from quantmini.sample.universe import Universe

#: The index underlying and its roots; indexes have no stock flat files, their levels live in the plan.
INDEX_SYMBOL = "SPX"
_INDEX_LEVEL = 4500.0
_INDEX_DAILY_VOL = 0.01
_INDEX_DIVIDEND_YIELD = 0.013
_ATM_NOISE = 0.05


@dataclass(frozen=True, slots=True)
class RootSpec:
    """An OCC root: the underlying it delivers, shares per contract and whether it is an index or adjusted."""

    underlying: str
    shares_per_contract: int
    index: bool = False
    adjusted: bool = False


@dataclass(frozen=True, slots=True)
class OptionPlan:
    """What the option files hold and how they are priced.

    Underlyings (ticker indices), per adjusted root its underlying, split session and ratio, the index
    (``None`` when not drawn) with its level per session, every root, and per underlying (symbol, the
    index included) its volatility surface, dividend yield and ATM volatility per session.
    """

    underlyings: list[int]
    adjusted: dict[str, tuple[int, int, float]]
    index: str | None
    index_open: FloatArray
    index_close: FloatArray
    roots: dict[str, RootSpec]
    surfaces: dict[str, VolSurface]
    dividend_yield: dict[str, float]
    atm: dict[str, FloatArray]

    def record(self, sessions: list[dt.date]) -> dict[str, Any]:
        """The ``options`` entry of ``sample.json``: roots, deliverables, index levels and pricing."""
        index_levels = {}
        if self.index is not None:
            index_levels[self.index] = {
                day.isoformat(): {"open": float(self.index_open[i]), "close": float(self.index_close[i])}
                for i, day in enumerate(sessions)
            }
        return {
            "index_underlyings": [] if self.index is None else [self.index],
            "roots": {
                root: {
                    "underlying": spec.underlying,
                    "shares_per_contract": spec.shares_per_contract,
                    "index": spec.index,
                    "adjusted": spec.adjusted,
                }
                for root, spec in sorted(self.roots.items())
            },
            "index_levels": index_levels,
            "pricing": {
                "model": "black-scholes-merton, european, continuous dividend yield",
                "rate": RATE,
                "tick": TICK,
                "rounding": "nearest tick, at least one tick",
                "years_to_expiration": (
                    "(expiration instant - observation instant) / (365 x 86400 s), instants in UTC ns;"
                    " expiration instant: the expiration date's regular close (16:00 ET, the early"
                    " close on a short session, 16:00 ET when the date is not a session)"
                ),
                "observation": (
                    "daily close: the session's regular close (16:00 ET or the early close);"
                    " daily open: 09:30 ET; minute: bar start + 60 s"
                ),
                "expired": (
                    "t <= 0: intrinsic value, max(spot - strike, 0) call, max(strike - spot, 0) put;"
                    " no volatility"
                ),
                "spot": (
                    "daily close: underlying close (index: level close); daily open: underlying open"
                    " (index: level open); x shares_per_contract / 100"
                ),
                "volatility": "the surface at the daily close (spot and t), also for the open and minutes",
                "surface": (
                    "sigma = atm * (1 + term * ln(t / reference_years))"
                    " * (1 + skew * x + curvature * x^2), x = ln(strike / (spot * exp((rate - q) * t))),"
                    " t = max(years_to_expiration, surface_min_years)"
                ),
                "reference_years": REFERENCE_YEARS,
                "surface_min_years": SURFACE_MIN_YEARS,
                "dividend_yield": dict(sorted(self.dividend_yield.items())),
                "surfaces": {name: s.record() for name, s in sorted(self.surfaces.items())},
                "atm_vol": {
                    name: dict(zip([d.isoformat() for d in sessions], atm.tolist(), strict=True))
                    for name, atm in sorted(self.atm.items())
                },
            },
        }


def option_root(symbol: str) -> str:
    """The OCC root of a stock symbol: share-class dots dropped (``BRK.B`` → ``BRKB``)."""
    return symbol.replace(".", "")


def plan_options(universe: Universe, count: int, seed: int) -> OptionPlan:
    """Underlyings alive over the whole range and how their contracts are priced.

    The forward-split ticker comes first (its adjusted root), then the class share ``BRK.B`` (root
    ``BRKB``), then, from three underlyings on, the index; ordinary tickers fill the rest.
    """
    n = universe.n_sessions
    full = [i for i, t in enumerate(universe.tickers) if t.first == 0 and t.last == n - 1]
    split_ticker = universe.roles["split_and_dividend"]
    plain = [
        i
        for i in full
        if i >= 8
        and universe.tickers[i].new_symbol is None
        and not any(s.ticker == i for s in universe.splits)
    ]
    fixed = [i for i in full if universe.tickers[i].symbol in ("BRK.B", "PRN")]
    candidates = ([split_ticker] if split_ticker in full else []) + fixed[:1] + plain + fixed[1:]
    with_index = count >= 3
    chosen = candidates[: max(count - int(with_index), 0)]
    adjusted: dict[str, tuple[int, int, float]] = {}
    roots: dict[str, RootSpec] = {}
    for i in chosen:
        symbol = universe.tickers[i].symbol
        roots[option_root(symbol)] = RootSpec(symbol, 100)
    for split in universe.splits:
        if split.ticker in chosen and split.split_to > split.split_from and split.index >= 1:
            symbol = universe.tickers[split.ticker].symbol_at(split.index)
            ratio = split.split_to / split.split_from
            adjusted[option_root(symbol) + "1"] = (split.ticker, split.index, ratio)
            roots[option_root(symbol) + "1"] = RootSpec(symbol, round(100 * ratio), adjusted=True)
    names = [universe.tickers[i].symbol for i in chosen]
    base = {universe.tickers[i].symbol: universe.tickers[i].daily_vol * np.sqrt(252.0) for i in chosen}
    index_open = index_close = np.zeros(0)
    if with_index:
        names.append(INDEX_SYMBOL)
        base[INDEX_SYMBOL] = _INDEX_DAILY_VOL * np.sqrt(252.0)
        roots["SPX"] = RootSpec(INDEX_SYMBOL, 100, index=True)
        roots["SPXW"] = RootSpec(INDEX_SYMBOL, 100, index=True)
        index_open, index_close = index_levels(seed, n)
    surfaces = {
        name: draw_surface(np.random.default_rng([seed, 6, k]), name == INDEX_SYMBOL)
        for k, name in enumerate(names)
    }
    noise = np.random.default_rng([seed, 7]).normal(0.0, _ATM_NOISE, (len(names), n))
    atm = {name: np.round(base[name] * np.exp(noise[k]), 6) for k, name in enumerate(names)}
    yields = {name: _dividend_yield(universe, i) for name, i in zip(names, chosen, strict=False)}
    if with_index:
        yields[INDEX_SYMBOL] = _INDEX_DIVIDEND_YIELD
    return OptionPlan(
        chosen,
        adjusted,
        INDEX_SYMBOL if with_index else None,
        index_open,
        index_close,
        roots,
        surfaces,
        yields,
        atm,
    )


def _dividend_yield(universe: Universe, ticker: int) -> float:
    """Annual continuous yield from the ticker's quarterly dividends (four times the mean), else 0."""
    paid = [d.yield_ for d in universe.dividends if d.ticker == ticker]
    return round(4.0 * float(np.mean(paid)), 6) if paid else 0.0


def index_levels(seed: int, n_sessions: int) -> tuple[FloatArray, FloatArray]:
    """Opening and closing levels of the index (cents), a geometric random walk."""
    rng = np.random.default_rng([seed, 8])
    log_close = (
        np.log(_INDEX_LEVEL)
        + rng.normal(0.0, 0.05)
        + np.cumsum(rng.normal(0.0, _INDEX_DAILY_VOL, n_sessions))
    )
    prev = np.concatenate([log_close[:1], log_close[:-1]])
    log_open = prev + rng.normal(0.0, 0.002, n_sessions)
    level_open = np.asarray(np.round(np.exp(log_open), 2), dtype=np.float64)
    return level_open, np.asarray(np.round(np.exp(log_close), 2), dtype=np.float64)


def _session_contracts(
    rng: np.random.Generator,
    universe: Universe,
    bars: DailyBars,
    timeline: Timeline,
    plan: OptionPlan,
    index: int,
) -> tuple[OptionDay, FloatArray]:
    """The session's traded contracts and the minute spot path of each underlying (rows: ``path``)."""
    session = timeline.sessions[index]
    window = timeline.windows[index]
    minutes = window.regular_close - window.regular_open
    open_ns, close_ns = local_instant_ns(session, REGULAR_OPEN), close_instants_ns([session])[session]
    days: list[OptionDay] = []
    paths: list[FloatArray] = []

    def quote(name: str, spot_open: float, spot_close: float, daily_vol: float) -> Quote:
        paths.append(spot_path(rng, spot_open, spot_close, daily_vol, minutes))
        atm = float(plan.atm[name][index])
        surface, dividend_yield = plan.surfaces[name], plan.dividend_yield[name]
        return Quote(spot_open, spot_close, atm, surface, dividend_yield, len(paths) - 1, open_ns, close_ns)

    for u in plan.underlyings:
        spec = universe.tickers[u]
        spot_open = float(bars.open[u, index]) / PRICE_SCALE
        spot_close = float(bars.close[u, index]) / PRICE_SCALE
        q = quote(spec.symbol, spot_open, spot_close, spec.daily_vol)
        root = option_root(spec.symbol_at(index))
        contracts = contract_set(root, session, standard_listing(session, spot_open))
        days.append(option_day(rng, contracts, q))
        for adj_root, (ticker, split_index, ratio) in plan.adjusted.items():
            if ticker != u or index < split_index:
                continue
            pre_split = timeline.sessions[split_index - 1]
            pre_spot = float(bars.close[u, split_index - 1]) / PRICE_SCALE
            listing = adjusted_listing(pre_split, pre_spot)
            adjusted = contract_set(adj_root, session, listing, multiplier=ratio)
            if adjusted.tickers:
                days.append(option_day(rng, adjusted, q))
    if plan.index is not None:
        level_open, level_close = float(plan.index_open[index]), float(plan.index_close[index])
        q = quote(plan.index, level_open, level_close, _INDEX_DAILY_VOL)
        for root, listing in index_listings(session, level_open).items():
            contracts = contract_set(root, session, listing)
            if contracts.tickers:
                days.append(option_day(rng, contracts, q))
    return _sorted(days), np.stack(paths) if paths else np.zeros((0, max(minutes, 1)))


def _sorted(days: list[OptionDay]) -> OptionDay:
    """The underlyings' rows in one day, sorted by ticker like the vendor's files."""
    tickers = [t for d in days for t in d.tickers]
    order = np.array(sorted(range(len(tickers)), key=tickers.__getitem__), dtype=np.int64)

    def cat(name: str) -> np.ndarray:
        parts = [getattr(d, name) for d in days]
        return np.concatenate(parts)[order] if parts else np.zeros(0)

    columns = [f.name for f in dataclasses.fields(OptionDay) if f.name != "tickers"]
    return OptionDay([tickers[i] for i in order.tolist()], *(cat(name) for name in columns))


def write_options(
    out: Path,
    universe: Universe,
    bars: DailyBars,
    timeline: Timeline,
    plan: OptionPlan,
    data_types: set[str],
    seed: int,
) -> tuple[dict[str, FileLog], set[str]]:
    """Write the requested option data types; return their logs and every contract ticker written."""
    logs: dict[str, FileLog] = {
        name: FileLog() for name in ("options_daily", "options_minute") if name in data_types
    }
    written: set[str] = set()
    for index, session in enumerate(timeline.sessions):
        rng = np.random.default_rng([seed, 5, index])
        day, paths = _session_contracts(rng, universe, bars, timeline, plan, index)
        written.update(day.tickers)
        decimal = bool(timeline.decimal[index])
        start = timeline.day_start_ns(index)
        if "options_daily" in logs:
            frame = pl.DataFrame(
                {
                    "ticker": pl.Series(day.tickers, dtype=pl.String),
                    "volume": day.volume,
                    "open": day.open,
                    "close": day.close,
                    "high": day.high,
                    "low": day.low,
                    "window_start": np.full(len(day.tickers), start, dtype=np.int64),
                    "transactions": day.transactions,
                }
            )
            _write(
                out,
                logs["options_daily"],
                "options_daily",
                session,
                format_rows(frame, decimal=decimal, option=True),
            )
        if "options_minute" in logs:
            window = timeline.windows[index]
            opening = local_instant_ns(session, REGULAR_OPEN)
            minutes = option_minutes(rng, day, opening, window.regular_close - window.regular_open, paths)
            frame = pl.DataFrame(
                {
                    "ticker": pl.Series(day.tickers, dtype=pl.String).gather(minutes.contract),
                    "volume": minutes.volume,
                    "open": minutes.open,
                    "close": minutes.close,
                    "high": minutes.high,
                    "low": minutes.low,
                    "window_start": opening + minutes.minute * 60_000_000_000,
                    "transactions": minutes.transactions,
                }
            )
            _write(
                out,
                logs["options_minute"],
                "options_minute",
                session,
                format_rows(frame, decimal=decimal, option=True),
            )
    return logs, written


def _write(out: Path, log: FileLog, name: str, session: dt.date, text: str) -> None:
    key = get_spec(name).source_key(session)
    write_csv_gz(out / key, text)
    log.keys[session.isoformat()] = key
    log.rows[session.isoformat()] = text.count("\n")
