"""``quantmini schema``: the declared schema of every table, and stored files checked against it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from quantmini.cli.options import DataTypeChoice, data_root_option

_LAYERS = ("bronze", "silver", "quarantine", "gold", "reference")


@click.group()
def schema() -> None:
    """Declared table schemas and stored files against them."""


@schema.command()
@click.option("--data-type", type=DataTypeChoice(), help="Dataset whose tables to show (not for reference).")
@click.option("--layer", type=click.Choice(_LAYERS), required=True, help="Layer of the tables.")
@click.option("--table", "table_name", metavar="NAME", help="Only this table (silver: e.g. universes).")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="table: one table per stored table; json: the same as one document.",
)
def show(data_type: str | None, layer: str, table_name: str | None, output_format: str) -> None:
    """Columns of a layer's tables: name, Arrow type, nullability and what each holds.

    Silver lists the data type's main table and every other silver table it declares (feature sets
    included); gold lists the fields of each Qlib root; reference the lake-wide tables (bronze reference
    tables, adjustment factors, corporate events, entities).
    """
    from quantmini._exceptions import ConfigurationError
    from quantmini.datasets import get_spec
    from quantmini.datasets.columns import layer_tables, reference_tables

    if layer == "reference":
        tables = reference_tables()
    elif data_type is None:
        raise ConfigurationError(f"--data-type is required for the {layer} layer")
    else:
        tables = layer_tables(get_spec(data_type), layer)  # type: ignore[arg-type]
    if table_name is not None:
        names = [t.name for t in tables]
        tables = [t for t in tables if t.name == table_name]
        if not tables:
            known = ", ".join(names) or "none"
            raise ConfigurationError(
                f"--table: {data_type} has no {layer} table {table_name!r} (tables: {known})"
            )
    if not tables:
        click.echo(f"{data_type} declares no {layer} tables.")
        return
    if output_format == "json":
        document = [
            {
                "layer": t.layer,
                "table": t.name,
                "path": t.directory,
                "columns": [
                    {"name": f.name, "type": str(f.type), "nullable": f.nullable, "doc": t.doc(f.name)}
                    for f in t.schema
                ],
            }
            for t in tables
        ]
        click.echo(json.dumps(document, indent=2))
        return
    from rich.markup import escape
    from rich.table import Table

    from quantmini.cli.common import console

    for t in tables:
        out = Table(title=escape(f"{t.layer} {t.name} ({t.directory})"), title_justify="left")
        for name in ("column", "type", "null"):
            out.add_column(name, no_wrap=True)
        out.add_column("meaning", overflow="fold")
        for f in t.schema:
            out.add_row(
                escape(f.name), escape(str(f.type)), "yes" if f.nullable else "no", escape(t.doc(f.name))
            )
        console.print(out)


@schema.command()
@click.option("--data-type", type=DataTypeChoice(), help="Only this dataset (default: every one).")
@click.option(
    "--layer",
    type=click.Choice(["bronze", "silver", "quarantine", "reference"]),
    help="Only this layer (default: bronze, silver, quarantine and the reference tables).",
)
@data_root_option
def check(data_type: str | None, layer: str | None, data_root: Path | None) -> None:
    """Every stored partition file's schema (Parquet footer only) against the spec.

    Missing columns, unexpected columns (drift), type changes and nulls allowed where the spec declares
    a column not null: one line per problem naming the file. Exits 1 when there is any.
    """
    from quantmini.cli.common import console, err_console, settings_from
    from quantmini.datasets import DATASETS, get_spec
    from quantmini.io.lake import Lake
    from quantmini.pipeline.schema_check import FILE_LAYERS, check_schemas

    lake = Lake(settings_from(data_root).data_root)
    specs = [get_spec(data_type)] if data_type else list(DATASETS.values())
    report = check_schemas(lake, specs, [layer] if layer else FILE_LAYERS)  # type: ignore[list-item]
    for finding in report.findings:
        err_console.print(
            f"schema: {finding.path.relative_to(lake.root)}: {finding.problem}", soft_wrap=True, markup=False
        )
    bad = len({f.path for f in report.findings})
    console.print(
        f"{report.files:,} files checked ({report.schemas} distinct schemas): "
        + (f"{bad:,} with problems" if bad else "all match the spec")
    )
    if report.findings:
        sys.exit(1)
