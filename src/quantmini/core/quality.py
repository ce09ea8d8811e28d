"""Row-level quality rules. Each rule is a named quarantine reason; nothing is dropped silently.

Applied to typed rows of one session file, the rules split them into bronze rows, quarantined rows
(each with a reason and detail) and a count of exact duplicates removed. The caller checks that
``rows_in == bronze + quarantined + duplicates`` for every file.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

import polars as pl

from quantmini.core.calendar import exchange_time_expr, session_date_expr
from quantmini.core.options import contract_columns
from quantmini.datasets.base import DatasetSpec

#: Vendor minute files cover 04:00-20:00 ET (pre-market to the end of after-hours).
EXTENDED_OPEN = dt.time(4, 0)
EXTENDED_CLOSE = dt.time(20, 0)
REGULAR_OPEN = dt.time(9, 30)
REGULAR_CLOSE = dt.time(16, 0)

#: Exchange test symbols that appear in real files and must never reach research data.
TEST_SYMBOLS: frozenset[str] = frozenset(
    {
        "ZVZZT",
        "ZXZZT",
        "ZWZZT",
        "ZBZZT",
        "ZTST",
        "ZJZZT",
        "ZVV",
        "ZXIET",
        "ZIEXT",
        "NTEST",
        "CTEST",
        "ATEST",
        "PTEST",
    }
)


class Reason(StrEnum):
    """Why a row was quarantined."""

    COLUMN_COUNT = "column_count"
    UNPARSEABLE_NUMBER = "unparseable_number"
    NULL_KEY = "null_key"
    NON_POSITIVE_PRICE = "non_positive_price"
    OHLC_INCONSISTENT = "ohlc_inconsistent"
    NEGATIVE_VOLUME = "negative_volume"
    OUTSIDE_SESSION = "outside_session"
    DUPLICATE_KEY_CONFLICT = "duplicate_key_conflict"
    TEST_SYMBOL = "test_symbol"
    BAD_OPTION_TICKER = "bad_option_ticker"


@dataclass(frozen=True, slots=True)
class QualityResult:
    """Outcome of the rules on one file: kept rows, quarantined rows, exact duplicates removed."""

    kept: pl.DataFrame
    quarantined: pl.DataFrame
    duplicates: int


def apply_rules(rows: pl.DataFrame, *, session: dt.date, spec: DatasetSpec) -> QualityResult:
    """Apply every row rule of ``spec`` to typed ``rows`` of the file for ``session``.

    ``rows`` carries the CSV columns plus ``line``. The kept frame gains ``session_date`` (and, for
    options, the contract fields); the quarantined frame has ``line, reason, detail, ticker`` (the
    caller adds file and raw text). Exact duplicates (identical in every CSV column) keep their first
    occurrence; rows sharing a key but differing in values are all quarantined — we cannot know which
    one is right.
    """
    key_columns = spec.key_columns
    frame = rows.with_columns(session_date_expr("window_start").alias("session_date"))
    if spec.is_option:
        frame = frame.with_columns(contract_columns("ticker"))
    nulls = [pl.col(c).is_null() for c in spec.csv_columns]
    any_null = pl.any_horizontal(nulls) if nulls else pl.lit(False)
    price_cols = [c for c in ("open", "high", "low", "close") if c in frame.columns]
    non_positive = pl.any_horizontal([pl.col(c) <= 0 for c in price_cols])
    ohlc_bad = (
        (pl.col("low") > pl.col("high"))
        | (pl.col("low") > pl.min_horizontal("open", "close"))
        | (pl.col("high") < pl.max_horizontal("open", "close"))
    )
    checks: list[tuple[pl.Expr, Reason, pl.Expr]] = [
        (any_null, Reason.NULL_KEY, pl.lit("empty value in a required column")),
        *(
            [(pl.col("underlying").is_null(), Reason.BAD_OPTION_TICKER, pl.lit("not an OCC option ticker"))]
            if spec.is_option
            else []
        ),
        (pl.col("ticker").is_in(list(TEST_SYMBOLS)), Reason.TEST_SYMBOL, pl.col("ticker")),
        (non_positive, Reason.NON_POSITIVE_PRICE, _ohlc_detail()),
        (ohlc_bad, Reason.OHLC_INCONSISTENT, _ohlc_detail()),
        (pl.col("volume") < 0, Reason.NEGATIVE_VOLUME, pl.format("volume={}", pl.col("volume"))),
        (
            pl.col("session_date") != pl.lit(session),
            Reason.OUTSIDE_SESSION,
            pl.format("bar belongs to session {}, file is {}", pl.col("session_date"), pl.lit(str(session))),
        ),
    ]
    if spec.frequency == "1min":
        local = exchange_time_expr("window_start").dt.time()
        checks.append(
            (
                (local < EXTENDED_OPEN) | (local >= EXTENDED_CLOSE),
                Reason.OUTSIDE_SESSION,
                pl.format("minute bar at {} ET is outside 04:00-20:00", local),
            )
        )
    # The first failing check names the reason: coalesce keeps the first non-null candidate.
    reason = pl.coalesce([pl.when(cond).then(pl.lit(code.value)) for cond, code, _ in checks])
    detail = pl.coalesce([pl.when(cond).then(text) for cond, _, text in checks])
    frame = frame.with_columns(reason.alias("reason"), detail.alias("detail"))

    bad = frame.filter(pl.col("reason").is_not_null())
    good = frame.filter(pl.col("reason").is_null()).drop("reason", "detail")

    csv_cols = list(spec.csv_columns)
    before = good.height
    good = good.unique(subset=csv_cols, keep="first", maintain_order=True)
    duplicates = before - good.height

    conflict = good.select(pl.struct(list(key_columns)).is_duplicated()).to_series()
    if conflict.any():
        conflicted = good.filter(conflict).with_columns(
            pl.lit(Reason.DUPLICATE_KEY_CONFLICT.value).alias("reason"),
            pl.format(
                "{} rows share key ({})", pl.len().over(list(key_columns)), pl.lit(", ".join(key_columns))
            ).alias("detail"),
        )
        bad = pl.concat([bad, conflicted], how="vertical_relaxed")
        good = good.filter(~conflict)
    quarantined = bad.select("line", "reason", "detail", "ticker").sort("line")
    return QualityResult(kept=good, quarantined=quarantined, duplicates=duplicates)


def _ohlc_detail() -> pl.Expr:
    return pl.format(
        "open={} high={} low={} close={}", pl.col("open"), pl.col("high"), pl.col("low"), pl.col("close")
    )
