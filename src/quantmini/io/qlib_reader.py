"""Read one instrument back from a Qlib provider root, as ``D.features`` returns it, without qlib.

For a look at a root (the demo, a check after a build) where importing qlib would cost seconds or qlib
is not installed. Rows are the calendar entries of the instrument's span in ``instruments/all.txt``,
NaN where it has no bar, values as stored (float32).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl

from quantmini._exceptions import ValidationError
from quantmini.core.qlib_encoding import CALENDAR_FORMATS, check_freq, decode_bin, qlib_dir_name


def read_instrument(
    root: Path,
    freq: str,
    symbol: str,
    fields: Sequence[str],
    start: dt.datetime | dt.date | None = None,
    end: dt.datetime | dt.date | None = None,
) -> pl.DataFrame:
    """``datetime`` and one ``$field`` column per field for ``symbol`` (its stored name) between ``start``
    and ``end`` (inclusive, by calendar entry); raises :class:`ValidationError` naming what is missing."""
    freq = check_freq(freq)
    calendar = _read_lines(root / "calendars" / f"{freq}.txt")
    span = _span(root / "instruments" / "all.txt", symbol)
    index = {line: i for i, line in enumerate(calendar)}
    first, last = index.get(span[0]), index.get(span[1])
    if first is None or last is None:
        raise ValidationError(
            f"{root}: the span of {symbol!r} ({span[0]} .. {span[1]}) is not on its calendar"
        )
    times = pl.Series("datetime", calendar[first : last + 1]).str.to_datetime(CALENDAR_FORMATS[freq])
    frame = pl.DataFrame([times if freq == "1min" else times.dt.date()])
    for field in fields:
        path = root / "features" / qlib_dir_name(symbol) / f"{field.lower()}.{freq}.bin"
        try:
            begin, values = decode_bin(path.read_bytes())
        except OSError as exc:
            raise ValidationError(f"cannot read {path}: {exc.strerror or exc}") from exc
        column = np.full(last - first + 1, np.nan, dtype=np.float32)
        lo, hi = max(begin, first), min(begin + len(values), last + 1)
        if hi > lo:
            column[lo - first : hi - first] = values[lo - begin : hi - begin]
        frame = frame.with_columns(pl.Series(f"${field}", column))
    if start is not None:
        frame = frame.filter(pl.col("datetime") >= start)
    if end is not None:
        frame = frame.filter(pl.col("datetime") <= end)
    return frame


def _read_lines(path: Path) -> list[str]:
    try:
        return [line for line in path.read_text().splitlines() if line]
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _span(path: Path, symbol: str) -> tuple[str, str]:
    for line in _read_lines(path):
        name, first, last = line.split("\t")
        if name == symbol:
            return first, last
    raise ValidationError(f"{path}: no instrument {symbol!r}")
