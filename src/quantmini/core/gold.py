"""Silver bars + the compact factor table → the long table the Qlib writer takes.

Qlib expects adjusted OHLC and ``factor = adjusted / raw`` so that ``$close / $factor`` is the raw close
and ``$volume * $factor`` the raw volume. A minute bar takes the factor of its session.

Flat files carry no VWAP. A day's ``vwap`` is the volume-weighted typical price of its regular-session
minute bars (``minute_vwap``, from the ``stocks_minute_rollups`` silver table) when the lake holds minute
bars of that ticker and session; otherwise the day's own typical price (high + low + close) / 3 — a proxy,
stated here and in the docs so nobody mistakes it for a traded VWAP. A minute bar's ``vwap`` is its
typical price. ``change`` is silver's ``ret_1d``: the total return since the previous session (NaN when
the symbol had no bar there). ``opt_volume``, ``pcr``, ``iv30`` and ``skew25`` are the day's option
aggregates of the stock (NaN when the lake holds no options on it that day). Each output row depends
only on its own silver row and its factor, which is what lets the gold stage append sessions and
rewrite only the symbols whose factors changed.
"""

from __future__ import annotations

import polars as pl

from quantmini.core.adjustment import factors_on

#: Per-underlying option aggregates the daily root carries (``silver/options_underlying_daily``), as they
#: are (contracts traded, ratios, volatilities: nothing a split changes); NaN where the day has none.
OPTION_DAY_FIELDS: tuple[str, ...] = ("opt_volume", "pcr", "iv30", "skew25")
QLIB_DAY_FIELDS: tuple[str, ...] = (
    "open",
    "high",
    "low",
    "close",
    "volume",
    "vwap",
    "factor",
    "change",
    *OPTION_DAY_FIELDS,
)
QLIB_MINUTE_FIELDS: tuple[str, ...] = ("open", "high", "low", "close", "volume", "vwap", "factor")

_TYPICAL = (pl.col("high") + pl.col("low") + pl.col("close")) / 3


def _adjusted(silver: pl.DataFrame, intervals: pl.DataFrame, vwap: pl.Expr) -> pl.DataFrame:
    """``symbol``, ``datetime``, adjusted OHLC, volume and ``vwap`` (a raw price), and ``factor``."""
    factor = pl.col("adj_factor")
    return factors_on(silver, intervals).with_columns(
        pl.col("ticker").alias("symbol"),
        (pl.col("open") * factor).alias("open"),
        (pl.col("high") * factor).alias("high"),
        (pl.col("low") * factor).alias("low"),
        (pl.col("close") * factor).alias("close"),
        (pl.col("volume") / factor).alias("volume"),
        (vwap * factor).alias("vwap"),
        factor.alias("factor"),
    )


def qlib_daily_frame(silver: pl.DataFrame, intervals: pl.DataFrame) -> pl.DataFrame:
    """Columns ``symbol``, ``datetime`` (Date) and :data:`QLIB_DAY_FIELDS` as Float64, input row order."""
    vwap = pl.coalesce(pl.col("minute_vwap"), _TYPICAL) if "minute_vwap" in silver.columns else _TYPICAL
    frame = _adjusted(silver, intervals, vwap).with_columns(pl.col("ret_1d").alias("change"))
    return frame.select("symbol", "datetime", *(pl.col(f).cast(pl.Float64) for f in QLIB_DAY_FIELDS))


def qlib_minute_frame(silver: pl.DataFrame, intervals: pl.DataFrame) -> pl.DataFrame:
    """Columns ``symbol``, ``datetime`` (naive exchange-local bar start) and :data:`QLIB_MINUTE_FIELDS`."""
    frame = _adjusted(silver, intervals, _TYPICAL)
    return frame.select("symbol", "datetime", *(pl.col(f).cast(pl.Float64) for f in QLIB_MINUTE_FIELDS))
