"""Import reference responses kept beside a local mirror (``<mirror>/rest/...``) into bronze tables."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from quantmini._exceptions import ValidationError
from quantmini.core.reference import PARSERS
from quantmini.io.lake import Lake
from quantmini.io.reference_store import store_reference

#: Where each reference response sits below a mirror directory (the REST path it answers).
REFERENCE_FILES: dict[str, str] = {
    "splits": "rest/v3/reference/splits.json",
    "dividends": "rest/v3/reference/dividends.json",
    "tickers": "rest/v3/reference/tickers.json",
}


def import_reference_dir(lake: Lake, directory: Path) -> dict[str, int]:
    """Parse every known response file under ``directory`` and merge it; return new records per table."""
    fetched_at = dt.datetime.now(dt.UTC)
    added: dict[str, int] = {}
    for name, relative in REFERENCE_FILES.items():
        path = directory / relative
        if not path.is_file():
            continue
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValidationError(f"{path}: not a readable JSON response ({exc})") from exc
        frame = PARSERS[name](payload, str(path))
        added[name] = store_reference(lake, name, frame, fetched_at)
    return added
