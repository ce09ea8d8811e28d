"""``quantmini sample generate``: write a deterministic vendor-format sample (flat files + REST JSON)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from quantmini.cli.options import DataTypeChoice

if TYPE_CHECKING:
    from rich.console import Console

    from quantmini.sample import SampleSummary


@click.group()
def sample() -> None:
    """Generate realistic sample data in the vendor's formats (no credentials, no network)."""


@sample.command()
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Directory receiving flatfiles/, rest/ and sample.json.",
)
@click.option("--start-date", required=True, help="First day, YYYY-MM-DD.")
@click.option("--end-date", required=True, help="Last day, YYYY-MM-DD (inclusive).")
@click.option("--tickers", type=click.IntRange(8, None), default=50, show_default=True, help="Tickers.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option(
    "--data-type",
    "data_types",
    type=DataTypeChoice(),
    multiple=True,
    help="Data type to write (repeatable; default: all four aggregates types).",
)
@click.option(
    "--minute-tickers",
    type=click.IntRange(0, None),
    default=None,
    help="Tickers with minute bars (default: min(tickers, 20)).",
)
@click.option(
    "--minute-sessions",
    type=click.IntRange(1, None),
    default=None,
    help="Write minute files for the last N sessions only (default: every session).",
)
def generate(
    out: Path,
    start_date: str,
    end_date: str,
    tickers: int,
    seed: int,
    data_types: tuple[str, ...],
    minute_tickers: int | None,
    minute_sessions: int | None,
) -> None:
    """Write a sample from --start-date to --end-date below --out."""
    from rich.console import Console

    from quantmini.core.calendar import parse_date
    from quantmini.sample import DEFAULT_DATA_TYPES, generate_sample

    start = parse_date(start_date, "--start-date")
    end = parse_date(end_date, "--end-date")
    summary = generate_sample(
        out,
        start,
        end,
        tickers=tickers,
        seed=seed,
        data_types=data_types or DEFAULT_DATA_TYPES,
        minute_tickers=minute_tickers,
        minute_sessions=minute_sessions,
    )
    render_summary(summary, Console(highlight=False))


def render_summary(summary: SampleSummary, console: Console) -> None:
    """Files and rows per data type, corporate actions and defects."""
    from rich.table import Table

    table = Table(title=f"sample in {summary.out} ({summary.sessions} sessions)")
    table.add_column("data type")
    table.add_column("files", justify="right")
    table.add_column("rows", justify="right")
    for name in summary.files:
        table.add_row(name, f"{summary.files[name]:,}", f"{summary.rows[name]:,}")
    console.print(table)
    actions = ", ".join(
        f"{count} {kind.replace('_', ' ')}" for kind, count in summary.corporate_actions.items()
    )
    console.print(f"corporate actions: {actions}")
    console.print(f"defects injected: {summary.defects} (see sample.json)")
