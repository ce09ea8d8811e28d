"""Import reference responses kept beside a local mirror (``<mirror>/rest/...``) into bronze tables.

The files are vendor REST responses stored at their request paths, so they go through the same parsers
and the same idempotent store as responses fetched over HTTP.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from quantmini._exceptions import ValidationError
from quantmini.core.reference import (
    dividends_from_payload,
    options_contracts_from_payload,
    splits_from_payload,
    ticker_events_from_payload,
    tickers_from_payload,
)
from quantmini.io.lake import Lake
from quantmini.io.reference_store import store_reference

#: Table → (glob of response files below the mirror directory, parser).
REFERENCE_FILES: dict[str, tuple[str, Callable[[Any, str], pl.DataFrame]]] = {
    "splits": ("rest/v3/reference/splits.json", splits_from_payload),
    "dividends": ("rest/v3/reference/dividends.json", dividends_from_payload),
    "tickers": ("rest/v3/reference/tickers.json", tickers_from_payload),
    "ticker_events": ("rest/vX/reference/tickers/*/events.json", ticker_events_from_payload),
    "options_contracts": ("rest/v3/reference/options/contracts.json", options_contracts_from_payload),
}


def import_reference_dir(lake: Lake, directory: Path) -> dict[str, int]:
    """Parse every known response file under ``directory`` and merge it; return new records per table."""
    fetched_at = dt.datetime.now(dt.UTC)
    added: dict[str, int] = {}
    for name, (pattern, parser) in REFERENCE_FILES.items():
        frames = [parser(_read_json(path), str(path)) for path in sorted(directory.glob(pattern))]
        if frames:
            added[name] = store_reference(lake, name, pl.concat(frames, how="vertical_relaxed"), fetched_at)
    return added


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValidationError(f"{path}: not a readable JSON response ({exc})") from exc
