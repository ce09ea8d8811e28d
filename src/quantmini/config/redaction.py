"""Hiding secrets: in ``config show`` output, and in every message and log line the CLI writes.

Two mechanisms work together:

* A registry of the secret *values* this process knows. Loading the settings registers every credential
  it reads (``credentials.toml`` and the secret environment variables, even ones a higher-precedence
  variable overrides); the S3 and REST clients register the keys they are given. Values shorter than
  :data:`MIN_SECRET_LENGTH` are not registered: replacing a two-letter "secret" everywhere would mangle
  ordinary text, and such a value protects nothing anyway.
* Patterns that hide credentials whether or not they are registered: ``apiKey=...`` query parameters,
  ``Authorization: Bearer ...`` and AWS SigV4 ``Credential=<key id>/`` and ``Signature=...`` (as logged
  by botocore at debug level), and the ``<AWSAccessKeyId>`` an S3 error body may echo.

:func:`redact` applies both; :class:`RedactingFilter` applies it to every log record a handler emits.
:func:`reset_secrets` empties the registry (a test hook).
"""

from __future__ import annotations

import logging
import re
import threading
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from pydantic import SecretStr

    from quantmini.config.settings import Settings

REDACTED = "***"
#: Registered values shorter than this are ignored (see the module docstring).
MIN_SECRET_LENGTH = 4

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)(\bapi_?key=)[^&\s\"'<>#]+"), rf"\g<1>{REDACTED}"),
    (re.compile(r"(?i)([\"']api_?key[\"']\s*:\s*[\"'])[^\"']+"), rf"\g<1>{REDACTED}"),
    (re.compile(r"(?i)(\bBearer\s+)[^\s\"',;]+"), rf"\g<1>{REDACTED}"),
    # SigV4 header ("Credential=AKIA.../20261201/...") and presigned URLs ("X-Amz-Credential=AKIA...%2F").
    (re.compile(r"(?i)(Credential=)[^/%\s,\"'&]+"), rf"\g<1>{REDACTED}"),
    # "Signature=<hex>" in headers and URLs; botocore also logs "Signature:\n<hex>".
    (re.compile(r"(?i)(\bSignature(?:=|:\s*))[^\s,\"'&<]+"), rf"\g<1>{REDACTED}"),
    (re.compile(r"(<AWSAccessKeyId>)[^<]*"), rf"\g<1>{REDACTED}"),
)


class SecretRegistry:
    """Known secret values and :meth:`redact`, which hides them and the credential patterns."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._environments: list[dict[str, str]] = []
        # Re-entrant: resolving a pending environment adds values while the lock is held.
        self._lock = threading.RLock()

    def add(self, value: str | SecretStr | None) -> None:
        """Register ``value`` (and its URL-encoded form); ``None`` and too-short values are ignored."""
        if value is not None and not isinstance(value, str):
            value = value.get_secret_value()
        if value is None or len(value) < MIN_SECRET_LENGTH:
            return
        variants = {value, quote(value, safe="")}
        with self._lock:
            if not variants <= self._values:
                self._values |= variants
                self._pattern = None

    def add_environment(self, environ: Mapping[str, str]) -> None:
        """Register the secret variables set in ``environ`` (as it is now) before the next redaction.

        Which variables are secret is known from the settings model; looking them up when something is
        first redacted spares the commands that never redact (``--help``) the import of that model.
        """
        snapshot = dict(environ)
        with self._lock:
            self._environments.append(snapshot)
            self._pattern = None

    def clear(self) -> None:
        """Forget every registered value."""
        with self._lock:
            self._values.clear()
            self._environments.clear()
            self._pattern = None

    def __contains__(self, value: object) -> bool:
        with self._lock:
            self._resolve_environments()
            return value in self._values

    def redact(self, text: str) -> str:
        """``text`` with every registered value and every credential pattern replaced by ``***``."""
        pattern = self._compiled()
        if pattern is not None:
            text = pattern.sub(REDACTED, text)
        for regex, replacement in _PATTERNS:
            text = regex.sub(replacement, text)
        return text

    def _resolve_environments(self) -> None:
        """Register the secrets of the environments :meth:`add_environment` left pending."""
        if not self._environments:
            return
        from quantmini.config.keys import SETTINGS_KEYS  # the settings model: see add_environment

        names = [name for spec in SETTINGS_KEYS.values() if spec.secret for name in spec.env_names]
        pending, self._environments = self._environments, []
        for environ in pending:
            for name in names:
                self.add(environ.get(name))

    def _compiled(self) -> re.Pattern[str] | None:
        with self._lock:
            self._resolve_environments()
            if self._pattern is None and self._values:
                # Longest first, so a secret that contains another is hidden whole.
                ordered = sorted(self._values, key=len, reverse=True)
                self._pattern = re.compile("|".join(re.escape(v) for v in ordered))
            return self._pattern


_REGISTRY = SecretRegistry()


def register_secret(value: str | SecretStr | None) -> None:
    """Add ``value`` to the process-wide registry (see :meth:`SecretRegistry.add`)."""
    _REGISTRY.add(value)


def register_environment_secrets(environ: Mapping[str, str]) -> None:
    """Register the value of every secret variable set in ``environ`` (``POLYGON_API_KEY`` …); they are
    hidden from the next redaction on (see :meth:`SecretRegistry.add_environment`)."""
    _REGISTRY.add_environment(environ)


def redact(text: str) -> str:
    """``text`` with known secrets and credential patterns hidden (see the module docstring)."""
    return _REGISTRY.redact(text)


def reset_secrets() -> None:
    """Empty the process-wide registry (for tests)."""
    _REGISTRY.clear()


def redacted_traceback(exc: BaseException) -> str:
    """The full traceback of ``exc`` (with its chained causes), redacted."""
    return redact("".join(traceback.format_exception(exc)))


class RedactingFilter(logging.Filter):
    """A handler filter that renders each record's message with its arguments, its traceback and its
    stack, redacts them and stores them back; it never drops a record.

    Installed on a handler it covers every record the handler emits, including records propagated from
    third-party loggers (a filter on a *logger* would not see those).
    """

    def __init__(self, registry: SecretRegistry | None = None) -> None:
        super().__init__()
        self._registry = registry or _REGISTRY

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact ``record`` in place; always keep it."""
        try:
            message = record.getMessage()
        except Exception:  # a malformed format string: keep the evidence, redacted
            message = f"{record.msg!s} {record.args!r}"
        record.msg = self._registry.redact(message)
        record.args = ()
        if record.exc_info is not None and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(record.exc_info[1])).rstrip("\n")
        # Without exc_info a formatter (or a handler such as rich's) cannot re-render the raw traceback.
        record.exc_info = None
        if record.exc_text:
            record.exc_text = self._registry.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self._registry.redact(record.stack_info)
        return True


def redacted_values(settings: Settings) -> dict[str, Any]:
    """``{dotted key: plain value}`` in model order; paths as strings, secrets redacted."""
    from quantmini.config.keys import SETTINGS_KEYS  # pydantic: kept out of the CLI's start-up

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
    from quantmini.config.keys import SETTINGS_KEYS

    nested: dict[str, Any] = {}
    for key, value in redacted_values(settings).items():
        spec = SETTINGS_KEYS[key]
        if spec.section is None:
            nested[spec.name] = value
        else:
            nested.setdefault(spec.section, {})[spec.name] = value
    return nested
