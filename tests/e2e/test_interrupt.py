"""Ctrl-C always stops a run — the parent and (in parallel mode) its workers get SIGINT, as from a terminal —
with exit code 130 and one line, and a re-run finishes the lake exactly as an uninterrupted run builds it."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from quantmini.sample import generate_sample

START, END = dt.date(2025, 1, 2), dt.date(2025, 6, 30)
TIMEOUT = 180

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("interrupt") / "mirror"
    generate_sample(out, START, END, tickers=60, seed=4, data_types=("stocks_daily",))
    return out


def _args(mirror: Path, root: Path, mode: str) -> list[str]:
    return [sys.executable, "-m", "quantmini", "pipeline", "run", "--data-type", "stocks_daily",
            "--start-date", str(START), "--end-date", str(END), "--source", str(mirror),
            "--data-root", str(root), "--mode", mode, "--workers", "2"]  # fmt: skip


def _contents(root: Path) -> dict[str, object]:
    out: dict[str, object] = {}
    for path in sorted((root / "bronze" / "stocks_daily").rglob("*.parquet")):
        out[path.relative_to(root).as_posix()] = pl.read_parquet(path).to_dicts()
    for path in sorted((root / "gold" / "qlib").rglob("*")):
        if path.is_file():
            out[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _written(manifests: Path) -> list[Path]:
    """Complete bronze manifests (a manifest being written is a hidden temporary until renamed)."""
    return sorted(manifests.glob("[0-9]*.json")) if manifests.is_dir() else []


def _wait_for(condition: object, process: subprocess.Popen[bytes]) -> None:
    assert callable(condition)
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert process.poll() is None, "the run ended before it could be interrupted"
        assert time.monotonic() < deadline, "the run never started writing bronze"
        time.sleep(0.02)


@pytest.mark.parametrize("mode", ["streaming", "parallel"])
def test_ctrl_c_stops_the_run_and_a_rerun_completes_it(mirror: Path, tmp_path: Path, mode: str) -> None:
    root = tmp_path / "lake"
    manifests = root / "_manifests" / "bronze" / "stocks_daily"
    process = subprocess.Popen(
        _args(mirror, root, mode), stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        _wait_for(lambda: bool(_written(manifests)), process)
        # Freeze the run where it is (however loaded the machine, it cannot finish in the meantime), then
        # Ctrl-C — what a terminal does: the whole process group — delivered as it resumes.
        os.killpg(process.pid, signal.SIGSTOP)
        os.killpg(process.pid, signal.SIGINT)
        os.killpg(process.pid, signal.SIGCONT)
        _, stderr = process.communicate(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, stderr.decode()[-2000:]
    assert "interrupted: partial outputs were discarded; re-run to resume" in stderr.decode()
    assert "Traceback" not in stderr.decode()
    done = len(_written(manifests))
    assert 0 < done <= 123  # some bronze was written before the interrupt stopped the run (exit 130)

    again = subprocess.run(_args(mirror, root, mode), capture_output=True, timeout=TIMEOUT, check=False)
    assert again.returncode == 0, again.stderr.decode()[-2000:]
    # Both runs are recorded: the first as interrupted (its stages up to the interrupt), the second as ok.
    records = [json.loads(p.read_text()) for p in sorted((root / "_runs").glob("*.json"))]
    assert [r["status"] for r in records] == ["interrupted", "ok"]
    assert [s["name"] for s in records[0]["stages"]][:2] == ["landing", "bronze"]
    whole = tmp_path / "whole"
    single = subprocess.run(
        _args(mirror, whole, "streaming"), capture_output=True, timeout=TIMEOUT, check=False
    )
    assert single.returncode == 0
    assert _contents(root) == _contents(whole)
