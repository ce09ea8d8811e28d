"""The user's ``config.toml``: a documented template, and editing one key while keeping everything else.

Edits change only the line of the key (or add one next to its commented default), so the user's comments
and other keys survive; the result is parsed back and compared with what was intended before it is
written atomically.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path

import tomli_w

from quantmini._exceptions import ConfigurationError
from quantmini.config.keys import SETTINGS_KEYS, KeySpec, get_key, secret_hint
from quantmini.config.provenance import Origin
from quantmini.config.settings import Settings
from quantmini.config.sources import ConfigPaths, flatten_toml, read_toml, settings_file_layer
from quantmini.io.atomic import write_text_atomic

SET_ORIGIN = Origin("cli", "`quantmini config set`")

_HEADER = re.compile(r"^\s*\[\s*([A-Za-z0-9_-]+)\s*\]\s*(#.*)?$")


def toml_value(value: object) -> object:
    """A validated setting as a TOML value (paths become strings)."""
    return str(value) if isinstance(value, Path) else value


def toml_line(name: str, value: object) -> str:
    """``name = value`` in TOML syntax, without a newline (a mapping as an inline table, a list inline)."""
    if isinstance(value, dict):
        items = ", ".join(toml_line(key, item) for key, item in value.items())
        return f"{toml_line(name, 0).rsplit('=', 1)[0]}= {{{' ' + items + ' ' if items else ''}}}"
    if isinstance(value, list | tuple):  # one line: `stocks_daily = ["base", "ta"]`
        items = ", ".join(toml_line("x", item).split("=", 1)[1].strip() for item in value)
        return f"{toml_line(name, 0).rsplit('=', 1)[0]}= [{items}]"
    return tomli_w.dumps({name: toml_value(value)}).rstrip("\n")


def render_template(values: Mapping[str, object] | None = None, credentials_file: Path | None = None) -> str:
    """A ``config.toml`` listing every non-secret key with its description, env names and default.

    Keys in ``values`` (dotted) are written as active lines; every other key is a commented default.
    """
    values = values or {}
    secrets = [s for s in SETTINGS_KEYS.values() if s.secret]
    where = str(credentials_file) if credentials_file else "credentials.toml beside this file"
    out = [
        "# quantmini configuration.",
        "#",
        "# Precedence, lowest first: defaults < system profile (profile.toml) < this file < environment",
        "# variables < command-line options. Every key is listed with its default, commented out: uncomment",
        "# a line or run `quantmini config set KEY VALUE`. Unknown keys are errors.",
        "#",
        "# Secrets do not belong here. Set them in the environment:",
        "#   " + ", ".join(s.env_names[-1] for s in secrets),
        f"# or put {', '.join(s.name for s in secrets)} in {where}.",
    ]
    section: str | None = None
    for key, spec in SETTINGS_KEYS.items():
        if spec.secret:
            continue
        if spec.section != section:
            section = spec.section
            doc = (Settings.model_fields[section].annotation.__doc__ or "").strip() if section else ""
            out += ["", f"[{section}]"] + ([f"# {doc}"] if doc else [])
        out.append("")
        out.append(f"# {spec.description} (env {', '.join(spec.env_names[::-1])})")
        if key in values:
            out.append(toml_line(spec.name, values[key]))
        elif spec.default is None:
            out.append(f"# {spec.name} = ...    (not set by default)")
        else:
            out.append(f"# {toml_line(spec.name, spec.default)}")
    return "\n".join(out) + "\n"


def set_config_value(paths: ConfigPaths, key: str, raw: str) -> object:
    """Validate ``raw`` for ``key`` and write it to ``config.toml``; return the validated value.

    Other keys and comments are kept; a missing file is created from the template. Secrets are refused.
    """
    spec = get_key(key, SET_ORIGIN)
    if spec.secret:
        raise ConfigurationError(
            f"{key} is a secret and is never written to config.toml: "
            f"{secret_hint(spec, paths.credentials_file)}"
        )
    value = spec.validate(raw, SET_ORIGIN)
    current = _current(paths)
    text = (
        paths.config_file.read_text("utf-8")
        if current is not None
        else render_template(credentials_file=paths.credentials_file)
    )
    intended = {**(current or {}), key: toml_value(value)}
    _write(paths, set_line(text, spec, toml_line(spec.name, value)), intended)
    return value


def unset_config_value(paths: ConfigPaths, key: str) -> bool:
    """Remove ``key`` from ``config.toml``; return whether it was there."""
    spec = get_key(key, SET_ORIGIN)
    current = _current(paths)
    if current is None or key not in current:
        return False
    intended = {k: v for k, v in current.items() if k != key}
    _write(paths, remove_line(paths.config_file.read_text("utf-8"), spec), intended)
    return True


def _current(paths: ConfigPaths) -> dict[str, object] | None:
    """The file's keys as written (validated first, so a broken file is reported, not edited)."""
    origin = Origin("file", str(paths.config_file))
    settings_file_layer(paths.config_file, origin, paths)
    data = read_toml(paths.config_file)
    return None if data is None else dict(flatten_toml(data, origin))


def _write(paths: ConfigPaths, text: str, intended: Mapping[str, object]) -> None:
    origin = Origin("file", str(paths.config_file))
    try:
        edited = dict(flatten_toml(tomllib.loads(text), origin))
    except tomllib.TOMLDecodeError:
        edited = None
    if edited != dict(intended):
        # An unusual layout (dotted keys, multi-line strings) defeated the line edit: rewrite the file.
        text = render_template(intended, paths.credentials_file)
    write_text_atomic(paths.config_file, text)


def set_line(text: str, spec: KeySpec, line: str) -> str:
    """``text`` with ``spec``'s active line replaced by ``line``, or ``line`` added in its section."""
    lines = text.splitlines()
    span = _section_span(lines, spec.section)
    if span is None:
        body = text.rstrip("\n")
        return f"{body}\n\n[{spec.section}]\n{line}\n" if body else f"[{spec.section}]\n{line}\n"
    start, end = span
    active = re.compile(rf"^\s*{re.escape(spec.name)}\s*=")
    commented = re.compile(rf"^\s*#\s*{re.escape(spec.name)}\s*=")
    for i in range(start, end):
        if active.match(lines[i]):
            lines[i] = line
            return "\n".join(lines) + "\n"
    for i in range(start, end):
        if commented.match(lines[i]):
            lines.insert(i + 1, line)
            return "\n".join(lines) + "\n"
    at = end
    while at > start and not lines[at - 1].strip():
        at -= 1
    lines.insert(at, line)
    return "\n".join(lines) + "\n"


def remove_line(text: str, spec: KeySpec) -> str:
    """``text`` without ``spec``'s active line."""
    lines = text.splitlines()
    span = _section_span(lines, spec.section)
    if span is not None:
        active = re.compile(rf"^\s*{re.escape(spec.name)}\s*=")
        lines = [ln for i, ln in enumerate(lines) if not (span[0] <= i < span[1] and active.match(ln))]
    return "\n".join(lines) + "\n"


def _section_span(lines: list[str], section: str | None) -> tuple[int, int] | None:
    """``[start, end)`` line range of a section's body (``None`` section: before the first header)."""
    headers = [(i, m.group(1)) for i, ln in enumerate(lines) if (m := _HEADER.match(ln))]
    if section is None:
        return 0, headers[0][0] if headers else len(lines)
    for n, (i, name) in enumerate(headers):
        if name == section:
            end = headers[n + 1][0] if n + 1 < len(headers) else len(lines)
            return i + 1, end
    return None
