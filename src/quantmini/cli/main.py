"""Entry point of the ``quantmini`` CLI.

Every :class:`~quantmini.QuantminiError` becomes one readable ``error: ...`` line on stderr and exit code 1;
``--debug`` adds the traceback and debug logs. Everything the CLI writes about a failure, and every log
line (quantmini's and third-party libraries'), goes through :func:`~quantmini.config.redaction.redact`, so
known secrets and credential patterns never reach the terminal.

Start-up imports click and the command modules only; each command imports the data stack it needs when it
runs, so ``quantmini --help`` and ``quantmini --version`` stay fast (a test keeps it that way).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, NoReturn

import click

from quantmini import __version__
from quantmini._exceptions import QuantminiError
from quantmini.config.redaction import (
    RedactingFilter,
    redact,
    redacted_traceback,
    register_environment_secrets,
)

#: Click's own control-flow exceptions (usage errors, ``--help``, aborts) that click renders itself.
_CLICK_FLOW = (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort)


class _QuantminiGroup(click.Group):
    """Root group that renders errors as one redacted line (with a redacted traceback under ``--debug``)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except _CLICK_FLOW:
            raise
        except QuantminiError as exc:
            _fail(exc, f"error: {exc}", traceback=bool(ctx.obj and ctx.obj.get("debug")))
        except BrokenPipeError:
            # The reader of stdout went away (``quantmini sql … | head``): stop quietly, as Unix tools do.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(141)
        except KeyboardInterrupt:
            click.secho(
                "interrupted: partial outputs were discarded; re-run to resume", fg="yellow", err=True
            )
            sys.exit(130)
        except Exception as exc:
            # A bug: the traceback is what a report needs, but Python must not print it unredacted.
            _fail(exc, f"error: unexpected {type(exc).__name__}: {exc}", traceback=True)


def _fail(exc: BaseException, line: str, *, traceback: bool) -> NoReturn:
    if traceback:
        click.echo(redacted_traceback(exc), err=True, nl=False)
    click.secho(redact(line), fg="red", err=True)
    sys.exit(1)


def install_redaction(logger: logging.Logger) -> None:
    """Put a :class:`RedactingFilter` on every handler of ``logger`` that lacks one."""
    for handler in logger.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


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
    install_redaction(logging.getLogger())
    register_environment_secrets(os.environ)


def _register() -> None:
    from quantmini.cli.api_cmd import api
    from quantmini.cli.config_cmd import config
    from quantmini.cli.data_cmd import data
    from quantmini.cli.demo_cmd import demo
    from quantmini.cli.features_cmd import features
    from quantmini.cli.pipeline_cmd import pipeline
    from quantmini.cli.polygon_cmd import polygon
    from quantmini.cli.report_cmd import report
    from quantmini.cli.runs_cmd import runs
    from quantmini.cli.sample_cmd import sample
    from quantmini.cli.schema_cmd import schema
    from quantmini.cli.sql_cmd import sql
    from quantmini.cli.validate_cmd import validate

    for command in (
        api,
        config,
        data,
        demo,
        features,
        pipeline,
        polygon,
        report,
        runs,
        sample,
        schema,
        sql,
        validate,
    ):
        cli.add_command(command)


_register()


def main() -> None:
    """Console-script entry point."""
    cli(obj={})
