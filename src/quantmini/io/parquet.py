"""Parquet reads and atomic writes for lake partitions."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from quantmini._exceptions import StorageError
from quantmini.io.atomic import atomic_path

#: Rows per row group: small enough that a one-ticker query over a sorted partition reads little.
ROW_GROUP_ROWS = 65_536


def write_parquet_atomic(table: pa.Table, target: Path, *, row_group_rows: int = ROW_GROUP_ROWS) -> None:
    """Write ``table`` to ``target`` (zstd, statistics on) through a temporary file.

    Only string, date and boolean columns are dictionary-encoded: prices and volumes rarely repeat
    enough to gain from it, and trying costs ~10% of the write time.
    """
    repetitive = [
        f.name
        for f in table.schema
        if pa.types.is_string(f.type) or pa.types.is_date(f.type) or pa.types.is_boolean(f.type)
    ]
    with atomic_path(target) as tmp:
        try:
            pq.write_table(
                table,
                tmp,
                compression="zstd",
                row_group_size=row_group_rows,
                write_statistics=True,
                use_dictionary=repetitive,
            )
        except (pa.ArrowException, OSError) as exc:
            raise StorageError(f"cannot write {target}: {exc}") from exc


def read_parquet_files(paths: Sequence[Path], columns: Sequence[str] | None = None) -> pl.DataFrame:
    """Read and concatenate Parquet files (same schema) into one Polars frame."""
    if not paths:
        raise StorageError("no Parquet files to read")
    try:
        return pl.read_parquet([str(p) for p in paths], columns=list(columns) if columns else None)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise StorageError(f"cannot read Parquet partitions (first: {paths[0]}): {exc}") from exc


def remove_if_exists(path: Path) -> None:
    """Delete ``path`` if present (used when a partition becomes empty)."""
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot remove {path}: {exc.strerror or exc}") from exc
