"""Configuration: the frozen settings model, layered loading with provenance, and the system profiler.

Precedence, lowest first: defaults < system profile < user config file < environment < command line.
"""

from quantmini.config.keys import SETTINGS_KEYS, KeySpec
from quantmini.config.loader import LoadedConfig, load_config, load_settings
from quantmini.config.profile import SystemFacts, detect_facts, recommend
from quantmini.config.provenance import Origin
from quantmini.config.redaction import REDACTED, RedactingFilter, redact, redacted_settings, redacted_values
from quantmini.config.settings import Settings
from quantmini.config.sources import ConfigPaths, config_paths

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
