"""Session dates in exchange time and the XNYS session list."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from quantmini import ConfigurationError
from quantmini.core.calendar import early_closes, is_session, parse_date, session_date_expr, sessions


def _ns(ts: str) -> int:
    return int(dt.datetime.fromisoformat(ts).timestamp() * 1_000_000) * 1000


@pytest.mark.parametrize(
    ("utc", "session"),
    [
        ("2024-01-09T00:59:00+00:00", dt.date(2024, 1, 8)),  # 19:59 EST after-hours bar → previous UTC day
        ("2024-01-08T05:00:00+00:00", dt.date(2024, 1, 8)),  # winter day bar, 00:00 EST
        ("2024-07-08T04:00:00+00:00", dt.date(2024, 7, 8)),  # summer day bar, 00:00 EDT
        ("2024-07-08T23:59:00+00:00", dt.date(2024, 7, 8)),  # 19:59 EDT
        ("2024-03-11T03:59:00+00:00", dt.date(2024, 3, 10)),  # DST switch night: 23:59 EDT on the 10th
    ],
)
def test_session_date_is_derived_in_new_york(utc: str, session: dt.date) -> None:
    frame = pl.DataFrame({"window_start": [_ns(utc)]}, schema={"window_start": pl.Int64})
    assert frame.select(session_date_expr()).item() == session


def test_sessions_skip_weekends_and_holidays() -> None:
    got = sessions(dt.date(2025, 7, 1), dt.date(2025, 7, 8))
    # 2025-07-04 is Independence Day, 5-6 a weekend.
    assert got == [dt.date(2025, 7, d) for d in (1, 2, 3, 7, 8)]
    assert not is_session(dt.date(2025, 11, 27))  # Thanksgiving
    assert is_session(dt.date(2025, 11, 28))


def test_early_closes_from_the_exchange_calendar() -> None:
    closes = early_closes(dt.date(2025, 11, 1), dt.date(2025, 12, 31))
    assert closes == {dt.date(2025, 11, 28): dt.time(13, 0), dt.date(2025, 12, 24): dt.time(13, 0)}


def test_parse_date_names_the_parameter() -> None:
    assert parse_date("2025-01-02", "--start-date") == dt.date(2025, 1, 2)
    with pytest.raises(ConfigurationError, match=r"--start-date: '2025-13-01' is not a date"):
        parse_date("2025-13-01", "--start-date")


def test_reversed_range_is_an_error() -> None:
    with pytest.raises(ConfigurationError, match="before start date"):
        sessions(dt.date(2025, 1, 3), dt.date(2025, 1, 2))
