"""Silver stage: every silver table a data type declares, as incremental per-session partition tasks.

For each declared :class:`~quantmini.datasets.base.SilverPart` the planner derives, from manifests only,
the *identity* of each session's inputs — the checksums of the bronze partitions of the session and its
lookback, the corporate actions the part depends on, the reference tables it reads, its version — and
compares it with the identity recorded in that partition's manifest. Stale and missing sessions are
grouped into chunks of consecutive sessions (sized from the memory budget); a chunk task reads the bronze
of its sessions plus the lookback, runs the part's pure transform and writes one partition per session.
When even one session and its lookback exceed the budget (minute bars), a part whose transform works per
ticker is run on contiguous ticker ranges one after another, each read with a range filter (bronze is
sorted by ticker, so other row groups are skipped) and appended to the partitions being written.
Appending N sessions costs N sessions plus the lookback; a no-op run reads manifests only.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from quantmini._exceptions import QuantminiError, StorageError
from quantmini.core.adjustment import session_multipliers
from quantmini.core.window import FactorContext, SessionWindow
from quantmini.datasets import get_spec
from quantmini.datasets.base import DatasetSpec, SilverPart
from quantmini.io.lake import Lake
from quantmini.io.manifest import sha256_file, write_manifest
from quantmini.io.parquet import PieceFile, empty_table, read_parquet_files
from quantmini.io.reference_store import load_reference
from quantmini.pipeline.factors import FactorState, load_factor_tables
from quantmini.pipeline.partitions import PartitionIndex, index_partitions

#: Longest chunk, in output sessions.
MAX_CHUNK_SESSIONS = 500


@dataclass(frozen=True, slots=True)
class SilverTask:
    """One chunk of consecutive output sessions of one silver part (picklable: runs in any executor)."""

    root: Path
    data_type: str
    part: int
    sessions: tuple[dt.date, ...]
    present: tuple[dt.date, ...]
    outputs: tuple[dt.date, ...]
    identities: tuple[str, ...]
    #: Ticker ranges the window is split into (1: the whole window at once).
    buckets: int = 1

    @property
    def label(self) -> str:
        """``table first..last`` for progress lines and failures."""
        table = get_spec(self.data_type).silver[self.part].table(self.data_type)
        first, last = self.outputs[0], self.outputs[-1]
        return f"{table} {first}" if first == last else f"{table} {first}..{last}"


@dataclass(frozen=True, slots=True)
class SilverPlan:
    """What one silver part needs: tasks, and what the planner found."""

    table: str
    sessions: int
    tasks: list[SilverTask] = field(default_factory=list)
    orphans: list[dt.date] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)
    skipped: str | None = None

    @property
    def stale(self) -> int:
        """Sessions to (re)build."""
        return sum(len(t.outputs) for t in self.tasks)


def plan_silver(
    lake: Lake,
    spec: DatasetSpec,
    bronze: PartitionIndex,
    calendar: list[dt.date],
    factors: FactorState | None,
    *,
    budget_bytes: float,
    concurrency: int,
) -> list[SilverPlan]:
    """Plans for every silver part of ``spec`` (manifests only)."""
    plans = []
    for index, part in enumerate(spec.silver):
        plans.append(
            _plan_part(lake, spec, index, part, bronze, calendar, factors, budget_bytes, concurrency)
        )
    return plans


def _plan_part(
    lake: Lake,
    spec: DatasetSpec,
    index: int,
    part: SilverPart,
    bronze: PartitionIndex,
    calendar: list[dt.date],
    factors: FactorState | None,
    budget_bytes: float,
    concurrency: int,
) -> SilverPlan:
    table = part.table(spec.name)
    references = {}
    for name in part.references:
        path = lake.reference_table(name)
        if not path.exists():
            return SilverPlan(table, 0, skipped=f"needs the {name} reference table (not pulled)")
        references[name] = sha256_file(path)
    existing = index_partitions(lake.manifest_dir("silver", table), lake.silver_dir(table))
    position = {s: i for i, s in enumerate(calendar)}
    shas = {s: p.sha256 for s, p in bronze.partitions.items()}
    stale: list[tuple[dt.date, str]] = []
    for session in bronze.sessions:
        i = position[session]
        window = calendar[max(0, i - part.lookback) : i + 1]
        identity = _identity(part, window, shas, factors, references)
        recorded = existing.partitions.get(session)
        if recorded is None or recorded.identity != identity:
            stale.append((session, identity))
    orphans = [s for s in existing.partitions if s not in bronze.partitions]
    rows_per_session = max(
        1, sum(p.rows for p in bronze.partitions.values()) // max(1, len(bronze.partitions))
    )
    task_budget = budget_bytes / max(1, concurrency)
    per_chunk, split = _task_size(part, rows_per_session, task_budget)
    tasks = []
    for chunk in _chunks(stale, position, part.lookback, per_chunk):
        task = _task(lake, spec, index, part, chunk, calendar, position, bronze)
        if split:
            outputs = len(task.outputs)
            need = part.window_bytes(rows_per_session, outputs, len(task.present) - outputs)
            task = dataclasses.replace(task, buckets=max(1, math.ceil(need / task_budget)))
        tasks.append(task)
    damaged = [f"{d.path}: {d.reason}; rebuilt" for d in existing.damaged]
    return SilverPlan(table, len(bronze.partitions), tasks=tasks, orphans=orphans, damaged=damaged)


def _task_size(part: SilverPart, rows_per_session: int, task_budget: float) -> tuple[int, bool]:
    """Output sessions per chunk, and whether each chunk's window is split into ticker ranges.

    Chunks of consecutive sessions first; when a single session plus the lookback does not fit, a
    per-ticker part takes ``lookback`` sessions per chunk (the lookback is then read at most twice per
    output session), each task split into as many ticker ranges as its own window needs.
    """
    lookback = part.window_bytes(rows_per_session, 0, part.lookback)
    per_chunk = int((task_budget - lookback) / part.window_bytes(rows_per_session, 1, 0))
    if per_chunk >= 1 or not part.per_ticker:
        return max(1, min(MAX_CHUNK_SESSIONS, per_chunk)), False
    return max(1, part.lookback), True


def _identity(
    part: SilverPart,
    window: list[dt.date],
    shas: dict[dt.date, str],
    factors: FactorState | None,
    references: dict[str, str],
) -> str:
    parts = [
        f"version={part.version}",
        f"transform={part.transform.path}",
        f"columns={','.join(part.columns)}",
        "bronze=" + ";".join(f"{s}:{shas.get(s, '-')}" for s in window),
        "references=" + ";".join(f"{k}:{v}" for k, v in sorted(references.items())),
    ]
    if factors is not None and part.factors == "window":
        # Actions on the window's first session only concern the move into it, which no output uses.
        parts.append("factors=" + factors.window_digest(window[1:]))
    elif factors is not None and part.factors == "history":
        parts.append("factors=" + factors.history_digest(window[-1]))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _chunks(
    stale: list[tuple[dt.date, str]], position: dict[dt.date, int], lookback: int, per_chunk: int
) -> list[list[tuple[dt.date, str]]]:
    """Consecutive stale sessions, split where a chunk is full or the next is far from the last."""
    chunks: list[list[tuple[dt.date, str]]] = []
    for item in stale:
        current = chunks[-1] if chunks else None
        if (
            current is None
            or len(current) >= per_chunk
            or position[item[0]] - position[current[-1][0]] > lookback + 1
        ):
            chunks.append([item])
        else:
            current.append(item)
    return chunks


def _task(
    lake: Lake,
    spec: DatasetSpec,
    index: int,
    part: SilverPart,
    chunk: list[tuple[dt.date, str]],
    calendar: list[dt.date],
    position: dict[dt.date, int],
    bronze: PartitionIndex,
) -> SilverTask:
    first, last = position[chunk[0][0]], position[chunk[-1][0]]
    sessions = tuple(calendar[max(0, first - part.lookback) : last + 1])
    return SilverTask(
        root=lake.root,
        data_type=spec.name,
        part=index,
        sessions=sessions,
        present=tuple(s for s in sessions if s in bronze.partitions),
        outputs=tuple(s for s, _ in chunk),
        identities=tuple(identity for _, identity in chunk),
    )


def remove_orphans(lake: Lake, table: str, sessions: list[dt.date]) -> None:
    """Remove silver partitions (and manifests) of sessions that have no bronze partition any more."""
    for session in sessions:
        for path in (lake.manifest("silver", table, session), lake.silver_partition(table, session)):
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                raise StorageError(f"cannot remove {path}: {exc.strerror or exc}") from exc


@dataclass(frozen=True, slots=True)
class SilverTaskResult:
    """Rows written per output session of one task."""

    table: str
    rows: dict[dt.date, int]


def run_silver_task(task: SilverTask) -> SilverTaskResult:
    """Read the task's bronze window, run the part's transform, write one partition per output session
    (ticker range by ticker range when the task has several)."""
    lake = Lake(task.root)
    spec = get_spec(task.data_type)
    part = spec.silver[task.part]
    table = part.table(spec.name)
    schema = part.output_schema(spec.bronze_schema)
    references = {}
    for name in part.references:
        frame = load_reference(lake, name)
        if frame is None:
            raise QuantminiError(f"silver {table}: the {name} reference table disappeared during the run")
        references[name] = frame
    context = None
    if part.factors != "none":
        events, spans, _ = load_factor_tables(lake)
        multipliers = (
            session_multipliers(events, spans, list(task.sessions))
            if not events.is_empty()
            else pl.DataFrame()
        )
        context = FactorContext(multipliers, events, spans)
    order = [c for c in spec.sort_columns if c in schema.names] or [
        c for c in ("ticker", "session_date") if c in schema.names
    ]
    outputs = set(task.outputs)
    paths = [lake.bronze_partition(spec, s) for s in task.present if s in outputs]
    lookback = [lake.bronze_partition(spec, s) for s in task.present if s not in outputs]
    files = {s: PieceFile(lake.silver_partition(table, s), schema) for s in task.outputs}
    failed: dict[dt.date, StorageError] = {}
    try:
        for bounds in _ticker_ranges(lake, spec, task):
            where = (
                None if bounds is None else pl.col("ticker").is_between(pl.lit(bounds[0]), pl.lit(bounds[1]))
            )
            bars = _window_bars(spec, part, paths, lookback, where)
            rows = part.transform(SessionWindow(bars, task.sessions, task.outputs, references, context))
            for key, frame in rows.partition_by("session_date", as_dict=True).items() if rows.height else ():
                session = key[0]
                if session not in files or session in failed:
                    continue
                try:
                    files[session].write(frame.sort(order).select(schema.names).to_arrow().cast(schema))
                except StorageError as exc:  # one session's file: the others are still written
                    failed[session] = exc
    except BaseException:
        for file in files.values():
            file.abort()
        raise
    written: dict[dt.date, int] = {}
    for session, identity in zip(task.outputs, task.identities, strict=True):
        file = files[session]
        if session in failed:
            continue
        try:
            file.commit()
        except StorageError as exc:
            failed[session] = exc
            continue
        # Not fsynced: a silver file whose size disagrees with its manifest is rebuilt by the next run.
        write_manifest(
            lake.manifest("silver", table, session),
            {
                "session": session.isoformat(),
                "identity": identity,
                "rows": file.rows,
                "output_sha256": sha256_file(file.target),
                "output_size": file.target.stat().st_size,
            },
            durable=False,
        )
        written[session] = file.rows
    if failed:
        first = min(failed)
        more = f" (and {len(failed) - 1} more session(s))" if len(failed) > 1 else ""
        raise StorageError(f"{failed[first]}{more}; {len(written)} other session(s) written")
    return SilverTaskResult(table, written)


def _window_bars(
    spec: DatasetSpec, part: SilverPart, outputs: list[Path], lookback: list[Path], where: pl.Expr | None
) -> pl.DataFrame:
    """Bronze rows of the window: every column of the output sessions, the part's ``lookback_columns``
    of the other sessions of the window (the others null); rows in no particular order."""
    frames = []
    if lookback:
        frames.append(read_parquet_files(lookback, columns=part.lookback_columns or None, where=where))
    if outputs:
        frames.append(read_parquet_files(outputs, where=where))
    if not frames:
        return pl.DataFrame(empty_table(spec.bronze_schema))
    if len(frames) == 1 and frames[0].width == len(spec.bronze_schema):
        return frames[0]
    schema = pl.DataFrame(empty_table(spec.bronze_schema)).schema
    missing = [[pl.lit(None, dtype=schema[c]).alias(c) for c in schema if c not in f.columns] for f in frames]
    return pl.concat([f.with_columns(m).select(list(schema)) for f, m in zip(frames, missing, strict=True)])


def _ticker_ranges(lake: Lake, spec: DatasetSpec, task: SilverTask) -> list[tuple[str, str] | None]:
    """``task.buckets`` contiguous ticker ranges holding about equal numbers of the output sessions'
    bars (``[None]``: the whole window at once). Tickers only in the lookback and between two ranges are
    not read: no output row is theirs."""
    outputs = [lake.bronze_partition(spec, s) for s in task.outputs if s in set(task.present)]
    if task.buckets <= 1 or not outputs:
        return [None]
    counts = read_parquet_files(outputs, columns=("ticker",)).group_by("ticker").len().sort("ticker")
    if counts.is_empty():
        return [None]
    size = counts["len"].sum() / task.buckets
    piece = (counts["len"].cum_sum() - 1) // max(1, math.ceil(size))
    ranges = (
        counts.with_columns(piece.alias("_piece"))
        .group_by("_piece", maintain_order=True)
        .agg(pl.col("ticker").first().alias("lo"), pl.col("ticker").last().alias("hi"))
    )
    return list(zip(ranges["lo"].to_list(), ranges["hi"].to_list(), strict=True))
