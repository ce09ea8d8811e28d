"""Cleaning of split and dividend records before they are trusted for adjustment.

Rejected records are kept with a reason, never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

#: A split ratio beyond these bounds is far more likely a data error than a real corporate action.
MAX_SPLIT_RATIO = 1000.0


@dataclass(frozen=True, slots=True)
class Cleaned:
    """Records accepted for adjustment, and records rejected with a ``reason`` column."""

    accepted: pl.DataFrame
    rejected: pl.DataFrame


def clean_splits(splits: pl.DataFrame) -> Cleaned:
    """Deduplicate on (ticker, execution_date); reject contradictory and implausible ratios."""
    base = splits.filter(pl.col("ticker").is_not_null() & pl.col("execution_date").is_not_null())
    missing = splits.filter(pl.col("ticker").is_null() | pl.col("execution_date").is_null()).with_columns(
        pl.lit("missing ticker or execution_date").alias("reason")
    )
    unique = base.unique(subset=["ticker", "execution_date", "split_from", "split_to"], keep="first").sort(
        "ticker", "execution_date"
    )
    ratio = pl.col("split_to") / pl.col("split_from")
    reason = (
        pl.when(pl.len().over("ticker", "execution_date") > 1)
        .then(pl.lit("contradictory ratios for the same ticker and execution date"))
        .when((pl.col("split_from") <= 0) | (pl.col("split_to") <= 0) | pl.col("split_from").is_null())
        .then(pl.lit("non-positive or missing ratio"))
        .when(ratio == 1)
        .then(pl.lit("ratio 1:1 changes nothing"))
        .when((ratio > MAX_SPLIT_RATIO) | (ratio < 1 / MAX_SPLIT_RATIO))
        .then(pl.lit(f"implausible ratio (beyond {MAX_SPLIT_RATIO:g}:1)"))
        .otherwise(None)
    )
    judged = unique.with_columns(reason.alias("reason"))
    return Cleaned(
        accepted=judged.filter(pl.col("reason").is_null()).drop("reason"),
        rejected=pl.concat([missing, judged.filter(pl.col("reason").is_not_null())], how="vertical_relaxed"),
    )


def clean_dividends(dividends: pl.DataFrame) -> Cleaned:
    """Deduplicate identical records; reject non-positive amounts and missing ex-dates."""
    unique = dividends.unique(
        subset=["ticker", "ex_dividend_date", "cash_amount", "dividend_type"], keep="first"
    ).sort("ticker", "ex_dividend_date")
    reason = (
        pl.when(pl.col("ticker").is_null() | pl.col("ex_dividend_date").is_null())
        .then(pl.lit("missing ticker or ex_dividend_date"))
        .when(pl.col("cash_amount").is_null() | (pl.col("cash_amount") <= 0))
        .then(pl.lit("non-positive or missing cash_amount"))
        .otherwise(None)
    )
    judged = unique.with_columns(reason.alias("reason"))
    return Cleaned(
        accepted=judged.filter(pl.col("reason").is_null()).drop("reason"),
        rejected=judged.filter(pl.col("reason").is_not_null()),
    )
