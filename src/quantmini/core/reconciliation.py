"""Reconcile corporate actions with prices: splits with no matching price jump, and price jumps of split
size with no split. Both are reported (never silently "fixed"): one is likely a bad split record, the
other a missing one.
"""

from __future__ import annotations

import math

import polars as pl

#: Split ratios seen in practice (and their inverses for reverse splits).
COMMON_SPLIT_RATIOS: tuple[float, ...] = (1.5, 2, 3, 4, 5, 6, 7, 8, 10, 12, 15, 20, 25, 30, 40, 50, 100)
#: A split is "matched" when the observed close-to-close move is within this factor of its ratio.
SPLIT_MATCH_TOLERANCE = 1.35
#: An unexplained move is "of split size" when it is at least this large and near a common ratio.
JUMP_MIN_RATIO = 1.8
JUMP_RATIO_TOLERANCE = 0.08

CHECK_SCHEMA: dict[str, pl.DataType] = {
    "ticker": pl.String(),
    "session_date": pl.Date(),
    "check": pl.String(),
    "expected_ratio": pl.Float64(),
    "observed_ratio": pl.Float64(),
}


def _moves(closes: pl.DataFrame) -> pl.DataFrame:
    """Per bar: the previous bar's close divided by this close (a 2:1 split shows ≈ 2)."""
    return (
        closes.sort("ticker", "session_date")
        .with_columns((pl.col("close").shift(1).over("ticker") / pl.col("close")).alias("observed_ratio"))
        .filter(pl.col("observed_ratio").is_not_null())
        .select("ticker", "session_date", "observed_ratio")
    )


def reconcile_splits(closes: pl.DataFrame, splits: pl.DataFrame) -> pl.DataFrame:
    """Findings: ``split without price jump`` and ``price jump without split``.

    ``closes``: ticker, session_date, close (raw, unadjusted). ``splits``: cleaned split records. The
    first bar on or after a split's execution date is compared with the bar before it.
    """
    moves = _moves(closes)
    events = splits.select(
        "ticker",
        pl.col("execution_date").alias("session_date"),
        (pl.col("split_to") / pl.col("split_from")).alias("expected_ratio"),
    ).sort("ticker", "session_date")
    matched = events.join_asof(
        moves.with_columns(pl.col("session_date").alias("move_date")).sort("ticker", "session_date"),
        on="session_date",
        by="ticker",
        strategy="forward",
        check_sortedness=False,
    )
    tolerance = math.log(SPLIT_MATCH_TOLERANCE)
    unmatched = matched.filter(
        pl.col("observed_ratio").is_not_null()
        & ((pl.col("observed_ratio") / pl.col("expected_ratio")).log().abs() > tolerance)
    ).with_columns(pl.lit("split without price jump").alias("check"))

    ratios = pl.Series("r", [*COMMON_SPLIT_RATIOS, *(1 / r for r in COMMON_SPLIT_RATIOS)], dtype=pl.Float64)
    near_split_size = pl.lit(False)
    for ratio in ratios:
        near_split_size = near_split_size | (
            (pl.col("observed_ratio") / ratio - 1).abs() <= JUMP_RATIO_TOLERANCE
        )
    big = (pl.col("observed_ratio") >= JUMP_MIN_RATIO) | (pl.col("observed_ratio") <= 1 / JUMP_MIN_RATIO)
    explained = matched.select("ticker", pl.col("move_date").alias("session_date")).drop_nulls()
    jumps = (
        moves.filter(big & near_split_size)
        .join(explained, on=["ticker", "session_date"], how="anti")
        .with_columns(
            pl.lit(None, dtype=pl.Float64).alias("expected_ratio"),
            pl.lit("price jump without split").alias("check"),
        )
    )
    columns = list(CHECK_SCHEMA)
    return (
        pl.concat([unmatched.select(columns), jumps.select(columns)], how="vertical_relaxed")
        .cast(
            CHECK_SCHEMA  # type: ignore[arg-type]
        )
        .sort("ticker", "session_date")
    )
