"""The lake's single-writer lock: an exclusive ``flock`` on ``<data_root>/.quantmini.lock``.

Only one process writes a lake at a time; readers (queries, catalogs, validation) never take the lock
and never wait. The kernel releases a ``flock`` when its holder dies, however it dies, so a lock left by
a killed process needs no clean-up: the next writer simply gets it. The file also records who holds the
lock (pid, host, start time, command) so a refused writer can say whom it is waiting for; a holder
that released cleanly leaves the file empty, so a record found by a new holder names a process that
died holding the lock (reported as :attr:`LakeLock.taken_over`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import logging
import os
import shlex
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from quantmini._exceptions import LakeLockedError, StorageError

log = logging.getLogger(__name__)

#: Name of the lock file in the lake root.
LOCK_FILE = ".quantmini.lock"

#: How long a refused writer looks for the record of a holder that has only just taken the lock.
_RECORD_GRACE_S = 0.5


@dataclass(frozen=True, slots=True)
class LockHolder:
    """Who holds (or held) the lock of a lake."""

    pid: int
    host: str
    started: str
    command: str

    def describe(self) -> str:
        """``pid 123 on host h since 2026-12-01T10:00:00Z (quantmini pipeline run ...)``."""
        return f"pid {self.pid} on host {self.host} since {self.started} ({self.command})"

    def is_gone(self) -> bool:
        """True when this holder ran on this host and its process no longer exists."""
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except OSError:
            return False
        return False


def lock_path(root: Path) -> Path:
    """The lock file of the lake at ``root``."""
    return root / LOCK_FILE


def read_holder(root: Path) -> LockHolder | None:
    """The holder recorded in the lake's lock file; ``None`` when it is absent, empty or unreadable."""
    try:
        text = lock_path(root).read_text(encoding="utf-8")
    except OSError:
        return None
    return _parse(text)


def _parse(text: str) -> LockHolder | None:
    try:
        data = json.loads(text)
        return LockHolder(int(data["pid"]), str(data["host"]), str(data["started"]), str(data["command"]))
    except (ValueError, TypeError, KeyError):
        return None


def _default_command() -> str:
    return shlex.join(["quantmini", *sys.argv[1:]])


class LakeLock:
    """The single-writer lock of the lake at ``root``; use :meth:`hold` around every write to the lake.

    ``command`` is recorded for other writers to read (default: this process's arguments).
    """

    def __init__(self, root: Path, command: str | None = None) -> None:
        self.root = root
        self.command = command if command is not None else _default_command()
        #: The holder a killed process left in the lock file, when this lock took it over.
        self.taken_over: LockHolder | None = None
        self._fd: int | None = None

    @property
    def path(self) -> Path:
        """The lock file."""
        return lock_path(self.root)

    def acquire(
        self, *, wait: bool = False, on_wait: Callable[[LockHolder | None], None] | None = None
    ) -> None:
        """Take the lock; when another process holds it raise :class:`LakeLockedError`, or with ``wait``
        call ``on_wait(holder)`` once and block until it is released.

        :class:`StorageError` (naming the lake and the OS reason) when the lake cannot be written at all.
        """
        if self._fd is not None:
            raise RuntimeError(f"the lock of {self.root} is already held by this object")
        fd = self._open()
        try:
            taken, holder = self._try_take(fd)
            if not taken:
                if not wait:
                    raise LakeLockedError(self.root, None if holder is None else holder.describe())
                if on_wait is not None:
                    on_wait(holder)
                fcntl.flock(fd, fcntl.LOCK_EX)
            self.taken_over = _parse(_read_fd(fd))
            if self.taken_over is not None:
                state = "no longer exists" if self.taken_over.is_gone() else "no longer holds it"
                log.info(
                    "took over the lock of %s left by %s: that process %s",
                    self.root,
                    self.taken_over.describe(),
                    state,
                )
            _write_fd(fd, self._record())
        except OSError as exc:
            os.close(fd)
            raise _cannot_write(self.root, exc) from exc
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        """Release the lock (a no-op when it is not held)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            # Empty means "released cleanly". The file itself stays: unlinking it would let a process that
            # opened the old file and one that creates a new file both believe they hold the lock.
            os.ftruncate(fd, 0)
        except OSError as exc:
            log.warning("cannot clear the lock file %s: %s", self.path, exc.strerror or exc)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    @contextlib.contextmanager
    def hold(
        self, *, wait: bool = False, on_wait: Callable[[LockHolder | None], None] | None = None
    ) -> Iterator[LakeLock]:
        """Hold the lock for the ``with`` body (see :meth:`acquire`)."""
        self.acquire(wait=wait, on_wait=on_wait)
        try:
            yield self
        finally:
            self.release()

    def _try_take(self, fd: int) -> tuple[bool, LockHolder | None]:
        """Take the lock if it is free, else name its holder.

        Between taking the lock and writing its record a holder leaves the file empty for a moment, and a
        holder that has just released it leaves it empty too: while the record is missing, look again.
        """
        deadline = time.monotonic() + _RECORD_GRACE_S
        while not _try_lock(fd):
            holder = read_holder(self.root)
            if holder is not None or time.monotonic() >= deadline:
                return False, holder
            time.sleep(0.02)
        return True, None

    def _open(self) -> int:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise _cannot_write(self.root, exc) from exc

    def _record(self) -> str:
        started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        holder = LockHolder(os.getpid(), socket.gethostname(), started, self.command)
        return json.dumps(asdict(holder)) + "\n"


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _read_fd(fd: int) -> str:
    size = os.fstat(fd).st_size
    return os.pread(fd, size, 0).decode("utf-8", errors="replace") if size else ""


def _write_fd(fd: int, text: str) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, text.encode("utf-8"), 0)
    os.fsync(fd)


def _cannot_write(root: Path, exc: OSError) -> StorageError:
    return StorageError(f"cannot write to the lake at {root}: {exc.strerror or exc}")
