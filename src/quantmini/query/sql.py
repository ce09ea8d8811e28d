"""Pure SQL builders: a :class:`~quantmini.query.spec.QuerySpec` and a file list in, ``(sql, params)`` out.

Values (the file list, symbols, dates) are always bound as parameters. Identifiers come only from a
whitelist derived from the data type's schema, must look like plain snake_case names, and are quoted.
The query has this shape (adjusted prices come from their ``adj_`` columns)::

    SELECT "ticker", "session_date", "adj_open" AS "open", ..., "transactions"
    FROM read_parquet(?, hive_partitioning = false, union_by_name = true)
    WHERE "ticker" IN (?, ?) AND "session_date" BETWEEN ? AND ?
    ORDER BY "ticker", "window_start"
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from pathlib import Path

from quantmini._exceptions import QueryError
from quantmini.query.spec import ADJUSTED_PRICE_COLUMNS, QuerySpec, column_types

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")

#: Columns every query filters or sorts on.
ORDER_COLUMNS: tuple[str, ...] = ("ticker", "window_start")


def quote_identifier(name: str, allowed: Collection[str]) -> str:
    """``name`` double-quoted, after checking it is in ``allowed`` and a plain snake_case identifier."""
    if name not in allowed:
        raise QueryError(f"column {name!r} is not allowed here (allowed: {', '.join(sorted(allowed))})")
    if not _IDENTIFIER.match(name):
        raise QueryError(f"{name!r} is not a valid identifier (expected lower-case snake_case)")
    return f'"{name}"'


def select_items(spec: QuerySpec) -> list[tuple[str, str]]:
    """``(source column, output name)`` pairs of the query, in output order."""
    items: list[tuple[str, str]] = []
    for name in spec.selected_fields:
        source = f"adj_{name}" if spec.adjusted and name in ADJUSTED_PRICE_COLUMNS else name
        items.append((source, name))
    return items


def select_clause(spec: QuerySpec) -> str:
    """The ``SELECT`` list: quoted columns, aliased when an adjusted column stands in for a raw one."""
    allowed = column_types(spec.dataset)
    parts: list[str] = []
    for source, output in select_items(spec):
        quoted = quote_identifier(source, allowed)
        parts.append(quoted if source == output else f"{quoted} AS {quote_identifier(output, allowed)}")
    return ", ".join(parts)


def build_query(spec: QuerySpec, files: Sequence[Path | str]) -> tuple[str, list[object]]:
    """SQL and parameters answering ``spec`` from the Parquet ``files`` (which must not be empty)."""
    if not files:
        raise QueryError("a query needs at least one partition file")
    allowed = column_types(spec.dataset)
    ticker, session_date = (quote_identifier(c, allowed) for c in ("ticker", "session_date"))
    order = ", ".join(quote_identifier(c, allowed) for c in ORDER_COLUMNS)
    placeholders = ", ".join("?" for _ in spec.symbols)
    sql = (
        f"SELECT {select_clause(spec)}\n"
        "FROM read_parquet(?, hive_partitioning = false, union_by_name = true)\n"
        f"WHERE {ticker} IN ({placeholders}) AND {session_date} BETWEEN ? AND ?\n"
        f"ORDER BY {order}"
    )
    params: list[object] = [[str(f) for f in files], *spec.symbols, spec.start, spec.end]
    return sql, params


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
