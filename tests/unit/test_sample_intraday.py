"""Sample generator, minute bars and options: trading windows from exchange_calendars, OCC regex."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import re
import warnings
from pathlib import Path

import exchange_calendars as xcals
import pandas as pd
import pytest

from quantmini.sample import generate_sample

START, END = dt.date(2025, 11, 24), dt.date(2025, 12, 2)  # Thanksgiving and its 13:00 early close
OCC = re.compile(r"^O:([A-Z0-9.]+?)(\d{6})([CP])(\d{8})$")


def read(path: Path) -> pd.DataFrame:
    text = gzip.decompress(path.read_bytes()).decode()
    return pd.read_csv(io.StringIO(text), dtype={"ticker": str, "volume": str})


def closes() -> dict[dt.date, pd.Timestamp]:
    """Regular-session close (ET) of each XNYS session in the range, straight from exchange_calendars."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cal = xcals.get_calendar("XNYS", start="2020-01-02")
        days = cal.sessions_in_range(pd.Timestamp(START), pd.Timestamp(END))
        return {d.date(): cal.session_close(d).tz_convert("America/New_York") for d in days}


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("intraday")
    generate_sample(root, START, END, tickers=10, seed=5, minute_tickers=6, option_underlyings=3)
    return root


def frames(out: Path, prefix: str) -> pd.DataFrame:
    parts = []
    for path in sorted((out / "flatfiles" / prefix).rglob("*.csv.gz")):
        frame = read(path)
        frame["file_session"] = dt.date.fromisoformat(path.name[:10])
        parts.append(frame)
    df = pd.concat(parts, ignore_index=True)
    df["ts"] = pd.to_datetime(df["window_start"], unit="ns", utc=True).dt.tz_convert("America/New_York")
    return df


def test_minute_files_only_on_sessions(out: Path) -> None:
    names = sorted(p.name[:10] for p in (out / "flatfiles/us_stocks_sip/minute_aggs_v1").rglob("*.gz"))
    assert names == [d.isoformat() for d in closes()]
    assert "2025-11-27" not in names


def test_minute_bars_inside_extended_hours_and_sorted(out: Path) -> None:
    df = frames(out, "us_stocks_sip/minute_aggs_v1")
    session_close = closes()
    assert (df["ts"].dt.date == df["file_session"]).all()
    minutes = df["ts"].dt.hour * 60 + df["ts"].dt.minute
    assert (minutes >= 4 * 60).all()
    assert (df["ts"].dt.second == 0).all()
    for day, rows in df.groupby("file_session"):
        close = session_close[day]
        end = close.hour * 60 + close.minute + 4 * 60
        day_minutes = rows["ts"].dt.hour * 60 + rows["ts"].dt.minute
        assert day_minutes.max() < end <= 20 * 60
        regular = (day_minutes >= 9 * 60 + 30) & (day_minutes < close.hour * 60 + close.minute)
        # Denser in regular hours: more bars per regular minute than per extended-hours minute.
        extended_span = end - 4 * 60 - (close.hour * 60 + close.minute - 9 * 60 - 30)
        reg_span = close.hour * 60 + close.minute - 9 * 60 - 30
        assert regular.sum() / reg_span > 2 * (~regular).sum() / extended_span
    assert session_close[dt.date(2025, 11, 28)].hour == 13
    for day in session_close:
        rows = df[df["file_session"] == day]
        keys = list(zip(rows["ticker"], rows["window_start"], strict=True))
        assert keys == sorted(keys)
        assert len(set(keys)) == len(keys)


def test_minute_bars_are_consistent_with_day_bars(out: Path) -> None:
    minute = frames(out, "us_stocks_sip/minute_aggs_v1")
    day = frames(out, "us_stocks_sip/day_aggs_v1")
    assert (minute["low"] <= minute[["open", "close"]].min(axis=1)).all()
    assert (minute[["open", "close"]].max(axis=1) <= minute["high"]).all()
    assert minute["volume"].str.fullmatch(r"\d+").all()
    level = minute.groupby(["ticker", "file_session"])["close"].median()
    daily = day.drop_duplicates(["ticker", "file_session"]).set_index(["ticker", "file_session"])["close"]
    ratio = level / daily.reindex(level.index)
    assert ratio.notna().all()
    assert ratio.between(0.8, 1.25).all()


def test_option_tickers_are_valid_occ(out: Path) -> None:
    options = frames(out, "us_options_opra/day_aggs_v1")
    stocks = frames(out, "us_stocks_sip/day_aggs_v1")
    spot = stocks.drop_duplicates(["ticker", "file_session"]).set_index(["ticker", "file_session"])["close"]
    parsed = options["ticker"].str.extract(OCC)
    assert parsed.notna().all().all()
    roots = set(parsed[0])
    assert any(re.search(r"\d$", root) for root in roots), roots
    assert set(parsed[2]) == {"C", "P"}
    expirations = pd.to_datetime(parsed[1], format="%y%m%d").dt.date
    assert (expirations >= options["file_session"]).all()
    assert (expirations <= options["file_session"] + dt.timedelta(days=130)).all()
    assert set(pd.to_datetime(parsed[1], format="%y%m%d").dt.day_of_week) <= {3, 4}  # Fri, or Thu on holidays
    assert len(set(expirations)) >= 5
    strikes = parsed[3].astype(int) / 1000
    record = json.loads((out / "sample.json").read_text())
    levels = record["options"]["index_levels"]["SPX"]
    assert {"BRKB", "SPX", "SPXW"} <= roots
    for (root, session), strike in zip(
        zip(parsed[0], options["file_session"], strict=True), strikes, strict=True
    ):
        if root in ("SPX", "SPXW"):  # index roots: the level, not a stock bar
            price = levels[session.isoformat()]["close"]
        else:
            underlying = "BRK.B" if root == "BRKB" else root.rstrip("0123456789")
            adjusted = 10.0 if root != underlying.replace(".", "") else 1.0  # the sample splits 1:10
            price = spot[(underlying, session)] * adjusted
        assert 0.5 * price < strike < 2.0 * price, (root, session, strike, price)
    assert options["volume"].str.fullmatch(r"\d+").all()
    assert (options["low"] <= options[["open", "close"]].min(axis=1)).all()
    assert (options[["open", "close"]].max(axis=1) <= options["high"]).all()


def test_option_minutes_sparse_regular_hours(out: Path) -> None:
    minute = frames(out, "us_options_opra/minute_aggs_v1")
    daily = frames(out, "us_options_opra/day_aggs_v1")
    assert minute["ticker"].str.fullmatch(OCC.pattern).all()
    assert set(minute["ticker"]) <= set(daily["ticker"])
    minutes = minute["ts"].dt.hour * 60 + minute["ts"].dt.minute
    assert minutes.between(9 * 60 + 30, 16 * 60 - 1).all()
    early = minute[minute["file_session"] == dt.date(2025, 11, 28)]
    assert (early["ts"].dt.hour < 13).all()
    assert minute["volume"].str.fullmatch(r"\d+").all()
    assert len(minute) < 60 * len(daily)
