"""Write, extend, check and read back Qlib provider roots from long ``symbol, datetime, field…`` tables.

The writer maps every row to its calendar position with one ``searchsorted``, sorts the table once on a
single integer key (symbol code × calendar length + position), and then fills each symbol's ``.bin``
payloads by numpy scatter on its slice of the sorted arrays. Values are gathered in buckets of about
:data:`_BUCKET_ROWS` rows (all fields, float32), so memory beyond the input is a float32 copy of the field
columns plus a few integer arrays per row — never a symbols × calendar matrix.

Three ways to write (:func:`write_bins`):

* create a symbol's files (a new root built in a temporary directory then swapped in by
  :func:`write_qlib_root`, or a new symbol in an existing root);
* **append** new bars to a symbol's files in place: the file is first cut back to the span the caller
  knows (so a write interrupted earlier is repaired), then NaN-padded from its old last bar and extended;
  appending never rewrites history;
* **replace** a symbol's files atomically (temporary file + ``os.replace``), e.g. when its adjustment
  factors changed.

:func:`truncate_bins` cuts symbols back to an earlier bar (a republished session is then re-appended).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal

import numpy as np
import numpy.typing as npt
import polars as pl

from quantmini._exceptions import StorageError, ValidationError
from quantmini.core.qlib_encoding import (
    CALENDAR_FORMATS,
    FLOAT32_MAX,
    Freq,
    bin_array,
    calendar_lines,
    check_fields,
    check_freq,
    check_market,
    decode_bin,
    is_na_like,
    plan_symbols,
    qlib_dir_name,
)
from quantmini.io.atomic import append_at, replace_directory, replace_file_fast, write_text_atomic
from quantmini.io.qlib_history import append_history, history_file, rows_array, write_history

logger = logging.getLogger(__name__)

_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_HEADER_BYTES = 4
#: Rows gathered at once while writing (all fields): bounds memory whatever the table's size.
_BUCKET_ROWS = 1_000_000


@dataclass(frozen=True, slots=True)
class QlibWriteSummary:
    """What :func:`write_qlib_root` wrote.

    ``files`` counts the calendar, ``instruments/all.txt`` and one ``.bin`` per symbol and field.
    """

    symbols: int
    fields: tuple[str, ...]
    calendar_length: int
    files: int
    #: Input symbol → stored name, for symbols stored under another name (see ``core.qlib_encoding``).
    renamed: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: Input symbol → why it was left out (it cannot be stored in a Qlib root).
    skipped: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class QlibRootReport:
    """What :func:`validate_qlib_root` checked."""

    freq: str
    calendar_length: int
    instruments: int
    fields: tuple[str, ...]
    files: int


@dataclass(frozen=True, slots=True)
class RowLayout:
    """Where every row of a frame goes, computed (and validated) before touching the disk.

    Rows of skipped symbols are left out. ``symbols`` are stored names in symbol-code order; ``bounds``
    are row offsets into the sorted arrays (``len(symbols) + 1``); ``positions`` the calendar position of
    each sorted row and ``order`` the original row of each sorted row.
    """

    symbols: list[str]
    inputs: list[str]
    dirs: list[str]
    bounds: npt.NDArray[np.int64]
    positions: npt.NDArray[np.int64]
    order: npt.NDArray[np.int64]
    renamed: dict[str, str]
    skipped: dict[str, str]

    def span(self, i: int) -> tuple[int, int]:
        """First and last calendar position of symbol ``i``'s rows."""
        return int(self.positions[self.bounds[i]]), int(self.positions[self.bounds[i + 1] - 1])


#: Symbol → (first, last) calendar position covered by its files.
Spans = dict[str, tuple[int, int]]


def write_qlib_root(
    root: Path,
    frame: pl.DataFrame,
    *,
    freq: Literal["day", "1min"],
    fields: Sequence[str],
    calendar: Sequence[dt.date | dt.datetime],
) -> QlibWriteSummary:
    """Write ``frame`` as the Qlib provider root ``root``, replacing any previous root atomically.

    ``frame`` holds ``symbol`` (Utf8), ``datetime`` (``pl.Date`` for ``day``; naive ``pl.Datetime`` in
    exchange-local time for ``1min``) and one numeric column per field, in any row order. ``calendar``
    is the global session (or bar) list given by the caller; every row must fall on it and
    (symbol, datetime) must be unique, else :class:`ValidationError`. Each symbol's files cover its own
    first-to-last row span, NaN where it has no row. Symbols are renamed or skipped as
    :func:`~quantmini.core.qlib_encoding.plan_symbols` says, and reported in the summary.
    """
    freq = check_freq(freq)
    fields = check_fields(fields)
    lines = calendar_lines(calendar, freq)
    layout = layout_rows(frame, freq, fields, calendar)

    def build(tmp: Path) -> None:
        try:
            spans = write_bins(tmp, layout, frame, fields, freq)
            write_calendar(tmp, freq, lines)
            write_instruments(tmp, spans, lines)
        except OSError as exc:
            raise StorageError(f"cannot write Qlib root {root}: {exc.strerror or exc}") from exc

    try:
        replace_directory(root, build)
    except OSError as exc:
        raise StorageError(f"cannot replace Qlib root {root}: {exc.strerror or exc}") from exc
    if layout.renamed:
        logger.info("symbols stored under another name: %s", layout.renamed)
    return QlibWriteSummary(
        symbols=len(layout.symbols),
        fields=fields,
        calendar_length=len(lines),
        files=2 + len(layout.symbols) * len(fields),
        renamed=MappingProxyType(layout.renamed),
        skipped=MappingProxyType(layout.skipped),
    )


def layout_rows(
    frame: pl.DataFrame,
    freq: Freq,
    fields: Sequence[str],
    calendar: Sequence[dt.date | dt.datetime] | npt.NDArray[np.datetime64],
) -> RowLayout:
    """Validate ``frame`` against ``calendar`` and compute the sorted layout of its rows.

    ``calendar`` may be a numpy ``datetime64`` array (days for ``day``, naive exchange-local times for
    ``1min``): a long minute calendar is then never formatted. Raises :class:`ValidationError` for a row
    off the calendar, a repeated (symbol, datetime), a value beyond float32's range or a malformed frame;
    symbols that cannot be stored are only skipped.
    """
    if isinstance(calendar, np.ndarray):
        cal = calendar.astype("datetime64[D]" if freq == "day" else "datetime64[us]").astype(np.int64)
        if not len(cal) or (np.diff(cal) <= 0).any():
            raise ValidationError("the calendar must be non-empty and strictly increasing")
        ends = np.datetime_as_string(calendar[[0, -1]], unit="D" if freq == "day" else "s")
        lines = [str(ends[0]).replace("T", " "), str(ends[1]).replace("T", " ")]
        length = len(cal)
    else:
        lines = calendar_lines(calendar, freq)
        cal = _calendar_ints(calendar, freq)
        length = len(lines)
    _check_schema(frame, freq, tuple(fields))
    inputs = sorted(frame.get_column("symbol").unique().to_list())
    plan = plan_symbols(inputs)
    for reason in plan.skipped.values():
        logger.warning("%s", reason)
    columns = frame.select(
        code=pl.col("symbol").cast(pl.Enum(inputs)).to_physical().cast(pl.Int64), t=_time_ints(freq)
    )
    times = columns.get_column("t").to_numpy()
    positions = np.searchsorted(cal, times)
    on_calendar = positions < len(cal)
    on_calendar[on_calendar] = cal[positions[on_calendar]] == times[on_calendar]
    del times
    if not on_calendar.all():
        row = int(np.argmin(on_calendar))
        raise ValidationError(
            f"row {row} (symbol {frame['symbol'][row]!r}, datetime {frame['datetime'][row]}) is not on "
            f"the {freq} calendar ({lines[0]} .. {lines[-1]}, {length} entries): fix the data or "
            "pass the calendar it belongs to"
        )
    codes_in = columns.get_column("code").to_numpy()
    # One integer key (symbol code, calendar position) sorts far faster than a two-column sort.
    key = codes_in * len(cal) + positions
    del columns, positions
    if plan.skipped:
        keep = np.isin(codes_in, [i for i, s in enumerate(inputs) if s in plan.stored])
        rows = np.flatnonzero(keep)
        key = key[rows]
    else:
        rows = None
    order = np.argsort(key, kind="stable")
    key = key[order]
    if rows is not None:
        order = rows[order]
    repeated = np.diff(key) == 0
    if repeated.any():
        row = int(order[int(np.argmax(repeated)) + 1])
        raise ValidationError(
            f"duplicate rows for symbol {frame['symbol'][row]!r} at {frame['datetime'][row]}: "
            "(symbol, datetime) must be unique"
        )
    codes, positions = np.divmod(key, len(cal))
    del key
    starts = np.flatnonzero(np.diff(codes)) + 1
    bounds = np.concatenate([[0], starts, [len(codes)]]) if len(codes) else np.zeros(1)
    used = [inputs[int(c)] for c in codes[bounds[:-1].astype(np.int64)]]
    stored = [plan.stored[s] for s in used]
    return RowLayout(
        symbols=stored,
        inputs=used,
        dirs=[qlib_dir_name(s) for s in stored],
        bounds=bounds.astype(np.int64, copy=False),
        positions=positions.astype(np.int64, copy=False),
        order=order.astype(np.int64, copy=False),
        renamed=plan.renamed,
        skipped=plan.skipped,
    )


def write_bins(
    root: Path,
    layout: RowLayout,
    frame: pl.DataFrame,
    fields: Sequence[str],
    freq: Freq,
    *,
    existing: Mapping[str, tuple[int, int]] | None = None,
    replace: frozenset[str] = frozenset(),
    damaged: set[str] | None = None,
    history: tuple[Path, pl.DataFrame] | None = None,
) -> Spans:
    """Write the ``.bin`` files of every symbol of ``layout`` below ``root/features``; return their spans.

    A symbol in ``existing`` (stored name → the span its files cover) and not in ``replace`` is appended
    to: its rows must all come after that span. One whose files turn out missing or shorter than that span
    is not written and is added to ``damaged`` (required when appending): the caller rewrites it whole. A
    symbol in ``replace`` is written to temporary files that replace its files atomically. Any other
    symbol's files are created (overwriting leftovers).

    ``history`` (a directory and one Float64 column per raw value, aligned with ``frame``'s rows) writes
    each symbol's raw history file (:mod:`quantmini.io.qlib_history`) the same way as its ``.bin`` files.
    """
    existing = existing or {}
    features = root / "features"
    features.mkdir(parents=True, exist_ok=True)
    # Plain string paths: pathlib's per-call overhead is visible at tens of thousands of files.
    directories = [os.path.join(features, name) for name in layout.dirs]
    for directory in directories:
        os.makedirs(directory, exist_ok=True)
    # float32 (range checked in layout_rows), one chunk: random gathers from chunked columns are slow.
    columns = frame.select(pl.col(name).cast(pl.Float32) for name in fields).rechunk()
    suffixes = [f"{name.lower()}.{freq}.bin" for name in fields]
    raw = None if history is None else history[1].rechunk()
    if history is not None:
        history[0].mkdir(parents=True, exist_ok=True)
    spans: Spans = {}
    for first, stop in _buckets(layout.bounds, _BUCKET_ROWS):
        base = int(layout.bounds[first])
        rows = layout.order[base : layout.bounds[stop]]
        # The rows of a few symbols, all fields, gathered into symbol-then-time order: (fields, rows).
        block = columns[rows].to_numpy(order="fortran").T
        raw_block = None if raw is None else raw[rows].to_numpy(order="c")
        for i in range(first, stop):
            lo, hi = int(layout.bounds[i]), int(layout.bounds[i + 1])
            positions = layout.positions[lo:hi]
            values = block[:, lo - base : hi - base]
            symbol = layout.symbols[i]
            known = existing.get(symbol)
            raw_file = None if history is None else history_file(history[0], layout.dirs[i])
            raw_values = None if raw_block is None else raw_block[lo - base : hi - base]
            if known is not None and symbol not in replace:
                span = _append(directories[i], suffixes, known, positions, values, symbol)
                if span is not None and raw_file is not None and raw_values is not None:
                    extra = rows_array(known[1] + 1, int(positions[-1]) - known[1], positions, raw_values)
                    if not append_history(raw_file, known, extra):
                        span = None
                if span is None:
                    if damaged is None:
                        raise StorageError(f"the Qlib files of {symbol!r} in {root} are missing or short")
                    damaged.add(symbol)
                else:
                    spans[symbol] = span
            else:
                start = int(positions[0])
                payloads = bin_array(start, int(positions[-1]) - start + 1, positions - start, values)
                for suffix, payload in zip(suffixes, payloads, strict=True):
                    target = os.path.join(directories[i], suffix)
                    if symbol in replace:
                        replace_file_fast(target, payload.data)
                    else:
                        with open(target, "wb", buffering=0) as handle:
                            handle.write(payload.data)
                if raw_file is not None and raw_values is not None:
                    length = int(positions[-1]) - start + 1
                    write_history(
                        raw_file, rows_array(start, length, positions, raw_values), atomic=symbol in replace
                    )
                spans[symbol] = (start, int(positions[-1]))
    return spans


def _append(
    directory: str,
    suffixes: list[str],
    known: tuple[int, int],
    positions: npt.NDArray[np.int64],
    values: npt.NDArray[np.float32],
    symbol: str,
) -> tuple[int, int] | None:
    """Append after the known span; ``None`` when a file is missing or shorter than that span."""
    first, last = known
    if int(positions[0]) <= last:
        raise ValidationError(
            f"cannot append bars of {symbol!r} from calendar position {int(positions[0])}: its files "
            f"already reach {last}"
        )
    length = int(positions[-1]) - last
    out = np.full((values.shape[0], length), np.nan, dtype="<f4")
    out[:, positions - last - 1] = values
    size = _HEADER_BYTES * (last - first + 2)
    for suffix, payload in zip(suffixes, out, strict=True):
        if not append_at(os.path.join(directory, suffix), payload.data, size):
            return None
    return first, int(positions[-1])


def truncate_bins(
    root: Path, dirname: str, fields: Sequence[str], freq: Freq, span: tuple[int, int], before: int
) -> tuple[int, int] | None:
    """Cut a symbol's files back to its last bar before calendar position ``before``; return the new span.

    The last bar is the last position where ``fields[0]`` (a field every bar has, e.g. ``close``) is not
    NaN. Returns ``None`` (and removes the files) when the symbol has no bar before ``before``.
    """
    first, last = span
    directory = root / "features" / dirname
    suffixes = [f"{name.lower()}.{freq}.bin" for name in fields]
    if before <= first:
        for suffix in suffixes:
            (directory / suffix).unlink(missing_ok=True)
        return None
    keep = min(last, before - 1)
    data = np.fromfile(directory / suffixes[0], dtype="<f4", count=keep - first + 2)[1:]
    present = np.flatnonzero(~np.isnan(data))
    if not len(present):
        for suffix in suffixes:
            (directory / suffix).unlink(missing_ok=True)
        return None
    new_last = first + int(present[-1])
    for suffix in suffixes:
        with open(directory / suffix, "r+b") as handle:
            handle.truncate(_HEADER_BYTES * (new_last - first + 2))
    return first, new_last


def bins_intact(root: Path, dirname: str, fields: Sequence[str], freq: Freq, span: tuple[int, int]) -> bool:
    """Whether every field file of the symbol exists and covers at least ``span`` (longer is repairable:
    an append cuts it back first)."""
    size = _HEADER_BYTES * (span[1] - span[0] + 2)
    directory = os.path.join(root, "features", dirname)
    for name in fields:
        try:
            if os.stat(os.path.join(directory, f"{name.lower()}.{freq}.bin")).st_size < size:
                return False
        except OSError:
            return False
    return True


def write_calendar(root: Path, freq: Freq, lines: Sequence[str]) -> None:
    """``calendars/<freq>.txt``, atomically."""
    write_text_atomic(root / "calendars" / f"{freq}.txt", "\n".join(lines) + "\n")


def write_instruments(
    root: Path, spans: Mapping[str, tuple[int, int]], lines: Sequence[str] | Mapping[int, str]
) -> None:
    """``instruments/all.txt`` (one line per symbol: name, first and last calendar entry), atomically.
    ``lines`` are the calendar's lines, or at least those of every span's ends by position."""
    rows = sorted(f"{symbol}\t{lines[first]}\t{lines[last]}\n" for symbol, (first, last) in spans.items())
    write_text_atomic(root / "instruments" / "all.txt", "".join(rows))


def market_file(root: Path, market: str) -> Path:
    """``instruments/<market>.txt`` of ``root`` (``market`` checked: see ``check_market``)."""
    return root / "instruments" / f"{check_market(market)}.txt"


def write_market(root: Path, market: str, text: str) -> None:
    """A market file (``SYMBOL<TAB>first<TAB>last`` lines, several per symbol allowed), atomically."""
    write_text_atomic(market_file(root, market), text)


def remove_market(root: Path, market: str) -> None:
    """Remove a market file (absent already: nothing to do)."""
    path = market_file(root, market)
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot remove {path}: {exc.strerror or exc}") from exc


def _check_schema(frame: pl.DataFrame, freq: Freq, fields: tuple[str, ...]) -> None:
    missing = [c for c in ("symbol", "datetime", *fields) if c not in frame.columns]
    if missing:
        raise ValidationError(f"the Qlib input frame lacks column(s) {missing}; it has {frame.columns}")
    schema = frame.schema
    if schema["symbol"] != pl.String:
        raise ValidationError(f"column 'symbol' must be pl.String (Utf8), not {schema['symbol']}")
    kind = schema["datetime"]
    if freq == "day" and kind != pl.Date:
        raise ValidationError(f"column 'datetime' must be pl.Date for freq 'day', not {kind}")
    if freq == "1min" and not (isinstance(kind, pl.Datetime) and kind.time_zone is None):
        raise ValidationError(
            f"column 'datetime' must be a naive pl.Datetime (exchange-local time) for freq '1min', not {kind}"
        )
    for name in fields:
        if not schema[name].is_numeric():
            raise ValidationError(f"field column {name!r} must be numeric, not {schema[name]}")
    beyond = [
        (pl.col(name).cast(pl.Float64).is_finite() & (pl.col(name).cast(pl.Float64).abs() > FLOAT32_MAX))
        for name in fields
    ]
    flags = frame.select(flag.any().alias(name) for flag, name in zip(beyond, fields, strict=True)).row(0)
    for name, flag, too_big in zip(fields, flags, beyond, strict=True):
        if flag:
            row = frame.filter(too_big).row(0, named=True)
            raise ValidationError(
                f"field {name!r} of symbol {row['symbol']!r} at {row['datetime']} is {row[name]!r}, "
                "beyond float32's range: Qlib stores float32"
            )
    for name in ("symbol", "datetime"):
        nulls = frame.get_column(name).null_count()
        if nulls:
            raise ValidationError(f"column {name!r} has {nulls} null value(s)")


def _time_ints(freq: Freq) -> pl.Expr:
    """Row times as Int64: days since 1970 (day) or microseconds since 1970, naive (1min)."""
    if freq == "day":
        return pl.col("datetime").to_physical().cast(pl.Int64)
    return pl.col("datetime").dt.cast_time_unit("us").to_physical().cast(pl.Int64)


def _calendar_ints(calendar: Sequence[dt.date | dt.datetime], freq: Freq) -> npt.NDArray[np.int64]:
    """Calendar entries in the units of :func:`_time_ints`."""
    if freq == "day":
        return np.array([v.toordinal() - _EPOCH_ORDINAL for v in calendar], dtype=np.int64)
    return np.array(calendar, dtype="datetime64[us]").astype(np.int64)


def _buckets(bounds: npt.NDArray[np.int64], rows: int) -> list[tuple[int, int]]:
    """Consecutive symbol ranges ``[first, stop)`` of about ``rows`` rows each (at least one symbol)."""
    out = []
    first = 0
    symbols = len(bounds) - 1
    while first < symbols:
        stop = int(np.searchsorted(bounds, bounds[first] + rows, side="right")) - 1
        stop = min(max(stop, first + 1), symbols)
        out.append((first, stop))
        first = stop
    return out


def validate_qlib_root(root: Path, freq: str) -> QlibRootReport:
    """Check a Qlib root by its files alone; raise :class:`ValidationError` naming the first bad file.

    Checks: the calendar parses and is strictly increasing; every instrument line has a start and end
    on the calendar and a name qlib can read; every instrument has a features directory holding every
    field found in any of them; each ``.bin`` starts at its instrument's start and ends at its end.
    """
    freq = check_freq(freq)
    calendar = _read_calendar(root / "calendars" / f"{freq}.txt", freq)
    index = {line: i for i, line in enumerate(calendar)}
    spans = _read_instruments(root / "instruments" / "all.txt", index)
    features = root / "features"
    suffix = f".{freq}.bin"
    found: dict[str, set[str]] = {}
    for symbol in spans:
        directory = features / qlib_dir_name(symbol)
        if not directory.is_dir():
            raise ValidationError(f"{directory}: missing features directory of instrument {symbol!r}")
        found[symbol] = {p.name[: -len(suffix)] for p in directory.glob(f"*{suffix}")}
    fields = sorted(set().union(*found.values())) if found else []
    if spans and not fields:
        raise ValidationError(f"{features}: no *{suffix} files for any instrument")
    files = 0
    for symbol, (start, end) in spans.items():
        directory = features / qlib_dir_name(symbol)
        for name in fields:
            path = directory / f"{name}{suffix}"
            if name not in found[symbol]:
                raise ValidationError(f"{path}: missing (instrument {symbol!r} lacks field {name!r})")
            _check_bin(path, start, end)
            files += 1
    return QlibRootReport(
        freq=freq, calendar_length=len(calendar), instruments=len(spans), fields=tuple(fields), files=files
    )


def read_instrument(
    root: Path,
    freq: str,
    symbol: str,
    fields: Sequence[str],
    start: dt.datetime | dt.date | None = None,
    end: dt.datetime | dt.date | None = None,
) -> pl.DataFrame:
    """One instrument read back as ``D.features`` returns it, without qlib (importing it costs seconds,
    and it may not be installed): ``datetime`` and one ``$field`` column per field for ``symbol`` (its
    stored name), a row per calendar entry of its span between ``start`` and ``end`` (inclusive), NaN
    where it has no bar, values as stored (float32). Raises :class:`ValidationError` naming what is
    missing."""
    freq = check_freq(freq)
    calendar = _read_lines(root / "calendars" / f"{freq}.txt")
    index = {line: i for i, line in enumerate(calendar)}
    spans = _read_instruments(root / "instruments" / "all.txt", index)
    if symbol not in spans:
        raise ValidationError(f"{root / 'instruments' / 'all.txt'}: no instrument {symbol!r}")
    first, last = spans[symbol]
    times = pl.Series("datetime", calendar[first : last + 1]).str.to_datetime(CALENDAR_FORMATS[freq])
    frame = pl.DataFrame([times if freq == "1min" else times.dt.date()])
    for name in fields:
        path = root / "features" / qlib_dir_name(symbol) / f"{name.lower()}.{freq}.bin"
        try:
            begin, values = decode_bin(path.read_bytes())
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc.strerror or exc}") from exc
        column = np.full(last - first + 1, np.nan, dtype=np.float32)
        lo, hi = max(begin, first), min(begin + len(values), last + 1)
        if hi > lo:
            column[lo - first : hi - first] = values[lo - begin : hi - begin]
        frame = frame.with_columns(pl.Series(f"${name}", column))
    if start is not None:
        frame = frame.filter(pl.col("datetime") >= start)
    if end is not None:
        frame = frame.filter(pl.col("datetime") <= end)
    return frame


def _read_calendar(path: Path, freq: Freq) -> list[str]:
    lines = _read_lines(path)
    if not lines:
        raise ValidationError(f"{path}: the calendar is empty")
    for number, line in enumerate(lines, start=1):
        try:
            dt.datetime.strptime(line, CALENDAR_FORMATS[freq])
        except ValueError as exc:
            raise ValidationError(
                f"{path}:{number}: {line!r} is not a {freq} calendar entry ({CALENDAR_FORMATS[freq]})"
            ) from exc
        if number > 1 and not lines[number - 2] < line:
            raise ValidationError(f"{path}:{number}: {line!r} does not come after {lines[number - 2]!r}")
    return lines


def _read_instruments(path: Path, index: Mapping[str, int]) -> dict[str, tuple[int, int]]:
    """Instrument → (first, last) calendar position over all of its listing spans."""
    spans: dict[str, tuple[int, int]] = {}
    for number, line in enumerate(_read_lines(path), start=1):
        parts = line.split("\t")
        if len(parts) != 3:
            raise ValidationError(f"{path}:{number}: expected SYMBOL<TAB>start<TAB>end, got {line!r}")
        symbol, start, end = parts
        if not symbol or is_na_like(symbol):
            raise ValidationError(f"{path}:{number}: instrument {symbol!r} is read as NaN by qlib")
        if start not in index or end not in index:
            raise ValidationError(
                f"{path}:{number}: span {start}..{end} of {symbol!r} is not on the calendar"
            )
        first, last = index[start], index[end]
        if last < first:
            raise ValidationError(f"{path}:{number}: span of {symbol!r} ends ({end}) before it starts")
        if symbol in spans:
            first, last = min(first, spans[symbol][0]), max(last, spans[symbol][1])
        spans[symbol] = (first, last)
    return spans


def _check_bin(path: Path, start: int, end: int) -> None:
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            head = handle.read(_HEADER_BYTES)
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if size < 2 * _HEADER_BYTES or size % _HEADER_BYTES:
        raise ValidationError(f"{path}: {size} bytes is not a header plus at least one float32 value")
    first = float(np.frombuffer(head, dtype="<f4")[0])
    last = first + size // _HEADER_BYTES - 2
    if first != start or last != end:
        raise ValidationError(
            f"{path}: covers calendar bars {first:g}..{last:g} but the instrument spans {start}..{end}"
        )


def _read_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ValidationError(f"{path}: missing") from exc
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return [line for line in text.splitlines() if line]
