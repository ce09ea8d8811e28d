"""Run records, the stage monitor, the rolling performance file and the lock wait they record, on virtual
time and fake memory readings."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from quantmini._exceptions import ConfigurationError, StorageError
from quantmini.cli.common import lake_writer
from quantmini.config.redaction import register_secret, reset_secrets
from quantmini.config.settings import MonitoringSettings, Settings
from quantmini.io.lock import LakeLock
from quantmini.io.process_stats import cpu_seconds, process_tree_rss
from quantmini.pipeline.monitor import RunMonitor
from quantmini.pipeline.run_record import (
    PERFORMANCE_FILE,
    RunRecorder,
    find_run,
    list_runs,
    new_run_id,
    update_performance_metrics,
)
from quantmini.pipeline.runner import PipelineReport
from tests.support.clock import WALL_START, VirtualClock

SETTINGS = Settings()
PROFILING = Settings(monitoring=MonitoringSettings(profiling=True, performance_runs=3))


def read(recorder: RunRecorder) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(recorder.path.read_text())
    return record


def test_run_ids_sort_by_start_and_differ_within_a_second() -> None:
    first, second = new_run_id(WALL_START), new_run_id(WALL_START)
    assert first.startswith("20240102T150000.000000Z-")
    assert len(first) == 30
    assert first != second
    assert new_run_id(WALL_START + 1) > max(first, second)
    assert new_run_id(WALL_START + 0.001) > max(first, second)  # within one second too, whatever the suffix


def test_a_run_is_recorded_when_it_begins_and_completed_when_it_ends(tmp_path: Path) -> None:
    clock = VirtualClock()
    recorder = RunRecorder(tmp_path, "quantmini data ingest --data-type stocks_daily", SETTINGS, clock=clock)
    with recorder:
        recorder.begin()
        assert read(recorder)["status"] == "running"
        with recorder.monitor.measure("bronze", "stocks_daily") as stage:
            stage.rows_in, stage.rows_out = 12, 10
        clock.advance(42.5)
        recorder.add(PipelineReport("stocks_daily"))
    record = read(recorder)
    assert record["status"] == "ok"
    assert record["failures"] == []
    assert record["run_id"] == recorder.run_id == recorder.path.stem
    assert record["started"] == "2024-01-02T15:00:00.000000Z"
    assert record["ended"] == "2024-01-02T15:00:42.500000Z"
    assert record["wall_s"] == 42.5
    assert record["command"] == "quantmini data ingest --data-type stocks_daily"
    assert set(record["versions"]) == {"quantmini", "python", "polars", "duckdb", "pyarrow"}
    (stage_record,) = record["stages"]
    assert (stage_record["name"], stage_record["rows_in"], stage_record["rows_out"]) == ("bronze", 12, 10)
    assert stage_record["status"] == "ok"
    assert record["lock"] == {"waited_s": 0.0, "holder": None}
    assert [r["data_type"] for r in record["reports"]] == ["stocks_daily"]


def test_a_command_that_never_held_the_lock_leaves_no_record(tmp_path: Path) -> None:
    with pytest.raises(StorageError), RunRecorder(tmp_path, "quantmini demo", SETTINGS):
        raise StorageError("the lake is locked")
    assert not (tmp_path / "_runs").exists()


def _ended_by(tmp_path: Path, error: BaseException | None, failures: list[str]) -> dict[str, Any]:
    recorder = RunRecorder(tmp_path, "quantmini pipeline run", SETTINGS, clock=VirtualClock())
    expected = pytest.raises(type(error)) if error is not None else contextlib.nullcontext()
    with expected, recorder:
        recorder.begin()
        recorder.add(PipelineReport("stocks_daily", failures=failures))
        if error is not None:
            raise error
    return read(recorder)


@pytest.fixture
def _no_secrets() -> Iterator[None]:
    reset_secrets()
    yield
    reset_secrets()


def test_failures_exits_errors_and_ctrl_c_set_the_status(tmp_path: Path) -> None:
    failed = _ended_by(tmp_path / "a", SystemExit(1), ["bronze 2025-01-02: wrong header"])
    assert (failed["status"], failed["failures"]) == ("failed", ["bronze 2025-01-02: wrong header"])
    error = _ended_by(tmp_path / "b", ConfigurationError("bad option"), [])
    assert (error["status"], error["failures"]) == ("failed", ["bad option"])
    bug = _ended_by(tmp_path / "c", ValueError("oops"), [])
    assert (bug["status"], bug["failures"]) == ("failed", ["unexpected ValueError: oops"])
    interrupted = _ended_by(tmp_path / "d", KeyboardInterrupt(), [])
    assert interrupted["status"] == "interrupted"
    clean_exit = _ended_by(tmp_path / "e", SystemExit(0), [])
    assert clean_exit["status"] == "ok"


@pytest.mark.usefixtures("_no_secrets")
def test_the_command_and_failures_are_redacted(tmp_path: Path) -> None:
    register_secret("s3cr3t-key-value")
    recorder = RunRecorder(tmp_path, "quantmini x --token s3cr3t-key-value", SETTINGS)
    with pytest.raises(ConfigurationError), recorder:
        _fail_after_beginning(recorder)
    text = recorder.path.read_text()
    assert "s3cr3t" not in text
    assert read(recorder)["command"] == "quantmini x --token ***"


def _fail_after_beginning(recorder: RunRecorder) -> None:
    recorder.begin()
    raise ConfigurationError("rejected key s3cr3t-key-value")


def test_the_monitor_keeps_the_peak_of_its_samples_and_failed_stages() -> None:
    readings = iter([100, 700, 300, 50, 900, 200])
    monitor = RunMonitor(lambda: next(readings, 0), interval_s=3600.0)  # the thread never samples
    with monitor.measure("landing", "stocks_daily"):  # entry: 100
        monitor.sample()  # 700
        monitor.sample()  # 300
    # exit: 50
    with pytest.raises(RuntimeError), monitor.measure("bronze", "stocks_daily"):  # entry: 900
        raise RuntimeError("boom")
    # exit: 200
    assert [(s.name, s.peak_rss_bytes, s.status) for s in monitor.stages] == [
        ("landing", 700, "ok"),
        ("bronze", 900, "failed"),
    ]
    assert all(s.wall_s >= 0 and s.cpu_s >= 0 for s in monitor.stages)


def test_a_profiled_stage_writes_its_profile_and_top_functions(tmp_path: Path) -> None:
    monitor = RunMonitor(lambda: 1, profile_dir=tmp_path / "run")
    for _ in range(2):
        with monitor.measure("silver 1/2", "stocks_daily"):
            sorted(range(1000), key=lambda n: -n)
    names = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert names == [
        "stocks_daily.silver_1_2-2.prof",
        "stocks_daily.silver_1_2-2.txt",
        "stocks_daily.silver_1_2.prof",
        "stocks_daily.silver_1_2.txt",
    ]
    assert "cumulative" in (tmp_path / "run" / "stocks_daily.silver_1_2.txt").read_text()
    assert monitor.stages[0].profile == str(tmp_path / "run" / "stocks_daily.silver_1_2.prof")


def test_profiling_keeps_the_last_runs_figures(tmp_path: Path) -> None:
    clock = VirtualClock()
    ids = []
    for _ in range(4):
        recorder = RunRecorder(tmp_path, "quantmini data enrich", PROFILING, clock=clock, sampler=lambda: 5)
        with recorder:
            recorder.begin()
            with recorder.monitor.measure("silver", "stocks_daily") as stage:
                stage.rows_out = 7
        ids.append(recorder.run_id)
        clock.advance(60)
    runs = json.loads((tmp_path / PERFORMANCE_FILE).read_text())["runs"]
    assert [r["run_id"] for r in runs] == ids[1:]  # performance_runs = 3
    assert runs[-1]["stages"] == [
        {
            "data_type": "stocks_daily",
            "name": "silver",
            "wall_s": runs[-1]["stages"][0]["wall_s"],
            "cpu_s": runs[-1]["stages"][0]["cpu_s"],
            "children_cpu_s": runs[-1]["stages"][0]["children_cpu_s"],
            "peak_rss_bytes": 5,
            "rows_in": None,
            "rows_out": 7,
            "status": "ok",
        }
    ]
    assert (tmp_path / "_runs" / ids[-1] / "stocks_daily.silver.prof").is_file()


def test_an_unreadable_performance_file_starts_afresh(tmp_path: Path) -> None:
    path = tmp_path / PERFORMANCE_FILE
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    record = {"run_id": "r1", "started": "s", "command": "c", "status": "ok", "stages": []}
    update_performance_metrics(tmp_path, record, keep=5)
    assert json.loads(path.read_text()) == {
        "runs": [{"run_id": "r1", "started": "s", "command": "c", "status": "ok", "stages": []}]
    }


def test_runs_are_found_by_id_prefix_or_latest(tmp_path: Path) -> None:
    runs = tmp_path / "_runs"
    runs.mkdir()
    for run_id in ("20260101T000000Z-aaaaaa", "20260102T000000Z-bbbbbb", "20260102T000000Z-bccccc"):
        (runs / f"{run_id}.json").write_text(json.dumps({"run_id": run_id}))
    (runs / "20260103T000000Z-broken.json").write_text("{")
    assert [r["run_id"] for r in list_runs(tmp_path)] == [
        "20260102T000000Z-bccccc",
        "20260102T000000Z-bbbbbb",
        "20260101T000000Z-aaaaaa",
    ]
    assert find_run(tmp_path, "latest")["run_id"] == "20260102T000000Z-bccccc"
    assert find_run(tmp_path, "20260101")["run_id"] == "20260101T000000Z-aaaaaa"
    assert find_run(tmp_path, "20260102T000000Z-bb")["run_id"] == "20260102T000000Z-bbbbbb"
    with pytest.raises(ConfigurationError, match="matches 2 runs"):
        find_run(tmp_path, "20260102")
    with pytest.raises(ConfigurationError, match="no run '2027'"):
        find_run(tmp_path, "2027")
    with pytest.raises(ConfigurationError, match="no run records"):
        find_run(tmp_path / "empty", "latest")


class _SignallingClock(VirtualClock):
    """Tells the test when the waiting writer first reads the time (it is then about to block)."""

    def __init__(self) -> None:
        super().__init__()
        self.read = threading.Event()

    def monotonic(self) -> float:
        self.read.set()
        return super().monotonic()


def test_the_wait_for_the_lock_is_recorded_with_its_holder(tmp_path: Path) -> None:
    clock = _SignallingClock()
    recorder = RunRecorder(tmp_path, "quantmini pipeline run", SETTINGS, clock=clock)
    holder = LakeLock(tmp_path, "quantmini demo")
    holder.acquire()

    def second_writer() -> None:
        with recorder, lake_writer(tmp_path, wait=True, recorder=recorder):
            pass

    thread = threading.Thread(target=second_writer)
    thread.start()
    try:
        assert clock.read.wait(timeout=60)
        clock.advance(12.3)  # the holder works for 12.3 virtual seconds
    finally:
        holder.release()
        thread.join(timeout=60)
    record = read(recorder)
    assert record["status"] == "ok"
    assert record["lock"]["waited_s"] == 12.3
    assert record["lock"]["holder"].startswith(f"pid {os.getpid()} on host {socket.gethostname()} since ")
    assert record["lock"]["holder"].endswith(" (quantmini demo)")


#: A child holding 80 MB that uses 0.3 s of CPU, then waits for a line on stdin.
CHILD = """
import time
b = bytearray(80_000_000)
while time.process_time() < 0.3:
    pass
print('ready', flush=True)
input()
"""


def test_the_real_sampler_and_cpu_times_count_live_and_ended_children() -> None:
    own = process_tree_rss()
    assert own > 10_000_000  # an interpreter with the data stack loaded
    before = cpu_seconds()[1]
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
        assert process_tree_rss() >= own + 60_000_000
        live = cpu_seconds()[1] - before
    finally:
        child.communicate("\n", timeout=60)
    ended = cpu_seconds()[1] - before
    assert live >= 0.25  # the live child's own counters
    assert ended >= live  # the same seconds, now from getrusage(RUSAGE_CHILDREN), counted once
    assert ended < live + 1.0
