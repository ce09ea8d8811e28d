"""Benchmark the silver + gold engine on synthetic stocks_daily bronze, each case against a baseline
measured in the same run.

    uv run python benchmarks/bench_engine.py --workdir /work/bench-data CASE [CASE ...]

Cases (defaults in brackets; ``--repeat`` runs of each cheap measurement, the median is shown):

* ``incremental`` [2,000 tickers × 1,000 sessions]: full build (silver + gold from bronze), then 1 and 5
  new sessions appended, without and with ex-dividend dates on the new sessions; time ÷ full build and
  the files rewritten.
* ``split``: a split record inside the history for one symbol (its prices already show it).
* ``executors``: the full build in streaming, batch (2 threads), parallel (2 processes), dask (2 workers).
* ``scaling`` [12,000 tickers × 500, 1,000, 2,500, 5,000 sessions]: full build wall time and peak RSS
  at ``memory_budget_gb`` 4.0 and 1.0.
* ``silver`` [5,000 tickers × 1,260 sessions]: the silver stage vs bare Polars computing the same five
  features with the library's expressions on one whole-history aligned frame.
* ``gold`` [same lake]: the gold stage vs the file-system floor (same bytes from numpy in one loop) and
  an upstream-style per-symbol pandas dump, for a full build and a one-session append.

Bronze is generated directly (see ``bench_engine_data.py``); every measurement runs in its own child
interpreter (imports and the XNYS calendar load are not timed), which reports its wall time and peak RSS
(VmHWM; for process pools and Dask also the sampled sum over the process tree and the workers' VmHWM).
Outputs replaced between measurements are moved aside and deleted when the script ends: on a disk mounted
with online ``discard``, deleting tens of thousands of files slows file creation for minutes afterwards.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from bench_engine_data import (
    FETCHED,
    SPEC,
    TRASH,
    add_sessions,
    changes,
    clone,
    discard,
    dividends,
    file_ids,
    generate,
    make_lake,
    reset_built,
    run_child,
)
from bench_qlib_writer import compare_trees
from quantmini.core.gold import qlib_daily_frame
from quantmini.core.reference import SPLITS_SCHEMA
from quantmini.io.lake import Lake
from quantmini.io.reference_store import store_reference


def median(runs: list[dict[str, Any]], key: Callable[[dict[str, Any]], float]) -> tuple[float, str]:
    """Median of ``key`` over runs, and the spread as text (``min–max``)."""
    values = [key(r) for r in runs]
    return statistics.median(values), f"{min(values):.2f}–{max(values):.2f}" if len(values) > 1 else ""


def repeat(times: int, setup: Callable[[], None], **params: Any) -> list[dict[str, Any]]:
    """``times`` × (setup, then one child run)."""
    runs = []
    for _ in range(times):
        setup()
        runs.append(checked(run_child(**params)))
    return runs


def checked(run: dict[str, Any]) -> dict[str, Any]:
    if run.get("failures"):
        raise SystemExit("the run failed: " + "; ".join(run["failures"][:3]))
    return run


def table(header: list[str], rows: list[list[Any]]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")
    print(flush=True)


def master(work: Path, tickers: int, sessions: int, extra: int) -> tuple[Path, dict[str, Any]]:
    path = work / f"master-{tickers}x{sessions}+{extra}"
    meta = generate(path, tickers, sessions, extra)
    print(
        f"bronze: {tickers:,} tickers × {sessions:,}+{extra} sessions, {meta['rows']:,} rows, "
        f"{meta['splits']} splits, {meta['dividends']:,} dividends (generated in {meta['seconds']:.0f} s)",
        flush=True,
    )
    return path, meta


# -- incremental, split, executors (one 2,000 × 1,000 lake) ---------------------------------------------


def incremental(work: Path, args: argparse.Namespace, cases: set[str]) -> dict[str, Any]:
    src, meta = master(work, args.tickers, args.sessions, 5)
    days = [dt.date.fromisoformat(d) for d in meta["days"]]
    base, lake = work / "inc-base", work / "inc-lake"
    make_lake(src, base, args.sessions)
    result: dict[str, Any] = {"meta": {k: v for k, v in meta.items() if k != "days"}}
    full = repeat(args.repeat, lambda: reset_built(base), kind="run", lake=str(base))
    full_s, spread = median(full, lambda r: r["seconds"])
    result["full"] = full
    rows = [_row("full build", full, full_s, full_s, spread)]
    if "incremental" in cases:
        for scenario in ("no corporate actions", "ex-dividends on the new sessions"):
            for n in (1, 5):
                added = days[args.sessions : args.sessions + n]
                divs = dividends(src, args.sessions, args.sessions + n)

                def setup(added: list[dt.date] = added, divs: pl.DataFrame = divs, s: str = scenario) -> None:
                    clone(base, lake)
                    add_sessions(src, lake, added)
                    if s.startswith("ex-"):
                        store_reference(Lake(lake), "dividends", divs, FETCHED)

                runs = _counted(args.repeat, setup, lake)
                label = f"+{n} session{'s' if n > 1 else ''}, {scenario}"
                if scenario.startswith("ex-"):
                    label += f" ({divs.height} dividends)"
                s, spread = median(runs, lambda r: r["seconds"])
                rows.append(_row(label, runs, s, full_s, spread))
                result[label] = runs
    if "split" in cases:
        withheld = meta["withheld_split"]

        def add_split() -> None:
            clone(base, lake)
            day = dt.date.fromisoformat(withheld["execution_date"])
            record = {**withheld, "execution_date": day, "id": "late-record"}
            store_reference(Lake(lake), "splits", pl.DataFrame([record], schema=SPLITS_SCHEMA), FETCHED)

        runs = _counted(args.repeat, add_split, lake)
        s, spread = median(runs, lambda r: r["seconds"])
        label = f"new split of {withheld['ticker']} on {withheld['execution_date']} (inside the history)"
        rows.append(_row(label, runs, s, full_s, spread))
        result["split"] = runs
    print(
        f"\n{args.tickers:,} tickers × {args.sessions:,} sessions, streaming, budget 4 GB, "
        f"median of {args.repeat}"
    )
    table(
        [
            "run",
            "time",
            "÷ full build",
            "factors / silver / gold",
            "silver written (bars / checks)",
            "gold files",
            "peak RSS",
        ],
        rows,
    )
    if "executors" in cases:
        result["executors"] = executors(base, args)
    return result


def _counted(times: int, setup: Callable[[], None], lake: Path) -> list[dict[str, Any]]:
    runs = []
    for _ in range(times):
        setup()
        before = file_ids(lake)
        run = checked(run_child(kind="run", lake=str(lake)))
        run["files"] = changes(before, file_ids(lake))
        runs.append(run)
    return runs


def _row(label: str, runs: list[dict[str, Any]], s: float, full_s: float, spread: str) -> list[Any]:
    last = runs[-1]
    t = last["timings"]
    files = last.get("files", {})
    written = last["silver_written"]
    silver = f"{written.get('stocks_daily', 0)} / {written.get('corporate_action_checks', 0)}"
    gold = (
        f"{files.get('gold_replaced', 0)} replaced, {files.get('gold_appended', 0)} appended, "
        f"{files.get('gold_created', 0)} created (of {files.get('gold_files', 0):,})"
        if files
        else f"{last['gold'][0]['symbols'] * 8:,} created"
    )
    return [
        label,
        f"{s:.2f} s ({spread})",
        f"{s / full_s:.3f}",
        f"{t.get('factors', 0):.2f} / {t.get('silver', 0):.2f} / {t.get('gold', 0):.2f}",
        silver,
        gold,
        f"{last['peak_mb']:.0f} MB",
    ]


def executors(base: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    configs = [
        ("streaming", {"mode": "streaming"}),
        ("batch (2 threads)", {"mode": "batch", "batch": 2}),
        ("parallel (2 processes)", {"mode": "parallel", "workers": 2}),
        ("dask (LocalCluster, 2 workers)", {"mode": "streaming", "workers": 2, "executor": "dask"}),
    ]
    rows, out = [], []
    for label, config in configs:
        runs = repeat(args.repeat, lambda: reset_built(base), kind="run", lake=str(base), **config)
        s, spread = median(runs, lambda r: r["seconds"])
        t = runs[-1]["timings"]
        main = statistics.median(r["peak_mb"] for r in runs)
        tree = [r["tree_peak_mb"] for r in runs if "tree_peak_mb" in r]
        workers = [r["workers_hwm_mb"] for r in runs if "workers_hwm_mb" in r]
        rows.append(
            [
                label,
                f"{s:.2f} s ({spread})",
                f"{t['silver']:.2f} / {t['gold']:.2f}",
                f"{main:.0f} MB",
                f"{statistics.median(workers):.0f} MB ({runs[-1]['workers']} processes)" if workers else "–",
                f"{statistics.median(tree):.0f} MB" if tree else f"{main:.0f} MB",
            ]
        )
        out.append({"label": label, "runs": runs})
    print(f"\nexecutors, full build of {args.tickers:,} × {args.sessions:,}, median of {args.repeat}")
    table(["executor", "time", "silver / gold", "main VmHWM", "Σ child VmHWM", "peak Σ RSS (tree)"], rows)
    return out


# -- scaling --------------------------------------------------------------------------------------------


def scaling(work: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    """One full build per size and budget, then a no-op re-run (nothing changed): the fixed cost of a run
    at that history length."""
    sizes = sorted(args.scaling_sessions)
    src, meta = master(work, args.scaling_tickers, sizes[-1], 0)
    lake = work / "scale-lake"
    rows, out = [], []
    for sessions in sizes:
        make_lake(src, lake, sessions)
        bars = sum(
            json.loads(m.read_text())["rows_bronze"] for m in (lake / "_manifests" / "bronze").rglob("*.json")
        )
        for budget in args.budgets:
            reset_built(lake)
            run = run_child(kind="run", lake=str(lake), budget=budget)
            t = run["timings"]
            failed = bool(run["failures"])
            noop = None if failed else checked(run_child(kind="run", lake=str(lake), budget=budget))
            gold = "FAILED" if failed else f"{t['gold']:.1f}"
            rows.append(
                [
                    f"{args.scaling_tickers:,} × {sessions:,} ({bars / 1e6:.1f} M bars)",
                    f"{budget:g} GB",
                    f"{run['seconds']:.1f} s" + (" (gold failed)" if failed else ""),
                    f"{t['factors']:.1f} / {t['silver']:.1f} / {gold}",
                    f"{run['peak_mb']:.0f} MB",
                    "–" if noop is None else f"{noop['seconds']:.2f} s",
                ]
            )
            out.append({"sessions": sessions, "budget": budget, "run": run, "noop": noop})
            print(" | ".join(rows[-1]), flush=True)
            if failed:
                print("   ", run["failures"][0][:200], flush=True)
    discard(lake)
    print(f"\nfull build scaling, streaming, one run each ({meta['rows']:,} rows at the largest size)")
    table(
        [
            "tickers × sessions",
            "budget",
            "full build",
            "factors / silver / gold",
            "peak RSS",
            "no-op re-run",
        ],
        rows,
    )
    return out


# -- silver and gold vs their floors ---------------------------------------------------------------------


def stages(work: Path, args: argparse.Namespace, cases: set[str]) -> dict[str, Any]:
    src, meta = master(work, args.stage_tickers, args.stage_sessions, 1)
    days = [dt.date.fromisoformat(d) for d in meta["days"]]
    lake = work / "stage-lake"
    make_lake(src, lake, args.stage_sessions)
    out: dict[str, Any] = {}
    if "silver" in cases:
        out["silver"] = silver_case(work, lake, args)
    checked(run_child(kind="run", lake=str(lake), last_stage="silver"))  # complete silver for gold
    if "gold" in cases:
        out["gold"] = gold_case(work, src, lake, days, args)
    return out


def interleaved(times: int, steps: dict[str, tuple[Callable[[], None], dict[str, Any]]]) -> dict[str, Any]:
    """Each step (setup, child parameters) once per round, ``times`` rounds: the machine's noise (another
    user, the disk's state) then falls on every side alike."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in steps}
    for _ in range(times):
        for name, (setup, params) in steps.items():
            setup()
            runs[name].append(checked(run_child(**params)))
    return runs


def silver_case(work: Path, lake: Path, args: argparse.Namespace) -> dict[str, Any]:
    baseline_dir = work / "polars-silver"
    runs = interleaved(
        args.repeat,
        {
            "stage": (lambda: reset_built(lake), {"kind": "run", "lake": str(lake), "last_stage": "silver"}),
            "main": (lambda: reset_built(lake), {"kind": "silver_main", "lake": str(lake)}),
            # The baseline reads the factor tables the previous step wrote.
            "bare": (
                lambda: discard(baseline_dir),
                {"kind": "polars", "lake": str(lake), "out": str(baseline_dir)},
            ),
        },
    )
    same = _same_silver(Lake(lake), baseline_dir)
    base_s, base_spread = median(runs["bare"], lambda r: r["seconds"])
    all_s, all_spread = median(runs["stage"], lambda r: r["timings"]["silver"])
    main_s, main_spread = median(runs["main"], lambda r: r["seconds"])
    print(
        f"\nsilver, {args.stage_tickers:,} tickers × {args.stage_sessions:,} sessions in {work}, "
        f"median of {args.repeat} (interleaved); baseline output equal to silver's: {same}"
    )
    table(
        ["run", "time", "× bare Polars", "peak RSS"],
        [
            [
                "bare Polars (read all, one aligned frame, 1 file per session)",
                f"{base_s:.2f} s ({base_spread})",
                "1.00",
                f"{runs['bare'][-1]['peak_mb']:.0f} MB",
            ],
            [
                "silver stage, main table only (5 features)",
                f"{main_s:.2f} s ({main_spread})",
                f"{main_s / base_s:.2f}",
                f"{runs['main'][-1]['peak_mb']:.0f} MB",
            ],
            [
                "silver stage, both tables (features + corporate-action checks)",
                f"{all_s:.2f} s ({all_spread})",
                f"{all_s / base_s:.2f}",
                f"{runs['stage'][-1]['peak_mb']:.0f} MB",
            ],
        ],
    )
    return {**runs, "same": same}


def _same_silver(lake: Lake, baseline: Path) -> bool:
    for path in sorted(baseline.iterdir())[::97]:
        day = dt.date.fromisoformat(path.name[5:])
        ours = pl.read_parquet(lake.silver_partition(SPEC, day))
        theirs = pl.read_parquet(path / "part.parquet").select(ours.columns)
        if not ours.equals(theirs):
            return False
    return True


def gold_case(
    work: Path, src: Path, lake: Path, days: list[dt.date], args: argparse.Namespace
) -> dict[str, Any]:
    qm = Lake(lake)
    root, state = qm.qlib_root(SPEC.name, "day"), qm.gold_state_dir(SPEC.name, "day")
    scratch, built = work / "gold-scratch", work / "gold-built"
    frame_path, calendar_path = work / "qlib-frame.parquet", work / "qlib-calendar.json"
    saved = work / "gold-saved"
    for leftover in (scratch, built, saved):
        discard(leftover)
    # A first build gives the floor its bytes and the baseline its input.
    reset_built(lake, ("gold",))
    checked(run_child(kind="run", lake=str(lake)))
    shutil.copytree(root, built)
    _qlib_input(qm, days[: args.stage_sessions], frame_path, calendar_path)
    full = interleaved(
        args.repeat,
        {
            "ours": (lambda: reset_built(lake, ("gold",)), {"kind": "run", "lake": str(lake), "catalog": 1}),
            "floor": (
                lambda: discard(scratch),
                {"kind": "floor", "mode": "full", "source": str(built), "target": str(scratch)},
            ),
            "upstream": (
                lambda: discard(scratch),
                {"kind": "upstream", "mode": "full", "frame": str(frame_path),
                 "calendar": str(calendar_path), "root": str(scratch)},
            ),
        },
    )  # fmt: skip
    files, problems = compare_trees(root, scratch)
    rows = _gold_rows("full build", full, files, problems)
    # One new session: silver first (not timed), then gold alone from the same saved state each time.
    add_sessions(src, lake, days[args.stage_sessions :])
    checked(run_child(kind="run", lake=str(lake), last_stage="silver"))
    shutil.copytree(root, saved / "root")
    shutil.copytree(state, saved / "state")
    checked(run_child(kind="run", lake=str(lake)))
    discard(built)
    shutil.copytree(root, built)
    tails = []
    for path in built.rglob("*.bin"):
        rel = path.relative_to(built)
        before = saved / "root" / rel
        at = before.stat().st_size if before.exists() else 0
        if path.stat().st_size != at:
            tails.append((str(rel), at))
    tails_path = work / "tails.json"
    tails_path.write_text(json.dumps(tails))
    _qlib_input(qm, days[args.stage_sessions :], frame_path, calendar_path)

    def restore() -> None:
        for a, b in ((saved / "root", root), (saved / "state", state)):
            discard(b)
            shutil.copytree(a, b)

    def fresh() -> None:
        discard(scratch)
        shutil.copytree(saved / "root", scratch)

    append = interleaved(
        args.repeat,
        {
            "ours": (restore, {"kind": "run", "lake": str(lake), "catalog": True}),
            "floor": (
                fresh,
                {"kind": "floor", "mode": "append", "source": str(built), "target": str(scratch),
                 "tails": str(tails_path)},
            ),
            "upstream": (
                fresh,
                {"kind": "upstream", "mode": "append", "frame": str(frame_path),
                 "calendar": str(calendar_path), "root": str(scratch)},
            ),
        },
    )  # fmt: skip
    files_a, problems_a = compare_trees(root, scratch)
    rows += _gold_rows(f"append 1 session ({len(tails):,} files grow)", append, files_a, problems_a)
    print(
        f"\ngold, {args.stage_tickers:,} tickers × {args.stage_sessions:,} sessions in {work}, "
        f"median of {args.repeat} (interleaved)"
    )
    table(["case", "run", "time", "× floor", "peak RSS"], rows)
    for path in (frame_path, calendar_path, tails_path):
        path.unlink()
    return {"full": {**full, "identical": not problems}, "append": {**append, "identical": not problems_a}}


def _qlib_input(lake: Lake, days: list[dt.date], frame_path: Path, calendar_path: Path) -> None:
    """The long frame the gold stage writes (silver rows × factors) for the upstream-style baseline."""
    target = SPEC.gold[0]
    silver = pl.read_parquet(
        [str(lake.silver_partition(SPEC, d)) for d in days], columns=list(target.columns)
    )
    intervals = pl.read_parquet(lake.adjustment_factors())
    qlib_daily_frame(silver, intervals).write_parquet(frame_path)
    calendar = (lake.qlib_root(SPEC.name, "day") / "calendars" / "day.txt").read_text().split()
    calendar_path.write_text(json.dumps(calendar))


def _gold_rows(case: str, runs: dict[str, Any], files: int, problems: list[str]) -> list[list[Any]]:
    ours, floor, upstream = runs["ours"], runs["floor"], runs["upstream"]
    floor_s, floor_spread = median(floor, lambda r: r["seconds"])
    gold_s, gold_spread = median(ours, lambda r: r["timings"]["gold"])
    bare_s = statistics.median(r["timings"]["gold"] - r["catalog_s"] for r in ours)
    up_s, up_spread = median(upstream, lambda r: r["seconds"])
    same = "byte-identical" if not problems else f"DIFFERS ({problems[0]})"
    return [
        [case, f"file-system floor ({floor[-1]['files']:,} .bin files + calendar + instruments)",
         f"{floor_s:.2f} s ({floor_spread})", "1.00", "–"],
        ["", "quantmini gold stage", f"{gold_s:.2f} s ({gold_spread})", f"{gold_s / floor_s:.2f}",
         f"{ours[-1]['peak_mb']:.0f} MB"],
        ["", "… without the DuckDB catalog rebuild", f"{bare_s:.2f} s", f"{bare_s / floor_s:.2f}", ""],
        ["", f"upstream-style per-symbol pandas ({same}, {files:,} files)", f"{up_s:.2f} s ({up_spread})",
         f"{up_s / floor_s:.2f}", f"{upstream[-1]['peak_mb']:.0f} MB"],
    ]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    choices = ("incremental", "split", "executors", "scaling", "silver", "gold")
    parser.add_argument("cases", nargs="+", choices=choices)
    parser.add_argument("--workdir", type=Path, required=True, help="scratch directory (GBs at full scale)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tickers", type=int, default=2000)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--scaling-tickers", type=int, default=12000)
    parser.add_argument("--scaling-sessions", type=int, nargs="+", default=[500, 1000, 2500, 5000])
    parser.add_argument("--budgets", type=float, nargs="+", default=[4.0, 1.0])
    parser.add_argument("--stage-tickers", type=int, default=5000)
    parser.add_argument("--stage-sessions", type=int, default=1260)
    parser.add_argument("--keep", action="store_true", help="keep generated bronze for the next run")
    args = parser.parse_args()
    cases = set(args.cases)
    args.workdir.mkdir(parents=True, exist_ok=True)
    TRASH.append(args.workdir / ".trash")
    results: dict[str, Any] = {}
    if cases & {"incremental", "split", "executors"}:
        results["incremental"] = incremental(args.workdir, args, cases)
    if "scaling" in cases:
        results["scaling"] = scaling(args.workdir, args)
    if cases & {"silver", "gold"}:
        results["stages"] = stages(args.workdir, args, cases)
    (args.workdir / f"results-{'-'.join(sorted(cases))}.json").write_text(json.dumps(results, default=str))
    shutil.rmtree(TRASH[0], ignore_errors=True)
    if not args.keep:
        for path in args.workdir.iterdir():
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
