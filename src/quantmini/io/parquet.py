"""Parquet reads and atomic writes for lake partitions."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from quantmini._exceptions import StorageError
from quantmini.io.atomic import atomic_path, temp_path_for

#: Rows per row group: small enough that a one-ticker query over a sorted partition reads little.
ROW_GROUP_ROWS = 65_536


def empty_table(schema: pa.Schema) -> pa.Table:
    """A table of ``schema`` without rows (``Schema.empty_table`` imports pandas: ~0.3 s on first use)."""
    return pa.Table.from_batches([], schema=schema)


def write_parquet_atomic(
    table: pa.Table, target: Path, *, row_group_rows: int = ROW_GROUP_ROWS, durable: bool = True
) -> None:
    """Write ``table`` to ``target`` (zstd, statistics on) through a temporary file."""
    repetitive = _dictionary_columns(table, row_group_rows)
    with atomic_path(target, durable=durable) as tmp:
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


class PieceFile:
    """A Parquet file written piece by piece (a ticker range at a time) to a temporary file that
    :meth:`commit` puts in place of ``target`` — or :meth:`abort` removes. Memory holds one piece, not
    the file. Written like :func:`write_parquet_atomic` but not fsynced: for derived files whose manifest
    records their size, so a torn file is found and rebuilt.
    """

    def __init__(
        self,
        target: Path,
        schema: pa.Schema,
        *,
        row_group_rows: int = ROW_GROUP_ROWS,
        compression: str = "zstd",
    ) -> None:
        self.target = target
        self.rows = 0
        self._schema = schema
        self._row_group_rows = row_group_rows
        self._compression = compression
        self._tmp: Path | None = None
        self._writer: pq.ParquetWriter | None = None

    def write(self, table: pa.Table) -> None:
        """Append ``table`` (in the file's schema) as the next rows of the file."""
        try:
            if self._writer is None:
                self._writer = pq.ParquetWriter(
                    self._temporary(),
                    self._schema,
                    compression=self._compression,
                    write_statistics=True,
                    use_dictionary=_dictionary_columns(table, self._row_group_rows),
                )
            self._writer.write_table(table, row_group_size=self._row_group_rows)
        except (pa.ArrowException, OSError) as exc:
            self.abort()
            raise StorageError(f"cannot write {self.target}: {exc}") from exc
        self.rows += table.num_rows

    def commit(self) -> None:
        """Finish the file (one without rows when nothing was written) and put it in place."""
        try:
            if self._writer is None:
                pq.write_table(empty_table(self._schema), self._temporary(), compression=self._compression)
            else:
                self._writer.close()
                self._writer = None
            assert self._tmp is not None
            os.replace(self._tmp, self.target)
            self._tmp = None
        except (pa.ArrowException, OSError) as exc:
            self.abort()
            raise StorageError(f"cannot write {self.target}: {exc}") from exc

    def abort(self) -> None:
        """Drop what was written (the previous file, if any, stays)."""
        if self._writer is not None:
            with contextlib.suppress(pa.ArrowException, OSError):
                self._writer.close()
            self._writer = None
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                self._tmp.unlink(missing_ok=True)
            self._tmp = None

    def _temporary(self) -> Path:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = temp_path_for(self.target)
        return self._tmp


def _dictionary_columns(table: pa.Table, sample_rows: int) -> list[str]:
    """Columns worth dictionary encoding: string, date and boolean columns whose values repeat.

    Prices and volumes rarely repeat enough to gain from it, and trying costs ~10% of the write time.
    A string column that is mostly distinct in the first row group (an option contract's ticker) is
    left out too: its dictionary overflows and is abandoned, which costs time and makes the file larger.
    """
    sample = table.slice(0, sample_rows)
    chosen = []
    for field in table.schema:
        if pa.types.is_date(field.type) or pa.types.is_boolean(field.type):
            chosen.append(field.name)
        elif pa.types.is_string(field.type):
            distinct = pc.count_distinct(sample[field.name]).as_py()
            if distinct * 2 <= sample.num_rows:
                chosen.append(field.name)
    return chosen


def read_parquet_files(
    paths: Sequence[Path], columns: Sequence[str] | None = None, where: pl.Expr | None = None
) -> pl.DataFrame:
    """Read and concatenate Parquet files (same schema) into one Polars frame.

    Paths are taken literally (a lake under ``data[1]/`` is not a glob pattern). ``where`` filters rows
    while reading (row groups whose statistics exclude it are skipped).
    """
    if not paths:
        raise StorageError("no Parquet files to read")
    try:
        scan = pl.scan_parquet([str(p) for p in paths], glob=False)
        if where is not None:
            scan = scan.filter(where)
        if columns:
            scan = scan.select(list(columns))
        return scan.collect()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise StorageError(f"cannot read Parquet partitions ({_name_files(paths)}): {_short(exc)}") from exc


def _name_files(paths: Sequence[Path]) -> str:
    return str(paths[0]) if len(paths) == 1 else f"{len(paths)} files from {paths[0]}"


def _short(exc: BaseException) -> str:
    """The first line of a library error (Polars appends pages of context)."""
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def remove_if_exists(path: Path) -> None:
    """Delete ``path`` if present (used when a partition becomes empty)."""
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot remove {path}: {exc.strerror or exc}") from exc


_FOOTER_TAIL = 8  # footer length (4 bytes, little-endian) and the magic "PAR1"
_ARROW_SCHEMA_KEY = b"ARROW:schema"


def arrow_schema_bytes(path: Path) -> bytes | None:
    """The serialized Arrow schema an Arrow-written Parquet file stores in its footer (its key-value
    metadata ``ARROW:schema``), read without decoding the footer; ``None`` when the file has none.

    Files whose bytes are equal have the same schema, so a directory of thousands of partitions is
    checked by reading one schema per distinct value (decoding a wide file's footer costs milliseconds,
    this a few microseconds). Raises :class:`OSError` when the file cannot be read.
    """
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        if size < 12:
            return None
        handle.seek(size - _FOOTER_TAIL)
        tail = handle.read(_FOOTER_TAIL)
        length = int.from_bytes(tail[:4], "little")
        if tail[4:] != b"PAR1" or length > size - 12:
            return None
        handle.seek(size - _FOOTER_TAIL - length)
        footer = handle.read(length)
    # The key-value metadata follows the row groups, so the last occurrence is the key: a KeyValue
    # struct's key (binary), then field 2 (header 0x18: delta 1, binary) with a varint length.
    at = footer.rfind(_ARROW_SCHEMA_KEY)
    if at < 0:
        return None
    at += len(_ARROW_SCHEMA_KEY)
    if footer[at : at + 1] != b"\x18":
        return None
    at += 1
    length = shift = 0
    while at < len(footer):
        byte = footer[at]
        at += 1
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return footer[at : at + length]
    return None
