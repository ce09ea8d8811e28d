"""``quantmini validate``: re-check what the lake holds against its promises."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from quantmini.cli.options import data_root_option, data_type_option

if TYPE_CHECKING:
    from rich.table import Table

    from quantmini.pipeline.validate import PartitionCheck


@click.group()
def validate() -> None:
    """Re-check stored layers."""


@validate.command()
@data_type_option(default=None)
@click.option("--start-date", help="First session, YYYY-MM-DD (default: the first stored).")
@click.option("--end-date", help="Last session, YYYY-MM-DD (default: the last stored).")
@data_root_option
def bronze(data_type: str, start_date: str | None, end_date: str | None, data_root: Path | None) -> None:
    """Re-check stored bronze partitions and print their quality reports.

    Schema equals the spec, sorted, one session per partition, unique keys, every row rule holds, row
    count and checksum equal the manifest's. Exits 1 with one line per bad partition.
    """
    from quantmini.cli.common import console, err_console, parse_range, settings_from
    from quantmini.core.calendar import parse_date
    from quantmini.datasets import get_spec
    from quantmini.io.lake import Lake
    from quantmini.pipeline.validate import check_bronze

    start: dt.date | None
    end: dt.date | None
    if start_date and end_date:
        start, end = parse_range(start_date, end_date)
    else:
        start = parse_date(start_date, "--start-date") if start_date else None
        end = parse_date(end_date, "--end-date") if end_date else None
    spec = get_spec(data_type)
    checks = check_bronze(Lake(settings_from(data_root).data_root), spec, start, end)
    if not checks:
        console.print(f"No bronze partitions of {data_type} in this range.")
        return
    console.print(_report(data_type, checks))
    bad = [c for c in checks if c.violations]
    for check in bad:
        err_console.print(
            f"invalid: bronze {data_type} {check.session}: {'; '.join(check.violations)}", soft_wrap=True
        )
    if bad:
        sys.exit(1)


def _report(data_type: str, checks: list[PartitionCheck]) -> Table:
    from rich.table import Table

    table = Table(title=f"bronze {data_type}: {len(checks)} partitions")
    for name, justify in (
        ("session", "left"),
        ("rows in", "right"),
        ("bronze", "right"),
        ("quarantined", "right"),
        ("duplicates", "right"),
        ("reasons", "left"),
        ("status", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for check in checks:
        quality = check.quality
        reasons = quality.get("reasons") or {}
        text = ", ".join(f"{k} {v:,}" for k, v in sorted(reasons.items()) if v) or "-"
        table.add_row(
            str(check.session),
            _count(quality.get("rows_in")),
            f"{check.rows:,}",
            _count(quality.get("rows_quarantined")),
            _count(quality.get("duplicates")),
            text,
            "[red]invalid[/]" if check.violations else "[green]ok[/]",
        )
    return table


def _count(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) else "?"
