"""Run records: what every pipeline command did, kept in ``<data_root>/_runs/<run-id>.json``.

A :class:`RunRecorder` is opened by the CLI around a command that runs the pipeline. It writes the record
once the command holds the lake's lock (status ``running``: :meth:`RunRecorder.begin`) and again when it
ends, however it ends: ``ok``, ``failed`` (with the failure lines) or ``interrupted`` (Ctrl-C). A command
the lock refused did nothing and leaves no record. Its :attr:`RunRecorder.monitor` measures the stages
of every runner of the command (one command may run several data types), and :meth:`RunRecorder.add`
takes each runner's report. A record holds the command line (redacted), the versions of quantmini and
its data libraries, the executor settings, the wait for the lake's lock, and per stage its wall and CPU
time, peak memory, rows, bytes and files, and every lowering of concurrency under memory pressure.

Run ids sort by time: ``YYYYMMDDTHHMMSSZ-<6 hex>``. With ``monitoring.profiling`` each stage's cProfile
file goes to ``_runs/<run-id>/`` and ``logs/performance/performance_metrics.json`` keeps the per-stage
figures of the last ``monitoring.performance_runs`` runs.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import platform
import secrets
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from quantmini import __version__
from quantmini._exceptions import ConfigurationError, QuantminiError
from quantmini.config.redaction import redact
from quantmini.config.settings import Settings
from quantmini.io.atomic import write_text_atomic
from quantmini.io.clock import SYSTEM_CLOCK, Clock
from quantmini.io.process_stats import process_tree_rss
from quantmini.pipeline.monitor import RssSampler, RunMonitor

if TYPE_CHECKING:
    from quantmini.pipeline.runner import PipelineReport

log = logging.getLogger(__name__)

#: Directory of the run records in a lake root.
RUNS_DIR = "_runs"
#: The rolling per-stage figures kept with profiling on.
PERFORMANCE_FILE = Path("logs") / "performance" / "performance_metrics.json"
#: Format of a record (raised when a field changes meaning).
RECORD_VERSION = 1
#: Libraries whose versions a record names.
_LIBRARIES = ("polars", "duckdb", "pyarrow")


def runs_dir(root: Path) -> Path:
    """Where the run records of the lake at ``root`` live."""
    return root / RUNS_DIR


def new_run_id(now: float) -> str:
    """A run id sorting by its start (``now``, Unix seconds), to the microsecond so that two runs in one
    second sort too: ``20261202T150501.123456Z-3fa9c2``."""
    stamp = dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return f"{stamp}-{secrets.token_hex(3)}"


@dataclass(frozen=True, slots=True)
class LockWait:
    """How long the command waited for the lake's lock, and for whom."""

    seconds: float
    holder: str

    def describe(self) -> str:
        """``waited 12.3 s for pid 123 on host h since … (quantmini pipeline run …)``."""
        return f"waited {self.seconds:.1f} s for {self.holder}"


class RunRecorder:
    """The run record of one command on the lake at ``root`` (see the module docstring); a context
    manager: the record is written on entry and completed on exit.

    ``clock`` gives the start and end times and measures the lock wait; ``sampler`` reads the RSS the
    monitor samples (both injectable for tests).
    """

    def __init__(
        self,
        root: Path,
        command: str,
        settings: Settings,
        *,
        clock: Clock = SYSTEM_CLOCK,
        sampler: RssSampler = process_tree_rss,
    ) -> None:
        self.root = root
        self.command = redact(command)
        self.settings = settings
        self.clock = clock
        self.started = clock.time()
        self.run_id = new_run_id(self.started)
        self.path = runs_dir(root) / f"{self.run_id}.json"
        profiling = settings.monitoring.profiling
        self.monitor = RunMonitor(sampler, profile_dir=runs_dir(root) / self.run_id if profiling else None)
        self.reports: list[PipelineReport] = []
        self.lock_wait: LockWait | None = None
        #: The command holds the lock: the record is written (see :meth:`begin`).
        self.began = False
        #: False when the record could not be written (the command goes on; the record is not its work).
        self.written = False

    def add(self, report: PipelineReport) -> None:
        """Take a runner's report (its failures decide the status; its row accounting is summarised)."""
        self.reports.append(report)

    def waited(self, seconds: float, holder: str) -> None:
        """Record a wait of ``seconds`` for the lake's lock held by ``holder``."""
        self.lock_wait = LockWait(seconds, holder)

    def begin(self) -> None:
        """The command holds the lake's lock: write the record (``running``); it is completed on exit."""
        self.began = True
        self._write(self._record("running", []))

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self.began:
            return
        status, failures = self._outcome(exc)
        record = self._record(status, failures, ended=self.clock.time())
        self._write(record)
        if self.monitor.profile_dir is not None and record["stages"]:
            self._keep_performance(record)

    def _outcome(self, exc: BaseException | None) -> tuple[str, list[str]]:
        failures = [redact(line) for report in self.reports for line in report.failures]
        if isinstance(exc, KeyboardInterrupt):
            return "interrupted", failures
        if isinstance(exc, SystemExit) and exc.code in (0, None):
            exc = None
        if exc is not None and not isinstance(exc, SystemExit):
            line = str(exc) if isinstance(exc, QuantminiError) else f"unexpected {type(exc).__name__}: {exc}"
            failures.append(redact(line))
        return ("failed" if failures or exc is not None else "ok"), failures

    def _record(self, status: str, failures: list[str], ended: float | None = None) -> dict[str, Any]:
        p = self.settings.pipeline
        return {
            "version": RECORD_VERSION,
            "run_id": self.run_id,
            "command": self.command,
            "status": status,
            "failures": failures,
            "started": _iso(self.started),
            "ended": None if ended is None else _iso(ended),
            "wall_s": None if ended is None else round(ended - self.started, 3),
            "versions": _versions(),
            "execution": {
                "executors": sorted({r.executor for r in self.reports}),
                "mode": p.mode,
                "workers": p.workers,
                "batch_sessions": p.batch_sessions,
                "executor": p.executor,
                "memory_budget_gb": p.memory_budget_gb,
            },
            "lock": {
                "waited_s": 0.0 if self.lock_wait is None else round(self.lock_wait.seconds, 3),
                "holder": None if self.lock_wait is None else redact(self.lock_wait.holder),
            },
            "stages": [asdict(s) for s in self.monitor.stages],
            "memory_lowerings": [asdict(m) for m in self.monitor.lowerings],
            "reports": [_report_summary(r) for r in self.reports],
            "profiling": self.monitor.profile_dir is not None,
        }

    def _write(self, record: dict[str, Any]) -> None:
        try:
            write_text_atomic(self.path, json.dumps(record, indent=2) + "\n")
        except QuantminiError as exc:
            log.warning("cannot write the run record %s: %s", self.path, exc)
            return
        self.written = True

    def _keep_performance(self, record: dict[str, Any]) -> None:
        try:
            update_performance_metrics(self.root, record, keep=self.settings.monitoring.performance_runs)
        except QuantminiError as exc:
            log.warning("cannot update %s: %s", self.root / PERFORMANCE_FILE, exc)


def _report_summary(report: PipelineReport) -> dict[str, Any]:
    return {
        "data_type": report.data_type,
        "sessions": len(report.sessions),
        "first_session": str(report.sessions[0]) if report.sessions else None,
        "last_session": str(report.sessions[-1]) if report.sessions else None,
        "rows": report.rows,
        "failures": len(report.failures),
        "warnings": len(report.warnings),
        "notes": len(report.notes),
    }


def _versions() -> dict[str, str]:
    found = {"quantmini": __version__, "python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def list_runs(root: Path) -> list[dict[str, Any]]:
    """Every readable run record of the lake at ``root``, newest first."""
    records = []
    for path in sorted(runs_dir(root).glob("*.json"), reverse=True):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            log.warning("skipping the unreadable run record %s", path)
            continue
        if isinstance(record, dict) and "run_id" in record:
            records.append(record)
    return records


def find_run(root: Path, ref: str) -> dict[str, Any]:
    """The record named by ``ref``: a run id, a unique prefix of one, or ``latest``."""
    records = list_runs(root)
    if not records:
        raise ConfigurationError(f"no run records in {runs_dir(root)} (pipeline commands write them)")
    if ref == "latest":
        return records[0]
    matches = [r for r in records if r["run_id"] == ref] or [
        r for r in records if str(r["run_id"]).startswith(ref)
    ]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ConfigurationError(f"no run {ref!r} in {runs_dir(root)} (quantmini runs list shows them)")
    shown = ", ".join(str(r["run_id"]) for r in matches[:5])
    raise ConfigurationError(f"run id {ref!r} matches {len(matches)} runs ({shown} …); give more of it")


def update_performance_metrics(root: Path, record: dict[str, Any], *, keep: int) -> Path:
    """Add ``record``'s per-stage figures to ``logs/performance/performance_metrics.json`` of the lake,
    keeping the newest ``keep`` runs (one atomic rewrite); return the file."""
    path = root / PERFORMANCE_FILE
    try:
        runs = json.loads(path.read_text(encoding="utf-8"))["runs"]
        if not isinstance(runs, list):
            raise TypeError("runs is not a list")
    except FileNotFoundError:
        runs = []
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("starting %s afresh: it was unreadable (%s)", path, exc)
        runs = []
    figures = ("wall_s", "cpu_s", "children_cpu_s", "peak_rss_bytes", "rows_in", "rows_out", "status")
    entry = {
        "run_id": record["run_id"],
        "started": record["started"],
        "command": record["command"],
        "status": record["status"],
        "stages": [
            {"data_type": s["data_type"], "name": s["name"], **{k: s[k] for k in figures}}
            for s in record["stages"]
        ],
    }
    runs = [r for r in runs if isinstance(r, dict) and r.get("run_id") != entry["run_id"]] + [entry]
    runs.sort(key=lambda r: str(r.get("run_id")))
    write_text_atomic(path, json.dumps({"runs": runs[-keep:]}, indent=1) + "\n")
    return path
