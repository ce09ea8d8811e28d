"""Exchange sessions (XNYS) and exchange-time session dates.

Session dates are always derived in America/New_York: a 19:59 ET winter minute bar is 00:59Z on the
next UTC day but belongs to the ET session it started in.
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import pandas as pd
import polars as pl

from quantmini._exceptions import ConfigurationError

EXCHANGE_TZ = "America/New_York"
_CALENDAR_START = "2000-01-03"
_ZONE = ZoneInfo(EXCHANGE_TZ)
_NS = 1_000_000_000

#: Vendor minute files cover 04:00-20:00 ET (pre-market to the end of after-hours).
EXTENDED_OPEN = dt.time(4, 0)
EXTENDED_CLOSE = dt.time(20, 0)
REGULAR_OPEN = dt.time(9, 30)
REGULAR_CLOSE = dt.time(16, 0)


@lru_cache(maxsize=4)
def _calendar(name: str) -> Any:
    try:
        with warnings.catch_warnings():
            # exchange_calendars calls pandas APIs that newer pandas deprecates: not the user's concern.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            return xcals.get_calendar(name, start=_CALENDAR_START)
    except Exception as exc:  # exchange_calendars raises several unrelated types
        raise ConfigurationError(f"unknown exchange calendar {name!r}: {exc}") from exc


def sessions(start: dt.date, end: dt.date, calendar: str = "XNYS") -> list[dt.date]:
    """Trading sessions of ``calendar`` from ``start`` to ``end`` inclusive."""
    if end < start:
        raise ConfigurationError(f"end date {end} is before start date {start}")
    cal = _calendar(calendar)
    first = max(pd.Timestamp(start), cal.first_session)
    last = min(pd.Timestamp(end), cal.last_session)
    if last < first:
        return []
    return [ts.date() for ts in cal.sessions_in_range(first, last)]


def is_session(day: dt.date, calendar: str = "XNYS") -> bool:
    """Whether ``day`` is a trading session of ``calendar``."""
    cal = _calendar(calendar)
    ts = pd.Timestamp(day)
    return bool(cal.first_session <= ts <= cal.last_session and cal.is_session(ts))


def last_known_session(calendar: str = "XNYS") -> dt.date:
    """The last session the installed calendar knows about."""
    last = _calendar(calendar).last_session
    return dt.date(last.year, last.month, last.day)


def early_closes(start: dt.date, end: dt.date, calendar: str = "XNYS") -> dict[dt.date, dt.time]:
    """Sessions in ``[start, end]`` that close early, mapped to their local (ET) close time."""
    cal = _calendar(calendar)
    closes: dict[dt.date, dt.time] = {}
    for day in sessions(start, end, calendar):
        close_utc = cal.session_close(pd.Timestamp(day))
        local = close_utc.tz_convert(EXCHANGE_TZ).time()
        if local < dt.time(16, 0):
            closes[day] = local
    return closes


def session_date_expr(column: str = "window_start") -> pl.Expr:
    """Polars expression: exchange-time (America/New_York) session date of a UTC-nanosecond column."""
    return exchange_time_expr(column).dt.date()


def exchange_time_expr(column: str = "window_start") -> pl.Expr:
    """Polars expression: a UTC-nanosecond int64 column as a tz-aware America/New_York timestamp."""
    return (
        pl.from_epoch(pl.col(column), time_unit="ns")
        .dt.replace_time_zone("UTC")
        .dt.convert_time_zone(EXCHANGE_TZ)
    )


def parse_date(value: str | dt.date, param_name: str) -> dt.date:
    """Parse a ``YYYY-MM-DD`` user value once, at the boundary, naming the parameter on failure."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise ConfigurationError(f"{param_name}: {value!r} is not a date in YYYY-MM-DD form") from None


def local_instant_ns(day: dt.date, moment: dt.time) -> int:
    """UTC nanoseconds of the America/New_York wall time ``moment`` on ``day``."""
    local = dt.datetime.combine(day, moment, tzinfo=_ZONE)
    return int(local.timestamp()) * _NS + local.microsecond * 1000


@dataclass(frozen=True, slots=True)
class SessionBounds:
    """One session's instants in UTC nanoseconds, half-open ``[start, end)`` each.

    ``day`` is the session's whole exchange-time calendar day (a bar starting in it belongs to the
    session), ``extended`` the 04:00-20:00 ET window of minute files and ``regular`` 09:30 to the close.
    Comparing ``window_start`` with these integers is exact and far cheaper than converting every row to
    exchange time: sessions never fall on a DST switch (always a Sunday, 02:00).
    """

    session: dt.date
    day: tuple[int, int]
    extended: tuple[int, int]
    regular: tuple[int, int]


def session_bounds(session: dt.date, regular_close: dt.time = REGULAR_CLOSE) -> SessionBounds:
    """The :class:`SessionBounds` of ``session`` whose regular hours end at ``regular_close`` (ET)."""
    midnight = dt.time(0, 0)
    return SessionBounds(
        session=session,
        day=(local_instant_ns(session, midnight), local_instant_ns(session + dt.timedelta(days=1), midnight)),
        extended=(local_instant_ns(session, EXTENDED_OPEN), local_instant_ns(session, EXTENDED_CLOSE)),
        regular=(local_instant_ns(session, REGULAR_OPEN), local_instant_ns(session, regular_close)),
    )
