"""Shape validated rows into the bronze layout of a data type (exact schema, sort order)."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pyarrow as pa

from quantmini.core.calendar import EXCHANGE_TZ, REGULAR_CLOSE, session_bounds
from quantmini.core.ordering import is_sorted_by
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
    """Validated rows of one session (with ``session_date``) → an Arrow table in ``spec.bronze_schema``.

    Adds the exchange-time timestamp ``ts`` and, for minute bars, ``regular_session`` (09:30 to the
    session's close — 16:00, or earlier on early-close days — versus extended hours); sorts by
    ``spec.sort_columns`` unless the rows already are (vendor files usually are).
    """
    frame = kept.with_columns(pl.col("window_start").cast(pl.Datetime("ns", EXCHANGE_TZ)).alias("ts"))
    if "regular_session" in spec.bronze_schema.names and frame.height:
        start, end = session_bounds(frame["session_date"][0], regular_close).regular
        ws = pl.col("window_start")
        frame = frame.with_columns(((ws >= start) & (ws < end)).alias("regular_session"))
    elif "regular_session" in spec.bronze_schema.names:
        frame = frame.with_columns(pl.lit(False).alias("regular_session"))
    if not is_sorted_by(frame, spec.sort_columns):
        frame = frame.sort(list(spec.sort_columns))
    names = spec.bronze_schema.names
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise KeyError(f"bronze columns {missing} are not derived for data type {spec.name}")
    # Plain (not view) strings: the cast to the bronze schema's string type is then a cheap copy.
    return frame.select(names).to_arrow(compat_level=pl.CompatLevel.oldest()).cast(spec.bronze_schema)
