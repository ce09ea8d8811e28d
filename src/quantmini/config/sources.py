"""Read each configuration layer into flat ``{dotted key: SettingValue}`` maps.

Layers: the system profile (``profile.toml``), the user file (``config.toml``), the credentials file
(``credentials.toml``), the environment and command-line overrides. Every value is validated where it is
read, so an error names the file, variable or option it came from.
"""

from __future__ import annotations

import logging
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantmini._exceptions import ConfigurationError
from quantmini.config.keys import (
    CONFIG_DIR_ENV,
    CREDENTIALS_FILE_ENV,
    CREDENTIALS_SECTION,
    ENV_PREFIX,
    SECTIONS,
    SETTINGS_KEYS,
    KeySpec,
    get_key,
    secret_hint,
    suggest,
)
from quantmini.config.provenance import COMMAND_LINE, Origin

logger = logging.getLogger(__name__)

CONFIG_FILE_NAME = "config.toml"
PROFILE_FILE_NAME = "profile.toml"
CREDENTIALS_FILE_NAME = "credentials.toml"

_SECRET_NAMES = frozenset(
    {"access_key_id", "secret_access_key", "aws_access_key_id", "aws_secret_access_key", "key", "secret"}
)


@dataclass(frozen=True)
class SettingValue:
    """A validated value and where it came from."""

    value: object
    origin: Origin


Layer = dict[str, SettingValue]


@dataclass(frozen=True)
class ConfigPaths:
    """Where quantmini looks for its files."""

    config_dir: Path
    config_file: Path
    profile_file: Path
    credentials_file: Path
    credentials_file_explicit: bool
    """True when ``QUANTMINI_CREDENTIALS_FILE`` names the file (then it must exist)."""


def config_paths(environ: Mapping[str, str], config_dir: Path | None = None) -> ConfigPaths:
    """Resolve the config directory: argument, ``QUANTMINI_CONFIG_DIR``, ``$XDG_CONFIG_HOME/quantmini``,
    ``~/.config/quantmini``; and the credentials file (``QUANTMINI_CREDENTIALS_FILE`` overrides it)."""
    if config_dir is None:
        if environ.get(CONFIG_DIR_ENV):
            config_dir = Path(environ[CONFIG_DIR_ENV]).expanduser()
        elif environ.get("XDG_CONFIG_HOME"):
            config_dir = Path(environ["XDG_CONFIG_HOME"]).expanduser() / "quantmini"
        else:
            home = Path(environ["HOME"]) if environ.get("HOME") else Path.home()
            config_dir = home / ".config" / "quantmini"
    explicit = bool(environ.get(CREDENTIALS_FILE_ENV))
    credentials = (
        Path(environ[CREDENTIALS_FILE_ENV]).expanduser() if explicit else config_dir / CREDENTIALS_FILE_NAME
    )
    return ConfigPaths(
        config_dir=config_dir,
        config_file=config_dir / CONFIG_FILE_NAME,
        profile_file=config_dir / PROFILE_FILE_NAME,
        credentials_file=credentials,
        credentials_file_explicit=explicit,
    )


def read_toml(path: Path) -> dict[str, Any] | None:
    """Parse a TOML file; ``None`` if it does not exist. Errors name the file and the line."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigurationError(f"cannot parse {path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"cannot parse {path}: {exc}") from None


def settings_file_layer(path: Path, origin: Origin, paths: ConfigPaths) -> Layer:
    """The keys of ``config.toml`` or ``profile.toml``: known keys only, and no secrets."""
    data = read_toml(path)
    if data is None:
        return {}
    layer: Layer = {}
    for key, value in flatten_toml(data, origin):
        spec = get_key(key, origin)
        if spec.secret:
            raise ConfigurationError(
                f"{key} is a secret and is not read from {path}: {secret_hint(spec, paths.credentials_file)}"
            )
        layer[key] = SettingValue(spec.validate(value, origin), origin)
    return layer


def flatten_toml(data: Mapping[str, Any], origin: Origin) -> list[tuple[str, object]]:
    """``[(dotted key, value)]`` of a settings TOML document; unknown keys and sections are errors."""
    items: list[tuple[str, object]] = []
    for top, value in data.items():
        if top in SECTIONS:
            if not isinstance(value, dict):
                raise ConfigurationError(f"{top!r} must be a table ([{top}]) {origin.where()}")
            for name, sub in value.items():
                key = f"{top}.{name}"
                if key not in SETTINGS_KEYS or (isinstance(sub, dict) and not SETTINGS_KEYS[key].is_mapping):
                    _unknown(key, origin)
                items.append((key, sub))
        elif isinstance(value, dict):
            first = next(iter(value), None)
            _unknown(f"{top}.{first}" if first is not None else top, origin)
        else:
            if top not in SETTINGS_KEYS:
                _unknown(top, origin)
            items.append((top, value))
    return items


def _unknown(key: str, origin: Origin) -> None:
    name = key.rsplit(".", 1)[-1]
    if name in _SECRET_NAMES or any(name == s.name for s in SETTINGS_KEYS.values() if s.secret):
        raise ConfigurationError(
            f"unknown key {key!r} {origin.where()}: secrets go in the environment or credentials.toml "
            f"(keys: {', '.join(s.name for s in SETTINGS_KEYS.values() if s.secret)})"
        )
    raise ConfigurationError(f"unknown key {key!r} {origin.where()}{suggest(key, SETTINGS_KEYS)}")


def credentials_layer(paths: ConfigPaths) -> Layer:
    """The secrets of the credentials file: ``s3_access_key_id``, ``s3_secret_access_key``, ``api_key``,
    at the top level or under ``[credentials]``."""
    path = paths.credentials_file
    origin = Origin("file", str(path))
    data = read_toml(path)
    if data is None:
        if paths.credentials_file_explicit:
            raise ConfigurationError(f"{CREDENTIALS_FILE_ENV} names {path}, which does not exist")
        return {}
    _warn_if_readable_by_others(path)
    section = data.pop(CREDENTIALS_SECTION, {})
    if not isinstance(section, dict):
        raise ConfigurationError(f"{CREDENTIALS_SECTION!r} must be a table ([credentials]) in {path}")
    names = [s.name for s in SETTINGS_KEYS.values() if s.secret]
    layer: Layer = {}
    for where, table in (("", data), (f"{CREDENTIALS_SECTION}.", section)):
        for name, value in table.items():
            if name not in names or isinstance(value, dict):
                raise ConfigurationError(
                    f"unknown key {where + name!r} in {path} (it may hold only {', '.join(names)})"
                )
            key = f"{CREDENTIALS_SECTION}.{name}"
            if key in layer:
                raise ConfigurationError(f"{name} is set twice in {path}")
            layer[key] = SettingValue(SETTINGS_KEYS[key].validate(value, origin), origin)
    return layer


def _warn_if_readable_by_others(path: Path) -> None:
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        logger.warning("%s is readable by other users; consider chmod 600", path)


def env_layer(environ: Mapping[str, str]) -> Layer:
    """Values from ``QUANTMINI_<SECTION>_<KEY>`` and the conventional aliases (``DATA_ROOT``,
    ``PIPELINE_MODE``, ``POLYGON_*``). Empty variables count as unset; unknown ``QUANTMINI_*`` are errors."""
    known = {CONFIG_DIR_ENV, CREDENTIALS_FILE_ENV}
    for spec in SETTINGS_KEYS.values():
        known.update(spec.env_names)
    for name in sorted(environ):
        if name.startswith(ENV_PREFIX) and name not in known:
            raise ConfigurationError(
                f"unknown environment variable {name}{suggest(name, known)}; "
                f"settings variables are {ENV_PREFIX}<SECTION>_<KEY>, e.g. {ENV_PREFIX}PIPELINE_MODE"
            )
    layer: Layer = {}
    for key, spec in SETTINGS_KEYS.items():
        found = _first_set(spec, environ)
        if found is not None:
            origin = Origin("env", found)
            layer[key] = SettingValue(spec.validate(environ[found], origin), origin)
    return layer


def _first_set(spec: KeySpec, environ: Mapping[str, str]) -> str | None:
    for name in spec.env_names:
        if environ.get(name, "") != "":
            return name
    return None


def overrides_layer(overrides: Mapping[str, object]) -> Layer:
    """Command-line values by dotted key; ``None`` means "not given". Secrets are refused."""
    layer: Layer = {}
    for key, value in overrides.items():
        if value is None:
            continue
        spec = get_key(key, COMMAND_LINE)
        if spec.secret:
            raise ConfigurationError(
                f"{key} is not accepted on the command line (it would show in shell history): "
                f"{secret_hint(spec)}"
            )
        layer[key] = SettingValue(spec.validate(value, COMMAND_LINE), COMMAND_LINE)
    return layer
