"""Every manifest of a directory at once, through a compact index file that spares reading each one.

A 20-year lake holds about 5,000 manifests per table; opening and parsing each costs ~30 µs, so a reader
of the whole lake (``data status``) spends seconds on it. The index keeps, for every manifest of one
directory, the fields its reader asked for, in a single JSON file under ``<root>/_manifests/.index/``.

It is valid while the directory's modification time is the one it recorded: every manifest write is an
atomic rename into its directory (:func:`~quantmini.io.manifest.write_manifest`), and a rename changes
the directory's time. An index is written only when the directory was last modified at least
:data:`SETTLED_SECONDS` before the read began: a manifest replaced within the same clock tick as the read
would otherwise leave the directory time unchanged and the index wrong (git's "racy index" problem). A
manifest edited in place by hand (not renamed) is not noticed; delete ``_manifests/.index`` after that.

Readers write the index without the lake's lock: atomically (readers racing each write a whole file), and
not at all where the lake is not writable.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

from quantmini._exceptions import StorageError
from quantmini.io.atomic import write_text_atomic
from quantmini.io.manifest import read_manifest, session_manifests

log = logging.getLogger(__name__)

#: Bumped when the index file's layout changes (an index of another version is rebuilt).
INDEX_VERSION = 1
#: How long a directory must have been left unchanged before its index is written.
SETTLED_SECONDS = 2.0


def read_manifests(
    directory: Path, keys: Collection[str], index: Path | None = None
) -> dict[dt.date, dict[str, Any]]:
    """Every readable ``YYYY-MM-DD.json`` manifest in ``directory``, by session, reduced to ``keys``;
    through the index file ``index`` when it is current (and then written or refreshed when it can be).

    Raises :class:`StorageError` when the directory exists but cannot be read.
    """
    try:
        before = os.stat(directory).st_mtime_ns
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise StorageError(f"cannot read {directory}: {exc.strerror or exc}") from exc
    wanted = sorted(keys)
    if index is not None:
        cached = _load(index, before, wanted)
        if cached is not None:
            return cached
    started = time.time_ns()
    found = {
        session: {k: manifest[k] for k in wanted if k in manifest}
        for session, manifest in _read_all(directory).items()
    }
    settled = before < started - int(SETTLED_SECONDS * 1e9)
    if index is not None and settled and os.stat(directory).st_mtime_ns == before:
        _save(index, before, wanted, found)
    return found


def _read_all(directory: Path) -> dict[dt.date, dict[str, Any]]:
    try:
        manifests = session_manifests(directory)
    except OSError as exc:
        raise StorageError(f"cannot read {directory}: {exc.strerror or exc}") from exc
    found: dict[dt.date, dict[str, Any]] = {}
    for session, path in manifests:
        try:
            with open(path, "rb") as handle:  # bytes: json decodes UTF-8 faster than a text stream
                data = json.loads(handle.read())
        except FileNotFoundError:
            continue
        except (OSError, ValueError):
            data = read_manifest(Path(path))  # logs why it is ignored
        if isinstance(data, dict):
            found[session] = data
    return found


def _load(index: Path, mtime_ns: int, keys: list[str]) -> dict[dt.date, dict[str, Any]] | None:
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if (
        not isinstance(data, dict)
        or data.get("version") != INDEX_VERSION
        or data.get("mtime_ns") != mtime_ns
        or data.get("keys") != keys
    ):
        return None
    return {dt.date.fromisoformat(k): v for k, v in data["manifests"].items()}


def _save(index: Path, mtime_ns: int, keys: list[str], found: dict[dt.date, dict[str, Any]]) -> None:
    document = {
        "version": INDEX_VERSION,
        "mtime_ns": mtime_ns,
        "keys": keys,
        "manifests": {s.isoformat(): m for s, m in sorted(found.items())},
    }
    try:
        write_text_atomic(index, json.dumps(document, separators=(",", ":")), durable=False)
    except (OSError, StorageError) as exc:  # a read-only lake: read without the index
        log.debug("not writing the manifest index %s: %s", index, exc)
