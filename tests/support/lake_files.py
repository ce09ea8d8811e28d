"""A lake's files, comparable across runs made at different times (for "this run ends with the lake of
that one" assertions)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl

from quantmini.io.lock import LOCK_FILE

#: Paths below a lake root that are records or caches, not data.
_NOT_DATA = ("_runs/", "logs/", "_manifests/.index/", "_cache/")


def files_of(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def lake_contents(root: Path) -> dict[str, object]:
    """Every file of a lake, comparable across runs made at different times.

    Manifests drop ``landed_at``, and ``fingerprint`` and ``identity`` (digests of inputs that include
    reference tables, whose files hold ``fetched_at``: the universes read the tickers table); reference
    tables drop ``fetched_at``; the DuckDB file (views only, rebuilt with its own
    page layout) counts by presence; run records and performance figures (``_runs/``, ``logs/``) describe
    runs, and the manifest index and query cache (``_manifests/.index/``, ``_cache/``) are caches: none of
    them is the lake's data, so they are left out. Everything else is compared byte for byte.
    """
    contents: dict[str, object] = {}
    for name in sorted(files_of(root) - {LOCK_FILE}):
        path = root / name
        if name.startswith(_NOT_DATA):
            continue
        if name.startswith("_manifests/") and name.endswith(".parquet"):
            contents[name] = pl.read_parquet(path).to_dicts()
        elif name.startswith("_manifests/") and name.endswith(".json"):
            manifest = json.loads(path.read_text())
            dropped = ("landed_at", "fingerprint", "identity")
            contents[name] = {k: v for k, v in manifest.items() if k not in dropped}
        elif name.startswith("bronze/reference/"):
            contents[name] = pl.read_parquet(path).drop("fetched_at").to_dicts()
        elif name.endswith(".duckdb"):
            contents[name] = "present"
        else:
            contents[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return contents
