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
import json
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from quantmini._exceptions import ConfigurationError, QuantminiError, StorageError
from quantmini.config.settings import Settings
from quantmini.core.adjustment import session_multipliers
from quantmini.core.calendar import sessions as exchange_sessions
from quantmini.core.window import FactorContext, SessionWindow
from quantmini.datasets import DATASETS, get_spec
from quantmini.datasets.base import DatasetSpec, SilverInput, SilverPart
from quantmini.io.lake import Lake
from quantmini.io.manifest import sha256_file, write_manifest
from quantmini.io.parquet import PieceFile, empty_table, read_parquet_files
from quantmini.io.reference_store import load_reference
from quantmini.pipeline.factors import FactorState, digest_of, load_factor_tables
from quantmini.pipeline.partitions import Partition, PartitionIndex, index_partitions

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
    #: Values of the part's settings keys, in the part's order.
    settings: tuple[tuple[str, Any], ...] = ()
    #: Per output session, the :func:`upstream_digest` of its lake inputs (recorded in its manifest).
    upstreams: tuple[str, ...] = ()

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
    parts: Sequence[int] | None = None,
    settings: Settings | None = None,
) -> list[SilverPlan]:
    """Plans for the silver parts of ``spec`` numbered ``parts`` (default: all), from manifests only."""
    plans = []
    for index in range(len(spec.silver)) if parts is None else parts:
        part = spec.silver[index]
        values = tuple((key, setting_value(settings or Settings(), key)) for key in part.settings)
        plans.append(
            _plan_part(lake, spec, index, part, bronze, calendar, factors, budget_bytes, concurrency, values)
        )
    return plans


def active_parts(spec: DatasetSpec, settings: Settings) -> list[int]:
    """The parts of ``spec`` a run builds: all but the feature sets not configured."""
    configured = settings.features.of(spec.name)
    return [
        i for i, part in enumerate(spec.silver) if part.feature_set is None or part.feature_set in configured
    ]


def silver_waves(spec: DatasetSpec) -> list[list[int]]:
    """The parts of ``spec`` in build order: a part reading another silver table of ``spec`` comes in a
    wave after that table's part (its inputs' checksums are then final when it is planned)."""
    own = {part.table(spec.name): i for i, part in enumerate(spec.silver)}
    depth: dict[int, int] = {}

    def level(i: int, seen: frozenset[int]) -> int:
        if i in seen:
            raise ConfigurationError(f"silver parts of {spec.name} read each other in a cycle")
        if i not in depth:
            needs = [own[t] for t in spec.silver[i].reads_silver() if t in own]
            depth[i] = 1 + max((level(j, seen | {i}) for j in needs), default=-1)
        return depth[i]

    for i in range(len(spec.silver)):
        level(i, frozenset())
    return [[i for i in range(len(spec.silver)) if depth[i] == d] for d in sorted(set(depth.values()))]


def setting_value(settings: Settings, key: str) -> Any:
    """The value of a dotted settings key, as JSON-compatible data (``"options.risk_free_rate"``)."""
    value: Any = settings
    for name in key.split("."):
        value = getattr(value, name)
    return value.model_dump(mode="json") if hasattr(value, "model_dump") else value


def _sha(partitions: dict[dt.date, Any], session: dt.date) -> str:
    found = partitions.get(session)
    return "-" if found is None else str(found.sha256)


def window_calendar(sessions: Sequence[dt.date], calendar: str) -> list[dt.date]:
    """The exchange sessions silver identities are computed over, given a type's bronze ``sessions``:
    from 60 days before the first to the last (empty without sessions)."""
    if not sessions:
        return []
    return exchange_sessions(min(sessions) - dt.timedelta(days=60), max(sessions), calendar)


def upstream_lines(
    part: SilverPart,
    bronze: dict[dt.date, Partition],
    inputs: Sequence[tuple[SilverInput, dict[dt.date, Partition]]],
    calendar: list[dt.date],
) -> Iterator[tuple[dt.date, list[str]]]:
    """Per session with a bronze partition (oldest first), the lines of its identity that name the lake
    partitions it is built from: the bronze checksums of its window and its inputs' (``calendar``: the
    :func:`window_calendar` of the bronze sessions)."""
    position = {s: i for i, s in enumerate(calendar)}
    # Each session's piece of an identity, formatted once (a window joins a slice of them).
    bronze_entries = [f"{s}:{_sha(bronze, s)}" for s in calendar]
    input_entries = [[_sha(found, s) for s in calendar] for _, found in inputs]
    for session in sorted(bronze):
        i = position[session]
        lo = max(0, i - part.lookback)
        read = [
            f"{src.layer}:{src.source}:" + ";".join(entries[lo : i + 1] if src.window else entries[i : i + 1])
            for (src, _), entries in zip(inputs, input_entries, strict=True)
        ]
        lines = ["bronze=" + ";".join(bronze_entries[lo : i + 1])]
        if read:
            lines.append("inputs=" + ";".join(read))
        yield session, lines


def upstream_digest(lines: list[str]) -> str:
    """Digest of a session's :func:`upstream_lines`, recorded as ``upstream`` in its silver manifest:
    ``quantmini data status`` recomputes it to tell a partition whose inputs changed since it was built."""
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _input_index(lake: Lake, source: SilverInput) -> PartitionIndex:
    if source.layer == "bronze":
        spec = get_spec(source.source)
        return index_partitions(lake.manifest_dir("bronze", spec), lake.bronze_dir(spec))
    return index_partitions(lake.manifest_dir("silver", source.source), lake.silver_dir(source.source))


def _input_path(lake: Lake, source: SilverInput, session: dt.date) -> Path:
    if source.layer == "bronze":
        return lake.bronze_partition(get_spec(source.source), session)
    return lake.silver_partition(source.source, session)


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
    settings: tuple[tuple[str, Any], ...],
) -> SilverPlan:
    table = part.table(spec.name)
    references = {}
    for name in part.references:
        path = lake.reference_table(name)
        if not path.exists():
            return SilverPlan(table, 0, skipped=f"needs the {name} reference table (not pulled)")
        references[name] = sha256_file(path)
    for name in part.optional_references:
        path = lake.reference_table(name)
        references[name] = sha256_file(path) if path.exists() else "-"
    inputs = [(source, _input_index(lake, source).partitions) for source in part.inputs]
    fixed = _fixed_identity(part, references, settings)
    existing = index_partitions(lake.manifest_dir("silver", table), lake.silver_dir(table))
    position = {s: i for i, s in enumerate(calendar)}
    digests = [factors.session_digests.get(s, "") for s in calendar] if factors is not None else []
    stale: list[tuple[dt.date, str]] = []
    upstreams: dict[dt.date, str] = {}
    for session, upstream in upstream_lines(part, bronze.partitions, inputs, calendar):
        lines = [*fixed, *upstream]
        lo = max(0, position[session] - part.lookback)
        if factors is not None and part.factors == "window":
            # Actions on the window's first session only concern the move into it, which no output uses.
            lines.append("factors=" + digest_of(digests[lo + 1 : position[session] + 1]))
        elif factors is not None and part.factors == "history":
            lines.append("factors=" + factors.history_digest(session))
        identity = hashlib.sha256("\n".join(lines).encode()).hexdigest()
        recorded = existing.partitions.get(session)
        if recorded is None or recorded.identity != identity:
            stale.append((session, identity))
            upstreams[session] = upstream_digest(upstream)
    orphans = [s for s in existing.partitions if s not in bronze.partitions]
    rows_per_session = max(
        1, sum(p.rows for p in bronze.partitions.values()) // max(1, len(bronze.partitions))
    )
    task_budget = budget_bytes / max(1, concurrency)
    per_chunk, split = _task_size(part, rows_per_session, task_budget)
    tasks = []
    for chunk in _chunks(stale, position, part.lookback, per_chunk):
        task = _task(lake, spec, index, part, chunk, calendar, position, bronze, settings, upstreams)
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


def _fixed_identity(
    part: SilverPart, references: dict[str, str], settings: tuple[tuple[str, Any], ...]
) -> list[str]:
    """The identity lines every session of a part shares."""
    lines = [
        f"version={part.version}",
        f"transform={part.transform.path}",
        f"columns={','.join(part.columns)}",
        "references=" + ";".join(f"{k}:{v}" for k, v in sorted(references.items())),
    ]
    if settings:  # only parts with settings: the identities of the others stay as they were
        lines.append("settings=" + json.dumps(dict(settings), sort_keys=True))
    return lines


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
    settings: tuple[tuple[str, Any], ...],
    upstreams: dict[dt.date, str],
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
        settings=settings,
        upstreams=tuple(upstreams[s] for s, _ in chunk),
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
    """Rows written per output session of one task, and the part's summary counts of them."""

    table: str
    rows: dict[dt.date, int]
    tally: dict[str, int] = field(default_factory=dict)


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
    for name in part.optional_references:
        frame = load_reference(lake, name)
        if frame is not None:
            references[name] = frame
    inputs = {
        source.source: _read_input(lake, source, task.sessions if source.window else task.outputs)
        for source in part.inputs
    }
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
    files = {
        s: PieceFile(lake.silver_partition(table, s), schema, compression=part.compression)
        for s in task.outputs
    }
    failed: dict[dt.date, StorageError] = {}
    tally: Counter[str] = Counter()
    try:
        for bounds in _ticker_ranges(lake, spec, task):
            where = (
                None if bounds is None else pl.col("ticker").is_between(pl.lit(bounds[0]), pl.lit(bounds[1]))
            )
            bars = _window_bars(spec, part, paths, lookback, where)
            window = SessionWindow(
                bars, task.sessions, task.outputs, references, context, inputs, dict(task.settings)
            )
            rows = part.transform(window)
            if part.summary is not None and rows.height:
                tally.update(part.summary(rows))
            for session, piece in _by_session(rows, order, schema):
                if session not in files or session in failed:
                    continue
                try:
                    files[session].write(piece)
                except StorageError as exc:  # one session's file: the others are still written
                    failed[session] = exc
    except BaseException:
        for file in files.values():
            file.abort()
        raise
    written: dict[dt.date, int] = {}
    upstreams = task.upstreams or ("",) * len(task.outputs)
    for session, identity, upstream in zip(task.outputs, task.identities, upstreams, strict=True):
        file = files[session]
        if session in failed:
            continue
        try:
            file.commit()
        except StorageError as exc:
            failed[session] = exc
            continue
        manifest = {
            "session": session.isoformat(),
            "identity": identity,
            "rows": file.rows,
            "output_sha256": sha256_file(file.target),
            "output_size": file.target.stat().st_size,
        }
        if upstream:
            manifest["upstream"] = upstream
        # Not fsynced: a silver file whose size disagrees with its manifest is rebuilt by the next run.
        write_manifest(lake.manifest("silver", table, session), manifest, durable=False)
        written[session] = file.rows
    if failed:
        first = min(failed)
        more = f" (and {len(failed) - 1} more session(s))" if len(failed) > 1 else ""
        raise StorageError(f"{failed[first]}{more}; {len(written)} other session(s) written")
    return SilverTaskResult(table, written, dict(tally))


def _by_session(
    rows: pl.DataFrame, order: list[str], schema: pa.Schema
) -> Iterator[tuple[dt.date, pa.Table]]:
    """``rows`` as one Arrow table in the file schema, sorted by session then ``order``, cut into each
    session's slice (one conversion for the whole task, not one per session)."""
    if not rows.height:
        return
    if not _in_order(rows, ["session_date", *order]):
        rows = rows.sort("session_date", *order)
    table = rows.select(schema.names).to_arrow().cast(schema)
    days = rows["session_date"].sort().to_numpy()
    starts = np.flatnonzero(np.r_[True, days[1:] != days[:-1]])
    for start, end in zip(starts, [*starts[1:], len(days)], strict=True):
        yield days[start].item(), table.slice(int(start), int(end - start))


def _in_order(rows: pl.DataFrame, keys: list[str]) -> bool:
    """Whether ``rows`` are already sorted by ``keys`` (a check of a few columns is far cheaper than
    sorting a wide table)."""
    greater, equal = pl.lit(False), pl.lit(True)
    for key in keys:
        greater = greater | (equal & (pl.col(key) > pl.col(key).shift()))
        equal = equal & (pl.col(key) == pl.col(key).shift())
    return bool(rows.select((greater | equal).fill_null(True).all()).item())


def _read_input(lake: Lake, source: SilverInput, sessions: Sequence[dt.date]) -> pl.DataFrame:
    """The input's rows of ``sessions`` (sessions without a partition contribute none)."""
    paths = [path for s in sessions if (path := _input_path(lake, source, s)).exists()]
    if paths:
        return read_parquet_files(paths, columns=source.columns or None)
    frame = pl.DataFrame(empty_table(_input_schema(source)))
    return frame.select(list(source.columns)) if source.columns else frame


def _input_schema(source: SilverInput) -> pa.Schema:
    if source.layer == "bronze":
        return get_spec(source.source).bronze_schema
    spec, part = DATASETS.silver_table(source.source)
    return part.output_schema(spec.bronze_schema)


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
