"""The bar calendar of a Qlib root, built with numpy, against the exchange's sessions from
exchange_calendars and hand-written minutes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import exchange_calendars as xcals
import numpy as np
import pandas as pd
import pytest

from quantmini._exceptions import ValidationError
from quantmini.core.calendar import sessions
from quantmini.pipeline.gold import bar_calendar

NY = "America/New_York"
# A DST change (2024-11-03), the 13:00 closes of 2024-11-29 and 2024-12-24, a holiday (2024-12-25).
DAYS = sessions(dt.date(2024, 10, 28), dt.date(2024, 12, 27), "XNYS")


def _xnys_minutes(days: list[dt.date], hours: str) -> list[dt.datetime]:
    """Bar starts from exchange_calendars' session opens and closes, in naive New York time; extended
    hours from 04:00 to four hours after the close."""
    xnys = xcals.get_calendar("XNYS")
    minutes: list[dt.datetime] = []
    for day in days:
        close = xnys.session_close(day).tz_convert(NY).tz_localize(None)
        start = pd.Timestamp(f"{day} 09:30") if hours == "regular" else pd.Timestamp(f"{day} 04:00")
        end = close if hours == "regular" else close + pd.Timedelta(hours=4)
        minutes += [t.to_pydatetime() for t in pd.date_range(start, end, freq="min", inclusive="left")]
    return minutes


def _hand(day: str, start: str, end: str) -> list[dt.datetime]:
    return [t.to_pydatetime() for t in pd.date_range(f"{day} {start}", f"{day} {end}", freq="min")]


def test_a_normal_session_an_early_close_and_a_dst_change_by_hand() -> None:
    normal, early = dt.date(2024, 11, 27), dt.date(2024, 11, 29)  # 11-29 closes at 13:00
    assert bar_calendar([normal], "1min", "XNYS").bars.tolist() == _hand("2024-11-27", "09:30", "15:59")
    extended = bar_calendar([normal], "1min", "XNYS", "extended").bars.tolist()
    assert extended == _hand("2024-11-27", "04:00", "19:59")
    assert bar_calendar([early], "1min", "XNYS").bars.tolist() == _hand("2024-11-29", "09:30", "12:59")
    extended = bar_calendar([early], "1min", "XNYS", "extended").bars.tolist()
    assert extended == _hand("2024-11-29", "04:00", "16:59")
    days = [dt.date(2024, 3, 8), dt.date(2024, 3, 11), dt.date(2024, 11, 1), dt.date(2024, 11, 4)]
    bars = bar_calendar(days, "1min", "XNYS").bars.tolist()
    assert bars == [m for day in days for m in _hand(day.isoformat(), "09:30", "15:59")]


@pytest.mark.parametrize("hours", ["regular", "extended"])
def test_minute_bars_equal_the_exchange_minutes(hours: str) -> None:
    cal = bar_calendar(DAYS, "1min", "XNYS", hours)  # type: ignore[arg-type]
    expected = _xnys_minutes(DAYS, hours)
    assert cal.bars.tolist() == expected
    assert cal.lines() == [m.strftime("%Y-%m-%d %H:%M:%S") for m in expected]
    for i, day in enumerate(DAYS):
        assert expected[cal.starts[i]].date() == day
        assert cal.start(day) == cal.starts[i]
    assert cal.start(DAYS[-1] + dt.timedelta(days=1)) == len(expected)
    positions = cal.positions(cal.values(np.array([0, 5, len(expected) - 1])))
    assert positions.tolist() == [0, 5, len(expected) - 1]


def test_day_bars_are_the_sessions() -> None:
    cal = bar_calendar(DAYS, "day", "XNYS")
    assert cal.lines() == [d.isoformat() for d in DAYS]
    assert cal.values(np.array([1])).to_list() == [DAYS[1]]


def test_unknown_hours_are_refused() -> None:
    with pytest.raises(ValidationError, match="qlib_minute_session"):
        bar_calendar(DAYS, "1min", "XNYS", "overnight")  # type: ignore[arg-type]


def test_the_calendar_file_is_extended_in_place_and_rewritten_when_not_a_prefix(tmp_path: Path) -> None:
    cal = bar_calendar(DAYS, "1min", "XNYS")
    path = tmp_path / "calendars" / "1min.txt"
    cal.write(tmp_path, {"AAA": (3, 400)})
    assert path.read_text().splitlines() == cal.lines()
    assert (tmp_path / "instruments" / "all.txt").read_text() == (
        f"AAA\t{cal.lines()[3]}\t{cal.lines()[400]}\n"
    )
    inode = path.stat().st_ino
    cal.write(tmp_path, {"AAA": (3, 400)})
    assert path.stat().st_ino == inode  # same calendar: the file was left alone
    path.write_text(path.read_text()[:-20])  # the last line lost: it is appended again
    cal.write(tmp_path, {"AAA": (3, 400)})
    assert path.read_text().splitlines() == cal.lines()
    path.write_text(path.read_text()[:-5])  # a torn line: the file is rewritten
    cal.write(tmp_path, {"AAA": (3, 400)})
    assert path.read_text().splitlines() == cal.lines()
    inode_after_repair = path.stat().st_ino
    longer = bar_calendar(sessions(DAYS[0], dt.date(2024, 12, 30), "XNYS"), "1min", "XNYS")
    longer.write(tmp_path, {"AAA": (3, 400)})
    assert path.stat().st_ino == inode_after_repair  # appended in place
    assert path.read_text().splitlines() == longer.lines()
    other = bar_calendar(DAYS[1:], "1min", "XNYS")  # another first session: not a prefix, rewritten
    other.write(tmp_path, {})
    assert (tmp_path / "instruments" / "all.txt").read_text() == ""
    assert path.read_text().splitlines() == other.lines()
