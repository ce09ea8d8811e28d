"""Order and key checks on frames, cheap on the common case of a file already sorted by its key.

Vendor files list rows by ticker then time, so comparing each row with the previous one (a linear pass)
usually proves a frame sorted and its keys unique without hashing or sorting millions of rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl


def _after_previous(columns: Sequence[str], *, strict: bool) -> pl.Expr:
    """Per row: is it after (``strict``) or not before the previous row, lexicographically?

    The first row has no previous row and counts as in order.
    """
    result: pl.Expr = pl.lit(not strict)
    for name in reversed(columns):
        current, previous = pl.col(name), pl.col(name).shift(1)
        result = (current > previous) | ((current == previous) & result)
    return result.fill_null(True)


def is_sorted_by(frame: pl.DataFrame, columns: Sequence[str]) -> bool:
    """Whether ``frame`` is in non-decreasing lexicographic order of ``columns`` (no nulls expected)."""
    if frame.height < 2:
        return True
    return bool(frame.select(_after_previous(columns, strict=False).all()).item())


def duplicated_keys(frame: pl.DataFrame, columns: Sequence[str]) -> pl.Series:
    """Boolean mask of rows whose ``columns`` values occur on more than one row.

    Sorted frames are checked against their neighbours; others fall back to hashing.
    """
    if frame.height < 2:
        return pl.Series("duplicated", [False] * frame.height, dtype=pl.Boolean)
    if is_sorted_by(frame, columns):
        same_as_previous = pl.all_horizontal([pl.col(c) == pl.col(c).shift(1) for c in columns]).fill_null(
            False
        )
        mask = same_as_previous | same_as_previous.shift(-1).fill_null(False)
        return frame.select(mask.alias("duplicated")).to_series()
    return frame.select(pl.struct(list(columns)).is_duplicated().alias("duplicated")).to_series()
