"""``quantmini pipeline run``: every stage for a data type and a date range."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from quantmini.cli.common import (
    RichProgress,
    console,
    data_type_option,
    date_range_options,
    lake_options,
    make_runner,
    open_source,
    parse_range,
    progress_bar,
    render_report,
    settings_from,
    source_option,
)


@click.group()
def pipeline() -> None:
    """Run the whole pipeline."""


@pipeline.command()
@data_type_option()
@date_range_options
@source_option
@lake_options
def run(
    data_type: str,
    start_date: str,
    end_date: str,
    source_dir: Path | None,
    data_root: Path | None,
    mode: str | None,
    workers: int | None,
) -> None:
    """landing → bronze → silver → gold for the sessions in [--start-date, --end-date]."""
    start, end = parse_range(start_date, end_date)
    settings = settings_from(data_root, mode, workers, source_dir)
    source = open_source(settings)
    with progress_bar() as bar:
        report = make_runner(settings, data_type, RichProgress(bar)).run(source, start, end)
    if report.did_nothing and not report.failures:
        console.print("[green]Nothing to do:[/] every layer is already up to date for this range.")
    render_report(report)
    if report.failures:
        sys.exit(1)
