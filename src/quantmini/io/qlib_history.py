"""The raw history beside a Qlib root: per symbol, the silver values its Qlib files were computed from.

A Qlib root holds *adjusted* prices, so when a split or dividend changes a symbol's factors its files must
be recomputed from raw prices. Reading one symbol back from thousands of session partitions costs a scan
of the whole silver history; this file per symbol makes it a single small read. It is laid out like the
``.bin`` files, one row per calendar position of the symbol's span (little-endian float64, one column per
raw value, no header: the span is in the gold state), NaN rows where the symbol has no bar, and it is
created, appended to, cut back and replaced together with them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import numpy.typing as npt

from quantmini.io.atomic import append_at, replace_file_fast

DTYPE = "<f8"
SUFFIX = ".f8"
_ITEM = np.dtype(DTYPE).itemsize


def history_file(directory: Path | str, dirname: str) -> str:
    """Path of a symbol's history file (``dirname`` as in ``features/<dirname>``)."""
    return os.path.join(directory, dirname + SUFFIX)


def rows_array(
    start: int, length: int, positions: npt.NDArray[np.int64], values: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """``length`` rows from calendar position ``start``: ``values`` (rows × columns) at ``positions``."""
    out = np.full((length, values.shape[1]), np.nan, dtype=DTYPE)
    out[positions - start] = values
    return out


def write_history(path: str, rows: npt.NDArray[np.float64], *, atomic: bool) -> None:
    """Create (or, ``atomic``, replace through a temporary file) a history file."""
    if not atomic:
        with open(path, "wb", buffering=0) as handle:
            handle.write(rows.data)
        return
    replace_file_fast(path, rows.data)


def append_history(path: str, span: tuple[int, int], rows: npt.NDArray[np.float64]) -> bool:
    """Append ``rows`` after the known span (cutting back a half-done append first); ``False`` when the
    file is missing or shorter than the span."""
    return append_at(path, rows.data, (span[1] - span[0] + 1) * rows.shape[1] * _ITEM)


def truncate_history(path: str, span: tuple[int, int] | None, columns: int) -> None:
    """Cut a history file back to ``span`` (remove it when ``None``)."""
    if span is None:
        if os.path.exists(path):
            os.remove(path)
        return
    if os.path.exists(path):
        os.truncate(path, (span[1] - span[0] + 1) * columns * _ITEM)


def read_history(path: str, span: tuple[int, int], columns: int) -> npt.NDArray[np.float64] | None:
    """The rows of ``span`` (positions × columns), or ``None`` when the file is missing or short."""
    count = (span[1] - span[0] + 1) * columns
    try:
        data = np.fromfile(path, dtype=DTYPE, count=count)
    except FileNotFoundError:
        return None
    if data.size < count:
        return None
    return data.reshape(-1, columns)
