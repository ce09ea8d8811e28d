"""Point-in-time universes end to end: synthetic vendor files → silver ``universes`` → Qlib market files,
read back by real pyqlib and compared with a plain pandas reference of the members of every date.

The history (generated here, five months of XNYS sessions) has a ticker that lists mid-way, one that is
delisted mid-month while a member, one halted for three sessions, one without a reference record, a
preferred share with a lower-case letter in its ticker and a session missing from the lake. Universe
sizes are 2 and 3 (``universes.liquidity_sizes``) so that the ranking decides membership.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import shutil
from pathlib import Path

import exchange_calendars as xcals
import numpy as np
import pandas as pd
import polars as pl
import pytest

from quantmini.config.settings import Settings, UniverseSettings
from quantmini.datasets import get_spec
from quantmini.io.duckdb_catalog import connect_catalog
from quantmini.io.lake import Lake
from quantmini.io.source import LocalMirrorSource
from quantmini.pipeline.markets import update_markets
from quantmini.pipeline.runner import PipelineReport, PipelineRunner
from quantmini.sample.timeline import midnight_ns
from tests.support.qlib_child import read_markets_with_qlib

SPEC = get_spec("stocks_daily")
START, END = dt.date(2025, 1, 2), dt.date(2025, 5, 30)
SIZES = (2, 3)
SETTINGS = Settings(universes=UniverseSettings(liquidity_sizes=SIZES))
#: Not in the lake: no file for it.
HOLE = dt.date(2025, 3, 12)
#: ticker → (vendor type or None for no record, first session, last session, median dollar volume scale).
TICKERS: dict[str, tuple[str | None, dt.date, dt.date, float]] = {
    "AAA": ("CS", START, END, 40e6),
    "BBB": ("CS", START, END, 35e6),
    "CCC": ("ETF", START, END, 30e6),
    "GONE": ("CS", START, dt.date(2025, 4, 15), 45e6),
    "HALT": ("CS", START, END, 38e6),
    "NEWCO": ("CS", dt.date(2025, 2, 18), END, 60e6),
    "NOREF": (None, START, END, 25e6),
    "BApA": ("PFD", START, END, 5e6),
}
HALTED = (dt.date(2025, 3, 24), dt.date(2025, 3, 25), dt.date(2025, 3, 26))
TYPES = {"CS": "common", "ETF": "etf", "PFD": "preferred"}
#: Qlib's names of the tickers (lower-case letters written "_" + upper case, as all.txt has them).
INSTRUMENTS = {"BApA": "BA_PA"}
#: Sessions whose files are republished with DDD-like volume for BBB (its April rank changes).
REPUBLISHED = [dt.date(2025, 3, d) for d in (13, 14, 17, 18, 19, 20, 21, 24, 25, 26, 27, 28, 31)]


def _sessions(start: dt.date, end: dt.date) -> list[dt.date]:
    return [d.date() for d in xcals.get_calendar("XNYS").sessions_in_range(start, end)]


def _bars(boost: bool = False) -> pd.DataFrame:
    """Every bar of the history (prices to the cent, whole shares); ``boost``: BBB trades 40× more on
    the republished sessions."""
    rng = np.random.default_rng(13)
    rows = []
    for ticker, (_, first, last, scale) in TICKERS.items():
        for day in _sessions(first, last):
            close = round(float(rng.uniform(20, 80)), 2)
            dollars = scale * float(rng.lognormal(0.0, 0.5))
            if ticker == "BBB" and boost and day in REPUBLISHED:
                dollars *= 40
            if day == HOLE or (ticker == "HALT" and day in HALTED):
                continue
            rows.append((ticker, day, close, float(round(dollars / close))))
    return pd.DataFrame(rows, columns=["ticker", "session_date", "close", "volume"])


def _write_mirror(mirror: Path, bars: pd.DataFrame, days: list[dt.date] | None = None) -> None:
    """Vendor-format day files (of ``days``, default all) and the tickers reference response."""
    for day, group in bars.groupby("session_date"):
        if days is not None and day not in days:
            continue
        path = mirror / "flatfiles" / SPEC.source_key(day)
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = ["ticker,volume,open,close,high,low,window_start,transactions"]
        for row in group.sort_values("ticker").itertuples():
            high, low = round(row.close * 1.01, 2), round(row.close * 0.99, 2)
            lines.append(
                f"{row.ticker},{int(row.volume)},{row.close},{row.close},{high},{low},{midnight_ns(day)},100"
            )
        existed = path.exists()
        path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0))
        if existed:  # a republished file: a new version for the source
            stat = path.stat()
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    records = [
        {
            "ticker": ticker,
            "type": kind,
            "active": last == END,
            "list_date": first.isoformat(),
            **({} if last == END else {"delisted_utc": f"{last.isoformat()}T00:00:00Z"}),
            "last_updated_utc": f"{END.isoformat()}T00:00:00Z",
        }
        for ticker, (kind, first, last, _) in TICKERS.items()
        if kind is not None
    ]
    reference = mirror / "rest" / "v3" / "reference" / "tickers.json"
    reference.parent.mkdir(parents=True, exist_ok=True)
    reference.write_text(json.dumps({"status": "OK", "results": records}))


def _run(lake: Path, mirror: Path, end: dt.date) -> PipelineReport:
    report = PipelineRunner(Lake(lake), SPEC, settings=SETTINGS).run(LocalMirrorSource(mirror), START, end)
    assert report.failures == []
    return report


def _reference(bars: pd.DataFrame) -> pd.DataFrame:
    """Members per date (``universe, ticker, session_date``), the textbook way."""
    xnys = _sessions(START - dt.timedelta(days=60), END)
    lake = sorted(bars.session_date.unique())
    traded = (bars.close * bars.volume).groupby([bars.ticker, bars.session_date]).sum().to_dict()
    delisted = {t: last for t, (kind, _, last, _) in TICKERS.items() if kind is not None and last != END}
    rows = []
    for day in lake:
        for ticker in bars.ticker[bars.session_date == day]:
            kind = TICKERS[ticker][0]
            if kind is not None:
                rows.append((TYPES[kind], ticker, day))
        start = next(s for s in xnys if (s.year, s.month) == (day.year, day.month))
        before = [s for s in xnys if s < start][-20:]
        ranked = sorted(
            (-float(np.median([traded.get((t, s), 0.0) for s in before])), t)
            for t in TICKERS
            if not (t in delisted and delisted[t] < start)
        )
        eligible = [t for median, t in ranked if median < 0]
        for size in SIZES:
            for ticker in eligible[:size]:
                if not (ticker in delisted and day > delisted[ticker]):
                    rows.append((f"top{size}", ticker, day))
    return pd.DataFrame(rows, columns=["universe", "ticker", "session_date"])


def _spans(members: pd.DataFrame, lake: list[dt.date]) -> dict[str, dict[str, list[list[str]]]]:
    """Per universe and instrument, runs of consecutive lake sessions."""
    index = {day: i for i, day in enumerate(lake)}
    out: dict[str, dict[str, list[list[str]]]] = {}
    for (universe, ticker), group in members.groupby(["universe", "ticker"]):
        days = sorted(group.session_date)
        runs: list[list[dt.date]] = [[days[0], days[0]]]
        for day in days[1:]:
            if index[day] == index[runs[-1][1]] + 1:
                runs[-1][1] = day
            else:
                runs.append([day, day])
        name = INSTRUMENTS.get(ticker, ticker)
        out.setdefault(universe, {})[name] = [[a.isoformat(), b.isoformat()] for a, b in runs]
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame, list[PipelineReport]]:
    """A lake updated run by run — two months, two more, a republished March, the last month — and the
    final bars."""
    base = tmp_path_factory.mktemp("universes")
    mirror, lake = base / "mirror", base / "lake"
    bars = _bars()
    reports = []
    for end in (dt.date(2025, 2, 28), dt.date(2025, 4, 30)):
        _write_mirror(mirror, bars[bars.session_date <= end])
        reports.append(_run(lake, mirror, end))
    boosted = _bars(boost=True)
    _write_mirror(mirror, boosted[boosted.session_date <= dt.date(2025, 4, 30)], REPUBLISHED)
    reports.append(_run(lake, mirror, dt.date(2025, 4, 30)))
    _write_mirror(mirror, boosted)
    reports.append(_run(lake, mirror, END))
    return lake, boosted, reports


def test_qlib_market_files_list_the_members_of_every_date(
    built: tuple[Path, pd.DataFrame, list[PipelineReport]], tmp_path: Path
) -> None:
    lake, bars, reports = built
    expected = _spans(_reference(bars), sorted(bars.session_date.unique()))
    # NOREF has no reference record: the run says so.
    untyped = "markets stocks_daily/day (total return): 1 instrument(s) are in no type universe"
    assert any(note.startswith(untyped) for note in reports[-1].notes)
    assert set(expected) == {"common", "etf", "preferred", "top2", "top3"}
    root = Lake(lake).qlib_root(SPEC.name, "day")
    assert read_markets_with_qlib(root, sorted(expected), tmp_path / "qlib") == expected


def test_silver_universes_hold_the_members_and_mark_the_delisting_day(
    built: tuple[Path, pd.DataFrame, list[PipelineReport]],
) -> None:
    lake, bars, _ = built
    with connect_catalog(lake) as con:
        rows = con.execute("SELECT universe, ticker, session_date, delisting FROM universes").fetchall()
    assert sorted(row[:3] for row in rows) == sorted(_reference(bars).itertuples(index=False, name=None))
    last = TICKERS["GONE"][2]
    members = sorted(_reference(bars).query("ticker == 'GONE' and session_date == @last").universe)
    assert sorted(row[:3] for row in rows if row[3]) == [(universe, "GONE", last) for universe in members]
    assert "top3" in members  # the delisted ticker was a liquidity member on its last day


def test_updates_read_only_new_or_changed_sessions_and_equal_a_full_build(
    built: tuple[Path, pd.DataFrame, list[PipelineReport]], tmp_path: Path
) -> None:
    lake, bars, reports = built
    first, appended, republished, last = (r.markets[0] for r in reports)
    assert (first.status, appended.status, last.status) == ("built", "updated", "updated")
    assert appended.read == len(_sessions(dt.date(2025, 3, 1), dt.date(2025, 4, 30))) - 1  # the hole
    assert last.read == len(_sessions(dt.date(2025, 5, 1), END))
    assert republished.rewound_to is not None
    assert republished.rewound_to <= dt.date(2025, 4, 1)
    mirror = tmp_path / "mirror"
    _write_mirror(mirror, bars)
    full = tmp_path / "full"
    _run(full, mirror, END)
    roots = [Lake(path).qlib_root(SPEC.name, "day") for path in (lake, full)]
    files = [{p.name: p.read_bytes() for p in (root / "instruments").iterdir()} for root in roots]
    assert files[0] == files[1]
    states = [
        pl.read_parquet(Lake(path).markets_state_dir(root) / "spans.parquet")
        for path, root in zip((lake, full), roots, strict=True)
    ]
    assert states[0].equals(states[1])


def test_a_rebuilt_root_gets_its_market_files_back_from_the_state(
    built: tuple[Path, pd.DataFrame, list[PipelineReport]], tmp_path: Path
) -> None:
    lake, _, _ = built
    copy = tmp_path / "lake"
    shutil.copytree(lake, copy)
    instruments = Lake(copy).qlib_root(SPEC.name, "day") / "instruments"
    before = {p.name: p.read_bytes() for p in instruments.iterdir()}
    (instruments / "top2.txt").unlink()
    report = PipelineRunner(Lake(copy), SPEC, settings=SETTINGS).run(None)
    assert report.failures == []
    assert (report.markets[0].status, report.markets[0].read) == ("updated", 0)
    assert {p.name: p.read_bytes() for p in instruments.iterdir()} == before


def test_an_instrument_names_frame_renames_members_and_starts_over(
    built: tuple[Path, pd.DataFrame, list[PipelineReport]], tmp_path: Path
) -> None:
    lake, _, _ = built
    copy = tmp_path / "lake"
    shutil.copytree(lake, copy)
    root = Lake(copy).qlib_root(SPEC.name, "day")
    before = (root / "instruments" / "common.txt").read_text()
    # AAA's history up to March as another company's (a reused ticker's earlier holder, say).
    names = pl.DataFrame(
        {
            "ticker": ["AAA"],
            "valid_from": [None],
            "valid_to": [dt.date(2025, 4, 1)],  # exclusive: AAA_OLD through March 31
            "instrument": ["AAA_OLD"],
        },
        schema={
            "ticker": pl.String(),
            "valid_from": pl.Date(),
            "valid_to": pl.Date(),
            "instrument": pl.String(),
        },
    )
    outcome = update_markets(Lake(copy), root, "universes", instruments=names)
    assert (outcome.status, outcome.read) == ("built", len(_sessions(START, END)) - 1)
    after = (root / "instruments" / "common.txt").read_text()
    assert (
        after.replace("AAA_OLD\t2025-01-02\t2025-03-31\n", "").replace(
            "AAA\t2025-04-01\t", "AAA\t2025-01-02\t"
        )
        == before
    )
