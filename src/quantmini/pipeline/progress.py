"""Progress reporting seam: the library reports, the CLI renders (rich progress bars)."""

from __future__ import annotations

from typing import Protocol


class ProgressListener(Protocol):
    """Receives stage progress; implementations must be cheap and never raise."""

    def start(self, stage: str, total: int) -> None:
        """A stage begins with ``total`` units of work."""

    def advance(self, stage: str, detail: str = "") -> None:
        """One unit of ``stage`` finished."""

    def finish(self, stage: str) -> None:
        """The stage ended."""


class NullProgress:
    """A listener that ignores everything (library default)."""

    def start(self, stage: str, total: int) -> None:
        """Ignore."""

    def advance(self, stage: str, detail: str = "") -> None:
        """Ignore."""

    def finish(self, stage: str) -> None:
        """Ignore."""
