"""Adjusted prices and per-symbol features over multi-day windows (silver layer of daily bars).

Windows count each symbol's own bars (a halted day is not a bar). Features are null only where a
symbol's history is shorter than the window.
"""

from __future__ import annotations

import polars as pl

#: Window lengths in bars.
RETURN_HORIZONS = (1, 5, 20)
VOLATILITY_WINDOW = 20
VOLUME_Z_WINDOW = 20


def apply_adjustment(bars: pl.DataFrame, factors: pl.DataFrame) -> pl.DataFrame:
    """Join factors onto raw bars and add ``adj_open/high/low/close`` and ``adj_volume``."""
    joined = bars.join(factors, on=["ticker", "session_date"], how="left").with_columns(
        pl.col("split_factor").fill_null(1.0), pl.col("adj_factor").fill_null(1.0)
    )
    return joined.with_columns(
        *[(pl.col(c) * pl.col("adj_factor")).alias(f"adj_{c}") for c in ("open", "high", "low", "close")],
        (pl.col("volume") / pl.col("split_factor")).alias("adj_volume"),
    )


def daily_features(adjusted: pl.DataFrame) -> pl.DataFrame:
    """Add ``ret_1d/5d/20d`` (simple returns of adj_close), ``vol_20d`` (sample std of ret_1d over 20
    bars) and ``volume_z_20d`` ((adj_volume − mean) / std over the last 20 bars, current included)."""
    frame = adjusted.sort("ticker", "session_date")
    close = pl.col("adj_close")
    frame = frame.with_columns(
        [(close / close.shift(h).over("ticker") - 1).alias(f"ret_{h}d") for h in RETURN_HORIZONS]
    )
    vol_mean = pl.col("adj_volume").rolling_mean(VOLUME_Z_WINDOW).over("ticker")
    vol_std = pl.col("adj_volume").rolling_std(VOLUME_Z_WINDOW).over("ticker")
    return frame.with_columns(
        pl.col("ret_1d").rolling_std(VOLATILITY_WINDOW).over("ticker").alias("vol_20d"),
        pl.when(vol_std > 0)
        .then((pl.col("adj_volume") - vol_mean) / vol_std)
        .otherwise(None)
        .alias("volume_z_20d"),
    )
