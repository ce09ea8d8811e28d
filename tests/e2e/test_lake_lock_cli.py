"""One writer per lake, as a user meets it: concurrent runs, ``--wait``, a dead holder's lock, readers
that never block, and unwritable roots reported in one line."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner, Result

from quantmini.cli.main import cli
from quantmini.datasets import get_spec
from quantmini.io.lock import LOCK_FILE, LakeLock
from quantmini.sample import generate_sample
from tests.support.cli_child import Child
from tests.support.lake_files import files_of, lake_contents

SPEC = get_spec("stocks_daily")
START, END = dt.date(2025, 9, 2), dt.date(2025, 9, 19)
HOST = socket.gethostname()
AS_ROOT = os.geteuid() == 0
ROOT_IGNORES_MODES = "runs as root, which ignores permission bits: chmod cannot make a path read-only"


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=True)


def range_args(mirror: Path, root: Path) -> list[str]:
    return [
        "--start-date",
        str(START),
        "--end-date",
        str(END),
        "--source",
        str(mirror),
        "--data-root",
        str(root),
    ]


def held_since(root: Path) -> str:
    return str(json.loads((root / LOCK_FILE).read_text())["started"])


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lock") / "mirror"
    generate_sample(out, START, END, tickers=10, seed=3, data_types=("stocks_daily",))
    return out


@pytest.fixture(scope="module")
def single_run(mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The lake one uncontended ``pipeline run`` builds: what concurrent runs must end with."""
    root = tmp_path_factory.mktemp("single") / "lake"
    result = run("pipeline", "run", *range_args(mirror, root))
    assert result.exit_code == 0, result.output
    return root


@pytest.mark.slow
def test_runs_waiting_for_the_lock_end_with_the_lake_of_a_single_run(
    mirror: Path, single_run: Path, tmp_path: Path
) -> None:
    root = tmp_path / "lake"
    children: list[Child] = []
    try:
        with LakeLock(root, "test holder").hold():
            since = held_since(root)
            children = [Child("pipeline", "run", *range_args(mirror, root), "--wait") for _ in range(2)]
            for child in children:
                assert child.next_stderr_line() == (
                    f"waiting for pid {os.getpid()} on host {HOST} since {since} (test holder) "
                    f"to finish writing the lake {root} …"
                )
            assert files_of(root) == {LOCK_FILE}  # both wait; neither has written anything
        done = [child.finish() for child in children]
    finally:
        for child in children:
            child.kill()
    assert [d.code for d in done] == [0, 0], [d.stderr for d in done]
    # Whoever got the lock second found the work done by the first.
    assert sorted("Nothing to do" in d.stdout for d in done) == [False, True]
    assert lake_contents(root) == lake_contents(single_run)
    assert (root / LOCK_FILE).read_text() == ""


@pytest.mark.slow
def test_concurrent_runs_one_refuses_in_one_line_or_they_do_not_overlap(
    mirror: Path, single_run: Path, tmp_path: Path
) -> None:
    root = tmp_path / "lake"
    children = [Child("pipeline", "run", *range_args(mirror, root)) for _ in range(2)]
    try:
        done = [child.finish() for child in children]
    finally:
        for child in children:
            child.kill()
    assert any(d.code == 0 for d in done), [d.stderr for d in done]
    for mine, other in ((done[0], done[1]), (done[1], done[0])):
        if mine.code == 0:
            continue
        assert mine.code == 1
        assert mine.stdout == ""
        assert re.fullmatch(
            rf"error: the lake {re.escape(str(root))} is locked by pid {other.pid} on host {re.escape(HOST)} "
            r"since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(quantmini pipeline run --start-date .*\); "
            r"wait with --wait or try later\n",
            mine.stderr,
        ), mine.stderr
    assert lake_contents(root) == lake_contents(single_run)


def writer_commands(mirror: Path, root: Path) -> dict[str, list[str]]:
    """Every command that writes the lake at ``root`` (``demo`` writes ``<its data root>/lake``)."""
    lake = ["--data-root", str(root)]
    return {
        "pipeline run": ["pipeline", "run", *range_args(mirror, root)],
        "data download": ["data", "download", *range_args(mirror, root)],
        "data ingest": ["data", "ingest", *range_args(mirror, root)],
        "data enrich": ["data", "enrich", *lake],
        "data convert": ["data", "convert", *lake],
        "demo": ["demo", "--data-root", str(root.parent), "--tickers", "8"],
        "polygon tickers": ["polygon", "tickers", *lake],
        "polygon corporate-actions": ["polygon", "corporate-actions", *lake],
        "polygon bars": ["polygon", "bars", "--ticker", "AAPL", "--from", "2025-09-02", *lake],
    }


WRITERS = list(writer_commands(Path("m"), Path("r")))


@pytest.mark.parametrize("command", WRITERS)
def test_a_writer_refuses_in_one_line_while_the_lake_is_locked(
    command: str, mirror: Path, tmp_path: Path
) -> None:
    root = tmp_path / "lake"
    with LakeLock(root, "quantmini pipeline run --data-type stocks_daily").hold():
        result = run(*writer_commands(mirror, root)[command])
        since = held_since(root)
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr == (
        f"error: the lake {root} is locked by pid {os.getpid()} on host {HOST} since {since} "
        "(quantmini pipeline run --data-type stocks_daily); wait with --wait or try later\n"
    )
    assert files_of(tmp_path) == {f"lake/{LOCK_FILE}"}  # nothing written (demo: no sample either)


def test_readers_run_while_a_writer_holds_the_lock(single_run: Path, mirror: Path, tmp_path: Path) -> None:
    root = tmp_path / "lake"
    shutil.copytree(single_run, root)
    ticker = pl.read_parquet(root / "bronze" / "stocks_daily").get_column("ticker").min()
    window = ["--start-date", str(START), "--end-date", str(END)]
    readers = {
        "data query": ["data", "query", "--data-root", root, "--symbols", ticker, *window],
        "data catalog": ["data", "catalog", "--source", mirror, "--data-root", root, *window],
        "validate bronze": ["validate", "bronze", "--data-type", "stocks_daily", "--data-root", root],
        "validate silver": ["validate", "silver", "--data-root", root],
        "validate gold": ["validate", "gold", "--data-root", root],
        "schema check": ["schema", "check", "--data-root", root],
        "config show": ["config", "show"],
    }
    with LakeLock(root, "writer").hold():
        for name, args in readers.items():
            result = run(*args)
            assert result.exit_code == 0, f"{name}: {result.output}"
            assert "locked" not in result.output, name
        assert json.loads((root / LOCK_FILE).read_text())["pid"] == os.getpid()  # still ours


def test_a_lock_left_by_a_dead_process_is_taken_over(mirror: Path, tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    root = tmp_path / "lake"
    root.mkdir()
    left = {"pid": gone.pid, "host": HOST, "started": "2026-01-05T09:30:00Z", "command": "quantmini demo"}
    (root / LOCK_FILE).write_text(json.dumps(left))
    result = run("data", "download", *range_args(mirror, root))
    assert result.exit_code == 0, result.output
    assert (
        f"note: took over the lock of the lake {root} left by pid {gone.pid} on host {HOST} since "
        "2026-01-05T09:30:00Z (quantmini demo), which ended without releasing it"
    ) in result.stderr
    assert (root / LOCK_FILE).read_text() == ""
    assert (root / "landing" / SPEC.source_key(START)).is_file()


@pytest.mark.parametrize("command", WRITERS)
def test_a_root_under_a_regular_file_is_one_line(command: str, mirror: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("a file, not a directory")
    root = tmp_path / "file" / "sub" / "lake"  # demo's own root is then file/sub
    result = run(*writer_commands(mirror, root)[command])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert result.stderr == f"error: cannot write to the lake at {root}: Not a directory\n"


@pytest.mark.skipif(AS_ROOT, reason=ROOT_IGNORES_MODES)
def test_an_empty_read_only_root_is_one_line(mirror: Path, tmp_path: Path) -> None:
    root = tmp_path / "ro"
    root.mkdir(mode=0o555)
    try:
        result = run("pipeline", "run", *range_args(mirror, root))
    finally:
        root.chmod(0o755)
    assert result.exit_code == 1, result.output
    assert result.stderr == f"error: cannot write to the lake at {root}: Permission denied\n"


@pytest.mark.slow
def test_an_empty_root_under_a_file_is_one_line_from_a_real_process(mirror: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    root = tmp_path / "file" / "lake"
    done = Child("pipeline", "run", *range_args(mirror, root)).finish()
    assert (done.code, done.stdout) == (1, "")
    assert done.stderr == f"error: cannot write to the lake at {root}: Not a directory\n"


def _directory_in_the_way(partial: Path, lake: Path) -> None:
    partial.mkdir()


def _read_only_landing_month(partial: Path, lake: Path) -> None:
    partial.parent.chmod(0o555)


@pytest.mark.parametrize(
    ("obstacle", "reason"),
    [
        pytest.param(_directory_in_the_way, "Is a directory", id="directory-at-the-partial-path"),
        pytest.param(
            _read_only_landing_month,
            "Permission denied",
            id="read-only-landing-directory",
            marks=pytest.mark.skipif(AS_ROOT, reason=ROOT_IGNORES_MODES),
        ),
    ],
)
def test_a_republished_file_that_cannot_be_landed_names_the_lake_path(
    obstacle: object, reason: str, single_run: Path, mirror: Path, tmp_path: Path
) -> None:
    lake, source = tmp_path / "lake", tmp_path / "mirror"
    shutil.copytree(single_run, lake)
    shutil.copytree(mirror, source)  # copy2 keeps mtimes: the lake's manifests still match
    key = SPEC.source_key(START)
    republished = source / "flatfiles" / key
    os.utime(republished, ns=(republished.stat().st_atime_ns, republished.stat().st_mtime_ns + 10**9))
    landed = lake / "landing" / key
    partial = landed.with_name(f".{landed.name}.partial")
    before = landed.read_bytes()
    assert callable(obstacle)
    obstacle(partial, lake)
    try:
        result = run("pipeline", "run", *range_args(source, lake))
    finally:
        partial.parent.chmod(0o755)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    failed = [line for line in result.stderr.splitlines() if line.startswith("failed:")]
    assert failed == [f"failed: landing {START}: cannot write {partial}: {reason}"]
    assert "mirror" not in result.stderr
    assert landed.read_bytes() == before
