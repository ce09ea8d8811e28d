"""The deliberate defects of a sample's ``stocks_daily`` files, as seen in real vendor files.

* ``duplicate_row``: one line repeated verbatim right after itself;
* ``ohlc_violation``: one bar whose high is below its low;
* ``next_session_row``: one stray row stamped 00:00 ET of the **next** session (the 2019-08-12 file
  carried rows of 2019-08-13), placed after the ticker's own row.

They are placed on ordinary tickers (whole life, no corporate action that day) at fixed fractions of
the range, on distinct (ticker, session) pairs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from quantmini.sample.bars import DailyBars
from quantmini.sample.universe import Universe, position

DUPLICATE_ROW = "duplicate_row"
OHLC_VIOLATION = "ohlc_violation"
NEXT_SESSION_ROW = "next_session_row"
_PLACES = ((DUPLICATE_ROW, 0.2), (OHLC_VIOLATION, 0.45), (NEXT_SESSION_ROW, 0.8))


@dataclass(frozen=True, slots=True)
class DefectPlan:
    """Where one defect goes: its kind, ticker index and session index."""

    kind: str
    ticker: int
    index: int


def plan_defects(universe: Universe, bars: DailyBars) -> list[DefectPlan]:
    """One defect of each kind, on distinct (ticker, session) pairs of clean rows."""
    specs = universe.tickers
    n = universe.n_sessions
    plain = [
        i
        for i, spec in enumerate(specs)
        if spec.first == 0
        and spec.last == n - 1
        and spec.new_symbol is None
        and not universe.action_sessions(i)
    ]
    used: set[tuple[int, int]] = set()
    plans: list[DefectPlan] = []
    for offset, (kind, fraction) in enumerate(_PLACES):
        index = position(fraction, n)
        preferred = plain[offset % len(plain) :] + plain[: offset % len(plain)] if plain else []
        others = [i for i in np.nonzero(bars.alive[:, index])[0].tolist() if i not in preferred]
        for ticker in preferred + others:
            if (ticker, index) not in used and index not in universe.action_sessions(ticker):
                used.add((ticker, index))
                plans.append(DefectPlan(kind, ticker, index))
                break
    return plans


def with_ohlc_violations(bars: DailyBars, plans: list[DefectPlan]) -> DailyBars:
    """A copy of ``bars`` whose planned ``ohlc_violation`` rows have their high below their low."""
    high, low = bars.high.copy(), bars.low.copy()
    for plan in plans:
        if plan.kind == OHLC_VIOLATION:
            h, lo = int(high[plan.ticker, plan.index]), int(low[plan.ticker, plan.index])
            tick = 100 if lo >= 10_000 else 1
            high[plan.ticker, plan.index] = lo if h > lo else max(lo - tick, 1)
            low[plan.ticker, plan.index] = h
    return dataclasses.replace(bars, high=high, low=low)


def inject(lines: list[str], symbol: str, plan: DefectPlan, stray_line: str) -> str:
    """Apply ``plan`` to the data ``lines`` of its file (no header); return the defect's line text.

    ``ohlc_violation`` rows are already in the data (see :func:`with_ohlc_violations`).
    """
    prefix = symbol + ","
    at = next(i for i, line in enumerate(lines) if line.startswith(prefix))
    if plan.kind == DUPLICATE_ROW:
        lines.insert(at + 1, lines[at])
        return lines[at]
    if plan.kind == NEXT_SESSION_ROW:
        lines.insert(at + 1, stray_line)
        return stray_line
    return lines[at]


def line_number(lines: list[str], text: str, kind: str) -> int:
    """1-based line number of a defect in the decompressed file (the header is line 1)."""
    if kind == DUPLICATE_ROW:
        return len(lines) - lines[::-1].index(text) + 1
    return lines.index(text) + 2
