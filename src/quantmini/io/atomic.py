"""Atomic file and directory writes: write beside the target, fsync, then ``os.replace``.

A reader never sees a half-written file, and an interrupted write (Ctrl-C, disk full) leaves the previous
good file in place. Left-over temporaries (and previous versions of a replaced directory) are named
``.<name>.tmp-<id>`` and swept by :func:`sweep_temps`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from quantmini._exceptions import StorageError

_TMP_MARK = ".tmp-"


def temp_path_for(target: Path) -> Path:
    """A unique temporary sibling of ``target`` (same directory, so ``os.replace`` is atomic)."""
    return target.with_name(f".{target.name}{_TMP_MARK}{uuid.uuid4().hex[:12]}")


@contextlib.contextmanager
def atomic_path(target: Path, *, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``target``, on error it is removed.

    ``durable`` fsyncs the file before the rename, so it survives a power cut. Derived files that a run
    re-derives when their size disagrees with their manifest (silver) skip it: a killed process loses
    nothing either way, and fsync costs a disk flush per file.
    """
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create directory {target.parent}: {exc.strerror or exc}") from exc
    tmp = temp_path_for(target)
    try:
        yield tmp
        if durable:
            _fsync_file(tmp)
        os.replace(tmp, target)
    except OSError as exc:
        _remove(tmp)
        raise StorageError(f"cannot write {target}: {exc.strerror or exc}") from exc
    except BaseException:
        _remove(tmp)
        raise


def write_bytes_atomic(target: Path, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` to ``target`` atomically (see :func:`atomic_path` for ``durable``)."""
    with atomic_path(target, durable=durable) as tmp:
        tmp.write_bytes(data)


def replace_file_fast(target: str, data: memoryview | bytes) -> None:
    """Replace ``target`` with ``data`` through a temporary sibling, without fsync (for files whose
    manifest can detect a torn write and rebuild them, such as Qlib's per-symbol files)."""
    tmp = str(temp_path_for(Path(target)))
    try:
        with open(tmp, "wb", buffering=0) as handle:
            handle.write(data)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def append_at(path: str, data: memoryview | bytes, size: int) -> bool:
    """Write ``data`` at byte ``size`` of an existing file, first cutting back what a half-done earlier
    append left beyond ``size``; ``False`` (nothing written) when the file is missing or shorter."""
    try:
        fd = os.open(path, os.O_WRONLY)
    except FileNotFoundError:
        return False
    try:
        held = os.fstat(fd).st_size
        if held < size:
            return False
        if held > size:
            os.ftruncate(fd, size)
        os.pwrite(fd, data, size)
    finally:
        os.close(fd)
    return True


def write_text_atomic(target: Path, text: str, *, durable: bool = True) -> None:
    """Write ``text`` (UTF-8) to ``target`` atomically (see :func:`atomic_path` for ``durable``)."""
    write_bytes_atomic(target, text.encode("utf-8"), durable=durable)


def replace_directory(target: Path, build: Callable[[Path], None]) -> None:
    """Build a directory in a temporary sibling with ``build(tmp_dir)``, then swap it in for ``target``.

    The old directory is moved aside before the new one is renamed in, and removed afterwards; if the
    build fails the old directory is untouched.
    """
    tmp = new_temp_directory(target)
    try:
        build(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    swap_directory(tmp, target)


def new_temp_directory(target: Path) -> Path:
    """An empty temporary sibling directory of ``target`` (to build a replacement in)."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_path_for(target)
        tmp.mkdir()
    except OSError as exc:
        raise StorageError(f"cannot create a directory beside {target}: {exc.strerror or exc}") from exc
    return tmp


def swap_directory(tmp: Path, target: Path) -> None:
    """Put the finished directory ``tmp`` in place of ``target`` (two renames), then remove the old one."""
    # Named like a temporary, so the sweep removes it if a kill lands between the two renames.
    old = target.with_name(f".{target.name}{_TMP_MARK}old-{uuid.uuid4().hex[:12]}")
    try:
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
    except OSError as exc:
        if old.exists() and not target.exists():
            os.replace(old, target)
        shutil.rmtree(tmp, ignore_errors=True)
        raise StorageError(f"cannot replace directory {target}: {exc.strerror or exc}") from exc
    shutil.rmtree(old, ignore_errors=True)


def sweep_temps(directory: Path, *, older_than: float = 3600.0) -> int:
    """Remove temporaries left by killed writes below ``directory``; return how many.

    Only temporaries untouched for ``older_than`` seconds go: a younger one may belong to a write still
    running in another process.
    """
    if not directory.exists():
        return 0
    removed = 0
    cutoff = time.time() - older_than
    for path in directory.rglob(f".*{_TMP_MARK}*"):
        try:
            if path.lstat().st_mtime > cutoff:
                continue
        except FileNotFoundError:
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                _remove(path)
            except OSError as exc:
                raise StorageError(f"cannot remove {path}: {exc.strerror or exc}") from exc
        removed += 1
    return removed


def _fsync_file(path: Path) -> None:
    if path.is_file():
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
