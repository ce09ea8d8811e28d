"""Stream a gzip file as decompressed chunks that end on line boundaries, with bounded memory.

Decompression runs in a background thread (the inflater, :mod:`quantmini.io.inflate`, releases the GIL)
so that parsing one chunk overlaps with inflating the next; at most ``queue_depth`` chunks wait in
memory. Errors are mapped to quantmini errors naming the file.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path

from quantmini._exceptions import StorageError, ValidationError
from quantmini.io.inflate import FASTEST, Inflater

#: Decompressed bytes per chunk: large enough for Polars to parse efficiently, small next to a file.
CHUNK_BYTES = 32 << 20
_READ_BYTES = 1 << 20
_DONE = object()


def _inflate(path: Path, label: str, chunk_bytes: int, inflater: Inflater) -> Iterator[bytes]:
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise StorageError(
            f"{label} is in the landing manifest but missing on disk; re-run landing"
        ) from None
    except OSError as exc:
        raise StorageError(f"cannot read {label}: {exc.strerror or exc}") from exc
    pending: list[bytes] = []
    size = 0
    with handle:
        stream, fed = inflater.new(), False
        try:
            while block := handle.read(max(4096, min(_READ_BYTES, chunk_bytes // 8))):
                while block:
                    fed = True
                    out = stream.decompress(block)
                    if out:
                        pending.append(out)
                        size += len(out)
                    block = b""
                    if stream.eof:  # concatenated gzip members are one file, as for gzip -dc
                        block = stream.unused_data
                        stream, fed = inflater.new(), False
                if size >= chunk_bytes:
                    lines, pending = _cut_after_last_newline(pending)
                    if lines:
                        yield lines
                        size = sum(map(len, pending))
            pending.append(stream.flush())
        except inflater.error as exc:
            raise ValidationError(f"{label}: corrupt or truncated gzip ({exc})") from exc
        if fed and not stream.eof:
            raise ValidationError(f"{label}: corrupt or truncated gzip (compressed data ends early)")
    tail = b"".join(pending)
    if tail:
        yield tail


def _cut_after_last_newline(pieces: list[bytes]) -> tuple[bytes, list[bytes]]:
    """The pieces joined up to their last newline, and the pieces after it (joining once, not copying
    the whole chunk a second time to slice it)."""
    for index in range(len(pieces) - 1, -1, -1):
        cut = pieces[index].rfind(b"\n") + 1
        if cut:
            head = pieces[index]
            lines = b"".join([*pieces[:index], head[:cut]])
            return lines, [head[cut:], *pieces[index + 1 :]]
    return b"", pieces


def gzip_chunks(
    path: Path,
    label: str,
    *,
    chunk_bytes: int | None = None,
    queue_depth: int = 2,
    inflater: Inflater = FASTEST,
) -> Iterator[bytes]:
    """Decompressed content of ``path`` in chunks; every chunk but the last ends with ``\\n``.

    ``label`` names the file in errors: :class:`ValidationError` for corrupt gzip,
    :class:`StorageError` when the file cannot be read.
    """
    size = CHUNK_BYTES if chunk_bytes is None else chunk_bytes
    chunks: queue.Queue[object] = queue.Queue(maxsize=queue_depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for chunk in _inflate(path, label, size, inflater):
                while not stop.is_set():
                    try:
                        chunks.put(chunk, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            chunks.put(_DONE)
        except BaseException as exc:  # handed to the consumer, re-raised there
            chunks.put(exc)

    worker = threading.Thread(target=produce, name=f"gunzip {path.name}", daemon=True)
    worker.start()
    try:
        while True:
            item = chunks.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, bytes)
            yield item
    finally:
        stop.set()
        while worker.is_alive():
            try:
                chunks.get_nowait()
            except queue.Empty:
                worker.join(timeout=0.05)


def read_lines(path: Path, label: str, numbers: set[int]) -> dict[int, str]:
    """Text of the given 1-based line numbers of a gzip file (read in one streaming pass)."""
    found: dict[int, str] = {}
    if not numbers:
        return found
    last = max(numbers)
    line = 1
    for chunk in gzip_chunks(path, label):
        lines = chunk.split(b"\n")
        for offset, wanted in enumerate(lines[:-1] if chunk.endswith(b"\n") else lines):
            if line + offset in numbers:
                found[line + offset] = wanted.decode("utf-8", errors="replace").rstrip("\r")
        line += chunk.count(b"\n")
        if line > last:
            break
    return found
