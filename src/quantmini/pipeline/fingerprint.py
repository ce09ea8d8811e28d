"""Stable fingerprints of stage inputs and outputs, so unchanged work is recognised and skipped."""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl
import pyarrow as pa

from quantmini._exceptions import QuantminiError
from quantmini.io.parquet import read_parquet_files, write_parquet_atomic


def table_digest(table: pa.Table) -> str:
    """SHA-256 of a table's Arrow IPC stream: equal digests mean equal content and schema."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()


def write_if_changed(path: Path, frame: pl.DataFrame) -> bool:
    """Write ``frame`` to ``path`` unless the file already holds the same table; whether it wrote."""
    table = frame.to_arrow()
    if path.exists():
        try:
            if table_digest(read_parquet_files([path]).to_arrow()) == table_digest(table):
                return False
        except QuantminiError:  # an unreadable previous file is simply replaced
            pass
    write_parquet_atomic(table, path)
    return True
