"""Synthetic stocks_daily bronze for the engine benchmarks, lake plumbing, and the measured child runs.

Used by ``bench_engine.py``; run on its own only as a child (``--child JSON``). Bronze is generated
directly (no CSV): per session one partition in the exact bronze schema, written by the lake's own Parquet
writer, with a manifest like the bronze stage's. Prices are a mean-reverting random walk per ticker with
fat-tailed returns; ~30 % of tickers list late and ~20 % delist early; 0.5 % of bars are missing at
random; forward splits (raw price > $60) and reverse splits (< $3) happen at ~1 % per ticker-year and move
raw prices and volumes; ~32 % of tickers pay a quarterly dividend (ex-dates on ~0.5 % of tickers per
session) and drop by it. One 2:1 split is in the prices but withheld from the splits table (a late
record, for the "new split inside the history" case).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from quantmini.core.calendar import sessions as xnys_sessions
from quantmini.core.qlib_encoding import is_na_like, qlib_dir_name
from quantmini.core.quality import quality_report
from quantmini.core.reference import DIVIDENDS_SCHEMA, SPLITS_SCHEMA
from quantmini.datasets import get_spec
from quantmini.datasets.base import DatasetSpec
from quantmini.io.lake import Lake
from quantmini.io.manifest import sha256_file, write_manifest
from quantmini.io.parquet import write_parquet_atomic
from quantmini.io.reference_store import store_reference
from quantmini.sample.timeline import midnight_ns

SPEC = get_spec("stocks_daily")
FETCHED = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
LAST_DAY = dt.date(2025, 12, 31)
DIVIDEND_EVERY = 63  # sessions between a payer's ex-dates (quarterly)


def bar_table(
    names: Any,
    session: dt.date,
    open_: Any,
    high: Any,
    low: Any,
    close: Any,
    volume: Any,
    transactions: Any,
) -> pa.Table:
    """One session's daily bars in the stocks_daily bronze schema (bars start at midnight, as the
    vendor's day bars do)."""
    start = midnight_ns(session)
    count = len(names)
    return pa.table(
        {
            "ticker": pa.array(names, pa.string()),
            "session_date": pa.array(np.full(count, session), pa.date32()),
            "ts": pa.array(np.full(count, start), pa.int64()).cast(pa.timestamp("ns", tz="America/New_York")),
            "window_start": pa.array(np.full(count, start), pa.int64()),
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
            "transactions": transactions,
        }
    ).cast(SPEC.bronze_schema)


def ticker_names(count: int, rng: np.random.Generator) -> list[str]:
    """``count`` distinct upper-case tickers of 1–5 letters (1 % class shares like ``BRK.B``), sorted."""
    names: set[str] = set()
    letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    while len(names) < count:
        length = int(rng.choice([1, 2, 3, 4, 5], p=[0.01, 0.06, 0.33, 0.45, 0.15]))
        name = "".join(rng.choice(letters, length))
        if rng.random() < 0.01:
            name += "." + str(rng.choice(letters[:2]))
        if not is_na_like(name):  # Qlib would read NA-like names as NaN: the writer renames them
            names.add(name)
    return sorted(names)


def history_sessions(count: int) -> list[dt.date]:
    """The last ``count`` XNYS sessions up to :data:`LAST_DAY`."""
    days = xnys_sessions(dt.date(2000, 1, 3), LAST_DAY)
    if count > len(days):
        raise SystemExit(f"at most {len(days)} sessions")
    return days[-count:]


def generate(out: Path, tickers: int, sessions: int, extra: int, seed: int = 7) -> dict[str, Any]:
    """Bronze partitions + manifests of ``sessions + extra`` sessions in lake layout below ``out``;
    corporate actions in ``out/_actions/`` (splits, dividends with their session index, the withheld
    split). Returns (and stores as ``out/_meta.json``) what was generated."""
    meta_path = out / "_meta.json"
    if meta_path.exists():
        return dict(json.loads(meta_path.read_text()))
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    days = history_sessions(sessions + extra)
    total = len(days)
    names = np.array(ticker_names(tickers, rng), dtype=object)
    n = tickers
    first = np.where(rng.random(n) < 0.3, rng.integers(0, total, n), 0)
    last = np.where(rng.random(n) < 0.2, first + rng.integers(1, total, n), total - 1).clip(max=total - 1)
    anchor = rng.normal(np.log(30), 1.1, n)
    logp = anchor + rng.normal(0, 0.3, n)
    sigma = rng.uniform(0.008, 0.035, n)
    scale = np.ones(n)
    vol_base = np.exp(rng.normal(np.log(4e5), 1.5, n))
    payer = rng.random(n) < 0.32
    phase = rng.integers(0, DIVIDEND_EVERY, n)
    dividend_yield = rng.uniform(0.002, 0.012, n)
    last_close = np.full(n, np.nan)
    withheld_ticker = int(np.flatnonzero((first == 0) & (last == total - 1))[n // 3 % 50])
    withheld_at = sessions // 2
    splits: list[tuple[str, dt.date, float, float]] = []
    dividends: list[tuple[str, dt.date, float, int]] = []
    lake = Lake(out)
    rows = 0
    for i, session in enumerate(days):
        alive = (first <= i) & (i <= last)
        shock = rng.standard_t(4, n) / np.sqrt(2.0)
        logp = anchor + 0.998 * (logp - anchor) + 0.0002 + sigma * shock
        raw = np.exp(logp) * scale
        # Splits: executed today, bars today already post-split (not on the extra sessions).
        draw = rng.random(n)
        forward = alive & (i > first) & (draw < 1.6e-4) & (raw > 60)
        reverse = alive & (i > first) & (draw < 1.6e-4) & (raw < 3)
        ratio = np.ones(n)
        ratio[forward] = rng.choice([2.0, 3.0, 4.0, 1.5], int(forward.sum()))
        ratio[reverse] = 1 / rng.choice([5.0, 10.0, 20.0], int(reverse.sum()))
        if i >= sessions:
            ratio[:] = 1.0
        if i == withheld_at:
            ratio[withheld_ticker] = 2.0
        for t in np.flatnonzero(ratio != 1.0):
            if not (t == withheld_ticker and i == withheld_at):
                to, frm = (ratio[t], 1.0) if ratio[t] > 1 else (1.0, 1 / ratio[t])
                splits.append((str(names[t]), session, float(frm), float(to)))
        scale /= ratio
        # Dividends: ex today, price drops by the cash amount.
        ex = alive & payer & (i > first) & ((i - phase) % DIVIDEND_EVERY == 0) & np.isfinite(last_close)
        cash = np.round(last_close * dividend_yield, 4)
        for t in np.flatnonzero(ex & (cash > 0)):
            dividends.append((str(names[t]), session, float(cash[t]), i))
            logp[t] += np.log1p(-cash[t] / last_close[t])
        raw = np.exp(logp) * scale
        present = alive & (rng.random(n) > 0.005)
        idx = np.flatnonzero(present)
        digits = np.where(raw[idx] >= 1, 2, 4)
        close = np.round(raw[idx], 4)
        close = np.where(digits == 2, np.round(close, 2), close).clip(min=0.0001)
        move = np.exp(rng.normal(0, sigma[idx] / 2))
        open_ = np.where(digits == 2, np.round(close * move, 2), np.round(close * move, 4)).clip(min=0.0001)
        spread = np.abs(rng.normal(0, sigma[idx] / 2))
        high = np.maximum(np.maximum(open_, close), np.round(np.maximum(open_, close) * (1 + spread), 4))
        low = np.minimum(np.minimum(open_, close), np.round(np.minimum(open_, close) * (1 - spread), 4))
        low = low.clip(min=0.0001)
        volume = np.round(vol_base[idx] / scale[idx] * np.exp(rng.normal(0, 0.6, len(idx))))
        volume = volume.clip(min=100)
        transactions = np.maximum(1, volume / rng.uniform(60, 300, len(idx))).astype(np.int64)
        last_close[idx] = close
        table = bar_table(names[idx], session, open_, high, low, close, volume, transactions)
        write_bronze(lake, session, table)
        rows += len(idx)
    actions = out / "_actions"
    actions.mkdir(parents=True, exist_ok=True)
    split_frame = pl.DataFrame(
        [(t, d, f, to, _id("s", t, d)) for t, d, f, to in splits], schema=SPLITS_SCHEMA, orient="row"
    )
    split_frame.write_parquet(actions / "splits.parquet")
    pl.DataFrame(
        [
            (t, d, c, "USD", "CD", 4, d - dt.timedelta(days=21), d, d + dt.timedelta(days=14), _id("d", t, d))
            for t, d, c, _ in dividends
        ],
        schema=DIVIDENDS_SCHEMA,
        orient="row",
    ).with_columns(pl.Series("index", [i for *_, i in dividends], pl.Int64)).write_parquet(
        actions / "dividends.parquet"
    )
    withheld = {
        "ticker": str(names[withheld_ticker]),
        "execution_date": days[withheld_at].isoformat(),
        "split_from": 1.0,
        "split_to": 2.0,
    }
    meta = {
        "tickers": tickers,
        "sessions": sessions,
        "extra": extra,
        "days": [d.isoformat() for d in days],
        "rows": rows,
        "splits": len(splits),
        "dividends": len(dividends),
        "withheld_split": withheld,
        "seconds": time.perf_counter() - started,
    }
    meta_path.write_text(json.dumps(meta))
    return meta


def _id(kind: str, ticker: str, day: dt.date) -> str:
    return hashlib.sha256(f"{kind}{ticker}{day}".encode()).hexdigest()[:20]


def write_bronze(lake: Lake, session: dt.date, table: pa.Table, spec: DatasetSpec = SPEC) -> None:
    """One bronze partition of ``spec`` and its manifest, as the bronze stage writes them."""
    path = lake.bronze_partition(spec, session)
    write_parquet_atomic(table, path)
    landed = hashlib.sha256(f"landing {session}".encode()).hexdigest()
    write_manifest(
        lake.manifest("bronze", spec, session),
        {
            "input_key": spec.source_key(session),
            "input_sha256": landed,
            "session": session.isoformat(),
            "rows_in": table.num_rows,
            "rows_bronze": table.num_rows,
            "rows_quarantined": 0,
            "duplicates": 0,
            "reasons": {},
            "quality": quality_report(table.num_rows, table.num_rows, 0, {}),
            "output_sha256": sha256_file(path),
            "output_size": path.stat().st_size,
        },
    )


# -- lakes ---------------------------------------------------------------------------------------------

#: Where replaced outputs go instead of being deleted during a run (see :func:`discard`).
TRASH: list[Path] = []


def discard(path: Path) -> None:
    """Move ``path`` out of the way (into ``TRASH[0]``, emptied when the benchmark ends) or delete it.

    The reference disk is mounted with online ``discard``: after tens of thousands of small files are
    deleted, creating files is up to 15× slower for minutes, so deleting between measurements would
    time the previous step's deletions rather than the step."""
    if not path.exists():
        return
    if not TRASH:
        shutil.rmtree(path)
        return
    TRASH[0].mkdir(parents=True, exist_ok=True)
    path.rename(TRASH[0] / f"{path.name}-{time.monotonic_ns()}")


def add_sessions(master: Path, lake: Path, days: list[dt.date]) -> None:
    """Put the bronze partitions (hard links: bronze is never written after ingest) and manifests of
    ``days`` from the generated ``master`` into ``lake``."""
    src, dst = Lake(master), Lake(lake)
    for day in days:
        target = dst.bronze_partition(SPEC, day)
        target.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
        os.link(src.bronze_partition(SPEC, day), target)
        dst.manifest_dir("bronze", SPEC).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src.manifest("bronze", SPEC, day), dst.manifest("bronze", SPEC, day))


def make_lake(master: Path, lake: Path, sessions: int) -> list[dt.date]:
    """A lake holding the first ``sessions`` generated sessions and the actions recorded up to then
    (splits: all but the withheld one; dividends: ex-dates in those sessions)."""
    meta = json.loads((master / "_meta.json").read_text())
    days = [dt.date.fromisoformat(d) for d in meta["days"]][:sessions]
    discard(lake)
    add_sessions(master, lake, days)
    store_reference(Lake(lake), "splits", pl.read_parquet(master / "_actions" / "splits.parquet"), FETCHED)
    store_reference(Lake(lake), "dividends", dividends(master, 0, sessions), FETCHED)
    return days


def dividends(master: Path, start: int, stop: int) -> pl.DataFrame:
    """Dividend records with ex-dates on generated sessions ``[start, stop)``."""
    frame = pl.read_parquet(master / "_actions" / "dividends.parquet")
    return frame.filter(pl.col("index").is_between(start, stop - 1)).drop("index")


def clone(src: Path, dst: Path) -> None:
    """Copy a lake (bronze as hard links, everything else as real copies: gold is appended in place)."""
    discard(dst)
    bronze = src / "bronze" / SPEC.name

    def copy(a: str, b: str) -> None:
        if Path(a).is_relative_to(bronze):
            os.link(a, b)
        else:
            shutil.copy2(a, b)

    shutil.copytree(src, dst, copy_function=copy)


def reset_built(lake: Path, layers: tuple[str, ...] = ("silver", "gold")) -> None:
    """Remove what the silver/gold stages wrote (bronze and reference tables stay)."""
    for layer in layers:
        discard(lake / layer)
        discard(lake / "_manifests" / layer)


def file_ids(lake: Path) -> dict[str, tuple[int, int, int]]:
    """Identity of every gold ``.bin`` and silver partition: path → (inode, size, mtime_ns)."""
    out = {}
    for pattern, base in (("*.bin", lake / "gold"), ("part.parquet", lake / "silver")):
        if base.exists():
            for path in base.rglob(pattern):
                st = path.stat()
                out[str(path.relative_to(lake))] = (st.st_ino, st.st_size, st.st_mtime_ns)
    return out


def changes(
    before: dict[str, tuple[int, int, int]], after: dict[str, tuple[int, int, int]]
) -> dict[str, int]:
    """How files changed between two :func:`file_ids`: created, replaced (new inode), appended in place."""
    out: dict[str, int] = defaultdict(int)
    for path, (ino, size, mtime) in after.items():
        kind = "gold" if path.startswith("gold") else "silver"
        old = before.get(path)
        if old is None:
            out[f"{kind}_created"] += 1
        elif old[0] != ino:
            out[f"{kind}_replaced"] += 1
        elif old[1] != size or old[2] != mtime:
            out[f"{kind}_appended"] += 1
    out["gold_files"] = sum(1 for p in after if p.startswith("gold"))
    out["silver_files"] = sum(1 for p in after if p.startswith("silver"))
    return dict(out)


# -- children ------------------------------------------------------------------------------------------


def run_child(script: str = __file__, **params: Any) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter (after flushing dirty pages, so writeback left by the
    previous step does not land in this one); return its JSON line."""
    os.sync()
    done = subprocess.run(
        [sys.executable, script, "--child", json.dumps(params)], capture_output=True, text=True
    )
    if done.returncode:
        raise RuntimeError(f"child {params.get('kind')} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _status(pid: int | str, *keys: str) -> dict[str, int]:
    out = {}
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key = line.split(":", 1)[0]
            if key in keys:
                out[key] = int(line.split()[1]) * 1024
    return out


class TreeMemory:
    """Samples this process and every descendant (pool workers, Dask nanny workers) from /proc: the peak
    of the summed RSS, and each process's own VmHWM (monotonic, so the last sample is ~its peak)."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.peak_sum = 0
        self.hwm: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _descendants(self) -> list[int]:
        children: dict[int, list[int]] = defaultdict(list)
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    stat = Path(f"/proc/{entry.name}/stat").read_text()
                    children[int(stat.rsplit(")", 1)[1].split()[1])].append(int(entry.name))
        out, stack = [], [os.getpid()]
        while stack:
            for child in children.get(stack.pop(), []):
                out.append(child)
                stack.append(child)
        return out

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            total = _status("self", "VmRSS").get("VmRSS", 0)
            for pid in self._descendants():
                status = _status(pid, "VmRSS", "VmHWM")
                total += status.get("VmRSS", 0)
                self.hwm[pid] = max(self.hwm.get(pid, 0), status.get("VmHWM", 0))
            self.peak_sum = max(self.peak_sum, total)


def child_run(p: dict[str, Any]) -> dict[str, Any]:
    """A pipeline run over the lake's bronze (silver and/or gold), timed and with its peak memory."""
    from quantmini.core.calendar import sessions as cal
    from quantmini.io.duckdb_catalog import build_catalog
    from quantmini.pipeline.runner import PipelineRunner

    runner = PipelineRunner(
        Lake(Path(p["lake"])),
        SPEC,
        mode=p.get("mode", "streaming"),
        workers=p.get("workers", 1),
        batch_sessions=p.get("batch", 2),
        memory_budget_gb=p.get("budget", 4.0),
        executor=p.get("executor", "local"),
    )
    t0 = time.perf_counter()
    cal(dt.date(2000, 1, 3), LAST_DAY)  # the XNYS calendar: loaded once per process, like the imports
    calendar_s = time.perf_counter() - t0
    monitor = TreeMemory() if p.get("mode") == "parallel" or p.get("executor") == "dask" else None
    with monitor or contextlib.nullcontext():
        t0 = time.perf_counter()
        report = runner.run(None, last_stage=p.get("last_stage", "gold"))
        seconds = time.perf_counter() - t0
    hwm = _status("self", "VmHWM")["VmHWM"]
    out: dict[str, Any] = {
        "failures": report.failures,
        "seconds": seconds,
        "calendar_s": calendar_s,
        "timings": report.timings,
        "peak_mb": hwm / 1e6,
        "silver_written": {o.table: o.written for o in report.silver},
        "gold": [
            {"status": g.status, "appended": g.appended, "rewritten": g.rewritten, "symbols": g.symbols}
            for g in report.gold
        ],
    }
    if monitor is not None:
        out["tree_peak_mb"] = monitor.peak_sum / 1e6
        out["workers_hwm_mb"] = sum(monitor.hwm.values()) / 1e6
        out["workers"] = len(monitor.hwm)
    if p.get("catalog") and report.catalog is not None:
        t0 = time.perf_counter()
        build_catalog(Path(p["lake"]))
        out["catalog_s"] = time.perf_counter() - t0
    return out


def child_silver_main(p: dict[str, Any]) -> dict[str, Any]:
    """Only the main silver table (the five features), through the stage's planner and tasks, inline."""
    from quantmini.pipeline.factors import PRICE_SOURCE, refresh_factors
    from quantmini.pipeline.partitions import index_partitions
    from quantmini.pipeline.silver import plan_silver, run_silver_task

    lake = Lake(Path(p["lake"]))
    bronze = index_partitions(lake.manifest_dir("bronze", SPEC), lake.bronze_dir(SPEC))
    calendar = xnys_sessions(bronze.sessions[0] - dt.timedelta(days=60), bronze.sessions[-1])
    price_index = index_partitions(lake.manifest_dir("bronze", PRICE_SOURCE), lake.bronze_dir(SPEC))
    factors, _ = refresh_factors(lake, price_index)
    t0 = time.perf_counter()
    bronze = index_partitions(lake.manifest_dir("bronze", SPEC), lake.bronze_dir(SPEC))
    plans = plan_silver(lake, SPEC, bronze, calendar, factors, budget_bytes=4e9, concurrency=1)
    for task in plans[0].tasks:
        run_silver_task(task)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "peak_mb": _status("self", "VmHWM")["VmHWM"] / 1e6}


def child_polars(p: dict[str, Any]) -> dict[str, Any]:
    """Bare Polars: read all bronze, the five features with the library's expressions on ONE aligned
    frame of the whole history, one Parquet file per session (zstd, like silver)."""
    from quantmini.core.adjustment import session_multipliers
    from quantmini.core.features import stocks_daily_silver
    from quantmini.core.window import FactorContext, SessionWindow
    from quantmini.pipeline.factors import load_factor_tables

    lake = Lake(Path(p["lake"]))
    out = Path(p["out"])
    days = sorted(dt.date.fromisoformat(d.name[5:]) for d in lake.bronze_dir(SPEC).iterdir())
    t0 = time.perf_counter()
    bars = pl.read_parquet([str(lake.bronze_partition(SPEC, d)) for d in days])
    events, spans, _ = load_factor_tables(lake)
    context = FactorContext(session_multipliers(events, spans, days), events, spans)
    window = SessionWindow(bars, tuple(days), tuple(days), {}, context)
    rows = stocks_daily_silver(window)
    for (day,), frame in rows.partition_by("session_date", as_dict=True).items():
        target = out / f"date={day}"
        target.mkdir(parents=True, exist_ok=True)
        frame.write_parquet(target / "part.parquet", compression="zstd", row_group_size=65_536)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "peak_mb": _status("self", "VmHWM")["VmHWM"] / 1e6, "rows": rows.height}


def child_floor(p: dict[str, Any]) -> dict[str, Any]:
    """The file-system floor of a gold output: the same bytes (loaded with numpy first) written in one
    loop — whole files (``full``) or appended tails (``append``); calendar and instruments rewritten."""
    src, dst = Path(p["source"]), Path(p["target"])
    texts = {rel: (src / rel).read_bytes() for rel in ("calendars/day.txt", "instruments/all.txt")}
    if p["mode"] == "full":
        bins = [
            (str(dst / path.relative_to(src)), np.fromfile(path, dtype="<f4")) for path in src.rglob("*.bin")
        ]
        dirs = sorted({os.path.dirname(path) for path, _ in bins})
        t0 = time.perf_counter()
        for directory in dirs:
            os.makedirs(directory)
        for path, array in bins:
            with open(path, "wb", buffering=0) as fh:
                fh.write(array.data)
    else:
        tails = json.loads(Path(p["tails"]).read_text())
        bins = [(str(dst / rel), np.fromfile(src / rel, dtype="<f4", offset=at)) for rel, at in tails]
        new = {path for (path, _), (_, at) in zip(bins, tails, strict=True) if at == 0}
        t0 = time.perf_counter()
        for path, array in bins:
            if path in new:  # a symbol listed on the new session: its files are created
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb", buffering=0) as fh:
                    fh.write(array.data)
                continue
            with open(path, "r+b", buffering=0) as fh:
                fh.seek(0, os.SEEK_END)
                fh.write(array.data)
    for rel, data in texts.items():
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        (dst / rel).write_bytes(data)
    return {"seconds": time.perf_counter() - t0, "files": len(bins)}


def child_upstream(p: dict[str, Any]) -> dict[str, Any]:
    """qlib ``dump_all``-style per-symbol pandas dump (from bench_qlib_writer), or the same style of
    per-symbol append with correct NaN padding (``dump_update`` pads none: see the qlib guide)."""
    import pandas as pd

    from bench_qlib_writer import FIELDS, run_upstream

    frame = pd.read_parquet(p["frame"])
    frame["datetime"] = pd.to_datetime(frame["datetime"])
    calendar = [dt.datetime.fromisoformat(d) for d in json.loads(Path(p["calendar"]).read_text())]
    root = Path(p["root"])
    t0 = time.perf_counter()
    if p["mode"] == "full":
        run_upstream(frame, root, "day", calendar)
    else:
        calendar_list = [pd.Timestamp(c) for c in calendar]
        position = {c: i for i, c in enumerate(calendar_list)}
        lines = (root / "instruments" / "all.txt").read_text().splitlines()
        spans = {s: (a, b) for s, a, b in (line.split("\t") for line in lines)}
        for symbol, sdf in frame.groupby("symbol", sort=True):
            sdf = sdf.set_index("datetime").sort_index()
            directory = root / "features" / qlib_dir_name(symbol)
            new_end = position[sdf.index.max()]
            if symbol in spans:
                old_end = position[pd.Timestamp(spans[symbol][1])]
                r_df = sdf.reindex(pd.Index(calendar_list[old_end + 1 : new_end + 1]))
                for field in FIELDS:
                    with open(directory / f"{field}.day.bin", "ab") as fh:
                        r_df[field].to_numpy().astype("<f4").tofile(fh)
                spans[symbol] = (spans[symbol][0], f"{sdf.index.max():%Y-%m-%d}")
                continue
            start = position[sdf.index.min()]
            r_df = sdf.reindex(pd.Index(calendar_list[start : new_end + 1]))
            directory.mkdir(parents=True)
            for field in FIELDS:
                np.hstack([start, r_df[field]]).astype("<f4").tofile(str(directory / f"{field}.day.bin"))
            spans[symbol] = (f"{sdf.index.min():%Y-%m-%d}", f"{sdf.index.max():%Y-%m-%d}")
        (root / "calendars" / "day.txt").write_text("".join(f"{c:%Y-%m-%d}\n" for c in calendar_list))
        (root / "instruments" / "all.txt").write_text(
            "".join(f"{s}\t{a}\t{b}\n" for s, (a, b) in sorted(spans.items()))
        )
    return {"seconds": time.perf_counter() - t0, "peak_mb": _status("self", "VmHWM")["VmHWM"] / 1e6}


CHILDREN = {
    "run": child_run,
    "silver_main": child_silver_main,
    "polars": child_polars,
    "floor": child_floor,
    "upstream": child_upstream,
}

if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        params = json.loads(sys.argv[2])
        print(json.dumps(CHILDREN[params["kind"]](params)))
    else:
        raise SystemExit(__doc__)
