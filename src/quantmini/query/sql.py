"""Pure SQL builders: a :class:`~quantmini.query.spec.QuerySpec` and a file list in, ``(sql, params)`` out.

Values (the file lists, symbols, dates) are always bound as parameters. Identifiers come only from a
whitelist derived from the data type's schema, must look like plain identifiers (letters, digits and
underscores: ``close``, ``ret_1d``, ``ROC5``), and are quoted.
Adjusted prices are computed when read, from the compact factor table (spans of constant factors per
ticker), with the factor of the query's adjustment (``adj_factor`` for total return, ``split_factor``
for split-only); the query has this shape::

    SELECT b."ticker", b."session_date", b."open" * coalesce(f."adj_factor", 1.0) AS "open", ...
    FROM read_parquet(?, hive_partitioning = false, union_by_name = true) AS b
    LEFT JOIN read_parquet(?) AS f
      ON f."ticker" = b."ticker" AND b."session_date" >= f."valid_from" AND b."session_date" < f."valid_to"
    WHERE b."ticker" IN (?, ?) AND b."session_date" BETWEEN ? AND ?
    ORDER BY b."ticker", b."window_start"

Without a factor table (no corporate action applies) the join is left out and every factor is 1.
Features of a feature set's own table (:class:`FeatureJoin`) are joined on ticker and session, from the
partitions of the query's sessions filtered by the same tickers and dates, and read as stored::

    LEFT JOIN (SELECT "ticker", "session_date", "KMID" FROM read_parquet(?, …)
               WHERE "ticker" IN (?, ?) AND "session_date" BETWEEN ? AND ?) AS x0
      ON x0."ticker" = b."ticker" AND x0."session_date" = b."session_date"

``session="regular"`` adds ``AND b."regular_session"`` to the filter, ``"extended"`` its negation.

Resampled minute bars (``bar``) aggregate those rows per ticker, session, ``regular_session`` and bucket
of N minutes. Buckets are aligned to the exchange-local clock: to 09:30 for regular-session bars and to
04:00 for extended-hours bars (one grid when N divides 30: 330 minutes lie between them), and the bar's
``ts`` and ``window_start`` are its bucket's start. A bucket never spans two sessions or the regular/extended
boundary, so 60-minute bars are cut at 09:30 and at the close (09:00-09:30, 15:30-16:00). Each bar has
open = first, high = max, low = min, close = last, volume and transactions = sums, ``vwap`` = Σ typical ×
volume / Σ volume with typical = (high + low + close) / 3 (null when the volume is 0) and ``bar_count``,
the minute bars it holds. Prices are adjusted before they are aggregated; as a session's bars share one
factor, this equals resampling raw bars and adjusting the result.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from quantmini._exceptions import QueryError
from quantmini.core.adjustment_names import COLUMN_PREFIXES, FACTOR_COLUMNS
from quantmini.core.calendar import EXCHANGE_TZ, EXTENDED_OPEN, REGULAR_OPEN
from quantmini.query.spec import (
    ADJUSTED_PRICE_COLUMNS,
    ADJUSTMENT_COLUMNS,
    QuerySpec,
    column_types,
    feature_types,
)

#: View names: lower-case snake_case.
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
#: Column names: snake_case, or upper case for the feature library's (``ROC5``, ``MACD_SIGNAL``).
_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

#: Columns every query filters or sorts on.
ORDER_COLUMNS: tuple[str, ...] = ("ticker", "window_start")
#: An option chain reads like a chain sheet: by bar time, expiration, strike, calls before puts.
CHAIN_ORDER_COLUMNS: tuple[str, ...] = ("window_start", "expiration", "strike", "option_type", "ticker")

_PRICES = ("open", "high", "low", "close")

#: Columns a resampled bar is grouped by, besides its bucket.
_GROUP_COLUMNS = ("ticker", "session_date", "regular_session")

#: How a resampled bar aggregates a stored column (raw, or its ``adj_`` counterpart) of its minute bars.
#: ``fsum`` (compensated summation) makes sums of prices and volumes all but independent of the order
#: DuckDB's threads add them in.
_AGGREGATES = {
    "open": 'arg_min({c}, "window_start")',
    "high": "max({c})",
    "low": "min({c})",
    "close": 'arg_max({c}, "window_start")',
    "volume": "fsum({c})",
    "transactions": "CAST(sum({c}) AS BIGINT)",
}

#: Columns the ``vwap`` of a resampled bar is computed from.
_VWAP_INPUTS = ("high", "low", "close", "volume")

#: Each adjusted column (``adj_close``, ``split_volume`` …) by the stored column it adjusts.
_ADJUSTED_OF = {f"{p}{c}": c for p in COLUMN_PREFIXES.values() for c in ADJUSTED_PRICE_COLUMNS}

_MINUTE_NS = 60_000_000_000


@dataclass(frozen=True, slots=True)
class FeatureJoin:
    """Features read from a feature set's own silver table: the fields, and the partition files of the
    query's sessions (joined to the bars on ticker and session date)."""

    fields: tuple[str, ...]
    files: tuple[str, ...]


def quote_identifier(name: str, allowed: Collection[str]) -> str:
    """``name`` double-quoted, after checking it is in ``allowed`` and a plain identifier."""
    if name not in allowed:
        raise QueryError(f"column {name!r} is not allowed here (allowed: {', '.join(sorted(allowed))})")
    if not _COLUMN.match(name):
        raise QueryError(f"{name!r} is not a valid identifier (expected letters, digits and underscores)")
    return f'"{name}"'


def factor_expressions(bars: str = "b", factors: str | None = "f") -> dict[str, str]:
    """SQL for every adjustment column, from raw columns of ``bars`` and the factor table ``factors``:
    each adjustment's prices are raw × its factor and its volume raw ÷ that factor."""
    if factors is None:  # no corporate action applies: adjusted = raw
        exprs = {"split_factor": "1.0", "adj_factor": "1.0"}
        exprs.update({column: f'{bars}."{c}"' for column, c in _ADJUSTED_OF.items()})
        return exprs
    exprs = {}
    for column in ("split_factor", "adj_factor"):
        exprs[column] = f'coalesce({factors}."{column}", 1.0)'
    for adjustment, prefix in COLUMN_PREFIXES.items():
        factor = exprs[FACTOR_COLUMNS[adjustment]]
        exprs.update({f"{prefix}{c}": f'{bars}."{c}" * {factor}' for c in _PRICES})
        exprs[f"{prefix}volume"] = f'{bars}."volume" / {factor}'
    return exprs


def select_items(spec: QuerySpec) -> list[tuple[str, str]]:
    """``(source column, output name)`` pairs of the query, in output order."""
    items: list[tuple[str, str]] = []
    for name in spec.selected_fields:
        items.append((spec.source_of(name), name))
    return items


def select_clause(spec: QuerySpec, factors: bool = True, features: Sequence[FeatureJoin] = ()) -> str:
    """The ``SELECT`` list: raw columns of ``b``, adjustment columns computed from ``f`` and features of
    the joined feature tables ``x0``, ``x1`` …"""
    features_of_sets = feature_types(spec.dataset)
    allowed = {**column_types(spec.dataset), **features_of_sets}
    computed = factor_expressions("b", "f" if factors else None)
    joined = {name: f"x{i}" for i, join in enumerate(features) for name in join.fields}
    parts: list[str] = []
    for source, output in select_items(spec):
        quoted = quote_identifier(output, allowed)
        if source in joined:
            parts.append(f"{joined[source]}.{quoted}")
        elif source in features_of_sets:
            raise QueryError(f"feature {source!r} is read from its feature set's table, which was not given")
        elif source in ADJUSTMENT_COLUMNS:
            quote_identifier(source, allowed)
            parts.append(f"{computed[source]} AS {quoted}")
        else:
            column = f"b.{quote_identifier(source, allowed)}"
            parts.append(column if source == output else f"{column} AS {quoted}")
    return ", ".join(parts)


def needs_factors(spec: QuerySpec) -> bool:
    """Whether the query reads any adjustment column (then the factor table is joined)."""
    return any(source in ADJUSTMENT_COLUMNS for source in minute_sources(spec))


def minute_sources(spec: QuerySpec) -> tuple[str, ...]:
    """The source columns read from each stored bar: the sources of :func:`select_items`, or for a
    resampled query the columns its aggregates read (``vwap`` reads high, low, close and volume)."""
    if spec.bar is None:
        return tuple(dict.fromkeys(source for source, _ in select_items(spec)))
    sources: list[str] = []
    for source, _ in select_items(spec):
        if source == "vwap":
            sources += [spec.source_of(c) for c in _VWAP_INPUTS]
        elif source not in (*_GROUP_COLUMNS, "ts", "window_start", "bar_count"):
            sources.append(source)
    return tuple(dict.fromkeys(sources))


def build_query(
    spec: QuerySpec,
    files: Sequence[Path | str],
    factors: Path | str | None = None,
    features: Sequence[FeatureJoin] = (),
) -> tuple[str, list[object]]:
    """SQL and parameters answering ``spec`` from the Parquet ``files`` (which must not be empty), the
    compact factor table ``factors`` (``None``: no factor applies) and the feature set tables
    ``features`` (which must give every feature field of ``spec``)."""
    if not files:
        raise QueryError("a query needs at least one partition file")
    if spec.bar is not None:
        if features:
            raise QueryError("features are not resampled")
        return build_resample_query(spec, files, factors)
    allowed = column_types(spec.dataset)
    columns = CHAIN_ORDER_COLUMNS if spec.is_chain else ORDER_COLUMNS
    order = ", ".join(f"b.{quote_identifier(c, allowed)}" for c in columns)
    rows, params = _filtered_rows(spec, files, factors, features)
    join = _joins_factors(spec, factors)
    return f"SELECT {select_clause(spec, factors=join, features=features)}\n{rows}\nORDER BY {order}", params


def _joins_factors(spec: QuerySpec, factors: Path | str | None) -> bool:
    return factors is not None and needs_factors(spec)


def _filtered_rows(
    spec: QuerySpec,
    files: Sequence[Path | str],
    factors: Path | str | None,
    features: Sequence[FeatureJoin] = (),
) -> tuple[str, list[object]]:
    """``FROM`` (bars ``b``, joined to the factor table ``f`` when the query needs it and to the feature
    tables ``x0``, ``x1`` …) and ``WHERE``."""
    allowed = column_types(spec.dataset)
    ticker, session_date = (quote_identifier(c, allowed) for c in ("ticker", "session_date"))
    column, values = spec.match
    params: list[object] = [[str(f) for f in files]]
    sql = "FROM read_parquet(?, hive_partitioning = false, union_by_name = true) AS b\n"
    if _joins_factors(spec, factors):
        sql += (
            "LEFT JOIN read_parquet(?) AS f\n"
            f'  ON f."ticker" = b.{ticker} AND b.{session_date} >= f."valid_from" '
            f'AND b.{session_date} < f."valid_to"\n'
        )
        params.append(str(factors))
    for index, join in enumerate(features):
        feature_sql, feature_params = _feature_join(spec, join, f"x{index}")
        sql += feature_sql
        params += feature_params
    key = quote_identifier(column, allowed)
    if values:
        condition, values_params = in_list(f"b.{key}", values)
        sql += f"WHERE {condition} AND "
        params += values_params
    else:
        sql += "WHERE "
    sql += f"b.{session_date} BETWEEN ? AND ?"
    params += [spec.start, spec.end]
    if spec.is_chain and spec.symbols:
        condition, symbol_params = in_list(f"b.{ticker}", spec.symbols)
        sql += f" AND {condition}"
        params += symbol_params
    if spec.expiration is not None:
        sql += f" AND b.{quote_identifier('expiration', allowed)} = ?"
        params.append(spec.expiration)
    if spec.session != "all":
        regular = f"b.{quote_identifier('regular_session', allowed)}"
        sql += f" AND {regular}" if spec.session == "regular" else f" AND NOT {regular}"
    return sql, params


#: Values up to which ``IN`` lists its values as parameters (DuckDB checks them against each row group's
#: statistics); a longer list is one list parameter unnested, which DuckDB matches faster (a 500-symbol
#: panel: 0.90 s instead of 1.14 s).
IN_LIST_LIMIT = 16


def in_list(column: str, values: Sequence[object]) -> tuple[str, list[object]]:
    """``column IN (…)`` and its parameters, for a few values or for many."""
    if len(values) <= IN_LIST_LIMIT:
        return f"{column} IN ({', '.join('?' for _ in values)})", list(values)
    return f"{column} IN (SELECT unnest(?))", [list(values)]


def _feature_join(spec: QuerySpec, join: FeatureJoin, alias: str) -> tuple[str, list[object]]:
    """``LEFT JOIN`` of one feature table as ``alias``: its rows of the query's tickers and sessions."""
    if not join.files or not join.fields:
        raise QueryError("a feature join needs partition files and fields")
    allowed = {"ticker", "session_date", *feature_types(spec.dataset)}
    ticker, session_date = (quote_identifier(c, allowed) for c in ("ticker", "session_date"))
    columns = ", ".join(quote_identifier(c, allowed) for c in ("ticker", "session_date", *join.fields))
    where = f"{session_date} BETWEEN ? AND ?"
    params: list[object] = [list(join.files)]
    if spec.symbols:
        condition, symbol_params = in_list(ticker, spec.symbols)
        where = f"{condition} AND {where}"
        params += symbol_params
    params += [spec.start, spec.end]
    sql = (
        f"LEFT JOIN (SELECT {columns} "
        "FROM read_parquet(?, hive_partitioning = false, union_by_name = true)\n"
        f"  WHERE {where}) AS {alias}\n"
        f"  ON {alias}.{ticker} = b.{ticker} AND {alias}.{session_date} = b.{session_date}\n"
    )
    return sql, params


def build_resample_query(
    spec: QuerySpec, files: Sequence[Path | str], factors: Path | str | None = None
) -> tuple[str, list[object]]:
    """SQL and parameters answering ``spec`` with bars of ``spec.bar`` minutes (see the module's
    docstring for the rule), from the stored minute bars in ``files``."""
    minutes = spec.bar_minutes
    if minutes is None:
        raise QueryError("a resampled query needs a bar size")
    if not files:
        raise QueryError("a query needs at least one partition file")
    allowed = column_types(spec.dataset)
    rows, params = _filtered_rows(spec, files, factors)
    computed = factor_expressions("b", "f" if _joins_factors(spec, factors) else None)
    inner = [f"b.{quote_identifier(c, allowed)}" for c in (*_GROUP_COLUMNS, "window_start")]
    inner.append(f"timezone('{EXCHANGE_TZ}', b.{quote_identifier('ts', allowed)}) AS \"_local\"")
    for source in minute_sources(spec):
        quoted = quote_identifier(source, allowed)
        inner.append(f"{computed[source]} AS {quoted}" if source in ADJUSTMENT_COLUMNS else f"b.{quoted}")
    regular_open = REGULAR_OPEN.hour * 60 + REGULAR_OPEN.minute
    extended_open = EXTENDED_OPEN.hour * 60 + EXTENDED_OPEN.minute
    anchor = f'CASE WHEN "regular_session" THEN {regular_open} ELSE {extended_open} END'
    minute = 'hour("_local") * 60 + minute("_local")'
    offset = f"((({minute}) - {anchor}) % {minutes} + {minutes}) % {minutes}"
    groups = ", ".join(f'"{c}"' for c in _GROUP_COLUMNS)
    sql = (
        f"WITH minute_bars AS (\nSELECT {', '.join(inner)}\n{rows}\n),\n"
        f'buckets AS (\nSELECT *, "window_start" - "window_start" % {_MINUTE_NS} '
        f'- {offset} * {_MINUTE_NS} AS "_start"\nFROM minute_bars\n)\n'
        f"SELECT {', '.join(_aggregates(spec))}\n"
        f'FROM buckets\nGROUP BY {groups}, "_start"\nORDER BY "ticker", "_start"'
    )
    return sql, params


def _aggregates(spec: QuerySpec) -> list[str]:
    """The ``SELECT`` list of a resampled query, over the ``buckets`` rows named by their sources."""
    allowed = spec.field_types
    price = {c: quote_identifier(spec.source_of(c), allowed) for c in _VWAP_INPUTS}
    bucket: dict[str, str] = {
        "window_start": '"_start"',
        "ts": "timezone('UTC', make_timestamp_ns(\"_start\"))",
        "bar_count": "count(*)",
        "vwap": f"fsum(({price['high']} + {price['low']} + {price['close']}) / 3 * {price['volume']}) "
        f"/ nullif(fsum({price['volume']}), 0)",
    }
    parts: list[str] = []
    for source, output in select_items(spec):
        quoted = quote_identifier(output, allowed)
        column = quote_identifier(source, allowed)
        if source in _GROUP_COLUMNS:
            expr = column
        elif source in bucket:
            expr = bucket[source]
        else:  # a stored or adjusted column; factors and option contract fields are constant in a bucket
            template = _AGGREGATES.get(_ADJUSTED_OF.get(source, source), "any_value({c})")
            expr = template.format(c=column)
        parts.append(expr if expr == quoted else f"{expr} AS {quoted}")
    return parts


def build_coverage_query(spec: QuerySpec, files: Sequence[Path | str]) -> tuple[str, list[object]]:
    """SQL and parameters giving, for each of ``spec``'s symbols found in ``files``, its first and last
    session: ``(ticker, first, last)`` rows, sorted by ticker (the range of ``spec`` is ignored)."""
    if not files:
        raise QueryError("a query needs at least one partition file")
    allowed = column_types(spec.dataset)
    column, values = spec.match
    key, session_date = (quote_identifier(c, allowed) for c in (column, "session_date"))
    condition, params = in_list(key, values) if values else ("true", [])
    sql = (
        f"SELECT {key}, min({session_date}), max({session_date})\n"
        "FROM read_parquet(?, hive_partitioning = false, union_by_name = true)\n"
        f"WHERE {condition}\nGROUP BY {key}\nORDER BY {key}"
    )
    return sql, [[str(f) for f in files], *params]


def adjusted_view_sql(view: str, bars: str, factors: str | None) -> str:
    """``CREATE OR REPLACE VIEW`` ``view``: every column of the view ``bars`` plus the adjustment columns,
    joined to the factor view ``factors`` (``None``: all factors 1)."""
    for name in (view, bars, *([factors] if factors else [])):
        if not _IDENTIFIER.match(name):
            raise QueryError(f"{name!r} is not a valid view name (expected lower-case snake_case)")
    computed = factor_expressions("b", "f" if factors else None)
    columns = ", ".join(f'{sql} AS "{name}"' for name, sql in computed.items())
    join = (
        f' LEFT JOIN "{factors}" AS f ON f."ticker" = b."ticker" '
        'AND b."session_date" >= f."valid_from" AND b."session_date" < f."valid_to"'
        if factors
        else ""
    )
    return f'CREATE OR REPLACE VIEW "{view}" AS SELECT b.*, {columns} FROM "{bars}" AS b{join}'


def string_literal(value: str) -> str:
    """``value`` as a single-quoted SQL string literal (for DDL, where parameters cannot be bound)."""
    if "\x00" in value:
        raise QueryError("SQL string literals cannot contain NUL characters")
    return "'" + value.replace("'", "''") + "'"


def create_view_sql(view: str, parquet: str) -> str:
    """``CREATE OR REPLACE VIEW`` named ``view`` (checked snake_case) over a Parquet file or glob."""
    if not _IDENTIFIER.match(view):
        raise QueryError(f"{view!r} is not a valid view name (expected lower-case snake_case)")
    return (
        f'CREATE OR REPLACE VIEW "{view}" AS '
        f"SELECT * FROM read_parquet({string_literal(parquet)}, hive_partitioning = false)"
    )
