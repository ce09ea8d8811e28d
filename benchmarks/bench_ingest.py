"""Benchmark the bronze stage against ``gzip -dc`` and a bare Polars CSV→Parquet conversion.

    uv run python benchmarks/bench_ingest.py [--sessions 3] [--workdir DIR]

Generates realistic vendor files — a stocks-minute day of ~1.8 M rows (4,800 tickers) and an options-day
file of ~490 k rows (6,000 underlyings) per session — lands them, then for each dataset measures in the
same run: ``gzip -dc FILE > /dev/null`` (subprocess, best of 3), a bare Polars ``read_csv`` →
``write_parquet`` of the same files, and quantmini's bronze stage in each processing mode. Each
conversion runs in its own child interpreter, which reports its wall time and peak RSS: its own VmHWM
from ``/proc/self/status`` (``ru_maxrss`` would inherit the parent's peak across fork+exec) and
``RUSAGE_CHILDREN`` for pool workers, so memory figures do not mix. The calendar is loaded before
timing, as in a real run (the runner lists sessions first).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from quantmini.core.calendar import sessions as xnys_sessions
from quantmini.datasets import get_spec
from quantmini.io.lake import Lake
from quantmini.io.source import LocalMirrorSource
from quantmini.pipeline.runner import PipelineReport, PipelineRunner
from quantmini.sample import generate_sample

FIRST = dt.date(2025, 6, 2)
CASES: dict[str, dict[str, Any]] = {
    "stocks_minute": {"tickers": 4800, "minute_tickers": 4800},
    "options_daily": {"tickers": 6000, "option_underlyings": 6000},
}

CHILD_QUANTMINI = """
import datetime as dt, json, resource, sys, time
from pathlib import Path
from quantmini.datasets import get_spec
from quantmini.io.lake import Lake
from quantmini.pipeline.runner import PipelineReport, PipelineRunner
root, name, mode = sys.argv[1:4]
sessions = [dt.date.fromisoformat(s) for s in sys.argv[4:]]
runner = PipelineRunner(Lake(Path(root)), get_spec(name), mode=mode, workers=2, batch_sessions=2)
runner.sessions(sessions[0], sessions[-1])  # loads the calendar, as a real run does
report = PipelineReport(name, sessions=sessions)
t0 = time.perf_counter()
runner.ingest(sessions, report)
seconds = time.perf_counter() - t0
assert not report.failures, report.failures
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
peak = max(hwm, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(json.dumps({"seconds": seconds, "rows": report.rows["in"], "peak_mb": peak / 1024}))
"""

CHILD_POLARS = """
import json, resource, sys, time
import polars as pl
schema = {"ticker": pl.String, "volume": pl.Float64, "open": pl.Float64, "close": pl.Float64,
          "high": pl.Float64, "low": pl.Float64, "window_start": pl.Int64, "transactions": pl.Int64}
out, files = sys.argv[1], sys.argv[2:]
t0 = time.perf_counter()
rows = 0
for i, path in enumerate(files):
    frame = pl.read_csv(path, schema=schema)
    frame.write_parquet(f"{out}/{i}.parquet", compression="zstd", row_group_size=65536)
    rows += frame.height
seconds = time.perf_counter() - t0
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
print(json.dumps({"seconds": seconds, "rows": rows, "peak_mb": peak}))
"""


def child(code: str, *args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def gzip_seconds(files: list[Path], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for path in files:
            subprocess.run(["gzip", "-dc", str(path)], stdout=subprocess.DEVNULL, check=True)
        best = min(best, time.perf_counter() - t0)
    return best


def bench(name: str, work: Path, count: int) -> list[dict[str, Any]]:
    spec = get_spec(name)
    days = xnys_sessions(FIRST, FIRST + dt.timedelta(days=14))[:count]
    source = work / f"{name}-source"
    t0 = time.perf_counter()
    generate_sample(source, days[0], days[-1], data_types=(name,), **CASES[name])
    print(f"{name}: generated {len(days)} sessions in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    lake = Lake(work / f"{name}-lake")
    landing = PipelineReport(name, sessions=days)
    PipelineRunner(lake, spec).land(LocalMirrorSource(source), days, landing)
    files = [source / "flatfiles" / spec.source_key(d) for d in days]
    gz = gzip_seconds(files)
    rows: list[dict[str, Any]] = []
    polars_out = work / f"{name}-polars"
    polars_out.mkdir(exist_ok=True)
    bare = child(CHILD_POLARS, str(polars_out), *map(str, files))
    rows.append({"dataset": name, "run": "bare Polars CSV→Parquet", **bare})
    for mode in ("streaming", "batch", "parallel"):
        shutil.rmtree(lake.bronze_dir(spec), ignore_errors=True)
        shutil.rmtree(lake.manifest_dir("bronze", spec), ignore_errors=True)
        result = child(CHILD_QUANTMINI, str(lake.root), name, mode, *(d.isoformat() for d in days))
        rows.append({"dataset": name, "run": f"quantmini bronze, {mode}", **result})
    # A single file in streaming mode: the per-file figure the < 1 GB budget is about.
    shutil.rmtree(lake.bronze_dir(spec), ignore_errors=True)
    shutil.rmtree(lake.manifest_dir("bronze", spec), ignore_errors=True)
    one = child(CHILD_QUANTMINI, str(lake.root), name, "streaming", days[0].isoformat())
    one_gz = gzip_seconds(files[:1])
    rows.append({"dataset": name, "run": "quantmini bronze, streaming, one file", **one, "gzip": one_gz})
    for row in rows:
        row.setdefault("gzip", gz)
        row["ratio"] = row["seconds"] / row["gzip"]
        row["rows_per_s"] = row["rows"] / row["seconds"]
    size = sum(p.stat().st_size for p in files) / 1e6
    rows.insert(
        0,
        {
            "dataset": name,
            "run": f"gzip -dc ({len(files)} files, {size:.0f} MB gz)",
            "seconds": gz,
            "rows": rows[0]["rows"],
            "peak_mb": None,
            "gzip": gz,
            "ratio": 1.0,
            "rows_per_s": rows[0]["rows"] / gz,
        },
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=3, help="sessions per dataset (default 3)")
    parser.add_argument("--workdir", type=Path, help="scratch directory (default: a temporary one)")
    parser.add_argument("--datasets", nargs="+", default=list(CASES), choices=list(CASES))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        results = [row for name in args.datasets for row in bench(name, Path(tmp), args.sessions)]
    print("| dataset | run | rows | time | × gzip -dc | rows/s | peak RSS |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        peak = "–" if r["peak_mb"] is None else f"{r['peak_mb']:.0f} MB"
        print(
            f"| {r['dataset']} | {r['run']} | {r['rows']:,} | {r['seconds']:.2f} s | {r['ratio']:.2f}× | "
            f"{r['rows_per_s'] / 1e6:.2f} M | {peak} |"
        )


if __name__ == "__main__":
    main()
