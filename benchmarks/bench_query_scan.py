"""The baseline of ``bench_query.py``: a query case's rows read with a plain ``pl.scan_parquet``.

    python benchmarks/bench_query_scan.py CASE.json > answer.csv

It imports Polars only, so run as a command (the command-line baseline) it starts as a user's own
script would. The rows are those the query layer returns: the silver partitions filtered on ticker and
session date, prices × ``adj_factor`` and volume ÷ ``adj_factor`` from the lake's factor table (an as-of
join on the span's ``valid_from``, kept only before its ``valid_to``: outside every span the factor is
1, as in the engine's SQL), sorted by ticker and bar; a panel is then pivoted to a column per symbol as
``quantmini.query.panel`` does.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any

import polars as pl

PRICES = ("open", "high", "low", "close")


def scan(case: dict[str, Any], source: str | list[str], shape: str = "wide") -> pl.DataFrame:
    """The answer to ``case`` from ``source`` (a glob over the lake, or a list of partition files);
    ``shape="long"`` leaves a panel unpivoted (one row per ticker and bar, as ``data query`` prints it)."""
    start, end = dt.date.fromisoformat(case["start"]), dt.date.fromisoformat(case["end"])
    rows = pl.scan_parquet(source).filter(pl.col("session_date").is_between(start, end))
    if case["symbols"] is not None:
        rows = rows.filter(pl.col("ticker").is_in(case["symbols"]))
    factors = pl.scan_parquet(case["factors"]).sort("valid_from")
    factor = (
        pl.when(pl.col("session_date") < pl.col("valid_to")).then(pl.col("adj_factor")).otherwise(1.0)
    ).fill_null(1.0)
    adjusted = (
        rows.sort("session_date")
        .join_asof(
            factors, left_on="session_date", right_on="valid_from", by="ticker", check_sortedness=False
        )
        .with_columns(factor.alias("_factor"))
        .with_columns(*(pl.col(c) * pl.col("_factor") for c in PRICES), pl.col("volume") / pl.col("_factor"))
        .sort("ticker", "window_start")
        .select(case["columns"])
    )
    frame = adjusted.collect()
    field = case["panel"]
    if field is None or shape == "long":
        return frame
    index = "session_date"
    wide = frame.pivot(on="ticker", index=index, values=field, aggregate_function="first", sort_columns=True)
    missing = [s for s in sorted(case["symbols"]) if s not in wide.columns]
    wide = wide.with_columns(pl.lit(None, dtype=frame.schema[field]).alias(s) for s in missing)
    return wide.select(index, *sorted(case["symbols"])).sort(index)


if __name__ == "__main__":
    with open(sys.argv[1]) as fh:
        params = json.load(fh)
    scan(params["case"], params["case"]["glob"], params.get("shape", "wide")).write_csv(sys.stdout)
