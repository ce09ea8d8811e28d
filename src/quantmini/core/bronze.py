"""Shape validated rows into the bronze layout of a data type (exact schema, sort order)."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pyarrow as pa

from quantmini.core.calendar import exchange_time_expr
from quantmini.core.quality import REGULAR_CLOSE, REGULAR_OPEN
from quantmini.datasets.base import DatasetSpec

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("line", pa.int64(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string()),
        pa.field("ticker", pa.string()),
        pa.field("raw", pa.string()),
        pa.field("session_date", pa.date32(), nullable=False),
    ]
)


def to_bronze(kept: pl.DataFrame, spec: DatasetSpec, regular_close: dt.time = REGULAR_CLOSE) -> pa.Table:
    """Typed, validated rows (with ``session_date``) → an Arrow table in ``spec.bronze_schema``.

    Adds the exchange-time timestamp ``ts`` and, for minute bars, ``regular_session`` (09:30 to the
    session's close — 16:00, or earlier on early-close days — versus extended hours); sorts by
    ``spec.sort_columns``.
    """
    frame = kept.with_columns(exchange_time_expr("window_start").alias("ts"))
    if "regular_session" in spec.bronze_schema.names:
        local = pl.col("ts").dt.time()
        frame = frame.with_columns(
            ((local >= REGULAR_OPEN) & (local < regular_close)).alias("regular_session")
        )
    frame = frame.sort(list(spec.sort_columns))
    names = spec.bronze_schema.names
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise KeyError(f"bronze columns {missing} are not derived for data type {spec.name}")
    return frame.select(names).to_arrow().cast(spec.bronze_schema)
