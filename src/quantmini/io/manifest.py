"""Per-partition JSON manifests: the lake's memory of what was produced from what.

A manifest is written atomically after its output, so a present manifest implies a complete output.
An unreadable manifest is treated as absent (the partition is redone), never trusted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from quantmini.io.atomic import write_text_atomic

log = logging.getLogger(__name__)

_CHUNK = 1 << 20


def read_manifest(path: Path) -> dict[str, Any] | None:
    """The manifest at ``path``, or ``None`` if it is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable manifest %s: %s", path, exc)
        return None
    return data if isinstance(data, dict) else None


def write_manifest(path: Path, data: dict[str, Any], *, durable: bool = True) -> None:
    """Write ``data`` as the manifest at ``path`` (atomically, keys sorted; ``durable``: fsynced)."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n", durable=durable)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def session_manifests(directory: Path) -> list[tuple[dt.date, str]]:
    """The per-session manifests in ``directory`` (``YYYY-MM-DD.json``; hidden files, temporaries and other
    names skipped) as ``(session, path)``, oldest first. Plain strings: pathlib's per-call overhead shows
    at thousands of files. :class:`OSError` (a missing directory included) is the caller's to handle."""
    found = []
    base = str(directory)
    for name in os.listdir(directory):
        if not name.endswith(".json") or name.startswith("."):
            continue
        try:
            session = dt.date.fromisoformat(name[:-5])
        except ValueError:
            continue
        found.append((session, os.path.join(base, name)))
    return sorted(found)
