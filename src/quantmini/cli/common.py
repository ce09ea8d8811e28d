"""What commands need once their options are parsed: settings from options, the lake's lock, the pipeline
runner with rich progress bars, and report rendering.

It imports the data stack, so command modules import it inside their command functions: the CLI's
start-up (``quantmini --help``) loads only :mod:`quantmini.cli.options`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shlex
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from quantmini._exceptions import ConfigurationError, QuantminiError
from quantmini.cli.options import RunOptions
from quantmini.config import load_settings
from quantmini.config.redaction import redact
from quantmini.config.settings import Settings
from quantmini.core.calendar import parse_date
from quantmini.datasets import DATASETS, get_spec
from quantmini.io.clock import SYSTEM_CLOCK
from quantmini.io.lake import Lake
from quantmini.io.lock import LakeLock, LockHolder
from quantmini.io.source import LocalMirrorSource, Source
from quantmini.pipeline.daily import DailyPlan, plan_daily, today_in_exchange_time
from quantmini.pipeline.landing_versions import KeptVersion
from quantmini.pipeline.monitor import RunMonitor
from quantmini.pipeline.progress import ProgressListener
from quantmini.pipeline.run_record import RunRecorder
from quantmini.pipeline.runner import PipelineReport, PipelineRunner, Stage

#: Kept raw versions listed one per line in a summary; more are summarised in one line.
_KEPT_LINES = 10

console = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False)


@contextlib.contextmanager
def lake_writer(root: Path, *, wait: bool, recorder: RunRecorder | None = None) -> Iterator[None]:
    """Hold the lake's single-writer lock for the ``with`` body; every command that writes the lake runs
    inside one. Says whom it waits for, and when it took over a lock a killed process left. A
    ``recorder`` begins its record once the lock is held, with the wait measured on its clock."""
    clock = recorder.clock if recorder is not None else SYSTEM_CLOCK
    waits: list[tuple[float, str]] = []

    def waiting(holder: LockHolder | None) -> None:
        who = holder.describe() if holder is not None else "another process"
        waits.append((clock.monotonic(), who))
        err_console.print(f"waiting for {who} to finish writing the lake {root} …", soft_wrap=True)

    lock = LakeLock(root, _command_line())
    with lock.hold(wait=wait, on_wait=waiting):
        if recorder is not None:
            if waits:
                since, who = waits[0]
                recorder.waited(clock.monotonic() - since, who)
            recorder.begin()
        if lock.taken_over is not None:
            err_console.print(
                f"[yellow]note:[/] took over the lock of the lake {root} left by "
                f"{lock.taken_over.describe()}, which ended without releasing it",
                soft_wrap=True,
            )
        yield


@contextlib.contextmanager
def recorded_run(settings: Settings, *, wait: bool) -> Iterator[RunRecorder]:
    """The run record of a command that runs the pipeline, with the lake's lock held inside it: written
    once the lock is held (the wait for it recorded) and completed however the command ends. Pass
    ``recorder.monitor`` to every runner and each report to ``recorder.add``."""
    with (
        RunRecorder(settings.data_root, _command_line(), settings) as recorder,
        lake_writer(settings.data_root, wait=wait, recorder=recorder),
    ):
        yield recorder


def print_run_record(recorder: RunRecorder) -> None:
    """Say where the run record is (the last line of a pipeline command's summary)."""
    if recorder.written:
        console.print(f"run record: {recorder.path}", soft_wrap=True, markup=False, highlight=False)


def _command_line() -> str:
    """``quantmini <group> <command> [arguments]`` of the running command, for the lock's record."""
    words: list[str] = []
    ctx = click.get_current_context(silent=True)
    while ctx is not None and ctx.parent is not None:  # the root's name depends on how it was started
        words.insert(0, ctx.info_name or "")
        ctx = ctx.parent
    args = sys.argv[1:]
    if args[: len(words)] == words:  # run as a program (not in-process, e.g. from a test)
        words = args
    return shlex.join(["quantmini", *words])


def settings_from(
    data_root: Path | None = None,
    mode: str | None = None,
    workers: int | None = None,
    source_dir: Path | None = None,
    executor: str | None = None,
    scheduler: str | None = None,
) -> Settings:
    """Effective settings with the command-line values on top."""
    return load_settings(
        {
            "data_root": data_root,
            "pipeline.mode": mode,
            "pipeline.workers": workers,
            "pipeline.executor": executor,
            "pipeline.scheduler": scheduler,
            "source.dir": source_dir,
        }
    )


def parse_range(start: str, end: str) -> tuple[dt.date, dt.date]:
    """Parse and check a ``--start-date``/``--end-date`` pair."""
    first, last = parse_date(start, "--start-date"), parse_date(end, "--end-date")
    if last < first:
        raise ConfigurationError(f"--end-date {last} is before --start-date {first}")
    return first, last


def optional_range(start: str | None, end: str | None) -> tuple[dt.date | None, dt.date | None]:
    """Parse an optional ``--start-date``/``--end-date`` pair (``None``: unbounded on that side)."""
    if start and end:
        return parse_range(start, end)
    return (
        parse_date(start, "--start-date") if start else None,
        parse_date(end, "--end-date") if end else None,
    )


#: Summary counts shown per silver table.
SUMMARY_LINES = 6


def open_source(settings: Settings) -> Source:
    """The flat-file source the settings select: a local mirror if one is set, else the S3 endpoint."""
    if settings.source.dir is not None:
        return LocalMirrorSource(settings.source.dir)
    from quantmini.io.s3_source import S3Source  # the S3 client stack: only for commands that use it

    return S3Source.from_settings(settings)


def make_runner(
    settings: Settings,
    data_type: str,
    progress: ProgressListener | None = None,
    monitor: RunMonitor | None = None,
) -> PipelineRunner:
    """A runner for ``data_type`` on the lake and mode the settings select; ``monitor`` measures its
    stages for the command's run record."""
    return PipelineRunner(
        Lake(settings.data_root),
        get_spec(data_type),
        mode=settings.pipeline.mode,
        workers=settings.pipeline.workers,
        batch_sessions=settings.pipeline.batch_sessions,
        memory_budget_gb=settings.pipeline.memory_budget_gb,
        executor=settings.pipeline.executor,
        scheduler=settings.pipeline.scheduler,
        minute_session=settings.gold.qlib_minute_session,
        adjustments=settings.gold.adjustment,
        progress=progress,
        exclusive=True,  # every command that runs a pipeline holds the lake's writer lock
        settings=settings,
        monitor=monitor,
    )


class _AmountColumn(ProgressColumn):
    """``done/total`` for item stages; bytes, transfer rate for byte stages (downloads)."""

    def __init__(self) -> None:
        super().__init__()
        self._items = MofNCompleteColumn()
        self._bytes = DownloadColumn()
        self._speed = TransferSpeedColumn()

    def render(self, task: Task) -> Text:
        """Render the amount column of ``task``."""
        if task.fields.get("unit") == "bytes":
            return Text.assemble(self._bytes.render(task), " ", self._speed.render(task))
        return self._items.render(task)


class RichProgress:
    """A :class:`~quantmini.pipeline.progress.ProgressListener` drawing one rich bar per stage."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[str, TaskID] = {}

    def start(self, stage: str, total: int, unit: str = "items") -> None:
        """Add a bar for ``stage``."""
        self._tasks[stage] = self._progress.add_task(stage, total=total, unit=unit)

    def advance(self, stage: str, detail: str = "", amount: int = 1) -> None:
        """Advance ``stage``'s bar."""
        self._progress.update(self._tasks[stage], advance=amount, description=f"{stage} {detail}".strip())

    def finish(self, stage: str) -> None:
        """Mark ``stage`` complete."""
        task = self._tasks[stage]
        self._progress.update(task, description=stage, completed=self._progress.tasks[task].total)


def run_range(
    data_type: str,
    options: RunOptions,
    *,
    start_date: str | None = None,
    end_date: str | None = None,
    source_dir: Path | None = None,
    last_stage: Stage = "gold",
    with_source: bool = True,
) -> None:
    """Run the stages up to ``last_stage`` (landing and bronze over a date range when ``with_source``)
    with progress bars, print the summary, and exit 1 when anything failed. Holds the lake's lock
    (``options.wait``: wait for another writer) and writes the run record."""
    start, end = parse_range(start_date, end_date) if start_date and end_date else (None, None)
    o = options
    settings = settings_from(o.data_root, o.mode, o.workers, source_dir, o.executor, o.scheduler)
    source = open_source(settings) if with_source else None
    with recorded_run(settings, wait=o.wait) as recorder:
        with progress_bar() as bar:
            runner = make_runner(settings, data_type, RichProgress(bar), recorder.monitor)
            report = runner.run(source, start, end, last_stage=last_stage)
        recorder.add(report)
        if report.did_nothing and not report.failures and not report.warnings:
            what = "for this range" if with_source else "for this data type"
            console.print(f"[green]Nothing to do:[/] everything is already up to date {what}.")
        render_report(report)
        print_run_record(recorder)
        if report.failures:
            sys.exit(1)


def run_daily(
    data_types: tuple[str, ...],
    options: RunOptions,
    *,
    until: str | None,
    since: str | None,
    source_dir: Path | None,
) -> None:
    """``pipeline daily``: plan each data type from its manifests and the source's listing, run every layer,
    print one summary, exit 1 when anything failed (naming the data types). One type's failure (a refused
    listing, a bad file) never stops the others."""
    o = options
    settings = settings_from(o.data_root, o.mode, o.workers, source_dir, o.executor, o.scheduler)
    last = parse_date(until, "--until") if until else today_in_exchange_time()
    first = parse_date(since, "--since") if since else None
    if first is not None and first > last:
        raise ConfigurationError(f"--since {first} is after --until {last}")
    # Registry order: stocks_daily first, since other types' silver and Qlib roots read its factors.
    order = list(DATASETS)
    names = sorted(data_types or settings.pipeline.data_types, key=order.index)
    source = open_source(settings)
    lake = Lake(settings.data_root)
    rows: list[tuple[DailyPlan | None, PipelineReport | None]] = []
    with recorded_run(settings, wait=o.wait) as recorder:
        with progress_bar() as bar:
            for name in names:
                try:
                    plan = plan_daily(
                        lake,
                        get_spec(name),
                        source,
                        until=last,
                        lookback=settings.pipeline.daily_lookback_sessions,
                        since=first,
                    )
                except QuantminiError as exc:
                    report = PipelineReport(name, failures=[f"listing the source failed: {exc}"])
                    recorder.add(report)
                    rows.append((None, report))
                    continue
                if plan.status == "not_started" or (plan.complete is None and plan.start is None):
                    rows.append((plan, None))
                    continue
                runner = make_runner(settings, name, RichProgress(bar), recorder.monitor)
                report = runner.run(source if plan.start is not None else None, plan.start, plan.end)
                recorder.add(report)
                rows.append((plan, report))
        render_daily(last, rows)
        print_run_record(recorder)
        failed = [r.data_type for _, r in rows if r is not None and r.failures]
        if failed:
            err_console.print(f"[red]daily run failed for:[/] {', '.join(failed)}", soft_wrap=True)
            sys.exit(1)


def render_daily(until: dt.date, rows: list[tuple[DailyPlan | None, PipelineReport | None]]) -> None:
    """A daily run's summary: one line per data type (what it held, what the source published, what the run
    did; lines, not a table, so a cron mail or a log reads them whole), then every type's notes, warnings
    and failures."""
    console.print(f"[bold]pipeline daily[/] (sessions up to {until})")
    for plan, report in rows:
        if plan is None:
            assert report is not None
            console.print(f"  {report.data_type}: [red]failed[/]", soft_wrap=True)
            continue
        done = plan.describe() if report is None else f"{plan.describe()}; {_daily_result(report)}"
        held = f" (complete up to {plan.complete})" if plan.complete else ""
        console.print(f"  {plan.data_type}{held}: {done}", soft_wrap=True)
    for _, report in rows:
        if report is not None:
            render_messages(report, prefix=f"{report.data_type}: ")
    if all(r is None or (r.did_nothing and not r.failures) for _, r in rows):
        console.print("[green]Nothing new:[/] every data type is as current as its source.")


def _daily_result(report: PipelineReport) -> str:
    """What one data type's run did, in a phrase: files landed, rows, silver and gold."""
    if report.did_nothing and not report.failures:
        return "nothing to do"
    parts = []
    landed = Counter(o.status for o in report.landing)
    fetched = {s: landed[s] for s in ("landed", "republished", "missing") if landed[s]}
    if fetched:
        parts.append(", ".join(f"{n} {s}" for s, n in fetched.items()))
    rows = report.rows
    if rows["in"]:
        parts.append(f"{rows['bronze']:,} rows to bronze, {rows['quarantined']:,} quarantined")
    written = sum(o.written for o in report.silver)
    if written:
        parts.append(f"{written} silver partition(s)")
    gold = [g.name for g in report.gold if g.status in ("built", "updated")]
    if gold:
        parts.append(f"gold {', '.join(gold)} updated")
    if report.failures:
        parts.append(f"[red]{len(report.failures)} failure(s)[/]")
    return "; ".join(parts) or "up to date"


def progress_bar() -> Progress:
    """The rich progress display used by pipeline commands: files or bytes, rate, elapsed and ETA."""
    return Progress(
        TextColumn("[bold]{task.description:<24}"),
        BarColumn(),
        _AmountColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    )


def render_report(report: PipelineReport) -> None:
    """Print what a pipeline run did: landing, rows per layer, quarantine reasons, timings, then warnings,
    kept raw versions and failures (one line each)."""
    landing = {
        s: sum(1 for o in report.landing if o.status == s)
        for s in ("landed", "republished", "unchanged", "missing", "deleted_upstream")
    }
    ingest = {
        s: sum(1 for o in report.ingest if o.status == s) for s in ("ingested", "unchanged", "not_landed")
    }
    rows = report.rows
    title = report.data_type
    if report.sessions:
        title += f": {len(report.sessions)} sessions"
    elif "landing" in report.timings:
        title += ": no XNYS session in the range"
    table = Table(title=title, show_header=True)
    table.add_column("layer")
    table.add_column("result")
    table.add_row("landing", ", ".join(f"{v} {k}" for k, v in landing.items() if v) or "-")
    table.add_row("bronze files", ", ".join(f"{v} {k}" for k, v in ingest.items() if v) or "-")
    table.add_row(
        "rows",
        f"{rows['in']:,} in = {rows['bronze']:,} bronze + {rows['quarantined']:,} quarantined "
        f"+ {rows['duplicates']:,} duplicates",
    )
    if report.reference_added:
        table.add_row("reference", ", ".join(f"{k} +{v}" for k, v in report.reference_added.items()))
    if report.factors is not None:
        f = report.factors
        table.add_row(
            "factors",
            f"{f.splits_used} splits + {f.dividends_used} dividends applied, {f.rejected} rejected, "
            f"{f.pending} pending (dated after the last session); {f.intervals} factor spans",
        )
        e = f.entities
        table.add_row(
            "entities",
            f"{e.entities:,} companies traded: {e.renamed} renamed (one series each), {e.reused} tickers "
            f"reused by another company ({e.inferred} inferred from bars)",
        )
    for outcome in report.silver:
        if outcome.skipped:
            table.add_row(f"silver {outcome.table}", f"skipped: {outcome.skipped}")
        elif not outcome.sessions:
            table.add_row(f"silver {outcome.table}", "nothing to build: no bronze partitions yet")
        else:
            table.add_row(
                f"silver {outcome.table}",
                f"{outcome.written}/{outcome.sessions} partitions written ({outcome.rows:,} rows)",
            )
            shown = list(outcome.tally.items())
            for phrase, count in shown[:SUMMARY_LINES]:
                table.add_row("", f"{phrase}: {count:,} rows")
            if len(shown) > SUMMARY_LINES:
                table.add_row("", f"… and {len(shown) - SUMMARY_LINES} more")
    for gold in report.gold:
        name = f"gold {gold.name}"
        if gold.status == "no_input":
            table.add_row(name, "nothing to build: no silver partitions yet")
            continue
        detail = f"{gold.status}: {gold.symbols:,} symbols × {gold.calendar_days:,} sessions"
        changes = []
        if gold.appended:
            changes.append(f"{gold.appended} session(s) appended")
        if gold.rewound_to:
            changes.append(f"re-appended from {gold.rewound_to} (its inputs changed)")
        if gold.rewritten:
            changes.append(f"{gold.rewritten} symbol(s) rewritten (new corporate actions)")
        if gold.repaired:
            changes.append(f"{gold.repaired} symbol(s) repaired (files missing or short)")
        if changes:
            detail += "; " + ", ".join(changes)
        if gold.holes:
            detail += f"; {len(gold.holes)} session(s) without data"
        for label, sessions in gold.joined:
            if sessions:
                detail += f"; {label} on {sessions:,} session(s)"
        table.add_row(name, detail)
        if gold.status in ("built", "updated"):
            table.add_row("", f"written: {gold.root}")
        for old, new in gold.renamed:
            table.add_row("", f"symbol {old!r} is stored as {new!r} (qlib cannot read it as is)")
        if gold.skipped:
            table.add_row("", f"{len(gold.skipped)} symbol(s) skipped: qlib cannot store them (see below)")
    for markets in report.markets:
        name = f"markets {markets.root.parent.name}/{markets.root.name}"
        files = ", ".join(f"{universe} {count:,}" for universe, count in markets.markets) or "none"
        detail = f"{markets.status}: {files} (instruments per market file)"
        if markets.read:
            detail += f"; {markets.read} silver session(s) read"
        if markets.rewound_to:
            detail += f", from {markets.rewound_to} (its memberships changed)"
        table.add_row(name, detail)
    for stage, why in report.skipped.items():
        table.add_row(stage, f"skipped: {why}")
    table.add_row(
        "timings",
        ", ".join(f"{k} {v:.2f}s" for k, v in report.timings.items()) + f" ({report.executor} executor)",
    )
    console.print(table)
    reasons = report.quarantine_reasons
    if reasons:
        q = Table(title="quarantined rows by reason")
        q.add_column("reason")
        q.add_column("rows", justify="right")
        for reason, count in reasons.most_common():
            q.add_row(reason, f"{count:,}")
        console.print(q)
    render_messages(report)


def render_messages(report: PipelineReport, prefix: str = "") -> None:
    """The run's notes, warnings, kept raw versions and failures, one line each on stderr (each after
    ``prefix``, e.g. the data type in a daily run's summary)."""
    for note in report.notes:
        err_console.print(f"[yellow]note:[/] {escape(prefix + redact(note))}", soft_wrap=True)
    for warning in report.warnings:
        err_console.print(f"[yellow]warning:[/] {escape(prefix + warning)}", soft_wrap=True)
    for line in _kept_lines(report.kept_versions):
        err_console.print(f"[yellow]kept:[/] {escape(prefix + line)}", soft_wrap=True)
    for failure in report.failures:
        err_console.print(f"[red]failed:[/] {escape(prefix + redact(failure))}", soft_wrap=True)


def _kept_lines(kept: list[KeptVersion]) -> list[str]:
    """Where previous raw versions are kept: one line each, or one line for many."""
    if len(kept) <= _KEPT_LINES:
        return [
            f"the previous raw file of {v.session} is kept at {v.path} until bronze accepts a new version"
            for v in kept
        ]
    below = os.path.commonpath([v.path.parent for v in kept])
    return [
        f"the previous raw files of {len(kept)} sessions ({kept[0].session} … {kept[-1].session}) are kept "
        f"below {below} until bronze accepts new versions"
    ]
