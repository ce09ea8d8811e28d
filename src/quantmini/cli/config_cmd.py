"""``quantmini config``: write a template, show/get/set settings, profile the machine."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import click

from quantmini._exceptions import ConfigurationError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from quantmini.config.loader import LoadedConfig

# The settings model (pydantic) and rich are imported by the commands that use them: ``quantmini config
# --help`` and the rest of the CLI start without them.


def _console() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False)


def _plain(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):  # as `config set` takes it: base,alpha158
        return ",".join(_plain(item) for item in value)
    return str(value)


@click.group("config")
def config() -> None:
    """Show and change settings (config.toml), and profile this machine."""


@config.command("init")
@click.option("--force", is_flag=True, help="Overwrite an existing config.toml.")
def init_cmd(force: bool) -> None:
    """Write a commented config.toml listing every key with its default."""
    from quantmini.config.config_file import render_template
    from quantmini.config.sources import config_paths
    from quantmini.io.atomic import write_text_atomic

    paths = config_paths(os.environ)
    if paths.config_file.exists() and not force:
        raise ConfigurationError(f"{paths.config_file} already exists; use --force to overwrite it")
    write_text_atomic(paths.config_file, render_template(credentials_file=paths.credentials_file))
    click.echo(f"wrote {paths.config_file}")


@config.command("show")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "toml", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
)
def show_cmd(fmt: str) -> None:
    """Effective settings and where each value came from (secrets redacted)."""
    from quantmini.config.keys import SETTINGS_KEYS
    from quantmini.config.loader import load_config
    from quantmini.config.redaction import redacted_settings

    loaded = load_config()
    if fmt == "json":
        sources = {key: loaded.origin(key).describe() for key in SETTINGS_KEYS}
        payload = {"settings": redacted_settings(loaded.settings), "sources": sources}
        click.echo(json.dumps(payload, indent=2))
    elif fmt == "toml":
        click.echo(_as_toml(loaded), nl=False)
    else:
        _console().print(_as_table(loaded))


def _as_table(loaded: LoadedConfig) -> Table:
    from rich.table import Table

    from quantmini.config.redaction import redacted_values

    p = loaded.paths
    table = Table(
        title="quantmini settings",
        caption=f"config: {p.config_file}\nprofile: {p.profile_file}\ncredentials: {p.credentials_file}",
    )
    table.add_column("key", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_column("source", overflow="fold")
    for key, value in redacted_values(loaded.settings).items():
        shown = "(not set)" if value is None else _plain(value)
        table.add_row(key, shown, loaded.origin(key).describe())
    return table


def _as_toml(loaded: LoadedConfig) -> str:
    from quantmini.config.config_file import toml_line
    from quantmini.config.keys import SETTINGS_KEYS
    from quantmini.config.redaction import redacted_values

    lines: list[str] = []
    section: str | None = None
    for key, value in redacted_values(loaded.settings).items():
        spec = SETTINGS_KEYS[key]
        if spec.section != section:
            section = spec.section
            lines += ["", f"[{section}]"]
        source = loaded.origin(key).describe()
        if spec.secret or value is None:
            # Not pasteable on purpose: secrets and unset keys have no place in config.toml.
            lines.append(f"# {spec.name} = {'(not set)' if value is None else value}  # {source}")
        else:
            lines.append(f"{toml_line(spec.name, value)}  # {source}")
    return "\n".join(lines).lstrip("\n") + "\n"


@config.command("get")
@click.argument("key")
def get_cmd(key: str) -> None:
    """Print the effective value of KEY (e.g. pipeline.mode); secrets print as ***."""
    from quantmini.config.keys import get_key
    from quantmini.config.loader import load_config
    from quantmini.config.redaction import redacted_values

    spec = get_key(key)
    loaded = load_config()
    click.echo(_plain(redacted_values(loaded.settings)[spec.key]))


@config.command("set", context_settings={"ignore_unknown_options": True})
@click.argument("key")
@click.argument("value")
def set_cmd(key: str, value: str) -> None:
    """Validate VALUE for KEY and write it to config.toml (secrets are refused)."""
    from quantmini.config.config_file import set_config_value
    from quantmini.config.keys import SETTINGS_KEYS
    from quantmini.config.sources import config_paths

    paths = config_paths(os.environ)
    parsed = set_config_value(paths, key, value)
    click.echo(f"set {key} = {_plain(parsed)} in {paths.config_file}")
    shadowing = [name for name in SETTINGS_KEYS[key].env_names if os.environ.get(name)]
    if shadowing:
        click.echo(f"note: env {shadowing[0]} is set and takes precedence over config.toml", err=True)


@config.command("unset")
@click.argument("key")
def unset_cmd(key: str) -> None:
    """Remove KEY from config.toml so lower layers (profile, default) apply again."""
    from quantmini.config.config_file import unset_config_value
    from quantmini.config.sources import config_paths

    paths = config_paths(os.environ)
    if unset_config_value(paths, key):
        click.echo(f"removed {key} from {paths.config_file}")
    else:
        click.echo(f"{key} is not set in {paths.config_file}")


@config.command("profile")
@click.option("--write", "write", is_flag=True, help="Write the recommendation to profile.toml.")
def profile_cmd(write: bool) -> None:
    """Measure this machine and recommend settings (profile.toml never overrides config.toml)."""
    from rich.table import Table

    from quantmini.config.loader import load_config
    from quantmini.config.profile import detect_facts, recommend, write_profile
    from quantmini.config.redaction import redacted_values

    loaded = load_config()
    facts = detect_facts(loaded.settings.data_root)
    recommendation = recommend(facts)
    console = _console()
    measured = Table(title="system facts", show_header=False)
    measured.add_row("usable CPU cores", str(facts.cpu_count))
    measured.add_row("memory", f"{facts.memory_total_gb:.1f} GB")
    measured.add_row("memory available", f"{facts.memory_available_gb:.1f} GB")
    measured.add_row("free disk", f"{facts.disk_free_gb:.1f} GB at {facts.disk_path}")
    console.print(measured)
    effective = redacted_values(loaded.settings)
    advice = Table(title="recommended settings")
    for column in ("key", "recommended", "effective now", "source"):
        advice.add_column(column, overflow="fold")
    for key, value in recommendation.items():
        advice.add_row(key, _plain(value), _plain(effective[key]), loaded.origin(key).describe())
    console.print(advice)
    if write:
        write_profile(loaded.paths.profile_file, facts)
        click.echo(f"wrote {loaded.paths.profile_file} (config.toml and the environment take precedence)")
