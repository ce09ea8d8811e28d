"""A run whose memory passes ``pipeline.memory_budget_gb`` lowers its concurrency, then its chunk budget,
records each lowering, and still builds the lake a normal run builds.

Memory readings come from an injected sampler (a constant), so which lowering happens where is decided by
the number of tasks, never by timing. The expected schedule is worked by hand from the policy: halve the
tasks at a time (the chunk budget follows, so each task keeps its chunk size) once the tasks in flight at
the previous lowering have finished; at one task at a time halve the chunk budget, down to an eighth.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import polars as pl
import pytest

from quantmini.config.settings import Settings
from quantmini.datasets import get_spec
from quantmini.io.lake import Lake
from quantmini.io.source import LocalMirrorSource
from quantmini.pipeline.monitor import RssSampler, RunMonitor
from quantmini.pipeline.run_record import RunRecorder
from quantmini.pipeline.runner import PipelineReport, PipelineRunner
from quantmini.sample import generate_sample

START, END = dt.date(2025, 9, 2), dt.date(2025, 9, 30)
SPEC = get_spec("stocks_daily")
BUDGET_GB = 4.0
#: data_budget(4.0): 4 GB less the 0.6 GB process reserve.
CHUNK_BUDGET = 3_400_000_000


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("memory") / "mirror"
    generate_sample(out, START, END, tickers=12, seed=5, data_types=("stocks_daily",))
    return out


def _run(root: Path, mirror: Path, monitor: RunMonitor) -> PipelineReport:
    runner = PipelineRunner(
        Lake(root),
        SPEC,
        mode="batch",
        batch_sessions=4,
        memory_budget_gb=BUDGET_GB,
        exclusive=True,
        monitor=monitor,
    )
    return runner.run(LocalMirrorSource(mirror), START, END)


def _constant(rss: int) -> RssSampler:
    return lambda: rss


def _contents(root: Path) -> dict[str, object]:
    """The lake's data: Parquet files by their rows, Qlib files by their bytes (manifests hold times)."""
    contents: dict[str, object] = {}
    for path in sorted(root.rglob("*")):
        name = path.relative_to(root).as_posix()
        if not path.is_file() or name.startswith(("_manifests/", "_runs/")) or name.endswith(".duckdb"):
            continue
        if name.endswith(".parquet"):
            contents[name] = pl.read_parquet(path).drop("fetched_at", strict=False).to_dicts()
        else:
            contents[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return contents


def test_memory_over_the_budget_lowers_concurrency_and_the_lake_is_the_same(
    mirror: Path, tmp_path: Path
) -> None:
    normal = _run(tmp_path / "normal", mirror, RunMonitor(_constant(100_000_000)))
    assert normal.lowerings == []
    assert not normal.failures

    over = _constant(10**10)
    recorder = RunRecorder(tmp_path / "tight", "quantmini pipeline run", Settings(), sampler=over)
    with recorder:
        recorder.begin()
        tight = _run(tmp_path / "tight", mirror, recorder.monitor)
        recorder.add(tight)
    assert not tight.failures
    assert len(tight.ingest) > 7  # enough bronze tasks for every lowering below

    schedule = [
        (m.stage, m.concurrency_from, m.concurrency_to, m.chunk_budget_from, m.chunk_budget_to)
        for m in tight.lowerings
    ]
    assert schedule == [
        ("landing", 4, 2, CHUNK_BUDGET, CHUNK_BUDGET // 2),  # on entering the first stage
        ("bronze", 2, 1, CHUNK_BUDGET // 2, CHUNK_BUDGET // 4),  # once the 4 tasks in flight finished
        ("bronze", 1, 1, CHUNK_BUDGET // 4, CHUNK_BUDGET // 8),  # once the 2 in flight finished; the floor
    ]
    assert all(m.rss_bytes == 10**10 and m.budget_bytes == 4 * 10**9 for m in tight.lowerings)
    notes = [n for n in tight.notes if n.startswith("memory: ")]
    assert notes[0] == (
        "memory: landing used 10.00 GB, over the budget of 4.00 GB (pipeline.memory_budget_gb); lowered "
        "tasks at a time 4 → 2, chunk budget 3.40 → 1.70 GB for the rest of the run"
    )
    assert len(notes) == 3

    record = json.loads(recorder.path.read_text())
    assert [
        (m["stage"], m["concurrency_from"], m["concurrency_to"], m["chunk_budget_to"])
        for m in record["memory_lowerings"]
    ] == [(s[0], s[1], s[2], s[4]) for s in schedule]
    assert {s["peak_rss_bytes"] for s in record["stages"]} == {10**10}
    assert [s["name"] for s in record["stages"]] == ["landing", "bronze", "factors", "silver", "gold"]

    assert _contents(tmp_path / "tight") == _contents(tmp_path / "normal")
