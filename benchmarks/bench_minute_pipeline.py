"""The minute silver stage as the pipeline runs it: a daily update (one new session, its 20-session
lookback read in ticker ranges) and a full build, with time and peak RSS against the memory budget.

    uv run python benchmarks/bench_minute_pipeline.py --workdir DIR [--tickers 4800] [--sessions 25]

A full-market sample (every ticker with minute bars) is generated once into ``DIR/source`` with the
project's sample generator, and ``DIR/lake`` is built by the pipeline (stocks_daily, then stocks_minute).
Each measurement is a fresh process that forgets the silver manifests of the last N sessions and runs
the silver stage in streaming mode (``PipelineRunner.enrich``), while a thread samples its RSS every 20 ms.
The baseline is the same process's bronze read of those sessions and their 20-session lookback
(``pl.read_parquet``, every column): what any implementation must read at least once.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

SOURCE_END = dt.date(2025, 11, 4)


def child(lake_dir: Path, sessions: int, budget: float) -> dict[str, float]:
    import polars as pl

    from bench_stage_memory import Sampler
    from quantmini.datasets import get_spec
    from quantmini.io.lake import Lake
    from quantmini.pipeline.runner import PipelineReport, PipelineRunner

    sampler = Sampler()
    lake, spec = Lake(lake_dir), get_spec("stocks_minute")
    every = sorted(lake.bronze_dir(spec).glob("date=*/part.parquet"))
    # The baseline reads what the stage needs: the sessions and the 20 before them, every column.
    partitions = every[-(sessions + 20) :] if sessions + 20 < len(every) else every
    for table in ("stocks_minute", "stocks_minute_rollups"):
        for manifest in sorted(lake.manifest_dir("silver", table).glob("*.json"))[-sessions:]:
            manifest.unlink()
    t0 = time.perf_counter()
    rows = sum(pl.read_parquet(p).height for p in partitions)
    read = time.perf_counter() - t0
    runner = PipelineRunner(lake, spec, memory_budget_gb=budget)
    report = PipelineReport(spec.name)
    with runner._running(report):
        factors = runner.factors(report)
        t0 = time.perf_counter()
        runner.enrich(report, factors)
        silver = time.perf_counter() - t0
    if report.failures:
        raise SystemExit(f"silver failed: {report.failures}")
    return {"rows": rows, "read": read, "silver": silver, "peak_mb": sampler.take()[0]}


def prepare(workdir: Path, tickers: int, sessions: int) -> Path:
    source, lake = workdir / "source", workdir / "lake"
    start = SOURCE_END - dt.timedelta(days=int(sessions * 1.45) + 2)
    if not (source / "sample.json").exists():
        print(f"generating {tickers} tickers × ~{sessions} sessions of minute bars in {source} …", flush=True)
        from quantmini.sample import generate_sample

        generate_sample(
            source, start, SOURCE_END, tickers=tickers, minute_tickers=tickers,
            data_types=("stocks_daily", "stocks_minute"),
        )  # fmt: skip
    if not (lake / "gold" / "qlib" / "stocks_minute").exists():
        print("building the lake (stocks_daily, stocks_minute) …", flush=True)
        for data_type in ("stocks_daily", "stocks_minute"):
            subprocess.run(
                [sys.executable, "-m", "quantmini", "pipeline", "run", "--data-type", data_type,
                 "--start-date", start.isoformat(), "--end-date", SOURCE_END.isoformat(),
                 "--source", str(source), "--data-root", str(lake)],
                check=True, stdout=subprocess.DEVNULL,
            )  # fmt: skip
    return lake


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--tickers", type=int, default=4800)
    parser.add_argument("--sessions", type=int, default=25)
    parser.add_argument("--child", nargs=3, metavar=("LAKE", "SESSIONS", "BUDGET"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(Path(args.child[0]), int(args.child[1]), float(args.child[2]))))
        return 0
    lake = prepare(args.workdir, args.tickers, args.sessions)
    print("| case | budget | sessions | window bars | window read | silver | × read | per session | peak |")
    print("|---|---|---|---|---|---|---|---|---|")
    for case, sessions, budget in (
        ("daily update", 1, 4.0),
        ("daily update", 1, 1.0),
        ("full build", 10**6, 4.0),
    ):
        done = subprocess.run(
            [sys.executable, __file__, "--workdir", str(args.workdir), "--child", str(lake), str(sessions),
             str(budget)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        r = json.loads(done.stdout.strip().splitlines()[-1])
        count = min(sessions, len(list((lake / "bronze" / "stocks_minute").glob("date=*"))))
        print(
            f"| {case} | {budget:g} GB | {count} | {r['rows']:,} | {r['read']:.2f} s | {r['silver']:.2f} s | "
            f"{r['silver'] / r['read']:.1f} | {r['silver'] / count:.2f} s | {r['peak_mb']:,.0f} MB |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
