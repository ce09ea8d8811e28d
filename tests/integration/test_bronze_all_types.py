"""Landing → bronze for the minute and options data types on generated files, against pandas, regexes
and exchange_calendars (never the code under test): schema, session dates in New York time (19:59 ET
winter bars included), order, one partition per session, rows conserved, contract fields, defects."""

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
import pyarrow.parquet as pq
import pytest

from quantmini.datasets import get_spec
from quantmini.io.lake import Lake
from quantmini.io.source import LocalMirrorSource
from quantmini.pipeline.runner import PipelineReport, PipelineRunner
from quantmini.sample import generate_sample

pytestmark = pytest.mark.slow

START, END = dt.date(2025, 11, 24), dt.date(2025, 12, 2)  # EST, Thanksgiving, 13:00 early close on the 28th
TYPES = ("stocks_minute", "options_daily", "options_minute")
OCC = re.compile(r"^O:([A-Z0-9.]+?)(\d{6})([CP])(\d{8})$")
EXPECTED_REASON = {"outside_window_bar": "outside_session", "bad_option_ticker": "bad_option_ticker"}


def xnys() -> dict[dt.date, tuple[pd.Timestamp, pd.Timestamp]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cal = xcals.get_calendar("XNYS", start="2020-01-02")
        days = cal.sessions_in_range(pd.Timestamp(START), pd.Timestamp(END))
        return {d.date(): (cal.session_open(d), cal.session_close(d)) for d in days}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Lake, dict[str, PipelineReport]]:
    root = tmp_path_factory.mktemp("alltypes")
    source = root / "source"
    generate_sample(
        source,
        START,
        END,
        tickers=10,
        seed=5,
        minute_tickers=6,
        option_underlyings=2,
        data_types=TYPES,
        intraday_defects=True,
    )
    lake = Lake(root / "lake")
    reports = {}
    for name in TYPES:
        reports[name] = PipelineRunner(lake, get_spec(name)).run(LocalMirrorSource(source), START, END)
    return source, lake, reports


def record(source: Path) -> dict[str, Any]:
    return dict(json.loads((source / "sample.json").read_text()))


def expected_rows(source: Path, name: str) -> pd.DataFrame:
    """Every file's rows minus the recorded defects, typed and derived with pandas."""
    defects = {(d["key"], d["line_number"]) for d in record(source)["defects"] if d["data_type"] == name}
    parts = []
    for session, entry in record(source)["files"][name].items():
        text = gzip.decompress((source / entry["key"]).read_bytes()).decode()
        frame = pd.read_csv(io.StringIO(text), dtype={"ticker": str, "volume": float})
        frame["line"] = frame.index + 2
        key = entry["key"].removeprefix("flatfiles/")
        frame = frame[[(key, n) not in defects for n in frame["line"]]].copy()
        frame["file_session"] = dt.date.fromisoformat(session)
        parts.append(frame)
    df = pd.concat(parts, ignore_index=True)
    df["ts"] = pd.to_datetime(df["window_start"], unit="ns", utc=True).dt.tz_convert("America/New_York")
    return df


@pytest.mark.parametrize("name", TYPES)
def test_pipeline_runs_and_skips_undefined_layers(built: Any, name: str) -> None:
    _, lake, reports = built
    report = reports[name]
    assert report.failures == []
    assert [o.status for o in report.ingest] == ["ingested"] * len(xnys())
    spec = get_spec(name)
    if spec.has_silver:
        assert report.skipped == (
            {} if spec.has_qlib_gold else {"gold": f"no Qlib gold root is defined for {name} yet"}
        )
        assert (lake.root / "silver" / name).is_dir()
    else:
        assert set(report.skipped) == {"silver", "gold"}
        assert not (lake.root / "silver" / name).exists()


@pytest.mark.parametrize("name", TYPES)
def test_bronze_equals_the_files_minus_defects(built: Any, name: str) -> None:
    source, lake, _ = built
    spec = get_spec(name)
    expected = expected_rows(source, name)
    sessions = xnys()
    dirs = sorted(p.name for p in lake.bronze_dir(spec).iterdir())
    assert dirs == [f"date={d}" for d in sessions]
    for session, rows in expected.groupby("file_session"):
        table = pq.read_table(lake.bronze_partition(spec, session))
        assert table.schema.equals(spec.bronze_schema, check_metadata=False)
        got = table.to_pandas()
        want = rows.sort_values(["ticker", "window_start"]).reset_index(drop=True)
        assert list(zip(got["ticker"], got["window_start"], strict=True)) == list(
            zip(want["ticker"], want["window_start"], strict=True)
        )
        for column in ("open", "high", "low", "close", "volume", "transactions"):
            assert got[column].tolist() == pytest.approx(want[column].tolist()), column
        assert (got["session_date"] == session).all()
        assert (want["ts"].dt.date == session).all()
        assert (got["ts"] == want["ts"]).all()
        if "regular_session" in got:
            open_, close = sessions[session]
            regular = (want["ts"] >= open_) & (want["ts"] < close)
            assert got["regular_session"].tolist() == regular.tolist()
        if spec.is_option:
            parsed = want["ticker"].str.extract(OCC)
            assert got["underlying"].tolist() == parsed[0].tolist()
            assert got["expiration"].tolist() == pd.to_datetime(parsed[1], format="%y%m%d").dt.date.tolist()
            assert got["option_type"].tolist() == parsed[2].map({"C": "call", "P": "put"}).tolist()
            assert got["strike"].tolist() == (parsed[3].astype(int) / 1000).tolist()


def test_winter_after_hours_bars_keep_their_new_york_session(built: Any) -> None:
    _, lake, _ = built
    spec = get_spec("stocks_minute")
    frame = pd.concat(
        [pq.read_table(p).to_pandas() for p in sorted(lake.bronze_dir(spec).rglob("*.parquet"))]
    )
    utc = pd.to_datetime(frame["window_start"], unit="ns", utc=True)
    late = frame[(utc.dt.date != frame["session_date"]).to_numpy()]
    assert len(late) > 0  # 19:xx ET in winter is 00:xx UTC of the next day
    local = late["ts"].dt.tz_convert("America/New_York")
    assert (local.dt.hour >= 19).all()
    assert (local.dt.date == late["session_date"]).all()
    assert not late["regular_session"].any()


@pytest.mark.parametrize("name", TYPES)
def test_rows_conserved_and_exactly_the_defects_quarantined(built: Any, name: str) -> None:
    source, lake, reports = built
    spec = get_spec(name)
    defects = [d for d in record(source)["defects"] if d["data_type"] == name]
    assert len(defects) == 1
    files = record(source)["files"][name]
    for outcome in reports[name].ingest:
        assert outcome.rows_in == files[outcome.session.isoformat()]["rows"]
        assert outcome.rows_in == outcome.rows_bronze + outcome.rows_quarantined + outcome.duplicates
        manifest = json.loads(lake.manifest("bronze", spec, outcome.session).read_text())
        quality = manifest["quality"]
        assert quality["rows_in"] == outcome.rows_in
        assert sum(quality["reasons"].values()) == quality["rows_quarantined"] == outcome.rows_quarantined
    quarantined = pd.concat(
        [pq.read_table(p).to_pandas() for p in sorted((lake.root / "quarantine" / name).rglob("*.parquet"))]
    )
    got = sorted(zip(quarantined["line"], quarantined["reason"], quarantined["raw"], strict=True))
    want = sorted((d["line_number"], EXPECTED_REASON[d["kind"]], d["line"]) for d in defects)
    assert got == want
