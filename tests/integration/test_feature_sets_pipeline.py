"""Feature sets through the pipeline: built only when configured, each in its own table (adding or
dropping a set never rewrites another table), and kept current by the minute run whose VWAP they read.

Expected VWAP features come from the minute roll-ups table and the bars (plain polars reads), never from
the feature code.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from quantmini.config.settings import FeatureSettings, Settings
from quantmini.datasets import get_spec
from quantmini.io.lake import Lake
from quantmini.io.source import LocalMirrorSource
from quantmini.pipeline.runner import PipelineReport, PipelineRunner
from quantmini.sample import generate_sample

pytestmark = pytest.mark.slow

START, END = dt.date(2025, 10, 1), dt.date(2025, 12, 5)


def _settings(*sets: str) -> Settings:
    return Settings(features=FeatureSettings(stocks_daily=("base", *sets)))


def _run(root: Path, source: Path, data_type: str, settings: Settings) -> PipelineReport:
    runner = PipelineRunner(Lake(root), get_spec(data_type), settings=settings)
    report = runner.run(LocalMirrorSource(source), START, END)
    assert report.failures == [], report.failures
    return report


def _written(report: PipelineReport) -> dict[str, int]:
    return {o.table: o.written for o in report.silver}


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("features") / "source"
    generate_sample(
        path, START, END, tickers=12, seed=5, data_types=("stocks_daily", "stocks_minute"), minute_tickers=4
    )
    return path


def test_sets_are_built_when_configured_and_only_their_tables_change(source: Path, tmp_path: Path) -> None:
    root = tmp_path / "lake"
    first = _run(root, source, "stocks_daily", _settings())
    sessions = _written(first)["stocks_daily"]
    assert sessions > 40
    assert not (root / "silver" / "stocks_daily_alpha158").exists()

    added = _run(root, source, "stocks_daily", _settings("alpha158"))
    assert _written(added)["stocks_daily_alpha158"] == sessions
    assert _written(added)["stocks_daily"] == 0  # the main table and bronze are not touched
    assert "stocks_daily_ta" not in _written(added)

    dropped = _run(root, source, "stocks_daily", _settings("ta"))
    assert _written(dropped)["stocks_daily_ta"] == sessions
    assert _written(dropped)["stocks_daily"] == 0
    assert "stocks_daily_alpha158" not in _written(dropped)
    assert any("feature set alpha158 is not configured" in n and "kept" in n for n in dropped.notes)
    assert len(list((root / "silver" / "stocks_daily_alpha158").glob("date=*"))) == sessions

    again = _run(root, source, "stocks_daily", _settings("ta"))
    assert all(o.written == 0 for o in again.silver)


def test_a_minute_run_rebuilds_the_daily_sets_reading_its_vwap(source: Path, tmp_path: Path) -> None:
    root = tmp_path / "lake"
    settings = _settings("alpha158", "alpha360")
    _run(root, source, "stocks_daily", settings)
    minute = _run(root, source, "stocks_minute", settings)
    rollups = pl.read_parquet(root / "silver" / "stocks_minute_rollups" / "*" / "part.parquet")
    with_minutes = rollups.filter(pl.col("vwap").is_not_null()).select("session_date").unique().height
    # Alpha360 reads 60 sessions of VWAP: every session whose window holds a roll-up is rebuilt.
    assert _written(minute)["stocks_daily_alpha158"] == with_minutes
    assert _written(minute)["stocks_daily_alpha360"] >= with_minutes
    assert "stocks_daily" not in _written(minute)

    features = pl.read_parquet(root / "silver" / "stocks_daily_alpha158" / "*" / "part.parquet")
    bars = pl.read_parquet(root / "silver" / "stocks_daily" / "*" / "part.parquet")
    joined = (
        features.join(bars, on=["ticker", "session_date"])
        .join(
            rollups.select("ticker", "session_date", pl.col("vwap").alias("minute_vwap")),
            on=["ticker", "session_date"],
            how="left",
        )
        .with_columns(
            pl.coalesce("minute_vwap", (pl.col("high") + pl.col("low") + pl.col("close")) / 3).alias("vwap")
        )
    )
    expected = (joined["vwap"] / joined["close"]).to_numpy()
    np.testing.assert_allclose(joined["VWAP0"].to_numpy(), expected, rtol=1e-6)
    assert joined["minute_vwap"].is_not_null().sum() > 0

    rerun = _run(root, source, "stocks_daily", settings)
    assert all(o.written == 0 for o in rerun.silver)
