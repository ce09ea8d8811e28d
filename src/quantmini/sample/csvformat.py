"""Vendor number formatting for aggregates CSV files, and deterministic gzip writing.

Prices are held as integers in units of $0.0001 and volumes in millionths of a share, so the text is
exact: before 2026-02-23 the vendor prints volumes as integers and prices in shortest form (``29.5``,
``115.03``, ``0.4512``, ``12``); from that day on volumes carry 6 decimals (``2036584.149027``) and prices
print with 6 decimals (``115.030000``). Option volumes stay integers.
"""

from __future__ import annotations

import datetime as dt
import zlib
from pathlib import Path

import numpy as np
import polars as pl
from numpy.typing import NDArray

from quantmini.datasets.base import AGGREGATE_CSV_COLUMNS
from quantmini.io.atomic import write_bytes_atomic

#: First session whose files carry fractional volumes and 6-decimal prices.
DECIMAL_FORMAT_FROM = dt.date(2026, 2, 23)
#: Integer price units per dollar ($0.0001 ticks).
PRICE_SCALE = 10_000
#: Integer volume units per share (6 decimal places).
VOLUME_SCALE = 1_000_000
HEADER = ",".join(AGGREGATE_CSV_COLUMNS) + "\n"
#: zlib level: fast enough for ~140 MB of minute text per session in a few seconds.
GZIP_LEVEL = 1


def uses_decimal_format(session: dt.date) -> bool:
    """Whether the vendor's files for ``session`` print fractional volumes and 6-decimal prices."""
    return session >= DECIMAL_FORMAT_FROM


def to_price_units(prices: NDArray[np.float64]) -> NDArray[np.int64]:
    """Round dollar prices to the exchange tick ($0.01 at or above $1, $0.0001 below) in $0.0001 units."""
    cents = np.rint(prices * 100.0) * 100.0
    small = np.rint(prices * PRICE_SCALE)
    units = np.where(prices >= 1.0, cents, small)
    return np.maximum(units, 1).astype(np.int64)


def _price_text(name: str, decimal: bool) -> pl.Expr:
    col = pl.col(name)
    whole = (col // PRICE_SCALE).cast(pl.String)
    frac = (col % PRICE_SCALE).cast(pl.String).str.zfill(4)
    if decimal:
        return pl.concat_str(whole, pl.lit("."), frac, pl.lit("00")).alias(name)
    short = frac.str.strip_chars_end("0")
    return pl.when(short == "").then(whole).otherwise(pl.concat_str(whole, pl.lit("."), short)).alias(name)


def _volume_text(decimal: bool) -> pl.Expr:
    col = pl.col("volume")
    whole = (col // VOLUME_SCALE).cast(pl.String)
    if not decimal:
        return whole.alias("volume")
    frac = (col % VOLUME_SCALE).cast(pl.String).str.zfill(6)
    return pl.concat_str(whole, pl.lit("."), frac).alias("volume")


def format_rows(frame: pl.DataFrame, *, decimal: bool, option: bool = False) -> str:
    """CSV text (no header) of ``frame`` (columns of :data:`AGGREGATE_CSV_COLUMNS`, integer units)."""
    if frame.is_empty():
        return ""
    text = frame.select(
        pl.col("ticker"),
        _volume_text(decimal and not option),
        *(_price_text(name, decimal) for name in ("open", "close", "high", "low")),
        pl.col("window_start"),
        pl.col("transactions"),
    )
    return text.write_csv(include_header=False)


class GzipBuffer:
    """Streams text into one deterministic gzip member (no name, mtime 0)."""

    def __init__(self) -> None:
        self._compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
        self._parts: list[bytes] = []

    def write(self, text: str) -> None:
        """Compress and keep ``text`` (UTF-8)."""
        if text:
            self._parts.append(self._compressor.compress(text.encode("utf-8")))

    def finish(self) -> bytes:
        """The complete gzip file."""
        self._parts.append(self._compressor.flush())
        return b"".join(self._parts)


def write_csv_gz(target: Path, lines: str) -> None:
    """Write the header and ``lines`` to ``target`` as deterministic gzip, atomically."""
    buffer = GzipBuffer()
    buffer.write(HEADER)
    buffer.write(lines)
    write_bytes_atomic(target, buffer.finish())
