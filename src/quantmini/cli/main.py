"""Entry point of the ``quantmini`` CLI.

Every :class:`~quantmini.QuantminiError` becomes one readable ``error: ...`` line on stderr and exit code 1;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from quantmini import __version__
from quantmini._exceptions import QuantminiError


class _QuantminiGroup(click.Group):
    """Root group that renders library errors as one line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except QuantminiError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.secho(
                "interrupted: partial outputs were discarded; re-run to resume", fg="yellow", err=True
            )
            sys.exit(130)


@click.group(cls=_QuantminiGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="quantmini")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """quantmini: Polygon.io (Massive) market data to a research lake (Parquet, Qlib, DuckDB)."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def _register() -> None:
    from quantmini.cli.api_cmd import api
    from quantmini.cli.config_cmd import config
    from quantmini.cli.data_cmd import data
    from quantmini.cli.demo_cmd import demo
    from quantmini.cli.pipeline_cmd import pipeline
    from quantmini.cli.polygon_cmd import polygon
    from quantmini.cli.sample_cmd import sample
    from quantmini.cli.validate_cmd import validate

    for command in (api, config, data, demo, pipeline, polygon, sample, validate):
        cli.add_command(command)


_register()


def main() -> None:
    """Console-script entry point."""
    cli(obj={})
