"""Gold stage: the Qlib roots a data type declares, built once and then kept up to date incrementally.

A target has a root per configured adjustment (``gold.adjustment``): total return under ``gold/qlib``,
split-only under ``gold/qlib_split``, each with its own state and run independently of the other.
The stage records what a root holds (``_manifests/gold/<type>/<freq>/``, ``_manifests/gold_split/…``):
the checksum of every silver partition it was built from, and per symbol its calendar span and the
digest of the factors the root applies (a dividend changes no digest of the split-only root). A run
compares that with the silver manifests and the factor table, and then:

* **appends** new sessions to every symbol's files in place (NaN-padded from its old last bar);
* **rewinds** to the earliest republished session (cuts each symbol back to its last bar before it) and
  appends from there;
* **rewrites** the files of symbols whose factors changed (a new split or dividend) or whose files are
  missing or short, atomically, from their silver history;
* **builds** the whole root in a temporary directory (per symbol bucket, through the executor) and swaps
  it in when there is no usable state (first run, a new first session, another field list or version).

Whatever the sequence of appends, republished days and corporate actions, the result is byte-identical
to a build from scratch (tested). A symbol Qlib cannot store is skipped and reported, never fatal.

Everything is counted in **bars** of the root's calendar (:class:`BarCalendar`): a ``day`` root has one
bar per session; a ``1min`` root one per exchange-local minute of each session's hours (regular, or
extended 04:00 to four hours after the close), so a session is a run of bars and a republished session
rewinds to its first bar.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

import numpy as np
import numpy.typing as npt
import polars as pl

from quantmini._exceptions import QuantminiError, ValidationError
from quantmini.core.adjustment_names import LABELS, Adjustment
from quantmini.core.calendar import AFTER_HOURS, EXTENDED_OPEN, REGULAR_CLOSE, REGULAR_OPEN, early_closes
from quantmini.core.calendar import sessions as exchange_sessions
from quantmini.core.entities import INSTRUMENT_SPANS_SCHEMA, instrument_of
from quantmini.core.qlib_encoding import Freq, check_freq, qlib_dir_name
from quantmini.datasets import get_spec
from quantmini.datasets.base import DatasetSpec, QlibTarget
from quantmini.io.atomic import append_at, new_temp_directory, swap_directory
from quantmini.io.lake import Lake
from quantmini.io.manifest import read_manifest, write_manifest
from quantmini.io.parquet import read_parquet_files, write_parquet_atomic
from quantmini.io.qlib_history import history_file, read_history, truncate_history
from quantmini.io.qlib_writer import (
    Spans,
    bins_intact,
    layout_rows,
    truncate_bins,
    write_bins,
    write_calendar,
    write_instruments,
)
from quantmini.pipeline.entities import instrument_spans
from quantmini.pipeline.executor import InlineExecutor, TaskExecutor
from quantmini.pipeline.factors import digests_by, factor_digests, split_digests
from quantmini.pipeline.partitions import PartitionIndex, index_partitions

#: Bump when the stage's on-disk conventions change: every root is rebuilt.
GOLD_VERSION = 2
#: The digest of an instrument with neither factors nor ticker spans (see :meth:`_Naming.digests`).
NO_DIGEST = ":"
#: Estimated peak bytes per silver row while a bucket is converted.
BYTES_PER_ROW = 400
#: Partitions read at once when counting rows per ticker for a bucketed full build.
_COUNT_BATCH = 100

T = TypeVar("T")

GoldStatus = Literal["built", "updated", "unchanged", "no_input"]
AFTER_HOURS_MINUTES = int(AFTER_HOURS / dt.timedelta(minutes=1))
_MINUTE_US = 60_000_000
#: Hours of a ``1min`` root: the regular session, or 04:00 to four hours after the close.
MinuteSession = Literal["regular", "extended"]

_SYMBOL_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.String(),
    "stored": pl.String(),
    "first": pl.Int64(),
    "last": pl.Int64(),
    "factors": pl.String(),
}


@dataclass(frozen=True, slots=True)
class GoldOutcome:
    """What the gold stage did to one Qlib root."""

    root: Path
    status: GoldStatus
    symbols: int = 0
    calendar_days: int = 0
    appended: int = 0
    rewound_to: dt.date | None = None
    rewritten: int = 0
    repaired: int = 0
    holes: tuple[dt.date, ...] = ()
    renamed: tuple[tuple[str, str], ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()
    #: Per joined silver table (its label), the sessions it had a partition for.
    joined: tuple[tuple[str, int], ...] = ()
    adjustment: Adjustment = "total_return"

    @property
    def name(self) -> str:
        """The root as the run summary names it: ``stocks_daily/day (split-only)``."""
        return root_name(self.root.parent.name, self.root.name, self.adjustment)


def root_name(data_type: str, freq: str, adjustment: Adjustment) -> str:
    """``<data type>/<freq> (<adjustment>)``: how runs and summaries name a Qlib root."""
    return f"{data_type}/{freq} ({LABELS[adjustment]})"


@dataclass(frozen=True, slots=True, eq=False)
class BarCalendar:
    """A root's calendar: its sessions, its bars and the first bar of every session."""

    freq: Freq
    #: The hours of a ``1min`` root (``"regular"`` for a ``day`` root).
    hours: MinuteSession
    sessions: tuple[dt.date, ...]
    starts: tuple[int, ...]
    #: Bars as integers in the units of :func:`_bar_ints` (sorted).
    ints: npt.NDArray[np.int64]

    @property
    def bars(self) -> npt.NDArray[np.datetime64]:
        """Bars as numpy dates (``day``) or naive exchange-local datetimes (``1min``)."""
        return self.ints.astype("datetime64[D]" if self.freq == "day" else "datetime64[us]")

    def start(self, session: dt.date) -> int:
        """Position of the first bar of ``session`` (the calendar's length for a later one)."""
        i = int(np.searchsorted(np.array(self.sessions, dtype="datetime64[D]"), np.datetime64(session)))
        return self.starts[i] if i < len(self.sessions) else len(self.ints)

    def lines(self, positions: npt.NDArray[np.int64] | None = None) -> list[str]:
        """The lines of ``calendars/<freq>.txt`` (of the bars at ``positions`` only, if given)."""
        bars = self.bars if positions is None else self.bars[positions]
        if not len(bars):
            return []
        if self.freq == "day":
            return [str(line) for line in np.datetime_as_string(bars)]
        return [str(line) for line in np.char.replace(np.datetime_as_string(bars, unit="s"), "T", " ")]

    def write(self, root: Path, spans: Spans, *, check: bool = True) -> None:
        """``calendars/<freq>.txt`` and ``instruments/all.txt``, formatting only what is new.

        A minute calendar has a line per bar of the history: when (``check``) the file already holds the
        calendar's first lines, only the lines after them are appended (none when it holds them all).
        Instrument lines format only the bars the spans name.
        """
        path = root / "calendars" / f"{self.freq}.txt"
        held = _held_lines(path, self) if check else 0
        if held == 0:
            write_calendar(root, self.freq, self.lines())
        elif held < len(self.ints):
            text = "".join(f"{line}\n" for line in self.lines(np.arange(held, len(self.ints))))
            width = path.stat().st_size // held
            if not append_at(str(path), text.encode(), held * width):
                write_calendar(root, self.freq, self.lines())
        used = np.unique(np.array([p for span in spans.values() for p in span], dtype=np.int64))
        write_instruments(root, spans, dict(zip(used.tolist(), self.lines(used), strict=True)))

    def values(self, positions: npt.NDArray[np.int64]) -> pl.Series:
        """The bars at ``positions`` as a ``datetime`` column (Date, or naive Datetime in µs)."""
        ints = pl.Series("datetime", self.ints[positions])
        if self.freq == "day":
            return ints.cast(pl.Int32).cast(pl.Date)
        return ints.cast(pl.Datetime("us"))

    def positions(self, values: pl.Series) -> npt.NDArray[np.int64]:
        """Calendar position of each value of a ``datetime`` column (-1 where it is not a bar)."""
        bars = self.ints
        ints = _bar_ints(values, self.freq)
        found = np.searchsorted(bars, ints)
        inside = found < len(bars)
        inside[inside] = bars[found[inside]] == ints[inside]
        return np.where(inside, found, -1)


def bar_calendar(
    sessions: list[dt.date], freq: Freq, exchange: str, hours: MinuteSession = "regular"
) -> BarCalendar:
    """The calendar of a ``freq`` root over ``sessions`` (``hours`` chooses a ``1min`` root's bars)."""
    days = np.array(sessions, dtype="datetime64[D]").astype(np.int64)
    if freq == "day":
        return BarCalendar(freq, "regular", tuple(sessions), tuple(range(len(sessions))), days)
    if hours not in ("regular", "extended"):
        raise ValidationError(f"gold.qlib_minute_session: {hours!r} is not 'regular' or 'extended'")
    early = early_closes(sessions[0], sessions[-1], exchange) if sessions else {}
    closes = np.array([_minute(early.get(s, REGULAR_CLOSE)) for s in sessions], dtype=np.int64)
    opens = np.full(len(sessions), _minute(REGULAR_OPEN if hours == "regular" else EXTENDED_OPEN))
    ends = closes if hours == "regular" else closes + AFTER_HOURS_MINUTES
    counts = ends - opens
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    first = (days * 1440 + opens) * _MINUTE_US
    within = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(starts, counts)
    ints = np.repeat(first, counts) + within * _MINUTE_US
    return BarCalendar(freq, hours, tuple(sessions), tuple(int(i) for i in starts), ints)


def _held_lines(path: Path, cal: BarCalendar) -> int:
    """How many first lines of ``cal`` the calendar file at ``path`` holds (0: not a prefix of it).

    Lines are fixed-width and the calendar only grows at its end, so the file's size, first and last
    line decide it; a torn or foreign file gives 0 (it is rewritten)."""
    width = len(cal.lines(np.array([0]))[0]) + 1
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            count = size // width
            if size % width or not 0 < count <= len(cal.ints):
                return 0
            first = handle.read(width)
            handle.seek(-width, os.SEEK_END)
            last = handle.read(width)
    except OSError:
        return 0
    expected = cal.lines(np.array([0, count - 1]))
    return count if [first, last] == [f"{line}\n".encode() for line in expected] else 0


def _minute(time: dt.time) -> int:
    return time.hour * 60 + time.minute


def _bar_ints(values: pl.Series, freq: Freq) -> npt.NDArray[np.int64]:
    """Dates as days since 1970, naive datetimes as microseconds since 1970 (int64 numpy)."""
    if freq == "day":
        return values.cast(pl.Date).to_physical().cast(pl.Int64).to_numpy()
    return values.dt.cast_time_unit("us").to_physical().cast(pl.Int64).to_numpy()


@dataclass(slots=True)
class _State:
    sessions: dict[dt.date, str]
    symbols: dict[str, tuple[str, int, int, str]]  # instrument → (stored, first, last, digest)
    skipped: dict[str, str] = field(default_factory=dict)
    #: The instrument spans the root was written with (:attr:`_Naming.spans`).
    naming: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=INSTRUMENT_SPANS_SCHEMA))

    def spans(self) -> Spans:
        return {stored: (first, last) for stored, first, last, _ in self.symbols.values()}


def run_gold(
    lake: Lake,
    spec: DatasetSpec,
    target_index: int,
    silver: PartitionIndex,
    *,
    executor: TaskExecutor | None = None,
    budget_bytes: float = 4e9,
    on_bucket: Callable[[], None] | None = None,
    minute_session: MinuteSession = "regular",
    adjustment: Adjustment = "total_return",
) -> GoldOutcome:
    """Bring the Qlib root of ``spec.gold[target_index]`` in ``adjustment`` up to date with the silver
    partitions (``minute_session``: the hours of a ``1min`` root)."""
    target = spec.gold[target_index].for_adjustment(adjustment)
    freq = check_freq(target.freq)
    root = lake.qlib_root(spec.name, freq, adjustment)
    sessions = silver.sessions
    if not sessions:
        return GoldOutcome(root, "no_input", adjustment=adjustment)
    exchange_days = exchange_sessions(sessions[0], sessions[-1], spec.calendar)
    cal = bar_calendar(exchange_days, freq, spec.calendar, minute_session)
    holes = tuple(s for s in exchange_days if s not in silver.partitions)
    joined = {
        j.table: index_partitions(lake.manifest_dir("silver", j.table), lake.silver_dir(j.table))
        for j in target.joins
    }
    shas = {s: session_identity(p.sha256, s, joined) for s, p in silver.partitions.items()}
    coverage = tuple(
        (j.label or j.table, sum(s in joined[j.table].partitions for s in sessions)) for j in target.joins
    )
    naming = _naming(lake)
    digests = naming.digests(adjustment)
    state_dir = lake.gold_state_dir(spec.name, freq, adjustment)
    history = state_dir / "history"
    state = _load_state(state_dir, target, sessions[0], cal.hours)
    if state is None or not (root / "calendars" / f"{freq}.txt").exists():
        state = _build(
            lake, spec, target, target_index, silver, shas, cal, digests, executor, budget_bytes, on_bucket,
            joined,
        )  # fmt: skip
        state.naming = naming.spans
        _save_state(state_dir, target, sessions[0], state, cal.hours)
        return _outcome(
            root, "built", state, len(exchange_days), holes, joined=coverage, adjustment=adjustment
        )

    changed = {s for s in sessions if state.sessions.get(s) != shas[s]} | {
        s for s in state.sessions if s not in silver.partitions
    }
    old_last = max(state.sessions) if state.sessions else sessions[0]
    rewind = min((s for s in changed if s <= old_last), default=None)
    rewrite = {
        symbol
        for symbol, (_, _, _, digest) in state.symbols.items()
        if digests.get(symbol, NO_DIGEST) != digest
    }
    # Instruments whose tickers changed (a rename or a reused ticker became known) are rebuilt from
    # silver, with every instrument now holding bars of those tickers.
    recomposed = {
        symbol
        for symbol in rewrite
        if _parts(digests.get(symbol, NO_DIGEST)) != _parts(state.symbols[symbol][3])
    }
    if recomposed:
        before = _Naming(state.naming, naming.intervals)
        tickers = naming.tickers_of(recomposed) | before.tickers_of(recomposed)
        rewrite |= naming.instruments_of(tickers) | (before.instruments_of(tickers) & set(state.symbols))
        recomposed |= rewrite - set(state.symbols)
    appended = [s for s in sessions if (s >= rewind if rewind else s > old_last)]
    if not appended and not rewrite and not changed and not _damaged(root, target, state, exclude=set()):
        return _outcome(
            root, "unchanged", state, len(exchange_days), holes, joined=coverage, adjustment=adjustment
        )

    per_chunk = max(1, int(budget_bytes / BYTES_PER_ROW))
    # A republished session (or features recomputed around a late corporate action) rewinds only the
    # symbols whose values changed: the others keep their files and get only the new sessions.
    redone = [s for s in appended if s <= old_last]
    affected: set[str] | None = None  # None: every symbol
    if rewind is not None and redone and sum(silver.partitions[s].rows for s in redone) <= per_chunk:
        again = _read_silver(lake, spec, target, cal, joined, redone, naming=naming, exclude=rewrite)
        affected = _changed_symbols(history, target, cal, state, again, cal.start(rewind))
    if rewind is not None:
        cut = cal.start(rewind)
        for symbol, (stored, first, last, digest) in list(state.symbols.items()):
            if symbol in rewrite or last < cut or (affected is not None and symbol not in affected):
                continue
            span = truncate_bins(root, qlib_dir_name(stored), target.fields, freq, (first, last), cut)
            truncate_history(history_file(history, qlib_dir_name(stored)), span, len(target.values))
            if span is None:
                del state.symbols[symbol]
            else:
                state.symbols[symbol] = (stored, span[0], span[1], digest)
    # Symbols appended to are checked as they are written; the others by the size of their files.
    damaged: set[str] = set()
    touched: set[str] = set()
    steps: list[tuple[list[dt.date], set[str] | None]] = []
    if redone and affected is not None:
        steps.append((redone, affected))
        new_sessions = [s for s in appended if s > old_last]
    else:
        new_sessions = appended
    # Sessions in chunks, symbols in groups, each holding about a budget's worth of rows.
    steps += [(c, None) for c in _grouped(new_sessions, lambda s: silver.partitions[s].rows, per_chunk)]
    for chunk, only in steps:
        if only is not None and not only:
            continue
        rows = (
            _read_silver(lake, spec, target, cal, joined, chunk, naming=naming, include=only - rewrite)
            if only is not None
            else _read_silver(lake, spec, target, cal, joined, chunk, naming=naming, exclude=rewrite)
        )
        touched |= set(rows["ticker"].unique().to_list()) if rows.height else set()
        _write(
            root, target, rows, cal, state, digests, naming=naming, history=history, existing=True,
            damaged=damaged,
        )  # fmt: skip
    repair = damaged | _damaged(root, target, state, exclude=touched | rewrite)
    redo = rewrite | repair
    if redo:
        known = {s: state.symbols[s] for s in redo if s in state.symbols}
        for symbol in redo:
            state.symbols.pop(symbol, None)
        # Sessions before the first re-appended one come from each symbol's raw history file (one small
        # read) when it is intact; the re-appended sessions, and symbols without a history, from silver.
        spans = {s: known[s][2] - known[s][1] + 1 for s in known}
        for group in _grouped(sorted(redo), lambda s: spans.get(s, 1), per_chunk):
            intact = {s: known[s] for s in group if s in known and s not in recomposed}
            kept, lost = _from_history(history, target, cal, intact)
            lost |= {s for s in group if s not in intact}
            if appended:
                kept = kept.filter(pl.col("session_date") < appended[0])
            fresh = set(group) - lost
            parts = [kept]
            if fresh and appended:
                parts.append(
                    _read_silver(lake, spec, target, cal, joined, appended, naming=naming, include=fresh)
                )
            if lost:
                parts.append(
                    _read_silver(lake, spec, target, cal, joined, sessions, naming=naming, include=lost)
                )
            rows = pl.concat([p.select(kept.columns).cast(kept.schema) for p in parts])
            _write(root, target, rows, cal, state, digests, naming=naming, history=history, replace=True)
            # An instrument left without bars (its company now trades under another name) is removed.
            for gone in set(group) - set(rows["ticker"].unique().to_list()):
                if gone in known:
                    _remove(root, history, known[gone][0])
    cal.write(root, state.spans())
    state.sessions = dict(shas)
    state.naming = naming.spans
    _save_state(state_dir, target, sessions[0], state, cal.hours)
    return _outcome(
        root,
        "updated",
        state,
        len(exchange_days),
        holes,
        joined=coverage,
        appended=len([s for s in appended if s > old_last]),
        rewound_to=rewind,
        rewritten=len(rewrite),
        repaired=len(repair),
        adjustment=adjustment,
    )


def session_identity(sha: str, session: dt.date, joined: dict[str, PartitionIndex]) -> str:
    """What a session of the root is built from: its silver partition and those of the joined tables."""
    parts = [sha]
    for table, index in joined.items():
        partition = index.partitions.get(session)
        if partition is not None:
            parts.append(f"{table}:{partition.sha256}")
    return "+".join(parts)


def _row_schema(target: QlibTarget, freq: Freq) -> dict[str, pl.DataType]:
    """Columns of the silver-shaped rows the stage converts: ticker, session, bar time, the values."""
    return {
        "ticker": pl.String(),
        "session_date": pl.Date(),
        "datetime": pl.Date() if freq == "day" else pl.Datetime("us"),
        **{c: pl.Float64() for c in target.values},
    }


def _raw_values(rows: pl.DataFrame, target: QlibTarget) -> pl.DataFrame:
    return rows.select(pl.col(c).cast(pl.Float64).fill_null(float("nan")) for c in target.values)


def _from_history(
    history: Path,
    target: QlibTarget,
    cal: BarCalendar,
    symbols: dict[str, tuple[str, int, int, str]],
) -> tuple[pl.DataFrame, set[str]]:
    """Silver-shaped rows of ``symbols`` rebuilt from their history files; and the symbols whose file is
    missing or short (to be read from silver)."""
    width = len(target.values)
    schema = _row_schema(target, cal.freq)
    frames, lost = [], set()
    for symbol, (stored, first, last, _) in sorted(symbols.items()):
        values = read_history(history_file(history, qlib_dir_name(stored)), (first, last), width)
        if values is None:
            lost.add(symbol)
            continue
        present = np.flatnonzero(~np.isnan(values).all(axis=1))
        frame = pl.DataFrame({name: values[present, j] for j, name in enumerate(target.values)}).with_columns(
            pl.all().fill_nan(None)
        )
        bars = cal.values(first + present)
        session = bars if cal.freq == "day" else bars.dt.date()
        frames.append(
            frame.with_columns(pl.lit(symbol).alias("ticker"), bars, session.alias("session_date")).select(
                list(schema)
            )
        )
    rows = pl.concat(frames) if frames else pl.DataFrame(schema=schema)
    return rows, lost


def _changed_symbols(
    history: Path,
    target: QlibTarget,
    cal: BarCalendar,
    state: _State,
    rows: pl.DataFrame,
    cut: int,
) -> set[str]:
    """Symbols whose stored values from calendar position ``cut`` on differ from silver ``rows``: a
    value changed, a bar appeared or vanished, or the symbol is new. Compared with the raw history files
    (a symbol without an intact one counts as changed)."""
    width = len(target.values)
    by_symbol = (
        {key[0]: frame for key, frame in rows.partition_by("ticker", as_dict=True).items()}
        if rows.height
        else {}
    )
    changed = {str(symbol) for symbol in by_symbol if symbol not in state.symbols}
    for symbol, (stored, first, last, _) in state.symbols.items():
        frame = by_symbol.get(symbol)
        if last < cut and frame is None:
            continue
        if last < cut:
            changed.add(symbol)
            continue
        stored_rows = read_history(history_file(history, qlib_dir_name(stored)), (first, last), width)
        if stored_rows is None:
            changed.add(symbol)
            continue
        old = stored_rows[max(cut, first) - first :]
        new = np.full_like(old, np.nan)
        if frame is not None:
            offsets = cal.positions(frame["datetime"]) - max(cut, first)
            if (offsets < 0).any() or (offsets >= len(new)).any():
                changed.add(symbol)
                continue
            new[offsets] = _raw_values(frame, target).to_numpy()
        if not np.array_equal(old, new, equal_nan=True):
            changed.add(symbol)
    return changed


def _damaged(root: Path, target: QlibTarget, state: _State, *, exclude: set[str]) -> set[str]:
    """Symbols (other than ``exclude``) whose field files are missing or shorter than their span."""
    freq = check_freq(target.freq)
    return {
        symbol
        for symbol, (stored, first, last, _) in state.symbols.items()
        if symbol not in exclude
        and not bins_intact(root, qlib_dir_name(stored), target.fields, freq, (first, last))
    }


def _grouped(items: list[T], weight: Callable[[T], int], limit: int) -> list[list[T]]:
    """Consecutive items in groups whose weights add up to about ``limit`` (at least one item each)."""
    groups: list[list[T]] = []
    size = 0
    for item in items:
        n = weight(item)
        if not groups or size + n > limit:
            groups.append([])
            size = 0
        groups[-1].append(item)
        size += n
    return groups


def _outcome(
    root: Path,
    status: GoldStatus,
    state: _State,
    calendar_days: int,
    holes: tuple[dt.date, ...],
    **counts: object,
) -> GoldOutcome:
    renamed = tuple(sorted((s, v[0]) for s, v in state.symbols.items() if s != v[0]))
    return GoldOutcome(
        root,
        status,
        symbols=len(state.symbols),
        calendar_days=calendar_days,
        holes=holes,
        renamed=renamed,
        skipped=tuple(sorted(state.skipped.items())),
        **counts,  # type: ignore[arg-type]
    )


def _read_silver(
    lake: Lake,
    spec: DatasetSpec,
    target: QlibTarget,
    cal: BarCalendar,
    joined: dict[str, PartitionIndex],
    sessions: list[dt.date],
    *,
    naming: _Naming,
    include: set[str] | None = None,
    exclude: set[str] | None = None,
    bounds: tuple[str | None, str | None] | None = None,
) -> pl.DataFrame:
    """Silver-shaped rows (:func:`_row_schema`) of ``sessions``, named by instrument (``ticker`` holds
    the instrument: a company's bars under all its tickers), filtered by instrument while reading; minute
    bars outside the calendar's hours are left out. ``bounds``: instruments in ``[lo, hi)`` (``None``:
    unbounded on that side)."""
    where: pl.Expr | None = None
    keep: pl.Expr | None = None
    if include is not None:
        where = pl.col("ticker").is_in(sorted(naming.tickers_of(include)))
        keep = pl.col("ticker").is_in(sorted(include))
    elif exclude:
        keep = ~pl.col("ticker").is_in(sorted(exclude))
    elif bounds is not None:
        keep = _within(pl.col("ticker"), bounds)
        where = _within(pl.col("ticker"), bounds) | pl.col("ticker").is_in(
            sorted(naming.tickers_of_range(bounds))
        )
    schema = _row_schema(target, cal.freq)
    if not sessions:
        return pl.DataFrame(schema=schema)
    paths = [lake.silver_partition(spec, s) for s in sessions]
    if cal.freq == "day":
        rows = read_parquet_files(paths, columns=target.columns, where=where).with_columns(
            pl.col("session_date").alias("datetime")
        )
    else:
        if cal.hours == "regular":  # extended-hours bars are not in the root: not read at all
            where = pl.col("regular_session") if where is None else where & pl.col("regular_session")
        rows = read_parquet_files(paths, columns=(*target.columns, "ts"), where=where)
        local = pl.col("ts").dt.replace_time_zone(None).dt.cast_time_unit("us").alias("datetime")
        rows = rows.with_columns(local).drop("ts")
        rows = rows.filter(pl.Series(cal.positions(rows["datetime"]) >= 0))
    for join in target.joins:
        index = joined[join.table]
        extra = [lake.silver_partition(join.table, s) for s in sessions if s in index.partitions]
        names = [alias for _, alias in join.columns]
        found = (
            read_parquet_files(extra, where=where).select(
                "ticker", "session_date", *(pl.col(c).alias(a) for c, a in join.columns)
            )
            if extra
            else pl.DataFrame(
                schema={"ticker": pl.String(), "session_date": pl.Date()} | {n: pl.Float64() for n in names}
            )
        )
        rows = rows.join(found, on=["ticker", "session_date"], how="left", maintain_order="left")
    if not naming.spans.is_empty():
        rows = rows.with_columns(instrument_of(rows, naming.spans).alias("ticker"))
    if keep is not None:
        rows = rows.filter(keep)
    return rows.select(pl.col(name).cast(dtype) for name, dtype in schema.items())


def _parts(digest: str) -> str:
    """The ticker-spans half of an instrument digest (see :meth:`_Naming.digests`)."""
    return digest.partition(":")[2]


def _remove(root: Path, history: Path, stored: str) -> None:
    """Delete an instrument's files and raw history."""
    shutil.rmtree(root / "features" / qlib_dir_name(stored), ignore_errors=True)
    Path(history_file(history, qlib_dir_name(stored))).unlink(missing_ok=True)


def _within(expr: pl.Expr, bounds: tuple[str | None, str | None]) -> pl.Expr:
    lo, hi = bounds
    inside = pl.lit(True)
    if lo is not None:
        inside = inside & (expr >= pl.lit(lo))
    if hi is not None:
        inside = inside & (expr < pl.lit(hi))
    return inside


@dataclass(frozen=True, slots=True)
class _Naming:
    """Which instrument a ticker's bars belong to (``spans``), and the factor table keyed by instrument."""

    spans: pl.DataFrame
    intervals: pl.DataFrame

    def tickers_of(self, instruments: set[str]) -> set[str]:
        """Every ticker whose bars may belong to ``instruments`` (an unmapped ticker is its own)."""
        named = self.spans.filter(pl.col("instrument").is_in(sorted(instruments)))["ticker"]
        return set(named.to_list()) | instruments

    def tickers_of_range(self, bounds: tuple[str | None, str | None]) -> set[str]:
        """Tickers of instruments within ``bounds`` whose own names are not."""
        named = self.spans.filter(_within(pl.col("instrument"), bounds) & ~_within(pl.col("ticker"), bounds))
        return set(named["ticker"].to_list())

    def digests(self, adjustment: Adjustment) -> dict[str, str]:
        """Per instrument: ``<factors>:<parts>``, digests of the factors a root of ``adjustment`` applies
        (a dividend changes no split-only digest) and of the ticker spans it is made of. A change of either
        rewrites its files; a change of its parts rebuilds them from silver."""
        factors = split_digests(self.intervals) if adjustment == "split" else factor_digests(self.intervals)
        parts = digests_by(
            self.spans.select(
                pl.col("instrument").alias("ticker"), pl.col("ticker").alias("_t"), "valid_from", "valid_to"
            ),
            "ticker",
            ["_t", "valid_from", "valid_to"],
        )
        return {name: f"{factors.get(name, '')}:{parts.get(name, '')}" for name in {*factors, *parts}}

    def instruments_of(self, tickers: set[str]) -> set[str]:
        """Every instrument holding bars of ``tickers``."""
        named = self.spans.filter(pl.col("ticker").is_in(sorted(tickers)))["instrument"]
        return set(named.to_list())


def _naming(lake: Lake) -> _Naming:
    """The lake's instrument spans (``silver/reference/entities``) and its factors keyed by instrument."""
    spans = instrument_spans(lake)
    intervals = _intervals(lake)
    if not spans.is_empty() and not intervals.is_empty():
        # A ticker's factor spans cut at the instrument spans it belongs to (one ticker per instrument at
        # any date, so the pieces of one instrument never overlap).
        pieces = intervals.join(spans, on="ticker", suffix="_i").filter(
            (pl.col("valid_from") < pl.col("valid_to_i")) & (pl.col("valid_from_i") < pl.col("valid_to"))
        )
        mapped = intervals.join(spans.select("ticker"), on="ticker", how="anti")
        intervals = pl.concat(
            [
                mapped,
                pieces.select(
                    pl.col("instrument").alias("ticker"),
                    pl.max_horizontal("valid_from", "valid_from_i").alias("valid_from"),
                    pl.min_horizontal("valid_to", "valid_to_i").alias("valid_to"),
                    "split_factor",
                    "adj_factor",
                ),
            ]
        ).sort("ticker", "valid_from")
    return _Naming(spans, intervals)


def _write(
    root: Path,
    target: QlibTarget,
    rows: pl.DataFrame,
    cal: BarCalendar,
    state: _State,
    digests: dict[str, str],
    *,
    naming: _Naming,
    history: Path | None = None,
    existing: bool = False,
    replace: bool = False,
    damaged: set[str] | None = None,
) -> None:
    """Convert silver ``rows`` and write them: append to known symbols or replace whole symbols.

    Symbols found damaged while appending are added to ``damaged`` (by input name) and left for a rewrite.
    """
    if rows.is_empty():
        return
    frame = target.frame(rows, naming.intervals, target.adjustment)
    layout = layout_rows(frame, cal.freq, target.fields, cal.bars)
    known = {stored: (first, last) for stored, first, last, _ in state.symbols.values()} if existing else {}
    broken: set[str] = set()
    spans = write_bins(
        root,
        layout,
        frame,
        target.fields,
        cal.freq,
        existing=known,
        replace=frozenset(layout.symbols) if replace else frozenset(),
        damaged=broken,
        history=None if history is None else (history, _raw_values(rows, target)),
    )
    stored_of = dict(zip(layout.inputs, layout.symbols, strict=True))
    for symbol, stored in stored_of.items():
        if stored in broken:
            if damaged is not None:
                damaged.add(symbol)
            continue
        first, last = spans[stored]
        state.symbols[symbol] = (stored, first, last, digests.get(symbol, NO_DIGEST))
    state.skipped.update(layout.skipped)


def _intervals(lake: Lake) -> pl.DataFrame:
    path = lake.adjustment_factors()
    if path.exists():
        return read_parquet_files([path])
    return pl.DataFrame(
        schema={
            "ticker": pl.String(),
            "valid_from": pl.Date(),
            "valid_to": pl.Date(),
            "split_factor": pl.Float64(),
            "adj_factor": pl.Float64(),
        }
    )


@dataclass(frozen=True, slots=True)
class GoldBucketTask:
    """Write the files of the symbols in ``bounds`` (all if ``None``) into a new root being built."""

    root: Path
    data_type: str
    target: int
    build_dir: Path
    history_dir: Path
    sessions: tuple[dt.date, ...]
    exchange_days: tuple[dt.date, ...]
    hours: MinuteSession
    joined: tuple[str, ...]
    bounds: tuple[str | None, str | None] | None
    adjustment: Adjustment = "total_return"


def run_gold_bucket(task: GoldBucketTask) -> tuple[dict[str, tuple[str, int, int]], dict[str, str]]:
    """One bucket of a full build: ``({symbol: (stored, first, last)}, {skipped symbol: reason})``."""
    lake = Lake(task.root)
    spec = get_spec(task.data_type)
    target = spec.gold[task.target].for_adjustment(task.adjustment)
    freq = check_freq(target.freq)
    cal = bar_calendar(list(task.exchange_days), freq, spec.calendar, task.hours)
    joined = {
        table: index_partitions(lake.manifest_dir("silver", table), lake.silver_dir(table))
        for table in task.joined
    }
    naming = _naming(lake)
    rows = _read_silver(
        lake, spec, target, cal, joined, list(task.sessions), naming=naming, bounds=task.bounds
    )
    if rows.is_empty():
        return {}, {}
    frame = target.frame(rows, naming.intervals, target.adjustment)
    layout = layout_rows(frame, freq, target.fields, cal.bars)
    spans = write_bins(
        task.build_dir,
        layout,
        frame,
        target.fields,
        freq,
        history=(task.history_dir, _raw_values(rows, target)),
    )
    symbols = {
        symbol: (stored, *spans[stored]) for symbol, stored in zip(layout.inputs, layout.symbols, strict=True)
    }
    return symbols, dict(layout.skipped)


def _build(
    lake: Lake,
    spec: DatasetSpec,
    target: QlibTarget,
    target_index: int,
    silver: PartitionIndex,
    shas: dict[dt.date, str],
    cal: BarCalendar,
    digests: dict[str, str],
    executor: TaskExecutor | None,
    budget_bytes: float,
    on_bucket: Callable[[], None] | None,
    joined: dict[str, PartitionIndex],
) -> _State:
    """A whole new root of ``target`` (``spec.gold[target_index]`` in one adjustment), per symbol bucket,
    swapped in atomically."""
    freq = check_freq(target.freq)
    root = lake.qlib_root(spec.name, freq, target.adjustment)
    runner = executor or InlineExecutor()
    sessions = silver.sessions
    buckets = _buckets(lake, spec, silver, budget_bytes / max(1, runner.concurrency))
    build_dir = new_temp_directory(root)
    history = lake.gold_state_dir(spec.name, freq, target.adjustment) / "history"
    history_dir = new_temp_directory(history)
    tasks = [
        GoldBucketTask(
            lake.root,
            spec.name,
            target_index,
            build_dir,
            history_dir,
            tuple(sessions),
            cal.sessions,
            cal.hours,
            tuple(joined),
            b,
            target.adjustment,
        )
        for b in buckets
    ]
    state = _State(sessions=dict(shas), symbols={})
    try:
        for _, result in runner.map(run_gold_bucket, tasks):
            if isinstance(result, BaseException):
                raise result
            symbols, skipped = result
            for symbol, (stored, first, last) in symbols.items():
                state.symbols[symbol] = (stored, first, last, digests.get(symbol, NO_DIGEST))
            state.skipped.update(skipped)
            if on_bucket is not None:
                on_bucket()
        cal.write(build_dir, state.spans(), check=False)
    except BaseException:
        shutil.rmtree(build_dir, ignore_errors=True)
        shutil.rmtree(history_dir, ignore_errors=True)
        raise
    swap_directory(build_dir, root)
    swap_directory(history_dir, history)
    return state


def _buckets(
    lake: Lake, spec: DatasetSpec, silver: PartitionIndex, budget_bytes: float
) -> list[tuple[str | None, str | None] | None]:
    """Contiguous ranges of names whose rows fit the budget (one unbounded bucket when all fit).

    Ranges rather than hashes: partitions are sorted by ticker, so a range filter skips row groups.
    """
    total = sum(p.rows for p in silver.partitions.values())
    per_bucket = max(1, int(budget_bytes / BYTES_PER_ROW))
    if total <= per_bucket:
        return [None]
    counts = _ticker_counts([lake.silver_partition(spec, s) for s in silver.sessions])
    cuts: list[str] = []
    size = 0
    for ticker, n in counts.iter_rows():
        if size >= per_bucket:
            cuts.append(ticker)
            size = 0
        size += n
    # Half-open ranges of instrument names, unbounded at both ends: every name falls in exactly one.
    edges: list[str | None] = [None, *cuts, None]
    return [(edges[i], edges[i + 1]) for i in range(len(edges) - 1)]


def _ticker_counts(paths: list[Path]) -> pl.DataFrame:
    """Rows per ticker over ``paths`` (``ticker``, ``len``, sorted), reading a batch of files at a time so
    memory holds one batch's tickers, not the history's."""
    total = pl.DataFrame(schema={"ticker": pl.String(), "len": pl.UInt32()})
    for start in range(0, len(paths), _COUNT_BATCH):
        batch = read_parquet_files(paths[start : start + _COUNT_BATCH], columns=("ticker",))
        counts = batch.group_by("ticker").len()
        total = pl.concat([total, counts]).group_by("ticker").agg(pl.col("len").sum())
    return total.sort("ticker")


def _load_state(directory: Path, target: QlibTarget, first_session: dt.date, hours: str) -> _State | None:
    meta = read_manifest(directory / "state.json")
    symbols_path = directory / "symbols.parquet"
    if (
        meta is None
        or not _state_current(meta, target)
        or meta.get("first_session") != first_session.isoformat()
        or meta.get("hours", "regular") != hours
        or not symbols_path.exists()
    ):
        return None
    naming_path = directory / "instruments.parquet"
    try:
        table = read_parquet_files([symbols_path])
        naming = (
            read_parquet_files([naming_path])
            if naming_path.exists()
            else pl.DataFrame(schema=INSTRUMENT_SPANS_SCHEMA)
        )
    except QuantminiError:
        return None
    return _State(
        sessions={dt.date.fromisoformat(k): v for k, v in meta.get("sessions", {}).items()},
        symbols={r[0]: (r[1], r[2], r[3], r[4]) for r in table.iter_rows()},
        skipped=dict(meta.get("skipped", {})),
        naming=naming,
    )


def recorded_sessions(directory: Path, target: QlibTarget) -> dict[dt.date, str] | None:
    """What the root whose state is in ``directory`` was built from: per session its
    :func:`session_identity`, from ``state.json`` alone (``None``: no state, or one of another stage
    version or field list, which the next run rebuilds from scratch)."""
    meta = read_manifest(directory / "state.json")
    if meta is None or not _state_current(meta, target):
        return None
    return {dt.date.fromisoformat(k): str(v) for k, v in meta.get("sessions", {}).items()}


def _state_current(meta: dict[str, object], target: QlibTarget) -> bool:
    """Whether a recorded state was written by this stage version for ``target``'s version and fields."""
    return (
        meta.get("version") == GOLD_VERSION
        and meta.get("target_version") == target.version
        and meta.get("fields") == list(target.fields)
    )


def _save_state(
    directory: Path, target: QlibTarget, first_session: dt.date, state: _State, hours: str
) -> None:
    names = sorted(state.symbols)
    values = [state.symbols[n] for n in names]
    columns = [names, *([v[i] for v in values] for i in range(4))]
    table = pl.DataFrame(dict(zip(_SYMBOL_SCHEMA, columns, strict=True)), schema=_SYMBOL_SCHEMA)
    write_parquet_atomic(table.to_arrow(), directory / "symbols.parquet")
    write_parquet_atomic(state.naming.to_arrow(), directory / "instruments.parquet")
    write_manifest(
        directory / "state.json",
        {
            "version": GOLD_VERSION,
            "target_version": target.version,
            "fields": list(target.fields),
            "first_session": first_session.isoformat(),
            "hours": hours,
            "sessions": {s.isoformat(): sha for s, sha in sorted(state.sessions.items())},
            "skipped": state.skipped,
        },
    )
