"""Exchange sessions (XNYS) and exchange-time session dates.

Session dates are always derived in America/New_York: a 19:59 ET winter minute bar is 00:59Z on the
next UTC day but belongs to the ET session it started in.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import warnings
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

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
#: After-hours trading ends four hours after the regular close: 20:00, or 17:00 after a 13:00 close.
AFTER_HOURS = dt.timedelta(hours=4)


#: Calendars shipped as tables of sessions (``core/calendars/<NAME>.json``, written by :func:`write_table`):
#: reading one takes milliseconds where building it with exchange_calendars (and pandas) takes ~0.8 s at
#: every start. Days past a table's end, and other calendars, come from exchange_calendars.
TABLE_END = dt.date(2028, 12, 31)


@dataclass(frozen=True, slots=True)
class _Table:
    sessions: tuple[dt.date, ...]
    early_closes: dict[dt.date, dt.time]

    @property
    def last(self) -> dt.date:
        return self.sessions[-1]


@lru_cache(maxsize=4)
def _table(name: str) -> _Table | None:
    try:
        text = resources.files("quantmini.core").joinpath("calendars", f"{name}.json").read_text("utf-8")
    except FileNotFoundError:
        return None
    data = json.loads(text)
    return _Table(
        sessions=tuple(dt.date.fromisoformat(d) for d in data["sessions"]),
        early_closes={
            dt.date.fromisoformat(d): dt.time.fromisoformat(t) for d, t in data["early_closes"].items()
        },
    )


def _split(name: str, start: dt.date, end: dt.date) -> tuple[_Table | None, dt.date]:
    """The shipped table of ``name`` (if any) and the first day after ``[start, end]``'s part in it:
    days from there on come from exchange_calendars."""
    table = _table(name)
    if table is None:
        return None, start
    return table, max(start, table.last + dt.timedelta(days=1))


@lru_cache(maxsize=4)
def _calendar(name: str, end: dt.date | None = None) -> Any:
    """exchange_calendars' calendar (to a year from today unless ``end`` is given)."""
    import exchange_calendars as xcals  # ~0.8 s with pandas: only past the shipped tables

    try:
        with warnings.catch_warnings():
            # exchange_calendars calls pandas APIs that newer pandas deprecates: not the user's concern.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            return xcals.get_calendar(name, start=_CALENDAR_START, end=None if end is None else str(end))
    except Exception as exc:  # exchange_calendars raises several unrelated types
        raise ConfigurationError(f"unknown exchange calendar {name!r}: {exc}") from exc


def sessions(start: dt.date, end: dt.date, calendar: str = "XNYS") -> list[dt.date]:
    """Trading sessions of ``calendar`` from ``start`` to ``end`` inclusive."""
    if end < start:
        raise ConfigurationError(f"end date {end} is before start date {start}")
    table, rest = _split(calendar, start, end)
    days = [] if table is None else table.sessions[bisect.bisect_left(table.sessions, start) :]
    shipped = list(days[: bisect.bisect_right(days, end)])
    return shipped + (_library_sessions(rest, end, _calendar(calendar)) if rest <= end else [])


def _library_sessions(start: dt.date, end: dt.date, cal: Any) -> list[dt.date]:
    import pandas as pd

    first = max(pd.Timestamp(start), cal.first_session)
    last = min(pd.Timestamp(end), cal.last_session)
    if last < first:
        return []
    return [ts.date() for ts in cal.sessions_in_range(first, last)]


def is_session(day: dt.date, calendar: str = "XNYS") -> bool:
    """Whether ``day`` is a trading session of ``calendar``."""
    return sessions(day, day, calendar) == [day]


def last_known_session(calendar: str = "XNYS") -> dt.date:
    """The last session the installed calendar knows about."""
    last = _calendar(calendar).last_session
    return dt.date(last.year, last.month, last.day)


def early_closes(start: dt.date, end: dt.date, calendar: str = "XNYS") -> dict[dt.date, dt.time]:
    """Sessions in ``[start, end]`` that close early, mapped to their local (ET) close time."""
    table, rest = _split(calendar, start, end)
    shipped = {} if table is None else {d: t for d, t in table.early_closes.items() if start <= d <= end}
    return shipped | (_library_early_closes(rest, end, _calendar(calendar)) if rest <= end else {})


def _library_early_closes(start: dt.date, end: dt.date, cal: Any) -> dict[dt.date, dt.time]:
    import pandas as pd

    closes: dict[dt.date, dt.time] = {}
    for day in _library_sessions(start, end, cal):
        close_utc = cal.session_close(pd.Timestamp(day))
        local = close_utc.tz_convert(EXCHANGE_TZ).time()
        if local < dt.time(16, 0):
            closes[day] = local
    return closes


def calendar_table(name: str, end: dt.date = TABLE_END) -> dict[str, Any]:
    """The shipped table of ``name`` as exchange_calendars computes it (sessions and early closes up to
    ``end``)."""
    first, cal = dt.date.fromisoformat(_CALENDAR_START), _calendar(name, end)
    return {
        "calendar": name,
        "sessions": [d.isoformat() for d in _library_sessions(first, end, cal)],
        "early_closes": {
            d.isoformat(): t.isoformat("minutes") for d, t in _library_early_closes(first, end, cal).items()
        },
    }


def write_table(name: str) -> None:
    """Regenerate ``core/calendars/<name>.json`` (``python -c "from quantmini.core.calendar import
    write_table; write_table('XNYS')"``) after exchange_calendars is upgraded."""
    target = resources.files("quantmini.core").joinpath("calendars", f"{name}.json")
    with resources.as_file(target) as path:
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(calendar_table(name), indent=0) + "\n", encoding="utf-8")


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


def close_instants_ns(days: list[dt.date], calendar: str = "XNYS") -> dict[dt.date, int]:
    """UTC nanoseconds of each day's regular close (16:00 ET, or the early close); a day that is not a
    session (an expiration on a holiday) closes at 16:00 ET."""
    if not days:
        return {}
    early = early_closes(min(days), max(days), calendar)
    return {day: local_instant_ns(day, early.get(day, REGULAR_CLOSE)) for day in set(days)}
