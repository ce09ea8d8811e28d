"""Wire the stages for a data type and a date range: landing → bronze → silver → gold.

Holds no business rules: each stage decides per partition what is stale; the runner sequences them,
reports progress and collects per-file failures so one bad file never stops the others.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from quantmini._exceptions import QuantminiError
from quantmini.config.settings import PipelineMode
from quantmini.core.calendar import sessions as exchange_sessions
from quantmini.datasets import get_spec
from quantmini.datasets.base import DatasetSpec
from quantmini.io.atomic import sweep_temps
from quantmini.io.lake import Lake
from quantmini.io.source import LocalMirrorSource, Source
from quantmini.pipeline.bronze import IngestOutcome, ingest_session
from quantmini.pipeline.executor import run_tasks
from quantmini.pipeline.gold import ConvertOutcome, convert
from quantmini.pipeline.landing import LandingOutcome, LandingPlan, land_sessions, landing_warnings
from quantmini.pipeline.landing_versions import KeptVersion, kept_versions
from quantmini.pipeline.progress import NullProgress, ProgressListener
from quantmini.pipeline.reference import import_reference_dir
from quantmini.pipeline.silver import EnrichOutcome, enrich

#: Stages in order; a run can stop after any of them.
Stage = Literal["landing", "bronze", "gold"]


@dataclass
class PipelineReport:
    """Everything a run did, for the CLI summary and for tests."""

    data_type: str
    sessions: list[dt.date] = field(default_factory=list)
    landing: list[LandingOutcome] = field(default_factory=list)
    ingest: list[IngestOutcome] = field(default_factory=list)
    reference_added: dict[str, int] = field(default_factory=dict)
    enrich: EnrichOutcome | None = None
    convert: ConvertOutcome | None = None
    failures: list[str] = field(default_factory=list)
    #: Things that need attention although nothing failed (deleted upstream, nothing listed).
    warnings: list[str] = field(default_factory=list)
    #: Previous raw versions kept because bronze has not accepted their replacement (yet).
    kept_versions: list[KeptVersion] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    #: Stages not defined for this data type, each with the reason (e.g. no silver for minute bars yet).
    skipped: dict[str, str] = field(default_factory=dict)

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
            and (self.enrich is None or self.enrich.status != "enriched")
            and (self.convert is None or self.convert.status != "converted")
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
        progress: ProgressListener | None = None,
    ) -> None:
        self.lake = lake
        self.spec = spec
        self.mode: PipelineMode = mode
        self.workers = workers
        self.batch_sessions = batch_sessions
        self.progress: ProgressListener = progress or NullProgress()

    def sessions(self, start: dt.date, end: dt.date) -> list[dt.date]:
        """Exchange sessions of the data type's calendar in ``[start, end]``."""
        return exchange_sessions(start, end, self.spec.calendar)

    def land(self, source: Source, sessions: list[dt.date], report: PipelineReport) -> None:
        """Landing stage over ``sessions``: list the source, fetch what is new or changed, verify."""
        t0 = time.perf_counter()

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
        report.timings["landing"] = time.perf_counter() - t0

    def ingest(self, sessions: list[dt.date], report: PipelineReport) -> None:
        """Bronze stage over ``sessions`` (only landed, changed files do work)."""
        t0 = time.perf_counter()
        tasks = [_IngestTask(self.lake.root, self.spec.name, s) for s in sessions]
        self.progress.start("bronze", len(tasks))
        outcomes: list[IngestOutcome] = []
        results = run_tasks(
            _ingest, tasks, mode=self.mode, workers=self.workers, batch_size=self.batch_sessions
        )
        for task, result in results:
            if isinstance(result, QuantminiError):
                report.failures.append(str(result))
            elif isinstance(result, BaseException):
                report.failures.append(f"bronze {task.session}: unexpected {type(result).__name__}: {result}")
            else:
                outcomes.append(result)
            self.progress.advance("bronze", str(task.session))
        self.progress.finish("bronze")
        report.ingest.extend(sorted(outcomes, key=lambda o: o.session))
        report.kept_versions = kept_versions(self.lake, self.spec, sessions)
        report.timings["bronze"] = time.perf_counter() - t0

    def enrich(self, report: PipelineReport) -> None:
        """Silver stage."""
        t0 = time.perf_counter()
        self.progress.start("silver", 1)
        report.enrich = enrich(self.lake, self.spec)
        self.progress.advance("silver")
        self.progress.finish("silver")
        report.timings["silver"] = time.perf_counter() - t0

    def convert(self, report: PipelineReport) -> None:
        """Gold stage."""
        t0 = time.perf_counter()
        self.progress.start("gold", 1)
        report.convert = convert(self.lake, self.spec)
        self.progress.advance("gold")
        self.progress.finish("gold")
        report.timings["gold"] = time.perf_counter() - t0

    def run(
        self, source: Source, start: dt.date, end: dt.date, *, last_stage: Stage = "gold"
    ) -> PipelineReport:
        """The stages up to ``last_stage``, in order, for the sessions in ``[start, end]``.

        Temporaries that a killed earlier run left behind are removed first.
        """
        report = PipelineReport(self.spec.name, sessions=self.sessions(start, end))
        for directory in (
            self.lake.bronze_dir(self.spec),
            self.lake.quarantine_dir(self.spec),
            self.lake.silver_dir(self.spec),
            self.lake.root / "_manifests",
            self.lake.root / "gold",
        ):
            sweep_temps(directory)
        self.land(source, report.sessions, report)
        if last_stage == "landing":
            return report
        self.ingest(report.sessions, report)
        if last_stage == "bronze":
            return report
        if self.spec.has_silver:
            self.enrich(report)
        else:
            report.skipped["silver"] = f"no silver layer is defined for {self.spec.name} (it has no features)"
        if self.spec.has_qlib_gold:
            self.convert(report)
        else:
            report.skipped["gold"] = (
                f"no Qlib gold root is built for {self.spec.name} (daily stock bars only)"
            )
        return report
