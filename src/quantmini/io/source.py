"""Where flat files come from. A :class:`Source` lists, describes and copies objects by key.

The local mirror (a directory laid out like the vendor bucket) implements it now; the S3 source
implements the same protocol, so landing does not care which one it talks to.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from quantmini._exceptions import (
    ConfigurationError,
    NotFoundError,
    QuantminiError,
    SourceError,
    StorageError,
)

BUCKET_DIR = "flatfiles"
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class SourceObject:
    """Identity of one source object: enough to tell whether it changed since it was landed."""

    key: str
    size: int
    etag: str | None
    last_modified: dt.datetime | None

    def identity(self) -> dict[str, object]:
        """The fields recorded in manifests and compared on the next run."""
        return {
            "key": self.key,
            "size": self.size,
            "etag": self.etag,
            "last_modified": self.last_modified.isoformat() if self.last_modified else None,
        }


@dataclass(frozen=True, slots=True)
class FetchJob:
    """Fetch ``key`` into ``dest`` (a partial file the caller owns); ``expected`` comes from a listing."""

    key: str
    dest: Path
    expected: SourceObject


@dataclass(frozen=True, slots=True)
class FetchResult:
    """The identity of what was fetched, or the error that stopped it."""

    job: FetchJob
    outcome: SourceObject | QuantminiError


class Source(Protocol):
    """A store of vendor flat files addressed by bucket key."""

    @property
    def description(self) -> str:
        """Where the files come from, for messages and manifests (never contains secrets)."""
        ...

    def list_prefix(self, prefix: str) -> list[SourceObject]:
        """Every object whose key starts with ``prefix``."""
        ...

    def stat(self, key: str) -> SourceObject:
        """The object's identity; :class:`NotFoundError` when it does not exist."""
        ...

    def list_many(self, prefixes: Sequence[str]) -> list[SourceObject]:
        """Every object under any of ``prefixes``, sorted by key."""
        ...

    def fetch(self, key: str, dest: Path) -> SourceObject:
        """Copy the object's bytes to ``dest`` (a temporary path owned by the caller)."""
        ...

    def fetch_many(
        self,
        jobs: Sequence[FetchJob],
        on_bytes: Callable[[int], None] | None = None,
        on_done: Callable[[FetchResult], None] | None = None,
    ) -> list[FetchResult]:
        """Fetch every job; one job's failure is its result, never an exception for the batch.

        ``on_done`` is called with each result as soon as it is known (so callers can verify one file
        while others are still in flight); it must not block.
        """
        ...


class LocalMirrorSource:
    """A directory laid out like the vendor bucket: ``<dir>/flatfiles/<key>`` (or ``<dir>/<key>``)."""

    def __init__(self, directory: Path) -> None:
        directory = directory.expanduser()
        if not directory.is_dir():
            raise ConfigurationError(f"source directory {directory} does not exist")
        self._dir = directory
        self._bucket = directory / BUCKET_DIR if (directory / BUCKET_DIR).is_dir() else directory

    @property
    def directory(self) -> Path:
        """The mirror's root directory (may also hold ``rest/`` reference responses)."""
        return self._dir

    @property
    def description(self) -> str:
        """Human-readable description."""
        return f"local mirror {self._dir}"

    def _path(self, key: str) -> Path:
        path = (self._bucket / key).resolve()
        if not path.is_relative_to(self._bucket.resolve()):
            raise SourceError(f"key {key!r} escapes the mirror directory")
        return path

    def _object(self, key: str, path: Path) -> SourceObject:
        st = path.stat()
        modified = dt.datetime.fromtimestamp(st.st_mtime, tz=dt.UTC)
        # A local file has no ETag; size + mtime (ns) identify a version well enough for re-runs.
        return SourceObject(key=key, size=st.st_size, etag=f"mtime-{st.st_mtime_ns}", last_modified=modified)

    def list_prefix(self, prefix: str) -> list[SourceObject]:
        """Every file below ``prefix``, sorted by key."""
        base = self._bucket / prefix
        if not base.exists():
            return []
        return [
            self._object(path.relative_to(self._bucket).as_posix(), path)
            for path in sorted(base.rglob("*"))
            if path.is_file() and not path.name.startswith(".")
        ]

    def list_many(self, prefixes: Sequence[str]) -> list[SourceObject]:
        """Every file below any of ``prefixes``, sorted by key."""
        return sorted((obj for prefix in prefixes for obj in self.list_prefix(prefix)), key=lambda o: o.key)

    def fetch_many(
        self,
        jobs: Sequence[FetchJob],
        on_bytes: Callable[[int], None] | None = None,
        on_done: Callable[[FetchResult], None] | None = None,
    ) -> list[FetchResult]:
        """Copy each job's file in turn."""
        results = []
        for job in jobs:
            try:
                result = FetchResult(job, self.fetch(job.key, job.dest))
            except QuantminiError as exc:
                result = FetchResult(job, exc)
            if on_bytes is not None and not isinstance(result.outcome, QuantminiError):
                on_bytes(result.outcome.size)
            if on_done is not None:
                on_done(result)
            results.append(result)
        return results

    def stat(self, key: str) -> SourceObject:
        """Identity of ``key`` or :class:`NotFoundError`."""
        path = self._path(key)
        if not path.is_file():
            raise NotFoundError(f"{key} not found in {self.description}")
        return self._object(key, path)

    def fetch(self, key: str, dest: Path) -> SourceObject:
        """Copy ``key`` to ``dest`` byte for byte.

        A failure to read the mirror is a :class:`SourceError`; a failure to write ``dest`` (the lake) is
        a :class:`StorageError` naming ``dest``, so a read-only lake is never blamed on the mirror.
        """
        obj = self.stat(key)
        try:
            reader = self._path(key).open("rb")
        except OSError as exc:
            raise self._read_error(key, exc) from exc
        with reader:
            try:
                with dest.open("wb") as writer:
                    while chunk := self._read(reader, key):
                        writer.write(chunk)
            except OSError as exc:
                raise StorageError(f"cannot write {dest}: {exc.strerror or exc}") from exc
        return obj

    def _read(self, reader: BinaryIO, key: str) -> bytes:
        try:
            return reader.read(_CHUNK)
        except OSError as exc:
            raise self._read_error(key, exc) from exc

    def _read_error(self, key: str, exc: OSError) -> SourceError:
        return SourceError(f"cannot read {key} from {self.description}: {exc.strerror or exc}")
