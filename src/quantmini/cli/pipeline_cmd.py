"""``quantmini pipeline run`` (every stage for a data type and a date range) and ``pipeline daily`` (every
configured data type brought up to what the source has published)."""

from __future__ import annotations

from pathlib import Path

import click

from quantmini.cli.options import (
    DataTypeChoice,
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


@pipeline.command()
@click.option(
    "--data-type",
    "data_types",
    type=DataTypeChoice(),
    multiple=True,
    help="Data type to keep current (repeat for several). Default: pipeline.data_types (all four).",
)
@click.option(
    "--until",
    help="Newest session to consider, YYYY-MM-DD (default: today in New York time). The source's listing "
    "decides what is published.",
)
@click.option(
    "--since",
    help="First session, YYYY-MM-DD, for a data type the lake does not hold yet (others catch up from "
    "their last complete session).",
)
@source_option
@run_options
def daily(
    data_types: tuple[str, ...],
    until: str | None,
    since: str | None,
    source_dir: Path | None,
    options: RunOptions,
) -> None:
    """Catch every configured data type up to the newest session the source has published, then run
    every layer; one summary. Exit 0 when all is current (or nothing was new), 1 when anything failed.

    Safe to schedule: it takes the lake's lock (--wait queues behind a manual run) and re-running it
    does nothing new. Each type restarts from the last session its manifests prove complete, and the
    last pipeline.daily_lookback_sessions sessions are listed again for republished files.
    """
    from quantmini.cli.common import run_daily

    run_daily(data_types, options, until=until, since=since, source_dir=source_dir)
