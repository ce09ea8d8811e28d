"""``quantmini data``: stage-by-stage commands (ingest, enrich, convert) and ``query``."""

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
from quantmini.cli.download_cmd import catalog, download
from quantmini.cli.query_cmd import query


@click.group()
def data() -> None:
    """Run single stages and query the lake."""


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
    executor: str | None,
    scheduler: str | None,
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
        executor=executor,
        scheduler=scheduler,
        wait=wait,
        last_stage="bronze",
    )


@data.command()
@data_type_option()
@lake_options
@wait_option
def enrich(
    data_type: str,
    data_root: Path | None,
    mode: str | None,
    workers: int | None,
    executor: str | None,
    scheduler: str | None,
    wait: bool,
) -> None:
    """Build silver: adjustment factors and every declared silver table, incrementally."""
    run_range(
        data_type,
        None,
        None,
        source_dir=None,
        data_root=data_root,
        mode=mode,
        workers=workers,
        executor=executor,
        scheduler=scheduler,
        last_stage="silver",
        with_source=False,
        wait=wait,
    )


@data.command()
@data_type_option()
@lake_options
@wait_option
def convert(
    data_type: str,
    data_root: Path | None,
    mode: str | None,
    workers: int | None,
    executor: str | None,
    scheduler: str | None,
    wait: bool,
) -> None:
    """Build gold: silver if stale, the Qlib roots and the DuckDB catalog, incrementally."""
    run_range(
        data_type,
        None,
        None,
        source_dir=None,
        data_root=data_root,
        mode=mode,
        workers=workers,
        executor=executor,
        scheduler=scheduler,
        with_source=False,
        wait=wait,
    )


data.add_command(query)
data.add_command(download)
data.add_command(catalog)
