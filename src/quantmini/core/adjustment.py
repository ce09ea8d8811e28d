"""Adjustment factors from cleaned corporate actions, following the vendor's semantics.

* Bars on a split's execution date are already post-split. A raw price on session D is multiplied by
  the product of ``split_from / split_to`` over every split executed **after** D (``split_factor``).
* A cash dividend with ex-date E multiplies every price before E by ``1 - cash / close_before_E``
  (the raw close of the ticker's last bar before E, in the same share basis as the raw cash amount).
  ``adj_factor`` = ``split_factor`` × the product of those multipliers over ex-dates after D.

Adjusted price = raw × factor; split-adjusted volume = raw volume / split_factor.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

FACTOR_SCHEMA: dict[str, pl.DataType] = {
    "ticker": pl.String(),
    "session_date": pl.Date(),
    "split_factor": pl.Float64(),
    "adj_factor": pl.Float64(),
}


def dividend_multipliers(closes: pl.DataFrame, dividends: pl.DataFrame) -> pl.DataFrame:
    """Per dividend: ``1 - cash / previous raw close``; dividends with no earlier bar are dropped.

    ``closes``: ticker, session_date, close (raw). Returns ticker, event_date, multiplier, and
    ``reason`` (null when usable; a text when the dividend cannot be applied).
    """
    events = dividends.select("ticker", pl.col("ex_dividend_date").alias("event_date"), "cash_amount").sort(
        "ticker", "event_date"
    )
    prior = closes.select(
        "ticker",
        # Shift by one day so the backward as-of match finds the last bar strictly before the ex-date.
        (pl.col("session_date") + dt.timedelta(days=1)).alias("event_date"),
        pl.col("close").alias("close_before"),
    ).sort("ticker", "event_date")
    joined = events.join_asof(
        prior, on="event_date", by="ticker", strategy="backward", check_sortedness=False
    )
    mult = 1 - pl.col("cash_amount") / pl.col("close_before")
    return joined.filter(pl.col("close_before").is_not_null()).select(
        "ticker",
        "event_date",
        mult.alias("multiplier"),
        pl.when(mult <= 0)
        .then(pl.lit("dividend not below the previous close"))
        .otherwise(None)
        .alias("reason"),
    )


def adjustment_factors(closes: pl.DataFrame, splits: pl.DataFrame, dividends: pl.DataFrame) -> pl.DataFrame:
    """Factors per (ticker, session_date) of ``closes`` (ticker, session_date, close — raw).

    ``splits`` and ``dividends`` must already be cleaned (:mod:`quantmini.core.corporate_actions`).
    """
    split_events = splits.select(
        "ticker",
        pl.col("execution_date").alias("event_date"),
        (pl.col("split_from") / pl.col("split_to")).alias("multiplier"),
    )
    divs = dividend_multipliers(closes, dividends).filter(pl.col("reason").is_null()).drop("reason")
    bars = closes.select("ticker", "session_date").sort("ticker", "session_date")
    split_factor = _factor_after(bars, split_events, "split_factor")
    total = _factor_after(bars, pl.concat([split_events, divs], how="vertical_relaxed"), "adj_factor")
    return split_factor.join(total, on=["ticker", "session_date"], how="left").select(
        [pl.col(name).cast(dtype) for name, dtype in FACTOR_SCHEMA.items()]
    )


def _factor_after(bars: pl.DataFrame, events: pl.DataFrame, name: str) -> pl.DataFrame:
    """For each bar, the product of event multipliers with ``event_date > session_date``."""
    if events.is_empty():
        return bars.with_columns(pl.lit(1.0).alias(name))
    per_day = (
        events.group_by("ticker", "event_date")
        .agg(pl.col("multiplier").product())
        .sort("ticker", "event_date", descending=[False, True])
        .with_columns(pl.col("multiplier").cum_prod().over("ticker").alias("cumulative"))
        # event_date - 1 day >= D  <=>  event_date > D, so a forward as-of picks the first later event.
        .with_columns((pl.col("event_date") - dt.timedelta(days=1)).alias("session_date"))
        .sort("ticker", "session_date")
        .select("ticker", "session_date", "cumulative")
    )
    joined = bars.join_asof(
        per_day, on="session_date", by="ticker", strategy="forward", check_sortedness=False
    )
    return joined.select("ticker", "session_date", pl.col("cumulative").fill_null(1.0).alias(name))
