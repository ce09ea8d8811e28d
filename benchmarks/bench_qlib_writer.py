"""Benchmark quantmini's vectorised Qlib writer against an upstream-style per-symbol pandas writer.

    uv run python benchmarks/bench_qlib_writer.py [--symbols 1000 --days 2200] [--minute]

A realistic long table is generated (IPOs, delistings, random missing bars, date-major row order as read
from daily partitions) and saved as Parquet. Each writer then runs in its own child interpreter, which
loads the table, times the write and reports its peak RSS, so the two memory figures do not mix. The
two roots must be byte-identical.

The baseline follows qlib's ``scripts/dump_bin.py dump_all``: per symbol, select its rows, reindex them
to the calendar between its first and last date, find the start index with ``calendar_list.index`` and
write each field with ``np.hstack([start_index, values]).astype('<f4').tofile(...)``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import resource
import subprocess
import sys
import tempfile
import time
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


def _status_mb(key: str) -> float:
    """A memory figure of this process from /proc/self/status (Linux), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(impl: str, data: Path, root: Path, freq: str, calendar_file: Path) -> None:
    """Load the table, run one writer on it and print a JSON line with the write time and peak RSS."""
    calendar = [dt.datetime.fromisoformat(x) for x in json.loads(calendar_file.read_text())]
    table = load_quantmini(data, freq) if impl == "quantmini" else pd.read_parquet(data)
    # ru_maxrss survives fork+exec on Linux (it would report the parent's peak), so the peak is read from
    # VmHWM after resetting it; getrusage is the fallback where /proc is missing.
    rss_before = _status_mb("VmRSS")
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    started = time.perf_counter()
    if impl == "quantmini":
        run_quantmini(table, root, freq, calendar)
    else:
        run_upstream(table, root, freq, calendar)
    seconds = time.perf_counter() - started
    peak = _status_mb("VmHWM")
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak, "rss_before_mb": rss_before}))


def compare_trees(a: Path, b: Path) -> tuple[int, list[str]]:
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    problems = [f"file sets differ: {len(files_a)} vs {len(files_b)}"] if files_a != files_b else []
    for rel in files_a:
        if (b / rel).is_file() and (a / rel).read_bytes() != (b / rel).read_bytes():
            problems.append(f"differs: {rel}")
    return len(files_a), problems


def bench(freq: str, symbols: int, days: int, workdir: Path, seed: int, baseline: bool) -> dict[str, Any]:
    calendar = make_calendar(freq, days)
    positions = make_table(symbols, len(calendar), seed)
    names = symbol_names(symbols)
    cal = np.array(calendar, dtype="datetime64[us]")
    table = positions.drop(columns=["code", "pos"])
    table.insert(0, "datetime", cal[positions["pos"].to_numpy()])
    table.insert(0, "symbol", names[positions["code"].to_numpy()])
    data = workdir / f"{freq}.parquet"
    pl.from_pandas(table).with_columns(pl.col("symbol").cast(pl.String)).write_parquet(data)
    calendar_file = workdir / f"{freq}-calendar.json"
    calendar_file.write_text(json.dumps([c.isoformat() for c in calendar]))
    results: dict[str, Any] = {"freq": freq, "symbols": symbols, "days": days, "rows": len(table)}
    for impl in ("quantmini", "upstream") if baseline else ("quantmini",):
        root = workdir / f"{freq}-{impl}"
        done = subprocess.run(
            [sys.executable, __file__, "--child", impl, str(data), str(root), freq, str(calendar_file)],
            capture_output=True,
            text=True,
            check=True,
        )
        results[impl] = json.loads(done.stdout.strip().splitlines()[-1])
    if not baseline:
        results["upstream"] = None
        results["files"], results["identical"], results["problems"] = 0, True, []
        results["where"] = workdir.parent
        return results
    files, problems = compare_trees(workdir / f"{freq}-quantmini", workdir / f"{freq}-upstream")
    results["files"] = files
    results["where"] = workdir.parent
    results["identical"] = not problems
    results["problems"] = problems[:5]
    return results


def report(results: dict[str, Any]) -> None:
    q, u = results["quantmini"], results["upstream"]
    if u is None:
        print(
            f"\n{results['freq']}: {results['symbols']} symbols × {results['days']} sessions, "
            f"{results['rows']:,} rows, quantmini only: {q['seconds']:.2f} s, peak RSS in write "
            f"{q['peak_rss_mb']:.0f} MB (table loaded: {q['rss_before_mb']:.0f} MB)"
        )
        return
    print(
        f"\n{results['freq']}: {results['symbols']} symbols × {results['days']} sessions, "
        f"{results['rows']:,} rows, {results['files']:,} files, byte-identical: {results['identical']}, "
        f"in {results['where']}"
    )
    print(f"{'':24}{'quantmini':>12}{'upstream-style':>16}")
    print(f"{'write time (s)':24}{q['seconds']:>12.2f}{u['seconds']:>16.2f}")
    print(f"{'peak RSS in write (MB)':24}{q['peak_rss_mb']:>12.0f}{u['peak_rss_mb']:>16.0f}")
    print(f"{'RSS with table (MB)':24}{q['rss_before_mb']:>12.0f}{u['rss_before_mb']:>16.0f}")
    print(f"{'speed-up':24}{u['seconds'] / q['seconds']:>12.1f}×")
    for problem in results["problems"]:
        print("  ", problem)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--symbols", type=int, default=1000)
    parser.add_argument("--days", type=int, default=2200)
    parser.add_argument("--minute", action="store_true", help="also run a 1min case")
    parser.add_argument("--minute-symbols", type=int, default=100)
    parser.add_argument("--minute-days", type=int, default=20)
    parser.add_argument("--seed", type=int, default=20240102)
    parser.add_argument("--workdir", type=Path, default=None, help="where to write (default: system temp)")
    parser.add_argument("--no-baseline", action="store_true", help="time quantmini only (large runs)")
    parser.add_argument("--child", nargs=5, metavar=("IMPL", "DATA", "ROOT", "FREQ", "CALENDAR"))
    args = parser.parse_args()
    if args.child:
        impl, data, root, freq, calendar_file = args.child
        child(impl, Path(data), Path(root), freq, Path(calendar_file))
        return 0
    ok = True
    with tempfile.TemporaryDirectory(prefix="bench-qlib-", dir=args.workdir) as tmp:
        cases = [("day", args.symbols, args.days)]
        if args.minute:
            cases.append(("1min", args.minute_symbols, args.minute_days))
        for freq, symbols, days in cases:
            results = bench(freq, symbols, days, Path(tmp), args.seed, not args.no_baseline)
            report(results)
            ok = ok and bool(results["identical"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
