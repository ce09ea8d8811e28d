"""Option flat files of a sample: ``options_daily`` and ``options_minute`` on the chosen underlyings."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from quantmini.datasets import get_spec
from quantmini.sample.bars import DailyBars
from quantmini.sample.csvformat import PRICE_SCALE, format_rows, write_csv_gz
from quantmini.sample.options import (
    OptionDay,
    adjusted_listing,
    contract_set,
    option_day,
    option_minutes,
    standard_listing,
)
from quantmini.sample.stock_files import FileLog
from quantmini.sample.timeline import Timeline
from quantmini.sample.universe import Universe

_REGULAR_OPEN_NS = (9 * 60 + 30) * 60 * 1_000_000_000


@dataclass(frozen=True, slots=True)
class OptionPlan:
    """Underlyings (ticker indices) and, per adjusted root, its underlying, split session and ratio."""

    underlyings: list[int]
    adjusted: dict[str, tuple[int, int, float]]


def plan_options(universe: Universe, count: int) -> OptionPlan:
    """Underlyings alive over the whole range: the forward-split ticker first, then ordinary ones."""
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
    prn = [i for i in full if universe.tickers[i].symbol == "PRN"]
    candidates = ([split_ticker] if split_ticker in full else []) + plain + prn
    chosen = candidates[: max(count, 0)]
    adjusted: dict[str, tuple[int, int, float]] = {}
    for split in universe.splits:
        if split.ticker in chosen and split.split_to > split.split_from and split.index >= 1:
            root = universe.tickers[split.ticker].symbol_at(split.index) + "1"
            adjusted[root] = (split.ticker, split.index, split.split_to / split.split_from)
    return OptionPlan(chosen, adjusted)


def _session_contracts(
    rng: np.random.Generator,
    universe: Universe,
    bars: DailyBars,
    timeline: Timeline,
    plan: OptionPlan,
    index: int,
) -> OptionDay:
    session = timeline.sessions[index]
    days: list[OptionDay] = []
    for u in plan.underlyings:
        spec = universe.tickers[u]
        spot_open = float(bars.open[u, index]) / PRICE_SCALE
        spot_close = float(bars.close[u, index]) / PRICE_SCALE
        vol = spec.daily_vol * np.sqrt(252.0)
        root = spec.symbol_at(index)
        contracts = contract_set(root, session, standard_listing(session, spot_open))
        days.append(option_day(rng, contracts, spot_open, spot_close, vol))
        for adj_root, (ticker, split_index, ratio) in plan.adjusted.items():
            if ticker != u or index < split_index:
                continue
            pre_split = timeline.sessions[split_index - 1]
            pre_spot = float(bars.close[u, split_index - 1]) / PRICE_SCALE
            listing = adjusted_listing(pre_split, pre_spot)
            adjusted = contract_set(adj_root, session, listing, multiplier=ratio)
            if adjusted.tickers:
                days.append(option_day(rng, adjusted, spot_open, spot_close, vol))
    return _sorted(days)


def _sorted(days: list[OptionDay]) -> OptionDay:
    tickers = [t for d in days for t in d.tickers]
    order = np.array(sorted(range(len(tickers)), key=tickers.__getitem__), dtype=np.int64)

    def cat(name: str) -> np.ndarray:
        parts = [getattr(d, name) for d in days]
        return np.concatenate(parts)[order] if parts else np.zeros(0, dtype=np.int64)

    return OptionDay(
        [tickers[i] for i in order.tolist()],
        cat("open"),
        cat("high"),
        cat("low"),
        cat("close"),
        cat("volume"),
        cat("transactions"),
    )


def write_options(
    out: Path,
    universe: Universe,
    bars: DailyBars,
    timeline: Timeline,
    plan: OptionPlan,
    data_types: set[str],
    seed: int,
) -> dict[str, FileLog]:
    """Write the requested option data types (``options_daily`` and/or ``options_minute``)."""
    logs: dict[str, FileLog] = {
        name: FileLog() for name in ("options_daily", "options_minute") if name in data_types
    }
    for index, session in enumerate(timeline.sessions):
        rng = np.random.default_rng([seed, 5, index])
        day = _session_contracts(rng, universe, bars, timeline, plan, index)
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
            minutes = option_minutes(rng, day, window.regular_close - window.regular_open)
            opening = start + _REGULAR_OPEN_NS
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
    return logs


def _write(out: Path, log: FileLog, name: str, session: dt.date, text: str) -> None:
    key = get_spec(name).source_key(session)
    write_csv_gz(out / key, text)
    log.keys[session.isoformat()] = key
    log.rows[session.isoformat()] = text.count("\n")
