"""Benchmark the ``universes`` silver table and the Qlib market files on synthetic stocks_daily bronze.

    uv run python benchmarks/bench_universes.py --workdir DIR [--tickers 5000] [--sessions 1260]

Bronze comes from ``bench_engine_data.generate`` (one extra session is generated for the update case),
with a ``tickers`` reference table of random vendor types (3 % of tickers have no record). Each
measurement runs in its own child interpreter and reports wall time and peak RSS (VmHWM):

* the universes table's full build (every session, through the silver stage's planner and tasks), beside
  the main silver table's build on the same lake for scale;
* the market files' full build from every universes partition;
* one new session: its universes partition, then the market files (reading that partition alone).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from bench_engine_data import FETCHED, SPEC, _status, add_sessions, generate, make_lake, run_child
from quantmini.core.calendar import sessions as xnys_sessions
from quantmini.core.reference import TICKERS_SCHEMA
from quantmini.io.lake import Lake
from quantmini.io.reference_store import store_reference

ENGINE_DATA = str(Path(__file__).with_name("bench_engine_data.py"))
TYPES = {"CS": 0.70, "ETF": 0.12, "PFD": 0.05, "WARRANT": 0.04, "ADRC": 0.03, "ETN": 0.02, "UNIT": 0.02}


def store_tickers(lake: Path, seed: int = 11) -> int:
    """A tickers reference table for the lake's tickers; returns how many have no record."""
    names = pl.scan_parquet(Lake(lake).bronze_dir(SPEC) / "*" / "part.parquet").select("ticker").unique()
    tickers = sorted(names.collect()["ticker"].to_list())
    rng = np.random.default_rng(seed)
    kinds = [*TYPES, "OTHER"]
    weights = [*TYPES.values(), 1 - sum(TYPES.values())]
    drawn = rng.choice(kinds, size=len(tickers), p=weights)
    recorded = rng.random(len(tickers)) >= 0.03
    frame = pl.DataFrame(
        {
            "ticker": [t for t, keep in zip(tickers, recorded, strict=True) if keep],
            "type": [str(k) for k, keep in zip(drawn, recorded, strict=True) if keep],
            "active": True,
        }
    )
    frame = frame.with_columns(
        pl.lit(None, dtype=kind).alias(name)
        for name, kind in TICKERS_SCHEMA.items()
        if name not in frame.columns
    ).select(list(TICKERS_SCHEMA))
    store_reference(Lake(lake), "tickers", frame, FETCHED)
    return int((~recorded).sum())


def child_universes(p: dict[str, Any]) -> dict[str, Any]:
    """The universes part alone, through the silver stage's planner and tasks, inline."""
    from quantmini.config.settings import Settings
    from quantmini.pipeline.factors import PRICE_SOURCE, refresh_factors
    from quantmini.pipeline.partitions import index_partitions
    from quantmini.pipeline.silver import plan_silver, run_silver_task

    lake = Lake(Path(p["lake"]))
    part = next(i for i, s in enumerate(SPEC.silver) if s.name == "universes")
    bronze = index_partitions(lake.manifest_dir("bronze", SPEC), lake.bronze_dir(SPEC))
    calendar = xnys_sessions(bronze.sessions[0] - dt.timedelta(days=60), bronze.sessions[-1])
    factors, _ = refresh_factors(
        lake, index_partitions(lake.manifest_dir("bronze", PRICE_SOURCE), lake.bronze_dir(SPEC))
    )
    t0 = time.perf_counter()
    plans = plan_silver(
        lake,
        SPEC,
        bronze,
        calendar,
        factors,
        budget_bytes=3.4e9,
        concurrency=1,
        parts=[part],
        settings=Settings(),
    )
    written = 0
    for task in plans[0].tasks:
        written += len(run_silver_task(task).rows)
    return {
        "seconds": time.perf_counter() - t0,
        "written": written,
        "peak_mb": _status("self", "VmHWM")["VmHWM"] / 1e6,
    }


def child_markets(p: dict[str, Any]) -> dict[str, Any]:
    """The market files of the day root, from the universes table."""
    from quantmini.pipeline.markets import update_markets

    lake = Lake(Path(p["lake"]))
    root = lake.qlib_root(SPEC.name, "day")
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    outcome = update_markets(lake, root, "universes")
    return {
        "seconds": time.perf_counter() - t0,
        "read": outcome.read,
        "markets": dict(outcome.markets),
        "peak_mb": _status("self", "VmHWM")["VmHWM"] / 1e6,
    }


CHILDREN = {"universes": child_universes, "markets": child_markets}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--tickers", type=int, default=5000)
    parser.add_argument("--sessions", type=int, default=1260)
    args = parser.parse_args()
    master = args.workdir / f"master-{args.tickers}x{args.sessions}"
    lake = args.workdir / "lake"
    generate(master, args.tickers, args.sessions, 1)
    days = make_lake(master, lake, args.sessions)
    untyped = store_tickers(lake)
    rows = []

    def measure(label: str, kind: str, script: str = __file__) -> dict[str, Any]:
        run = run_child(script, kind=kind, lake=str(lake))
        rows.append((label, run))
        print(f"{label}: {run['seconds']:.2f} s, {run['peak_mb']:.0f} MB", file=sys.stderr)
        return run

    measure("main silver table, full build (for scale)", "silver_main", ENGINE_DATA)
    measure("universes table, full build", "universes")
    full = measure("market files, full build", "markets")
    all_days = [dt.date.fromisoformat(d) for d in json.loads((master / "_meta.json").read_text())["days"]]
    add_sessions(master, lake, [all_days[len(days)]])
    measure("+1 session: universes partition", "universes")
    measure("+1 session: market files", "markets")
    print(f"\n{args.tickers:,} tickers × {args.sessions:,} sessions; {untyped} tickers without a record")
    print(f"market files: {full['markets']}\n")
    print("| step | time | peak RSS |\n|---|---|---|")
    for label, run in rows:
        print(f"| {label} | {run['seconds']:.2f} s | {run['peak_mb']:,.0f} MB |")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        params = json.loads(sys.argv[2])
        print(json.dumps(CHILDREN[params["kind"]](params)))
    else:
        main()
