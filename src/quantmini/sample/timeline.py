"""Session timing of a sample: XNYS sessions, bar timestamps and trading windows per session."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from quantmini._exceptions import ConfigurationError
from quantmini.core.calendar import EXCHANGE_TZ, early_closes, last_known_session, sessions
from quantmini.sample.bars import MinuteWindow
from quantmini.sample.csvformat import uses_decimal_format

_NS = 1_000_000_000
_MINUTE_NS = 60 * _NS
#: Minute files start at 04:00 ET; minute offsets below count from there.
_EXTENDED_OPEN = dt.time(4, 0)
_REGULAR_OPEN = dt.time(9, 30)
_REGULAR_CLOSE = dt.time(16, 0)
_EXTENDED_AFTER_CLOSE = dt.timedelta(hours=4)


def midnight_ns(session: dt.date) -> int:
    """``window_start`` of a day bar: 00:00 America/New_York of ``session``, in UTC nanoseconds."""
    local = dt.datetime.combine(session, dt.time(0, 0), tzinfo=ZoneInfo(EXCHANGE_TZ))
    return int(local.timestamp()) * _NS


def _minutes_after_four(moment: dt.time) -> int:
    return (moment.hour - _EXTENDED_OPEN.hour) * 60 + moment.minute - _EXTENDED_OPEN.minute


@dataclass(frozen=True, slots=True)
class Timeline:
    """The sessions of a sample and everything timed per session."""

    sessions: list[dt.date]
    #: The session after the last one (for the stray-row defect).
    next_session: dt.date
    decimal: NDArray[np.bool_]
    windows: list[MinuteWindow]

    def day_start_ns(self, index: int) -> int:
        """``window_start`` of day bars on session ``index``."""
        return midnight_ns(self.sessions[index])

    def minute_start_ns(self, index: int, minutes: NDArray[np.int64]) -> NDArray[np.int64]:
        """``window_start`` of minute bars ``minutes`` after 04:00 ET on session ``index``."""
        base = midnight_ns(self.sessions[index]) + _EXTENDED_OPEN.hour * 3600 * _NS
        return np.asarray(base + minutes * _MINUTE_NS, dtype=np.int64)


def build_timeline(start: dt.date, end: dt.date) -> Timeline:
    """The XNYS sessions from ``start`` to ``end`` with their windows and number formats."""
    days = sessions(start, end)
    if not days:
        raise ConfigurationError(f"no XNYS session between {start} and {end}: nothing to generate")
    early = early_closes(days[0], days[-1])
    windows: list[MinuteWindow] = []
    for day in days:
        close = early.get(day, _REGULAR_CLOSE)
        extended_end = (dt.datetime.combine(day, close) + _EXTENDED_AFTER_CLOSE).time()
        windows.append(
            MinuteWindow(
                end=_minutes_after_four(extended_end),
                regular_open=_minutes_after_four(_REGULAR_OPEN),
                regular_close=_minutes_after_four(close),
            )
        )
    return Timeline(
        sessions=days,
        next_session=_next_session(days[-1]),
        decimal=np.array([uses_decimal_format(d) for d in days], dtype=np.bool_),
        windows=windows,
    )


def _next_session(day: dt.date) -> dt.date:
    """The first session after ``day`` (the next weekday past the calendar's end)."""
    if day < last_known_session():
        later = sessions(day + dt.timedelta(days=1), min(day + dt.timedelta(days=10), last_known_session()))
        if later:
            return later[0]
    nxt = day + dt.timedelta(days=1)
    while nxt.weekday() >= 5:
        nxt += dt.timedelta(days=1)
    return nxt
