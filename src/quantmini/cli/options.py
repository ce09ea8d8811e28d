"""Options shared by several commands.

This module is imported when the CLI starts, so it imports nothing beyond click: ``quantmini --help``
must not load the data stack (Polars, DuckDB, pandas, the exchange calendars, the S3 client). What a
command needs to run is imported in its body, from :mod:`quantmini.cli.common` and the library.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import click

F = TypeVar("F", bound=Callable[..., Any])


class DataTypeChoice(click.Choice[str]):
    """The data types of the dataset registry, looked up only when a value is checked or help is shown
    (the registry holds Arrow schemas, too heavy to import for every command)."""

    def __init__(self) -> None:
        super().__init__(())

    @property  # type: ignore[override]
    def choices(self) -> Sequence[str]:
        """The registered data-type names, sorted."""
        from quantmini.datasets import DATASETS

        return tuple(sorted(DATASETS))

    @choices.setter
    def choices(self, value: Sequence[str]) -> None:
        """Ignored: the choices are always the registry's."""


def data_type_option(default: str | None = "stocks_daily") -> Callable[[F], F]:
    """``--data-type`` with choices taken from the dataset registry."""
    return click.option(
        "--data-type",
        type=DataTypeChoice(),
        default=default,
        show_default=True,
        required=default is None,
        help="Dataset to process.",
    )


def date_range_options(func: F) -> F:
    """``--start-date`` and ``--end-date`` (YYYY-MM-DD, inclusive)."""
    func = click.option("--end-date", required=True, help="Last session, YYYY-MM-DD (inclusive).")(func)
    return click.option("--start-date", required=True, help="First session, YYYY-MM-DD.")(func)


def data_root_option(func: F) -> F:
    """``--data-root DIR``: the lake (DATA_ROOT)."""
    return click.option(
        "--data-root", type=click.Path(path_type=Path, file_okay=False), help="Lake root (DATA_ROOT)."
    )(func)


@dataclass(frozen=True, slots=True)
class RunOptions:
    """The lake and execution options a pipeline command takes (``--data-root`` … ``--wait``)."""

    data_root: Path | None = None
    mode: str | None = None
    workers: int | None = None
    executor: str | None = None
    scheduler: str | None = None
    wait: bool = False


def run_options(func: F) -> F:
    """Add ``--data-root``, ``--mode``, ``--workers``, ``--executor``, ``--scheduler`` and ``--wait``, handed
    to the command as one ``options: RunOptions``."""

    @functools.wraps(func)
    def command(
        *args: Any,
        data_root: Path | None,
        mode: str | None,
        workers: int | None,
        executor: str | None,
        scheduler: str | None,
        wait: bool,
        **kwargs: Any,
    ) -> Any:
        options = RunOptions(data_root, mode, workers, executor, scheduler, wait)
        return func(*args, options=options, **kwargs)

    decorated: Any = wait_option(command)
    for option in (
        click.option(
            "--scheduler", help="Dask scheduler address for --executor dask (default: a local cluster)."
        ),
        click.option(
            "--executor",
            type=click.Choice(["local", "dask"]),
            help="Where tasks run: local (the --mode) or dask (QUANTMINI_PIPELINE_EXECUTOR).",
        ),
        click.option(
            "--workers", type=click.IntRange(1, 256), help="Processes in parallel mode (and Dask workers)."
        ),
        click.option(
            "--mode",
            type=click.Choice(["streaming", "batch", "parallel"]),
            help="Processing mode (PIPELINE_MODE).",
        ),
        data_root_option,
    ):
        decorated = option(decorated)
    return cast(F, decorated)


def source_option(func: F) -> F:
    """``--source DIR``: a local mirror of the vendor bucket (QUANTMINI_SOURCE_DIR); default: S3."""
    return click.option(
        "--source",
        "source_dir",
        type=click.Path(path_type=Path, file_okay=False),
        help="Local mirror directory holding flatfiles/ (QUANTMINI_SOURCE_DIR). Default: the S3 endpoint.",
    )(func)


def wait_option(func: F) -> F:
    """``--wait``: when another process is writing the lake, wait for it instead of failing."""
    return click.option(
        "--wait", is_flag=True, help="If another process is writing this lake, wait for it to finish."
    )(func)


#: Formats of commands that print or write answers (``data query``, ``sql``).
ANSWER_FORMATS = ("table", "csv", "json", "parquet")
#: Rows the ``table`` format shows before summarising the rest.
TABLE_ROW_LIMIT = 50


def answer_options(func: F) -> F:
    """``--format table|csv|json|parquet`` and ``--output FILE`` (parquet needs a file; a table only
    prints), handed to the command as ``output_format`` and ``output``."""

    @functools.wraps(func)
    def command(*args: Any, output_format: str, output: Path | None, **kwargs: Any) -> Any:
        if output_format == "parquet" and output is None:
            raise click.UsageError("--format parquet needs --output FILE")
        if output_format == "table" and output is not None:
            raise click.UsageError("--output is for csv, json and parquet; the table format prints only")
        return func(*args, output_format=output_format, output=output, **kwargs)

    decorated: Any = click.option(
        "--output",
        type=click.Path(path_type=Path, dir_okay=False),
        help="Write to FILE instead of stdout (required for parquet; written atomically, streamed).",
    )(command)
    decorated = click.option(
        "--format",
        "output_format",
        type=click.Choice(ANSWER_FORMATS),
        default="table",
        show_default=True,
        help=f"table shows at most {TABLE_ROW_LIMIT} rows with rounded numbers; csv, json and parquet keep "
        "full precision.",
    )(decorated)
    return cast(F, decorated)
