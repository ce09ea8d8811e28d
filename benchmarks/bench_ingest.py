"""Benchmark the bronze stage against ``gzip -dc`` and a bare Polars CSV→Parquet conversion.

    uv run python benchmarks/bench_ingest.py [--sessions 3] [--repeat 3] [--workdir DIR]

Generates realistic vendor files — a stocks-minute day of ~1.8 M rows (4,800 tickers) and an options-day
file of ~490 k rows (6,000 underlyings) per session — lands them, then for each dataset measures in the
same run: ``gzip -dc FILE > /dev/null`` (subprocess), a bare Polars ``read_csv`` → ``write_parquet`` of
the same files, and quantmini's bronze stage in each processing mode, with the ISA-L inflater and (in
streaming mode) with the zlib fallback, forced by putting an ``isal`` package that fails to import first
on ``PYTHONPATH``. Every run is repeated ``--repeat`` times, each time right after a ``gzip -dc`` pass
over the same files; the table shows the median time and the median of the per-repeat ratios. Each
conversion runs in its own child interpreter, which reports its wall time and peak RSS: its own VmHWM
from ``/proc/self/status`` (``ru_maxrss`` would inherit the parent's peak across fork+exec) and
``RUSAGE_CHILDREN`` for pool workers, so memory figures do not mix. The calendar is loaded before
timing, as in a real run (the runner lists sessions first).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
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
import datetime as dt, json, os, resource, sys, time
from pathlib import Path
from quantmini.datasets import get_spec
from quantmini.io.lake import Lake
from quantmini.pipeline.runner import PipelineReport, PipelineRunner
root, name, mode = sys.argv[1:4]
sessions = [dt.date.fromisoformat(s) for s in sys.argv[4:]]
runner = PipelineRunner(Lake(Path(root)), get_spec(name), mode=mode, workers=2, batch_sessions=2)
from quantmini.io.inflate import FASTEST
assert FASTEST.name == os.environ["BENCH_INFLATER"], FASTEST.name
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


def child(code: str, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True, env=env
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def gzip_seconds(files: list[Path]) -> float:
    t0 = time.perf_counter()
    for path in files:
        subprocess.run(["gzip", "-dc", str(path)], stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def paired(files: list[Path], repeat: int, run: Any) -> dict[str, Any]:
    """``run()`` ``repeat`` times, each right after ``gzip -dc`` of ``files``: median time, median ratio."""
    results, gz, ratios = [], [], []
    for _ in range(repeat):
        gz.append(gzip_seconds(files))
        results.append(run())
        ratios.append(results[-1]["seconds"] / gz[-1])
    return {
        "seconds": statistics.median(r["seconds"] for r in results),
        "rows": results[0]["rows"],
        "peak_mb": statistics.median(r["peak_mb"] for r in results),
        "gzip": statistics.median(gz),
        "ratio": statistics.median(ratios),
    }


def inflater_env(work: Path, inflater: str) -> dict[str, str]:
    """The environment of a child run that uses ``inflater``: zlib is forced by hiding ``isal``."""
    env = {**os.environ, "BENCH_INFLATER": inflater}
    if inflater == "zlib":
        hidden = work / "without-isal" / "isal"
        hidden.mkdir(parents=True, exist_ok=True)
        (hidden / "__init__.py").write_text("raise ImportError('hidden by bench_ingest')\n")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(hidden.parent), env.get("PYTHONPATH")]))
    return env


def bench(name: str, work: Path, count: int, repeat: int) -> list[dict[str, Any]]:
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
    polars_out = work / f"{name}-polars"
    polars_out.mkdir(exist_ok=True)

    def bronze(mode: str, inflater: str, sessions: list[dt.date]) -> dict[str, Any]:
        shutil.rmtree(lake.bronze_dir(spec), ignore_errors=True)
        shutil.rmtree(lake.manifest_dir("bronze", spec), ignore_errors=True)
        args = (str(lake.root), name, mode, *(d.isoformat() for d in sessions))
        return child(CHILD_QUANTMINI, *args, env=inflater_env(work, inflater))

    runs: list[tuple[str, list[Path], Any]] = [
        ("bare Polars CSV→Parquet", files, lambda: child(CHILD_POLARS, str(polars_out), *map(str, files)))
    ]
    for mode, inflater in [
        ("streaming", "zlib"),
        ("streaming", "isal"),
        ("batch", "isal"),
        ("parallel", "isal"),
    ]:
        runs.append(
            (f"quantmini bronze, {mode}, {inflater}", files, lambda m=mode, i=inflater: bronze(m, i, days))
        )
    # A single file in streaming mode: the per-file figure the < 1 GB budget is about.
    for inflater in ("zlib", "isal"):
        runs.append(
            (
                f"quantmini bronze, streaming, {inflater}, one file",
                files[:1],
                lambda i=inflater: bronze("streaming", i, days[:1]),
            )
        )
    rows: list[dict[str, Any]] = []
    for label, measured, run in runs:
        print(f"{name}: {label}", file=sys.stderr)
        rows.append({"dataset": name, "run": label, **paired(measured, repeat, run)})
    for row in rows:
        row["rows_per_s"] = row["rows"] / row["seconds"]
    gz = statistics.median(gzip_seconds(files) for _ in range(repeat))
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
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement (default 3)")
    parser.add_argument("--workdir", type=Path, help="scratch directory (default: a temporary one)")
    parser.add_argument("--datasets", nargs="+", default=list(CASES), choices=list(CASES))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        results = [row for name in args.datasets for row in bench(name, work, args.sessions, args.repeat)]
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
