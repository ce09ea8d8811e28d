"""Sample generator, stocks_daily and REST responses: checked with pandas, regexes and exchange_calendars."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import re
import warnings
from pathlib import Path
from typing import Any

import exchange_calendars as xcals
import pandas as pd
import pytest

from quantmini.sample import generate_sample
from tests.support.paths import rest_fixture

HEADER = "ticker,volume,open,close,high,low,window_start,transactions"
START, END = dt.date(2026, 1, 20), dt.date(2026, 3, 13)  # crosses 2026-02-23 and Presidents' Day
INT_VOLUME = re.compile(r"^\d+$")
DEC_VOLUME = re.compile(r"^\d+\.\d{6}$")
SHORT_PRICE = re.compile(r"^\d+(\.\d{0,3}[1-9])?$")
SIX_DP_PRICE = re.compile(r"^\d+\.\d{6}$")


def xnys_sessions(start: dt.date, end: dt.date) -> list[dt.date]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cal = xcals.get_calendar("XNYS", start="2020-01-02")
        return [ts.date() for ts in cal.sessions_in_range(pd.Timestamp(start), pd.Timestamp(end))]


def read_lines(path: Path) -> list[str]:
    return gzip.decompress(path.read_bytes()).decode().splitlines()


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sample")
    generate_sample(root, START, END, tickers=12, seed=3, data_types=("stocks_daily",))
    return root


@pytest.fixture(scope="module")
def record(out: Path) -> dict[str, Any]:
    return json.loads((out / "sample.json").read_text())


@pytest.fixture(scope="module")
def bars(out: Path, record: dict[str, Any]) -> pd.DataFrame:
    """Every clean daily row (defect lines dropped by their recorded line numbers), with its session."""
    defect_lines = {(d["key"], d["line_number"]) for d in record["defects"]}
    frames = []
    for path in sorted((out / "flatfiles").rglob("*.csv.gz")):
        key = path.relative_to(out / "flatfiles").as_posix()
        lines = read_lines(path)
        keep = [line for n, line in enumerate(lines, 1) if n == 1 or (key, n) not in defect_lines]
        frame = pd.read_csv(io.StringIO("\n".join(keep)), dtype={"ticker": str})
        frame["file_session"] = dt.date.fromisoformat(path.name[:10])
        frames.append(frame)
    df = pd.concat(frames, ignore_index=True)
    local = pd.to_datetime(df["window_start"], unit="ns", utc=True).dt.tz_convert("America/New_York")
    df["session"] = local.dt.date
    return df.sort_values(["ticker", "session"]).reset_index(drop=True)


def rest(out: Path, path: str) -> dict[str, Any]:
    return json.loads((out / "rest" / path).read_text())


def test_files_exist_only_for_xnys_sessions(out: Path) -> None:
    files = sorted(p.name[:10] for p in (out / "flatfiles/us_stocks_sip/day_aggs_v1").rglob("*.csv.gz"))
    assert files == [d.isoformat() for d in xnys_sessions(START, END)]
    assert "2026-02-16" not in files


def test_keys_follow_the_vendor_layout(out: Path) -> None:
    assert (out / "flatfiles/us_stocks_sip/day_aggs_v1/2026/02/2026-02-23.csv.gz").is_file()


def test_header_sorting_and_number_formats(out: Path, record: dict[str, Any]) -> None:
    defect_lines = {(d["key"], d["line_number"]) for d in record["defects"]}
    for path in sorted((out / "flatfiles").rglob("*.csv.gz")):
        key = path.relative_to(out / "flatfiles").as_posix()
        lines = read_lines(path)
        assert lines[0] == HEADER
        rows = [line.split(",") for n, line in enumerate(lines, 1) if n > 1 and (key, n) not in defect_lines]
        assert [r[0] for r in rows] == sorted(r[0] for r in rows)
        decimal = dt.date.fromisoformat(path.name[:10]) >= dt.date(2026, 2, 23)
        for r in rows:
            assert (DEC_VOLUME if decimal else INT_VOLUME).match(r[1]), r
            for price in r[2:6]:
                assert (SIX_DP_PRICE if decimal else SHORT_PRICE).match(price), r
            assert re.fullmatch(r"\d{19}", r[6])
            assert re.fullmatch(r"\d+", r[7])


def test_day_bars_start_at_midnight_new_york(bars: pd.DataFrame) -> None:
    local = pd.to_datetime(bars["window_start"], unit="ns", utc=True).dt.tz_convert("America/New_York")
    assert (local.dt.hour == 0).all()
    assert (local.dt.minute == 0).all()
    assert (bars["session"] == bars["file_session"]).all()
    # 2026-03-09 is after the switch to daylight time: midnight ET is 04:00Z, before it 05:00Z.
    utc_hours = pd.to_datetime(bars["window_start"], unit="ns", utc=True).dt.hour
    assert set(utc_hours[bars["session"] >= dt.date(2026, 3, 9)]) == {4}
    assert set(utc_hours[bars["session"] < dt.date(2026, 3, 8)]) == {5}


def test_ohlc_consistent_and_prices_on_ticks(bars: pd.DataFrame) -> None:
    assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all()
    assert (bars[["open", "close"]].max(axis=1) <= bars["high"]).all()
    assert (bars["transactions"] >= 1).all()
    assert (bars["transactions"] <= bars["volume"] + 1).all()
    above = bars[bars["close"] >= 1]
    assert ((above["close"] * 100).round(6) % 1 == 0).all()
    assert bars.groupby(["ticker", "session"]).size().max() == 1


def test_each_defect_is_where_the_record_says(out: Path, record: dict[str, Any]) -> None:
    kinds = {d["kind"]: d for d in record["defects"]}
    assert set(kinds) == {"duplicate_row", "ohlc_violation", "next_session_row"}
    for defect in record["defects"]:
        lines = read_lines(out / "flatfiles" / defect["key"])
        assert lines[defect["line_number"] - 1] == defect["line"]
        assert defect["line"].split(",")[0] == defect["ticker"]
    dup = kinds["duplicate_row"]
    lines = read_lines(out / "flatfiles" / dup["key"])
    assert lines[dup["line_number"] - 2] == dup["line"]
    fields = kinds["ohlc_violation"]["line"].split(",")
    assert float(fields[4]) < float(fields[5])
    stray = kinds["next_session_row"]
    stamp = pd.Timestamp(int(stray["line"].split(",")[6]), unit="ns", tz="UTC").tz_convert("America/New_York")
    sessions = xnys_sessions(START, END + dt.timedelta(days=10))
    here = dt.date.fromisoformat(stray["session"])
    assert stamp.date() == sessions[sessions.index(here) + 1]
    assert stamp.hour == 0


def test_splits_visible_in_raw_prices(out: Path, bars: pd.DataFrame) -> None:
    splits = rest(out, "v3/reference/splits.json")["results"]
    assert {(s["split_from"], s["split_to"]) for s in splits} >= {(1, 10), (10, 1)}
    for split in splits:
        rows = bars[bars["ticker"] == split["ticker"]].set_index("session")
        day = dt.date.fromisoformat(split["execution_date"])
        before = rows[rows.index < day].iloc[-1]
        ratio = split["split_to"] / split["split_from"]
        assert 0.8 < before["close"] / rows.loc[day, "open"] / ratio < 1.25
        assert 0.3 < rows.loc[day, "volume"] / before["volume"] / ratio < 3.5


def test_dividends_drop_the_raw_price(out: Path, bars: pd.DataFrame) -> None:
    dividends = rest(out, "v3/reference/dividends.json")["results"]
    splits = rest(out, "v3/reference/splits.json")["results"]
    assert len(dividends) >= 3
    assert {d["ticker"] for d in dividends} & {s["ticker"] for s in splits}
    for div in dividends:
        rows = bars[bars["ticker"] == div["ticker"]].set_index("session")
        day = dt.date.fromisoformat(div["ex_dividend_date"])
        prev_close = rows[rows.index < day].iloc[-1]["close"]
        drop = prev_close - rows.loc[day, "open"]
        assert abs(drop - div["cash_amount"]) < 0.5 * div["cash_amount"] + 0.02


def test_lifecycles_match_tickers_json(out: Path, bars: pd.DataFrame) -> None:
    sessions = xnys_sessions(START, END)
    tickers = rest(out, "v3/reference/tickers.json")["results"]
    spans = bars.groupby("ticker")["session"].agg(["min", "max"])
    assert set(spans.index) == {t["ticker"] for t in tickers}
    assert {"BRK.B", "BApA", "PRN"} <= set(spans.index)
    assert next(t["type"] for t in tickers if t["ticker"] == "BApA") == "PFD"
    renamed = {p.parent.name for p in (out / "rest/vX/reference/tickers").glob("*/events.json")}
    ipo = delisted = 0
    for t in tickers:
        first, last = spans.loc[t["ticker"], "min"], spans.loc[t["ticker"], "max"]
        listed = dt.date.fromisoformat(t["list_date"])
        # A renamed ticker keeps its company's list date; its new symbol starts at the change.
        assert first == max(listed, sessions[0]) or t["ticker"] in renamed
        if listed > sessions[0]:
            ipo += 1
            assert first == listed
        if t["active"]:
            assert last == sessions[-1]
            assert "delisted_utc" not in t
        else:
            delisted += 1
            assert last == dt.date.fromisoformat(t["delisted_utc"][:10])
    assert ipo >= 1
    assert delisted >= 2


def test_rename_visible_in_files_and_events(out: Path, bars: pd.DataFrame) -> None:
    paths = list((out / "rest/vX/reference/tickers").glob("*/events.json"))
    assert len(paths) == 1
    new = paths[0].parent.name
    events = json.loads(paths[0].read_text())["results"]["events"]
    assert [e["type"] for e in events] == ["ticker_change", "ticker_change"]
    assert events[0]["ticker_change"]["ticker"] == new
    old = events[1]["ticker_change"]["ticker"]
    changed = dt.date.fromisoformat(events[0]["date"])
    old_rows, new_rows = bars[bars["ticker"] == old], bars[bars["ticker"] == new]
    assert old_rows["session"].max() < changed == new_rows["session"].min()
    last_close = old_rows.iloc[-1]["close"]
    assert 0.8 < new_rows.iloc[0]["open"] / last_close < 1.25


@pytest.mark.parametrize(
    ("ours", "fixture"),
    [
        ("v3/reference/splits.json", "v3_reference_splits.json"),
        ("v3/reference/dividends.json", "v3_reference_dividends.json"),
        ("v3/reference/tickers.json", "v3_reference_tickers_page2.json"),
    ],
)
def test_rest_shapes_match_the_vendor_fixtures(out: Path, ours: str, fixture: str) -> None:
    theirs = rest_fixture(fixture)
    mine = rest(out, ours)
    assert set(mine) == set(theirs) | {"count"}
    assert mine["status"] == "OK"
    assert mine["count"] == len(mine["results"])
    vendor_keys = set().union(*(set(r) for r in theirs["results"]))
    for row in mine["results"]:
        extra = {"id", "currency", "list_date", "delisted_utc"}
        assert vendor_keys <= set(row) <= vendor_keys | extra


def test_events_shape_matches_the_vendor_fixture(out: Path) -> None:
    theirs = rest_fixture("vX_reference_tickers_GADG_events.json")
    path = next((out / "rest/vX/reference/tickers").glob("*/events.json"))
    mine = json.loads(path.read_text())
    assert set(mine) == set(theirs)
    assert set(mine["results"]) == set(theirs["results"])
    assert [set(e) for e in mine["results"]["events"]] == [set(e) for e in theirs["results"]["events"]]


def test_record_counts_match_the_files(out: Path, record: dict[str, Any]) -> None:
    for session, entry in record["files"]["stocks_daily"].items():
        lines = read_lines(out / entry["key"])
        assert entry["rows"] == len(lines) - 1
        assert entry["key"].endswith(f"{session}.csv.gz")


def test_minute_files_for_the_last_sessions_only_equal_those_of_a_full_sample(tmp_path: Path) -> None:
    start, end = dt.date(2025, 3, 3), dt.date(2025, 3, 14)
    options = {"tickers": 10, "seed": 4, "data_types": ("stocks_minute",), "minute_tickers": 3}
    generate_sample(tmp_path / "all", start, end, **options)  # type: ignore[arg-type]
    generate_sample(tmp_path / "last", start, end, minute_sessions=3, **options)  # type: ignore[arg-type]
    every = sorted(p.relative_to(tmp_path / "all") for p in (tmp_path / "all").rglob("*.csv.gz"))
    last = sorted(p.relative_to(tmp_path / "last") for p in (tmp_path / "last").rglob("*.csv.gz"))
    assert [p.name[:10] for p in last] == ["2025-03-12", "2025-03-13", "2025-03-14"]
    assert last == every[-3:]
    for path in last:
        assert (tmp_path / "last" / path).read_bytes() == (tmp_path / "all" / path).read_bytes()
    record = json.loads((tmp_path / "last" / "sample.json").read_text())
    assert sorted(record["files"]["stocks_minute"]) == ["2025-03-12", "2025-03-13", "2025-03-14"]
