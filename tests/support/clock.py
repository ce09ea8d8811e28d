"""A virtual clock for the network adapters: sleeps are recorded and advance time instantly.

``sleep(s)`` appends ``s`` to :attr:`VirtualClock.sleeps`, moves :meth:`monotonic` on by ``s`` and yields
once to the event loop. Sleeps happen one after another on the virtual timeline (right for the pacer, which
lets one caller wait at a time; concurrent sleepers would add up). Nothing else moves the clock unless a
test calls :meth:`advance`: network round trips take no virtual time, so a test's expected schedule is
exact arithmetic, whatever the machine's load.
"""

from __future__ import annotations

import asyncio

#: Wall time of the virtual clock's start: 2024-01-02T15:00:00Z (any fixed instant would do).
WALL_START = 1_704_207_600.0


class VirtualClock:
    """Implements :class:`quantmini.io.clock.Clock` on virtual time."""

    def __init__(self, start: float = 1000.0, wall_start: float = WALL_START) -> None:
        self.start = start
        self.now = start
        self.wall_start = wall_start
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.wall_start + (self.now - self.start)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(seconds, 0.0)
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass without anybody sleeping (work that took time)."""
        self.now += seconds

    def elapsed(self) -> float:
        """Virtual seconds since the start."""
        return self.now - self.start
