"""Every execution mode through the CLI, each in its own process under a timeout, builds the same lake.

``parallel`` uses a process pool (spawned workers: a forked child of a parent that already started Polars'
thread pool hangs inside Polars); ``dask`` starts a real 2-worker ``LocalCluster`` on 127.0.0.1. The
mirror holds a REST ``rest/`` folder, so the parent uses Polars (reference tables) before any pool starts,
which is what made forked workers hang.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from quantmini.sample import generate_sample

START, END = dt.date(2025, 6, 2), dt.date(2025, 7, 3)
TIMEOUT = 240

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("modes") / "mirror"
    generate_sample(
        out,
        START,
        END,
        tickers=12,
        seed=9,
        data_types=("stocks_daily", "stocks_minute", "options_daily"),
        minute_tickers=4,
        option_underlyings=3,
    )
    assert (out / "rest").is_dir()
    return out


def _cli(*args: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "quantmini", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        env={**os.environ, "COLUMNS": "250"},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def _contents(root: Path) -> dict[str, object]:
    """Data files of a lake: Parquet by content, Qlib files by bytes (manifests and logs excluded)."""
    out: dict[str, object] = {}
    for layer in ("bronze", "silver", "quarantine"):
        for path in sorted((root / layer).rglob("*.parquet")):
            frame = pl.read_parquet(path)
            out[path.relative_to(root).as_posix()] = frame.drop("fetched_at", strict=False).to_dicts()
    gold = root / "gold" / "qlib"
    for path in sorted(gold.rglob("*")) if gold.exists() else []:
        if path.is_file():
            out[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


MODES = {
    "streaming": ("--mode", "streaming"),
    "batch": ("--mode", "batch"),
    "parallel": ("--mode", "parallel", "--workers", "2"),
    "dask": ("--executor", "dask", "--workers", "2"),
}


@pytest.fixture(scope="module")
def lakes(mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("lakes")
    built = {}
    for name, options in MODES.items():
        root = base / name
        daily = _cli("pipeline", "run", "--data-type", "stocks_daily", "--start-date", START,
                     "--end-date", END, "--source", mirror, "--data-root", root, *options)  # fmt: skip
        assert f"({name} executor)" in daily.stdout
        for data_type in ("stocks_minute", "options_daily"):  # options: two silver waves, stock inputs
            _cli("pipeline", "run", "--data-type", data_type, "--start-date", START,
                 "--end-date", END, "--source", mirror, "--data-root", root, *options)  # fmt: skip
        built[name] = root
    return built


@pytest.mark.parametrize("mode", ["batch", "parallel", "dask"])
def test_every_mode_builds_the_lake_a_streaming_run_builds(lakes: dict[str, Path], mode: str) -> None:
    expected = _contents(lakes["streaming"])
    assert any(k.startswith("gold/qlib/stocks_daily/day/features/") for k in expected)
    assert any(k.startswith("bronze/stocks_minute/") for k in expected)
    assert any(k.startswith("silver/stocks_daily/") for k in expected)
    assert any(k.startswith("silver/options_underlying_daily/") for k in expected)
    assert any(k.endswith("/iv30.day.bin") for k in expected)
    got = _contents(lakes[mode])
    assert sorted(got) == sorted(expected)
    different = [k for k in expected if got[k] != expected[k]]
    assert different == []


def test_a_second_run_in_parallel_mode_does_nothing(lakes: dict[str, Path], mirror: Path) -> None:
    again = _cli("pipeline", "run", "--data-type", "stocks_daily", "--start-date", START, "--end-date", END,
                 "--source", mirror, "--data-root", lakes["parallel"], *MODES["parallel"])  # fmt: skip
    assert "Nothing to do" in again.stdout
