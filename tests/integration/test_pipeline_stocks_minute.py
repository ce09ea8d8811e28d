"""stocks_minute end to end on generated data: bronze → silver (features, daily roll-ups) → a 1min Qlib root
and the daily root's ``$vwap``, checked with real pyqlib against the XNYS minutes from exchange_calendars,
an independent pandas parse of the vendor CSV files and a plain reference implementation of the factors."""

from __future__ import annotations

import datetime as dt
import filecmp
import gzip
import json
import re
import shutil
from pathlib import Path
from typing import Any

import exchange_calendars as xcals
import numpy as np
import pandas as pd
import polars as pl
import pytest

from quantmini.datasets import get_spec
from quantmini.io.lake import Lake
from quantmini.io.qlib_writer import read_instrument
from quantmini.io.source import LocalMirrorSource
from quantmini.pipeline.runner import PipelineReport, PipelineRunner
from quantmini.pipeline.silver import SilverTask, _ticker_ranges
from quantmini.sample import generate_sample
from tests.support.qlib_child import read_with_qlib
from tests.support.reference_factors import reference_factors

pytestmark = pytest.mark.slow

SPEC = get_spec("stocks_minute")
DAILY = get_spec("stocks_daily")
# Crosses the end of daylight saving time (2025-11-02) and the 13:00 close of 2025-11-28.
START, END = dt.date(2025, 10, 27), dt.date(2025, 12, 3)
EARLY_CLOSE = dt.date(2025, 11, 28)
FIELDS = ["$open", "$high", "$low", "$close", "$volume", "$vwap", "$factor", "$close/$factor"]


def _run(root: Path, source: Path, start: dt.date, end: dt.date, **options: Any) -> list[PipelineReport]:
    lake = Lake(root)
    reports = [
        PipelineRunner(lake, spec, **options).run(LocalMirrorSource(source), start, end)
        for spec in (DAILY, SPEC)
    ]
    for report in reports:
        assert report.failures == [], report.failures
    return reports


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, PipelineReport]:
    base = tmp_path_factory.mktemp("minute")
    source, root = base / "source", base / "lake"
    generate_sample(
        source, START, END, tickers=10, seed=3, data_types=("stocks_daily", "stocks_minute"), minute_tickers=4
    )
    _, minute = _run(root, source, START, END)
    assert minute.rows["quarantined"] == 0
    return source, root, minute


def _record(source: Path) -> dict[str, Any]:
    return json.loads((source / "sample.json").read_text())


def _minute_csv(source: Path) -> pd.DataFrame:
    """Every generated minute file parsed with pandas; ``local`` is the bar start in New York time."""
    parts = []
    for path in sorted((source / "flatfiles" / SPEC.prefix).rglob("*.csv.gz")):
        with gzip.open(path) as fh:
            frame = pd.read_csv(fh, dtype={"ticker": str})
        frame["session_date"] = dt.date.fromisoformat(path.name[:10])
        parts.append(frame)
    bars = pd.concat(parts, ignore_index=True)
    utc = pd.to_datetime(bars["window_start"], unit="ns", utc=True)
    bars["local"] = utc.dt.tz_convert("America/New_York").dt.tz_localize(None)
    return bars


def _xnys_minutes(first: dt.date, last: dt.date) -> pd.DatetimeIndex:
    """Regular-session minute starts of XNYS sessions in [first, last], naive New York time."""
    xnys = xcals.get_calendar("XNYS")
    minutes = [
        pd.date_range(xnys.session_open(s), xnys.session_close(s), freq="min", inclusive="left")
        for s in xnys.sessions_in_range(first, last)
    ]
    return minutes[0].append(minutes[1:]).tz_convert("America/New_York").tz_localize(None)


def _factors(source: Path, root: Path, sessions: pd.DataFrame) -> pd.DataFrame:
    """Reference factors of ``sessions`` (ticker, session_date) from the sample's corporate actions and
    daily closes (a session may lack a daily bar: its minute bars still have a factor)."""
    actions = _record(source)["corporate_actions"]
    splits = pd.DataFrame(actions["splits"])
    splits["execution_date"] = pd.to_datetime(splits.execution_date).dt.date
    dividends = pd.DataFrame(actions["dividends"])
    dividends["ex_dividend_date"] = pd.to_datetime(dividends.ex_dividend_date).dt.date
    renames = pd.DataFrame(actions["ticker_changes"]).rename(columns={"date": "change_date"})
    renames["change_date"] = pd.to_datetime(renames["change_date"]).dt.date
    daily = _daily_bars(root)[["ticker", "session_date", "close"]]
    daily = daily.merge(sessions, on=["ticker", "session_date"], how="outer")
    daily = daily.sort_values(["ticker", "session_date"]).reset_index(drop=True)
    return reference_factors(daily, splits, dividends, renames)


def _daily_bars(root: Path) -> pd.DataFrame:
    daily = pl.read_parquet(Lake(root).bronze_dir(DAILY) / "*/*.parquet").to_pandas()
    daily["session_date"] = pd.to_datetime(daily["session_date"]).dt.date
    return daily


def _stored(ticker: str) -> str:
    return re.sub("[a-z]", lambda m: "_" + m.group().upper(), ticker)


def test_minute_root_reads_back_through_real_qlib(
    built: tuple[Path, Path, PipelineReport], tmp_path: Path
) -> None:
    source, root, report = built
    lake = Lake(root)
    assert [(o.root.name, o.status) for o in report.gold] == [("1min", "built"), ("day", "updated")]
    provider = {"day": lake.qlib_root("stocks_daily", "day"), "1min": lake.qlib_root("stocks_minute", "1min")}
    meta, got = read_with_qlib(provider, "1min", FIELDS, tmp_path)

    calendar = pd.DatetimeIndex(pd.to_datetime(meta["calendar"]))
    assert calendar.equals(_xnys_minutes(START, END))
    per_day = pd.Series(calendar.date).value_counts()
    assert per_day[EARLY_CLOSE] == 210
    assert per_day[dt.date(2025, 11, 26)] == 390
    assert str(calendar[calendar.date == EARLY_CLOSE][-1]) == "2025-11-28 12:59:00"
    # The same local opening on both sides of the DST change (13:30 UTC, then 14:30 UTC).
    for day in (dt.date(2025, 10, 31), dt.date(2025, 11, 3)):
        assert str(calendar[calendar.date == day][0].time()) == "09:30:00"

    bars = _minute_csv(source)
    regular = bars[bars["local"].isin(calendar)].copy()
    assert 0 < len(regular) < len(bars)  # extended-hours bars exist and are not part of the regular root
    factors = _factors(source, root, regular[["ticker", "session_date"]].drop_duplicates())
    regular = regular.merge(factors, on=["ticker", "session_date"], how="left")
    regular["instrument"] = regular["ticker"].map(_stored)
    spans = {k: v[0] for k, v in meta["spans"].items()}
    first_last = regular.groupby("instrument")["local"].agg(["min", "max"])
    assert {k: (pd.Timestamp(a), pd.Timestamp(b)) for k, (a, b) in spans.items()} == {
        k: (r["min"], r["max"]) for k, r in first_last.iterrows()
    }

    got["datetime"] = pd.to_datetime(got["datetime"])
    got = got.set_index(["instrument", "datetime"]).sort_index()
    # Every calendar minute inside each span, NaN where the symbol had no bar.
    assert len(got) == sum(((calendar >= a) & (calendar <= b)).sum() for a, b in first_last.to_numpy())
    expected = regular.set_index(["instrument", "local"]).sort_index()
    expected.index.names = ["instrument", "datetime"]
    joined = got.join(expected, how="left")
    assert joined["close"].isna().sum() > 0  # minutes without a trade stay NaN inside spans
    factor = joined["adj_factor"]
    typical = (joined["high"] + joined["low"] + joined["close"]) / 3
    checks = {
        "$open": joined["open"] * factor,
        "$high": joined["high"] * factor,
        "$low": joined["low"] * factor,
        "$close": joined["close"] * factor,
        "$volume": joined["volume"] / factor,
        "$vwap": typical * factor,
        "$factor": factor.where(joined["close"].notna()),
        "$close/$factor": joined["close"],
    }
    for name, values in checks.items():
        exp = values.to_numpy(dtype=np.float64).astype(np.float32)
        act = joined[name].to_numpy(dtype=np.float32)
        np.testing.assert_array_equal(np.isnan(act), np.isnan(exp), err_msg=name)
        np.testing.assert_allclose(act[~np.isnan(act)], exp[~np.isnan(exp)], rtol=2e-6, err_msg=name)
    assert (factor.dropna() != 1.0).any()  # a split or dividend moved some minute bars

    # The project's own reader gives what qlib gives.
    symbol = first_last.index[0]
    mine = read_instrument(provider["1min"], "1min", symbol, [f[1:] for f in FIELDS[:7]]).to_pandas()
    theirs = got.loc[symbol].reset_index()
    assert mine["datetime"].tolist() == theirs["datetime"].tolist()
    for name in FIELDS[:7]:
        np.testing.assert_array_equal(mine[name].to_numpy(), theirs[name].to_numpy(dtype=np.float32))


def test_daily_vwap_comes_from_minute_bars_where_they_exist(
    built: tuple[Path, Path, PipelineReport], tmp_path: Path
) -> None:
    source, root, report = built
    daily_gold = next(o for o in report.gold if o.root.name == "day")
    sessions = len(xcals.get_calendar("XNYS").sessions_in_range(START, END))
    assert daily_gold.joined == (("$vwap from minute bars", sessions), ("option fields", 0))
    _, got = read_with_qlib(
        Lake(root).qlib_root("stocks_daily", "day"), "day", ["$vwap", "$factor"], tmp_path
    )
    got["session_date"] = pd.to_datetime(got["datetime"]).dt.date
    got = got.set_index(["instrument", "session_date"])

    bars = _minute_csv(source)
    bars = bars[bars["local"].isin(_xnys_minutes(START, END))]
    bars = bars.assign(value=(bars.high + bars.low + bars.close) / 3 * bars.volume)
    sums = bars.groupby(["ticker", "session_date"])[["value", "volume"]].sum()
    minute_vwap = (sums["value"] / sums["volume"]).rename("minute_vwap").reset_index()
    minute_vwap["instrument"] = minute_vwap["ticker"].map(_stored)
    expected = minute_vwap.set_index(["instrument", "session_date"]).join(got, how="inner")
    assert len(expected) == len(minute_vwap)
    np.testing.assert_allclose(
        expected["$vwap"], (expected["minute_vwap"] * expected["$factor"]).astype(np.float32), rtol=2e-6
    )
    # Tickers without minute bars keep the typical-price proxy.
    daily = _daily_bars(root)
    daily["instrument"] = daily["ticker"].map(_stored)
    daily = daily.set_index(["instrument", "session_date"]).join(got, how="inner")
    others = daily[~daily.index.get_level_values(0).isin(minute_vwap["instrument"].unique())]
    assert len(others) > 0
    proxy = (others.high + others.low + others.close) / 3 * others["$factor"]
    np.testing.assert_allclose(others["$vwap"], proxy.astype(np.float32), rtol=2e-6)


def test_minute_silver_holds_features_and_rollups(built: tuple[Path, Path, PipelineReport]) -> None:
    source, root, report = built
    lake = Lake(root)
    tables = {o.table: o for o in report.silver}
    assert set(tables) == {"stocks_minute", "stocks_minute_rollups"}
    silver = pl.read_parquet(lake.silver_dir("stocks_minute") / "*/*.parquet")
    bars = _minute_csv(source)
    assert silver.height == len(bars) == tables["stocks_minute"].rows
    for feature in SPEC.features:
        values = silver[feature].drop_nulls()
        assert values.len() > 0, feature
        assert values.is_finite().all(), feature
    # The first 20 sessions have no full 20-session baseline.
    first_full = sorted(silver["session_date"].unique())[20]
    assert (
        silver.filter(pl.col("session_date") < first_full)["volume_rel_20d"].null_count()
        == silver.filter(pl.col("session_date") < first_full).height
    )
    rollups = pl.read_parquet(lake.silver_dir("stocks_minute_rollups") / "*/*.parquet")
    assert rollups.height == bars.groupby(["ticker", "session_date"]).ngroups


def test_ticker_ranges_cover_the_output_tickers_in_order(built: tuple[Path, Path, PipelineReport]) -> None:
    _, root, _ = built
    sessions = tuple(xcals.get_calendar("XNYS").sessions_in_range(END - dt.timedelta(days=6), END).date)
    task = SilverTask(root, SPEC.name, 0, sessions, sessions, sessions[-2:], ("a", "b"), buckets=3)
    ranges = _ticker_ranges(Lake(root), SPEC, task)
    tickers = sorted(
        _minute_csv(root.parent / "source").query("session_date in @sessions[-2:]").ticker.unique()
    )
    assert len(ranges) == 3
    flat = [t for r in ranges for t in r if r is not None]
    assert flat == sorted(flat)
    assert flat[0] == tickers[0]
    assert flat[-1] == tickers[-1]
    covered = [t for t in tickers if any(r is not None and r[0] <= t <= r[1] for r in ranges)]
    assert covered == tickers


def test_incremental_minute_root_equals_a_full_build(
    built: tuple[Path, Path, PipelineReport], tmp_path: Path
) -> None:
    source, full_root, _ = built
    root = tmp_path / "lake"
    middle = dt.date(2025, 11, 20)
    _run(root, source, START, middle)
    # A tiny memory budget makes silver run ticker range by ticker range.
    reports = _run(root, source, middle + dt.timedelta(days=1), END, memory_budget_gb=0.001)
    minute = reports[1]
    assert [(o.root.name, o.status) for o in minute.gold] == [("1min", "updated"), ("day", "updated")]
    for table in ("stocks_minute", "stocks_minute_rollups"):
        a = pl.read_parquet(Lake(root).silver_dir(table) / "*/*.parquet")
        b = pl.read_parquet(Lake(full_root).silver_dir(table) / "*/*.parquet")
        assert a.equals(b), table
    for freq, data_type in (("1min", "stocks_minute"), ("day", "stocks_daily")):
        _assert_same_tree(Lake(root).qlib_root(data_type, freq), Lake(full_root).qlib_root(data_type, freq))


def test_extended_hours_root(built: tuple[Path, Path, PipelineReport], tmp_path: Path) -> None:
    _source, built_root, _ = built
    root = tmp_path / "lake"
    shutil.copytree(built_root, root)
    report = PipelineRunner(Lake(root), SPEC, minute_session="extended").run(None, START, END)
    assert report.failures == []
    assert next((o.root.name, o.status) for o in report.gold) == ("1min", "built")
    lines = (
        (Lake(root).qlib_root("stocks_minute", "1min") / "calendars" / "1min.txt").read_text().splitlines()
    )
    days = pd.Series([line[:10] for line in lines]).value_counts()
    assert days["2025-11-26"] == 960
    assert days["2025-11-28"] == 780
    assert lines[0] == "2025-10-27 04:00:00"
    assert lines[-1] == "2025-12-03 19:59:00"


def _assert_same_tree(a: Path, b: Path) -> None:
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b
    _, mismatch, errors = filecmp.cmpfiles(a, b, [str(p) for p in files_a], shallow=False)
    assert mismatch == []
    assert errors == []
