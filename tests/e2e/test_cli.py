"""The CLI as a user runs it: demo, stage commands, pipeline run, query, and bad input."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import itertools
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner, Result

from quantmini.cli.main import cli
from quantmini.datasets import get_spec
from quantmini.io.duckdb_catalog import connect_catalog

SPEC = get_spec("stocks_daily")
START, END = "2025-09-02", "2025-10-31"


def run(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], env=env, catch_exceptions=True)


def assert_one_line_error(result: Result, code: int, fragment: str) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert fragment in result.output
    error_lines = [line for line in result.output.splitlines() if line.startswith(("error:", "Error:"))]
    assert len(error_lines) == 1, result.output


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "source"
    result = run(
        "sample",
        "generate",
        "--out",
        out,
        "--start-date",
        START,
        "--end-date",
        END,
        "--tickers",
        "10",
        "--data-type",
        "stocks_daily",
    )
    assert result.exit_code == 0, result.output
    return out


def test_python_dash_m_and_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "quantmini", "--version"], capture_output=True, text=True, check=True
    )
    assert done.stdout.startswith("quantmini, version ")


DEMO_ARGS = ("--tickers", "12", "--start-date", START, "--end-date", END)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Result]:
    """A demo run (its data root and what it printed), shared by the demo tests."""
    root = tmp_path_factory.mktemp("demo")
    return root, run("demo", "--data-root", root, *DEMO_ARGS)


@pytest.mark.slow
def test_demo_runs_then_second_run_is_a_noop(demo: tuple[Path, Result]) -> None:
    root, first = demo
    assert first.exit_code == 0, first.output
    assert "quarantined rows by reason" in first.output
    assert "example query" in first.output
    assert (root / "lake" / "gold" / "qlib" / "stocks_daily" / "day" / "calendars" / "day.txt").exists()
    report = root / "lake" / "report.html"
    assert f"lake report (open it in a browser): {report}" in first.output.replace("\n", "")
    assert "<section id='coverage'" in report.read_text()
    second = run("demo", "--data-root", root, *DEMO_ARGS)
    assert second.exit_code == 0, second.output
    assert "Nothing to do" in second.output


@pytest.mark.slow
def test_the_demo_prints_a_minute_read_of_its_1min_root(demo: tuple[Path, Result]) -> None:
    root, first = demo
    assert first.exit_code == 0, first.output
    assert "gold stocks_minute/1min" in first.output
    title = re.search(r"1min Qlib root: (\S+) at the open of (\d{4}-\d{2}-\d{2})", first.output)
    assert title is not None, first.output
    symbol, day = title.groups()
    rows = [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in first.output.splitlines()
        if re.match(r"│ 09:3\d │", line)
    ]
    assert len(rows) == 10
    # The adjusted closes printed equal the lake's adjusted minute bars (DuckDB view), NaN where no trade.
    with connect_catalog(root / "lake") as con:
        bars = con.execute(
            "SELECT ts, adj_close FROM adjusted_stocks_minute "
            "WHERE ticker = ? AND session_date = ? AND regular_session",
            [symbol, day],
        ).df()
    local = pd.to_datetime(bars.ts, utc=True).dt.tz_convert("America/New_York").dt.strftime("%H:%M")
    expected = dict(zip(local, bars.adj_close, strict=True))
    for bar, _open, close, *_ in rows:
        assert close == (f"{expected[bar]:,.4f}" if bar in expected else "nan"), bar


@pytest.mark.slow
def test_the_demo_s_example_query_runs_as_printed(demo: tuple[Path, Result]) -> None:
    root, first = demo
    assert first.exit_code == 0, first.output
    printed = [line.strip() for line in first.output.splitlines() if " data query " in line]
    assert len(printed) == 2, first.output  # raw bars, then features
    words = shlex.split(next(line for line in printed if "--raw" in line))
    # Under `uv run` (as the tests run) the demo prints the launcher the user needs too.
    launcher = ["uv", "run", "--no-dev"] if "UV_RUN_RECURSION_DEPTH" in os.environ else []
    assert words[: len(launcher) + 1] == [*launcher, "quantmini"]
    words = words[len(launcher) :]
    answer = run(*words[1:], env={"COLUMNS": "80"})
    assert answer.exit_code == 0, answer.output

    # The raw closes of the printed symbol and range, read from bronze here, rounded as the table shows.
    get = dict(itertools.pairwise(words))
    ticker, first_day, last_day = get["--symbols"], get["--start-date"], get["--end-date"]
    bronze = pd.read_parquet(root / "lake" / "bronze" / "stocks_daily")
    rows = bronze[
        (bronze.ticker == ticker) & bronze.session_date.astype(str).between(first_day, last_day)
    ].sort_values("session_date")
    assert len(rows) >= 2
    lines = [line.split() for line in answer.output.splitlines() if line.startswith(f"{ticker} ")]
    assert [(w[1], w[5]) for w in lines] == [
        (str(d), f"{c:,.2f}") for d, c in zip(rows.session_date, rows.close, strict=True)
    ]


def test_the_demo_s_feature_query_runs_as_printed(demo: tuple[Path, Result]) -> None:
    root, first = demo
    line = next(
        line.strip() for line in first.output.splitlines() if " data query " in line and "--fields" in line
    )
    words = shlex.split(line)
    words = words[words.index("quantmini") + 1 :]
    answer = run(*words, "--format", "csv")
    assert answer.exit_code == 0, answer.output
    got = pd.read_csv(io.StringIO(answer.output))
    fields = words[words.index("--fields") + 2 :]  # after session_date
    assert set(fields) <= {"KMID", "ROC5", "MA20", "CORD20", "RSI14", "MACD", "ATR14"}
    # The values stored in silver (read here with pandas), as the demo's feature sets wrote them.
    get = dict(itertools.pairwise(words))
    stored = pd.concat(
        pd.read_parquet(path)
        for path in sorted((root / "lake" / "silver").glob("stocks_daily_*/date=*/part.parquet"))
        if get["--start-date"] <= path.parent.name[5:] <= get["--end-date"]
    )
    stored = stored[stored.ticker == get["--symbols"]].groupby("session_date").first().reset_index()
    assert len(got) == len(stored) >= 2
    for name in fields:
        np.testing.assert_allclose(got[name].to_numpy(), stored[name].to_numpy(dtype=float), rtol=1e-6)


def test_pipeline_run_then_query_formats(sample: Path, tmp_path: Path) -> None:
    root = tmp_path / "lake"
    result = run(
        "pipeline",
        "run",
        "--data-type",
        "stocks_daily",
        "--start-date",
        START,
        "--end-date",
        END,
        "--source",
        sample,
        "--data-root",
        root,
    )
    assert result.exit_code == 0, result.output
    assert "in =" in result.output

    silver = pd.read_parquet(root / "silver" / "stocks_daily")
    ticker = sorted(silver.ticker.unique())[0]
    expected = silver[
        (silver.ticker == ticker) & (silver.session_date.astype(str).between("2025-09-10", "2025-09-20"))
    ]
    expected = expected.sort_values("session_date")

    csv = run(
        "data",
        "query",
        "--data-root",
        root,
        "--data-type",
        "stocks_daily",
        "--symbols",
        ticker,
        "--start-date",
        "2025-09-10",
        "--end-date",
        "2025-09-20",
        "--fields",
        "ticker",
        "session_date",
        "close",
        "--raw",
        "--format",
        "csv",
    )
    assert csv.exit_code == 0, csv.output
    got = pd.read_csv(io.StringIO(csv.stdout))
    assert got["close"].tolist() == pytest.approx(expected["close"].tolist())
    assert got["session_date"].tolist() == [str(d)[:10] for d in expected["session_date"]]

    adjusted = run(
        "data",
        "query",
        "--data-root",
        root,
        "--data-type",
        "stocks_daily",
        "--symbols",
        ticker,
        "--start-date",
        "2025-09-10",
        "--end-date",
        "2025-09-20",
        "--fields",
        "close",
        "--format",
        "json",
    )
    assert adjusted.exit_code == 0, adjusted.output
    # Adjusted = raw × the factor of the span (of the compact factor table) holding the session.
    spans = pd.read_parquet(root / "silver" / "reference" / "adjustment_factors.parquet")
    spans = spans[spans.ticker == ticker]
    factors = [
        next((s.adj_factor for s in spans.itertuples() if s.valid_from <= d.date() < s.valid_to), 1.0)
        for d in pd.to_datetime(expected["session_date"])
    ]
    assert pd.read_json(io.StringIO(adjusted.stdout))["close"].tolist() == pytest.approx(
        (expected["close"] * factors).tolist()
    )

    rerun = run(
        "pipeline",
        "run",
        "--data-type",
        "stocks_daily",
        "--start-date",
        START,
        "--end-date",
        END,
        "--source",
        sample,
        "--data-root",
        root,
    )
    assert "Nothing to do" in rerun.output


def test_stage_commands_one_by_one(sample: Path, tmp_path: Path) -> None:
    root = tmp_path / "lake"
    env = {"DATA_ROOT": str(root), "QUANTMINI_SOURCE_DIR": str(sample)}
    ingest = run("data", "ingest", "--start-date", START, "--end-date", END, env=env)
    assert ingest.exit_code == 0, ingest.output
    assert (root / "bronze" / "stocks_daily").is_dir()
    assert not (root / "silver").exists()
    enrich = run("data", "enrich", env=env)
    assert enrich.exit_code == 0, enrich.output
    assert (root / "silver" / "reference" / "adjustment_factors.parquet").exists()
    convert = run("data", "convert", env=env)
    assert convert.exit_code == 0, convert.output
    assert (root / "gold" / "qlib" / "stocks_daily" / "day" / "instruments" / "all.txt").exists()
    assert (root / "gold" / "quantmini.duckdb").exists()


def test_corrupt_gzip_fails_that_file_only(sample: Path, tmp_path: Path) -> None:
    source = tmp_path / "source"
    (source / "flatfiles").mkdir(parents=True)
    for session in ("2025-09-02", "2025-09-03"):
        key = SPEC.source_key(dt.date.fromisoformat(session))
        (source / "flatfiles" / key).parent.mkdir(parents=True, exist_ok=True)
        (source / "flatfiles" / key).write_bytes((sample / "flatfiles" / key).read_bytes())
    bad = source / "flatfiles" / SPEC.source_key(dt.date(2025, 9, 3))
    bad.write_bytes(bad.read_bytes()[:-30])
    result = run(
        "data",
        "ingest",
        "--start-date",
        "2025-09-02",
        "--end-date",
        "2025-09-03",
        "--source",
        source,
        "--data-root",
        tmp_path / "lake",
    )
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "2025-09-03.csv.gz: truncated gzip" in result.output
    assert (tmp_path / "lake" / "bronze" / "stocks_daily" / "date=2025-09-02" / "part.parquet").exists()


def test_wrong_header_is_reported(tmp_path: Path) -> None:
    key = SPEC.source_key(dt.date(2025, 9, 2))
    path = tmp_path / "source" / "flatfiles" / key
    path.parent.mkdir(parents=True)
    path.write_bytes(gzip.compress(b"ticker,open,close\nA,1,2\n"))
    result = run(
        "data",
        "ingest",
        "--start-date",
        "2025-09-02",
        "--end-date",
        "2025-09-02",
        "--source",
        tmp_path / "source",
        "--data-root",
        tmp_path / "lake",
    )
    assert result.exit_code == 1
    assert "wrong header 'ticker,open,close'" in result.output


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (
            ("data", "ingest", "--start-date", "2025-13-01", "--end-date", "2025-12-01", "--source", "."),
            1,
            "--start-date: '2025-13-01' is not a date",
        ),
        (
            ("data", "ingest", "--start-date", "2025-12-02", "--end-date", "2025-12-01", "--source", "."),
            1,
            "is before --start-date",
        ),
        (
            (
                "data",
                "ingest",
                "--data-type",
                "crypto",
                "--start-date",
                "2025-12-01",
                "--end-date",
                "2025-12-01",
            ),
            2,
            "Invalid value for '--data-type'",
        ),
        (
            (
                "data",
                "ingest",
                "--start-date",
                "2025-12-01",
                "--end-date",
                "2025-12-01",
                "--source",
                "/no/such/dir",
            ),
            1,
            "source directory /no/such/dir does not exist",
        ),
        (
            ("pipeline", "run", "--start-date", "2025-12-01", "--end-date", "2025-12-01"),
            1,
            "no S3 credentials: set POLYGON_S3_ACCESS_KEY_ID",
        ),
    ],
)
def test_bad_input_gives_one_readable_line(
    args: tuple[str, ...], code: int, fragment: str, tmp_path: Path
) -> None:
    result = (
        run(*args, "--data-root", tmp_path / "lake")
        if args[0] != "data" or "crypto" not in args
        else run(*args)
    )
    assert_one_line_error(result, code, fragment)


def test_debug_shows_the_exception(tmp_path: Path) -> None:
    result = run(
        "--debug",
        "data",
        "ingest",
        "--start-date",
        "2025-13-01",
        "--end-date",
        "2025-12-01",
        "--source",
        ".",
        "--data-root",
        tmp_path,
    )
    # The CLI renders the traceback itself (through the redactor) and still ends with the one-line error.
    assert result.exit_code == 1, result.output
    assert "Traceback (most recent call last)" in result.output
    assert "quantmini._exceptions.ConfigurationError: --start-date: '2025-13-01'" in result.output
    assert result.output.rstrip().splitlines()[-1].startswith("error: --start-date: '2025-13-01'")


def test_unknown_env_key_is_a_readable_error(tmp_path: Path) -> None:
    result = run("data", "enrich", "--data-root", tmp_path, env={"QUANTMINI_PIPLINE_MODE": "batch"})
    assert_one_line_error(result, 1, "QUANTMINI_PIPLINE_MODE")
