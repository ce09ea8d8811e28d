"""Every settings key, derived from the model: dotted name, default, description, env names, secrecy.

One value is validated at a time through the model that declares it, so an error names the exact key,
the bad value (never a secret's) and where it came from.
"""

from __future__ import annotations

import difflib
import json
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pydantic
from pydantic import BaseModel

from quantmini._exceptions import ConfigurationError
from quantmini.config.provenance import Origin
from quantmini.config.settings import Settings

ENV_PREFIX = "QUANTMINI_"
CONFIG_DIR_ENV = "QUANTMINI_CONFIG_DIR"
CREDENTIALS_FILE_ENV = "QUANTMINI_CREDENTIALS_FILE"
CREDENTIALS_SECTION = "credentials"

#: Conventional variable names accepted besides ``QUANTMINI_<SECTION>_<KEY>`` (which wins if both are set).
ENV_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "data_root": "DATA_ROOT",
        "pipeline.mode": "PIPELINE_MODE",
        "s3.endpoint": "POLYGON_S3_ENDPOINT",
        "s3.bucket": "POLYGON_S3_BUCKET",
        "api.base_url": "POLYGON_API_BASE_URL",
        "credentials.s3_access_key_id": "POLYGON_S3_ACCESS_KEY_ID",
        "credentials.s3_secret_access_key": "POLYGON_S3_SECRET_ACCESS_KEY",
        "credentials.api_key": "POLYGON_API_KEY",
    }
)


@dataclass(frozen=True)
class KeySpec:
    """One settable key of :class:`~quantmini.config.settings.Settings`."""

    key: str
    section: str | None
    name: str
    model: type[BaseModel]
    default: object
    description: str
    secret: bool
    is_path: bool
    #: A table of values (``options.dividend_yields``): an environment variable gives it as JSON.
    is_mapping: bool
    env_names: tuple[str, ...]
    """Variables that set this key, highest precedence first."""

    def validate(self, value: object, origin: Origin) -> object:
        """The value converted by the model, or :class:`ConfigurationError` naming key, value and origin."""
        if self.is_path and isinstance(value, str):
            value = os.path.expanduser(value)
        if self.is_mapping and isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise ConfigurationError(
                    f'{self.key}: {value!r} is not a JSON object such as {{"SPX": 0.013}} ({origin.where()})'
                ) from None
        try:
            parsed = self.model.model_validate({self.name: value})
        except pydantic.ValidationError as exc:
            raise ConfigurationError(f"{self.key}: {self._explain(exc, value)} ({origin.where()})") from None
        return getattr(parsed, self.name)

    def _explain(self, exc: pydantic.ValidationError, value: object) -> str:
        error = exc.errors(include_url=False, include_input=False)[0]
        shown = "the value" if self.secret else repr(value)
        ctx: dict[str, Any] = dict(error.get("ctx") or {})
        kind = error["type"]
        if kind == "literal_error":
            return f"{shown} is not one of {', '.join(map(str, self.choices()))}"
        bounds = {
            "greater_than_equal": ("is below the minimum", "ge"),
            "greater_than": ("must be greater than", "gt"),
            "less_than_equal": ("is above the maximum", "le"),
            "less_than": ("must be less than", "lt"),
        }
        if kind in bounds:
            phrase, name = bounds[kind]
            return f"{shown} {phrase} {ctx[name]}"
        plain = {
            "int_parsing": "is not a whole number",
            "int_type": "is not a whole number",
            "int_from_float": "is not a whole number",
            "float_parsing": "is not a number",
            "float_type": "is not a number",
            "bool_parsing": "is not a boolean (use true or false)",
            "bool_type": "is not a boolean (use true or false)",
            "string_type": "is not a string",
            "path_type": "is not a path",
        }
        if kind in plain:
            return f"{shown} {plain[kind]}"
        if kind == "value_error" and "error" in ctx:  # a validator's own message, without pydantic's prefix
            return f"{shown} is invalid: {ctx['error']}"
        return f"{shown} is invalid: {error['msg']}"

    def choices(self) -> tuple[object, ...]:
        """The allowed values of a ``Literal`` key, else ``()``."""
        annotation = self.model.model_fields[self.name].annotation
        if typing.get_origin(annotation) is typing.Literal:
            return typing.get_args(annotation)
        return ()


def _build() -> Mapping[str, KeySpec]:
    specs: dict[str, KeySpec] = {}
    for top, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            for name, sub in annotation.model_fields.items():
                specs[f"{top}.{name}"] = _spec(f"{top}.{name}", top, name, annotation, sub)
        else:
            specs[top] = _spec(top, None, top, Settings, field)
    return MappingProxyType(specs)


def _spec(
    key: str, section: str | None, name: str, model: type[BaseModel], field: pydantic.fields.FieldInfo
) -> KeySpec:
    derived = ENV_PREFIX + key.replace(".", "_").upper()
    alias = ENV_ALIASES.get(key)
    return KeySpec(
        key=key,
        section=section,
        name=name,
        model=model,
        default=field.get_default(call_default_factory=True),
        description=field.description or "",
        secret=section == CREDENTIALS_SECTION,
        is_path=Path in (field.annotation, *typing.get_args(field.annotation)),
        is_mapping=typing.get_origin(field.annotation) is dict,
        env_names=(derived, alias) if alias else (derived,),
    )


#: Every key, by dotted name, in model order.
SETTINGS_KEYS: Mapping[str, KeySpec] = _build()

#: Section names (tables in TOML files).
SECTIONS: tuple[str, ...] = tuple(dict.fromkeys(s.section for s in SETTINGS_KEYS.values() if s.section))

#: Keys that hold secrets (``credentials.*``).
SECRET_KEYS: tuple[str, ...] = tuple(k for k, s in SETTINGS_KEYS.items() if s.secret)


def get_key(key: str, origin: Origin | None = None) -> KeySpec:
    """The spec of ``key``, or :class:`ConfigurationError` with the closest known key."""
    spec = SETTINGS_KEYS.get(key)
    if spec is None:
        where = f" {origin.where()}" if origin else ""
        raise ConfigurationError(f"unknown key {key!r}{where}{suggest(key, SETTINGS_KEYS)}")
    return spec


def suggest(word: str, known: typing.Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when ``word`` is close to a known name, else ``''``."""
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def secret_hint(spec: KeySpec, credentials_file: Path | None = None) -> str:
    """Where a secret may be given: its environment variables and the credentials file."""
    names = " or ".join(spec.env_names[::-1])
    where = f"the credentials file {credentials_file}" if credentials_file else "credentials.toml"
    return f"set {names} in the environment or put {spec.name} in {where}"
