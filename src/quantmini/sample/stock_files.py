"""Stock flat files of a sample: ``stocks_daily`` (with its defects) and ``stocks_minute``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from quantmini.datasets import get_spec
from quantmini.io.atomic import write_bytes_atomic
from quantmini.sample.bars import DailyBars, minute_rows
from quantmini.sample.csvformat import GzipBuffer, format_rows, write_csv_gz
from quantmini.sample.defects import DefectPlan, inject, line_number, with_ohlc_violations
from quantmini.sample.timeline import Timeline, midnight_ns
from quantmini.sample.universe import Universe

#: Tickers generated together in one minute chunk (bounds memory for very large sessions).
MINUTE_CHUNK = 512


@dataclass
class FileLog:
    """What one data type's writer produced: rows per session (keyed by ISO date) and defects."""

    keys: dict[str, str] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    defects: list[dict[str, Any]] = field(default_factory=list)


def _ordered(universe: Universe, tickers: np.ndarray, index: int) -> tuple[np.ndarray, list[str]]:
    """``tickers`` sorted by their flat-file symbol on session ``index``, with those symbols."""
    symbols = [universe.tickers[i].symbol_at(index) for i in tickers.tolist()]
    order = sorted(range(len(symbols)), key=symbols.__getitem__)
    return tickers[order], [symbols[k] for k in order]


def _day_frame(
    bars: DailyBars, tickers: np.ndarray, symbols: list[str], index: int, start: int
) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "ticker": symbols,
            "volume": bars.volume[tickers, index],
            "open": bars.open[tickers, index],
            "close": bars.close[tickers, index],
            "high": bars.high[tickers, index],
            "low": bars.low[tickers, index],
            "window_start": np.full(len(tickers), start, dtype=np.int64),
            "transactions": bars.transactions[tickers, index],
        }
    )


def write_stocks_daily(
    out: Path, universe: Universe, bars: DailyBars, timeline: Timeline, plans: list[DefectPlan]
) -> FileLog:
    """One day-bar file per session; the planned defects injected and recorded."""
    spec = get_spec("stocks_daily")
    log = FileLog()
    dirty = with_ohlc_violations(bars, plans)
    for index, session in enumerate(timeline.sessions):
        tickers, symbols = _ordered(universe, np.nonzero(bars.alive[:, index])[0], index)
        decimal = bool(timeline.decimal[index])
        text = format_rows(
            _day_frame(dirty, tickers, symbols, index, timeline.day_start_ns(index)), decimal=decimal
        )
        here = [p for p in plans if p.index == index]
        if here:
            lines = text.splitlines()
            found = [(p, _inject(lines, universe, bars, timeline, p, decimal)) for p in here]
            for plan, line in found:
                log.defects.append(
                    {
                        "data_type": spec.name,
                        "key": spec.source_key(session),
                        "session": session.isoformat(),
                        "ticker": universe.tickers[plan.ticker].symbol_at(index),
                        "kind": plan.kind,
                        "line": line,
                        "line_number": line_number(lines, line, plan.kind),
                    }
                )
            text = "\n".join(lines) + "\n"
        key = spec.source_key(session)
        write_csv_gz(out / key, text)
        log.keys[session.isoformat()] = key
        log.rows[session.isoformat()] = text.count("\n")
    return log


def _inject(
    lines: list[str], universe: Universe, bars: DailyBars, timeline: Timeline, plan: DefectPlan, decimal: bool
) -> str:
    """Insert one planned defect; the stray row repeats the ticker's next-session bar when there is one."""
    index = plan.index
    symbol = universe.tickers[plan.ticker].symbol_at(index)
    source = index + 1 if index + 1 < universe.n_sessions and bars.alive[plan.ticker, index + 1] else index
    if index + 1 < len(timeline.sessions):
        stamp = timeline.day_start_ns(index + 1)
    else:
        stamp = midnight_ns(timeline.next_session)
    frame = _day_frame(bars, np.array([plan.ticker]), [symbol], source, stamp)
    stray = format_rows(frame, decimal=decimal).rstrip("\n")
    return inject(lines, symbol, plan, stray)


def write_stocks_minute(
    out: Path,
    universe: Universe,
    bars: DailyBars,
    timeline: Timeline,
    minute_tickers: int,
    seed: int,
    *,
    last_sessions: int | None = None,
) -> FileLog:
    """One minute-bar file per session (of the ``last_sessions`` last ones, if given) for the first
    ``minute_tickers`` tickers of the universe. A session's file does not depend on which others are
    written."""
    spec = get_spec("stocks_minute")
    log = FileLog()
    chosen = np.arange(min(minute_tickers, len(universe.tickers)))
    daily_vol = np.array([t.daily_vol for t in universe.tickers])
    trade_size = np.array([t.trade_size for t in universe.tickers])
    liquidity = np.array([t.mean_volume for t in universe.tickers])
    first = 0 if last_sessions is None else max(0, len(timeline.sessions) - last_sessions)
    for index, session in enumerate(timeline.sessions):
        if index < first:
            continue
        rng = np.random.default_rng([seed, 4, index])
        alive = chosen[bars.alive[chosen, index]]
        tickers, symbols = _ordered(universe, alive, index)
        names = pl.Series(symbols, dtype=pl.String)
        buffer = GzipBuffer()
        buffer.write(",".join(spec.csv_columns) + "\n")
        rows = 0
        for lo in range(0, len(tickers), MINUTE_CHUNK):
            part = tickers[lo : lo + MINUTE_CHUNK]
            day = (bars.open[part, index], bars.close[part, index], bars.volume[part, index], liquidity[part])
            m = minute_rows(
                rng,
                day,
                daily_vol[part],
                trade_size[part],
                timeline.windows[index],
                decimal=bool(timeline.decimal[index]),
            )
            frame = pl.DataFrame(
                {
                    "ticker": names.gather(m.ticker + lo),
                    "volume": m.volume,
                    "open": m.open,
                    "close": m.close,
                    "high": m.high,
                    "low": m.low,
                    "window_start": timeline.minute_start_ns(index, m.minute),
                    "transactions": m.transactions,
                }
            )
            buffer.write(format_rows(frame, decimal=bool(timeline.decimal[index])))
            rows += frame.height
        key = spec.source_key(session)
        write_bytes_atomic(out / key, buffer.finish())
        log.keys[session.isoformat()] = key
        log.rows[session.isoformat()] = rows
    return log
