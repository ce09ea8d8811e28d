"""The feature library: Qlib's Alpha158 computed by the silver stage, against qlib's own Alpha158 handler
reading the same prices from the lake's Qlib root.

    uv run python benchmarks/bench_features.py --workdir DIR [--small] [--repeat 3] [--profile]

Data (generated once per size and seed under ``--workdir``, reused by later runs): daily bars of
``--tickers`` instruments over ``--sessions`` XNYS sessions up to 2025-12-31, plus one more session that
the incremental case appends. Prices follow a one-factor model — a market proxy ``SPY`` (near $210 at
the start, volatility regimes) and per-ticker betas and fat-tailed idiosyncratic returns — at levels from
a few dollars to several hundred; volumes are log-normal per ticker, higher on large moves. 20 % of the
tickers list late, 8 % delist, 4 % are halted once for 1–40 sessions, 0.2 % of bars are missing at
random; forward splits (above $250) and reverse splits (below $1.50) move raw prices and volumes; 35 %
of the tickers pay quarterly dividends and drop by them. Bronze partitions and manifests are written in
the lake layout by the lake's own Parquet writer (``bench_engine_data.write_bronze``), the splits and
dividends stored as reference tables, and the pipeline itself builds the factor tables, the main silver
table and the Qlib root (``PipelineRunner.run(None)``, default settings).

Each measurement runs in a fresh child interpreter; imports (and, for quantmini, loading the compiled
kernels from numba's cache; for qlib, ``qlib.init``) happen before the clock starts and are reported
apart. Peak memory is the summed RSS of the child and its pool workers, sampled every 100 ms. Runs of the
different cases alternate; each is repeated ``--repeat`` times and the median shown, with every run.

* ``qlib``: ``Alpha158(instruments="all", start_time, end_time, infer_processors=[], learn_processors=[])``
  then ``fetch(col_set="feature")`` on the root, ``qlib.init(kernels=2)`` (qlib's joblib pool, 2 processes);
* ``engine``: the silver stage's own path for one feature set — bronze index, ``plan_silver`` for the
  set's part, ``run_silver_task`` for every task through the run's executor (``streaming``: in process;
  ``parallel``: 2 spawned processes), partitions and manifests written; the factor tables are refreshed
  first, outside the clock (a run does that once for every silver table);
* ``transform``: the set's transform alone on the same tasks' windows (read beforehand), summed;
* ``incremental``: one more session's bronze added to the lake (hard link + manifest), then ``engine``
  (streaming): one partition written; the session is removed again afterwards;
* ``--profile``: the streaming engine run of alpha158 under cProfile, with the numba kernels timed by
  wrappers: where the time goes.

Every run also checks agreement: qlib's values for a sample of instruments (the split, halted and
late-listed ones among them) against the silver table (|Δ| ≤ 1e-4·max(1, |qlib|), or both missing).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime as dt
import io
import json
import math
import pstats
import shutil
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from bench_engine_data import (
    SPEC,
    TRASH,
    TreeMemory,
    _id,
    _status,
    add_sessions,
    bar_table,
    discard,
    history_sessions,
    run_child,
    ticker_names,
    write_bronze,
)
from quantmini.core.calendar import sessions as xnys_sessions
from quantmini.core.qlib_encoding import stored_symbol
from quantmini.core.reference import DIVIDENDS_SCHEMA, SPLITS_SCHEMA
from quantmini.io.lake import Lake
from quantmini.io.reference_store import store_reference

FETCHED = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
SETS = ("alpha158", "alpha360", "ta")
QUARTER = 63  # sessions between a payer's ex-dates
TOLERANCE = 1e-4
SAMPLE_INSTRUMENTS = 40


# --------------------------------------------------------------------------------------------- data


def generate(master: Path, tickers: int, sessions: int, seed: int) -> dict[str, Any]:
    """Bronze partitions + manifests of ``sessions + 1`` sessions below ``master`` (the last one is the
    session the incremental case appends: no corporate action on it), the corporate actions in
    ``master/_actions/``; returns (and stores as ``_meta.json``) what was generated."""
    meta_path = master / "_meta.json"
    if meta_path.exists():
        return dict(json.loads(meta_path.read_text()))
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    days = history_sessions(sessions + 1)
    total = len(days)
    names = np.array(
        sorted(["SPY", *[t for t in ticker_names(tickers + 5, rng) if t != "SPY"][: tickers - 1]]),
        dtype=object,
    )
    n = len(names)
    spy = int(np.flatnonzero(names == "SPY")[0])
    first = np.where(rng.random(n) < 0.2, rng.integers(1, max(2, total - 40), n), 0)
    delisted = rng.random(n) < 0.08
    last = np.where(delisted, np.minimum(total - 2, first + rng.integers(60, total, n)), total - 1)
    halted = rng.random(n) < 0.04
    halt_from = np.where(halted, rng.integers(0, total, n), -1)
    halt_to = halt_from + np.minimum(40, rng.geometric(1 / 6, n))
    first[spy], last[spy], halt_from[spy] = 0, total - 1, -1
    beta = rng.normal(1.0, 0.35, n).clip(0.2, 2.5)
    idio = rng.uniform(0.008, 0.03, n)
    logp = rng.normal(math.log(40), 1.0, n).clip(math.log(3), math.log(900))
    beta[spy], idio[spy], logp[spy] = 1.0, 0.0, math.log(210)
    scale = np.ones(n)  # raw price = total-return path × scale (splits divide it)
    vol_base = np.exp(rng.normal(math.log(8e5), 1.2, n))
    vol_base[spy] = 8e7
    payer = rng.random(n) < 0.35
    payer[spy] = True
    phase = rng.integers(0, QUARTER, n)
    quarterly_yield = rng.uniform(0.002, 0.01, n)
    quarterly_yield[spy] = 0.0035
    last_close = np.full(n, np.nan)
    regime = 0.0
    splits: list[tuple[str, dt.date, float, float]] = []
    dividends: list[tuple[str, dt.date, float]] = []
    lake = Lake(master)
    rows = 0
    for i, session in enumerate(days):
        alive = (first <= i) & (i <= last)
        regime = 0.97 * regime + 0.17 * rng.normal()
        market = 0.0003 + 0.009 * math.exp(regime) * rng.standard_t(4) / math.sqrt(2.0)
        ret = beta * market + idio * rng.standard_t(4, n) / math.sqrt(2.0)
        logp += ret
        raw = np.exp(logp) * scale
        ratio = np.ones(n)
        if i < total - 1:
            draw = rng.random(n)
            forward = alive & (i > first) & (raw > 250) & (draw < 0.004) & (np.arange(n) != spy)
            reverse = alive & (i > first) & (raw < 1.5) & (draw < 0.004)
            ratio[forward] = rng.choice([2.0, 3.0, 4.0], int(forward.sum()))
            ratio[reverse] = 0.1
        for t in np.flatnonzero(ratio != 1.0):
            to, frm = (ratio[t], 1.0) if ratio[t] > 1 else (1.0, 1 / ratio[t])
            splits.append((str(names[t]), session, float(frm), float(to)))
        scale /= ratio
        ex = alive & payer & (i > first) & ((i - phase) % QUARTER == 0) & np.isfinite(last_close)
        ex &= i < total - 1
        cash = np.round(last_close * quarterly_yield, 4)
        for t in np.flatnonzero(ex & (cash > 0)):
            dividends.append((str(names[t]), session, float(cash[t])))
            logp[t] += math.log1p(-cash[t] / last_close[t])
        raw = np.exp(logp) * scale
        present = alive & ~((halt_from <= i) & (i < halt_to)) & (rng.random(n) > 0.002)
        idx = np.flatnonzero(present)
        cents = raw[idx] >= 1
        close = np.where(cents, np.round(raw[idx], 2), np.round(raw[idx], 4)).clip(min=0.0001)
        sigma = np.abs(ret[idx]) + np.where(idx == spy, 0.004, idio[idx])
        previous = np.where(np.isfinite(last_close[idx]), last_close[idx] / ratio[idx], close)
        open_ = previous * np.exp(rng.normal(0, 0.3, len(idx)) * sigma)
        open_ = np.where(cents, np.round(open_, 2), np.round(open_, 4)).clip(min=0.0001)
        top, bottom = np.maximum(open_, close), np.minimum(open_, close)
        high = np.maximum(top, np.round(top * (1 + np.abs(rng.normal(0, 0.5, len(idx))) * sigma), 4))
        low = np.minimum(bottom, np.round(bottom * (1 - np.abs(rng.normal(0, 0.5, len(idx))) * sigma), 4))
        low = low.clip(min=0.0001)
        surprise = np.abs(ret[idx]) / np.where(idx == spy, 0.009, idio[idx])
        volume = vol_base[idx] / scale[idx] * np.exp(rng.normal(0, 0.45, len(idx)) + 0.25 * surprise)
        volume = np.round(volume).clip(min=100)
        transactions = np.maximum(1, volume / rng.uniform(60, 300, len(idx))).astype(np.int64)
        last_close[idx] = close
        table = bar_table(names[idx], session, open_, high, low, close, volume, transactions)
        write_bronze(lake, session, table)
        rows += len(idx)
    actions = master / "_actions"
    actions.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(
        [(t, d, f, to, _id("s", t, d)) for t, d, f, to in splits], schema=SPLITS_SCHEMA, orient="row"
    ).write_parquet(actions / "splits.parquet")
    pl.DataFrame(
        [
            (t, d, c, "USD", "CD", 4, d - dt.timedelta(days=21), d, d + dt.timedelta(days=14), _id("d", t, d))
            for t, d, c in dividends
        ],
        schema=DIVIDENDS_SCHEMA,
        orient="row",
    ).write_parquet(actions / "dividends.parquet")
    meta = {
        "tickers": n,
        "sessions": sessions,
        "days": [d.isoformat() for d in days],
        "rows": rows,
        "splits": len(splits),
        "dividends": len(dividends),
        "late": int((first > 0).sum()),
        "delisted": int(delisted.sum()),
        "halted": int(halted.sum()),
        "split_tickers": sorted({t for t, *_ in splits}),
        "halted_tickers": sorted(str(t) for t in names[halted & (halt_from < last)]),
        "late_tickers": sorted(str(t) for t in names[first > 0]),
        "names": [str(t) for t in names],
        "seconds": time.perf_counter() - started,
    }
    meta_path.write_text(json.dumps(meta))
    return meta


def prepare(work: Path, tickers: int, sessions: int, seed: int) -> dict[str, Any]:
    """The generated master (all sessions) and a lake of the first ``sessions`` sessions whose factor
    tables, main silver table and Qlib root the pipeline built; cached under ``work``."""
    master, lake_root = work / "master", work / "lake"
    meta = generate(master, tickers, sessions, seed)
    ready = work / "_lake.json"
    if ready.exists():
        return meta | json.loads(ready.read_text())
    discard(lake_root)
    days = [dt.date.fromisoformat(d) for d in meta["days"]][:sessions]
    add_sessions(master, lake_root, days)
    lake = Lake(lake_root)
    store_reference(lake, "splits", pl.read_parquet(master / "_actions" / "splits.parquet"), FETCHED)
    store_reference(lake, "dividends", pl.read_parquet(master / "_actions" / "dividends.parquet"), FETCHED)
    built = run_child(__file__, kind="build", lake=str(lake_root))
    ready.write_text(json.dumps({"build": built}))
    return meta | {"build": built}


# ------------------------------------------------------------------------------------ children


def part_index(name: str) -> int:
    return next(i for i, part in enumerate(SPEC.silver) if part.feature_set == name)


def child_build(p: dict[str, Any]) -> dict[str, Any]:
    """The pipeline over the lake's bronze: factor tables, silver (default settings), gold."""
    from quantmini.pipeline.runner import PipelineRunner

    t0 = time.perf_counter()
    report = PipelineRunner(Lake(Path(p["lake"])), SPEC).run(None)
    if report.failures:
        raise SystemExit("; ".join(report.failures))
    return {"seconds": time.perf_counter() - t0, "timings": report.timings}


def warm(name: str) -> float:
    """Compute ``name`` on a tiny window: loads (or, the first time, compiles into numba's cache) every
    kernel the set uses. Returns the seconds it took."""
    from quantmini.core.window import SessionWindow
    from quantmini.features.library import feature_set
    from quantmini.features.silver import compute

    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    days = history_sessions(300)
    frames = []
    for ticker in ("AAA", "SPY"):
        close = 50 * np.exp(np.cumsum(rng.normal(0, 0.01, len(days))))
        frames.append(
            pl.DataFrame(
                {
                    "ticker": ticker,
                    "session_date": days,
                    "open": close,
                    "high": close * 1.01,
                    "low": close * 0.99,
                    "close": close,
                    "volume": rng.uniform(1e5, 1e6, len(days)),
                }
            ).filter(pl.Series(rng.random(len(days)) > 0.05))
        )
    window = SessionWindow(pl.concat(frames), tuple(days), tuple(days[-3:]))
    compute(feature_set("stocks_daily", name), window)
    return time.perf_counter() - t0


def _plan(lake: Lake, name: str, concurrency: int, budget_gb: float) -> tuple[list[Any], float]:
    """The set's silver tasks as the stage plans them, and the factor refresh's seconds."""
    from quantmini.config.settings import Settings
    from quantmini.pipeline.factors import refresh_factors
    from quantmini.pipeline.partitions import index_partitions
    from quantmini.pipeline.runner import data_budget
    from quantmini.pipeline.silver import plan_silver

    bronze = index_partitions(lake.manifest_dir("bronze", SPEC), lake.bronze_dir(SPEC))
    t0 = time.perf_counter()
    factors, _ = refresh_factors(lake, bronze)
    factor_s = time.perf_counter() - t0
    calendar = xnys_sessions(bronze.sessions[0] - dt.timedelta(days=60), bronze.sessions[-1])
    plans = plan_silver(
        lake,
        SPEC,
        bronze,
        calendar,
        factors,
        budget_bytes=data_budget(budget_gb),
        concurrency=concurrency,
        parts=[part_index(name)],
        settings=Settings(),
    )
    return plans[0].tasks, factor_s


def child_engine(p: dict[str, Any]) -> dict[str, Any]:
    """The silver stage's path for one feature set (see the module docstring), timed."""
    from quantmini.pipeline.executor import make_executor
    from quantmini.pipeline.silver import run_silver_task

    lake, name = Lake(Path(p["lake"])), p["set"]
    warm_s = warm(name)
    workers = p["workers"] if p["mode"] == "parallel" else 1
    # The factor tables first, outside the clock (every silver table of a run shares them): planning
    # again below then finds them current, as the stage does.
    _, factor_s = _plan(lake, name, workers, p["budget"])
    monitor = TreeMemory()
    with monitor:
        t0 = time.perf_counter()
        with make_executor(p["mode"], workers=workers) as executor:
            tasks, refresh_s = _plan(lake, name, executor.concurrency, p["budget"])
            plan_s = time.perf_counter() - t0
            written: Counter[str] = Counter()
            failures = []
            for task, result in executor.map(run_silver_task, tasks):
                if isinstance(result, BaseException):
                    failures.append(f"{task.label}: {result!r}")
                else:
                    written["sessions"] += len(result.rows)
                    written["rows"] += sum(result.rows.values())
        seconds = time.perf_counter() - t0
    if failures:
        raise SystemExit("; ".join(failures))
    return {
        "seconds": seconds,
        "plan_s": plan_s,
        "refresh_s": refresh_s,
        "factor_s": factor_s,
        "warm_s": warm_s,
        "tasks": len(tasks),
        "sessions": written["sessions"],
        "rows": written["rows"],
        "peak_mb": max(monitor.peak_sum, _status("self", "VmHWM")["VmHWM"]) / 1e6,
    }


def task_window(lake: Lake, task: Any) -> Any:
    """The ``SessionWindow`` ``run_silver_task`` hands the transform (one ticker range: the whole task)."""
    from quantmini.core.adjustment import session_multipliers
    from quantmini.core.window import FactorContext, SessionWindow
    from quantmini.pipeline.factors import load_factor_tables
    from quantmini.pipeline.silver import _read_input, _window_bars

    part = SPEC.silver[task.part]
    inputs = {
        s.source: _read_input(lake, s, task.sessions if s.window else task.outputs) for s in part.inputs
    }
    events, spans, _ = load_factor_tables(lake)
    multipliers = (
        session_multipliers(events, spans, list(task.sessions)) if not events.is_empty() else pl.DataFrame()
    )
    outputs = set(task.outputs)
    paths = [lake.bronze_partition(SPEC, s) for s in task.present if s in outputs]
    lookback = [lake.bronze_partition(SPEC, s) for s in task.present if s not in outputs]
    bars = _window_bars(SPEC, part, paths, lookback, None)
    context = FactorContext(multipliers, events, spans)
    return SessionWindow(bars, task.sessions, task.outputs, {}, context, inputs, dict(task.settings))


def child_transform(p: dict[str, Any]) -> dict[str, Any]:
    """The set's transform alone on the windows of the stage's tasks (each read before its clock)."""
    lake, name = Lake(Path(p["lake"])), p["set"]
    warm_s = warm(name)
    tasks, _ = _plan(lake, name, 1, p["budget"])
    transform = SPEC.silver[part_index(name)].transform
    seconds, rows, peak = 0.0, 0, 0.0
    for task in tasks:
        window = task_window(lake, task)
        t0 = time.perf_counter()
        out = transform(window)
        seconds += time.perf_counter() - t0
        rows += out.height
        del window, out
    peak = _status("self", "VmHWM")["VmHWM"] / 1e6
    return {"seconds": seconds, "rows": rows, "tasks": len(tasks), "warm_s": warm_s, "peak_mb": peak}


def child_read(p: dict[str, Any]) -> dict[str, Any]:
    """What a researcher does once silver holds the set: read every session of its table (Polars)."""
    import polars as pl

    lake, name = Lake(Path(p["lake"])), p["set"]
    files = sorted(lake.silver_dir(f"{SPEC.name}_{name}").glob("date=*/part.parquet"))
    t0 = time.perf_counter()
    frame = pl.read_parquet(files)
    seconds = time.perf_counter() - t0
    peak = _status("self", "VmHWM")["VmHWM"] / 1e6
    return {"seconds": seconds, "rows": frame.height, "files": len(files), "peak_mb": peak}


def child_qlib(p: dict[str, Any]) -> dict[str, Any]:
    """qlib's Alpha158 handler on the root; optionally the sample instruments' values to a file."""
    import logging

    import qlib
    from qlib.contrib.data.handler import Alpha158

    t0 = time.perf_counter()
    qlib.init(provider_uri=p["root"], region="us", kernels=p["kernels"], logging_level=logging.WARNING)
    init_s = time.perf_counter() - t0
    monitor = TreeMemory()
    with monitor:
        t0 = time.perf_counter()
        handler = Alpha158(
            instruments="all",
            start_time=p["start"],
            end_time=p["end"],
            infer_processors=[],
            learn_processors=[],
        )
        load_s = time.perf_counter() - t0
        features = handler.fetch(col_set="feature")
        seconds = time.perf_counter() - t0
    out = {
        "seconds": seconds,
        "load_s": load_s,
        "init_s": init_s,
        "rows": len(features),
        "columns": int(features.shape[1]),
        "peak_mb": max(monitor.peak_sum, _status("self", "VmHWM")["VmHWM"]) / 1e6,
    }
    if p.get("sample"):
        import pandas as pd

        wanted = set(p["sample"])
        names = features.index.get_level_values("instrument")
        picked = features[names.isin(wanted)]
        if isinstance(picked.columns, pd.MultiIndex):
            picked.columns = picked.columns.get_level_values(-1)
        picked.reset_index().to_parquet(p["out"])
    return out


class KernelClock:
    """Wall seconds and calls of the compiled kernels, by name, through wrappers installed on the
    modules that call them (cProfile does not see calls into numba)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()

    def _wrap(self, fn: Callable[..., Any], label: Callable[..., str]) -> Callable[..., Any]:
        def timed(*args: Any) -> Any:
            t0 = time.perf_counter()
            out = fn(*args)
            key = label(*args)
            self.seconds[key] += time.perf_counter() - t0
            self.calls[key] += 1
            return out

        return timed

    def install(self) -> None:
        import quantmini.features.kernels as kernels

        kernels.rolling = self._wrap(kernels.rolling, lambda op, *_: f"rolling {op}")
        kernels.smooth = self._wrap(kernels.smooth, lambda op, *_: op)


#: (path suffix, function) → key: cumulative seconds of these in the profile.
PROFILED = {
    ("pipeline/silver.py", "plan_silver"): "plan",
    ("pipeline/silver.py", "run_silver_task"): "tasks",
    ("pipeline/silver.py", "_window_bars"): "read",
    ("pipeline/silver.py", "_read_input"): "read_input",
    ("pipeline/factors.py", "load_factor_tables"): "factors",
    ("core/adjustment.py", "session_multipliers"): "factors",
    ("features/silver.py", "compute"): "compute",
    ("features/silver.py", "__init__"): "grid",
    ("features/silver.py", "set_vwap"): "grid",
    ("features/silver.py", "_series"): "series",
    ("features/evaluate.py", "evaluate"): "evaluate",
    ("dataframe/frame.py", "sort"): "to_arrow",
    ("dataframe/frame.py", "select"): "to_arrow",
    ("dataframe/frame.py", "to_arrow"): "to_arrow",
    ("io/parquet.py", "write"): "write",
    ("io/parquet.py", "commit"): "commit",
    ("io/manifest.py", "sha256_file"): "manifests",
    ("io/manifest.py", "write_manifest"): "manifests",
}


def child_profile(p: dict[str, Any]) -> dict[str, Any]:
    """The streaming engine run of one set under cProfile, numba kernels timed by wrappers."""
    from quantmini.pipeline.silver import run_silver_task

    lake, name = Lake(Path(p["lake"])), p["set"]
    warm(name)
    _plan(lake, name, 1, p["budget"])  # factor tables current, as in child_engine
    clock = KernelClock()
    clock.install()
    profiler = cProfile.Profile()
    t0 = time.perf_counter()
    profiler.enable()
    tasks, _ = _plan(lake, name, 1, p["budget"])
    for task in tasks:
        run_silver_task(task)
    profiler.disable()
    seconds = time.perf_counter() - t0
    stats = pstats.Stats(profiler)
    entries: dict[tuple[str, int, str], Any] = stats.stats  # type: ignore[attr-defined]
    cumulative: dict[str, float] = defaultdict(float)
    own: dict[str, float] = defaultdict(float)
    for (path, _, func), (_, _, tottime, cumtime, _) in entries.items():
        for (suffix, wanted), label in PROFILED.items():
            if func == wanted and path.endswith(suffix):
                cumulative[label] += cumtime
        if path.endswith("features/evaluate.py"):
            own[f"evaluate.py {func} (own time)"] += tottime
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats("quantmini", 30)
    listing = "\n".join(line for line in text.getvalue().splitlines() if line.strip())
    return {
        "set": name,
        "seconds": seconds,
        "tasks": len(tasks),
        "cumulative": dict(cumulative),
        "own": dict(own),
        "kernels": dict(clock.seconds),
        "calls": dict(clock.calls),
        "listing": listing,
    }


CHILDREN: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "build": child_build,
    "engine": child_engine,
    "transform": child_transform,
    "qlib": child_qlib,
    "read": child_read,
    "profile": child_profile,
    "warm": lambda p: {"seconds": sum(warm(name) for name in SETS)},
}


# ------------------------------------------------------------------------------------ orchestration


def forget(lake: Path, name: str) -> None:
    """Move the set's silver table and its manifests aside (the next engine run rebuilds it)."""
    table = f"{SPEC.name}_{name}"
    discard(lake / "silver" / table)
    discard(lake / "_manifests" / "silver" / table)


@contextlib.contextmanager
def appended(master: Path, lake_root: Path, day: dt.date, name: str) -> Iterator[None]:
    """The lake with ``day``'s bronze added (as the bronze stage would leave it); afterwards the
    session's bronze and the set's partition for it are removed again."""
    add_sessions(master, lake_root, [day])
    try:
        yield
    finally:
        lake = Lake(lake_root)
        table = f"{SPEC.name}_{name}"
        for path in (
            lake.bronze_partition(SPEC, day),
            lake.manifest("bronze", SPEC, day),
            lake.silver_partition(table, day),
            lake.manifest("silver", table, day),
        ):
            path.unlink(missing_ok=True)
        for directory in (lake.bronze_partition(SPEC, day).parent, lake.silver_partition(table, day).parent):
            with contextlib.suppress(OSError):
                directory.rmdir()


def sample_tickers(meta: dict[str, Any], count: int, seed: int) -> list[str]:
    """SPY, up to 8 each of the split, halted and late-listed tickers, the rest at random."""
    rng = np.random.default_rng(seed)
    chosen = {"SPY"}
    for key in ("split_tickers", "halted_tickers", "late_tickers"):
        pool = meta[key]
        chosen.update(rng.choice(pool, min(8, len(pool)), replace=False).tolist() if pool else [])
    rest = [t for t in meta["names"] if t not in chosen]
    chosen.update(rng.choice(rest, max(0, min(len(rest), count - len(chosen))), replace=False).tolist())
    return sorted(chosen)


def agreement(lake: Path, qlib_file: Path, tickers: list[str]) -> dict[str, Any]:
    """qlib's sample values against the silver alpha158 table: share of values that agree."""
    import pandas as pd

    theirs = pl.from_pandas(pd.read_parquet(qlib_file))
    back = {stored_symbol(t): t for t in tickers}
    theirs = theirs.with_columns(
        pl.col("instrument").replace_strict(back).alias("ticker"),
        pl.col("datetime").cast(pl.Date).alias("session_date"),
    )
    ours = pl.read_parquet(str(lake / "silver" / f"{SPEC.name}_alpha158" / "*" / "part.parquet")).filter(
        pl.col("ticker").is_in(tickers)
    )
    names = [c for c in ours.columns if c not in ("ticker", "session_date")]
    joined = ours.join(theirs, on=["ticker", "session_date"], how="inner", suffix="_q")
    total, agree, worst = 0, 0, Counter[str]()
    for name in names:
        a = joined[name].cast(pl.Float64).fill_null(np.nan).to_numpy()
        b = joined[f"{name}_q"].cast(pl.Float64).fill_null(np.nan).to_numpy()
        same = (np.isnan(a) & np.isnan(b)) | (np.abs(a - b) <= TOLERANCE * np.maximum(1.0, np.abs(b)))
        total += len(a)
        agree += int(same.sum())
        if (~same).sum():
            worst[name] = int((~same).sum())
    # qlib rows of sessions without a bar (halts) are rows the silver table does not have.
    extra = theirs.join(ours, on=["ticker", "session_date"], how="anti")
    return {
        "rows": joined.height,
        "values": total,
        "agree": agree,
        "worst": worst.most_common(6),
        "qlib_only_rows": extra.height,
    }


def spread(runs: list[dict[str, Any]], key: str = "seconds") -> str:
    return ", ".join(f"{r[key]:.2f}" for r in runs)


def med(runs: list[dict[str, Any]], key: str = "seconds") -> float:
    return float(statistics.median(r[key] for r in runs))


def table(header: list[str], rows: list[list[str]]) -> None:
    print("\n| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, help="generated data is cached here (required)")
    parser.add_argument("--small", action="store_true", help="60 instruments × 504 sessions (2 years)")
    parser.add_argument("--tickers", type=int, default=600)
    parser.add_argument("--sessions", type=int, default=2520)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="of the parallel engine runs and qlib")
    parser.add_argument("--budget", type=float, default=4.0, help="pipeline.memory_budget_gb")
    parser.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS))
    parser.add_argument(
        "--info-repeat", type=int, default=1, help="runs of the other sets (streaming only; ta is slow)"
    )
    parser.add_argument("--no-qlib", action="store_true", help="skip qlib's handler (no ratio)")
    parser.add_argument(
        "--profile", nargs="*", choices=SETS, help="profile these sets' engine runs once (default alpha158)"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        params = json.loads(args.child)
        print(json.dumps(CHILDREN[params["kind"]](params)))
        return 0
    if args.workdir is None:
        parser.error("--workdir is required")
    if args.small:
        args.tickers, args.sessions = 60, 504
    started = time.perf_counter()
    work = args.workdir / f"features-{args.tickers}x{args.sessions}-s{args.seed}"
    work.mkdir(parents=True, exist_ok=True)
    TRASH.append(work / ".trash")
    t0 = time.perf_counter()
    meta = prepare(work, args.tickers, args.sessions, args.seed)
    prepared_s = time.perf_counter() - t0
    master, lake = work / "master", work / "lake"
    days = [dt.date.fromisoformat(d) for d in meta["days"]]
    history, extra_day = days[: args.sessions], days[args.sessions]
    build = meta["build"]
    print(
        f"{meta['tickers']:,} instruments × {args.sessions:,} sessions ({history[0]} → {history[-1]}), "
        f"{meta['rows']:,} bars with the appended session; {meta['splits']} splits, {meta['dividends']:,} "
        f"dividends, {meta['late']} late listings, {meta['delisted']} delistings, {meta['halted']} halts. "
        f"Generated in {meta['seconds']:.0f} s; pipeline (factors, silver, Qlib root) "
        + ", ".join(f"{k} {v:.1f} s" for k, v in build["timings"].items())
        + f"; this run's preparation {prepared_s:.1f} s"
    )
    warmed = run_child(__file__, kind="warm")
    print(f"kernels loaded (compiled the first time) in {warmed['seconds']:.1f} s")
    common = {"lake": str(lake), "budget": args.budget}
    results: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    tickers = sample_tickers(meta, SAMPLE_INSTRUMENTS, args.seed)
    qlib_sample = work / "qlib-sample.parquet"

    def measure(name: str, label: str, kind: str, **params: Any) -> None:
        found = run_child(__file__, kind=kind, set=name, **params)
        results[name][label].append(found)
        print(f"  {name} {label}: {found['seconds']:.2f} s", flush=True)

    qlib_root = lake / "gold" / "qlib" / SPEC.name / "day"
    span = {"start": str(history[0]), "end": str(history[-1])}
    others = [name for name in args.sets if name != "alpha158"]
    for r in range(max(args.repeat if "alpha158" in args.sets else 0, args.info_repeat if others else 0)):
        if "alpha158" in args.sets and r < args.repeat:
            if not args.no_qlib:
                sample = {"sample": tickers, "out": str(qlib_sample)} if r == 0 else {}
                measure(
                    "alpha158", "qlib", "qlib", root=str(qlib_root), kernels=args.workers, **span, **sample
                )
            # The transform plans the stage's tasks too: the table is forgotten before it as well; the
            # parallel run's table stays for the incremental case.
            for mode in ("streaming", "transform", "parallel"):
                forget(lake, "alpha158")
                kind = "transform" if mode == "transform" else "engine"
                measure("alpha158", mode, kind, mode=mode, workers=args.workers, **common)
            measure("alpha158", "read", "read", **common)
        for name in others if r < args.info_repeat else []:
            forget(lake, name)
            measure(name, "streaming", "engine", mode="streaming", workers=1, **common)
        print(f"round {r + 1} done ({time.perf_counter() - started:.0f} s)", flush=True)
    for r in range(args.repeat):
        for name in args.sets if r < args.info_repeat else ["alpha158"]:
            with appended(master, lake, extra_day, name):
                measure(name, "incremental", "engine", mode="streaming", workers=1, **common)
            if results[name]["incremental"][-1]["sessions"] != 1:
                raise SystemExit(f"incremental {name}: not exactly one session written")
    report(args, results)
    if "alpha158" in args.sets and not args.no_qlib:
        found = agreement(lake, qlib_sample, tickers)
        print(
            f"\nagreement with qlib on {len(tickers)} instruments ({found['rows']:,} rows, "
            f"{found['values']:,} values): {100 * found['agree'] / max(1, found['values']):.4f} % within "
            f"{TOLERANCE:g}·max(1, |x|) or both missing; differing values by feature: {found['worst']}; "
            f"qlib also returns {found['qlib_only_rows']:,} rows on sessions without a bar (halts), which "
            "silver does not store"
        )
    for name in ["alpha158"] if args.profile == [] else args.profile or []:
        forget(lake, name)
        print_profile(run_child(__file__, kind="profile", set=name, **common))
    shutil.rmtree(TRASH[0], ignore_errors=True)
    print(f"\nwhole benchmark: {time.perf_counter() - started:.0f} s")
    (work / "results.json").write_text(json.dumps(results, default=str))
    return 0


def report(args: argparse.Namespace, results: dict[str, dict[str, list[dict[str, Any]]]]) -> None:
    workers = args.workers
    labels = {
        "qlib": f"qlib `Alpha158` handler + `fetch`, kernels={workers}",
        "streaming": "quantmini silver stage, streaming",
        "parallel": f"quantmini silver stage, parallel ({workers} processes)",
        "transform": "quantmini transform alone (same windows, summed)",
        "read": "quantmini: read the stored set, every session (Polars)",
    }
    rows = []
    for name in args.sets:
        found = results[name]
        base = med(found["qlib"]) if found.get("qlib") else math.nan
        first = True
        for key in ("qlib", "streaming", "parallel", "transform", "read"):
            runs = found.get(key)
            if not runs:
                continue
            seconds = med(runs)
            ratio = "1.0" if key == "qlib" else "–" if math.isnan(base) else f"**{base / seconds:.1f}×**"
            notes = f"{med(runs, 'peak_mb'):,.0f} MB"
            if key == "qlib":
                notes += f"; `qlib.init` {med(runs, 'init_s'):.1f} s before"
            elif key == "read":
                notes += f"; {runs[0]['files']:,} files"
            elif key != "transform":
                notes += f"; plan {med(runs, 'plan_s'):.2f} s, {runs[0]['tasks']} tasks"
            timing = f"{seconds:.2f} s ({spread(runs)})"
            rows.append([name if first else "", labels[key], f"{runs[0]['rows']:,}", timing, ratio, notes])
            first = False
    table(["set", "run", "rows", "seconds (runs)", "qlib ÷ run", "peak RSS (process tree); notes"], rows)
    rows = []
    for name in args.sets:
        found = results[name]
        full, runs = med(found["streaming"]), found["incremental"]
        inc = med(runs)
        rows.append(
            [
                name,
                f"{full:.2f} s",
                f"{inc:.3f} s ({spread(runs)})",
                f"**{inc / full:.4f}**",
                f"{med(runs, 'plan_s'):.3f} s",
                f"{statistics.median(r['seconds'] - r['plan_s'] for r in runs):.3f} s",
                f"{med(runs, 'factor_s'):.2f} s",
                f"{med(runs, 'warm_s'):.2f} s",
                f"{med(runs, 'peak_mb'):,.0f} MB",
            ]
        )
    header = ["set", "full (streaming)", "+1 session", "÷ full", "of which: plan", "task"]
    header += ["factor refresh (before)", "imports + kernel load (before)", "peak RSS"]
    table(header, rows)


def print_profile(found: dict[str, Any]) -> None:
    """Where the engine run's time went, as a tree (cumulative seconds; "other" rows are the rest)."""
    total, cum, kernels = found["seconds"], defaultdict(float, found["cumulative"]), found["kernels"]
    rolling = sum(v for k, v in kernels.items() if k.startswith("rolling") or k in ("EMA", "RMA"))
    lags = sum(v for k, v in kernels.items() if k in ("_session_lags", "_bar_lags"))
    spans = kernels.get("_spans", 0.0)
    compute_parts = cum["grid"] + spans + cum["leaves"] + cum["evaluate"]
    task_parts = cum["read"] + cum["read_input"] + cum["factors"] + cum["compute"] + cum["partition_by"]
    task_parts += cum["to_arrow"] + cum["write"] + cum["commit"] + cum["manifests"]
    tree = [
        ("engine run (plan + tasks)", total),
        ("· plan: manifests, identities, factor refresh", cum["plan"]),
        ("· tasks", cum["tasks"]),
        ("· · read the bronze window (+ minute roll-ups input)", cum["read"] + cum["read_input"]),
        ("· · factor tables and session multipliers", cum["factors"]),
        ("· · transform (`compute`)", cum["compute"]),
        ("· · · grid: bars → ticker × session arrays, $vwap", cum["grid"]),
        ("· · · spans (series starts)", spans),
        ("· · · lag matrices (`_session_lags`/`_bar_lags` + copies)", cum["leaves"]),
        ("· · · · of which the compiled lag kernels", lags),
        ("· · · evaluate (every feature)", cum["evaluate"]),
        ("· · · · compiled rolling kernels (table below)", rolling),
        ("· · · · numpy elementwise ops, `Ref` slices, comparisons", cum["evaluate"] - rolling),
        ("· · · output frame: first columns, DataFrame, float32 cast", cum["compute"] - compute_parts),
        ("· · `partition_by` session", cum["partition_by"]),
        ("· · sort / select / `to_arrow` per session", cum["to_arrow"]),
        ("· · Parquet write (`PieceFile.write`: writer, dictionary choice)", cum["write"]),
        ("· · Parquet close + rename (`PieceFile.commit`)", cum["commit"]),
        ("· · sha256 of the files + manifests", cum["manifests"]),
        ("· · other (Arrow cast, task loop)", cum["tasks"] - task_parts),
    ]
    print(
        f"\nprofile of the {found['set']} engine run (streaming, cProfile on, kernels timed by wrappers): "
        f"{total:.2f} s, {found['tasks']} tasks"
    )
    table(["part", "seconds", "share"], [[k, f"{v:.2f} s", f"{100 * v / total:.1f} %"] for k, v in tree])
    ordered = sorted(kernels.items(), key=lambda kv: -kv[1])
    rows = [[k, f"{found['calls'][k]:,}", f"{v:.2f} s", f"{100 * v / total:.1f} %"] for k, v in ordered]
    own = sorted(found["own"].items(), key=lambda kv: -kv[1])
    rows += [[k, "", f"{v:.2f} s", f"{100 * v / total:.1f} %"] for k, v in own if v >= 0.01]
    table(["compiled kernel / evaluate's own time", "calls", "seconds", "share"], rows)
    print("\n" + found["listing"])


if __name__ == "__main__":
    sys.exit(main())
