"""A result cache on disk, shared by every process that queries a lake: ``<root>/_cache/query/``.

An answer is stored under a key made of the normalised query and the identity of every file it read: for a
partition, the checksum its manifest records (``output_sha256``), so a re-ingested or republished session
changes the key of exactly the answers that read it; for a lake-wide table without a manifest (the factor
table, the entity table), its size, modification time and inode, which change only when it is rewritten
(those tables are written only when their content changes). An answer whose inputs changed is therefore
never served; it is simply not found, and ages out.

Entries are Parquet files written to a temporary and renamed into place, so a reader in another process
sees a whole entry or none. A hit refreshes the entry's modification time; when the cache grows past its
budget (``query.cache_mb``), the least recently used entries are deleted until it fits. Two processes may
evict at once: a file already gone is simply skipped. A lake that cannot be written (read-only media)
answers every query without caching.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterable
from pathlib import Path

import polars as pl

from quantmini.io.atomic import atomic_path, sweep_temps
from quantmini.io.lake import PARTITION_FILE, Lake
from quantmini.io.manifest import read_manifest

log = logging.getLogger(__name__)

#: Layers whose partitions have per-session manifests (``_manifests/<layer>/<table>/<date>.json``).
_MANIFESTED = ("bronze", "silver")


class _TooLargeError(Exception):
    """An answer larger than the whole cache: not kept (its temporary is removed)."""


class ResultCache:
    """Answers stored as Parquet files below ``directory``, at most ``budget_bytes`` in all."""

    def __init__(self, directory: Path, budget_bytes: int) -> None:
        self.directory = directory
        self.budget_bytes = budget_bytes

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.parquet"

    def get(self, key: str) -> pl.DataFrame | None:
        """The answer stored under ``key``, or ``None``."""
        path = self._path(key)
        try:
            frame = pl.read_parquet(path)
            os.utime(path)  # most recently used
        except (OSError, pl.exceptions.ComputeError) as exc:
            if not isinstance(exc, FileNotFoundError):
                log.debug("ignoring unreadable cache entry %s: %s", path, exc)
            return None
        return frame

    def put(self, key: str, frame: pl.DataFrame) -> None:
        """Store ``frame`` under ``key`` (unless it alone exceeds the budget), then evict to the budget."""
        path = self._path(key)
        try:
            with atomic_path(path, durable=False) as tmp:
                frame.write_parquet(tmp, compression="zstd")
                if tmp.stat().st_size > self.budget_bytes:
                    raise _TooLargeError
        except _TooLargeError:
            return
        except OSError as exc:
            log.debug("not caching the answer (%s)", exc)
            return
        self.evict()

    def evict(self) -> None:
        """Delete the least recently used entries until the cache fits its budget (and temporaries that a
        killed process left an hour ago or more)."""
        sweep_temps(self.directory)
        entries = []
        for path in self.directory.glob("*/*.parquet"):
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            entries.append((stat.st_mtime_ns, stat.st_size, path))
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries):
            if total <= self.budget_bytes:
                break
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.debug("cannot evict %s: %s", path, exc)
                continue
            total -= size


class InputIdentities:
    """The identity of each file a query reads, as its key needs it; a manifest's checksum is read once
    per manifest version (its stat), so a warm engine keys a query by stats alone."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self._seen: dict[str, tuple[tuple[int, int], str]] = {}
        self._lock = threading.Lock()

    def of(self, files: Iterable[Path]) -> list[str]:
        """One identity per file, in order."""
        return [self._identity(path) for path in files]

    def _identity(self, path: Path) -> str:
        return f"{path}={self._content(path)}"

    def _content(self, path: Path) -> str:
        manifest = self._manifest_of(path)
        if manifest is None:
            return _stat_identity(path)
        try:
            stat = manifest.stat()
        except FileNotFoundError:
            return _stat_identity(path)
        version = (stat.st_mtime_ns, stat.st_size)
        key = str(manifest)
        with self._lock:
            known = self._seen.get(key)
        if known is not None and known[0] == version:
            return known[1]
        recorded = read_manifest(manifest)
        checksum = str(recorded.get("output_sha256")) if recorded else None
        identity = f"sha256:{checksum}" if checksum else _stat_identity(path)
        with self._lock:
            self._seen[key] = (version, identity)
        return identity

    def _manifest_of(self, path: Path) -> Path | None:
        """``_manifests/<layer>/<table>/<date>.json`` of a partition file below the lake; ``None`` for
        other files."""
        if path.name != PARTITION_FILE or not path.parent.name.startswith("date="):
            return None
        try:
            layer, table = path.parent.parent.relative_to(self.lake.root).parts
        except ValueError:
            return None
        if layer not in _MANIFESTED:
            return None
        return self.lake.root / "_manifests" / layer / table / f"{path.parent.name[5:]}.json"


def _stat_identity(path: Path) -> str:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return "absent"
    return f"stat:{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ino}"


def cache_key(query: object, identities: Iterable[str]) -> str:
    """SHA-256 of the normalised query (its ``repr``: a frozen spec with normalised fields) and its
    inputs' identities."""
    text = json.dumps([repr(query), list(identities)])
    return hashlib.sha256(text.encode()).hexdigest()
