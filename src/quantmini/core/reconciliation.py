"""Reconcile corporate actions with prices: splits with no matching price jump, and price jumps of split
size with no split. Both are reported (never silently "fixed"): one is likely a bad split record, the
other a missing one.
"""

from __future__ import annotations

import functools
import math
import operator

import polars as pl

from quantmini.core.adjustment import (
    DIVIDEND_CLOSE_SCHEMA,
    corporate_events,
    session_multipliers,
    ticker_spans,
)
from quantmini.core.window import (
    FactorContext,
    SessionWindow,
    align,
    lag,
    output_rows,
    with_relative_basis,
)

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


#: How far back (sessions) the previous bar of a ticker is looked for.
PREVIOUS_BAR_LOOKBACK = 5


def session_checks(window: SessionWindow) -> pl.DataFrame:
    """Findings for the output sessions of ``window`` (raw bars + split multipliers).

    Each bar is compared with the ticker's previous bar within :data:`PREVIOUS_BAR_LOOKBACK` sessions:
    when splits were executed in between (on or after the previous bar's next session, up to this one)
    and the move does not match their ratio, ``split without price jump``; when none were and the move
    is of split size, ``price jump without split``. ``session_date`` is the session of the bar after the
    split (its execution date when it had a bar).
    """
    frame = align(window, ("ticker", "session_date", "close"))
    present = [lag(pl.col("_present"), k).fill_null(False) for k in range(1, PREVIOUS_BAR_LOOKBACK + 1)]
    previous = pl.coalesce(
        [pl.when(present[k - 1]).then(lag(pl.col("close"), k)) for k in range(1, PREVIOUS_BAR_LOOKBACK + 1)]
    )
    # Product of split multipliers over the sessions after the previous bar, up to this one.
    frame, basis = with_relative_basis(frame, "split_multiplier", PREVIOUS_BAR_LOOKBACK + 1)
    gap_basis = pl.coalesce(
        [pl.when(present[k - 1]).then(basis[k]) for k in range(1, PREVIOUS_BAR_LOOKBACK + 1)]
    )
    frame = frame.with_columns(
        (previous / pl.col("close")).alias("observed_ratio"),
        (1 / gap_basis).alias("_expected"),
    )
    rows = output_rows(frame, window).filter(pl.col("observed_ratio").is_not_null())
    observed = pl.col("observed_ratio")
    has_split = pl.col("_expected") != 1.0
    mismatched = has_split & ((observed / pl.col("_expected")).log().abs() > math.log(SPLIT_MATCH_TOLERANCE))
    near_split_size = functools.reduce(
        operator.or_,
        [(observed / r - 1).abs() <= JUMP_RATIO_TOLERANCE for r in _COMMON_RATIOS],
    )
    big = (observed >= JUMP_MIN_RATIO) | (observed <= 1 / JUMP_MIN_RATIO)
    jump = ~has_split & big & near_split_size
    findings = rows.filter(mismatched | jump).select(
        "ticker",
        "session_date",
        pl.when(mismatched)
        .then(pl.lit("split without price jump"))
        .otherwise(pl.lit("price jump without split"))
        .alias("check"),
        pl.when(mismatched).then(pl.col("_expected")).alias("expected_ratio"),
        "observed_ratio",
    )
    return findings.cast(CHECK_SCHEMA).sort("ticker", "session_date")  # type: ignore[arg-type]


def reconcile_splits(closes: pl.DataFrame, splits: pl.DataFrame) -> pl.DataFrame:
    """Findings (``split without price jump``, ``price jump without split``) over a whole history.

    ``closes``: ticker, session_date, close (raw, unadjusted) — their dates are the calendar; ``splits``:
    cleaned split records. The same checks as :func:`session_checks`, for every session at once.
    """
    sessions = tuple(closes["session_date"].unique().sort().to_list())
    events, _ = corporate_events(
        splits,
        pl.DataFrame(
            schema={"ticker": pl.String(), "ex_dividend_date": pl.Date(), "cash_amount": pl.Float64()}
        ),
        pl.DataFrame(schema=DIVIDEND_CLOSE_SCHEMA),
    )
    spans = ticker_spans(closes["ticker"].unique(), None)
    window = SessionWindow(
        bars=closes.select("ticker", "session_date", "close"),
        sessions=sessions,
        outputs=sessions,
        factors=FactorContext(session_multipliers(events, spans, list(sessions)), events, spans),
    )
    return session_checks(window)


_COMMON_RATIOS = [*COMMON_SPLIT_RATIOS, *(1 / r for r in COMMON_SPLIT_RATIOS)]
