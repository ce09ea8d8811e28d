"""Benchmark appending one session to the 1min Qlib root of stocks_minute, against full builds.

    uv run python benchmarks/bench_minute_gold.py --workdir /work/bench-minute [--tickers 500]

The lake: stocks_daily bronze of ``--sessions`` + 1 XNYS sessions up to 2025-12-31 from
``bench_engine_data.generate`` (splits, dividends, late listings and delistings), with the split and
dividend records stored as reference tables (dividends with ex-dates on the first ``--sessions``
sessions: the appended session brings no corporate action); stocks_minute bronze generated from those
daily bars by the sample generator's minute paths (a Brownian bridge from each day's open to its close):
a quarter of the tickers trade every regular minute, the others each regular minute with a probability
between 0.1 and 0.9, and extended-hours bars (04:00 to four hours after the close, half days included)
are sparser, as in the vendor's files; ``regular_session`` is set by the bronze stage's own conversion.
Silver is then built by the pipeline's silver stage (features and daily roll-ups), so the gold stage
reads a normal lake: silver partitions listed by their manifests, the factor table from the real
factor refresh.

Per round (``--repeat`` rounds; medians are shown), each run in a fresh child interpreter that reports
its wall time and peak RSS (VmHWM):

* (a) full build of the root over the first ``--sessions`` sessions;
* (b) the same root with session ``--sessions`` + 1 appended (incremental ``run_gold``; the 60-session
  state is (a)'s, moved into a lake that holds one more session);
* no-op: the gold stage run again on (b)'s lake (nothing new);
* (c) full build over all ``--sessions`` + 1 sessions from scratch; every file under (b)'s root and (c)'s
  is compared byte for byte (and the raw history beside the roots).

"time" is the gold stage: indexing the silver manifests and ``run_gold``; the factor refresh that a
pipeline run does first is shown beside it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from bench_engine_data import (
    FETCHED,
    SPEC,
    TRASH,
    _status,
    changes,
    discard,
    dividends,
    file_ids,
    generate,
    write_bronze,
)
from bench_engine_data import run_child as engine_child
from bench_minute_silver import minute_frame
from bench_qlib_writer import compare_trees
from quantmini.core.bronze import to_bronze
from quantmini.core.calendar import REGULAR_CLOSE, early_closes
from quantmini.core.reference import SPLITS_SCHEMA
from quantmini.datasets import get_spec
from quantmini.io.lake import Lake
from quantmini.io.reference_store import store_reference
from quantmini.sample.bars import minute_rows
from quantmini.sample.csvformat import VOLUME_SCALE, to_price_units
from quantmini.sample.timeline import build_timeline

MINUTE = get_spec("stocks_minute")
#: Tickers converted to minute bars at once (bounds the generator's ticker × minute arrays).
CHUNK = 500
#: Share of tickers that trade every regular minute.
LIQUID = 0.25


def generate_minute(out: Path, tickers: int, sessions: int, seed: int = 11) -> dict[str, Any]:
    """stocks_daily and stocks_minute bronze of ``sessions + 1`` sessions, the reference tables, and the
    silver stage run over them, in lake layout below ``out``; returns (and stores) what was made."""
    meta_path = out / "_minute_meta.json"
    if meta_path.exists():
        return dict(json.loads(meta_path.read_text()))
    started = time.perf_counter()
    daily = generate(out, tickers, sessions, 1)
    days = [dt.date.fromisoformat(d) for d in daily["days"]]
    lake = Lake(out)
    timeline = build_timeline(days[0], days[-1])
    if timeline.sessions != days:
        raise SystemExit("the sample timeline and the generated sessions disagree")
    early = early_closes(days[0], days[-1])
    columns = ["ticker", "open", "close"]
    bars = [pl.read_parquet(lake.bronze_partition(SPEC, d), columns=columns) for d in days]
    names = pl.concat([b["ticker"] for b in bars]).unique().sort()
    rng = np.random.default_rng(seed)
    n = len(names)
    # minute_rows trades a regular minute with probability 0.2·log10(liquidity) − 0.3 (clipped to
    # 0.1..1), extended minutes with 0.2·p²: liquidity is chosen here from the probability wanted.
    p_regular = np.where(rng.random(n) < LIQUID, 1.0, rng.uniform(0.1, 0.9, n))
    liquidity = 10 ** ((p_regular + 0.3) / 0.2)
    daily_vol = rng.uniform(0.01, 0.04, n)
    trade_size = rng.uniform(50, 400, n)
    rows = 0
    regular_rows = 0
    for i, (day, day_bars) in enumerate(zip(days, bars, strict=True)):
        day_rng = np.random.default_rng([seed, i])
        at = np.searchsorted(names.to_numpy(), day_bars["ticker"].to_numpy())
        volume = np.rint(liquidity[at] * day_rng.lognormal(0.0, 0.5, len(at))) * VOLUME_SCALE
        frames = []
        for lo in range(0, len(at), CHUNK):
            part = at[lo : lo + CHUNK]
            m = minute_rows(
                day_rng,
                (
                    to_price_units(day_bars["open"].to_numpy()[lo : lo + CHUNK]),
                    to_price_units(day_bars["close"].to_numpy()[lo : lo + CHUNK]),
                    volume[lo : lo + CHUNK].astype(np.int64),
                    liquidity[part],
                ),
                daily_vol[part],
                trade_size[part],
                timeline.windows[i],
                decimal=bool(timeline.decimal[i]),
            )
            row_tickers = day_bars["ticker"].gather(m.ticker + lo)
            frames.append(minute_frame(m, row_tickers, timeline.minute_start_ns(i, m.minute)))
        frame = pl.concat(frames).with_columns(pl.lit(day).alias("session_date"))
        table = to_bronze(frame, MINUTE, early.get(day, REGULAR_CLOSE))
        write_bronze(lake, day, table, MINUTE)
        rows += table.num_rows
        regular_rows += int(np.asarray(table.column("regular_session")).sum())
    # The split the daily generator keeps out of its table (a late record there) is recorded here: the
    # lake then holds at least one split whatever the seed draws.
    withheld = daily["withheld_split"]
    late = pl.DataFrame(
        [{**withheld, "execution_date": dt.date.fromisoformat(withheld["execution_date"]), "id": "withheld"}],
        schema=SPLITS_SCHEMA,
    )
    splits = pl.concat([pl.read_parquet(out / "_actions" / "splits.parquet"), late])
    store_reference(lake, "splits", splits, FETCHED)
    store_reference(lake, "dividends", dividends(out, 0, sessions), FETCHED)
    generated = time.perf_counter() - started
    silver = checked(run_child(kind="silver", lake=str(out)))
    meta = {
        "tickers": tickers,
        "sessions": sessions,
        "days": daily["days"],
        "minute_rows": rows,
        "regular_rows": regular_rows,
        "splits": splits.height,
        "dividends": int(dividends(out, 0, sessions).height),
        "generate_s": generated,
        "silver_s": silver["seconds"],
        "silver_peak_mb": silver["peak_mb"],
    }
    meta_path.write_text(json.dumps(meta))
    return meta


# -- lakes ---------------------------------------------------------------------------------------------


def lake_of(master: Path, lake: Path, days: list[dt.date]) -> None:
    """A lake holding ``days`` of the master's bronze and silver (partitions as hard links: no stage
    here writes them; manifests, reference and factor tables as copies), and no gold."""
    keep = {d.isoformat() for d in days}
    discard(lake)
    for top, dirs, files in os.walk(master):
        rel = Path(top).relative_to(master)
        if rel == Path("."):
            dirs[:] = [d for d in dirs if not d.startswith((".", "_actions", "gold"))]
            files = []
        elif rel == Path("_manifests"):
            dirs[:] = [d for d in dirs if d != "gold"]
        dirs[:] = [d for d in dirs if not d.startswith("date=") or d[5:] in keep]
        partition = rel.name.startswith("date=")
        (lake / rel).mkdir(parents=True, exist_ok=True)
        for name in files:
            if name.endswith(".json") and name[:-5].count("-") == 2 and name[:-5] not in keep:
                continue
            src, dst = Path(top) / name, lake / rel / name
            if partition:
                os.link(src, dst)
            else:
                shutil.copy2(src, dst)


def move_gold(src: Path, dst: Path) -> None:
    """Move the 1min root and its state from lake ``src`` to lake ``dst`` (one rename each)."""
    a, b = Lake(src), Lake(dst)
    for old, new in (
        (a.qlib_root(MINUTE.name, "1min"), b.qlib_root(MINUTE.name, "1min")),
        (a.gold_state_dir(MINUTE.name, "1min"), b.gold_state_dir(MINUTE.name, "1min")),
    ):
        new.parent.mkdir(parents=True, exist_ok=True)
        old.rename(new)


def mount_type(path: Path) -> str:
    """File-system type of the mount holding ``path`` (from ``/proc/mounts``; ``""`` when unknown)."""
    best, kind = "", ""
    with open("/proc/mounts") as mounts:
        for line in mounts:
            _, point, fstype, *_ = line.split()
            inside = str(path.resolve()).startswith(point.rstrip("/") + "/") or point == "/"
            if inside and len(point) > len(best):
                best, kind = point, fstype
    return kind


def tree_size(path: Path) -> tuple[int, int]:
    """(files, bytes) below ``path``."""
    files = size = 0
    for top, _, names in os.walk(path):
        for name in names:
            files += 1
            size += os.stat(os.path.join(top, name)).st_size
    return files, size


# -- children ------------------------------------------------------------------------------------------


def run_child(**params: Any) -> dict[str, Any]:
    """One measurement in a fresh interpreter of this script, after flushing dirty pages; its JSON line."""
    return engine_child(script=__file__, **params)


def checked(run: dict[str, Any]) -> dict[str, Any]:
    if run.get("failures"):
        raise SystemExit("the run failed: " + "; ".join(run["failures"][:3]))
    return run


def child_silver(p: dict[str, Any]) -> dict[str, Any]:
    """The pipeline's silver stage for stocks_minute (factors first), as ``quantmini`` runs it."""
    from quantmini.pipeline.runner import PipelineRunner

    runner = PipelineRunner(Lake(Path(p["lake"])), MINUTE, memory_budget_gb=p.get("budget", 4.0))
    t0 = time.perf_counter()
    report = runner.run(None, last_stage="silver")
    return {
        "failures": report.failures,
        "seconds": time.perf_counter() - t0,
        "peak_mb": _status("self", "VmHWM")["VmHWM"] / 1e6,
    }


def child_gold(p: dict[str, Any]) -> dict[str, Any]:
    """The factor refresh, then (timed) the gold stage of the 1min root: silver index + ``run_gold``."""
    from quantmini.core.calendar import sessions as xnys
    from quantmini.pipeline.factors import PRICE_SOURCE, refresh_factors
    from quantmini.pipeline.gold import run_gold
    from quantmini.pipeline.partitions import index_partitions
    from quantmini.pipeline.runner import data_budget

    lake = Lake(Path(p["lake"]))
    xnys(dt.date(2000, 1, 3), dt.date(2025, 12, 31))  # loaded once per process, like the imports
    t0 = time.perf_counter()
    prices = index_partitions(lake.manifest_dir("bronze", PRICE_SOURCE), lake.bronze_dir(SPEC))
    refresh_factors(lake, prices)
    factors_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    silver = index_partitions(lake.manifest_dir("silver", MINUTE), lake.silver_dir(MINUTE))
    outcome = run_gold(
        lake,
        MINUTE,
        0,
        silver,
        budget_bytes=data_budget(p.get("budget", 4.0)),
        minute_session=p["hours"],
    )
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "factors_s": factors_s,
        "peak_mb": _status("self", "VmHWM")["VmHWM"] / 1e6,
        "status": outcome.status,
        "symbols": outcome.symbols,
        "appended": outcome.appended,
        "rewritten": outcome.rewritten,
        "repaired": outcome.repaired,
        "bars": len((outcome.root / "calendars" / "1min.txt").read_text().splitlines()),
    }


CHILDREN = {"silver": child_silver, "gold": child_gold}


# -- the benchmark ---------------------------------------------------------------------------------------


def compare_lakes(a: Path, b: Path) -> dict[str, Any]:
    """Every file of the two lakes' 1min roots, and of the raw history beside them, byte for byte."""
    x, y = Lake(a), Lake(b)
    files, problems = compare_trees(x.qlib_root(MINUTE.name, "1min"), y.qlib_root(MINUTE.name, "1min"))
    history = "history"
    state_a, state_b = x.gold_state_dir(MINUTE.name, "1min"), y.gold_state_dir(MINUTE.name, "1min")
    hfiles, hproblems = compare_trees(state_a / history, state_b / history)
    same_symbols = pl.read_parquet(state_a / "symbols.parquet").equals(
        pl.read_parquet(state_b / "symbols.parquet")
    )
    return {
        "root_files": files,
        "root_problems": problems,
        "history_files": hfiles,
        "history_problems": hproblems,
        "symbols_equal": same_symbols,
    }


def rounds(master: Path, work: Path, meta: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    days = [dt.date.fromisoformat(d) for d in meta["days"]]
    base, lake_b, lake_c = work / "lake-a", work / "lake-b", work / "lake-c"
    params = {"kind": "gold", "hours": args.hours, "budget": args.budget}
    out: dict[str, Any] = {"a": [], "b": [], "noop": [], "c": [], "compare": [], "files": []}
    for r in range(args.repeat):
        lake_of(master, base, days[:-1])
        out["a"].append(checked(run_child(lake=str(base), **params)))
        lake_of(master, lake_b, days)
        move_gold(base, lake_b)
        before = file_ids(lake_b)
        out["b"].append(checked(run_child(lake=str(lake_b), **params)))
        out["files"].append(changes(before, file_ids(lake_b)))
        out["noop"].append(checked(run_child(lake=str(lake_b), **params)))
        lake_of(master, lake_c, days)
        out["c"].append(checked(run_child(lake=str(lake_c), **params)))
        out["compare"].append(compare_lakes(lake_b, lake_c))
        print(
            f"round {r + 1}: a {out['a'][-1]['seconds']:.2f} s, b {out['b'][-1]['seconds']:.3f} s, "
            f"no-op {out['noop'][-1]['seconds']:.3f} s, c {out['c'][-1]['seconds']:.2f} s, "
            f"identical: {not out['compare'][-1]['root_problems']}",
            flush=True,
        )
    root = Lake(lake_c).qlib_root(MINUTE.name, "1min")
    out["root_size"] = tree_size(root)
    out["history_size"] = tree_size(Lake(lake_c).gold_state_dir(MINUTE.name, "1min") / "history")
    return out


def median(runs: list[dict[str, Any]], key: str) -> tuple[float, str]:
    values = [r[key] for r in runs]
    spread = f" ({min(values):.2f}–{max(values):.2f})" if len(values) > 1 else ""
    return statistics.median(values), spread


def report(meta: dict[str, Any], res: dict[str, Any], args: argparse.Namespace) -> None:
    a_s, _ = median(res["a"], "seconds")
    c_s, _ = median(res["c"], "seconds")
    files, size = res["root_size"]
    hfiles, hsize = res["history_size"]
    last_c = res["c"][-1]
    identical = all(not c["root_problems"] for c in res["compare"])
    history_same = all(not c["history_problems"] and c["symbols_equal"] for c in res["compare"])
    print(
        f"\n{meta['tickers']:,} tickers, {meta['minute_rows']:,} minute bars over "
        f"{len(meta['days'])} sessions "
        f"({meta['regular_rows']:,} regular), {meta['splits']} splits, {meta['dividends']} dividends; "
        f"silver stage {meta['silver_s']:.0f} s; {args.hours} hours; {args.workdir} "
        f"({mount_type(args.workdir)}); median of {args.repeat}"
    )
    print(
        f"root after (c): {last_c['symbols']:,} symbols × {last_c['bars']:,} bars, {files:,} files, "
        f"{size / 1e6:,.0f} MB; raw history beside it {hfiles:,} files, {hsize / 1e6:,.0f} MB"
    )
    moved = res["files"][-1]
    rows = []
    for label, key in (
        (f"(a) full build, {len(meta['days']) - 1} sessions", "a"),
        ("(b) append 1 session to (a)", "b"),
        ("no-op run on (b)", "noop"),
        (f"(c) full build, {len(meta['days'])} sessions", "c"),
    ):
        s, spread = median(res[key], "seconds")
        f_s, _ = median(res[key], "factors_s")
        peak, _ = median(res[key], "peak_mb")
        last = res[key][-1]
        rows.append(
            [
                label,
                f"{s:.2f} s{spread}",
                f"{s / a_s:.3f}",
                f"{s / c_s:.3f}",
                f"{f_s:.2f} s",
                f"{last['status']}, {last['appended']} appended, {last['rewritten']} rewritten",
                f"{peak:.0f} MB",
            ]
        )
    header = ["run", "gold stage", "÷ (a)", "÷ (c)", "factor refresh", "outcome", "peak RSS"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(
        f"\n(b) .bin files: {moved.get('gold_appended', 0):,} appended in place, "
        f"{moved.get('gold_created', 0):,} created, {moved.get('gold_replaced', 0):,} replaced "
        f"(of {moved.get('gold_files', 0):,}); "
        f"(b) == (c): root {'byte-identical' if identical else 'DIFFERS'}"
        f" ({res['compare'][-1]['root_files']:,} files), raw history and symbol table "
        f"{'identical' if history_same else 'DIFFER'}"
    )
    if not identical:
        print("  first differences:", res["compare"][-1]["root_problems"][:5])


def calendar_cost(counts: list[int], repeat: int) -> None:
    """What every run of a 1min root pays for its calendar whatever it appends: the bar calendar of the
    whole history, and ``calendars/1min.txt`` brought up to date when it already holds every session but
    the last (an append: only the new bars are formatted), for the last ``counts`` sessions, both hours.
    The full formatting, which only a full build pays, is shown beside it."""
    import tempfile

    from quantmini.core.calendar import sessions as xnys
    from quantmini.pipeline.gold import bar_calendar

    every = xnys(dt.date(2000, 1, 3), dt.date(2025, 12, 31))
    print(f"\ncalendar of a 1min root per run, median of {repeat}")
    print("| sessions | hours | bars | bar calendar | calendar file (append) | all lines (full build) |")
    print("|---|---|---|---|---|---|")
    for count in counts:
        for hours in ("regular", "extended"):
            built, appended, formatted = [], [], []
            for _ in range(repeat):
                with tempfile.TemporaryDirectory() as tmp:
                    bar_calendar(every[-count:-1], "1min", "XNYS", hours).write(Path(tmp), {})
                    t0 = time.perf_counter()
                    cal = bar_calendar(every[-count:], "1min", "XNYS", hours)
                    t1 = time.perf_counter()
                    cal.write(Path(tmp), {})
                    t2 = time.perf_counter()
                    cal.lines()
                    built.append(t1 - t0)
                    appended.append(t2 - t1)
                    formatted.append(time.perf_counter() - t2)
            print(
                f"| {count:,} | {hours} | {len(cal.ints):,} | {statistics.median(built):.3f} s "
                f"| {statistics.median(appended):.3f} s | {statistics.median(formatted):.2f} s |"
            )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--workdir", type=Path, help="scratch directory (GBs at 2,000 tickers); required but with --calendar"
    )
    parser.add_argument("--tickers", type=int, default=500)
    parser.add_argument("--sessions", type=int, default=60, help="sessions of the root appended to")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--hours", choices=("regular", "extended"), default="regular")
    parser.add_argument("--budget", type=float, default=4.0, help="memory_budget_gb of the runs")
    parser.add_argument("--keep", action="store_true", help="keep the generated lake for the next run")
    parser.add_argument(
        "--calendar",
        type=int,
        nargs="+",
        metavar="SESSIONS",
        help="only measure the per-run calendar cost of roots of these many sessions (no lake)",
    )
    args = parser.parse_args()
    if args.calendar:
        calendar_cost(args.calendar, args.repeat)
        return 0
    if args.workdir is None:
        parser.error("--workdir is required")
    args.workdir.mkdir(parents=True, exist_ok=True)
    if mount_type(args.workdir) != "tmpfs":  # deleting in memory slows nothing down: no trash there
        TRASH.append(args.workdir / ".trash")
    master = args.workdir / f"minute-{args.tickers}x{args.sessions}+1"
    meta = generate_minute(master, args.tickers, args.sessions)
    res = rounds(master, args.workdir, meta, args)
    report(meta, res, args)
    name = f"results-minute-gold-{args.tickers}-{args.hours}.json"
    (args.workdir / name).write_text(json.dumps({"meta": meta, **res}, default=str))
    if TRASH:
        shutil.rmtree(TRASH[0], ignore_errors=True)
    for path in args.workdir.glob("lake-*"):
        shutil.rmtree(path, ignore_errors=True)
    if not args.keep:
        shutil.rmtree(master, ignore_errors=True)
    identical = all(not c["root_problems"] for c in res["compare"])
    return 0 if identical else 1


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        params = json.loads(sys.argv[2])
        print(json.dumps(CHILDREN[params["kind"]](params)))
    else:
        sys.exit(main())
