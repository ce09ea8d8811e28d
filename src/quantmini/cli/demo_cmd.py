"""``quantmini demo``: generate a realistic sample, run every layer on it, validate, summarise, query."""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from quantmini.cli.options import wait_option

if TYPE_CHECKING:
    from quantmini.config.settings import Settings
    from quantmini.io.lake import Lake

DEMO_DATA_TYPE = "stocks_daily"
_PARAMS_FILE = ".demo-params.json"


@click.command()
@click.option(
    "--data-root",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("quantmini-demo"),
    show_default=True,
    help="Where the demo writes its sample source and its lake.",
)
@click.option(
    "--tickers", type=click.IntRange(8, 5000), default=300, show_default=True, help="Tickers in the sample."
)
@click.option("--start-date", default="2025-06-02", show_default=True, help="First session of the sample.")
@click.option("--end-date", default="2026-05-29", show_default=True, help="Last session of the sample.")
@click.option("--seed", type=int, default=7, show_default=True, help="Seed of the sample generator.")
@wait_option
def demo(data_root: Path, tickers: int, start_date: str, end_date: str, seed: int, wait: bool) -> None:
    """Generate sample data and run landing → bronze → silver → gold on it (no credentials, no network)."""
    from quantmini.cli.common import lake_writer, parse_range, settings_from

    start, end = parse_range(start_date, end_date)
    settings = settings_from(data_root=data_root / "lake")
    # The lake's lock also covers the sample beside it: two demos on one root would write both.
    with lake_writer(settings.data_root, wait=wait):
        _demo(data_root, settings, start, end, tickers, seed)


def _demo(data_root: Path, settings: Settings, start: dt.date, end: dt.date, tickers: int, seed: int) -> None:
    import resource

    from quantmini.cli.common import RichProgress, console, make_runner, progress_bar, render_report
    from quantmini.io.lake import Lake
    from quantmini.io.source import LocalMirrorSource

    t0 = time.perf_counter()
    source_dir = data_root / "source"
    params = {"tickers": tickers, "start": start.isoformat(), "end": end.isoformat(), "seed": seed}
    generated = _ensure_sample(source_dir, params, start, end, tickers, seed)
    generation_s = time.perf_counter() - t0

    with progress_bar() as bar:
        report = make_runner(settings, DEMO_DATA_TYPE, RichProgress(bar)).run(
            LocalMirrorSource(source_dir), start, end
        )
    report.timings = {"sample": generation_s, **report.timings}
    if report.did_nothing and not generated and not report.failures and not report.warnings:
        console.print(
            "[green]Nothing to do:[/] the sample and every layer are already up to date (second run)."
        )
    render_report(report)
    _example_query(Lake(settings.data_root), start, end)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    console.print(
        f"demo finished in {time.perf_counter() - t0:.1f}s (peak memory {peak_mb:,.0f} MB); "
        f"lake at {settings.data_root}, Qlib root at "
        f"{Lake(settings.data_root).qlib_root(DEMO_DATA_TYPE, 'day')}"
    )
    if report.failures:
        sys.exit(1)


def _ensure_sample(
    source_dir: Path, params: dict[str, object], start: dt.date, end: dt.date, tickers: int, seed: int
) -> bool:
    from quantmini.cli.common import console
    from quantmini.sample import generate_sample

    marker = source_dir / _PARAMS_FILE
    try:
        if json.loads(marker.read_text()) == params:
            return False
    except (OSError, ValueError):
        pass
    console.print(f"generating sample data ({tickers} tickers, {start} → {end}) in {source_dir} …")
    generate_sample(source_dir, start, end, tickers=tickers, seed=seed, data_types=(DEMO_DATA_TYPE,))
    marker.write_text(json.dumps(params))
    return True


def _example_query(lake: Lake, start: dt.date, end: dt.date) -> None:
    """Show a split being adjusted away: raw vs adjusted closes around the first forward split."""
    import polars as pl
    from rich.table import Table

    from quantmini.cli.common import console
    from quantmini.io.reference_store import load_reference
    from quantmini.query import query as run_query

    splits = load_reference(lake, "splits")
    if splits is None:
        return
    forward = splits.filter(
        (pl.col("split_to") > pl.col("split_from")) & pl.col("execution_date").is_between(start, end)
    ).sort("execution_date")
    if forward.is_empty():
        return
    split = forward.row(0, named=True)
    day: dt.date = split["execution_date"]
    window = (max(start, day - dt.timedelta(days=4)), min(end, day + dt.timedelta(days=3)))
    fields = ("ticker", "session_date", "close", "volume")
    raw = run_query(lake.root, DEMO_DATA_TYPE, [split["ticker"]], *window, fields=fields, adjusted=False)
    adj = run_query(lake.root, DEMO_DATA_TYPE, [split["ticker"]], *window, fields=fields, adjusted=True)
    table = Table(
        title=f"example query: {split['ticker']} around its "
        f"{split['split_to']:g}:{split['split_from']:g} split on {day}"
    )
    for name in ("session", "raw close", "adjusted close", "raw volume", "adjusted volume"):
        table.add_column(name, justify="right")
    for r, a in zip(raw.iter_rows(named=True), adj.iter_rows(named=True), strict=True):
        table.add_row(
            str(r["session_date"]),
            f"{r['close']:.4f}",
            f"{a['close']:.4f}",
            f"{r['volume']:,.0f}",
            f"{a['volume']:,.0f}",
        )
    console.print(table)
    command = _example_query_command(lake.root, split["ticker"], *window)
    console.print("query it yourself (drop --raw for adjusted prices):", markup=False)
    console.print(f"  {command}", soft_wrap=True, markup=False, highlight=False)


def _example_query_command(root: Path, ticker: str, start: dt.date, end: dt.date) -> str:
    """The ``quantmini data query`` command line showing the raw bars of ``ticker``, ready to paste: run
    through ``uv run`` when the demo was (the ``quantmini`` script is then not on the user's PATH)."""
    launcher = ["uv", "run", "--no-dev"] if "UV_RUN_RECURSION_DEPTH" in os.environ else []
    return shlex.join(
        [
            *launcher,
            "quantmini",
            "data",
            "query",
            "--data-root",
            str(root),
            "--data-type",
            DEMO_DATA_TYPE,
            "--symbols",
            ticker,
            "--start-date",
            start.isoformat(),
            "--end-date",
            end.isoformat(),
            "--raw",
        ]
    )
