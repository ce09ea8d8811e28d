"""Row-level quality rules. Each rule is a named quarantine reason; nothing is dropped silently.

Applied to typed rows of one session file, the rules split them into bronze rows, quarantined rows
(each with a reason and detail) and a count of exact duplicates removed. The caller checks that
``rows_in == bronze + quarantined + duplicates`` for every file.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

import polars as pl

from quantmini._exceptions import ConfigurationError
from quantmini.core.calendar import SessionBounds, exchange_time_expr, session_bounds, session_date_expr
from quantmini.core.options import contract_columns
from quantmini.core.ordering import duplicated_keys
from quantmini.datasets.base import DatasetSpec

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
    BAD_TICKER = "bad_ticker"
    NON_FINITE = "non_finite"
    OUT_OF_RANGE = "out_of_range"


#: The price columns of an aggregates row.
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")

#: Smallest positive price a vendor file prints (6 decimal places); a smaller positive value is no price
#: (and would underflow a float32 store).
MIN_PRICE = 1e-6
#: Highest plausible stock price: BRK.A, the dearest US share, trades near 700,000.
MAX_STOCK_PRICE = 1e7
#: Highest plausible option premium: deep in-the-money index calls (NDX near 20,000) stay far below.
MAX_OPTION_PRICE = 1e6
#: Highest plausible volume of one stock bar: the busiest names trade 1e9 to 1e10 shares a day.
MAX_STOCK_VOLUME = 1e13
#: Highest plausible volume of one option bar: the busiest contracts trade a few million a day.
MAX_OPTION_VOLUME = 1e10
#: Highest plausible trade count of one bar: 1e9 is some 17,000 trades a second for 16 hours.
MAX_TRANSACTIONS = 10**9
#: A stock ticker: an upper-case (or digit) root, then letters (lower-case class markers as in ``BApA``,
#: ``NMCOr``), digits and ``.``/``-`` separators, each followed by a letter or digit (``BRK.B``,
#: ``NE.WS.A``). So no whitespace, slash, backslash, quote, control character, ``_``, ``.`` or ``..``.
STOCK_TICKER_PATTERN = r"^[A-Z0-9](?:[A-Za-z0-9]|[.\-][A-Za-z0-9])*$"
MAX_STOCK_TICKER_LENGTH = 16
#: The root of an OCC option ticker (its ``underlying``): upper case and digits, ``.`` only between them.
OPTION_ROOT_PATTERN = r"^[A-Z0-9](?:[A-Z0-9]|\.[A-Z0-9])*$"
MAX_OPTION_ROOT_LENGTH = 6


@dataclass(frozen=True, slots=True)
class MarketRules:
    """What a row of one vendor market (a spec's ``asset``) may hold.

    The text of ``symbol_column`` (the ticker for stocks, the OCC root for options) must match
    ``symbol_pattern`` in at most ``max_symbol_length`` characters, else the row is quarantined with
    ``symbol_reason``. Prices must lie in [``min_price``, ``max_price``], volume in [0, ``max_volume``],
    transactions in [0, ``max_transactions``]: every bound is far inside float32's range, so no value
    that passes can overflow (or vanish in) a float32 store such as a Qlib root.
    """

    symbol_column: str
    symbol_pattern: str
    max_symbol_length: int
    symbol_reason: Reason
    min_price: float
    max_price: float
    max_volume: float
    max_transactions: int


#: Rules per vendor market, keyed by ``DatasetSpec.asset``: a new data type of a known market needs
#: nothing here; a new market (indices, crypto …) declares its rules in this one place.
MARKET_RULES: Mapping[str, MarketRules] = MappingProxyType(
    {
        "us_stocks_sip": MarketRules(
            symbol_column="ticker",
            symbol_pattern=STOCK_TICKER_PATTERN,
            max_symbol_length=MAX_STOCK_TICKER_LENGTH,
            symbol_reason=Reason.BAD_TICKER,
            min_price=MIN_PRICE,
            max_price=MAX_STOCK_PRICE,
            max_volume=MAX_STOCK_VOLUME,
            max_transactions=MAX_TRANSACTIONS,
        ),
        "us_options_opra": MarketRules(
            symbol_column="underlying",
            symbol_pattern=OPTION_ROOT_PATTERN,
            max_symbol_length=MAX_OPTION_ROOT_LENGTH,
            symbol_reason=Reason.BAD_OPTION_TICKER,
            min_price=MIN_PRICE,
            max_price=MAX_OPTION_PRICE,
            max_volume=MAX_OPTION_VOLUME,
            max_transactions=MAX_TRANSACTIONS,
        ),
    }
)


def market_rules(spec: DatasetSpec) -> MarketRules:
    """The :class:`MarketRules` of ``spec``'s market; a market without declared rules is an error."""
    try:
        return MARKET_RULES[spec.asset]
    except KeyError:
        raise ConfigurationError(
            f"data type {spec.name}: no row rules for market {spec.asset!r}; "
            "declare them in quantmini.core.quality.MARKET_RULES"
        ) from None


@dataclass(frozen=True, slots=True)
class QualityResult:
    """Outcome of the rules on one file: kept rows, quarantined rows, exact duplicates removed."""

    kept: pl.DataFrame
    quarantined: pl.DataFrame
    duplicates: int


Check = tuple[pl.Expr, Reason, pl.Expr]

_QUARANTINED: dict[str, type[pl.DataType]] = {
    "line": pl.Int64,
    "reason": pl.String,
    "detail": pl.String,
    "ticker": pl.String,
}


def row_checks(spec: DatasetSpec, bounds: SessionBounds) -> list[Check]:
    """Row rules of ``spec`` for the file of ``bounds.session``: (failing condition, reason, detail).

    Conditions read the CSV columns (plus the contract fields for options); the first failing rule
    names a row's reason, so the order matters: a NaN or infinite value is ``non_finite`` before any
    comparison could call it a non-positive or inconsistent price. They are also the rules
    :mod:`quantmini.core.bronze_checks` re-applies to stored partitions.
    """
    rules = market_rules(spec)
    nulls = [pl.col(c).is_null() for c in spec.csv_columns]
    prices = [pl.col(c) for c in PRICE_COLUMNS]
    ohlc_bad = (
        (pl.col("low") > pl.col("high"))
        | (pl.col("low") > pl.min_horizontal("open", "close"))
        | (pl.col("high") < pl.max_horizontal("open", "close"))
    )
    day_start, day_end = bounds.day
    ws = pl.col("window_start")
    checks: list[Check] = [
        (pl.any_horizontal(nulls), Reason.NULL_KEY, pl.lit("empty value in a required column"))
    ]
    if spec.is_option:
        checks.append(
            (pl.col("underlying").is_null(), Reason.BAD_OPTION_TICKER, pl.lit("not an OCC option ticker"))
        )
    symbol = pl.col(rules.symbol_column)
    checks += [
        (
            ~symbol.str.contains(rules.symbol_pattern) | (symbol.str.len_bytes() > rules.max_symbol_length),
            rules.symbol_reason,
            symbol_problem(symbol, rules),
        ),
        (pl.col("ticker").is_in(sorted(TEST_SYMBOLS)), Reason.TEST_SYMBOL, pl.col("ticker")),
    ]
    checks += [
        (~pl.col(c).is_finite(), Reason.NON_FINITE, pl.format(f"{c}={{}}", pl.col(c)))
        for c in (*PRICE_COLUMNS, "volume")
    ]
    checks.append((pl.any_horizontal([p <= 0 for p in prices]), Reason.NON_POSITIVE_PRICE, _ohlc_detail()))
    checks += [_range_check(c, rules.min_price, rules.max_price) for c in PRICE_COLUMNS]
    checks += [
        (ohlc_bad, Reason.OHLC_INCONSISTENT, _ohlc_detail()),
        (pl.col("volume") < 0, Reason.NEGATIVE_VOLUME, pl.format("volume={}", pl.col("volume"))),
        _range_check("volume", 0, rules.max_volume),
        _range_check("transactions", 0, rules.max_transactions),
        (
            (ws < day_start) | (ws >= day_end),
            Reason.OUTSIDE_SESSION,
            pl.format(
                "bar belongs to session {}, file is {}", session_date_expr(), pl.lit(str(bounds.session))
            ),
        ),
    ]
    if spec.frequency == "1min":
        open_ns, close_ns = bounds.extended
        checks.append(
            (
                (ws < open_ns) | (ws >= close_ns),
                Reason.OUTSIDE_SESSION,
                pl.format("minute bar at {} ET is outside 04:00-20:00", session_time_expr()),
            )
        )
    return checks


#: Why a symbol breaks its market's rule, most specific first (the pattern is the last word).
_SYMBOL_PROBLEMS: tuple[tuple[str, str], ...] = (
    (r"^$", "is empty"),
    (r"\s", "contains whitespace"),
    (r"[\x00-\x1f\x7f]", "contains a control character"),
    (r"[/\\]", "contains a path separator"),
    ("[\"'`]", "contains a quote"),
    (r"_", "contains '_' (reserved)"),
    (r"^[a-z]", "starts with a lower-case letter (roots are upper case)"),
    (r"\.\.", "contains '..'"),
    (r"^[.\-]|[.\-]$", "starts or ends with '.' or '-'"),
)


def symbol_problem(symbol: pl.Expr, rules: MarketRules) -> pl.Expr:
    """Why ``symbol`` breaks ``rules`` in words, e.g. ``ticker 'A/B' contains a path separator``.

    Only formatted for rejected rows; a symbol that passes every word below yet fails the rule is said
    not to match the pattern.
    """
    words: list[pl.Expr] = [
        pl.when(symbol.str.contains(pattern)).then(pl.lit(why)) for pattern, why in _SYMBOL_PROBLEMS
    ]
    too_long = pl.lit(f"is longer than {rules.max_symbol_length} characters")
    words.append(pl.when(symbol.str.len_chars() > rules.max_symbol_length).then(too_long))
    words.append(pl.lit(f"does not match {rules.symbol_pattern}"))
    return pl.format(f"{rules.symbol_column} '{{}}' {{}}", symbol, pl.coalesce(words))


def _range_check(column: str, low: float, high: float) -> Check:
    """``column`` outside [``low``, ``high``] is ``out_of_range``; the detail names field, value, range."""
    col = pl.col(column)
    return (
        (col < low) | (col > high),
        Reason.OUT_OF_RANGE,
        pl.format(f"{column}={{}} outside [{low:g}, {high:g}]", col),
    )


def session_time_expr() -> pl.Expr:
    """Exchange-time wall clock of ``window_start`` (only formatted for the few rejected rows)."""
    return exchange_time_expr("window_start").dt.time()


def reason_columns(checks: list[Check]) -> list[pl.Expr]:
    """``reason`` and ``detail`` of the first failing check (null when every check passes)."""
    return [
        pl.coalesce([pl.when(cond).then(pl.lit(code.value)) for cond, code, _ in checks]).alias("reason"),
        pl.coalesce([pl.when(cond).then(text) for cond, _, text in checks]).alias("detail"),
    ]


@dataclass(frozen=True, slots=True)
class RowSplit:
    """Rows of one chunk that pass every row rule (with ``session_date``) and those that do not."""

    good: pl.DataFrame
    bad: pl.DataFrame


def check_rows(rows: pl.DataFrame, *, bounds: SessionBounds, spec: DatasetSpec) -> RowSplit:
    """Apply the row rules (:func:`row_checks`) to typed ``rows`` (CSV columns plus ``line``).

    Rules look at one row at a time, so a file may be checked chunk by chunk. Good rows gain
    ``session_date`` (and, for options, the contract fields); bad rows are ``line, reason, detail,
    ticker``.
    """
    frame = rows.with_columns(contract_columns("ticker")) if spec.is_option else rows
    checks = row_checks(spec, bounds)
    failing = frame.select(pl.any_horizontal([cond for cond, _, _ in checks]).fill_null(True)).to_series()
    # Reasons and details are worked out on the (few) failing rows only: formatting text for millions of
    # good rows would dominate the stage.
    bad = (
        frame.filter(failing)
        .with_columns(reason_columns(checks))
        .select("line", "reason", "detail", "ticker")
    )
    good = frame.filter(~failing).with_columns(pl.lit(bounds.session, dtype=pl.Date).alias("session_date"))
    return RowSplit(good=good, bad=bad)


def resolve_duplicates(good: pl.DataFrame, spec: DatasetSpec) -> QualityResult:
    """Remove exact duplicates (identical in every CSV column; the first line is kept) and quarantine
    every row of a key that several different rows share — we cannot know which one is right."""
    keys = list(spec.key_columns)
    shared = duplicated_keys(good, keys)
    if not shared.any():
        return QualityResult(kept=good, quarantined=pl.DataFrame(schema=_QUARANTINED), duplicates=0)
    suspects = good.filter(shared).sort("line")
    unique = suspects.unique(subset=list(spec.csv_columns), keep="first", maintain_order=True)
    conflict = unique.select(pl.struct(keys).is_duplicated()).to_series()
    conflicted = unique.filter(conflict).select(
        "line",
        pl.lit(Reason.DUPLICATE_KEY_CONFLICT.value).alias("reason"),
        pl.format("{} rows share key ({})", pl.len().over(keys), pl.lit(", ".join(keys))).alias("detail"),
        "ticker",
    )
    kept = pl.concat([good.filter(~shared), unique.filter(~conflict)])
    return QualityResult(kept=kept, quarantined=conflicted, duplicates=suspects.height - unique.height)


def apply_rules(rows: pl.DataFrame, *, session: dt.date, spec: DatasetSpec) -> QualityResult:
    """Every rule of ``spec`` on the typed ``rows`` of the whole file for ``session``.

    :func:`check_rows` then :func:`resolve_duplicates`; the quarantined frame has ``line, reason,
    detail, ticker`` sorted by line (the caller adds file and raw text).
    """
    split = check_rows(rows, bounds=session_bounds(session), spec=spec)
    result = resolve_duplicates(split.good, spec)
    quarantined = pl.concat([split.bad, result.quarantined], how="vertical_relaxed").sort("line")
    return QualityResult(kept=result.kept, quarantined=quarantined, duplicates=result.duplicates)


def _ohlc_detail() -> pl.Expr:
    return pl.format(
        "open={} high={} low={} close={}", pl.col("open"), pl.col("high"), pl.col("low"), pl.col("close")
    )


def quality_report(
    rows_in: int, rows_bronze: int, duplicates: int, reasons: dict[str, int]
) -> dict[str, object]:
    """The per-file quality report stored with the bronze manifest: row accounting and a count for every
    quarantine reason (zero included, so a report always names every rule)."""
    counts = {reason.value: int(reasons.get(reason.value, 0)) for reason in Reason}
    return {
        "rows_in": rows_in,
        "rows_bronze": rows_bronze,
        "rows_quarantined": sum(counts.values()),
        "duplicates": duplicates,
        "reasons": counts,
    }
