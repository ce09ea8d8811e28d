"""Query the lake: DuckDB over the Parquet partitions, answers as Polars frames.

>>> from quantmini.query import query
>>> frame = query("data", "stocks_daily", ["AAPL"], date(2024, 1, 2), date(2024, 1, 31))  # doctest: +SKIP
>>> closes = panel("data", "stocks_daily", "close", date(2020, 1, 2), date(2024, 12, 31))  # doctest: +SKIP
>>> today = cross_section("data", "stocks_daily", date(2024, 12, 31), ["close", "KMID"])  # doctest: +SKIP
>>> counts = sql("data", "SELECT ticker, count(*) FROM silver_stocks_daily GROUP BY 1")  # doctest: +SKIP
"""

from __future__ import annotations

from quantmini.query.engine import QueryEngine, cross_section, panel, query
from quantmini.query.lake_sql import sql
from quantmini.query.spec import QuerySpec, default_fields

__all__ = ["QueryEngine", "QuerySpec", "cross_section", "default_fields", "panel", "query", "sql"]
