"""The lake's single-writer lock on a real file system: refusal, waiting, take-over after a kill -9."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from quantmini import LakeLockedError, StorageError
from quantmini.io.lock import LOCK_FILE, LakeLock, LockHolder, read_holder

COMMAND = "quantmini pipeline run --data-type stocks_daily"


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_the_holder_is_recorded_and_a_second_writer_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    with LakeLock(root, COMMAND).hold() as lock:
        assert lock.taken_over is None
        written = json.loads((root / LOCK_FILE).read_text())
        assert written["pid"] == os.getpid()
        assert written["host"] == socket.gethostname()
        assert written["command"] == COMMAND
        assert written["started"].endswith("Z")
        # flock conflicts between two opens of the file, even inside one process.
        with pytest.raises(LakeLockedError) as refused:
            LakeLock(root, "another").acquire()
    assert str(refused.value) == (
        f"the lake {root} is locked by pid {os.getpid()} on host {socket.gethostname()} "
        f"since {written['started']} ({COMMAND}); wait with --wait or try later"
    )
    assert isinstance(refused.value, StorageError)
    assert refused.value.root == root
    # A clean release leaves an empty file: the next holder has nothing to take over.
    assert (root / LOCK_FILE).read_text() == ""
    assert read_holder(root) is None
    with LakeLock(root, "next").hold() as again:
        assert again.taken_over is None


def test_a_record_without_a_held_lock_is_taken_over(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    root.mkdir()
    pid = dead_pid()
    left = {"pid": pid, "host": socket.gethostname(), "started": "2026-01-05T09:30:00Z", "command": COMMAND}
    (root / LOCK_FILE).write_text(json.dumps(left))
    with LakeLock(root, "new").hold() as lock:
        assert lock.taken_over == LockHolder(pid, socket.gethostname(), "2026-01-05T09:30:00Z", COMMAND)
        assert lock.taken_over.is_gone()
        assert json.loads((root / LOCK_FILE).read_text())["pid"] == os.getpid()


_HOLD = """
import sys
from pathlib import Path
from quantmini.io.lock import LakeLock

LakeLock(Path(sys.argv[1]), "killed writer").acquire()
print("held", flush=True)
sys.stdin.read()  # hold until killed
"""


def test_a_lock_held_by_a_killed_process_is_released_by_the_kernel(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(root)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "held\n"
        with pytest.raises(LakeLockedError, match=f"locked by pid {child.pid} on host"):
            LakeLock(root, "refused").acquire()
        child.kill()
        child.wait(timeout=30)
    finally:
        child.kill()
        child.wait(timeout=30)
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                stream.close()
    with LakeLock(root, "survivor").hold() as lock:
        assert lock.taken_over is not None
        assert (lock.taken_over.pid, lock.taken_over.command) == (child.pid, "killed writer")
        assert lock.taken_over.is_gone()


def test_wait_blocks_until_the_holder_releases(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    holder = LakeLock(root, "first")
    holder.acquire()
    waiting = threading.Event()
    seen: list[LockHolder | None] = []
    acquired: list[int] = []

    def second() -> None:
        def on_wait(who: LockHolder | None) -> None:
            seen.append(who)
            waiting.set()

        with LakeLock(root, "second").hold(wait=True, on_wait=on_wait):
            acquired.append(json.loads((root / LOCK_FILE).read_text())["pid"])

    thread = threading.Thread(target=second)
    thread.start()
    try:
        assert waiting.wait(timeout=60)
        assert acquired == []  # still blocked: the first holder has not released
        assert seen[0] is not None
        assert seen[0].command == "first"
    finally:
        holder.release()
        thread.join(timeout=60)
    assert acquired == [os.getpid()]
    assert len(seen) == 1


def test_a_lake_under_a_regular_file_is_a_storage_error_naming_the_path(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    root = tmp_path / "file" / "lake"
    with pytest.raises(StorageError) as failed:
        LakeLock(root).acquire()
    assert str(failed.value) == f"cannot write to the lake at {root}: Not a directory"


def test_a_holder_without_a_record_is_still_refused(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    root.mkdir()
    fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another tool holding the lock without writing who it is
        with pytest.raises(LakeLockedError) as refused:
            LakeLock(root).acquire()
    finally:
        os.close(fd)
    assert refused.value.holder is None
    assert "locked by another process (it left no record of itself)" in str(refused.value)
