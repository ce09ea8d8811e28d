"""Answers written as CSV, JSON or Parquet a record batch at a time, so memory holds one batch however large
the answer (``quantmini sql``, ``data query``, and the Python API's ``to_file`` helpers).

Files are written to a temporary beside the target and moved into place when complete: an interrupted
write never leaves a truncated file under the target's name. CSV and JSON may also go to a text stream
(stdout). JSON is one array of row objects, as :meth:`polars.DataFrame.write_json` writes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import IO, Literal

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from quantmini._exceptions import StorageError
from quantmini.io.atomic import atomic_path

FileFormat = Literal["csv", "json", "parquet"]


def write_batches(
    batches: Iterable[pa.RecordBatch], schema: pa.Schema, fmt: FileFormat, target: Path | IO[str]
) -> int:
    """Write ``batches`` (of ``schema``) as ``fmt`` to the file ``target`` (atomically) or to a text stream;
    return the rows written."""
    if isinstance(target, Path):
        try:
            with atomic_path(target) as tmp:
                if fmt == "parquet":
                    return _parquet(batches, schema, tmp)
                with tmp.open("w", encoding="utf-8", newline="") as fh:
                    return _text(batches, schema, fmt, fh)
        except OSError as exc:
            raise StorageError(f"cannot write {target}: {exc.strerror or exc}") from exc
    if fmt == "parquet":
        raise ValueError("parquet is written to a file, not a text stream")
    return _text(batches, schema, fmt, target)


def _parquet(batches: Iterable[pa.RecordBatch], schema: pa.Schema, path: Path) -> int:
    rows = 0
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for batch in batches:
            writer.write_batch(batch)
            rows += batch.num_rows
    return rows


def _text(batches: Iterable[pa.RecordBatch], schema: pa.Schema, fmt: FileFormat, out: IO[str]) -> int:
    """CSV or JSON through Polars, a batch at a time (the same text as Polars writes for a whole frame)."""
    rows = 0
    if fmt == "json":
        out.write("[")
    for batch in batches:
        if not batch.num_rows and (fmt == "json" or rows):
            continue
        frame = _frame(batch, schema)
        if fmt == "csv":
            out.write(frame.write_csv(include_header=rows == 0))
        else:
            out.write(("," if rows else "") + frame.write_json()[1:-1])  # the array's rows, no brackets
        rows += batch.num_rows
    if fmt == "csv" and rows == 0:
        out.write(_frame(pa.RecordBatch.from_pylist([], schema=schema), schema).write_csv())
    elif fmt == "json":
        out.write("]\n")
    return rows


def _frame(batch: pa.RecordBatch, schema: pa.Schema) -> pl.DataFrame:
    frame = pl.from_arrow(pa.Table.from_batches([batch], schema=schema))
    assert isinstance(frame, pl.DataFrame)
    return frame
