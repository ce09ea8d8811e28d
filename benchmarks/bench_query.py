"""Benchmark the query layer cold, warm and cached, in-process and through the command line, against a
plain ``pl.scan_parquet`` over the lake reading the same rows.

    uv run python benchmarks/bench_query.py --workdir DIR [--small] [--repeat 5] [--drop-caches]

Lakes (generated once per ``--workdir``; not timed):

* daily: ``bench_engine_data.generate`` bronze [5,000 tickers × 1,260 sessions, five years to
  2025-12-31; ``--small``: 400 × 300] with its splits and dividends as reference tables, then the
  pipeline's silver stage (a partition per session, the factor table) and the DuckDB catalog;
* minute: ``bench_minute_gold.generate_minute`` [2,000 tickers × 21 sessions of minute bars, 04:00 to
  20:00, a quarter of the tickers trading every regular minute; ``--small``: 200 × 6], its silver
  partitions written by the pipeline's silver stage (row groups of ``io.parquet.ROW_GROUP_ROWS``).

Cases, all adjusted for splits and dividends (total return, the default): one symbol × the last year
of daily bars; every symbol's bar of the last session (``--all-symbols``); the most traded symbol's
minute bars over the whole month; a panel of ``close`` for 500 symbols (``--small``: 100) drawn at
random over the whole five years (``quantmini.query.panel``).

* cold: the first query of a fresh interpreter (imports before the clock), no result cache, the OS
  page cache as the earlier runs left it (the lake is in memory). With ``--drop-caches`` (root only)
  each cold process is also run right after ``echo 3 > /proc/sys/vm/drop_caches`` ("no page cache");
* warm: the same query again in the same engine, ``QueryEngine(root, cache_size=0, cache_mb=0)`` (no
  result cache; DuckDB's Parquet footers cached); ``panel`` and ``sql`` make a new engine or
  connection per call, so theirs is the same call again in the same process;
* cached: answered from the lake's result cache on disk: a fresh process after another one answered
  the query once (and stored it), a new engine per query (``cache_size=0``: nothing in memory);
* scan: ``bench_query_scan.scan``, plain Polars over the glob of every silver partition, the factor
  table as-of joined; "scan of the same files": over exactly the partitions the engine reads.

Every answer is checked equal to the scan's (values, order, types; ``sql`` hands ``ts`` over in UTC,
compared as the same instants) before anything is timed. Each
in-process measurement runs in a child interpreter reporting its times and peak RSS (VmHWM, the
interpreter and imports included; the RSS after imports is shown beside it); cold is the median of
``--cold`` processes, warm and cached of ``--repeat`` queries. The command-line rows run the virtual
environment's ``quantmini`` (``data query … --format csv`` to /dev/null, with and without ``--no-cache``;
``quantmini sql``) and ``python bench_query_scan.py`` in turn, ``--repeat`` rounds after one warm-up
round (which also writes the bytecode: ``PYTHONDONTWRITEBYTECODE`` is unset, as for a user): whole-process
wall time and peak RSS (GNU time's ``%M``), medians, and the median of the per-round ratios to the scan.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from bench_engine_data import _status, generate, make_lake
from bench_engine_data import run_child as engine_child
from bench_minute_gold import generate_minute
from bench_query_scan import scan
from quantmini.datasets import get_spec
from quantmini.io.lake import Lake

#: Size of the lake's result cache in the runs (``query.cache_mb``).
CACHE_MB = 1024
SCAN_SCRIPT = Path(__file__).with_name("bench_query_scan.py")
BIN = Path(sys.executable).parent


# -- lakes and cases -------------------------------------------------------------------------------------


def daily_lake(work: Path, tickers: int, sessions: int) -> Path:
    master, lake = work / f"daily-master-{tickers}x{sessions}", work / f"daily-{tickers}x{sessions}"
    done = lake / "_bench_built"
    if done.exists():
        return lake
    t0 = time.perf_counter()
    meta = generate(master, tickers, sessions, 0)
    make_lake(master, lake, sessions)
    run = engine_child(kind="run", lake=str(lake), last_stage="silver")
    if run["failures"]:
        raise SystemExit(f"silver failed: {run['failures'][:3]}")
    _catalog(lake)
    done.write_text("")
    print(
        f"daily lake: {tickers:,} tickers × {sessions:,} sessions, {meta['rows']:,} bars "
        f"(generated and built in {time.perf_counter() - t0:.0f} s)",
        flush=True,
    )
    return lake


def minute_lake(work: Path, tickers: int, sessions: int) -> Path:
    lake = work / f"minute-{tickers}x{sessions}+1"
    done = lake / "_bench_built"
    if done.exists():
        return lake
    t0 = time.perf_counter()
    meta = generate_minute(lake, tickers, sessions)
    _catalog(lake)
    done.write_text("")
    print(
        f"minute lake: {tickers:,} tickers × {sessions + 1} sessions, {meta['minute_rows']:,} minute bars "
        f"(generated and built in {time.perf_counter() - t0:.0f} s)",
        flush=True,
    )
    return lake


def _catalog(lake: Path) -> None:
    from quantmini.io.duckdb_catalog import build_catalog

    build_catalog(lake)


def silver_files(lake: Path, data_type: str) -> list[Path]:
    return sorted(Lake(lake).silver_dir(get_spec(data_type)).glob("date=*/part.parquet"))


def make_cases(daily: Path, minute: Path, panel_symbols: int) -> list[dict[str, Any]]:
    from quantmini.query import default_fields

    days = silver_files(daily, "stocks_daily")
    first, last = (pl.read_parquet(days[i], columns=["ticker"])["ticker"] for i in (0, -1))
    always = sorted(set(first) & set(last))
    year = [_session(p) for p in days[-252:]]
    rng = np.random.default_rng(3)
    listed = sorted(set(last))
    panel = sorted(rng.choice(listed, min(panel_symbols, len(listed)), replace=False).tolist())
    months = silver_files(minute, "stocks_minute")
    busiest = pl.read_parquet(months[-1], columns=["ticker"])["ticker"].value_counts(sort=True)["ticker"][0]
    cases = [
        ("symbol-year", "one symbol × one year, daily", daily, "stocks_daily", [always[len(always) // 2]],
         year[0], year[-1], None),
        ("cross-section", "one session × all symbols, daily", daily, "stocks_daily", None,
         _session(days[-1]), _session(days[-1]), None),
        ("minute-month", "one symbol × one month, minute", minute, "stocks_minute", [busiest],
         _session(months[0]), _session(months[-1]), None),
        ("panel", f"{len(days):,} sessions × {len(panel)} symbols, close (panel)", daily, "stocks_daily",
         panel, _session(days[0]), _session(days[-1]), "close"),
    ]  # fmt: skip
    out = []
    for name, label, lake, data_type, symbols, start, end, field in cases:
        spec = get_spec(data_type)
        columns = list(default_fields(spec)) if field is None else ["ticker", "session_date", field]
        out.append(
            {
                "name": name,
                "label": label,
                "lake": str(lake),
                "data_type": data_type,
                "symbols": symbols,
                "start": start.isoformat(),
                "end": end.isoformat(),
                "panel": field,
                "columns": columns,
                "glob": str(Lake(lake).silver_dir(spec) / "date=*" / "part.parquet"),
                "factors": str(Lake(lake).adjustment_factors()),
                "sql": sql_statement(data_type, symbols, start, end, columns, field),
            }
        )
    return out


def _session(partition: Path) -> dt.date:
    return dt.date.fromisoformat(partition.parent.name.removeprefix("date="))


def sql_statement(
    data_type: str,
    symbols: list[str] | None,
    start: dt.date,
    end: dt.date,
    columns: list[str],
    field: str | None,
) -> str:
    """The case as SQL over the catalog's ``adjusted_<data type>`` view (a panel as a ``PIVOT``); values
    are written into the text, as a user at the command line would."""
    adjusted = {"open", "high", "low", "close", "volume"}
    select = ", ".join(f"adj_{c} AS {c}" if c in adjusted else c for c in columns)
    where = f"session_date BETWEEN DATE '{start}' AND DATE '{end}'"
    if symbols is not None:
        where = "ticker IN (" + ", ".join(f"'{s}'" for s in symbols) + f") AND {where}"
    rows = f"SELECT {select} FROM adjusted_{data_type} WHERE {where}"
    if field is None:
        return f"{rows} ORDER BY ticker, window_start"
    # With its values listed, a PIVOT is one SELECT (without, DuckDB runs two statements: refused).
    names = ", ".join(f"'{s}'" for s in sorted(symbols or ()))
    pivot = f"PIVOT ({rows}) ON ticker IN ({names}) USING first({field})"
    return f"{pivot} GROUP BY session_date ORDER BY session_date"


# -- children --------------------------------------------------------------------------------------------


def run_child(drop: bool = False, **params: Any) -> dict[str, Any]:
    """One measurement in a fresh interpreter (after dropping the page cache when ``drop``)."""
    if drop and not drop_page_cache():
        raise SystemExit("cannot drop the page cache (needs root and a writable /proc/sys/vm/drop_caches)")
    return engine_child(script=__file__, **params)


def drop_page_cache() -> bool:
    """``echo 3 > /proc/sys/vm/drop_caches`` (after a sync); whether it worked."""
    if os.geteuid() != 0:
        return False
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


def _spec(case: dict[str, Any]) -> Any:
    from quantmini.query import QuerySpec

    return QuerySpec(
        data_type=case["data_type"],
        symbols=tuple(case["symbols"] or ()),
        start=dt.date.fromisoformat(case["start"]),
        end=dt.date.fromisoformat(case["end"]),
        all_symbols=case["symbols"] is None,
    )


def _panel(case: dict[str, Any], cache: bool) -> pl.DataFrame:
    from quantmini.query import panel

    frame: pl.DataFrame = panel(
        case["lake"],
        case["data_type"],
        case["panel"],
        dt.date.fromisoformat(case["start"]),
        dt.date.fromisoformat(case["end"]),
        case["symbols"],
        cache=cache,
    )
    return frame


def _timed(first: Any, again: Any, repeat: int) -> dict[str, Any]:
    """``first()`` timed once (cold), then ``again()`` ``repeat`` times; with the peak RSS."""
    idle = _status("self", "VmRSS")["VmRSS"]
    t0 = time.perf_counter()
    first()
    cold = time.perf_counter() - t0
    warm = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        again()
        warm.append(time.perf_counter() - t0)
    peak = _status("self", "VmHWM")["VmHWM"]
    return {"cold": cold, "warm": warm, "idle_mb": idle / 1e6, "peak_mb": peak / 1e6}


def child_engine(p: dict[str, Any]) -> dict[str, Any]:
    """The query through ``QueryEngine`` (a panel through ``panel``): without a result cache, cold then
    warm; or (``cached``) each time from a new engine with the lake's disk cache on."""
    from quantmini.query import QueryEngine

    case, root = p["case"], Path(p["case"]["lake"])
    if case["panel"] is not None:
        entries = sorted((root / "_cache" / "query").rglob("*.parquet"))
        before = [e.stat().st_mtime_ns for e in entries]
        run = _timed(*[lambda: _panel(case, p["cached"])] * 2, p["repeat"])
        if p["cached"]:  # a hit touches its entry (least recently used first out)
            run["hits"] = sum(e.stat().st_mtime_ns != b for e, b in zip(entries, before, strict=True))
        return run
    spec = _spec(case)
    if p["cached"]:
        engines: list[QueryEngine] = []

        def fresh() -> None:
            engines.append(QueryEngine(root, cache_size=0, cache_mb=CACHE_MB))
            engines[-1].query(spec)

        run = _timed(fresh, fresh, p["repeat"])
        run["hits"] = sum(e.stats["hits"] for e in engines)
        return run
    engine = QueryEngine(root, cache_size=0, cache_mb=0)
    return _timed(*[lambda: engine.query(spec)] * 2, p["repeat"])


def child_sql(p: dict[str, Any]) -> dict[str, Any]:
    """The case's SQL through ``quantmini.query.sql`` (the catalog's views; no result cache)."""
    from quantmini.query import sql

    case = p["case"]
    return _timed(*[lambda: sql(case["lake"], case["sql"])] * 2, p["repeat"])


def child_scan(p: dict[str, Any]) -> dict[str, Any]:
    """The baseline: over the lake's glob, or over the partitions the engine reads (``files``)."""
    case = p["case"]
    source = json.loads(Path(p["files"]).read_text()) if p.get("files") else case["glob"]
    return _timed(*[lambda: scan(case, source)] * 2, p["repeat"])


def child_check(p: dict[str, Any]) -> dict[str, Any]:
    """Every reader's answer against the scan's, untimed; the partitions the engine reads."""
    from polars.testing import assert_frame_equal

    from quantmini.query import QueryEngine, sql

    case = p["case"]
    spec = _spec(case)
    engine = QueryEngine(Path(case["lake"]), cache_size=0, cache_mb=0)
    files = [str(f) for f in engine.files_for(spec)]
    Path(p["files"]).write_text(json.dumps(files))
    want = scan(case, case["glob"])
    answers = {
        "engine": _panel(case, False) if case["panel"] else engine.query(spec),
        "sql": sql(case["lake"], case["sql"]),
        "scan of the same files": scan(case, files),
    }
    problems = {}
    for name, got in answers.items():
        if name == "sql":  # DuckDB hands timestamps over in UTC: the same instants
            zoned = {c: t for c, t in want.schema.items() if isinstance(t, pl.Datetime) and t.time_zone}
            got = got.with_columns(pl.col(c).dt.convert_time_zone(t.time_zone) for c, t in zoned.items())
        try:
            assert_frame_equal(got.select(want.columns), want, check_exact=True)
            if got.columns != want.columns:
                raise AssertionError(f"columns in another order: {got.columns[:5]} …")
        except AssertionError as exc:
            problems[name] = str(exc)[:500]
    long = scan(case, case["glob"], "long")
    return {"rows": want.height, "columns": want.width, "long_rows": long.height, "files": len(files),
            "problems": problems}  # fmt: skip


CHILDREN = {"engine": child_engine, "sql": child_sql, "scan": child_scan, "check": child_check}


# -- in-process ------------------------------------------------------------------------------------------


def in_process(case: dict[str, Any], work: Path, args: argparse.Namespace, drop: bool) -> dict[str, Any]:
    files = work / f"files-{case['name']}.json"
    check = run_child(kind="check", case=case, files=str(files))
    if check["problems"]:
        raise SystemExit(f"{case['name']}: answers differ from the scan's: {check['problems']}")
    readers = {
        "quantmini (QueryEngine)" if case["panel"] is None else "quantmini (panel)": {"kind": "engine"},
        "quantmini.sql (catalog views)": {"kind": "sql"},
        "plain scan of the lake": {"kind": "scan"},
        "scan of the same files": {"kind": "scan", "files": str(files)},
    }
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {name: {"cold": [], "dropped": []} for name in readers}
    # Interleaved, so that the machine's drift falls on every reader alike; the runs after a drop of
    # the page cache (which also drops the kernel's directory entries) come last.
    for _ in range(args.cold):
        for name, params in readers.items():
            runs[name]["cold"].append(run_child(case=case, repeat=args.repeat, cached=False, **params))
    cache = Path(case["lake"]) / "_cache" / "query"
    shutil.rmtree(cache, ignore_errors=True)
    engine = next(iter(readers))
    prime = run_child(kind="engine", case=case, repeat=0, cached=True)  # a miss: stores the answer
    cached = run_child(kind="engine", case=case, repeat=args.repeat, cached=True)
    if cached["hits"] < (1 if case["panel"] else 1 + args.repeat):
        raise SystemExit(f"{case['name']}: the cached runs missed the cache ({cached['hits']} hits)")
    for _ in range(args.cold if drop else 0):
        for name, params in readers.items():
            runs[name]["dropped"].append(run_child(drop=True, case=case, repeat=0, cached=False, **params))
    return {"check": check, "runs": runs, "engine": engine, "prime": prime, "cached": cached}


def _med(values: list[float]) -> float:
    return statistics.median(values)


def report_in_process(case: dict[str, Any], res: dict[str, Any], drop: bool) -> list[list[str]]:
    runs, check = res["runs"], res["check"]
    base = runs["plain scan of the lake"]
    base_cold = _med([r["cold"] for r in base["cold"]])
    base_warm = _med([w for r in base["cold"] for w in r["warm"]])
    base_drop = _med([r["cold"] for r in base["dropped"]]) if drop else None
    rows = []
    for name, sets in runs.items():
        cold = _med([r["cold"] for r in sets["cold"]])
        warm = _med([w for r in sets["cold"] for w in r["warm"]])
        dropped = _med([r["cold"] for r in sets["dropped"]]) if drop else None
        peak = _med([r["peak_mb"] for r in sets["cold"]])
        idle = _med([r["idle_mb"] for r in sets["cold"]])
        cached = res["cached"] if name == res["engine"] else None
        cached_s = _med(cached["warm"]) if cached else None
        rows.append(
            [
                name,
                _s(cold),
                _s(dropped),
                _s(warm),
                _s(cached_s) + (f" (1st {_s(cached['cold'])})" if cached else ""),
                f"{peak:,.0f} MB ({idle:,.0f})",
                f"{cold / base_cold:.2f}",
                "–" if dropped is None or base_drop is None else f"{dropped / base_drop:.2f}",
                f"{warm / base_warm:.2f}",
                "–" if cached_s is None else f"{cached_s / base_warm:.3f}",
            ]
        )
    size = f"{check['rows']:,} rows × {check['columns']} columns, {check['files']:,} partitions read"
    rows[0][0] += f" — {case['label']}: {size}"
    return rows


def _s(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


# -- command line ----------------------------------------------------------------------------------------


def commands(case: dict[str, Any], work: Path) -> dict[str, tuple[list[str], str]]:
    """Command name → (argv, the scan command it is compared with)."""
    query = [str(BIN / "quantmini"), "data", "query", "--data-root", case["lake"], "--data-type",
             case["data_type"], "--start-date", case["start"], "--end-date", case["end"],
             "--format", "csv"]  # fmt: skip
    if case["symbols"] is None:
        query.append("--all-symbols")
    else:
        query += ["--symbols", ",".join(case["symbols"])]
    if case["panel"] is not None:
        query += ["--fields", ",".join(case["columns"])]
    scans = {}
    for shape in ("long", "wide") if case["panel"] else ("long",):
        path = work / f"scan-{case['name']}-{shape}.json"
        path.write_text(json.dumps({"case": case, "shape": shape}))
        scans[shape] = [sys.executable, str(SCAN_SCRIPT), str(path)]
    wide = "wide" if case["panel"] else "long"
    long_label = "python bench_query_scan.py" + (" (long)" if case["panel"] else "")
    out = {
        "quantmini data query --no-cache": ([*query, "--no-cache"], long_label),
        "quantmini data query (cached)": (query, long_label),
        "quantmini sql" + (" (PIVOT)" if case["panel"] else ""): (
            [str(BIN / "quantmini"), "sql", case["sql"], "--data-root", case["lake"], "--format", "csv"],
            "python bench_query_scan.py" + (" (pivot)" if case["panel"] else ""),
        ),
        long_label: (scans["long"], long_label),
    }
    if case["panel"]:
        out["python bench_query_scan.py (pivot)"] = (scans[wide], "python bench_query_scan.py (pivot)")
    return out


def timed_command(argv: list[str], work: Path, capture: bool = False) -> dict[str, Any]:
    """Wall time and peak RSS of one whole process; its stdout's lines when ``capture``.

    The peak is GNU time's (``wait4``'s ``ru_maxrss``): started from this process, whose memory a
    forked child counts until it execs, the command's own figure would never read below ours."""
    out = subprocess.PIPE if capture else subprocess.DEVNULL
    usage = work / "time.txt"
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        ["/usr/bin/time", "-f", "%M", "-o", str(usage), *argv], stdout=out, stderr=subprocess.PIPE
    )
    lines = sum(1 for _ in proc.stdout) if capture and proc.stdout else None
    _, stderr = proc.communicate()
    seconds = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"{argv[:4]} … failed ({proc.returncode}): {stderr.decode()[-2000:]}")
    peak_kb = int(usage.read_text().split()[-1])
    return {"seconds": seconds, "peak_mb": peak_kb * 1024 / 1e6, "lines": lines}


def command_line(case: dict[str, Any], work: Path, args: argparse.Namespace) -> dict[str, Any]:
    cmds = commands(case, work)
    shutil.rmtree(Path(case["lake"]) / "_cache" / "query", ignore_errors=True)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in cmds}
    lines = {}
    for round_ in range(args.repeat + 1):
        for name, (argv, _) in cmds.items():
            run = timed_command(argv, work, capture=round_ == 0)  # the warm-up round also fills the cache
            if round_ == 0:
                lines[name] = run["lines"]
            else:
                runs[name].append(run)
    # Same rows as the scan (the CSV's lines: header + rows), each command against its own baseline.
    for name, (_, base) in cmds.items():
        if lines[name] != lines[base]:
            raise SystemExit(f"{case['name']}: {name} printed {lines[name]} lines, {base} {lines[base]}")
    return {"runs": runs, "baselines": {name: base for name, (_, base) in cmds.items()}}


def report_command_line(case: dict[str, Any], res: dict[str, Any]) -> list[list[str]]:
    rows = []
    for name, runs in res["runs"].items():
        base = res["runs"][res["baselines"][name]]
        seconds = [r["seconds"] for r in runs]
        ratios = [r["seconds"] / b["seconds"] for r, b in zip(runs, base, strict=True)]
        rows.append(
            [
                name,
                f"{_s(_med(seconds))} ({_s(min(seconds))}–{_s(max(seconds))})",
                f"{_med([r['peak_mb'] for r in runs]):,.0f} MB",
                f"{_med(ratios):.2f}",
            ]
        )
    rows[0][0] = f"{case['label']}: {rows[0][0]}"
    return rows


def table(header: list[str], rows: list[list[str]]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, required=True, help="scratch directory for the lakes")
    parser.add_argument("--small", action="store_true", help="small lakes, for a quick run")
    parser.add_argument("--repeat", type=int, default=5, help="warm and cached queries; command rounds")
    parser.add_argument("--cold", type=int, default=3, help="cold processes per reader")
    parser.add_argument(
        "--drop-caches", action="store_true", help="also time cold runs after dropping the page cache (root)"
    )
    parser.add_argument("--cases", nargs="+", help="only these cases (symbol-year cross-section …)")
    parser.add_argument("--no-cli", action="store_true", help="skip the command-line rows")
    args = parser.parse_args()
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    # Every process (children, commands) reads the same settings: no user config, a 1 GB result cache.
    (work / "config").mkdir(exist_ok=True)
    os.environ["QUANTMINI_CONFIG_DIR"] = str(work / "config")
    os.environ["QUANTMINI_QUERY_CACHE_MB"] = str(CACHE_MB)
    # Bytecode is written and reused, as after a user's first run (the warm-up round writes it).
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    drop = args.drop_caches and drop_page_cache()
    if args.drop_caches and not drop:
        print("cannot drop the page cache here (not root, or /proc/sys/vm is read-only): cold runs only")
    if args.small:
        daily, minute, symbols = daily_lake(work, 400, 300), minute_lake(work, 200, 5), 100
    else:
        daily, minute, symbols = daily_lake(work, 5000, 1260), minute_lake(work, 2000, 20), 500
    cases = [c for c in make_cases(daily, minute, symbols) if not args.cases or c["name"] in args.cases]
    results = []
    rows: list[list[str]] = []
    cli_rows: list[list[str]] = []
    t0 = time.perf_counter()
    for case in cases:
        res = in_process(case, work, args, drop)
        rows += report_in_process(case, res, drop)
        print(" | ".join(rows[-4]), flush=True)
        cli = None if args.no_cli else command_line(case, work, args)
        if cli is not None:
            cli_rows += report_command_line(case, cli)
        results.append({"case": case, "in_process": res, "command_line": cli})
    print(f"\nin-process, median of {args.cold} cold processes and {args.repeat} warm / cached queries "
          f"(measured in {time.perf_counter() - t0:.0f} s)")  # fmt: skip
    table(
        ["reader", "cold", "cold, no page cache", "warm", "cached", "peak RSS (after imports)",
         "cold ÷ scan", "no page cache ÷ scan", "warm ÷ scan", "cached ÷ scan warm"],
        rows,
    )  # fmt: skip
    if cli_rows:
        print(f"command line, whole process, median of {args.repeat} rounds (min–max)")
        table(["command", "wall", "peak RSS", "÷ scan script"], cli_rows)
    name = f"results-query{'-small' if args.small else ''}.json"
    (work / name).write_text(json.dumps(results, default=str))
    with contextlib.suppress(OSError):
        shutil.rmtree(Path(daily) / "_cache")
        shutil.rmtree(Path(minute) / "_cache")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        params = json.loads(sys.argv[2])
        print(json.dumps(CHILDREN[params["kind"]](params)))
    else:
        raise SystemExit(main())
