"""Parse one vendor CSV file (already decompressed) into typed rows plus rows that cannot be typed.

Clean files take a fast path (one typed Polars read). A file that fails it takes the careful path: every
line is split and each field cast on its own, so one bad row is quarantined with its line number and
reason instead of failing the whole file. Both paths type a row the same way: ``nan``, ``inf``,
``-Infinity`` … become NaN or ±inf floats (the row rules then quarantine them as ``non_finite``) and are
``unparseable_number`` in integer columns; a number with blanks around it is ``unparseable_number``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import polars as pl

from quantmini._exceptions import ValidationError
from quantmini.core.quality import Reason

#: Vendor CSV column → Polars type. Volume is Float64 on purpose (fractional shares since 2026-02-23).
AGGREGATE_CSV_TYPES: dict[str, type[pl.DataType]] = {
    "ticker": pl.String,
    "volume": pl.Float64,
    "open": pl.Float64,
    "close": pl.Float64,
    "high": pl.Float64,
    "low": pl.Float64,
    "window_start": pl.Int64,
    "transactions": pl.Int64,
}

REJECT_SCHEMA: dict[str, type[pl.DataType]] = {
    "line": pl.Int64,
    "reason": pl.String,
    "detail": pl.String,
    "ticker": pl.String,
    "raw": pl.String,
}


@dataclass(frozen=True, slots=True)
class ParsedFile:
    """Typed rows (with their 1-based ``line`` in the file) and rows that could not be typed."""

    rows: pl.DataFrame
    rejects: pl.DataFrame
    rows_in: int


def split_header(data: bytes, columns: tuple[str, ...], source: str) -> bytes:
    """Check that ``data`` (a file's first bytes) starts with exactly the header ``columns``; return the
    rest, which starts at file line 2."""
    if not data or data.isspace():  # isspace stops at the first other byte: no copy of a large chunk
        raise ValidationError(f"{source}: file is empty (no header)")
    header_end = data.find(b"\n")
    head = (data if header_end < 0 else data[:header_end]).decode("utf-8", errors="replace").rstrip("\r")
    if head != ",".join(columns):
        raise ValidationError(f"{source}: wrong header {head[:120]!r}; expected {','.join(columns)!r}")
    return b"" if header_end < 0 else data[header_end + 1 :]


def parse_csv(data: bytes, columns: tuple[str, ...], source: str) -> ParsedFile:
    """Parse a whole decompressed CSV file with header ``columns`` (the vendor's aggregates layout)."""
    return parse_lines(split_header(data, columns, source), columns, first_line=2)


def parse_lines(data: bytes, columns: tuple[str, ...], *, first_line: int) -> ParsedFile:
    """Parse header-less CSV lines whose first line is line ``first_line`` of the file.

    Every line is one input row: ``rows_in`` counts newline-terminated lines (plus a last line without
    a newline), so a line the fast reader skipped or merged sends the chunk to the careful path.
    """
    types = {name: AGGREGATE_CSV_TYPES[name] for name in columns}
    newline_count = data.count(b"\n")
    expected_rows = newline_count if data.endswith(b"\n") or not data else newline_count + 1
    rows: pl.DataFrame | None = None
    # The fast reader skips blanks before a number (" 5" reads as 5) where the careful cast refuses
    # them: a chunk with any blank takes the careful path, so a row's outcome never depends on its
    # neighbours. (One-byte searches: ten times faster than looking for ", " and ",\t".)
    if b" " not in data and b"\t" not in data:
        try:
            rows = pl.read_csv(
                io.BytesIO(data),
                schema=types,
                has_header=False,
                raise_if_empty=False,
                quote_char=None,
            )
        except (pl.exceptions.ComputeError, pl.exceptions.NoDataError, pl.exceptions.ShapeError):
            rows = None
    # Nulls mean empty fields or short rows: let the careful path tell which, line by line.
    if rows is not None and rows.height == expected_rows and not any(rows.null_count().row(0)):
        rows = rows.with_columns(
            pl.int_range(first_line, first_line + rows.height, dtype=pl.Int64).alias("line")
        )
        return ParsedFile(rows=rows, rejects=pl.DataFrame(schema=REJECT_SCHEMA), rows_in=rows.height)
    return _parse_careful(data, types, first_line)


def _parse_careful(data: bytes, types: dict[str, type[pl.DataType]], first_line: int) -> ParsedFile:
    lines = data.decode("utf-8", errors="replace").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    body = pl.DataFrame(
        {
            "raw": pl.Series(lines, dtype=pl.String).str.strip_suffix("\r"),
            "line": pl.int_range(first_line, first_line + len(lines), dtype=pl.Int64, eager=True),
        }
    )
    ncols = len(types)
    parts = pl.col("raw").str.split(",")
    frame = body.with_columns(parts.list.len().alias("_n"))
    casts = []
    for i, (name, dtype) in enumerate(types.items()):
        field = parts.list.get(i, null_on_oob=True)
        text = pl.when(field != "").then(field)  # an empty field is a missing value
        casts.append(text.alias(f"_s_{name}"))
        casts.append(text.cast(dtype, strict=False).alias(name))
    frame = frame.with_columns(casts)

    bad_count = pl.col("_n") != ncols
    unparseable = [
        (pl.col(f"_s_{name}").is_not_null() & pl.col(name).is_null(), name)
        for name, dtype in types.items()
        if dtype is not pl.String
    ]
    checks = [
        (bad_count, Reason.COLUMN_COUNT, pl.format("expected {} fields, got {}", pl.lit(ncols), pl.col("_n")))
    ]
    checks += [
        (cond, Reason.UNPARSEABLE_NUMBER, pl.format("{}={}", pl.lit(name), pl.col(f"_s_{name}")))
        for cond, name in unparseable
    ]
    frame = frame.with_columns(
        pl.coalesce([pl.when(cond).then(pl.lit(code.value)) for cond, code, _ in checks]).alias("reason"),
        pl.coalesce([pl.when(cond).then(text) for cond, _, text in checks]).alias("detail"),
    )
    rejects = frame.filter(pl.col("reason").is_not_null()).select(
        "line", "reason", "detail", pl.col("_s_ticker").alias("ticker"), "raw"
    )
    rows = frame.filter(pl.col("reason").is_null()).select(*types, "line")
    return ParsedFile(rows=rows, rejects=rejects, rows_in=body.height)
