"""Read-only SQL over the lake: one ``SELECT`` (or ``EXPLAIN``) against the DuckDB catalog's views.

The views are those of :mod:`quantmini.io.duckdb_catalog` (``silver_stocks_daily``, ``adjusted_stocks_daily``,
``stocks_daily_alpha158``, ``entities``, ``universes``, ``ref_splits`` …), opened read-only with their
paths resolved against the lake root, so a moved lake answers too. Only query statements run: anything that
would write (``COPY``, ``CREATE``, ``INSERT``, ``ATTACH``, ``SET`` …) is refused before it reaches DuckDB, and
the database file is opened read-only besides. This guards the lake against accidents, not a hostile user:
a ``SELECT`` may still read any file the user can (``read_csv('…')``), as DuckDB itself would.

Answers come as a Polars frame, or as Arrow record batches streamed from DuckDB (:func:`sql_batches`), so a
result larger than memory can be written to Parquet or CSV a batch at a time
(:func:`quantmini.query.output.write_batches`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

from quantmini._exceptions import QueryError, StorageError

#: Statement types a read-only query may be (``DESCRIBE``, ``SHOW`` and ``SUMMARIZE`` parse as ``SELECT``).
_READ_ONLY = (duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN)

#: Rows per Arrow batch when a result is streamed.
BATCH_ROWS = 131_072


def check_read_only(con: duckdb.DuckDBPyConnection, statement: str) -> None:
    """:class:`QueryError` unless ``statement`` is exactly one query statement."""
    try:
        parsed = con.extract_statements(statement)
    except duckdb.Error as exc:
        raise QueryError(f"SQL does not parse: {_first_line(exc)}") from exc
    if len(parsed) != 1:
        raise QueryError(f"give exactly one SQL statement (got {len(parsed)})")
    kind = parsed[0].type
    if kind not in _READ_ONLY:
        name = str(kind).rsplit(".", 1)[-1]
        raise QueryError(f"only SELECT queries run against the lake (read-only); this is a {name} statement")


@contextlib.contextmanager
def sql_batches(
    data_root: Path | str,
    statement: str,
    params: Sequence[object] | None = None,
    *,
    batch_rows: int = BATCH_ROWS,
) -> Iterator[pa.RecordBatchReader]:
    """Stream the answer of one read-only ``statement`` as Arrow record batches of ``batch_rows`` rows;
    memory holds a batch, not the answer. The connection lives as long as the ``with`` block."""
    from quantmini.io.duckdb_catalog import connect_catalog  # it imports this package's SQL builders

    try:
        con = connect_catalog(Path(data_root))
    except StorageError as exc:
        raise QueryError(str(exc)) from exc
    try:
        check_read_only(con, statement)
        try:
            reader = con.sql(statement, params=list(params or ())).to_arrow_reader(batch_rows)
        except duckdb.Error as exc:
            raise QueryError(f"SQL failed: {_first_line(exc)}") from exc
        yield reader
    finally:
        con.close()


def sql(data_root: Path | str, statement: str, params: Sequence[object] | None = None) -> pl.DataFrame:
    """The answer of one read-only SQL ``statement`` (``?`` placeholders bound to ``params``) over the lake's
    views, as a Polars frame.

    >>> sql("data", "SELECT ticker, count(*) AS n FROM silver_stocks_daily GROUP BY 1")  # doctest: +SKIP
    """
    with sql_batches(data_root, statement, params) as reader:
        try:
            table = reader.read_all()
        except (duckdb.Error, pa.ArrowException) as exc:
            raise QueryError(f"SQL failed: {_first_line(exc)}") from exc
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
