"""QuerySpec validation and the SQL builders, checked as strings and parameter lists."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click
import pytest
from hypothesis import given
from hypothesis import strategies as st

from quantmini._exceptions import QueryError
from quantmini.query.spec import BAR_MINUTES, SESSIONS, QuerySpec, default_fields
from quantmini.query.sql import (
    IN_LIST_LIMIT,
    build_query,
    create_view_sql,
    in_list,
    quote_identifier,
    string_literal,
)

START, END = dt.date(2024, 1, 2), dt.date(2024, 1, 31)
FILES: list[Path | str] = [
    Path("/lake/silver/stocks_daily/date=2024-01-02/part.parquet"),
    "/lake/x/date=2024-01-03/part.parquet",
]


def daily(**overrides: object) -> QuerySpec:
    values: dict[str, object] = {
        "data_type": "stocks_daily",
        "symbols": ("AAPL", "BRK.B"),
        "start": START,
        "end": END,
    }
    values.update(overrides)
    return QuerySpec(**values)  # type: ignore[arg-type]


FACTORS = "/lake/silver/reference/adjustment_factors.parquet"


def test_adjusted_default_query_joins_the_factor_table() -> None:
    sql, params = build_query(daily(), FILES, FACTORS)
    assert sql == (
        'SELECT b."ticker", b."session_date", '
        'b."open" * coalesce(f."adj_factor", 1.0) AS "open", '
        'b."high" * coalesce(f."adj_factor", 1.0) AS "high", '
        'b."low" * coalesce(f."adj_factor", 1.0) AS "low", '
        'b."close" * coalesce(f."adj_factor", 1.0) AS "close", '
        'b."volume" / coalesce(f."adj_factor", 1.0) AS "volume", b."transactions"\n'
        "FROM read_parquet(?, hive_partitioning = false, union_by_name = true) AS b\n"
        "LEFT JOIN read_parquet(?) AS f\n"
        '  ON f."ticker" = b."ticker" AND b."session_date" >= f."valid_from" '
        'AND b."session_date" < f."valid_to"\n'
        'WHERE b."ticker" IN (?, ?) AND b."session_date" BETWEEN ? AND ?\n'
        'ORDER BY b."ticker", b."window_start"'
    )
    assert params == [[str(f) for f in FILES], FACTORS, "AAPL", "BRK.B", START, END]


def test_a_split_only_query_reads_every_price_and_the_volume_with_the_split_factor() -> None:
    sql, _ = build_query(daily(adjustment="split", fields=("close", "volume", "adj_close")), FILES, FACTORS)
    assert sql.splitlines()[0] == (
        'SELECT b."close" * coalesce(f."split_factor", 1.0) AS "close", '
        'b."volume" / coalesce(f."split_factor", 1.0) AS "volume", '
        'b."close" * coalesce(f."adj_factor", 1.0) AS "adj_close"'
    )
    sql, _ = build_query(daily(fields=("split_open", "split_volume"), adjusted=False), FILES, FACTORS)
    assert sql.splitlines()[0] == (
        'SELECT b."open" * coalesce(f."split_factor", 1.0) AS "split_open", '
        'b."volume" / coalesce(f."split_factor", 1.0) AS "split_volume"'
    )


@pytest.mark.parametrize(
    ("adjusted", "adjustment", "resolved"),
    [
        (None, None, "total_return"),
        (True, None, "total_return"),
        (False, None, "none"),
        (None, "split", "split"),
        (True, "split", "split"),
        (None, "none", "none"),
        (False, "none", "none"),
    ],
)
def test_adjusted_and_adjustment_resolve_to_one_adjustment(
    adjusted: bool | None, adjustment: str | None, resolved: str
) -> None:
    spec = daily(adjusted=adjusted, adjustment=adjustment)
    assert (spec.adjustment, spec.adjusted) == (resolved, resolved != "none")


@pytest.mark.parametrize(
    ("adjusted", "adjustment", "message"),
    [
        (False, "split", r"--raw \(adjusted=False\) contradicts --adjust split"),
        (True, "none", r"--adjusted \(adjusted=True\) contradicts --adjust none"),
        (None, "dividends", r"must be one of total_return, split, none, got 'dividends'"),
    ],
)
def test_contradictory_or_unknown_adjustments_are_refused(
    adjusted: bool | None, adjustment: str, message: str
) -> None:
    with pytest.raises(QueryError, match=message):
        daily(adjusted=adjusted, adjustment=adjustment)
    with pytest.raises(QueryError, match=r"no adjusted prices.*--adjust none"):
        QuerySpec("options_daily", ("X",), START, END, adjustment="split")


def test_adjusted_query_without_a_factor_table_reads_raw_prices() -> None:
    sql, params = build_query(daily(), FILES)
    assert sql.splitlines()[0] == (
        'SELECT b."ticker", b."session_date", b."open" AS "open", b."high" AS "high", b."low" AS "low", '
        'b."close" AS "close", b."volume" AS "volume", b."transactions"'
    )
    assert "JOIN" not in sql
    assert params == [[str(f) for f in FILES], "AAPL", "BRK.B", START, END]


def test_raw_query_selects_raw_columns_and_needs_no_join() -> None:
    sql, params = build_query(daily(adjusted=False, symbols=("MSFT",)), FILES[:1], FACTORS)
    assert sql.splitlines()[0] == (
        'SELECT b."ticker", b."session_date", b."open", b."high", b."low", b."close", b."volume", '
        'b."transactions"'
    )
    assert "JOIN" not in sql
    assert 'WHERE b."ticker" IN (?) AND' in sql
    assert params == [[str(FILES[0])], "MSFT", START, END]


def test_requested_fields_keep_their_order_and_only_prices_are_swapped() -> None:
    sql, _ = build_query(daily(fields=("close", "adj_close", "ret_1d", "transactions", "ts")), FILES, FACTORS)
    assert sql.splitlines()[0] == (
        'SELECT b."close" * coalesce(f."adj_factor", 1.0) AS "close", '
        'b."close" * coalesce(f."adj_factor", 1.0) AS "adj_close", b."ret_1d", b."transactions", b."ts"'
    )


def test_minute_defaults_include_ts_and_options_columns_are_selectable() -> None:
    minute = QuerySpec("stocks_minute", ("AAPL",), START, END, adjusted=False)
    assert default_fields(minute.dataset)[:3] == ("ticker", "session_date", "ts")
    assert build_query(minute, FILES)[0].startswith('SELECT b."ticker", b."session_date", b."ts", b."open"')
    options = QuerySpec(
        "options_daily",
        ("O:AAPL240119C00150000",),
        START,
        END,
        fields=("ticker", "strike", "option_type"),
        adjusted=False,
    )
    assert build_query(options, FILES)[0].startswith('SELECT b."ticker", b."strike", b."option_type"\n')


def test_values_never_reach_the_sql_text() -> None:
    nasty = "A'); DROP TABLE x; --"
    sql, params = build_query(daily(symbols=(nasty,), adjusted=False), ["/tmp/it's.parquet"])
    assert nasty not in sql
    assert "it's" not in sql
    assert params[:2] == [["/tmp/it's.parquet"], nasty]


@given(st.lists(st.text(min_size=1).filter(lambda s: s.strip() != ""), min_size=1, max_size=8, unique=True))
def test_one_placeholder_per_distinct_symbol(symbols: list[str]) -> None:
    spec = daily(symbols=tuple(symbols), adjusted=False)
    sql, params = build_query(spec, FILES)
    assert sql.count("?") == len(params)
    assert params[1:-2] == list(spec.symbols)


def test_empty_file_list_is_refused() -> None:
    with pytest.raises(QueryError, match="at least one partition file"):
        build_query(daily(), [])


def test_quote_identifier_checks_whitelist_and_shape() -> None:
    assert quote_identifier("close", {"close"}) == '"close"'
    with pytest.raises(QueryError, match="'secret' is not allowed here"):
        quote_identifier("secret", {"close"})
    with pytest.raises(QueryError, match="not a valid identifier"):
        quote_identifier('close" OR 1=1 --', {'close" OR 1=1 --'})


def test_create_view_sql_quotes_the_path_and_checks_the_name() -> None:
    assert create_view_sql("bronze_stocks_daily", "/data/it's/date=*/part.parquet") == (
        'CREATE OR REPLACE VIEW "bronze_stocks_daily" AS '
        "SELECT * FROM read_parquet('/data/it''s/date=*/part.parquet', hive_partitioning = false)"
    )
    for bad in ("bronze_stocks-daily", 'x"; DROP TABLE y; --', "Bronze"):
        with pytest.raises(QueryError, match="not a valid view name"):
            create_view_sql(bad, "/data/a.parquet")
    with pytest.raises(QueryError, match="NUL"):
        string_literal("a\x00b")


def test_unknown_field_is_named_with_the_valid_ones() -> None:
    with pytest.raises(
        QueryError, match=r"unknown field 'price' for stocks_daily \(valid fields: ticker, "
    ) as info:
        daily(fields=("close", "price"))
    assert "adj_close" in str(info.value)
    assert "volume_z_20d" in str(info.value)


def test_features_are_unknown_for_types_without_silver_and_factors_for_options() -> None:
    with pytest.raises(QueryError, match="unknown field 'ret_1d' for stocks_minute"):
        QuerySpec("stocks_minute", ("AAPL",), START, END, fields=("ret_1d",), adjusted=False)
    with pytest.raises(QueryError, match="unknown field 'adj_close' for options_daily"):
        QuerySpec("options_daily", ("X",), START, END, fields=("adj_close",), adjusted=False)
    # Minute bars are adjusted by the same factors when read, without a silver layer.
    assert QuerySpec("stocks_minute", ("AAPL",), START, END, fields=("adj_close",)).adjusted


def test_adjusted_is_refused_where_factors_do_not_apply() -> None:
    for data_type in ("options_daily", "options_minute"):
        with pytest.raises(QueryError, match=r"no adjusted prices.*--raw"):
            QuerySpec(data_type, ("X",), START, END, adjusted=True)
        assert QuerySpec(data_type, ("X",), START, END).adjusted is False  # unset: raw, as options are
    assert QuerySpec("stocks_daily", ("X",), START, END).adjusted is True


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"data_type": "crypto_tick"}, "unknown data type 'crypto_tick'"),
        ({"start": END, "end": START}, "end date 2024-01-02 is before start date 2024-01-31"),
        ({"symbols": ()}, "at least one symbol"),
        ({"symbols": ("AAPL", " ")}, "non-empty strings"),
        ({"fields": ("close", "")}, "non-empty column names"),
        ({"start": dt.datetime(2024, 1, 2, 9, 30)}, "start must be a date"),
    ],
)
def test_invalid_specs(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(QueryError, match=message):
        daily(**overrides)


def test_symbols_and_fields_are_normalised_once() -> None:
    spec = daily(symbols=(" AAPL", "AAPL", "brk.b"), fields=("close", "close", " ticker"))
    assert spec.symbols == ("AAPL", "brk.b")
    assert spec.fields == ("close", "ticker")
    assert daily(symbols="AAPL").symbols == ("AAPL",)
    assert daily() == daily(symbols=("AAPL", "BRK.B"))
    assert hash(daily()) == hash(daily())
    with pytest.raises(AttributeError):
        daily().start = END  # type: ignore[misc]


def test_needs_silver() -> None:
    assert not daily().needs_silver
    assert not daily(adjusted=False).needs_silver
    assert daily(adjusted=False, fields=("close", "ret_5d")).needs_silver


def test_package_exports_are_sorted_and_present() -> None:
    import quantmini.query as package

    assert package.__all__ == sorted(package.__all__)
    assert all(hasattr(package, name) for name in package.__all__)


def minute(**overrides: object) -> QuerySpec:
    values: dict[str, object] = {
        "data_type": "stocks_minute",
        "symbols": ("AAPL",),
        "start": START,
        "end": END,
    }
    values.update(overrides)
    return QuerySpec(**values)  # type: ignore[arg-type]


def test_session_filter_is_one_more_condition_on_the_stored_flag() -> None:
    all_sql, all_params = build_query(minute(adjusted=False), FILES)
    regular_sql, regular_params = build_query(minute(adjusted=False, session="regular"), FILES)
    extended_sql, _ = build_query(minute(adjusted=False, session="extended"), FILES)
    where = 'WHERE b."ticker" IN (?) AND b."session_date" BETWEEN ? AND ?'
    assert where + "\n" in all_sql
    assert where + ' AND b."regular_session"\n' in regular_sql
    assert where + ' AND NOT b."regular_session"\n' in extended_sql
    assert regular_params == all_params


def test_resampled_query_groups_by_session_and_bucket_and_binds_the_same_values() -> None:
    sql, params = build_query(minute(bar="5min", session="regular"), FILES, FACTORS)
    assert params == [[str(f) for f in FILES], FACTORS, "AAPL", START, END]
    assert sql.startswith("WITH minute_bars AS (\nSELECT ")
    assert 'AND b."regular_session"\n),\nbuckets AS (' in sql
    # Buckets: the local minute's offset from 09:30 (regular) or 04:00 (extended), floored to 5 minutes.
    assert 'CASE WHEN "regular_session" THEN 570 ELSE 240 END) % 5 + 5) % 5 * 60000000000' in sql
    assert sql.endswith(
        'GROUP BY "ticker", "session_date", "regular_session", "_start"\nORDER BY "ticker", "_start"'
    )
    assert 'arg_min("adj_open", "window_start") AS "open"' in sql
    assert 'arg_max("adj_close", "window_start") AS "close"' in sql
    assert 'fsum("adj_volume") AS "volume"' in sql
    assert 'count(*) AS "bar_count"' in sql
    options = minute(
        data_type="options_minute", adjusted=False, bar="1min", fields=("ticker", "strike", "ts")
    )
    assert build_query(options, FILES)[0].splitlines()[-4] == (
        'SELECT "ticker", any_value("strike") AS "strike", '
        'timezone(\'UTC\', make_timestamp_ns("_start")) AS "ts"'
    )
    raw, _ = build_query(minute(bar="5min", adjusted=False), FILES, FACTORS)
    assert "JOIN" not in raw
    assert 'arg_min("open", "window_start") AS "open"' in raw


def test_resampled_vwap_alone_still_reads_adjusted_prices() -> None:
    sql, params = build_query(minute(bar="15min", fields=("ticker", "vwap")), FILES, FACTORS)
    assert "LEFT JOIN read_parquet(?) AS f" in sql
    assert FACTORS in params
    assert '("adj_high" + "adj_low" + "adj_close") / 3 * "adj_volume"' in sql
    assert sql.splitlines()[-4].startswith('SELECT "ticker", fsum(')
    split, _ = build_query(minute(bar="15min", adjustment="split"), FILES, FACTORS)
    assert '("split_high" + "split_low" + "split_close") / 3 * "split_volume"' in split
    assert 'arg_min("split_open", "window_start") AS "open"' in split
    assert 'fsum("split_volume") AS "volume"' in split


def test_minute_options_are_validated_once_and_normalised() -> None:
    assert minute(bar="05min").bar == "5min"
    assert minute(bar=" 60min ").bar_minutes == 60
    assert minute(bar="5min") == minute(bar="05min")
    assert minute(bar="5min") != minute(bar="15min")
    assert minute(session="regular") != minute()
    assert hash(minute(session="regular", bar="5min")) == hash(minute(session="regular", bar="5min"))
    assert minute().bar_minutes is None
    assert minute(bar="1min").selected_fields == (*default_fields(minute().dataset), "vwap", "bar_count")
    assert tuple(minute(bar="30min").field_types)[-2:] == ("vwap", "bar_count")
    for n in BAR_MINUTES:
        assert 30 % n == 0 or n == 60
    assert SESSIONS == ("all", "regular", "extended")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"session": "pre"}, "session must be one of all, regular, extended, got 'pre'"),
        ({"bar": "5m"}, r"bar must be a number of minutes like '5min', got '5m' \(choose one of: 1min, "),
        ({"bar": "1h"}, "bar must be a number of minutes like '5min'"),
        ({"bar": "0min"}, r"bar '0min' is not supported: .* divide 30, or are 60"),
        ({"bar": "7min"}, r"bar '7min' is not supported"),
        ({"bar": "45min"}, r"bar '45min' is not supported"),
        ({"bar": "120min"}, r"bar '120min' is not supported"),
        ({"bar": "-5min"}, "bar must be a number of minutes"),
        ({"fields": ("close", "vwap")}, r"field 'vwap' belongs to resampled bars: add --bar \(bar=\)"),
        ({"fields": ("bar_count",)}, "field 'bar_count' belongs to resampled bars"),
    ],
)
def test_invalid_minute_options(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(QueryError, match=message):
        minute(**overrides)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"session": "regular"},
            r"--session regular \(session=\) filters minute bars by time of day; stocks_daily has one bar "
            r"per session \(minute data types: stocks_minute, options_minute\)",
        ),
        ({"bar": "5min"}, r"--bar \(bar=\) resamples minute bars; stocks_daily has one bar per session"),
        ({"fields": ("close", "vwap")}, "unknown field 'vwap' for stocks_daily"),
    ],
)
def test_minute_options_on_a_day_type_are_one_clear_error(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(QueryError, match=message):
        daily(**overrides)
    assert daily(session="all").session == "all"


def test_cli_choices_follow_the_spec() -> None:
    from quantmini.cli.query_cmd import SESSION_CHOICES, query

    assert SESSION_CHOICES == SESSIONS
    bar = next(p for p in query.params if p.name == "bar")
    assert isinstance(bar, click.Option)
    help_text = bar.help or ""
    listed = help_text[help_text.index("(") + 1 : help_text.index("min)")]
    assert [int(n) for n in listed.replace(" or ", ", ").split(", ")] == list(BAR_MINUTES)


def test_an_option_chain_selects_on_the_resolved_underlying_and_sorts_like_a_chain_sheet() -> None:
    expiration = dt.date(2024, 2, 16)
    spec = QuerySpec("options_daily", (), START, END, underlying=" BRK.B ", expiration=expiration)
    assert (spec.underlying, spec.match, spec.needs_silver) == ("BRK.B", ("underlying", ("BRK.B",)), True)
    assert spec.selected_fields[:6] == (
        "ticker",
        "session_date",
        "expiration",
        "option_type",
        "strike",
        "open",
    )
    assert "ts" not in spec.selected_fields  # daily chains: one bar per session
    assert "ts" in QuerySpec("options_minute", (), START, END, underlying="X").selected_fields
    sql, params = build_query(spec, FILES)
    assert 'WHERE b."underlying" IN (?) AND b."session_date" BETWEEN ? AND ? AND b."expiration" = ?' in sql
    assert sql.endswith('ORDER BY b."window_start", b."expiration", b."strike", b."option_type", b."ticker"')
    assert params[1:] == ["BRK.B", START, END, expiration]
    narrowed = QuerySpec("options_daily", ("O:BRKB240216C00400000",), START, END, underlying="BRK.B")
    sql, params = build_query(narrowed, FILES)
    assert 'AND b."ticker" IN (?)' in sql
    assert params[-1] == "O:BRKB240216C00400000"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"data_type": "stocks_daily", "underlying": "SPY"}, "not an options data type"),
        ({"symbols": ()}, r"at least one symbol is required \(or an underlying"),
        ({"underlying": "  "}, "underlying must be a non-empty ticker"),
        ({"underlying": "SPY", "expiration": "2024-02-16"}, "expiration must be a date"),
    ],
)
def test_chain_arguments_are_checked(overrides: dict[str, object], message: str) -> None:
    values: dict[str, object] = {"data_type": "options_daily", "symbols": ("X",), "start": START, "end": END}
    with pytest.raises(QueryError, match=message):
        QuerySpec(**(values | overrides))  # type: ignore[arg-type]


def test_option_fields_only_silver_answers_need_silver() -> None:
    plain = QuerySpec("options_daily", ("X",), START, END, fields=("ticker", "close"))
    assert not plain.needs_silver
    for field in ("underlying", "iv", "root"):
        assert QuerySpec("options_daily", ("X",), START, END, fields=("ticker", field)).needs_silver


def test_in_lists_take_few_values_as_parameters_and_many_as_one_list() -> None:
    few = [f"T{i}" for i in range(IN_LIST_LIMIT)]
    assert in_list("b.ticker", few) == (f"b.ticker IN ({', '.join('?' * IN_LIST_LIMIT)})", few)
    many = [*few, "ONE_MORE"]
    assert in_list("b.ticker", many) == ("b.ticker IN (SELECT unnest(?))", [many])
