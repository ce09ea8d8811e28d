"""``quantmini report``: write the lake report, one self-contained HTML file."""

from __future__ import annotations

from pathlib import Path

import click

from quantmini.cli.options import data_root_option


@click.command()
@data_root_option
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="HTML file to write (default: report.html in the lake root).",
)
@click.option(
    "--symbol",
    "symbols",
    multiple=True,
    help="Chart this stock's raw and adjusted closes with its splits and dividends (repeatable).",
)
@click.option("--start-date", help="First session shown, YYYY-MM-DD (default: the first stored).")
@click.option("--end-date", help="Last session shown, YYYY-MM-DD (default: the last stored).")
def report(
    data_root: Path | None,
    output: Path | None,
    symbols: tuple[str, ...],
    start_date: str | None,
    end_date: str | None,
) -> None:
    """Write an HTML report of the lake: coverage, quarantine, row-count anomalies, corporate actions.

    Read-only and built from the manifests and small reference tables (plus the chosen symbols' closes),
    so it stays light on a long history; it opens from disk with no network.
    """
    from quantmini.cli.common import console, optional_range, settings_from
    from quantmini.io.lake import Lake
    from quantmini.report import write_report

    start, end = optional_range(start_date, end_date)
    lake = Lake(settings_from(data_root).data_root)
    path = write_report(lake, output or lake.root / "report.html", symbols, start, end)
    console.print(f"report written to {path} ({path.stat().st_size / 1024:,.0f} KiB)", soft_wrap=True)
