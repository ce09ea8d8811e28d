"""Versioned landing: a landed file replaced by a new upstream version is kept until bronze accepts one.

When the source serves a new version of a session's file, landing moves the file it holds to
``landing/.versions/<key>.<sha12>`` before putting the new bytes in place, and records the kept copy in
the landing manifest under ``kept_version``. Once bronze has ingested the file now landed, the kept copy
is removed (:func:`prune_kept_version`). A new version that bronze refuses (wrong header, empty file)
therefore never costs the good raw bytes.

At most one copy is kept per session: the one landed before the first replacement that bronze has not yet
accepted. Versions landed in between and refused by bronze are not kept (the source still lists the one
it serves now).

The bytes go, the record stays: every landing manifest lists the versions its file replaced under
``replaced`` (oldest first; sha256, size, the source's ETag and last_modified, when it was landed), so
``quantmini data status`` knows afterwards which sessions the vendor republished and when it first
published them. Manifests written before this history existed have none: no replaced version.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantmini._exceptions import StorageError
from quantmini.datasets.base import DatasetSpec
from quantmini.io.lake import Lake
from quantmini.io.manifest import read_manifest, write_manifest

#: Landing-manifest field recording the kept copy of the replaced version.
KEPT_FIELD = "kept_version"
#: Landing-manifest field listing the versions the landed file replaced, oldest first.
REPLACED_FIELD = "replaced"
#: Replaced versions a landing manifest remembers (the oldest are dropped beyond this).
MAX_REPLACED = 10


@dataclass(frozen=True, slots=True)
class KeptVersion:
    """A previous raw version of a session's file, kept because bronze has not accepted its replacement."""

    session: dt.date
    path: Path
    sha256: str


def keep_replaced(lake: Lake, key: str, manifest: dict[str, Any]) -> dict[str, Any] | None:
    """Move the landed file described by ``manifest`` aside before a new version replaces it.

    Returns the record to carry in the new landing manifest (``None`` when there is nothing to keep).
    A copy already kept for this session is kept instead: the file landed now was never accepted by
    bronze (accepting it would have removed that copy).
    """
    existing = manifest.get(KEPT_FIELD)
    if isinstance(existing, dict) and _kept_path(lake, existing) is not None:
        return existing
    sha256 = str(manifest.get("sha256", ""))
    if not sha256:
        return None
    kept = lake.landing_version(key, sha256)
    # A kill between this move and the manifest write leaves the copy in place: it is found again here
    # instead of moving the new bytes under the old version's name.
    if not kept.exists():
        target = lake.landing_file(key)
        if not target.exists():
            return None
        try:
            kept.parent.mkdir(parents=True, exist_ok=True)
            os.replace(target, kept)
        except OSError as exc:
            raise StorageError(f"cannot keep {target} as {kept}: {exc.strerror or exc}") from exc
    return {
        "path": kept.relative_to(lake.root).as_posix(),
        "sha256": sha256,
        "size": manifest.get("size"),
        "source": manifest.get("source"),
        "landed_at": manifest.get("landed_at"),
    }


def replaced_history(previous: dict[str, Any], republished: bool) -> list[dict[str, Any]]:
    """The ``replaced`` history of the manifest that follows ``previous``: its own, plus the version
    ``previous`` describes when the new bytes differ from it (``republished``)."""
    history = [v for v in previous.get(REPLACED_FIELD, []) if isinstance(v, dict)]
    if not republished:
        return history
    source = previous.get("source") or {}
    history.append(
        {
            "sha256": previous.get("sha256"),
            "size": previous.get("size"),
            "etag": source.get("etag"),
            "last_modified": source.get("last_modified"),
            "landed_at": previous.get("landed_at"),
        }
    )
    return history[-MAX_REPLACED:]


def prune_kept_version(lake: Lake, spec: DatasetSpec, session: dt.date, ingested: dict[str, Any]) -> None:
    """Remove the kept copy of ``session``'s replaced file now that bronze holds the landed version.

    ``ingested`` is the landing manifest bronze read; nothing happens unless it records a kept copy and
    the landing manifest still describes the same landed file.
    """
    if KEPT_FIELD not in ingested:
        return
    manifest_path = lake.manifest("landing", spec, session)
    current = read_manifest(manifest_path)
    if current is None or current.get("sha256") != ingested.get("sha256"):
        return
    record = current.get(KEPT_FIELD)
    kept = _kept_path(lake, record) if isinstance(record, dict) else None
    if kept is not None:
        try:
            kept.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot remove the kept version {kept}: {exc.strerror or exc}") from exc
        _remove_empty_parents(kept.parent, lake.landing_versions_dir())
    write_manifest(manifest_path, {k: v for k, v in current.items() if k != KEPT_FIELD})


def kept_versions(lake: Lake, spec: DatasetSpec, sessions: Sequence[dt.date]) -> list[KeptVersion]:
    """The kept copies of ``sessions`` that are still on disk, by session."""
    found: list[KeptVersion] = []
    for session in sessions:
        manifest = read_manifest(lake.manifest("landing", spec, session))
        record = manifest.get(KEPT_FIELD) if manifest is not None else None
        if not isinstance(record, dict):
            continue
        path = _kept_path(lake, record)
        if path is not None and path.is_file():
            found.append(KeptVersion(session, path, str(record.get("sha256", ""))))
    return found


def _kept_path(lake: Lake, record: dict[str, Any]) -> Path | None:
    """The recorded copy's path, if it lies inside the versions area (it is deleted by path)."""
    relative = record.get("path")
    if not isinstance(relative, str):
        return None
    path = lake.root / relative
    area = lake.landing_versions_dir()
    if not path.resolve().is_relative_to(area.resolve()) or not path.exists():
        return None
    return path


def _remove_empty_parents(directory: Path, stop_at: Path) -> None:
    """Remove ``directory`` and its parents up to and including ``stop_at`` while they are empty."""
    while directory.is_relative_to(stop_at):
        try:
            directory.rmdir()
        except OSError:  # not empty (another session's copy) or already gone
            return
        if directory == stop_at:
            return
        directory = directory.parent
