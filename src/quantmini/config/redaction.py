"""Effective settings as plain data with secrets hidden: ``'***'`` when set, ``None`` when not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from quantmini.config.keys import SETTINGS_KEYS
from quantmini.config.settings import Settings

REDACTED = "***"


def redacted_values(settings: Settings) -> dict[str, Any]:
    """``{dotted key: plain value}`` in model order; paths as strings, secrets redacted."""
    flat: dict[str, Any] = {}
    for key, spec in SETTINGS_KEYS.items():
        holder = settings if spec.section is None else getattr(settings, spec.section)
        value = getattr(holder, spec.name)
        if spec.secret:
            flat[key] = None if value is None else REDACTED
        elif isinstance(value, Path):
            flat[key] = str(value)
        else:
            flat[key] = value
    return flat


def redacted_settings(settings: Settings) -> dict[str, Any]:
    """The settings as a nested plain dict (sections as dicts), secrets redacted."""
    nested: dict[str, Any] = {}
    for key, value in redacted_values(settings).items():
        spec = SETTINGS_KEYS[key]
        if spec.section is None:
            nested[spec.name] = value
        else:
            nested.setdefault(spec.section, {})[spec.name] = value
    return nested
