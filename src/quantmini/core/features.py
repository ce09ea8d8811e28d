"""Silver features of daily stock bars, computed from raw bars and corporate-action multipliers.

Windows count exchange sessions (see :mod:`quantmini.core.window`): a missing bar inside a window makes
the feature null. Every feature is scale-free, so a later split or dividend never changes a stored value:
prices of earlier sessions are brought into the current session's share basis with the multipliers of
the actions *inside* the window only.

* ``ret_1d``, ``ret_5d``, ``ret_20d``: simple total returns (splits and dividends adjusted) over 1, 5,
  20 sessions: ``close(D) / (close(D−h) × ∏ m) − 1`` with ``m`` the multipliers of actions in (D−h, D].
* ``vol_20d``: sample standard deviation (ddof = 1) of ``ret_1d`` over the 20 sessions ending at D.
* ``volume_z_20d``: ``(v(D) − mean) / std`` of the split-adjusted volume over the 20 sessions ending at
  D (current included); null when the standard deviation is 0.
* ``price_ret_1d``: the price return since the previous session, splits adjusted and dividends not:
  ``close(D) / (close(D−1) × s) − 1`` with ``s`` the split multiplier of D (the change of the split-only
  close, the split-only Qlib root's ``$change``). It reads no dividend, so a dividend never changes it.
"""

from __future__ import annotations

import polars as pl

from quantmini.core.window import (
    SessionWindow,
    align,
    finite_or_null,
    lag,
    output_rows,
    product,
    with_relative_basis,
    with_window_stats,
)

#: Return horizons in sessions.
RETURN_HORIZONS = (1, 5, 20)
VOLATILITY_WINDOW = 20
VOLUME_Z_WINDOW = 20
FEATURES = ("ret_1d", "ret_5d", "ret_20d", "vol_20d", "volume_z_20d", "price_ret_1d")


def return_over(horizon: int) -> pl.Expr:
    """Total return over ``horizon`` sessions on an aligned frame (raw closes + total multipliers)."""
    basis = product([lag(pl.col("total_multiplier"), j) for j in range(horizon)])
    return pl.col("close") / (lag(pl.col("close"), horizon) * basis) - 1


def feature_columns() -> list[pl.Expr]:
    """The daily returns as expressions on an :func:`~quantmini.core.window.align`-ed frame."""
    price_return = pl.col("close") / (lag(pl.col("close"), 1) * pl.col("split_multiplier")) - 1
    return [
        *(finite_or_null(return_over(h)).alias(f"ret_{h}d") for h in RETURN_HORIZONS),
        finite_or_null(price_return).alias("price_ret_1d"),
    ]


def stocks_daily_silver(window: SessionWindow) -> pl.DataFrame:
    """Silver rows of the output sessions: the bronze columns plus :data:`FEATURES`."""
    columns = window.bars.columns
    frame = align(window, columns)
    frame = frame.with_columns(feature_columns())
    frame = with_window_stats(frame, "_ret", [lag(pl.col("ret_1d"), k) for k in range(VOLATILITY_WINDOW)])
    frame, split_basis = with_relative_basis(frame, "split_multiplier", VOLUME_Z_WINDOW)
    volumes = [lag(pl.col("volume"), k) / split_basis[k] for k in range(VOLUME_Z_WINDOW)]
    frame = with_window_stats(frame, "_vol", volumes)
    mean, std = pl.col("_vol_mean"), pl.col("_vol_std")
    frame = frame.with_columns(
        finite_or_null(pl.col("_ret_std")).alias("vol_20d"),
        finite_or_null(pl.when(std > 0).then((pl.col("volume") - mean) / std)).alias("volume_z_20d"),
    )
    return output_rows(frame, window).select(*columns, *FEATURES)
