"""The day files of a generated mirror, found and edited in place as a republished vendor file would be."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path


def day_files(mirror: Path, prefix: str) -> dict[dt.date, Path]:
    """The mirror's ``*.csv.gz`` day files below ``flatfiles/<prefix>``, by session, in date order."""
    found = {dt.date.fromisoformat(p.name[:10]): p for p in (mirror / "flatfiles" / prefix).rglob("*.csv.gz")}
    return dict(sorted(found.items()))


def rewrite_day_file(path: Path, edit: Callable[[list[str]], list[str]]) -> None:
    """Replace the data lines of a day file (header kept) by ``edit``'s, and move its mtime on so the
    source lists it as changed."""
    header, *lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    path.write_bytes(gzip.compress(("\n".join([header, *edit(lines)]) + "\n").encode()))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def add_reference_record(mirror: Path, kind: str, record: dict[str, object]) -> None:
    """Append ``record`` (with a content-derived ``id``) to the mirror's ``rest/v3/reference/<kind>.json``
    response, as the vendor announcing a new split or dividend."""
    path = mirror / "rest" / "v3" / "reference" / f"{kind}.json"
    payload = json.loads(path.read_text())
    record["id"] = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:20]
    payload["results"].append(record)
    path.write_text(json.dumps(payload))
