"""``quantmini validate``: re-check what the lake holds against its promises."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from quantmini.cli.options import DataTypeChoice, data_root_option, data_type_option

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
    from quantmini.cli.common import console, err_console, optional_range, settings_from
    from quantmini.datasets import get_spec
    from quantmini.io.lake import Lake
    from quantmini.pipeline.validate import check_bronze

    start, end = optional_range(start_date, end_date)
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


@validate.command()
@click.option(
    "--data-type", type=DataTypeChoice(), help="Only this dataset (default: every one with silver)."
)
@click.option("--start-date", help="First session, YYYY-MM-DD (default: the first stored).")
@click.option("--end-date", help="Last session, YYYY-MM-DD (default: the last stored).")
@data_root_option
def silver(
    data_type: str | None, start_date: str | None, end_date: str | None, data_root: Path | None
) -> None:
    """Re-check stored silver partitions of every silver table.

    Schema equals the spec, one session per partition, unique keys, no NaN or infinite values (a
    missing value is null), row count and checksum equal the manifest's, no manifest without a
    partition nor partition without a manifest. Exits 1 with one line per bad partition.
    """
    from collections import Counter

    from quantmini.cli.common import console, err_console, optional_range, settings_from
    from quantmini.datasets import DATASETS, get_spec
    from quantmini.io.lake import Lake
    from quantmini.pipeline.validate import check_silver

    start, end = optional_range(start_date, end_date)
    lake = Lake(settings_from(data_root).data_root)
    specs = [get_spec(data_type)] if data_type else [s for s in DATASETS.values() if s.has_silver]
    checks = [c for spec in specs for c in check_silver(lake, spec, start, end)]
    if not checks:
        console.print("No silver partitions in this range.")
        return
    partitions = Counter(c.table for c in checks)
    bad = [c for c in checks if c.violations]
    broken = Counter(c.table for c in bad)
    for table, count in partitions.items():
        status = f"{broken[table]} invalid" if broken[table] else "ok"
        console.print(f"silver {table}: {count} partitions, {status}")
    for check in bad:
        err_console.print(
            f"invalid: silver {check.table} {check.session}: {'; '.join(check.violations)}",
            soft_wrap=True,
            markup=False,
        )
    if bad:
        sys.exit(1)


@validate.command()
@click.option("--data-type", type=DataTypeChoice(), help="Only this dataset (default: every one with gold).")
@click.option(
    "--adjustment",
    type=click.Choice(["total_return", "split"]),
    default=None,
    help="Only the roots of this adjustment (default: both).",
)
@data_root_option
def gold(data_type: str | None, adjustment: str | None, data_root: Path | None) -> None:
    """Re-read the Qlib roots and check them exactly against the gold state.

    Calendar equals the recorded sessions (sorted, unique, exchange sessions); instruments/all.txt spans
    match the state and every field file's start and length; no infinite values; NaN exactly where an
    instrument has no bar; adjusted values over $factor give the raw ones back; $factor changes only
    where the factor table has a corporate action. Large price (50 %) or volume (300 %) steps without a
    factor change are warnings. Exits 1 with one line per error.
    """
    from quantmini.cli.common import console, err_console, settings_from
    from quantmini.core.adjustment_names import ADJUSTMENTS
    from quantmini.datasets import DATASETS, get_spec
    from quantmini.io.lake import Lake
    from quantmini.pipeline.validate_gold import check_gold

    lake = Lake(settings_from(data_root).data_root)
    specs = [get_spec(data_type)] if data_type else [s for s in DATASETS.values() if s.has_qlib_gold]
    adjustments = [adjustment] if adjustment else list(ADJUSTMENTS)
    checks = [c for spec in specs for a in adjustments for c in check_gold(lake, spec, a)]  # type: ignore[arg-type]
    if not checks:
        console.print("No Qlib roots to check.")
        return
    for check in checks:
        errors, warnings = len(check.errors), len(check.findings) - len(check.errors)
        console.print(
            f"gold {check.name}: {check.instruments} instruments, {check.files} files, "
            f"{errors} errors, {warnings} warnings"
        )
        for finding in check.findings:
            err_console.print(
                f"{finding.severity}: gold {check.name} {finding.line()}", soft_wrap=True, markup=False
            )
    if any(c.errors for c in checks):
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
