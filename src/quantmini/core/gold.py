"""Silver bars + the compact factor table → the long table the Qlib writer takes, in one adjustment.

Qlib expects adjusted OHLC and ``factor = adjusted / raw`` so that ``$close / $factor`` is the raw close
and ``$volume * $factor`` the raw volume. The factor is the adjustment's (:mod:`~quantmini.core.
adjustment_names`): ``adj_factor`` for the total-return root, ``split_factor`` for the split-only root.
Prices, ``vwap`` and volume all use it, so ``$close * $volume`` is the raw traded value in both. A minute
bar takes the factor of its session.

Flat files carry no VWAP. A day's ``vwap`` is the volume-weighted typical price of its regular-session
minute bars (``minute_vwap``, from the ``stocks_minute_rollups`` silver table) when the lake holds minute
bars of that ticker and session; otherwise the day's own typical price (high + low + close) / 3 — a proxy,
stated here and in the docs so nobody mistakes it for a traded VWAP. A minute bar's ``vwap`` is its
typical price. ``change`` is the change of the root's own close since the previous session (NaN when
the symbol had no bar there): silver's ``ret_1d`` (the total return) in the total-return root, its
``price_ret_1d`` (splits adjusted, dividends not) in the split-only root. ``opt_volume``, ``pcr``,
``iv30`` and ``skew25`` are the day's option aggregates of the stock (NaN when the lake holds no options
on it that day). Each output row depends only on its own silver row and its factor, which is what lets
the gold stage append sessions and rewrite only the symbols whose factors changed.
"""

from __future__ import annotations

import polars as pl

from quantmini.core.adjustment import factors_on
from quantmini.core.adjustment_names import FACTOR_COLUMNS, RETURN_COLUMNS, Adjustment

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
#: What each field of a Qlib root holds (``quantmini schema show --layer gold``). "Adjusted" is the
#: root's adjustment: total return under ``gold/qlib``, splits only under ``gold/qlib_split``.
QLIB_FIELD_DOCS: dict[str, str] = {
    "open": "adjusted open: raw open × $factor",
    "high": "adjusted high: raw high × $factor",
    "low": "adjusted low: raw low × $factor",
    "close": "adjusted close: raw close × $factor",
    "volume": "adjusted volume: raw volume / $factor (so $close × $volume is the raw traded value)",
    "vwap": "adjusted VWAP of the regular-session minute bars, else the typical price (high+low+close)/3",
    "factor": "adjusted / raw price: the root's adjustment factor of the session (constant between actions)",
    "change": "change of the root's own close since the previous session (NaN without a bar there)",
    "opt_volume": "option contracts traded on the stock that session (NaN: no options in the lake)",
    "pcr": "put / call option volume on the stock that session",
    "iv30": "at-the-money implied volatility of the stock's options at 30 days",
    "skew25": "25-delta put IV minus 25-delta call IV of the stock's options at 30 days",
}

_TYPICAL = (pl.col("high") + pl.col("low") + pl.col("close")) / 3


def _adjusted(
    silver: pl.DataFrame, intervals: pl.DataFrame, vwap: pl.Expr, adjustment: Adjustment
) -> pl.DataFrame:
    """``symbol``, ``datetime``, OHLC, volume and ``vwap`` (a raw price) adjusted by ``adjustment``, and
    its ``factor``."""
    factor = pl.col(FACTOR_COLUMNS[adjustment])
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


def qlib_daily_frame(
    silver: pl.DataFrame, intervals: pl.DataFrame, adjustment: Adjustment = "total_return"
) -> pl.DataFrame:
    """Columns ``symbol``, ``datetime`` (Date) and :data:`QLIB_DAY_FIELDS` as Float64, input row order."""
    vwap = pl.coalesce(pl.col("minute_vwap"), _TYPICAL) if "minute_vwap" in silver.columns else _TYPICAL
    change = pl.col(RETURN_COLUMNS[adjustment]).alias("change")
    frame = _adjusted(silver, intervals, vwap, adjustment).with_columns(change)
    return frame.select("symbol", "datetime", *(pl.col(f).cast(pl.Float64) for f in QLIB_DAY_FIELDS))


def qlib_minute_frame(
    silver: pl.DataFrame, intervals: pl.DataFrame, adjustment: Adjustment = "total_return"
) -> pl.DataFrame:
    """Columns ``symbol``, ``datetime`` (naive exchange-local bar start) and :data:`QLIB_MINUTE_FIELDS`."""
    frame = _adjusted(silver, intervals, _TYPICAL, adjustment)
    return frame.select("symbol", "datetime", *(pl.col(f).cast(pl.Float64) for f in QLIB_MINUTE_FIELDS))
