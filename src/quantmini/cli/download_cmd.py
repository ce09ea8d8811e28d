"""``quantmini data download`` (landing only) and ``quantmini data catalog`` (what exists where)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import click

from quantmini.cli.options import (
    RunOptions,
    data_root_option,
    data_type_option,
    date_range_options,
    run_options,
    source_option,
)

_STYLE = {
    "downloaded": "green",
    "available": "cyan",
    "republished upstream": "yellow",
    "not yet published": "dim",
    "missing upstream": "red",
    "deleted upstream": "magenta",
    "exchange holiday": "dim",
}


@click.command()
@data_type_option()
@date_range_options
@source_option
@run_options
def download(
    data_type: str,
    start_date: str,
    end_date: str,
    source_dir: Path | None,
    options: RunOptions,
) -> None:
    """Land flat files (S3 or a local mirror): concurrent, resumable, verified; unchanged files skipped."""
    from quantmini.cli.common import run_range

    run_range(
        data_type,
        options,
        start_date=start_date,
        end_date=end_date,
        source_dir=source_dir,
        last_stage="landing",
    )


@click.command()
@data_type_option()
@date_range_options
@source_option
@data_root_option
def catalog(
    data_type: str, start_date: str, end_date: str, source_dir: Path | None, data_root: Path | None
) -> None:
    """Per date: available / exchange holiday / not yet published / downloaded / republished / missing /
    deleted upstream (landed earlier, kept in the lake)."""
    from rich.table import Table

    from quantmini.cli.common import console, open_source, parse_range, settings_from
    from quantmini.datasets import get_spec
    from quantmini.io.lake import Lake
    from quantmini.pipeline.catalog import catalog_range

    start, end = parse_range(start_date, end_date)
    settings = settings_from(data_root, source_dir=source_dir)
    spec = get_spec(data_type)
    entries = catalog_range(
        Lake(settings.data_root), open_source(settings), spec, start, end, dt.datetime.now(dt.UTC)
    )
    table = Table(title=f"{data_type} {start} → {end}")
    table.add_column("date")
    table.add_column("status")
    table.add_column("upstream size", justify="right")
    for entry in entries:
        style = _STYLE[entry.status]
        size = f"{entry.size:,}" if entry.size is not None else ""
        table.add_row(str(entry.day), f"[{style}]{entry.status}[/]", size)
    console.print(table)
    counts = Counter(entry.status for entry in entries)
    console.print(", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
