"""Landing stage: copy source objects byte-identical into ``landing/`` and record a manifest each."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

from quantmini._exceptions import DownloadError, NotFoundError
from quantmini.datasets.base import DatasetSpec
from quantmini.io.atomic import atomic_path
from quantmini.io.lake import Lake
from quantmini.io.manifest import read_manifest, sha256_file, write_manifest
from quantmini.io.source import Source

LandingStatus = Literal["landed", "unchanged", "republished", "missing"]


@dataclass(frozen=True, slots=True)
class LandingOutcome:
    """What landing did for one session file."""

    session: dt.date
    key: str
    status: LandingStatus
    size: int = 0


def land_session(lake: Lake, source: Source, spec: DatasetSpec, session: dt.date) -> LandingOutcome:
    """Land the file of ``session`` unless the landed copy is already that version."""
    key = spec.source_key(session)
    manifest_path = lake.manifest("landing", spec, session)
    previous = read_manifest(manifest_path)
    try:
        obj = source.stat(key)
    except NotFoundError:
        return LandingOutcome(session, key, "missing")
    target = lake.landing_file(key)
    if previous is not None and _same_version(previous, obj.identity()) and _intact(target, previous):
        return LandingOutcome(session, key, "unchanged", obj.size)

    with atomic_path(target) as tmp:
        fetched = source.fetch(key, tmp)
        size = tmp.stat().st_size
        if size != fetched.size:
            raise DownloadError(f"{key}: received {size} bytes, source says {fetched.size}")
        sha256 = sha256_file(tmp)
    status: LandingStatus = "landed"
    if previous is not None:
        status = "unchanged" if previous.get("sha256") == sha256 else "republished"
    write_manifest(
        manifest_path,
        {
            "key": key,
            "session": session.isoformat(),
            "size": size,
            "sha256": sha256,
            "source": fetched.identity(),
            "source_description": source.description,
            "landed_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        },
    )
    return LandingOutcome(session, key, status, size)


def _same_version(previous: dict[str, Any], identity: dict[str, object]) -> bool:
    recorded = previous.get("source", {})
    return bool(recorded.get("size") == identity["size"] and recorded.get("etag") == identity["etag"])


def _intact(target: Any, previous: dict[str, Any]) -> bool:
    try:
        return bool(target.stat().st_size == previous.get("size"))
    except OSError:
        return False
