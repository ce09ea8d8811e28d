"""``quantmini runs``: the run records every pipeline command leaves in ``<data_root>/_runs/``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from quantmini.cli.options import data_root_option

_FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
)


@click.group()
def runs() -> None:
    """Show what past pipeline runs did (time, memory, rows per stage)."""


@runs.command("list")
@data_root_option
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True, help="Newest runs shown.")
@_FORMAT
def list_(data_root: Path | None, limit: int, fmt: str) -> None:
    """The newest runs: id, command, status, duration, peak memory."""
    from rich.table import Table

    from quantmini.cli.common import console, settings_from
    from quantmini.pipeline.run_record import list_runs

    records = list_runs(settings_from(data_root).data_root)[:limit]
    if fmt == "json":
        click.echo(json.dumps(records, indent=2))
        return
    table = Table(title="runs (newest first)")
    table.add_column("run id", no_wrap=True, min_width=30)  # whole: it is what `runs show` takes
    for name, justify in (("status", "left"), ("wall", "right"), ("peak RSS", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    table.add_column("command", overflow="fold")
    for record in records:
        table.add_row(
            record["run_id"],
            record["status"],
            _seconds(record.get("wall_s")),
            _bytes(max((s["peak_rss_bytes"] for s in record.get("stages", [])), default=None)),
            record.get("command", ""),
        )
    console.print(table)


@runs.command()
@data_root_option
@click.argument("run_id")
@_FORMAT
def show(data_root: Path | None, run_id: str, fmt: str) -> None:
    """One run in full: RUN_ID is a run id, a unique prefix of one, or ``latest``."""
    from rich.markup import escape
    from rich.table import Table

    from quantmini.cli.common import console, settings_from
    from quantmini.pipeline.run_record import find_run

    record = find_run(settings_from(data_root).data_root, run_id)
    if fmt == "json":
        click.echo(json.dumps(record, indent=2))
        return
    versions = ", ".join(f"{k} {v}" for k, v in record["versions"].items())
    e = record["execution"]
    lock = record["lock"]
    lines = [
        f"run {record['run_id']}: {record['status']}",
        f"command: {record['command']}",
        f"started {record['started']}, ended {record['ended'] or '-'} ({_seconds(record['wall_s'])})",
        f"versions: {versions}",
        f"execution: {', '.join(e['executors']) or e['mode']} executor, mode {e['mode']}, "
        f"{e['workers']} workers, batch {e['batch_sessions']}, memory budget {e['memory_budget_gb']} GB",
        f"lock: waited {lock['waited_s']:.1f} s for {lock['holder']}" if lock["holder"] else "lock: no wait",
    ]
    for line in lines:
        console.print(escape(line), soft_wrap=True, highlight=False)
    table = Table(title="stages")
    table.add_column("stage")
    figures = ("wall", "CPU (+workers)", "peak RSS", "rows in", "rows out", "bytes in", "bytes out", "files")
    for name in figures:
        table.add_column(name, justify="right")
    for s in record["stages"]:
        status = "" if s["status"] == "ok" else f" ({s['status']})"
        table.add_row(
            f"{s['data_type']} {s['name']}{status}",
            _seconds(s["wall_s"]),
            f"{_seconds(s['cpu_s'])} (+{s['children_cpu_s']:.2f})",
            _bytes(s["peak_rss_bytes"]),
            *(_count(s[k]) for k in ("rows_in", "rows_out")),
            *(_bytes(s[k]) for k in ("bytes_in", "bytes_out")),
            _count(s["files"]),
        )
    console.print(table)
    for lowering in record["memory_lowerings"]:
        console.print(escape(_lowering(lowering)), soft_wrap=True, highlight=False)
    for failure in record["failures"]:
        console.print(f"[red]failed:[/] {escape(failure)}", soft_wrap=True, highlight=False)


def _lowering(m: dict[str, Any]) -> str:
    return (
        f"memory: at {m['at']} ({m['data_type']} {m['stage']}) RSS {_bytes(m['rss_bytes'])} over "
        f"{_bytes(m['budget_bytes'])}: tasks at a time {m['concurrency_from']} → {m['concurrency_to']}, "
        f"chunk budget {_bytes(m['chunk_budget_from'])} → {_bytes(m['chunk_budget_to'])}"
    )


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def _bytes(value: int | None) -> str:
    if value is None:
        return "-"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= size:
            return f"{value / size:,.1f} {unit}"
    return f"{value} B"


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"
