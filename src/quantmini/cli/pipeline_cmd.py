"""``quantmini pipeline run``: every stage for a data type and a date range."""

from __future__ import annotations

from pathlib import Path

import click

from quantmini.cli.common import (
    data_type_option,
    date_range_options,
    lake_options,
    run_range,
    source_option,
    wait_option,
)


@click.group()
def pipeline() -> None:
    """Run the whole pipeline."""


@pipeline.command()
@data_type_option()
@date_range_options
@source_option
@lake_options
@wait_option
def run(
    data_type: str,
    start_date: str,
    end_date: str,
    source_dir: Path | None,
    data_root: Path | None,
    mode: str | None,
    workers: int | None,
    executor: str | None,
    scheduler: str | None,
    wait: bool,
) -> None:
    """landing → bronze for the sessions in [--start-date, --end-date], then silver → gold for the lake."""
    run_range(
        data_type,
        start_date,
        end_date,
        source_dir=source_dir,
        data_root=data_root,
        mode=mode,
        workers=workers,
        executor=executor,
        scheduler=scheduler,
        wait=wait,
    )
