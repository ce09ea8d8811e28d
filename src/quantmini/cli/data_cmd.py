"""``quantmini data``: stage-by-stage commands (ingest, enrich, convert) and ``query``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from quantmini.cli.common import (
    data_type_option,
    date_range_options,
    lake_options,
    lake_writer,
    make_runner,
    render_report,
    run_range,
    settings_from,
    source_option,
    wait_option,
)
from quantmini.cli.download_cmd import catalog, download
from quantmini.cli.query_cmd import query
from quantmini.pipeline.runner import PipelineReport


@click.group()
def data() -> None:
    """Run single stages and query the lake."""


def _finish(report: PipelineReport) -> None:
    render_report(report)
    if report.failures:
        sys.exit(1)


@data.command()
@data_type_option()
@date_range_options
@source_option
@lake_options
@wait_option
def ingest(
    data_type: str,
    start_date: str,
    end_date: str,
    source_dir: Path | None,
    data_root: Path | None,
    mode: str | None,
    workers: int | None,
    wait: bool,
) -> None:
    """Land flat files from the source and build bronze (validated, unadjusted Parquet)."""
    run_range(
        data_type,
        start_date,
        end_date,
        source_dir=source_dir,
        data_root=data_root,
        mode=mode,
        workers=workers,
        wait=wait,
        last_stage="bronze",
    )


@data.command()
@data_type_option()
@lake_options
@wait_option
def enrich(data_type: str, data_root: Path | None, mode: str | None, workers: int | None, wait: bool) -> None:
    """Build silver: adjustment factors from corporate actions, adjusted prices, features."""
    settings = settings_from(data_root, mode, workers)
    report = PipelineReport(data_type)
    with lake_writer(settings.data_root, wait=wait):
        make_runner(settings, data_type).enrich(report)
    _finish(report)


@data.command()
@data_type_option()
@lake_options
@wait_option
def convert(
    data_type: str, data_root: Path | None, mode: str | None, workers: int | None, wait: bool
) -> None:
    """Build gold: the Qlib provider root and the DuckDB catalog."""
    settings = settings_from(data_root, mode, workers)
    report = PipelineReport(data_type)
    with lake_writer(settings.data_root, wait=wait):
        make_runner(settings, data_type).convert(report)
    _finish(report)


data.add_command(query)
data.add_command(download)
data.add_command(catalog)
