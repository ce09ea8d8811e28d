"""Silver daily bars → the long table the Qlib writer takes (Qlib's adjusted-price conventions).

Qlib expects adjusted OHLC and ``factor = adjusted / raw`` so that ``$close / $factor`` is the raw close
and ``$volume * $factor`` the raw volume. Flat files carry no VWAP, so ``vwap`` is the adjusted typical
price (high + low + close) / 3 — stated here and in the docs so nobody mistakes it for a traded VWAP.
"""

from __future__ import annotations

import polars as pl

QLIB_DAY_FIELDS: tuple[str, ...] = ("open", "high", "low", "close", "volume", "vwap", "factor", "change")


def qlib_daily_frame(silver: pl.DataFrame) -> pl.DataFrame:
    """Columns ``symbol``, ``datetime`` (Date) and :data:`QLIB_DAY_FIELDS` as Float64."""
    frame = silver.sort("ticker", "session_date")
    return frame.select(
        pl.col("ticker").alias("symbol"),
        pl.col("session_date").alias("datetime"),
        pl.col("adj_open").alias("open"),
        pl.col("adj_high").alias("high"),
        pl.col("adj_low").alias("low"),
        pl.col("adj_close").alias("close"),
        (pl.col("volume") / pl.col("adj_factor")).alias("volume"),
        ((pl.col("adj_high") + pl.col("adj_low") + pl.col("adj_close")) / 3).alias("vwap"),
        pl.col("adj_factor").alias("factor"),
        (pl.col("adj_close") / pl.col("adj_close").shift(1).over("ticker") - 1).alias("change"),
    ).with_columns(pl.col(QLIB_DAY_FIELDS).cast(pl.Float64))
