"""Layout check: per-session bronze partitions sorted by ticker vs one file per symbol per day.

    uv run python benchmarks/bench_layout.py [--tickers 500] [--days 21] [--row-groups 16384 65536 262144]

Generates a month of stocks-minute files, builds bronze with the pipeline, then writes the same rows as
one Parquet file per (symbol, day) — the first design's layout. DuckDB (fresh connection per query,
best of 3) answers a one-symbol query over the month and a one-session cross-section on both layouts,
each layout using its natural access path (bronze: the dataset glob with a ticker filter / the session's
partition; per-symbol: that symbol's directory / every symbol's file of that day); "ratio" is the
per-symbol layout's time divided by bronze's (above 1: bronze is faster). Bronze is also
rewritten with other row-group sizes to show the pushdown trade-off.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from quantmini.core.calendar import sessions as xnys_sessions
from quantmini.datasets import get_spec
from quantmini.io.lake import Lake
from quantmini.io.source import LocalMirrorSource
from quantmini.pipeline.runner import PipelineReport, PipelineRunner
from quantmini.sample import generate_sample

SPEC = get_spec("stocks_minute")


def timed(sql: str, repeat: int = 3) -> tuple[float, int]:
    best, rows = float("inf"), 0
    for _ in range(repeat):
        con = duckdb.connect()
        t0 = time.perf_counter()
        rows = con.sql(sql).to_arrow_table().num_rows
        best = min(best, time.perf_counter() - t0)
        con.close()
    return best, rows


def per_symbol_layout(lake: Lake, days: list[dt.date], target: Path) -> int:
    files = 0
    for day in days:
        table = pq.read_table(lake.bronze_partition(SPEC, day))
        tickers = table.column("ticker").to_pylist()
        start = 0
        for i in range(1, len(tickers) + 1):
            if i == len(tickers) or tickers[i] != tickers[start]:
                path = target / tickers[start] / f"{day}.parquet"
                path.parent.mkdir(parents=True, exist_ok=True)
                pq.write_table(table.slice(start, i - start), path, compression="zstd")
                files += 1
                start = i
    return files


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tickers", type=int, default=500)
    parser.add_argument("--days", type=int, default=21)
    parser.add_argument("--row-groups", type=int, nargs="+", default=[16_384, 65_536, 262_144])
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    days = xnys_sessions(dt.date(2025, 6, 2), dt.date(2025, 8, 29))[: args.days]
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        generate_sample(
            work / "src",
            days[0],
            days[-1],
            tickers=args.tickers,
            minute_tickers=args.tickers,
            data_types=("stocks_minute",),
        )
        lake = Lake(work / "lake")
        runner = PipelineRunner(lake, SPEC)
        report = PipelineReport(SPEC.name, sessions=days)
        runner.land(LocalMirrorSource(work / "src"), days, report)
        runner.ingest(days, report)
        rows = report.rows["bronze"]
        symbol_dir = work / "per_symbol"
        files = per_symbol_layout(lake, days, symbol_dir)
        symbol = (
            pq.read_table(lake.bronze_partition(SPEC, days[0]), columns=["ticker"])
            .column("ticker")[rows // len(days) // 2]
            .as_py()
        )
        session = days[len(days) // 2]
        cols = "ticker, ts, open, high, low, close, volume"
        layouts = {f"bronze, row groups {n:,}": work / f"bronze-{n}" for n in args.row_groups}
        for n, directory in zip(args.row_groups, layouts.values(), strict=True):
            for day in days:
                target = directory / f"date={day}" / "part.parquet"
                target.parent.mkdir(parents=True)
                pq.write_table(
                    pq.read_table(lake.bronze_partition(SPEC, day)),
                    target,
                    compression="zstd",
                    row_group_size=n,
                    use_dictionary=["ticker", "session_date", "regular_session"],
                )
        print(
            f"{rows:,} bronze rows, {len(days)} sessions, {args.tickers} tickers; per-symbol layout: "
            f"{files:,} files; symbol {symbol!r}, session {session}"
        )
        print("| layout | one symbol, whole month | one session, every symbol |")
        print("|---|---|---|")
        base_symbol, _ = timed(f"SELECT {cols} FROM read_parquet('{symbol_dir}/{symbol}/*.parquet')")
        base_cross, _ = timed(f"SELECT {cols} FROM read_parquet('{symbol_dir}/*/{session}.parquet')")
        print(f"| one file per symbol per day | {base_symbol * 1000:.1f} ms | {base_cross * 1000:.1f} ms |")
        for name, directory in layouts.items():
            one, n_one = timed(
                f"SELECT {cols} FROM read_parquet('{directory}/*/part.parquet', hive_partitioning=true) "
                f"WHERE ticker = '{symbol}'"
            )
            cross, n_cross = timed(
                f"SELECT {cols} FROM read_parquet('{directory}/date={session}/part.parquet')"
            )
            print(
                f"| {name} | {one * 1000:.1f} ms (ratio {base_symbol / one:.2f}, {n_one:,} rows) | "
                f"{cross * 1000:.1f} ms (ratio {base_cross / cross:.1f}, {n_cross:,} rows) |"
            )


if __name__ == "__main__":
    main()
