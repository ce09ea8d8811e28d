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
    import polars as pl

    from quantmini.config.settings import Settings
    from quantmini.io.lake import Lake
    from quantmini.pipeline.run_record import RunRecorder

DEMO_DATA_TYPE = "stocks_daily"
MINUTE_DATA_TYPE = "stocks_minute"
OPTIONS_DATA_TYPE = "options_daily"
#: Feature sets the demo computes unless the configuration names some, and the features it shows.
DEMO_FEATURE_SETS = ("base", "alpha158", "ta")
DEMO_FEATURES = ("KMID", "ROC5", "MA20", "CORD20", "RSI14", "MACD", "ATR14")
#: Qlib roots the demo builds unless the configuration names them: total-return and split-only.
DEMO_ADJUSTMENTS = ("total_return", "split")
#: Underlyings with options in the sample (a class share, an adjusted root, the index SPX among them).
OPTION_UNDERLYINGS = 4
#: Tickers with minute bars, and the last sessions that have them (20 are the baseline of volume_rel_20d).
MINUTE_TICKERS = 8
MINUTE_SESSIONS = 25
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
    from quantmini.cli.common import parse_range, recorded_run, settings_from

    start, end = parse_range(start_date, end_date)
    settings = settings_from(data_root=data_root / "lake")
    if settings.features.stocks_daily == ("base",):  # unless configured, show the feature library too
        features = settings.features.model_copy(update={"stocks_daily": DEMO_FEATURE_SETS})
        settings = settings.model_copy(update={"features": features})
    if settings.gold.adjustment == ("total_return",):  # and the split-only Qlib roots
        gold = settings.gold.model_copy(update={"adjustment": DEMO_ADJUSTMENTS})
        settings = settings.model_copy(update={"gold": gold})
    # The lake's lock also covers the sample beside it: two demos on one root would write both.
    with recorded_run(settings, wait=wait) as recorder:
        _demo(data_root, settings, start, end, tickers, seed, recorder)


def _demo(
    data_root: Path,
    settings: Settings,
    start: dt.date,
    end: dt.date,
    tickers: int,
    seed: int,
    recorder: RunRecorder,
) -> None:
    import resource

    from quantmini.cli.common import (
        RichProgress,
        console,
        make_runner,
        print_run_record,
        progress_bar,
        render_report,
    )
    from quantmini.core.adjustment_names import LABELS
    from quantmini.io.lake import Lake
    from quantmini.io.source import LocalMirrorSource

    t0 = time.perf_counter()
    source_dir = data_root / "source"
    params = {
        "tickers": tickers,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "seed": seed,
        "minute": [MINUTE_TICKERS, MINUTE_SESSIONS],
        "options": OPTION_UNDERLYINGS,
    }
    with recorder.monitor.measure("sample", DEMO_DATA_TYPE) as generation:
        generated = _ensure_sample(source_dir, params, start, end, tickers, seed)

    source = LocalMirrorSource(source_dir)
    minute_start = _minute_start(source_dir, start)
    reports = []
    with progress_bar() as bar:
        runs = ((DEMO_DATA_TYPE, start), (MINUTE_DATA_TYPE, minute_start), (OPTIONS_DATA_TYPE, start))
        for data_type, first in runs:
            runner = make_runner(settings, data_type, RichProgress(bar), recorder.monitor)
            reports.append(runner.run(source, first, end))
            recorder.add(reports[-1])
    reports[0].stages.insert(0, generation)
    quiet = all(r.did_nothing and not r.failures and not r.warnings for r in reports)
    if quiet and not generated:
        console.print(
            "[green]Nothing to do:[/] the sample and every layer are already up to date (second run)."
        )
    for report in reports:
        render_report(report)
    lake = Lake(settings.data_root)
    _example_query(lake, start, end)
    _minute_read(lake)
    _option_fields(lake)
    _features(lake, settings)
    report_path = _report(lake, start, end)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    roots = "; ".join(
        f"{LABELS[a]}: {lake.qlib_root(DEMO_DATA_TYPE, 'day', a)} (and "
        f"{lake.qlib_root(MINUTE_DATA_TYPE, '1min', a)})"
        for a in settings.gold.adjustment
    )
    console.print(
        f"demo finished in {time.perf_counter() - t0:.1f}s (peak memory {peak_mb:,.0f} MB); "
        f"lake at {settings.data_root}, Qlib roots: {roots}"
    )
    console.print(
        f"lake report (open it in a browser): {report_path}", soft_wrap=True, markup=False, highlight=False
    )
    print_run_record(recorder)
    if any(r.failures for r in reports):
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
    generate_sample(
        source_dir,
        start,
        end,
        tickers=tickers,
        seed=seed,
        data_types=(DEMO_DATA_TYPE, MINUTE_DATA_TYPE, OPTIONS_DATA_TYPE),
        minute_tickers=MINUTE_TICKERS,
        minute_sessions=MINUTE_SESSIONS,
        option_underlyings=OPTION_UNDERLYINGS,
    )
    marker.write_text(json.dumps(params))
    return True


def _forward_splits(splits: pl.DataFrame, start: dt.date, end: dt.date) -> pl.DataFrame:
    """The forward splits executed between ``start`` and ``end``, oldest first."""
    import polars as pl

    return splits.filter(
        (pl.col("split_to") > pl.col("split_from")) & pl.col("execution_date").is_between(start, end)
    ).sort("execution_date")


def _example_query(lake: Lake, start: dt.date, end: dt.date) -> None:
    """Show a split being adjusted away: raw vs adjusted closes around the first forward split (total
    return and split-only: they differ by the dividends after the session)."""
    from rich.table import Table

    from quantmini.cli.common import console
    from quantmini.io.reference_store import load_reference
    from quantmini.query import query as run_query

    splits = load_reference(lake, "splits")
    if splits is None:
        return
    forward = _forward_splits(splits, start, end)
    if forward.is_empty():
        return
    split = forward.row(0, named=True)
    day: dt.date = split["execution_date"]
    window = (max(start, day - dt.timedelta(days=4)), min(end, day + dt.timedelta(days=3)))
    fields = ("ticker", "session_date", "close", "volume")
    raw = run_query(lake.root, DEMO_DATA_TYPE, [split["ticker"]], *window, fields=fields, adjusted=False)
    adj = run_query(lake.root, DEMO_DATA_TYPE, [split["ticker"]], *window, fields=fields, adjusted=True)
    only = run_query(lake.root, DEMO_DATA_TYPE, [split["ticker"]], *window, fields=fields, adjustment="split")
    table = Table(
        title=f"example query: {split['ticker']} around its "
        f"{split['split_to']:g}:{split['split_from']:g} split on {day}"
    )
    columns = (
        "session",
        "raw close",
        "adjusted close",
        "split-only close",
        "raw volume",
        "split-only volume",
    )
    for name in columns:
        table.add_column(name, justify="right")
    rows = zip(raw.iter_rows(named=True), adj.iter_rows(named=True), only.iter_rows(named=True), strict=True)
    for r, a, o in rows:
        table.add_row(
            str(r["session_date"]),
            f"{r['close']:.4f}",
            f"{a['close']:.4f}",
            f"{o['close']:.4f}",
            f"{r['volume']:,.0f}",
            f"{o['volume']:,.0f}",
        )
    console.print(table)
    command = _example_query_command(lake.root, split["ticker"], *window)
    console.print(
        "query it yourself (drop --raw for adjusted prices, or use --adjust split for split-only ones):",
        markup=False,
    )
    console.print(f"  {command}", soft_wrap=True, markup=False, highlight=False)


def _report(lake: Lake, start: dt.date, end: dt.date) -> Path:
    """Write the lake report into the lake, charting the sample's split-and-dividend stock."""
    from quantmini.io.reference_store import load_reference
    from quantmini.report import write_report

    splits = load_reference(lake, "splits")
    forward = [] if splits is None else _forward_splits(splits, start, end)["ticker"].to_list()
    return write_report(lake, lake.root / "report.html", forward[:1])


def _minute_start(source_dir: Path, start: dt.date) -> dt.date:
    """First session of the sample's minute files (the minute run covers only those)."""
    files = json.loads((source_dir / "sample.json").read_text())["files"].get(MINUTE_DATA_TYPE, {})
    return dt.date.fromisoformat(min(files)) if files else start


def _minute_read(lake: Lake) -> None:
    """The first minutes of the last session for the symbol that traded most of them, read back from the
    1min Qlib root with the project's reader (the same read with qlib is printed below it)."""
    from rich.table import Table

    from quantmini.cli.common import console
    from quantmini.io.qlib_writer import read_instrument

    root = lake.qlib_root(MINUTE_DATA_TYPE, "1min")
    instruments = root / "instruments" / "all.txt"
    if not instruments.exists():
        return
    spans = [line.split("\t") for line in instruments.read_text().splitlines() if line]
    last = max(span[2] for span in spans)
    day = dt.datetime.fromisoformat(last).date()
    opening = dt.datetime.combine(day, dt.time(9, 30))
    fields = ("open", "close", "volume", "vwap", "factor")
    reads = {
        name: read_instrument(root, "1min", name, fields, opening, opening + dt.timedelta(minutes=9))
        for name, _, end in spans
        if end == last
    }
    symbol = max(reads, key=lambda name: (reads[name]["$close"].is_not_nan().sum(), name))
    table = Table(title=f"1min Qlib root: {symbol} at the open of {day} (adjusted; NaN: no trade)")
    table.add_column("bar", justify="right")
    for name in fields:
        table.add_column(f"${name}", justify="right")
    for row in reads[symbol].iter_rows(named=True):
        values = [f"{row['$' + n]:,.0f}" if n == "volume" else f"{row['$' + n]:,.4f}" for n in fields]
        table.add_row(f"{row['datetime']:%H:%M}", *values)
    console.print(table)
    provider = {"day": str(lake.qlib_root(DEMO_DATA_TYPE, "day")), "1min": str(root)}
    console.print("the same read with qlib (pip install 'quantmini[qlib]'):", markup=False)
    console.print(
        f"  qlib.init(provider_uri={provider!r}, region='us'); D.features([{symbol!r}], "
        f"['$close', '$volume'], '{opening}', '{opening + dt.timedelta(minutes=9)}', freq='1min')",
        soft_wrap=True,
        markup=False,
        highlight=False,
    )


def _option_fields(lake: Lake) -> None:
    """The option aggregates the daily Qlib root carries, for the stock with the most option volume, over
    its last five sessions (read with the project's reader)."""
    import polars as pl
    from rich.table import Table

    from quantmini.cli.common import console
    from quantmini.io.qlib_writer import read_instrument

    table_dir = lake.silver_dir("options_underlying_daily")
    if not table_dir.is_dir():
        return
    totals = (
        pl.scan_parquet(table_dir / "*" / "part.parquet")
        .group_by("ticker")
        .agg(pl.col("iv30").count().alias("n"), pl.col("opt_volume").sum())
        .filter(pl.col("n") > 0)
        .sort("opt_volume", descending=True)
        .collect()
    )
    root = lake.qlib_root(DEMO_DATA_TYPE, "day")
    fields = ("close", "opt_volume", "pcr", "iv30", "skew25")
    for symbol in totals["ticker"].to_list():
        frame = read_instrument(root, "day", symbol, fields, None, None).tail(5)
        if frame.height:
            break
    else:
        return
    table = Table(title=f"option fields of the daily Qlib root: {symbol} (iv30: 30-day ATM implied vol)")
    table.add_column("session", justify="right")
    for name in fields:
        table.add_column(f"${name}", justify="right")
    for row in frame.iter_rows(named=True):
        values = [f"{row['$' + n]:,.0f}" if n == "opt_volume" else f"{row['$' + n]:,.4f}" for n in fields]
        table.add_row(str(row["datetime"]), *values)
    console.print(table)


def _features(lake: Lake, settings: Settings) -> None:
    """A few features of the configured sets for the most traded stock, over its last five sessions."""
    import polars as pl
    from rich.table import Table

    from quantmini.cli.common import console
    from quantmini.features.library import sets_of

    configured = [s for s in settings.features.of(DEMO_DATA_TYPE) if s != "base"]
    frames = []
    for name in configured:
        fs = sets_of(DEMO_DATA_TYPE)[name]
        directory = lake.silver_dir(fs.table())
        if not directory.is_dir():
            continue
        shown = [f for f in DEMO_FEATURES if f in fs.names]
        frames.append(
            pl.scan_parquet(directory / "*" / "part.parquet").select("ticker", "session_date", *shown)
        )
    if not frames:
        return
    frame = frames[0]
    for other in frames[1:]:
        frame = frame.join(other, on=["ticker", "session_date"], how="left")
    rows = frame.collect()
    if rows.is_empty():
        return
    symbol = rows.drop_nulls().group_by("ticker").len().sort("len", descending=True)["ticker"][0]
    last = rows.filter(pl.col("ticker") == symbol).sort("session_date").tail(5)
    names = [c for c in last.columns if c not in ("ticker", "session_date")]
    table = Table(title=f"features in silver ({', '.join(configured)}): {symbol}")
    table.add_column("session", justify="right")
    for name in names:
        table.add_column(name, justify="right")
    for row in last.iter_rows(named=True):
        table.add_row(
            str(row["session_date"]), *(f"{row[n]:,.4f}" if row[n] is not None else "—" for n in names)
        )
    console.print(table)
    query = [*_launcher(), "quantmini", "data", "query", "--data-root", str(lake.root), "--data-type"]
    query += [DEMO_DATA_TYPE, "--symbols", symbol, "--start-date", str(last["session_date"][0])]
    query += ["--end-date", str(last["session_date"][-1]), "--fields", "session_date", *names[:4]]
    console.print("every feature, with its definition: quantmini features list; query some:", markup=False)
    console.print(f"  {shlex.join(query)}", soft_wrap=True, markup=False, highlight=False)


def _launcher() -> list[str]:
    """How the user starts ``quantmini``: through ``uv run`` when the demo was (the script is then not on
    the user's PATH)."""
    return ["uv", "run", "--no-dev"] if "UV_RUN_RECURSION_DEPTH" in os.environ else []


def _example_query_command(root: Path, ticker: str, start: dt.date, end: dt.date) -> str:
    """The ``quantmini data query`` command line showing the raw bars of ``ticker``, ready to paste."""
    return shlex.join(
        [
            *_launcher(),
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
