"""The lake report: one self-contained HTML page showing what the lake holds and what went wrong.

>>> from quantmini.report import write_report
>>> write_report(Lake(Path("data/lake")), Path("report.html"), symbols=["AAPL"])  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from quantmini.io.atomic import write_text_atomic
from quantmini.io.lake import Lake
from quantmini.report.gather import gather
from quantmini.report.html import render

__all__ = ["write_report"]


def write_report(
    lake: Lake,
    output: Path,
    symbols: Sequence[str] = (),
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> Path:
    """Write the report of ``lake`` (sessions ``start`` … ``end``, default all) to ``output``, atomically;
    ``symbols`` get a raw vs adjusted close chart each."""
    write_text_atomic(output, render(gather(lake, symbols, start, end)))
    return output
