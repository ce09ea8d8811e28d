"""Adjustment factors from cleaned corporate actions, following the vendor's semantics.

* Bars on a split's execution date are already post-split. A raw price on session D is multiplied by
  the product of ``split_from / split_to`` over every split executed **after** D (``split_factor``).
* A cash dividend with ex-date E multiplies every price before E by ``1 - cash / close_before_E``
  (the raw close of the ticker's last bar before E, in the same share basis as the raw cash amount).
  ``adj_factor`` = ``split_factor`` × the product of those multipliers over ex-dates after D.

Adjusted price = raw × factor; split-adjusted volume = raw volume / split_factor.

Renames: a ticker's bars before it was renamed (FB before 2022-06-09) belong to the company that now
trades under the new ticker (META), so corporate actions of the new ticker after the change adjust them
too. Factors are computed per *entity* — the last name a bar's company took — found by following
renames whose change date is after the bar. A ticker reused by another company after a rename keeps its
own, separate history.
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


#: Longest chain of renames followed (A → B → C …); real chains are short.
MAX_RENAME_CHAIN = 16


def entity_of(frame: pl.DataFrame, date_column: str, renames: pl.DataFrame | None) -> pl.Series:
    """The entity (latest name) of each row's ``ticker`` as of ``date_column``."""
    entity = frame.select(pl.col("ticker").alias("entity"), pl.col(date_column).alias("_d"))
    if renames is None or renames.is_empty():
        return entity["entity"]
    # change_date - 1 day >= d  <=>  change_date > d: the forward as-of match finds the first later rename.
    table = (
        renames.select(
            pl.col("old_ticker").alias("entity"),
            (pl.col("change_date") - dt.timedelta(days=1)).alias("_d"),
            pl.col("new_ticker").alias("_next"),
        )
        .unique(subset=["entity", "_d"], keep="first")
        .sort("entity", "_d")
    )
    entity = entity.with_row_index("_row")
    for _ in range(MAX_RENAME_CHAIN):
        stepped = entity.sort("entity", "_d").join_asof(
            table, on="_d", by="entity", strategy="forward", check_sortedness=False
        )
        if stepped["_next"].null_count() == stepped.height:
            break
        entity = stepped.select("_row", pl.coalesce("_next", "entity").alias("entity"), "_d")
    return entity.sort("_row")["entity"]


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


def adjustment_factors(
    closes: pl.DataFrame,
    splits: pl.DataFrame,
    dividends: pl.DataFrame,
    renames: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Factors per (ticker, session_date) of ``closes`` (ticker, session_date, close — raw).

    ``splits`` and ``dividends`` must already be cleaned (:mod:`quantmini.core.corporate_actions`);
    ``renames`` (old_ticker, new_ticker, change_date) link a company's bars across ticker changes.
    """

    def by_entity(frame: pl.DataFrame, date_column: str) -> pl.DataFrame:
        return frame.with_columns(entity_of(frame, date_column, renames).alias("ticker"))

    bars = closes.with_columns(entity_of(closes, "session_date", renames).alias("entity"))
    entity_closes = (
        bars.select(pl.col("entity").alias("ticker"), "session_date", "close")
        .unique(subset=["ticker", "session_date"], keep="first")
        .sort("ticker", "session_date")
    )
    split_events = by_entity(splits, "execution_date").select(
        "ticker",
        pl.col("execution_date").alias("event_date"),
        (pl.col("split_from") / pl.col("split_to")).alias("multiplier"),
    )
    divs = (
        dividend_multipliers(entity_closes, by_entity(dividends, "ex_dividend_date"))
        .filter(pl.col("reason").is_null())
        .drop("reason")
    )
    keys = entity_closes.select("ticker", "session_date")
    split_factor = _factor_after(keys, split_events, "split_factor")
    total = _factor_after(keys, pl.concat([split_events, divs], how="vertical_relaxed"), "adj_factor")
    factors = split_factor.join(total, on=["ticker", "session_date"], how="left").rename({"ticker": "entity"})
    return bars.join(factors, on=["entity", "session_date"], how="left").select(
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


def split_factors_on(keys: pl.DataFrame, splits: pl.DataFrame) -> pl.DataFrame:
    """``split_factor`` of (ticker, date) pairs that need not be sessions (e.g. filing dates)."""
    events = splits.select(
        "ticker",
        pl.col("execution_date").alias("event_date"),
        (pl.col("split_from") / pl.col("split_to")).alias("multiplier"),
    )
    dated = (
        keys.select("ticker", pl.col("date").alias("session_date")).unique().sort("ticker", "session_date")
    )
    return _factor_after(dated, events, "split_factor").rename({"session_date": "date"})
