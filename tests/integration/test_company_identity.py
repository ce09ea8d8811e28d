"""One company = one series, end to end on generated data: a rename, a ticker reused by another company
(known to the reference, or only visible in the bars), read back through silver, real pyqlib and the
query layer. Expected values come from the generated files and a plain pandas walk over them."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import polars as pl
import pytest
from click.testing import CliRunner

from quantmini.cli.main import cli
from quantmini.datasets import get_spec
from quantmini.io.duckdb_catalog import connect_catalog
from quantmini.io.lake import Lake
from quantmini.io.source import LocalMirrorSource
from quantmini.pipeline.runner import PipelineReport, PipelineRunner
from quantmini.query import QueryEngine, QuerySpec
from quantmini.sample import generate_sample
from tests.support.mirror_files import day_files, rewrite_day_file
from tests.support.qlib_child import read_with_qlib

SPEC = get_spec("stocks_daily")
START, END = dt.date(2025, 8, 1), dt.date(2025, 11, 28)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("identity") / "mirror"
    generate_sample(out, START, END, tickers=12, seed=23, data_types=("stocks_daily",))
    return out


def _edit(path: Path, ticker: str, edit: Callable[[list[str]], list[str] | None]) -> None:
    """Apply ``edit`` (a function of the fields, returning ``None`` to drop the row) to ``ticker``'s row."""

    def rows(lines: list[str]) -> list[str]:
        out = []
        for line in lines:
            fields: list[str] | None = line.split(",")
            if fields is not None and fields[0] == ticker:
                fields = edit(fields)
            if fields is not None:
                out.append(",".join(fields))
        return out

    rewrite_day_file(path, rows)


def _scaled(factor: float):  # type: ignore[no-untyped-def]
    def scale(fields: list[str]) -> list[str]:
        for i in (2, 3, 4, 5):  # open, close, high, low
            fields[i] = f"{float(fields[i]) * factor:.4f}"
        return fields

    return scale


def _run(root: Path, mirror: Path) -> PipelineReport:
    report = PipelineRunner(Lake(root), SPEC).run(LocalMirrorSource(mirror), START, END)
    assert report.failures == []
    return report


def _bars(mirror: Path) -> pd.DataFrame:
    """Every bar of the generated files, parsed with pandas."""
    frames = []
    for day, path in day_files(mirror, SPEC.prefix).items():
        with gzip.open(path) as fh:
            frame = pd.read_csv(fh, dtype={"ticker": str})
        frame["session_date"] = day
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _silver(root: Path) -> pd.DataFrame:
    frame = pd.read_parquet(root / "silver" / "stocks_daily", columns=["ticker", "session_date", "ret_1d"])
    frame["session_date"] = pd.to_datetime(frame["session_date"]).dt.date
    return frame


def _stable_ticker(mirror: Path) -> str:
    """A ticker with a bar every session and no corporate action or rename (its closes are plain)."""
    record = json.loads((mirror / "sample.json").read_text())
    sessions = sorted(day_files(mirror, SPEC.prefix))
    acted = {a["ticker"] for kind in ("splits", "dividends") for a in record["corporate_actions"][kind]}
    acted |= {
        c[k] for c in record["corporate_actions"]["ticker_changes"] for k in ("old_ticker", "new_ticker")
    }
    bars = _bars(mirror)
    counts = bars.groupby("ticker").session_date.nunique()
    full = sorted(t for t, n in counts.items() if n == len(sessions) and t not in acted and t.isalpha())
    return full[0]


def test_a_reused_ticker_is_two_instruments_and_no_return_crosses_them(mirror: Path, tmp_path: Path) -> None:
    source, root = tmp_path / "mirror", tmp_path / "lake"
    shutil.copytree(mirror, source)
    _run(root, source)  # first the lake as the reference first described it
    ticker = _stable_ticker(source)
    sessions = sorted(day_files(source, SPEC.prefix))
    reuse = sessions[50]
    # Another company takes over the ticker, trading at 0.43 × the old company's prices.
    for day, path in day_files(source, SPEC.prefix).items():
        if day >= reuse:
            _edit(path, ticker, _scaled(0.43))
    path = source / "rest" / "v3" / "reference" / "tickers.json"
    payload = json.loads(path.read_text())
    old = next(r for r in payload["results"] if r["ticker"] == ticker)
    old["active"], old["delisted_utc"] = False, f"{sessions[49]}T00:00:00Z"
    new = {**old, "active": True, "list_date": str(reuse), "composite_figi": "BBGREUSED001", "name": "Newco"}
    new.pop("delisted_utc")
    payload["results"].append(new)
    path.write_text(json.dumps(payload))
    report = _run(root, source)
    assert report.factors is not None
    assert report.factors.entities.reused == 1

    # Silver: the new company's first return is not computed against the old company's close.
    silver = _silver(root)
    own = silver[silver.ticker == ticker].set_index("session_date").sort_index()
    bars = _bars(source)
    closes = bars[bars.ticker == ticker].set_index("session_date").close.sort_index()
    assert pd.isna(own.ret_1d[reuse])
    after = sessions[51]
    assert own.ret_1d[after] == pytest.approx(closes[after] / closes[reuse] - 1, rel=1e-9)
    before = sessions[49]
    assert own.ret_1d[before] == pytest.approx(closes[before] / closes[sessions[48]] - 1, rel=1e-9)

    # Real qlib: two instruments, the earlier company's named by its last bar, each with its own span.
    earlier = f"{ticker}_{before:%Y%m%d}"
    meta, features = read_with_qlib(
        Lake(root).qlib_root("stocks_daily", "day"), "day", ["$close", "$change"], tmp_path / "q"
    )
    spans = {k: [(a[:10], b[:10]) for a, b in v] for k, v in meta["spans"].items()}
    assert spans[earlier] == [(str(sessions[0]), str(before))]
    assert spans[ticker] == [(str(reuse), str(sessions[-1]))]
    features["session_date"] = pd.to_datetime(features["datetime"]).dt.date
    first = features[(features.instrument == ticker) & (features.session_date == reuse)]
    assert first["$change"].isna().all()
    assert first["$close"].iloc[0] == pytest.approx(closes[reuse], rel=1e-6)

    # The query layer: the ticker names both companies in the range, each limited to its own span.
    spec = QuerySpec(data_type="stocks_daily", symbols=(ticker,), start=sessions[0], end=sessions[-1])
    engine = QueryEngine(root)
    resolution = engine.resolve(spec)
    assert resolution is not None
    assert any("named 2 companies" in note and earlier in note for note in resolution.notes)
    assert engine.query(spec).height == len(own)  # every bar of both, each once


def test_a_rename_is_one_series_in_queries(mirror: Path, tmp_path: Path) -> None:
    root = tmp_path / "lake"
    _run(root, mirror)
    change = json.loads((mirror / "sample.json").read_text())["corporate_actions"]["ticker_changes"][0]
    old, new = change["old_ticker"], change["new_ticker"]
    result = CliRunner().invoke(
        cli,
        ["data", "query", "--data-root", str(root), "--data-type", "stocks_daily", "--symbols", old,
         "--start-date", str(START), "--end-date", str(END), "--format", "csv"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"{old} is one company under several tickers ({old} from" in result.stderr
    rows = pl.read_csv(result.stdout.encode())
    bars = _bars(mirror)
    expected = bars[bars.ticker.isin([old, new])]
    assert sorted(rows["ticker"].unique().to_list()) == sorted([old, new])
    assert rows.height == len(expected)
    # In SQL, the entities view names every bar by its company's instrument (the docs' snippet).
    with connect_catalog(root) as con:
        named = con.execute(INSTRUMENT_SQL, [old, new]).fetchall()
    assert named == [(new, len(expected))]


INSTRUMENT_SQL = """
SELECT e.instrument, count(*)
FROM silver_stocks_daily s
ASOF JOIN entities e ON s.ticker = e.ticker AND s.session_date >= e.valid_from
WHERE s.session_date < e.valid_to AND s.ticker IN (?, ?)
GROUP BY 1
"""


def test_flat_files_alone_infer_a_reused_ticker_from_a_gap_and_a_jump(mirror: Path, tmp_path: Path) -> None:
    source, root = tmp_path / "mirror", tmp_path / "lake"
    shutil.copytree(mirror, source)
    shutil.rmtree(source / "rest")  # no reference at all: only the bars tell
    ticker = _stable_ticker(source)
    sessions = sorted(day_files(source, SPEC.prefix))
    gap = sessions[40:65]  # 25 sessions without a bar, then prices at 0.4 ×
    for day, path in day_files(source, SPEC.prefix).items():
        if day in gap:
            _edit(path, ticker, lambda fields: None)
        elif day > gap[-1]:
            _edit(path, ticker, _scaled(0.4))
    report = _run(root, source)
    assert report.factors is not None
    assert (report.factors.entities.reused, report.factors.entities.inferred) == (1, 1)
    restart = sessions[65]
    assert any(note.startswith(f"entities: {ticker}@{restart}: another company") for note in report.notes)
    entities = pl.read_parquet(Lake(root).silver_reference("entities")).filter(pl.col("ticker") == ticker)
    assert entities.select("entity", "instrument", "source").rows() == [
        (ticker, f"{ticker}_{sessions[39]:%Y%m%d}", "ticker"),
        (f"{ticker}@{restart}", ticker, "inferred"),
    ]
    silver = _silver(root)
    assert pd.isna(silver[(silver.ticker == ticker) & (silver.session_date == restart)].ret_1d).all()
