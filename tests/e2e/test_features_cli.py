"""Feature sets as a user reaches them: ``features list``, ``data query --fields KMID RSI14 …`` and the DuckDB
views, on a lake built by the real pipeline with ``features.stocks_daily = base,alpha158,ta``.

Expected values are read straight from the feature tables' Parquet files with pyarrow (not through the
query engine), or computed from the raw bars and the factor table; the names and definitions of Alpha158
and Alpha360 come from pyqlib itself.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result
from polars.testing import assert_frame_equal

from quantmini.cli.main import cli
from quantmini.config.settings import FeatureSettings
from quantmini.io.duckdb_catalog import connect_catalog
from quantmini.query import query

pytestmark = pytest.mark.slow

START, END = "2025-09-02", "2025-10-31"
CONFIGURED = {"QUANTMINI_FEATURES_STOCKS_DAILY": "base,alpha158,ta"}
#: ZOHU has a bar every session and a reverse split on 2025-09-23 (the sample's corporate actions).
TICKER = "ZOHU"
FIRST, LAST = dt.date(2025, 9, 15), dt.date(2025, 10, 10)
FIELDS = ("ticker", "session_date", "close", "KMID", "ROC5", "OPEN0", "CORR10", "RSI14", "MACD_SIGNAL")
TA_NAMES = (
    "RSI14",
    "MACD",
    "MACD_SIGNAL",
    "MACD_HIST",
    "ATR14",
    "BB_PCTB20",
    "BB_WIDTH20",
    "OBV",
    "AMIHUD20",
    "DOLLAR_VOLUME20",
    "GAP",
    "HIGH52W_DIST",
    "MKT_BETA60",
    "MKT_CORR60",
)


def run(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], env=env, catch_exceptions=True)


def one_error_line(result: Result) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("features")
    source, root = base / "source", base / "lake"
    generated = run(
        "sample", "generate", "--out", source, "--start-date", START, "--end-date", END,
        "--tickers", "10", "--data-type", "stocks_daily",
    )  # fmt: skip
    assert generated.exit_code == 0, generated.output
    built = run(
        "pipeline", "run", "--data-type", "stocks_daily", "--start-date", START, "--end-date", END,
        "--source", source, "--data-root", root,
        env=CONFIGURED,
    )  # fmt: skip
    assert built.exit_code == 0, built.output
    return root


def stored(root: Path, table: str, columns: list[str]) -> pd.DataFrame:
    """A feature table's rows of :data:`TICKER` in [FIRST, LAST], read from its partition files."""
    frames = []
    for path in sorted((root / "silver" / table).glob("date=*/part.parquet")):
        day = dt.date.fromisoformat(path.parent.name.removeprefix("date="))
        if FIRST <= day <= LAST:
            frames.append(pq.read_table(path, columns=["ticker", "session_date", *columns]).to_pandas())
    rows = pd.concat(frames, ignore_index=True)
    return rows[rows.ticker == TICKER].sort_values("session_date").reset_index(drop=True)


def query_parquet(root: Path, out: Path, *extra: str, env: dict[str, str] | None = None) -> pd.DataFrame:
    result = run(
        "data", "query", "--data-root", root, "--symbols", TICKER, "--start-date", str(FIRST),
        "--end-date", str(LAST), "--fields", *FIELDS, "--format", "parquet", "--output", out, *extra,
        env=CONFIGURED if env is None else env,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return pq.read_table(out).to_pandas()


def assert_same_values(got: pd.Series, expected: pd.Series) -> None:
    assert got.dtype == expected.dtype, (got.name, got.dtype, expected.dtype)
    assert got.isna().tolist() == expected.isna().tolist(), got.name
    assert got.dropna().tolist() == expected.dropna().tolist(), got.name


def expected_features(root: Path) -> pd.DataFrame:
    alpha = stored(root, "stocks_daily_alpha158", ["KMID", "ROC5", "OPEN0", "CORR10"])
    ta = stored(root, "stocks_daily_ta", ["RSI14", "MACD_SIGNAL"])
    assert alpha.session_date.tolist() == ta.session_date.tolist()
    return pd.concat([alpha, ta[["RSI14", "MACD_SIGNAL"]]], axis=1)


def test_query_returns_the_stored_features_adjusted_or_raw(lake: Path, tmp_path: Path) -> None:
    expected = expected_features(lake)
    assert len(expected) == 20  # the sessions of the range: the ticker trades on each
    adjusted = query_parquet(lake, tmp_path / "adjusted.parquet")
    raw = query_parquet(lake, tmp_path / "raw.parquet", "--raw")
    assert list(adjusted.columns) == list(FIELDS)
    for frame in (adjusted, raw):
        assert frame.ticker.unique().tolist() == [TICKER]
        assert frame.session_date.tolist() == expected.session_date.tolist()
        for name in ("KMID", "ROC5", "OPEN0", "CORR10", "RSI14", "MACD_SIGNAL"):
            assert_same_values(frame[name], expected[name])
    # The split and dividend change the adjusted close, never a feature.
    assert (adjusted.close - raw.close).abs().max() > 1.0
    assert expected[["KMID", "ROC5"]].notna().all().all()
    # RSI14 needs 15 bars: null on the range's first sessions, then a value (nulls are compared too).
    assert 0 < expected.RSI14.isna().sum() < 10


def test_features_are_in_each_session_s_own_basis(lake: Path, tmp_path: Path) -> None:
    # ROC5 = close 5 sessions back / close, both in the later session's shares: the ratio of the closes
    # adjusted by the factor table, across the reverse split too.
    bars = pd.read_parquet(lake / "silver" / "stocks_daily", columns=["ticker", "session_date", "close"])
    bars = bars[bars.ticker == TICKER].sort_values("session_date").reset_index(drop=True)
    spans = pd.read_parquet(lake / "silver" / "reference" / "adjustment_factors.parquet")
    spans = spans[spans.ticker == TICKER]
    assert (spans.split_factor != 1.0).any()
    factor = [
        next((s.adj_factor for s in spans.itertuples() if s.valid_from <= d < s.valid_to), 1.0)
        for d in pd.to_datetime(bars.session_date).dt.date
    ]
    adjusted_close = bars.close * factor
    bars["roc5"] = adjusted_close.shift(5) / adjusted_close
    got = query_parquet(lake, tmp_path / "q.parquet").merge(bars, on="session_date")
    assert len(got) == 20
    for value, want in zip(got.ROC5, got.roc5, strict=True):
        assert math.isclose(value, want, rel_tol=1e-6)


def test_python_api_answers_the_same(lake: Path, tmp_path: Path) -> None:
    query_parquet(lake, tmp_path / "q.parquet")
    frame = query(
        lake, "stocks_daily", TICKER, FIRST, LAST, FIELDS,
        features=FeatureSettings(stocks_daily=("base", "alpha158", "ta")),
    )  # fmt: skip
    assert_frame_equal(frame, pl.read_parquet(tmp_path / "q.parquet"))
    assert frame.schema["KMID"] == pl.Float32
    assert frame.schema["RSI14"] == pl.Float64


def test_a_one_symbol_query_reads_only_the_partitions_of_its_sessions(lake: Path, tmp_path: Path) -> None:
    copy = tmp_path / "lake"
    shutil.copytree(lake, copy)
    spoiled = 0
    for table in ("stocks_daily_alpha158", "stocks_daily_ta"):
        for path in (copy / "silver" / table).glob("date=*/part.parquet"):
            if not FIRST <= dt.date.fromisoformat(path.parent.name.removeprefix("date=")) <= LAST:
                path.write_bytes(b"not parquet: a query of another range must not open this")
                spoiled += 1
    assert spoiled == 2 * (44 - 20)
    got = query_parquet(copy, tmp_path / "q.parquet")
    expected = expected_features(lake)
    for name in ("KMID", "RSI14"):
        assert_same_values(got[name], expected[name])
    # A range that holds a spoiled partition does read it (the check above can fail).
    wider = run(
        "data", "query", "--data-root", copy, "--symbols", TICKER, "--start-date", str(FIRST),
        "--end-date", "2025-10-13", "--fields", "ticker", "RSI14", env=CONFIGURED,
    )  # fmt: skip
    assert "query on stocks_daily failed" in one_error_line(wider)
    # Without features only the bars are read.
    plain = run(
        "data", "query", "--data-root", copy, "--symbols", TICKER, "--start-date", START,
        "--end-date", END, "--fields", "ticker", "close", "--format", "csv", env=CONFIGURED,
    )  # fmt: skip
    assert plain.exit_code == 0, plain.output
    assert len(pd.read_csv(io.StringIO(plain.stdout))) == 44


def test_sets_not_configured_or_not_built_are_one_line_each(lake: Path, tmp_path: Path) -> None:
    args: tuple[str | Path, ...] = ("data", "query", "--data-root", lake, "--symbols", TICKER)
    args += ("--start-date", str(FIRST), "--end-date", str(LAST), "--fields", "close")
    alpha360 = one_error_line(run(*args, "CLOSE5", env=CONFIGURED))
    assert "CLOSE5 is a feature of the alpha360 set, which is not configured for stocks_daily" in alpha360
    assert "features.stocks_daily base,alpha158,ta,alpha360" in alpha360
    assert "quantmini data enrich --data-type stocks_daily" in alpha360
    # Built once, no longer configured: its table is read as it stands.
    dropped = run(*args, "RSI14", "--format", "csv", env={"QUANTMINI_FEATURES_STOCKS_DAILY": "base,alpha158"})
    assert dropped.exit_code == 0, dropped.output
    assert pd.read_csv(io.StringIO(dropped.stdout))["RSI14"].notna().any()
    unbuilt = one_error_line(run(*args, "CLOSE5", env={"QUANTMINI_FEATURES_STOCKS_DAILY": "base,alpha360"}))
    assert "feature set alpha360 of stocks_daily (CLOSE5) is configured but not built yet" in unbuilt
    assert "silver/stocks_daily_alpha360" in unbuilt
    # OPEN0 is in alpha158 and alpha360: the configured and built alpha158 answers it.
    both = run(*args, "OPEN0", "--format", "csv", env={"QUANTMINI_FEATURES_STOCKS_DAILY": "base,alpha158"})
    assert both.exit_code == 0, both.output
    copy = tmp_path / "lake"
    shutil.copytree(lake, copy)
    (copy / "silver" / "stocks_daily_ta" / "date=2025-10-01" / "part.parquet").unlink()
    args = (*args[:3], copy, *args[4:])
    lacking = one_error_line(run(*args, "RSI14", env=CONFIGURED))
    assert (
        "feature set ta of stocks_daily (RSI14) lacks 1 session(s) of the range that silver holds" in lacking
    )
    assert "2025-10-01" in lacking


def test_features_list_as_json_matches_qlib_and_the_configuration(lake: Path) -> None:
    result = run("features", "list", "--data-type", "stocks_daily", "--format", "json", env=CONFIGURED)
    assert result.exit_code == 0, result.output
    listing = json.loads(result.stdout)
    configured = {s["set"]: s["configured"] for s in listing["sets"]}
    assert configured == {"base": True, "alpha158": True, "alpha360": False, "ta": True}
    tables = {s["set"]: s["table"] for s in listing["sets"]}
    assert tables["alpha158"] == "stocks_daily_alpha158"
    assert sorted(p.name for p in (lake / "silver").iterdir() if p.name.startswith("stocks_daily_")) == [
        "stocks_daily_alpha158",
        "stocks_daily_ta",
    ]
    by_set: dict[str, list[tuple[str, str | None]]] = {}
    for row in listing["features"]:
        assert row["data_type"] == "stocks_daily"
        assert row["description"]
        by_set.setdefault(row["set"], []).append((row["name"], row["definition"]))
    assert [name for name, _ in by_set["ta"]] == list(TA_NAMES)
    base = ["ret_1d", "ret_5d", "ret_20d", "vol_20d", "volume_z_20d", "price_ret_1d"]
    assert [name for name, _ in by_set["base"]] == base
    assert all(definition is None for _, definition in by_set["base"])
    for name, loader in (("alpha158", "Alpha158DL"), ("alpha360", "Alpha360DL")):
        assert [(n, (d or "").replace(" ", "")) for n, d in by_set[name]] == qlib_feature_config(loader)


def qlib_feature_config(loader: str) -> list[tuple[str, str]]:
    """Names and expressions (spaces removed) of one of qlib's feature loaders, from pyqlib."""
    code = (
        "import json; from qlib.contrib.data.loader import " + loader + " as L\n"
        "fields, names = L.get_feature_config()\n"
        "print(json.dumps([[n, f.replace(' ', '')] for f, n in zip(fields, names)]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return [(n, f) for n, f in json.loads(done.stdout.splitlines()[-1])]


def test_features_list_table_and_bad_set() -> None:
    listed = run("features", "list", "--set", "ta", env={"COLUMNS": "300", **CONFIGURED})
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    sets = [line for line in lines if line.startswith("│ stocks_daily")]
    assert len(sets) == 1
    assert "│ ta " in sets[0]
    assert "│ yes " in sets[0]
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in lines if line.startswith("│ ")]
    features = [row for row in rows if len(row) == 4]
    assert [row[0] for row in features] == list(TA_NAMES)
    assert features[0][3] == (
        "100-100/(1+RMA(Greater($close-Ref($close, 1), 0), 14)/RMA(Greater(Ref($close, 1)-$close, 0), 14))"
    )
    assert "never adjusted" in listed.output
    unconfigured = run("features", "list", "--set", "ta", "--format", "json")
    assert json.loads(unconfigured.stdout)["sets"][0]["configured"] is False
    bad = one_error_line(run("features", "list", "--set", "alpha159"))
    assert (
        "no feature set 'alpha159' (stocks_daily: base, alpha158, alpha360, ta; stocks_minute: base)" in bad
    )
    bad = one_error_line(run("features", "list", "--data-type", "stocks_minute", "--set", "ta"))
    assert "no feature set 'ta' for stocks_minute (sets: base)" in bad


def test_duckdb_views_of_the_feature_tables_return_the_stored_values(lake: Path, tmp_path: Path) -> None:
    moved = tmp_path / "moved"
    shutil.copytree(lake, moved)  # the catalog's paths are relative to the lake: a copy keeps working
    expected = expected_features(lake)
    for root in (lake, moved):
        with connect_catalog(root) as con:
            views = {
                r[0]
                for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
            }
            got = con.execute(
                "SELECT a.session_date, a.adj_close, x.KMID, x.ROC5, x.OPEN0, x.CORR10, t.RSI14, "
                "t.MACD_SIGNAL FROM adjusted_stocks_daily AS a "
                "JOIN stocks_daily_alpha158 AS x USING (ticker, session_date) "
                "JOIN stocks_daily_ta AS t USING (ticker, session_date) "
                "WHERE a.ticker = ? AND a.session_date BETWEEN ? AND ? ORDER BY a.session_date",
                [TICKER, FIRST, LAST],
            ).df()
        assert {"stocks_daily_alpha158", "stocks_daily_ta"} <= views
        assert "stocks_daily_alpha360" not in views
        assert pd.to_datetime(got.session_date).dt.date.tolist() == expected.session_date.tolist()
        for name in ("KMID", "ROC5", "OPEN0", "CORR10", "RSI14", "MACD_SIGNAL"):
            assert_same_values(got[name], expected[name])
