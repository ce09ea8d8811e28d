"""Configuration: the frozen settings model, layered loading with provenance, and the system profiler.

Precedence, lowest first: defaults < system profile < user config file < environment < command line.

The names below are imported on first use: the CLI installs :mod:`quantmini.config.redaction` for every
command, and a command such as ``--help`` should not pay for the settings model (pydantic) to get it.
"""

import importlib
import typing

if typing.TYPE_CHECKING:
    from quantmini.config.keys import SETTINGS_KEYS, KeySpec
    from quantmini.config.loader import LoadedConfig, load_config, load_settings
    from quantmini.config.profile import SystemFacts, detect_facts, recommend
    from quantmini.config.provenance import Origin
    from quantmini.config.redaction import (
        REDACTED,
        RedactingFilter,
        redact,
        redacted_settings,
        redacted_values,
    )
    from quantmini.config.settings import Settings
    from quantmini.config.sources import ConfigPaths, config_paths

#: Public name → the module defining it.
_WHERE = {
    "REDACTED": "redaction",
    "SETTINGS_KEYS": "keys",
    "ConfigPaths": "sources",
    "KeySpec": "keys",
    "LoadedConfig": "loader",
    "Origin": "provenance",
    "RedactingFilter": "redaction",
    "Settings": "settings",
    "SystemFacts": "profile",
    "config_paths": "sources",
    "detect_facts": "profile",
    "load_config": "loader",
    "load_settings": "loader",
    "recommend": "profile",
    "redact": "redaction",
    "redacted_settings": "redaction",
    "redacted_values": "redaction",
}

__all__ = [
    "REDACTED",
    "SETTINGS_KEYS",
    "ConfigPaths",
    "KeySpec",
    "LoadedConfig",
    "Origin",
    "RedactingFilter",
    "Settings",
    "SystemFacts",
    "config_paths",
    "detect_facts",
    "load_config",
    "load_settings",
    "recommend",
    "redact",
    "redacted_settings",
    "redacted_values",
]


def __getattr__(name: str) -> object:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
