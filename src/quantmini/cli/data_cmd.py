"""``quantmini data``: stage-by-stage commands (ingest, enrich, convert), ``query`` and ``status``."""

from __future__ import annotations

from pathlib import Path

import click

from quantmini.cli.download_cmd import catalog, download
from quantmini.cli.options import (
    RunOptions,
    data_type_option,
    date_range_options,
    run_options,
    source_option,
)
from quantmini.cli.query_cmd import query
from quantmini.cli.status_cmd import status


@click.group()
def data() -> None:
    """Run single stages, query the lake and show its status."""


@data.command()
@data_type_option()
@date_range_options
@source_option
@run_options
def ingest(
    data_type: str,
    start_date: str,
    end_date: str,
    source_dir: Path | None,
    options: RunOptions,
) -> None:
    """Land flat files from the source and build bronze (validated, unadjusted Parquet)."""
    from quantmini.cli.common import run_range

    run_range(
        data_type,
        options,
        start_date=start_date,
        end_date=end_date,
        source_dir=source_dir,
        last_stage="bronze",
    )


@data.command()
@data_type_option()
@run_options
def enrich(
    data_type: str,
    options: RunOptions,
) -> None:
    """Build silver: adjustment factors and every declared silver table, incrementally."""
    from quantmini.cli.common import run_range

    run_range(
        data_type,
        options,
        last_stage="silver",
        with_source=False,
    )


@data.command()
@data_type_option()
@run_options
def convert(
    data_type: str,
    options: RunOptions,
) -> None:
    """Build gold: silver if stale, the Qlib roots and the DuckDB catalog, incrementally."""
    from quantmini.cli.common import run_range

    run_range(
        data_type,
        options,
        with_source=False,
    )


data.add_command(query)
data.add_command(download)
data.add_command(catalog)
data.add_command(status)
