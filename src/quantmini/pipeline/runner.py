"""Wire the stages for a data type: landing → bronze over a date range, then silver → gold → catalog.

Holds no business rules: each stage decides per partition what is stale; the runner sequences them,
runs their tasks through one executor, reports progress and collects every failure of every stage, so one
bad file, chunk or symbol never stops the others and none is hidden from the summary.

Every stage is measured by the run's :class:`~quantmini.pipeline.monitor.RunMonitor` (time, CPU, peak
memory, rows and bytes it knows of). On entering a stage and after each task the memory of the process
tree goes to a :class:`~quantmini.pipeline.memory_guard.MemoryGuard`, which lowers concurrency or the
chunk budget when it passes ``memory_budget_gb``; each lowering is noted in the report.

Landing and bronze work on the requested range (plus any damaged bronze partition of the lake, which is
re-derived from landing). Silver and gold work on the whole lake of the data type, incrementally: what
they rebuild is decided by manifests, so their cost follows what changed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from quantmini._exceptions import QuantminiError, StorageError
from quantmini.config.settings import PipelineMode, Settings
from quantmini.core.adjustment_names import Adjustment
from quantmini.core.calendar import sessions as exchange_sessions
from quantmini.datasets import DATASETS, get_spec
from quantmini.datasets.base import DatasetSpec
from quantmini.io.atomic import sweep_temps
from quantmini.io.duckdb_catalog import build_catalog
from quantmini.io.lake import Lake
from quantmini.io.source import LocalMirrorSource, Source
from quantmini.pipeline.bronze import IngestOutcome, ingest_session, settled
from quantmini.pipeline.entities import instrument_spans
from quantmini.pipeline.executor import ExecutorKind, InlineExecutor, TaskExecutor, make_executor
from quantmini.pipeline.factors import PRICE_SOURCE, FactorOutcome, FactorState, refresh_factors
from quantmini.pipeline.gold import GoldOutcome, MinuteSession, root_name, run_gold
from quantmini.pipeline.landing import LandingOutcome, LandingPlan, land_sessions, landing_warnings
from quantmini.pipeline.landing_versions import KeptVersion, kept_versions
from quantmini.pipeline.markets import MarketsOutcome, update_markets
from quantmini.pipeline.memory_guard import MemoryGuard, MemoryLowering
from quantmini.pipeline.monitor import RunMonitor, StageFigures
from quantmini.pipeline.partitions import PartitionIndex, index_partitions
from quantmini.pipeline.progress import NullProgress, ProgressListener
from quantmini.pipeline.reference import import_reference_dir
from quantmini.pipeline.silver import (
    SilverPlan,
    active_parts,
    plan_silver,
    remove_orphans,
    run_silver_task,
    silver_waves,
    window_calendar,
)

#: Stages in order; a run can stop after any of them.
Stage = Literal["landing", "bronze", "silver", "gold"]

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class SilverOutcome:
    """What the silver stage did for one table."""

    table: str
    sessions: int
    written: int = 0
    rows: int = 0
    removed: int = 0
    skipped: str | None = None
    #: The part's summary counts over the rows written this run (most frequent first).
    tally: dict[str, int] = field(default_factory=dict)


@dataclass
class PipelineReport:
    """Everything a run did, for the CLI summary and for tests."""

    data_type: str
    sessions: list[dt.date] = field(default_factory=list)
    landing: list[LandingOutcome] = field(default_factory=list)
    ingest: list[IngestOutcome] = field(default_factory=list)
    reference_added: dict[str, int] = field(default_factory=dict)
    factors: FactorOutcome | None = None
    silver: list[SilverOutcome] = field(default_factory=list)
    gold: list[GoldOutcome] = field(default_factory=list)
    #: The market files written beside Qlib roots (one outcome per root that declares them).
    markets: list[MarketsOutcome] = field(default_factory=list)
    catalog: Path | None = None
    executor: str = "streaming"
    failures: list[str] = field(default_factory=list)
    #: Things the user should know that are not failures (repairs, holes, orphans removed …).
    notes: list[str] = field(default_factory=list)
    #: Things that need attention although nothing failed (deleted upstream, nothing listed).
    warnings: list[str] = field(default_factory=list)
    #: Previous raw versions kept because bronze has not accepted their replacement (yet).
    kept_versions: list[KeptVersion] = field(default_factory=list)
    #: Every stage this run measured, in order.
    stages: list[StageFigures] = field(default_factory=list)
    #: Times the runner lowered its concurrency or chunk budget because memory passed the budget.
    lowerings: list[MemoryLowering] = field(default_factory=list)
    #: Stages not defined for this data type, each with the reason.
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def timings(self) -> dict[str, float]:
        """Wall seconds per stage."""
        return {stage.name: stage.wall_s for stage in self.stages}

    @property
    def rows(self) -> dict[str, int]:
        """Row accounting over every ingested file."""
        return {
            "in": sum(o.rows_in for o in self.ingest),
            "bronze": sum(o.rows_bronze for o in self.ingest),
            "quarantined": sum(o.rows_quarantined for o in self.ingest),
            "duplicates": sum(o.duplicates for o in self.ingest),
        }

    @property
    def quarantine_reasons(self) -> Counter[str]:
        """Quarantined rows per reason."""
        total: Counter[str] = Counter()
        for outcome in self.ingest:
            total.update(outcome.reasons)
        return total

    @property
    def did_nothing(self) -> bool:
        """True when every stage found its outputs up to date."""
        return (
            all(o.status in ("unchanged", "missing", "deleted_upstream") for o in self.landing)
            and all(o.status in ("unchanged", "not_landed") for o in self.ingest)
            and not any(self.reference_added.values())
            and all(o.written == 0 and o.removed == 0 for o in self.silver)
            and all(o.status in ("unchanged", "no_input") for o in self.gold)
            and all(o.status in ("unchanged", "no_input") for o in self.markets)
        )


@dataclass(frozen=True, slots=True)
class _IngestTask:
    root: Path
    data_type: str
    session: dt.date


def _ingest(task: _IngestTask) -> IngestOutcome:
    return ingest_session(Lake(task.root), get_spec(task.data_type), task.session)


class PipelineRunner:
    """Runs stages over one data type; ``progress`` receives per-partition updates."""

    def __init__(
        self,
        lake: Lake,
        spec: DatasetSpec,
        *,
        mode: PipelineMode = "streaming",
        workers: int = 1,
        batch_sessions: int = 5,
        memory_budget_gb: float = 4.0,
        executor: ExecutorKind = "local",
        scheduler: str | None = None,
        minute_session: MinuteSession = "regular",
        adjustments: tuple[Adjustment, ...] = ("total_return",),
        progress: ProgressListener | None = None,
        exclusive: bool = False,
        settings: Settings | None = None,
        monitor: RunMonitor | None = None,
    ) -> None:
        self.lake = lake
        #: Read by silver parts that declare settings keys (``options.risk_free_rate``).
        self.settings = settings or Settings()
        #: The caller holds the lake's writer lock (:mod:`quantmini.io.lock`): no other process is writing,
        #: so every temporary found is a leftover of a killed run, however recent.
        self.exclusive = exclusive
        self.spec = spec
        self.mode: PipelineMode = mode
        self.workers = workers
        self.batch_sessions = batch_sessions
        #: Lowers concurrency and the chunk budget (:attr:`budget_bytes`) when memory passes the budget.
        self.memory = MemoryGuard(memory_budget_gb, data_budget(memory_budget_gb))
        #: Measures the stages; shared by the runners of one command (its run record).
        self.monitor = monitor or RunMonitor()
        self.executor_kind: ExecutorKind = executor
        self.scheduler = scheduler
        self.minute_session: MinuteSession = minute_session
        #: The adjustments each Qlib target gets a root in (``gold.adjustment``).
        self.adjustments = adjustments
        self.progress: ProgressListener = progress or NullProgress()
        self._executor: TaskExecutor = InlineExecutor()
        self._interrupted = threading.Event()
        self._stage_name = ""
        self._report = PipelineReport(spec.name)

    # -- running tasks -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _running(self, report: PipelineReport) -> Iterator[None]:
        """Open the executor for the run and make Ctrl-C stop it even when a library swallows it."""
        previous: Any = None
        if threading.current_thread() is threading.main_thread():

            def interrupted(signum: int, frame: Any) -> None:
                self._interrupted.set()
                raise KeyboardInterrupt

            previous = signal.signal(signal.SIGINT, interrupted)
        try:
            with make_executor(
                self.mode,
                workers=self.workers,
                batch_size=self.batch_sessions,
                executor=self.executor_kind,
                scheduler=self.scheduler,
            ) as executor:
                self._executor = executor
                report.executor = executor.name
                yield
        finally:
            self._executor = InlineExecutor()
            if previous is not None:
                signal.signal(signal.SIGINT, previous)

    def _map(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[T, R | BaseException]]:
        """Tasks through the run's executor; stops the run if Ctrl-C was pressed, even if swallowed."""
        for item, result in self._executor.map(fn, items):
            self._between_tasks()
            yield item, result
        self._check_interrupt()

    def _check_interrupt(self) -> None:
        if self._interrupted.is_set():
            raise KeyboardInterrupt

    @property
    def budget_bytes(self) -> float:
        """Bytes the stages size their chunks and buckets to (lowered under memory pressure)."""
        return self.memory.chunk_budget

    def _between_tasks(self) -> None:
        """After each task: stop on Ctrl-C, and check the memory budget."""
        self._check_interrupt()
        self.memory.task_done()
        self._check_memory()

    @contextlib.contextmanager
    def _stage(self, name: str, report: PipelineReport) -> Iterator[StageFigures]:
        """Measure stage ``name`` (kept in the report also when it fails); memory is checked on entry."""
        self._stage_name = name
        self._report = report
        with self.monitor.measure(name, self.spec.name) as figures:
            try:
                self._check_memory()
                yield figures
            finally:
                report.stages.append(figures)

    def _check_memory(self) -> None:
        lowering = self.memory.check(self.monitor.sample(), self._executor, self.spec.name, self._stage_name)
        if lowering is not None:
            self.monitor.lowerings.append(lowering)
            self._report.lowerings.append(lowering)
            self._report.notes.append(lowering.describe())

    # -- stages ---------------------------------------------------------------------------------------

    def sessions(self, start: dt.date, end: dt.date) -> list[dt.date]:
        """Exchange sessions of the data type's calendar in ``[start, end]``."""
        return exchange_sessions(start, end, self.spec.calendar)

    def land(self, source: Source, sessions: list[dt.date], report: PipelineReport) -> None:
        """Landing stage over ``sessions``: list the source, fetch what is new or changed, verify."""
        with self._stage("landing", report) as figures:
            self._land(source, sessions, report)
            fetched = [o for o in report.landing if o.status in ("landed", "republished")]
            figures.files = len(fetched)
            figures.bytes_in = figures.bytes_out = sum(o.size for o in fetched)

    def _land(self, source: Source, sessions: list[dt.date], report: PipelineReport) -> None:
        files = {"done": 0, "total": 0}

        def planned(plan: LandingPlan) -> None:
            files["total"] = len(plan.jobs)
            self.progress.start("landing", plan.bytes_to_fetch, unit="bytes")

        def file_done(key: str) -> None:
            files["done"] += 1
            self.progress.advance("landing", f"{files['done']}/{files['total']} files", amount=0)

        outcomes, failures = land_sessions(
            self.lake,
            source,
            self.spec,
            sessions,
            on_plan=planned,
            on_bytes=lambda n: self.progress.advance("landing", amount=n),
            on_file=file_done,
        )
        self.progress.finish("landing")
        report.landing.extend(outcomes)
        report.failures.extend(failures)
        report.warnings.extend(landing_warnings(self.spec, sessions, outcomes, source.description))
        report.kept_versions = kept_versions(self.lake, self.spec, sessions)
        if isinstance(source, LocalMirrorSource) and sessions:  # no session in range: nothing to refresh
            report.reference_added = import_reference_dir(self.lake, source.directory)

    def ingest(self, sessions: list[dt.date], report: PipelineReport) -> None:
        """Bronze stage over ``sessions`` (only landed, changed files do work) and over any damaged
        partition of the lake (re-derived from its landed file)."""
        with self._stage("bronze", report) as figures:
            ingested = self._ingest_sessions(sessions, report)
            figures.files = len(ingested)
            figures.rows_in = sum(o.rows_in for o in ingested)
            figures.rows_out = sum(o.rows_bronze for o in ingested)
            figures.bytes_in = sum(o.bytes_in for o in ingested)
            figures.bytes_out = sum(o.bytes_out for o in ingested)

    def _ingest_sessions(self, sessions: list[dt.date], report: PipelineReport) -> list[IngestOutcome]:
        """Ingest ``sessions`` and the damaged partitions; return the outcomes of the files ingested."""
        damaged = self._damaged_bronze()
        todo = sorted(set(sessions) | set(damaged))
        outcomes: list[IngestOutcome] = []
        tasks = []
        # Settled sessions are decided here from manifests, so a no-op run starts no worker at all.
        for session in todo:
            done = settled(self.lake, self.spec, session)
            if done is None:
                tasks.append(_IngestTask(self.lake.root, self.spec.name, session))
            else:
                outcomes.append(done)
        self.progress.start("bronze", len(tasks))
        for task, result in self._map(_ingest, tasks):
            if isinstance(result, QuantminiError):
                report.failures.append(str(result))
            elif isinstance(result, BaseException):
                report.failures.append(f"bronze {task.session}: unexpected {type(result).__name__}: {result}")
            else:
                outcomes.append(result)
                if result.repaired:
                    report.notes.append(f"bronze {result.session}: {result.repaired}")
            self.progress.advance("bronze", str(task.session))
        self.progress.finish("bronze")
        report.ingest.extend(
            sorted((o for o in outcomes if o.session in set(sessions)), key=lambda o: o.session)
        )
        report.kept_versions = kept_versions(self.lake, self.spec, sessions)
        return [o for o in outcomes if o.status == "ingested"]

    def _damaged_bronze(self) -> list[dt.date]:
        index = self._bronze_index(self.spec)
        return [d.session for d in index.damaged]

    def _bronze_index(self, spec: DatasetSpec) -> PartitionIndex:
        return index_partitions(self.lake.manifest_dir("bronze", spec), self.lake.bronze_dir(spec))

    def factors(self, report: PipelineReport, prices: PartitionIndex | None = None) -> FactorState | None:
        """The lake's adjustment factors (when this data type's silver or gold uses them, or a Qlib root
        of another type that this run updates does: options update the stocks daily root); ``prices`` is
        the stocks_daily bronze index when the caller already read it."""
        others = [t[0] for t in self._gold_targets()] + [s for s, _ in self._dependent_silver()]
        if not any(spec.adjustable for spec in (self.spec, *others)):
            return None
        with self._stage("factors", report):
            prices = prices or self._bronze_index(get_spec(PRICE_SOURCE))
            try:
                state, outcome = refresh_factors(self.lake, prices)
            except QuantminiError as exc:
                report.failures.append(f"adjustment factors: {exc}")
                return None
        report.factors = outcome
        if outcome.entities.inferred_from:
            shown = ", ".join(outcome.entities.inferred_from[:5])
            more = len(outcome.entities.inferred_from) - 5
            report.notes.append(
                f"entities: {shown}{f' and {more} more' if more > 0 else ''}: another company from that date "
                "(inferred from a listing gap and a price jump: the tickers reference does not know the "
                "ticker; see silver/reference/entities)"
            )
        return state

    def enrich(
        self, report: PipelineReport, factors: FactorState | None, bronze: PartitionIndex | None = None
    ) -> None:
        """Silver stage: every declared silver table, incrementally."""
        if not self.spec.has_silver:
            report.skipped["silver"] = f"no silver layer is defined for {self.spec.name} yet"
            return
        before = len(report.silver)
        with self._stage("silver", report) as figures:
            self._enrich(report, factors, bronze)
            built = report.silver[before:]
            figures.files = sum(o.written for o in built)
            figures.rows_out = sum(o.rows for o in built)

    def _enrich(
        self, report: PipelineReport, factors: FactorState | None, bronze: PartitionIndex | None
    ) -> None:
        bronze = bronze or self._bronze_index(self.spec)
        for damaged in bronze.damaged:
            report.failures.append(
                f"bronze {damaged.session}: {damaged.path}: {damaged.reason} and it could not be re-derived "
                "(is its landed file missing?); silver treats that session as having no data"
            )
        self._note_unconfigured(report)
        active = active_parts(self.spec, self.settings)
        usable = [
            i
            for i in active
            if self.spec.silver[i].factors == "none" or factors is not None or not self.spec.adjustable
        ]
        if len(usable) < len(active):
            report.failures.append("silver: skipped the tables that need adjustment factors (see above)")
        self._build_silver(self.spec, bronze, usable, factors, report)
        for spec, parts in self._dependent_silver():
            if factors is not None or not spec.adjustable:
                self._build_silver(spec, self._bronze_index(spec), parts, factors, report)

    def _note_unconfigured(self, report: PipelineReport) -> None:
        """Say which feature tables exist although their set is no longer configured."""
        configured = self.settings.features.of(self.spec.name)
        for part in self.spec.silver:
            table = part.table(self.spec.name)
            if (
                part.feature_set
                and part.feature_set not in configured
                and self.lake.silver_dir(table).is_dir()
            ):
                report.notes.append(
                    f"silver {table}: feature set {part.feature_set} is not configured "
                    f"(features.{self.spec.name}); the table is kept but no longer updated"
                )

    def _dependent_silver(self) -> list[tuple[DatasetSpec, list[int]]]:
        """Silver parts of other data types (already built in this lake) that read a silver table of this
        one — the daily feature sets read the minute roll-ups' VWAP — so that they follow its changes."""
        tables = {part.table(self.spec.name) for part in self.spec.silver}
        found = []
        for name in DATASETS:
            other = get_spec(name)
            if other.name == self.spec.name or not self.lake.silver_dir(other).is_dir():
                continue
            parts = [i for i in active_parts(other, self.settings) if other.silver[i].reads_silver() & tables]
            if parts:
                found.append((other, parts))
        return found

    def _build_silver(
        self,
        spec: DatasetSpec,
        bronze: PartitionIndex,
        usable: list[int],
        factors: FactorState | None,
        report: PipelineReport,
    ) -> None:
        """Plan and run the ``usable`` silver parts of ``spec``, wave by wave."""
        calendar = self._calendar(bronze, spec)
        written: Counter[str] = Counter()
        rows: Counter[str] = Counter()
        tallies: dict[str, Counter[str]] = {}
        plans: list[SilverPlan] = []
        # A part reading another silver table of this type is planned once that table is final.
        waves = [[i for i in wave if i in usable] for wave in silver_waves(spec)]
        waves = [wave for wave in waves if wave]
        for k, wave in enumerate(waves):
            stage = "silver" if len(waves) == 1 else f"silver {k + 1}/{len(waves)}"
            if spec.name != self.spec.name:
                stage = f"{stage} ({spec.name})"
            wave_plans = plan_silver(
                self.lake,
                spec,
                bronze,
                calendar,
                factors,
                budget_bytes=self.budget_bytes,
                concurrency=self._executor.concurrency,
                parts=wave,
                settings=self.settings,
            )
            plans.extend(wave_plans)
            tasks = [task for plan in wave_plans for task in plan.tasks]
            self.progress.start(stage, sum(len(t.outputs) for t in tasks))
            for task, result in self._map(run_silver_task, tasks):
                if isinstance(result, BaseException):
                    report.failures.append(f"silver {task.label}: {_describe(result)}")
                else:
                    written[result.table] += len(result.rows)
                    rows[result.table] += sum(result.rows.values())
                    tallies.setdefault(result.table, Counter()).update(result.tally)
                self.progress.advance(stage, task.label, amount=len(task.outputs))
            self.progress.finish(stage)
        for plan in plans:
            report.notes.extend(f"silver {plan.table}: {text}" for text in plan.damaged)
            if plan.orphans:
                remove_orphans(self.lake, plan.table, plan.orphans)
                report.notes.append(
                    f"silver {plan.table}: removed {len(plan.orphans)} partition(s) whose bronze is gone"
                )
            tally = dict(tallies.get(plan.table, Counter()).most_common())
            report.silver.append(_silver_outcome(plan, written, rows, tally))

    def convert(self, report: PipelineReport) -> None:
        """Gold stage: every declared Qlib root in every configured adjustment, incrementally, then the
        DuckDB catalog."""
        with self._stage("gold", report):
            self._convert(report)

    def _convert(self, report: PipelineReport) -> None:
        if not self.spec.has_qlib_gold:
            report.skipped["gold"] = f"no Qlib gold root is defined for {self.spec.name} yet"
        silver: dict[str, PartitionIndex] = {}
        for spec, index, adjustment in self._gold_targets():
            target = spec.gold[index]
            name = root_name(spec.name, target.freq, adjustment)
            if spec.name not in silver:
                silver[spec.name] = index_partitions(
                    self.lake.manifest_dir("silver", spec.name), self.lake.silver_dir(spec)
                )
            self.progress.start(f"gold {name}", 1)
            try:
                outcome = run_gold(
                    self.lake,
                    spec,
                    index,
                    silver[spec.name],
                    executor=self._executor,
                    budget_bytes=self.budget_bytes,
                    on_bucket=self._between_tasks,
                    minute_session=self.minute_session,
                    adjustment=adjustment,
                )
            except QuantminiError as exc:
                report.failures.append(f"gold {name}: {exc}")
            except OSError as exc:
                report.failures.append(f"gold {name}: {exc.strerror or exc}")
            else:
                report.gold.append(outcome)
                if target.markets is not None and outcome.status != "no_input":
                    self._markets(target.markets, outcome.root, name, report)
            self.progress.advance(f"gold {name}")
            self.progress.finish(f"gold {name}")
        try:
            report.catalog = build_catalog(self.lake.root, list(DATASETS))
        except QuantminiError as exc:
            report.failures.append(f"DuckDB catalog: {exc}")

    def _markets(self, table: str, root: Path, name: str, report: PipelineReport) -> None:
        """The market files of the Qlib root at ``root`` from silver ``table``."""
        try:
            outcome = update_markets(self.lake, root, table, instruments=instrument_spans(self.lake))
        except QuantminiError as exc:
            report.failures.append(f"markets {name}: {exc}")
            return
        report.markets.append(outcome)
        if outcome.untyped:
            report.notes.append(
                f"markets {name}: {outcome.untyped} instrument(s) are in no type universe: the tickers "
                "reference table has no record of them (quantmini polygon tickers pulls it)"
            )
        for symbol in outcome.skipped:
            report.notes.append(f"markets {name}: {symbol!r} is left out (qlib cannot store the name)")

    def _gold_targets(self) -> list[tuple[DatasetSpec, int, Adjustment]]:
        """This data type's Qlib roots (a target in each configured adjustment), then the existing roots
        of other data types that join one of its silver tables (the daily root's ``$vwap`` comes from the
        minute roll-ups): they are kept current by whichever data type's run changes their inputs."""
        own = range(len(self.spec.gold)) if self.spec.main_silver else range(0)
        targets = [(self.spec, i, a) for i in own for a in self.adjustments]
        tables = {part.table(self.spec.name) for part in self.spec.silver}
        for name in DATASETS:
            other = get_spec(name)
            if other.name == self.spec.name:
                continue
            for i, target in enumerate(other.gold):
                if not {join.table for join in target.joins} & tables:
                    continue
                for a in self.adjustments:
                    if (self.lake.qlib_root(other.name, target.freq, a) / "calendars").is_dir():
                        targets.append((other, i, a))
        return targets

    def _calendar(self, bronze: PartitionIndex, spec: DatasetSpec | None = None) -> list[dt.date]:
        return window_calendar(bronze.sessions, (spec or self.spec).calendar)

    def build(self, report: PipelineReport, last_stage: Stage = "gold") -> None:
        """Silver (and gold up to ``last_stage``) over the whole lake of this data type."""
        bronze = self._bronze_index(self.spec)
        factors = self.factors(report, bronze if self.spec.name == PRICE_SOURCE else None)
        self.enrich(report, factors, bronze)
        if last_stage == "gold":
            self.convert(report)

    def run(
        self,
        source: Source | None,
        start: dt.date | None = None,
        end: dt.date | None = None,
        *,
        last_stage: Stage = "gold",
    ) -> PipelineReport:
        """The stages up to ``last_stage``, in order: landing and bronze for the sessions in
        ``[start, end]`` (skipped when ``source`` is ``None``), then silver and gold for the lake.

        Temporaries that a killed earlier run left behind are removed first (all of them when the caller
        holds the lake's lock, else those untouched for an hour). A run marks the lake while it works and
        unmarks it when it ends normally, so the (whole-lake) sweep happens only after a run that did not.
        """
        sessions = self.sessions(start, end) if start is not None and end is not None else []
        report = PipelineReport(self.spec.name, sessions=sessions)
        self._begin()
        with self._running(report):
            if source is not None:
                self.land(source, report.sessions, report)
                if last_stage != "landing":
                    self.ingest(report.sessions, report)
            if source is None or last_stage not in ("landing", "bronze"):
                self.build(report, last_stage)
        _note_holes(report)
        self._marker.unlink(missing_ok=True)
        return report

    @property
    def _marker(self) -> Path:
        return self.lake.root / "_manifests" / ".run-in-progress"

    def _begin(self) -> None:
        # Leftovers exist only after an abnormal end, which leaves the marker behind.
        if self._marker.exists():
            for directory in (
                self.lake.bronze_dir(self.spec),
                self.lake.quarantine_dir(self.spec),
                self.lake.root / "landing",
                self.lake.root / "silver",
                self.lake.root / "_manifests",
                self.lake.root / "gold",
            ):
                sweep_temps(directory, older_than=0.0 if self.exclusive else 3600.0)
        try:
            self._marker.parent.mkdir(parents=True, exist_ok=True)
            self._marker.touch()
        except OSError as exc:
            reason = exc.strerror or exc
            raise StorageError(f"cannot write to the lake at {self.lake.root}: {reason}") from exc


#: What a run holds beside its data chunks — the interpreter and libraries, the calendar, the manifests'
#: indexes and the factor state (~0.3 GB at 2,000 tickers, ~0.7 GB at 12,000 tickers × 5,000 sessions,
#: what the allocator keeps included) — kept out of the budget the chunks are sized from.
PROCESS_RESERVE_GB = 0.6


def data_budget(memory_budget_gb: float) -> float:
    """Bytes the stages may size their chunks and buckets to, so that the whole process stays within
    ``memory_budget_gb`` (at least a quarter of it, for tiny budgets)."""
    return max(memory_budget_gb - PROCESS_RESERVE_GB, memory_budget_gb / 4) * 1e9


def _silver_outcome(
    plan: SilverPlan, written: Counter[str], rows: Counter[str], tally: dict[str, int]
) -> SilverOutcome:
    return SilverOutcome(
        table=plan.table,
        sessions=plan.sessions,
        written=written[plan.table],
        rows=rows[plan.table],
        removed=len(plan.orphans),
        skipped=plan.skipped,
        tally=tally,
    )


def _note_holes(report: PipelineReport) -> None:
    for outcome in report.gold:
        if outcome.holes:
            shown = ", ".join(str(d) for d in outcome.holes[:5])
            more = f" and {len(outcome.holes) - 5} more" if len(outcome.holes) > 5 else ""
            report.notes.append(
                f"gold {outcome.name}: {len(outcome.holes)} session(s) of the calendar have no data "
                f"(NaN for every symbol): {shown}{more}"
            )
        for symbol, reason in outcome.skipped:
            report.notes.append(f"gold: symbol {symbol!r} skipped: {reason}")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, QuantminiError):
        return str(exc)
    return f"unexpected {type(exc).__name__}: {exc}"
