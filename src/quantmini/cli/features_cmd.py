"""``quantmini features``: the feature library — which features each set holds, how each is defined, and
which sets this configuration builds (``features.<data type>``).

The library is declared as data (:mod:`quantmini.features.library`, which imports no dataframe library),
so listing it loads neither the lake nor the data stack.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from quantmini.cli.options import DataTypeChoice

if TYPE_CHECKING:
    from rich.table import Table

    from quantmini.features.library import FeatureSet

#: What every listing says about feature values, as queries and views return them.
VALUES_NOTE = (
    "Values are stored per session, scale-free or in that session's own share basis: queries and DuckDB "
    "views return them as stored, never adjusted. Sets other than base are built only when listed in "
    "features.<data type>."
)


@click.group("features")
def features() -> None:
    """List the feature library: sets, features and their definitions."""


@features.command("list")
@click.option(
    "--data-type",
    type=DataTypeChoice(),
    default=None,
    help="Only the sets of this data type (default: every data type that has sets).",
)
@click.option("--set", "set_name", metavar="SET", help="Only this set (alpha158, alpha360, ta, base …).")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="table: the sets, then every feature with its definition; json: the same as one document.",
)
def list_cmd(data_type: str | None, set_name: str | None, output_format: str) -> None:
    """Features of the library: name, set, description and definition (Qlib expression syntax), and
    which sets are configured to be built."""
    from quantmini.config import load_settings

    chosen = _selected_sets(data_type, set_name)
    if not chosen:
        click.echo(f"{data_type} has no feature sets.")
        return
    configured = load_settings().features
    built = {(s.data_type, s.name): s.name in configured.of(s.data_type) for s in chosen}
    if output_format == "json":
        click.echo(json.dumps(_document(chosen, built), indent=2))
        return
    from rich.console import Console

    console = Console(highlight=False)
    console.print(_sets_table(chosen, built))
    console.print(_features_table(chosen))
    console.print(VALUES_NOTE, soft_wrap=True, markup=False)


def _selected_sets(data_type: str | None, set_name: str | None) -> list[FeatureSet]:
    """The sets asked for; an unknown ``--set`` is one error naming the sets there are."""
    from quantmini._exceptions import ConfigurationError
    from quantmini.features.library import feature_set, feature_sets, sets_of

    if data_type is not None:
        if set_name is not None:
            return [feature_set(data_type, set_name)]
        return list(sets_of(data_type).values())
    everything = [s for sets in feature_sets().values() for s in sets.values()]
    if set_name is None:
        return everything
    chosen = [s for s in everything if s.name == set_name]
    if not chosen:
        known = "; ".join(f"{t}: {', '.join(sets)}" for t, sets in feature_sets().items())
        raise ConfigurationError(f"no feature set {set_name!r} ({known})")
    return chosen


def _document(chosen: list[FeatureSet], built: dict[tuple[str, str], bool]) -> dict[str, object]:
    """The JSON listing: one entry per set, one per feature."""
    sets = [
        {
            "data_type": s.data_type,
            "set": s.name,
            "configured": built[(s.data_type, s.name)],
            "table": s.table(),
            "description": s.description,
            "features": len(s.features),
            "mode": s.mode,
            "history": s.history,
        }
        for s in chosen
    ]
    rows = [
        {
            "name": f.name,
            "set": s.name,
            "data_type": s.data_type,
            "description": f.description,
            "definition": f.expression,
        }
        for s in chosen
        for f in s.features
    ]
    return {"sets": sets, "features": rows, "note": VALUES_NOTE}


def _sets_table(chosen: list[FeatureSet], built: dict[tuple[str, str], bool]) -> Table:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="feature sets")
    table.add_column("data type", overflow="fold")
    table.add_column("set", no_wrap=True)
    table.add_column("configured", no_wrap=True)
    table.add_column("features", justify="right", no_wrap=True)
    table.add_column("description")
    for s in chosen:
        configured = built[(s.data_type, s.name)]
        table.add_row(
            s.data_type,
            s.name,
            "[green]yes[/]" if configured else "no",
            str(len(s.features)),
            f"{escape(s.description)} (silver/{s.table()})",
        )
    return table


def _features_table(chosen: list[FeatureSet]) -> Table:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="features")
    for name in ("name", "set", "description", "definition"):
        table.add_column(name, overflow="fold", no_wrap=name == "name")
    for s in chosen:
        for f in s.features:
            definition = f.expression if f.expression is not None else f"(column of silver/{s.table()})"
            table.add_row(f.name, s.name, escape(f.description), escape(definition))
    return table
