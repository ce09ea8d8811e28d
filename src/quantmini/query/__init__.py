"""Query the lake: DuckDB over the Parquet partitions, answers as Polars frames.

>>> from quantmini.query import query
>>> frame = query("data", "stocks_daily", ["AAPL"], date(2024, 1, 2), date(2024, 1, 31))  # doctest: +SKIP
"""

from __future__ import annotations

from quantmini.query.engine import QueryEngine, query
from quantmini.query.spec import QuerySpec, default_fields

__all__ = ["QueryEngine", "QuerySpec", "default_fields", "query"]
