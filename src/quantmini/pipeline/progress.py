"""Progress reporting seam: the library reports, the CLI renders (rich progress bars)."""

from __future__ import annotations

from typing import Protocol


class ProgressListener(Protocol):
    """Receives stage progress; implementations must be cheap and never raise."""

    def start(self, stage: str, total: int, unit: str = "items") -> None:
        """A stage begins with ``total`` units of work (``items`` or ``bytes``)."""

    def advance(self, stage: str, detail: str = "", amount: int = 1) -> None:
        """``amount`` units of ``stage`` finished."""

    def finish(self, stage: str) -> None:
        """The stage ended."""


class NullProgress:
    """A listener that ignores everything (library default)."""

    def start(self, stage: str, total: int, unit: str = "items") -> None:
        """Ignore."""

    def advance(self, stage: str, detail: str = "", amount: int = 1) -> None:
        """Ignore."""

    def finish(self, stage: str) -> None:
        """Ignore."""
