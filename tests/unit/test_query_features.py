"""Features of the feature sets in queries: validation, which set's table answers a field, and the SQL
that joins those tables, checked as strings and parameter lists."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from quantmini._exceptions import QueryError
from quantmini.query.feature_sets import FeatureRead, feature_reads, not_built_message
from quantmini.query.spec import QuerySpec
from quantmini.query.sql import FeatureJoin, build_query

START, END = dt.date(2024, 1, 2), dt.date(2024, 1, 31)
BARS = ["/lake/silver/stocks_daily/date=2024-01-02/part.parquet"]
ALPHA = ("/lake/silver/stocks_daily_alpha158/date=2024-01-02/part.parquet",)
TA = ("/lake/silver/stocks_daily_ta/date=2024-01-02/part.parquet",)
FACTORS = "/lake/silver/reference/adjustment_factors.parquet"


def daily(*fields: str, adjusted: bool = True) -> QuerySpec:
    return QuerySpec("stocks_daily", ("AAPL", "BRK.B"), START, END, fields=fields, adjusted=adjusted)


def test_features_are_fields_with_their_stored_types() -> None:
    spec = daily("ticker", "close", "KMID", "RSI14", "ret_1d")
    assert spec.feature_fields == ("KMID", "RSI14")
    # alpha158 is stored as float32 and ta as float64; ret_1d is a column of the main table.
    assert spec.field_types["KMID"] == pa.float32()
    assert spec.field_types["RSI14"] == pa.float64()
    assert spec.needs_silver


def test_feature_joins_filter_like_the_bars_and_features_are_never_adjusted() -> None:
    spec = daily("ticker", "close", "KMID", "RSI14", "OPEN0")
    joins = [FeatureJoin(("KMID", "OPEN0"), ALPHA), FeatureJoin(("RSI14",), TA)]
    sql, params = build_query(spec, BARS, FACTORS, joins)
    assert sql == (
        'SELECT b."ticker", b."close" * coalesce(f."adj_factor", 1.0) AS "close", x0."KMID", x1."RSI14", '
        'x0."OPEN0"\n'
        "FROM read_parquet(?, hive_partitioning = false, union_by_name = true) AS b\n"
        "LEFT JOIN read_parquet(?) AS f\n"
        '  ON f."ticker" = b."ticker" AND b."session_date" >= f."valid_from" '
        'AND b."session_date" < f."valid_to"\n'
        'LEFT JOIN (SELECT "ticker", "session_date", "KMID", "OPEN0" '
        "FROM read_parquet(?, hive_partitioning = false, union_by_name = true)\n"
        '  WHERE "ticker" IN (?, ?) AND "session_date" BETWEEN ? AND ?) AS x0\n'
        '  ON x0."ticker" = b."ticker" AND x0."session_date" = b."session_date"\n'
        'LEFT JOIN (SELECT "ticker", "session_date", "RSI14" '
        "FROM read_parquet(?, hive_partitioning = false, union_by_name = true)\n"
        '  WHERE "ticker" IN (?, ?) AND "session_date" BETWEEN ? AND ?) AS x1\n'
        '  ON x1."ticker" = b."ticker" AND x1."session_date" = b."session_date"\n'
        'WHERE b."ticker" IN (?, ?) AND b."session_date" BETWEEN ? AND ?\n'
        'ORDER BY b."ticker", b."window_start"'
    )
    assert sql.count("?") == len(params)
    assert params == [
        BARS,
        FACTORS,
        list(ALPHA),
        "AAPL",
        "BRK.B",
        START,
        END,
        list(TA),
        "AAPL",
        "BRK.B",
        START,
        END,
        "AAPL",
        "BRK.B",
        START,
        END,
    ]
    raw, _ = build_query(daily("close", "KMID", adjusted=False), BARS, FACTORS, joins[:1])
    assert raw.splitlines()[0] == 'SELECT b."close", x0."KMID"'


def test_a_feature_without_its_table_is_refused() -> None:
    with pytest.raises(QueryError, match="'KMID' is read from its feature set's table"):
        build_query(daily("close", "KMID"), BARS, FACTORS)


@pytest.mark.parametrize(
    ("fields", "configured", "expected"),
    [
        # OPEN0 is in alpha158 and alpha360: the configured one answers.
        (("OPEN0",), ("base", "alpha158"), [("alpha158", ("OPEN0",))]),
        (("OPEN0",), ("base", "alpha360"), [("alpha360", ("OPEN0",))]),
        # Both configured: the set another field needs anyway, so one table is read.
        (("OPEN0", "CLOSE5"), ("base", "alpha158", "alpha360"), [("alpha360", ("OPEN0", "CLOSE5"))]),
        (("KMID", "OPEN0"), ("base", "alpha158", "alpha360"), [("alpha158", ("KMID", "OPEN0"))]),
        (
            ("RSI14", "close", "KMID", "GAP"),
            ("base", "ta", "alpha158"),
            [("ta", ("RSI14", "GAP")), ("alpha158", ("KMID",))],
        ),
        (("close",), ("base",), []),
    ],
)
def test_each_feature_is_read_from_one_configured_set(
    fields: tuple[str, ...], configured: tuple[str, ...], expected: list[tuple[str, tuple[str, ...]]]
) -> None:
    reads = feature_reads(daily(*fields), configured)
    assert [(r.feature_set, r.fields) for r in reads] == expected
    assert all(r.table == f"stocks_daily_{r.feature_set}" for r in reads)


def test_a_feature_of_a_set_not_configured_says_how_to_build_it() -> None:
    with pytest.raises(QueryError) as info:
        feature_reads(daily("close", "RSI14"), ("base", "alpha158"))
    assert str(info.value) == (
        "RSI14 is a feature of the ta set, which is not configured for stocks_daily "
        "(features.stocks_daily = base,alpha158): add it with `quantmini config set features.stocks_daily "
        "base,alpha158,ta` (or QUANTMINI_FEATURES_STOCKS_DAILY=base,alpha158,ta), then build it with "
        "`quantmini data enrich --data-type stocks_daily`"
    )
    with pytest.raises(QueryError, match="OPEN0 is a feature of the alpha158 or alpha360 set"):
        feature_reads(daily("OPEN0"), ("base",))


def test_a_set_not_built_names_its_table_or_the_sessions_it_lacks() -> None:
    read = FeatureRead("ta", "stocks_daily_ta", ("RSI14",))
    assert not_built_message(read, "stocks_daily") == (
        "feature set ta of stocks_daily (RSI14) is configured but not built yet (no partitions in "
        "silver/stocks_daily_ta): build it with `quantmini data enrich --data-type stocks_daily`"
    )
    days = [dt.date(2024, 1, d) for d in (2, 3, 4, 5)]
    assert (
        "lacks 4 session(s) of the range that silver holds (2024-01-02, 2024-01-03, 2024-01-04 and 1 more)"
        in (not_built_message(read, "stocks_daily", days))
    )


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [("kmid", "did you mean KMID?"), ("ROC7", "did you mean ROC5"), ("rsi14", "did you mean RSI14?")],
)
def test_misspelt_features_get_a_suggestion(name: str, suggestion: str) -> None:
    with pytest.raises(QueryError) as info:
        daily("close", name)
    message = str(info.value)
    assert message.startswith(f"unknown field {name!r} for stocks_daily (valid fields: ticker, ")
    assert (
        "features of the sets alpha158, alpha360, ta: `quantmini features list --data-type stocks_daily`"
        in (message)
    )
    assert suggestion in message
    # The hundreds of feature names are not listed one by one.
    assert "VOLUME59" not in message


def test_other_data_types_have_no_feature_fields() -> None:
    with pytest.raises(QueryError, match="unknown field 'KMID' for stocks_minute"):
        QuerySpec("stocks_minute", ("AAPL",), START, END, fields=("KMID",))
    with pytest.raises(QueryError, match="unknown field 'RSI14' for options_daily"):
        QuerySpec("options_daily", ("X",), START, END, fields=("RSI14",), adjusted=False)


def test_a_set_built_but_no_longer_configured_is_read_as_it_stands() -> None:
    reads = feature_reads(daily("RSI14", "OPEN0"), ("base", "alpha360"), built=("alpha158", "ta"))
    assert [(r.feature_set, r.fields) for r in reads] == [("ta", ("RSI14",)), ("alpha360", ("OPEN0",))]
