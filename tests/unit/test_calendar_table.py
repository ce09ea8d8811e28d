"""The shipped session tables: equal to exchange_calendars, continued by it past their end, and read
without importing pandas."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from importlib import resources

import exchange_calendars as xcals
import pandas as pd
import pytest

from quantmini.core import calendar


def _reference(start: dt.date, end: dt.date) -> tuple[list[dt.date], dict[dt.date, dt.time]]:
    """Sessions and early closes straight from exchange_calendars."""
    cal = xcals.get_calendar("XNYS", start="2000-01-03", end="2030-12-31")
    days = [ts.date() for ts in cal.sessions_in_range(pd.Timestamp(start), pd.Timestamp(end))]
    closes = {}
    for day in days:
        local = cal.session_close(pd.Timestamp(day)).tz_convert("America/New_York").time()
        if local < dt.time(16, 0):
            closes[day] = local
    return days, closes


def test_the_shipped_table_is_what_exchange_calendars_computes() -> None:
    shipped = json.loads(
        resources.files("quantmini.core").joinpath("calendars", "XNYS.json").read_text("utf-8")
    )
    # A difference means exchange_calendars was upgraded: regenerate with calendar.write_table("XNYS").
    assert shipped == calendar.calendar_table("XNYS")
    assert shipped["sessions"][-1] <= str(calendar.TABLE_END)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (dt.date(2000, 1, 3), dt.date(2000, 1, 31)),  # the first day of the table
        (dt.date(2012, 10, 1), dt.date(2012, 11, 30)),  # Hurricane Sandy closures
        (dt.date(2024, 6, 1), dt.date(2024, 12, 31)),  # Juneteenth, July 3 and Black Friday early closes
        (dt.date(2025, 1, 1), dt.date(2025, 1, 31)),  # the national day of mourning, 2025-01-09
    ],
)
def test_sessions_and_early_closes_match_exchange_calendars(start: dt.date, end: dt.date) -> None:
    days, closes = _reference(start, end)
    assert calendar.sessions(start, end) == days
    assert calendar.early_closes(start, end) == closes
    assert [
        d for d in (start + dt.timedelta(n) for n in range((end - start).days + 1)) if calendar.is_session(d)
    ] == days


def test_days_past_the_table_come_from_exchange_calendars(monkeypatch: pytest.MonkeyPatch) -> None:
    full = calendar._table("XNYS")
    assert full is not None
    cut = dt.date(2024, 6, 28)
    short = calendar._Table(
        sessions=tuple(d for d in full.sessions if d <= cut),
        early_closes={d: t for d, t in full.early_closes.items() if d <= cut},
    )
    monkeypatch.setattr(calendar, "_table", lambda name: short)
    days, closes = _reference(dt.date(2024, 6, 1), dt.date(2024, 7, 31))
    assert calendar.sessions(dt.date(2024, 6, 1), dt.date(2024, 7, 31)) == days
    assert calendar.early_closes(dt.date(2024, 6, 1), dt.date(2024, 7, 31)) == closes  # July 3, past the cut


def test_reading_sessions_does_not_import_pandas() -> None:
    code = (
        "import sys, datetime as dt\n"
        "from quantmini.core.calendar import sessions, early_closes\n"
        "assert len(sessions(dt.date(2024, 1, 1), dt.date(2024, 12, 31))) == 252\n"
        "early_closes(dt.date(2024, 1, 1), dt.date(2024, 12, 31))\n"
        "print(sorted(m for m in ('pandas', 'exchange_calendars') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"
