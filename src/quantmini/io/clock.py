"""The time the network adapters read and wait on, passed in so tests can run on virtual time.

Request pacing, retry backoff and ``Retry-After`` waits ask a :class:`Clock` for the time and for their
sleeps instead of calling :mod:`time` and :mod:`asyncio` directly. :data:`SYSTEM_CLOCK` is the real one and
the default everywhere; a test passes a clock that records each requested sleep and advances its own time,
then asserts that schedule rather than how fast the machine happened to run.
"""

from __future__ import annotations

import asyncio
import time
from typing import Final, Protocol


class Clock(Protocol):
    """Monotonic time for intervals, wall time for HTTP dates, and an async sleep."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (only differences mean anything)."""
        ...

    def time(self) -> float:
        """Wall-clock seconds since the Unix epoch (to turn an HTTP date into a wait)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` without blocking the event loop."""
        ...


class SystemClock:
    """The real clock: :func:`time.monotonic`, :func:`time.time` and :func:`asyncio.sleep`."""

    def monotonic(self) -> float:
        """:func:`time.monotonic`."""
        return time.monotonic()

    def time(self) -> float:
        """:func:`time.time`."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        """:func:`asyncio.sleep`."""
        await asyncio.sleep(seconds)


#: The clock used when none is given.
SYSTEM_CLOCK: Final[Clock] = SystemClock()
