"""Silver daily bars + the compact factor table → the long table the Qlib writer takes.

Qlib expects adjusted OHLC and ``factor = adjusted / raw`` so that ``$close / $factor`` is the raw close
and ``$volume * $factor`` the raw volume. Flat files carry no VWAP, so ``vwap`` is the adjusted typical
price (high + low + close) / 3 — stated here and in the docs so nobody mistakes it for a traded VWAP.
``change`` is silver's ``ret_1d``: the total return since the previous session (NaN when the symbol had
no bar there). Each output row depends only on its own silver row and its factor, which is what lets the
gold stage append sessions and rewrite only the symbols whose factors changed.
"""

from __future__ import annotations

import polars as pl

from quantmini.core.adjustment import factors_on

QLIB_DAY_FIELDS: tuple[str, ...] = ("open", "high", "low", "close", "volume", "vwap", "factor", "change")


def qlib_daily_frame(silver: pl.DataFrame, intervals: pl.DataFrame) -> pl.DataFrame:
    """Columns ``symbol``, ``datetime`` (Date) and :data:`QLIB_DAY_FIELDS` as Float64, input row order."""
    factor = pl.col("adj_factor")
    frame = factors_on(silver, intervals)
    return frame.select(
        pl.col("ticker").alias("symbol"),
        pl.col("session_date").alias("datetime"),
        (pl.col("open") * factor).alias("open"),
        (pl.col("high") * factor).alias("high"),
        (pl.col("low") * factor).alias("low"),
        (pl.col("close") * factor).alias("close"),
        (pl.col("volume") / factor).alias("volume"),
        ((pl.col("high") + pl.col("low") + pl.col("close")) / 3 * factor).alias("vwap"),
        factor.alias("factor"),
        pl.col("ret_1d").alias("change"),
    ).with_columns(pl.col(QLIB_DAY_FIELDS).cast(pl.Float64))
