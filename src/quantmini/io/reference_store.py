"""Bronze reference tables (splits, dividends, tickers …): merged on natural keys, so re-runs add nothing."""

from __future__ import annotations

import datetime as dt

import polars as pl

from quantmini._exceptions import StorageError
from quantmini.core.reference import NATURAL_KEYS
from quantmini.io.lake import Lake
from quantmini.io.parquet import write_parquet_atomic


def load_reference(lake: Lake, name: str) -> pl.DataFrame | None:
    """The stored table ``name``, or ``None`` if it was never stored."""
    path = lake.reference_table(name)
    if not path.exists():
        return None
    try:
        return pl.read_parquet(path, glob=False)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise StorageError(f"cannot read reference table {path}: {exc}") from exc


def store_reference(lake: Lake, name: str, frame: pl.DataFrame, fetched_at: dt.datetime) -> int:
    """Merge ``frame`` into table ``name``; return how many new records were added.

    Records already present (same natural key) keep their first ``fetched_at``; nothing is written
    when nothing is new.
    """
    incoming = frame.with_columns(pl.lit(fetched_at, dtype=pl.Datetime("us", "UTC")).alias("fetched_at"))
    existing = load_reference(lake, name)
    # Diagonal: a table written before a parser learned a new column still merges (the column is null there).
    merged = incoming if existing is None else pl.concat([existing, incoming], how="diagonal_relaxed")
    merged = merged.unique(subset=list(NATURAL_KEYS[name]), keep="first", maintain_order=True)
    added = merged.height - (0 if existing is None else existing.height)
    if existing is not None and added == 0:
        return 0
    write_parquet_atomic(merged.to_arrow(), lake.reference_table(name))
    return added
