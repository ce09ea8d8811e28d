"""Benchmark the minute silver transforms against bare Polars computing the same values.

    uv run python benchmarks/bench_minute_silver.py --workdir DIR [--tickers 4800] [--repeat 3] [--buckets 1]

A full-market minute window is generated with the sample generator's price and volume paths
(``quantmini.sample``): 21 XNYS sessions (one output session and the 20 sessions ``volume_rel_20d``
looks back on), 04:00-20:00 with the vendor's ``regular_session`` flag, liquid tickers trading almost
every minute and thin ones a few, two splits inside the lookback, IPOs, delistings and a rename. The
sessions are saved as bronze-layout Parquet (once per ``--workdir``; generation is not timed).

Each measurement runs in its own child interpreter, which reads the window (``--buckets`` > 1: one
contiguous ticker range at a time, as a pipeline task holding a bucket of tickers would), resets its
peak RSS (VmHWM), runs one implementation and reports the time spent in the transform and the peak
RSS from the reset on (the window it read included). Runs alternate between implementations; medians
of ``--repeat`` runs are shown. A separate child checks, untimed, that each pair gives the same rows:
same columns, order and nulls, floats equal within ``rtol = 1e-9``.

* ``stocks_minute_silver`` vs the bare expressions a Polars user would write: a slot grid per ticker,
  ``shift(h).over`` for the returns, ``rolling_std(30).over`` for ``rv_30m``, cumulative sums ``over``
  for the VWAP, and one ``group_by`` of the 20 lookback sessions joined back by (ticker, minute) for the
  same-minute mean volume.
* ``minute_daily_rollups`` vs one ``group_by(ticker, session_date).agg(...)``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from quantmini.core.calendar import sessions as xnys_sessions
from quantmini.core.minute import DAILY_ROLLUP_SCHEMA, FEATURES, minute_daily_rollups, stocks_minute_silver
from quantmini.core.window import FactorContext, SessionWindow
from quantmini.sample.bars import MinuteRows, daily_bars, minute_rows
from quantmini.sample.csvformat import PRICE_SCALE, VOLUME_SCALE
from quantmini.sample.timeline import build_timeline
from quantmini.sample.universe import build_universe


def minute_frame(rows: MinuteRows, tickers: pl.Series, window_start: np.ndarray) -> pl.DataFrame:
    """The generator's minute rows as vendor columns in float prices and shares (tickers per row)."""
    return pl.DataFrame(
        {
            "ticker": tickers,
            "window_start": window_start,
            "open": rows.open / PRICE_SCALE,
            "high": rows.high / PRICE_SCALE,
            "low": rows.low / PRICE_SCALE,
            "close": rows.close / PRICE_SCALE,
            "volume": rows.volume / VOLUME_SCALE,
            "transactions": rows.transactions,
        }
    )


SESSIONS = 21
LAST_SESSION = dt.date(2025, 3, 31)  # the lookback spans the 2025 DST change
CHUNK = 600  # tickers per call of the minute generator
IMPLEMENTATIONS = ("silver", "silver_bare", "rollups", "rollups_bare")
RTOL = 1e-9
BRONZE_COLUMNS = (
    "ticker", "session_date", "ts", "window_start", "open", "high", "low", "close", "volume", "transactions",
    "regular_session",
)  # fmt: skip


# --------------------------------------------------------------------------------------------- data


def window_sessions() -> list[dt.date]:
    days = xnys_sessions(LAST_SESSION - dt.timedelta(days=60), LAST_SESSION)
    return days[-SESSIONS:]


def generate(workdir: Path, tickers: int, seed: int) -> Path:
    """Bronze-layout Parquet for each session of the window under ``workdir``; reused when present."""
    days = window_sessions()
    folder = workdir / f"minute-{tickers}-{seed}"
    done = folder / "multipliers.parquet"
    if done.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    universe = build_universe(tickers, days, seed)
    timeline = build_timeline(days[0], days[-1])
    bars = daily_bars(universe, timeline.decimal, seed)
    specs = universe.tickers
    daily_vol = np.array([t.daily_vol for t in specs])
    trade_size = np.array([t.trade_size for t in specs])
    liquidity = np.array([t.mean_volume for t in specs])
    for index, session in enumerate(timeline.sessions):
        rng = np.random.default_rng([seed, 4, index])
        alive = np.flatnonzero(bars.alive[:, index])
        names = pl.Series([specs[i].symbol_at(index) for i in alive], dtype=pl.String)
        window = timeline.windows[index]
        parts = []
        for lo in range(0, len(alive), CHUNK):
            part = alive[lo : lo + CHUNK]
            day = (bars.open[part, index], bars.close[part, index], bars.volume[part, index], liquidity[part])
            rows = minute_rows(
                rng, day, daily_vol[part], trade_size[part], window, decimal=bool(timeline.decimal[index])
            )
            regular = (rows.minute >= window.regular_open) & (rows.minute < window.regular_close)
            frame = minute_frame(
                rows, names.gather(rows.ticker + lo), timeline.minute_start_ns(index, rows.minute)
            )
            parts.append(frame.with_columns(pl.Series("regular_session", regular)))
        ts = pl.from_epoch("window_start", time_unit="ns").dt.replace_time_zone("UTC")
        frame = (
            pl.concat(parts)
            .with_columns(
                pl.lit(session).alias("session_date"), ts.dt.convert_time_zone("America/New_York").alias("ts")
            )
            .select(BRONZE_COLUMNS)
            .sort("ticker", "window_start")
        )
        frame.write_parquet(folder / f"{session.isoformat()}.parquet")
    splits = [
        (
            specs[s.ticker].symbol_at(s.index),
            days[s.index],
            s.split_from / s.split_to,
            s.split_from / s.split_to,
        )
        for s in universe.splits
    ]
    pl.DataFrame(
        splits,
        schema={
            "ticker": pl.String,
            "session_date": pl.Date,
            "split_multiplier": pl.Float64,
            "total_multiplier": pl.Float64,
        },
        orient="row",
    ).write_parquet(done)
    return folder


def ticker_buckets(folder: Path, buckets: int) -> list[tuple[str, str | None]]:
    """Contiguous ticker ranges ``[lo, hi)`` of about equal bar counts in the output session."""
    if buckets == 1:
        return [("", None)]
    counts = (
        pl.read_parquet(folder / f"{window_sessions()[-1].isoformat()}.parquet", columns=["ticker"])
        .group_by("ticker")
        .len()
        .sort("ticker")
    )
    cumulative = counts["len"].cum_sum().to_numpy()
    total = int(cumulative[-1])
    bounds = [
        str(counts["ticker"][int(np.searchsorted(cumulative, total * b / buckets))])
        for b in range(1, buckets)
    ]
    return list(zip(["", *bounds], [*bounds, None], strict=True))


def load_window(folder: Path, lo: str, hi: str | None) -> SessionWindow:
    days = window_sessions()
    keep = pl.col("ticker") >= lo
    if hi is not None:
        keep &= pl.col("ticker") < hi
    bars = pl.scan_parquet([folder / f"{d.isoformat()}.parquet" for d in days]).filter(keep).collect()
    multipliers = pl.read_parquet(folder / "multipliers.parquet").filter(keep)
    return SessionWindow(
        bars=bars,
        sessions=tuple(days),
        outputs=(days[-1],),
        factors=FactorContext(multipliers, pl.DataFrame(), pl.DataFrame()),
    )


# ----------------------------------------------------------------------------------- bare Polars


MINUTE = (pl.col("ts").dt.hour().cast(pl.Int32) * 60 + pl.col("ts").dt.minute().cast(pl.Int32)).alias(
    "minute"
)


def finite(expr: pl.Expr) -> pl.Expr:
    return pl.when(expr.is_finite()).then(expr)


def bare_silver(window: SessionWindow) -> pl.DataFrame:
    """The silver minute features with the most direct Polars expressions (one output session), as one
    lazy query."""
    output = window.outputs[-1]
    bars = window.bars.lazy().filter(pl.col("session_date") == output).with_columns(MINUTE)
    grid = (
        bars.group_by("ticker")
        .agg(pl.col("minute").min().alias("first"), pl.col("minute").max().alias("last"))
        .select("ticker", pl.int_ranges("first", pl.col("last") + 1, dtype=pl.Int32).alias("minute"))
        .explode("minute")
        .join(bars, on=["ticker", "minute"], how="left")
        .sort("ticker", "minute")
    )
    close, volume, regular = pl.col("close"), pl.col("volume"), pl.col("regular_session")
    typical = (pl.col("high") + pl.col("low") + close) / 3
    vwap = pl.when(regular).then(typical * volume).cum_sum() / pl.when(regular).then(volume).cum_sum()
    grid = grid.with_columns(
        *(finite(close / close.shift(h) - 1).over("ticker").alias(f"ret_{h}m") for h in (1, 5, 15, 30)),
        finite(pl.when(regular).then(close / vwap - 1)).over("ticker").alias("vwap_dist"),
    ).with_columns(finite(pl.col("ret_1m").rolling_std(30).over("ticker")).alias("rv_30m"))
    rows = grid.filter(pl.col("window_start").is_not_null())
    return relative_volume(rows, window).sort("ticker", "window_start").collect()


def relative_volume(rows: pl.LazyFrame, window: SessionWindow) -> pl.LazyFrame:
    """``volume_rel_20d``: one group-by over the lookback, joined by (ticker, minute)."""
    lookback = window.sessions[-21:-1]
    first = pl.lit(lookback[0])
    previous = (
        window.bars.lazy()
        .filter(pl.col("session_date").is_between(first, pl.lit(lookback[-1])))
        .select("ticker", "session_date", MINUTE, "volume")
    )
    # Divides a raw volume of a lookback session into the output session's shares: the product of the
    # split multipliers after it.
    assert window.factors is not None
    actions = window.factors.multipliers.filter(pl.col("session_date") > first)
    scales = (
        pl.DataFrame({"session_date": lookback})
        .join(
            actions.select("ticker", pl.col("session_date").alias("action"), "split_multiplier"), how="cross"
        )
        .filter(pl.col("action") > pl.col("session_date"))
        .group_by("ticker", "session_date")
        .agg(pl.col("split_multiplier").product().alias("scale"))
        .lazy()
    )
    complete = previous.group_by("ticker").agg(
        (pl.col("session_date").n_unique() == len(lookback)).alias("complete")
    )
    mean = (
        previous.join(scales, on=["ticker", "session_date"], how="left")
        .group_by("ticker", "minute")
        .agg((pl.col("volume") / pl.col("scale").fill_null(1.0)).sum().alias("mean") / len(lookback))
    )
    rows = rows.join(mean, on=["ticker", "minute"], how="left").join(complete.lazy(), on="ticker", how="left")
    mean_volume = pl.when(pl.col("complete")).then(pl.col("mean").fill_null(0.0))
    return rows.with_columns(finite(pl.col("volume") / mean_volume).alias("volume_rel_20d")).select(
        *window.bars.columns, *FEATURES
    )


def bare_rollups(window: SessionWindow) -> pl.DataFrame:
    """The daily roll-ups as one lazy group-by."""
    output = window.outputs[-1]
    regular, volume = pl.col("regular_session"), pl.col("volume")
    typical = (pl.col("high") + pl.col("low") + pl.col("close")) / 3
    day = (
        window.bars.lazy()
        .filter(pl.col("session_date") == output)
        .group_by("ticker", "session_date")
        .agg(
            pl.col("open").filter(regular).first(),
            pl.col("high").filter(regular).max(),
            pl.col("low").filter(regular).min(),
            pl.col("close").filter(regular).last(),
            volume.filter(regular).sum(),
            (typical * volume).filter(regular).sum().alias("value"),
            regular.sum().cast(pl.Int64).alias("bar_count"),
            volume.filter(~regular).sum().alias("extended_volume"),
        )
    )
    return (
        day.with_columns(finite(pl.col("value") / pl.col("volume")).alias("vwap"))
        .select(DAILY_ROLLUP_SCHEMA.names())
        .sort("ticker", "session_date")
        .collect()
    )


TRANSFORMS: dict[str, Callable[[SessionWindow], pl.DataFrame]] = {
    "silver": stocks_minute_silver,
    "silver_bare": bare_silver,
    "rollups": minute_daily_rollups,
    "rollups_bare": bare_rollups,
}


# ------------------------------------------------------------------------------------ measuring


def status_mb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def child(impl: str, folder: Path, buckets: int) -> dict[str, Any]:
    """Read each bucket's window and run ``impl`` on it; time the transforms only."""
    ranges = ticker_buckets(folder, buckets)
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    seconds, rows, window_mb = 0.0, 0, 0.0
    for lo, hi in ranges:
        window = load_window(folder, lo, hi)
        window_mb = max(window_mb, status_mb("VmRSS"))
        started = time.perf_counter()
        out = TRANSFORMS[impl](window)
        seconds += time.perf_counter() - started
        rows += out.height
        del window, out
    return {"seconds": seconds, "peak_mb": status_mb("VmHWM"), "window_mb": window_mb, "rows": rows}


def compare(got: pl.DataFrame, want: pl.DataFrame) -> str | None:
    """None when the frames hold the same rows (floats within ``RTOL``), else what differs."""
    if got.columns != want.columns or got.height != want.height:
        return f"shape {got.shape} {got.columns} vs {want.shape} {want.columns}"
    for name in got.columns:
        a, b = got[name], want[name]
        if not a.is_null().equals(b.is_null()):
            return f"{name}: nulls differ ({a.null_count()} vs {b.null_count()})"
        if a.dtype.is_float():
            x, y = a.drop_nulls().to_numpy(), b.drop_nulls().to_numpy()
            if not np.allclose(x, y, rtol=RTOL, atol=0.0):
                worst = float(np.max(np.abs(x - y) / np.maximum(np.abs(y), 1e-300)))
                return f"{name}: values differ (max relative error {worst:.3g})"
        elif not a.equals(b):
            return f"{name}: values differ"
    return None


def check(folder: Path, buckets: int) -> dict[str, Any]:
    problems = []
    for lo, hi in ticker_buckets(folder, buckets):
        window = load_window(folder, lo, hi)
        for name in ("silver", "rollups"):
            problem = compare(TRANSFORMS[name](window), TRANSFORMS[f"{name}_bare"](window))
            if problem:
                problems.append(f"{name} [{lo}, {hi}): {problem}")
    return {"problems": problems}


def run_child(*args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"child {args[0]} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, required=False)
    parser.add_argument("--tickers", type=int, default=4800)
    parser.add_argument("--seed", type=int, default=20250331)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--buckets", type=int, default=1, help="contiguous ticker ranges per window")
    parser.add_argument("--only", choices=("silver", "rollups"), default=None)
    parser.add_argument("--child", nargs=3, metavar=("IMPL", "FOLDER", "BUCKETS"))
    args = parser.parse_args()
    if args.child:
        impl, folder, buckets = args.child
        result = (
            check(Path(folder), int(buckets)) if impl == "check" else child(impl, Path(folder), int(buckets))
        )
        print(json.dumps(result))
        return 0
    if args.workdir is None:
        parser.error("--workdir is required")
    started = time.perf_counter()
    folder = generate(args.workdir, args.tickers, args.seed)
    days = window_sessions()
    output_rows = (
        pl.scan_parquet(folder / f"{days[-1].isoformat()}.parquet").select(pl.len()).collect().item()
    )
    window_rows = pl.scan_parquet(folder / "*-*-*.parquet").select(pl.len()).collect().item()
    print(
        f"{args.tickers:,} tickers, output session {days[-1]} with {output_rows:,} bars, window of "
        f"{len(days)} sessions with {window_rows:,} bars, {args.buckets} bucket(s) "
        f"(data ready in {time.perf_counter() - started:.0f} s)"
    )
    checked = run_child("check", str(folder), str(args.buckets))
    print("outputs equal:", "yes" if not checked["problems"] else "; ".join(checked["problems"]))
    pairs = [("silver", "silver_bare"), ("rollups", "rollups_bare")]
    if args.only:
        pairs = [p for p in pairs if p[0] == args.only]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for pair in pairs for name in pair}
    for _ in range(args.repeat):
        for name in runs:
            runs[name].append(run_child(name, str(folder), str(args.buckets)))
    print("\n| transform | quantmini | bare Polars | ratio | peak RSS quantmini / bare | window RSS |")
    print("|---|---|---|---|---|---|")
    for ours, bare in pairs:
        t_ours = statistics.median(r["seconds"] for r in runs[ours])
        t_bare = statistics.median(r["seconds"] for r in runs[bare])
        peak_ours = statistics.median(r["peak_mb"] for r in runs[ours])
        peak_bare = statistics.median(r["peak_mb"] for r in runs[bare])
        window_mb = statistics.median(r["window_mb"] for r in runs[ours])
        spread = ", ".join(f"{r['seconds']:.2f}" for r in runs[ours])
        spread_bare = ", ".join(f"{r['seconds']:.2f}" for r in runs[bare])
        print(
            f"| {ours} | {t_ours:.2f} s ({spread}) | {t_bare:.2f} s ({spread_bare}) "
            f"| **{t_ours / t_bare:.2f}×** | {peak_ours:,.0f} / {peak_bare:,.0f} MB | {window_mb:,.0f} MB |"
        )
    return 0 if not checked["problems"] else 1


if __name__ == "__main__":
    sys.exit(main())
