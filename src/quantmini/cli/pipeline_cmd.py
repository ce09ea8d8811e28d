"""``quantmini pipeline run``: every stage for a data type and a date range."""

from __future__ import annotations

from pathlib import Path

import click

from quantmini.cli.options import (
    RunOptions,
    data_type_option,
    date_range_options,
    run_options,
    source_option,
)


@click.group()
def pipeline() -> None:
    """Run the whole pipeline."""


@pipeline.command()
@data_type_option()
@date_range_options
@source_option
@run_options
def run(
    data_type: str,
    start_date: str,
    end_date: str,
    source_dir: Path | None,
    options: RunOptions,
) -> None:
    """landing → bronze for the sessions in [--start-date, --end-date], then silver → gold for the lake."""
    from quantmini.cli.common import run_range

    run_range(
        data_type,
        options,
        start_date=start_date,
        end_date=end_date,
        source_dir=source_dir,
    )
