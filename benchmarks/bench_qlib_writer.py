"""Benchmark quantmini's vectorised Qlib writer against upstream-style per-symbol dumping.

    uv run python benchmarks/bench_qlib_writer.py [--symbols 1000 --days 2200] [--minute] [--csv]

A realistic long table is generated (IPOs, delistings, random missing bars, date-major row order as read
from daily partitions) and saved as Parquet. Each writer then runs in its own child interpreter, which
times its run and reports its peak RSS (VmHWM), so the memory figures do not mix. Every root written
must be byte-identical to quantmini's.

Two baselines:

* ``memory`` (always): qlib ``scripts/dump_bin.py``'s per-symbol steps on the table already in memory —
  one ``groupby``; per symbol, reindex its rows to the calendar between its first and last date, find
  the start with ``calendar_list.index`` and write each field with
  ``np.hstack([start_index, values]).astype('<f4').tofile(...)``. Compared with quantmini's write of
  the loaded table.
* ``csv`` (``--csv``): ``DumpDataAll`` as upstream runs it, from the per-symbol CSV files its data
  collectors produce (written beforehand, not timed): read every CSV to collect the calendar and each
  symbol's first and last date, write the calendar and instruments, then read every CSV again and dump
  it as above; each pass maps over the files in a process pool of ``--workers`` processes (upstream's
  ``max_workers``; 0 runs them in the child itself). Compared with quantmini reading the same table
  from Parquet and writing it (both timed). Peak RSS is the largest of the child and its workers.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from quantmini.io.qlib_writer import write_qlib_root

FIELDS = ("open", "high", "low", "close", "volume", "vwap", "factor", "change")
RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}


def make_calendar(freq: str, days: int) -> list[dt.datetime]:
    sessions = pd.bdate_range("2015-01-02", periods=days)
    if freq == "day":
        return [ts.to_pydatetime() for ts in sessions]
    minutes = pd.timedelta_range("09:30:00", "15:59:00", freq="min")
    return [(day + m).to_pydatetime() for day in sessions for m in minutes]


def make_table(symbols: int, calendar_length: int, seed: int) -> pd.DataFrame:
    """Long table of positions + fields; ~30% IPO late, ~20% delist early, ~2% bars missing."""
    rng = np.random.default_rng(seed)
    codes, positions = [], []
    for code in range(symbols):
        start = int(rng.integers(0, calendar_length // 2)) if rng.random() < 0.3 else 0
        end = int(rng.integers(start + 1, calendar_length)) if rng.random() < 0.2 else calendar_length - 1
        span = np.arange(start, end + 1)
        keep = span[rng.random(len(span)) > 0.02]
        if len(keep) == 0:
            keep = span[:1]
        codes.append(np.full(len(keep), code))
        positions.append(keep)
    code = np.concatenate(codes)
    pos = np.concatenate(positions)
    n = len(code)
    close = rng.lognormal(3.5, 1.0, n)
    table = pd.DataFrame(
        {
            "code": code,
            "pos": pos,
            "open": close * rng.uniform(0.98, 1.02, n),
            "high": close * 1.03,
            "low": close * 0.97,
            "close": close,
            "volume": rng.integers(100, 50_000_000, n).astype(np.float64),
            "vwap": close * rng.uniform(0.99, 1.01, n),
            "factor": rng.uniform(0.5, 1.0, n),
            "change": rng.normal(0, 0.02, n),
        }
    )
    return table.sort_values(["pos", "code"], kind="stable").reset_index(drop=True)  # date-major


def symbol_names(count: int) -> np.ndarray:
    names = [f"S{i:05d}" for i in range(count)]
    names[:4] = ["BRK.B", "PRN", "AAPL", "O:SPY"][: min(4, count)]
    return np.array(names, dtype=object)


def load_quantmini(data: Path, freq: str) -> pl.DataFrame:
    frame = pl.read_parquet(data)
    return frame.with_columns(pl.col("datetime").dt.date()) if freq == "day" else frame


def run_quantmini(frame: pl.DataFrame, root: Path, freq: str, calendar: list[dt.datetime]) -> None:
    cal = [d.date() for d in calendar] if freq == "day" else calendar
    write_qlib_root(root, frame, freq=freq, fields=FIELDS, calendar=cal)  # type: ignore[arg-type]


def run_upstream(df: pd.DataFrame, root: Path, freq: str, calendar: list[dt.datetime]) -> None:
    fmt = "%Y-%m-%d" if freq == "day" else "%Y-%m-%d %H:%M:%S"
    calendar_list = [pd.Timestamp(c) for c in calendar]
    (root / "calendars").mkdir(parents=True)
    (root / "calendars" / f"{freq}.txt").write_text("".join(f"{c:{fmt}}\n" for c in calendar_list))
    calendars_df = pd.DataFrame({"datetime": calendar_list})
    spans = []
    for symbol, sdf in df.groupby("symbol", sort=True):
        sdf = sdf.set_index("datetime").sort_index()
        lo, hi = sdf.index.min(), sdf.index.max()
        cal_df = calendars_df[(calendars_df["datetime"] >= lo) & (calendars_df["datetime"] <= hi)]
        r_df = sdf.reindex(pd.Index(cal_df["datetime"]))
        date_index = calendar_list.index(r_df.index.min())
        directory = symbol if symbol.upper() not in RESERVED else f"_qlib_{symbol}"
        out = root / "features" / directory.lower()
        out.mkdir(parents=True)
        for field in FIELDS:
            np.hstack([date_index, r_df[field]]).astype("<f4").tofile(str(out / f"{field}.{freq}.bin"))
        spans.append(f"{symbol}\t{lo:{fmt}}\t{hi:{fmt}}\n")
    (root / "instruments").mkdir()
    (root / "instruments" / "all.txt").write_text("".join(sorted(spans)))


# ------------------------------------------------------------------ dump_bin.py DumpDataAll from CSV

CSV_DATE = "date"


def code_to_fname(code: str) -> str:
    """qlib's file-system name of a symbol: Windows device names get a ``_qlib_`` prefix."""
    return f"_qlib_{code}" if code.upper() in RESERVED else code


def fname_to_code(name: str) -> str:
    return name[len("_qlib_") :] if name.startswith("_qlib_") else name


def write_symbol_csvs(table: pl.DataFrame, folder: Path, freq: str) -> int:
    """One CSV per symbol as qlib's collectors write them: ``date`` (text), ``symbol`` and the fields."""
    folder.mkdir(parents=True)
    fmt = "%Y-%m-%d" if freq == "day" else "%Y-%m-%d %H:%M:%S"
    frame = table.with_columns(pl.col("datetime").dt.strftime(fmt).alias(CSV_DATE)).select(
        CSV_DATE, "symbol", *FIELDS
    )
    parts = frame.sort("symbol", CSV_DATE).partition_by("symbol", as_dict=True)
    for (symbol,), part in parts.items():
        part.write_csv(folder / f"{str(symbol).lower()}.csv")
    return len(parts)


def read_symbol_csv(path: Path) -> pd.DataFrame:
    """``_get_source_data``: pandas ``read_csv``, dates parsed, rows without a date dropped."""
    frame = pd.read_csv(path, low_memory=False)
    frame[CSV_DATE] = pd.to_datetime(frame[CSV_DATE])
    return frame.dropna(subset=[CSV_DATE])


def symbol_dates(path: Path) -> tuple[tuple[pd.Timestamp, pd.Timestamp], set[pd.Timestamp]]:
    """``_get_date(..., is_begin_end=True, as_set=True)``: first and last date and the set of dates."""
    dates = read_symbol_csv(path)[CSV_DATE]
    return (dates.min(), dates.max()), set(dates)


def dump_symbol(path: Path, root: Path, freq: str, calendar_list: list[pd.Timestamp]) -> None:
    """``_dump_bin`` + ``_data_to_bin`` in ``all`` mode for one CSV."""
    code = fname_to_code(path.stem.strip().lower())
    frame = read_symbol_csv(path).drop_duplicates(CSV_DATE)
    features = root / "features" / code_to_fname(code).lower()
    features.mkdir(parents=True, exist_ok=True)
    # data_merge_calendar: the calendar between the symbol's first and last date, rows reindexed to it.
    calendar = pd.DataFrame(data=calendar_list, columns=[CSV_DATE])
    calendar[CSV_DATE] = calendar[CSV_DATE].astype("datetime64[ns]")
    inside = (calendar[CSV_DATE] >= frame[CSV_DATE].min()) & (calendar[CSV_DATE] <= frame[CSV_DATE].max())
    aligned = frame.set_index(CSV_DATE).reindex(calendar[inside].set_index(CSV_DATE).index)
    date_index = calendar_list.index(aligned.index.min())
    for name in FIELDS:  # --include_fields
        target = features / f"{name.lower()}.{freq}.bin"
        target.exists()  # upstream asks before choosing between update and all mode
        np.hstack([date_index, aligned[name]]).astype("<f").tofile(str(target.resolve()))


def run_upstream_csv(folder: Path, root: Path, freq: str, workers: int) -> None:
    """``DumpDataAll.dump()``: dates of every file, calendar, instruments, then every file dumped (a
    process pool per pass, as upstream)."""
    fmt = "%Y-%m-%d" if freq == "day" else "%Y-%m-%d %H:%M:%S"
    files = sorted(folder.glob("*.csv"))
    every: set[pd.Timestamp] = set()
    spans = []
    with _pool(workers) as map_files:
        for path, ((begin, end), dates) in zip(files, map_files(symbol_dates, files), strict=True):
            every = every | dates
            if isinstance(begin, pd.Timestamp) and isinstance(end, pd.Timestamp):
                symbol = fname_to_code(path.stem.strip().lower()).upper()
                first, last = pd.Timestamp(begin).strftime(fmt), pd.Timestamp(end).strftime(fmt)
                spans.append("\t".join([symbol, first, last]))
    calendar_list = sorted(map(pd.Timestamp, every))
    (root / "calendars").mkdir(parents=True)
    lines = [pd.Timestamp(c).strftime(fmt) for c in calendar_list]
    np.savetxt(root / "calendars" / f"{freq}.txt", lines, fmt="%s", encoding="utf-8")
    (root / "instruments").mkdir()
    np.savetxt(root / "instruments" / "all.txt", spans, fmt="%s", encoding="utf-8")
    with _pool(workers) as map_files:
        for _ in map_files(partial(dump_symbol, root=root, freq=freq, calendar_list=calendar_list), files):
            pass


@contextlib.contextmanager
def _pool(workers: int) -> Any:
    """``map`` over files in a process pool of ``workers``, as upstream runs it; 0: in this process
    (no pickling of the dates sent back: faster than upstream)."""
    if workers <= 0:
        yield lambda fn, items: (fn(item) for item in items)
        return
    with ProcessPoolExecutor(max_workers=workers) as executor:
        yield lambda fn, items: executor.map(fn, items)


# ------------------------------------------------------------------------------------- measuring


def _status_mb(key: str) -> float:
    """A memory figure of this process from /proc/self/status (Linux), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


#: Writers: what each child times. ``csv`` children get ``DATA`` = the folder of per-symbol CSVs.
IMPLEMENTATIONS = {
    "quantmini": "quantmini, table in memory",
    "memory": "upstream-style, table in memory",
    "quantmini_read": "quantmini, Parquet read + write",
    "csv": "upstream dump_all from CSVs",
}


def child(impl: str, data: Path, root: Path, freq: str, calendar_file: Path, workers: int) -> None:
    """Run one writer and print a JSON line with its time and peak RSS (loading the table untimed for
    the in-memory writers)."""
    calendar = [dt.datetime.fromisoformat(x) for x in json.loads(calendar_file.read_text())]
    table: Any = None
    if impl == "quantmini":
        table = load_quantmini(data, freq)
    elif impl == "memory":
        table = pd.read_parquet(data)
    # ru_maxrss survives fork+exec on Linux (it would report the parent's peak), so the peak is read from
    # VmHWM after resetting it; getrusage is the fallback where /proc is missing.
    rss_before = _status_mb("VmRSS")
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    started = time.perf_counter()
    if impl == "quantmini":
        run_quantmini(table, root, freq, calendar)
    elif impl == "memory":
        run_upstream(table, root, freq, calendar)
    elif impl == "quantmini_read":
        run_quantmini(load_quantmini(data, freq), root, freq, calendar)
    else:
        run_upstream_csv(data, root, freq, workers)
    seconds = time.perf_counter() - started
    # With a process pool: the largest of this process and its workers.
    workers_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    peak = max(_status_mb("VmHWM"), workers_peak)
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak, "rss_before_mb": rss_before}))


def compare_trees(a: Path, b: Path) -> tuple[int, list[str]]:
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    problems = [f"file sets differ: {len(files_a)} vs {len(files_b)}"] if files_a != files_b else []
    for rel in files_a:
        if (b / rel).is_file() and (a / rel).read_bytes() != (b / rel).read_bytes():
            problems.append(f"differs: {rel}")
    return len(files_a), problems


def bench(
    freq: str,
    symbols: int,
    days: int,
    workdir: Path,
    seed: int,
    impls: Iterable[str],
    repeat: int,
    workers: int,
) -> dict[str, Any]:
    calendar = make_calendar(freq, days)
    positions = make_table(symbols, len(calendar), seed)
    names = symbol_names(symbols)
    cal = np.array(calendar, dtype="datetime64[us]")
    table = positions.drop(columns=["code", "pos"])
    table.insert(0, "datetime", cal[positions["pos"].to_numpy()])
    table.insert(0, "symbol", names[positions["code"].to_numpy()])
    data = workdir / f"{freq}.parquet"
    frame = pl.from_pandas(table).with_columns(pl.col("symbol").cast(pl.String))
    frame.write_parquet(data)
    impls = list(impls)
    csv_folder = workdir / f"{freq}-csv-input"
    if "csv" in impls:
        write_symbol_csvs(frame, csv_folder, freq)
    calendar_file = workdir / f"{freq}-calendar.json"
    calendar_file.write_text(json.dumps([c.isoformat() for c in calendar]))
    results: dict[str, Any] = {"freq": freq, "symbols": symbols, "days": days, "rows": len(table), "runs": {}}
    problems: list[str] = []
    files = 0
    for run in range(repeat):
        for impl in impls:
            root = workdir / f"{freq}-{impl}-{run}"
            source = csv_folder if impl == "csv" else data
            done = subprocess.run(
                [sys.executable, __file__, "--child", impl, str(source), str(root), freq, str(calendar_file),
                 str(workers)],
                capture_output=True,
                text=True,
                check=True,
            )  # fmt: skip
            results["runs"].setdefault(impl, []).append(json.loads(done.stdout.strip().splitlines()[-1]))
            if impl != "quantmini" or run:
                files, found = compare_trees(workdir / f"{freq}-quantmini-0", root)
                problems += [f"{impl}: {p}" for p in found]
            if run or impl != "quantmini":
                _remove_tree(root)
    _remove_tree(workdir / f"{freq}-quantmini-0")
    results.update(files=files, where=workdir.parent, identical=not problems, problems=problems[:5])
    return results


def _remove_tree(root: Path) -> None:
    for path in sorted(root.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    root.rmdir()


def report(results: dict[str, Any], workers: int) -> None:
    runs = results["runs"]
    print(
        f"\n{results['freq']}: {results['symbols']} symbols × {results['days']} sessions, "
        f"{results['rows']:,} rows, {results['files']:,} files, byte-identical: {results['identical']}, "
        f"in {results['where']}; medians of {len(runs['quantmini'])} run(s)"
    )
    median = {impl: statistics.median(r["seconds"] for r in rs) for impl, rs in runs.items()}
    header = (
        ("time (s)", 10),
        ("range", 14),
        ("peak RSS (MB)", 15),
        ("RSS before (MB)", 17),
        ("÷ quantmini", 13),
    )
    print(f"{'writer':46}" + "".join(f"{name:>{width}}" for name, width in header))
    pairs = {"quantmini": "quantmini", "memory": "quantmini", "quantmini_read": "quantmini_read",
             "csv": "quantmini_read"}  # fmt: skip
    for impl, rs in runs.items():
        pool = "in-process" if workers <= 0 else f"{workers}-process pool"
        label = IMPLEMENTATIONS[impl] + (f" ({pool})" if impl == "csv" else "")
        ratio = median[impl] / median[pairs[impl]] if pairs[impl] in median else float("nan")
        print(
            f"{label:46}{median[impl]:>10.2f}{_spread(rs):>14}"
            f"{statistics.median(r['peak_rss_mb'] for r in rs):>15.0f}"
            f"{statistics.median(r['rss_before_mb'] for r in rs):>17.0f}{ratio:>12.1f}×"
        )
    for problem in results["problems"]:
        print("  ", problem)


def _spread(runs: list[dict[str, Any]]) -> str:
    seconds = [r["seconds"] for r in runs]
    return f"{min(seconds):.2f}-{max(seconds):.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--symbols", type=int, default=1000)
    parser.add_argument("--days", type=int, default=2200)
    parser.add_argument("--minute", action="store_true", help="also run a 1min case")
    parser.add_argument("--no-day", action="store_true", help="skip the day case")
    parser.add_argument("--minute-symbols", type=int, default=100)
    parser.add_argument("--minute-days", type=int, default=20)
    parser.add_argument("--seed", type=int, default=20240102)
    parser.add_argument("--workdir", type=Path, default=None, help="where to write (default: system temp)")
    parser.add_argument("--no-baseline", action="store_true", help="time quantmini only (large runs)")
    parser.add_argument("--csv", action="store_true", help="also run the upstream dump_all from CSV files")
    parser.add_argument(
        "--workers", type=int, default=1, help="process pool of the CSV baseline (0: in this process)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of each writer (medians shown)")
    parser.add_argument("--child", nargs=6, metavar=("IMPL", "DATA", "ROOT", "FREQ", "CALENDAR", "WORKERS"))
    args = parser.parse_args()
    if args.child:
        impl, data, root, freq, calendar_file, workers = args.child
        child(impl, Path(data), Path(root), freq, Path(calendar_file), int(workers))
        return 0
    impls = ["quantmini"]
    if not args.no_baseline:
        impls.append("memory")
    if args.csv:
        impls += ["quantmini_read", "csv"]
    ok = True
    with tempfile.TemporaryDirectory(prefix="bench-qlib-", dir=args.workdir) as tmp:
        cases = [] if args.no_day else [("day", args.symbols, args.days)]
        if args.minute:
            cases.append(("1min", args.minute_symbols, args.minute_days))
        for freq, symbols, days in cases:
            results = bench(freq, symbols, days, Path(tmp), args.seed, impls, args.repeat, args.workers)
            report(results, args.workers)
            ok = ok and bool(results["identical"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
