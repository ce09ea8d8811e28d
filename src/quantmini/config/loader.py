"""Merge the configuration layers into one frozen :class:`~quantmini.config.settings.Settings`.

Precedence, lowest first: defaults < system profile (``profile.toml``) < user file (``config.toml``, and
``credentials.toml`` for secrets) < environment < command-line overrides. Each value remembers its
:class:`~quantmini.config.provenance.Origin`, so ``quantmini config show`` can say where it came from.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import pydantic
from pydantic import SecretStr

from quantmini._exceptions import ConfigurationError
from quantmini.config.keys import SETTINGS_KEYS
from quantmini.config.provenance import DEFAULT, Origin
from quantmini.config.redaction import register_environment_secrets, register_secret
from quantmini.config.settings import Settings
from quantmini.config.sources import (
    ConfigPaths,
    Layer,
    config_paths,
    credentials_layer,
    env_layer,
    overrides_layer,
    settings_file_layer,
)


@dataclass(frozen=True)
class LoadedConfig:
    """Effective settings, the origin of every key, and the files that were consulted."""

    settings: Settings
    origins: Mapping[str, Origin] = field(repr=False)
    paths: ConfigPaths

    def origin(self, key: str) -> Origin:
        """Where the effective value of dotted ``key`` came from."""
        return self.origins[key]


def load_config(
    overrides: Mapping[str, object] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    config_dir: Path | None = None,
) -> LoadedConfig:
    """Load every layer and merge them; see :func:`load_settings`.

    Every secret read on the way is registered for redaction (:mod:`quantmini.config.redaction`).
    """
    env = os.environ if environ is None else environ
    register_environment_secrets(env)
    paths = config_paths(env, config_dir)
    layers: list[Layer] = [
        settings_file_layer(paths.profile_file, Origin("profile", str(paths.profile_file)), paths),
        settings_file_layer(paths.config_file, Origin("file", str(paths.config_file)), paths),
        credentials_layer(paths),
        env_layer(env),
        overrides_layer(overrides or {}),
    ]
    merged: Layer = {}
    for layer in layers:
        for key, item in layer.items():
            if SETTINGS_KEYS[key].secret and isinstance(item.value, SecretStr):
                register_secret(item.value)
        merged.update(layer)
    nested: dict[str, dict[str, object]] = {}
    top: dict[str, object] = {}
    for key, item in merged.items():
        spec = SETTINGS_KEYS[key]
        if spec.section is None:
            top[spec.name] = item.value
        else:
            nested.setdefault(spec.section, {})[spec.name] = item.value
    try:
        settings = Settings.model_validate({**top, **nested})
    except pydantic.ValidationError as exc:  # pragma: no cover - each value was validated on reading
        loc = ".".join(str(part) for part in exc.errors()[0]["loc"])
        where = merged[loc].origin.where() if loc in merged else ""
        raise ConfigurationError(f"{loc}: invalid combination of settings {where}".rstrip()) from None
    origins = {key: merged[key].origin if key in merged else DEFAULT for key in SETTINGS_KEYS}
    return LoadedConfig(settings=settings, origins=MappingProxyType(origins), paths=paths)


def load_settings(
    overrides: Mapping[str, object] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    config_dir: Path | None = None,
) -> Settings:
    """The effective settings: defaults < system profile < user config file < environment < ``overrides``.

    ``overrides`` maps dotted keys (``"pipeline.mode"``, ``"data_root"``, ``"source.dir"``) to command-line
    values; ``None`` values are ignored so unset options can be passed through. ``environ`` defaults to
    :data:`os.environ`; ``config_dir`` to ``QUANTMINI_CONFIG_DIR``, ``$XDG_CONFIG_HOME/quantmini`` or
    ``~/.config/quantmini``. Any invalid file, key, value or variable raises
    :class:`~quantmini.ConfigurationError` naming it and where it came from.
    """
    return load_config(overrides, environ=environ, config_dir=config_dir).settings
