"""``quantmini data query``: bars of some symbols over a date range, as a table, CSV, JSON or Parquet.

``--symbols`` and ``--fields`` take several values after one flag (``--symbols AAPL MSFT``), repeated
flags (``--symbols AAPL --symbols MSFT``) or comma-separated lists (``--symbols AAPL,MSFT``). Minute data
types also take ``--session`` (time of day) and ``--bar`` (resampling); both are validated by
:class:`~quantmini.query.QuerySpec`, so the CLI and the Python API refuse the same things. Features of
the feature sets are read from the sets configured in ``features.<data type>``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from quantmini.cli.options import TABLE_ROW_LIMIT, DataTypeChoice, answer_options
from quantmini.core.adjustment_names import QUERY_ADJUSTMENTS

if TYPE_CHECKING:
    import polars as pl
    from rich.console import Console

    from quantmini.query import QueryEngine, QuerySpec

#: Choices of ``--session`` (the same as :data:`quantmini.query.spec.SESSIONS`, which imports pyarrow).
SESSION_CHOICES = ("all", "regular", "extended")


class MultiValueOption(click.Option):
    """An option that may be followed by several values: ``--symbols AAPL MSFT``.

    It is a ``multiple=True`` option; :class:`MultiValueCommand` rewrites the extra values into repeated
    flags before click parses the command line.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["multiple"] = True
        super().__init__(*args, **kwargs)


class MultiValueCommand(click.Command):
    """A command whose :class:`MultiValueOption` options accept several space-separated values."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Expand ``--opt A B`` into ``--opt A --opt B``, then parse as usual."""
        names = {name for p in self.params if isinstance(p, MultiValueOption) for name in p.opts}
        return super().parse_args(ctx, expand_multi_value_args(args, names))


def expand_multi_value_args(args: Sequence[str], names: Iterable[str]) -> list[str]:
    """Rewrite ``--opt A B`` (or ``--opt=A B``) as ``--opt A --opt B`` for every option in ``names``.

    Values continue until the next token starting with ``-``; ``--`` ends option processing.
    """
    flags = set(names)
    out: list[str] = []
    current: str | None = None
    expect_value = False
    for index, arg in enumerate(args):
        if expect_value:
            out.append(arg)
            expect_value = False
            continue
        if arg == "--":
            out.extend(args[index:])
            break
        flag = arg.split("=", 1)[0]
        if flag in flags:
            current, expect_value = flag, "=" not in arg
            out.append(arg)
        elif current is not None and not arg.startswith("-"):
            out.extend((current, arg))
        else:
            current = None
            out.append(arg)
    return out


def split_values(values: Iterable[str]) -> tuple[str, ...]:
    """Flatten option values, splitting comma-separated lists and dropping blanks."""
    return tuple(part.strip() for value in values for part in value.split(",") if part.strip())


@click.command("query", cls=MultiValueCommand)
@click.option(
    "--data-type",
    type=DataTypeChoice(),
    default="stocks_daily",
    show_default=True,
    help="Dataset to query.",
)
@click.option(
    "--symbols",
    cls=MultiValueOption,
    help="Tickers: --symbols AAPL MSFT, repeated flags or AAPL,MSFT (matched exactly). Required unless "
    "--underlying or --all-symbols is given.",
)
@click.option(
    "--underlying",
    help="Options: the chain of this stock (the delivered underlying, e.g. BRK.B for root BRKB), sorted "
    "by time, expiration, strike and type.",
)
@click.option("--expiration", help="Options: only contracts expiring on this date, YYYY-MM-DD.")
@click.option("--start-date", required=True, help="First session, YYYY-MM-DD.")
@click.option("--end-date", required=True, help="Last session, YYYY-MM-DD (inclusive).")
@click.option(
    "--fields",
    cls=MultiValueOption,
    help="Columns to return (default: ticker, session_date, [ts,] open, high, low, close, volume, "
    "transactions), features of the configured feature sets included (KMID ROC5 RSI14 …: see "
    "`quantmini features list`; never adjusted). Same value styles as --symbols.",
)
@click.option(
    "--adjusted/--raw",
    default=None,
    help="Split- and dividend-adjusted prices and volumes (silver) or raw bars as traded [default: "
    "adjusted where splits and dividends apply (stocks), raw for options]. Features are never adjusted.",
)
@click.option(
    "--adjust",
    "adjustment",
    type=click.Choice(QUERY_ADJUSTMENTS),
    help="How prices and volumes are adjusted: total_return (splits and dividends, × adj_factor; "
    "--adjusted), split (splits only, × split_factor) or none (raw; --raw). Volumes are divided by the "
    "same factor, as in the Qlib roots (gold/qlib, gold/qlib_split).",
)
@click.option(
    "--session",
    type=click.Choice(SESSION_CHOICES),
    default="all",
    show_default=True,
    help="Minute data: regular keeps the bars from 09:30 to the session's close (13:00 on early-close "
    "days), extended the pre-market and after-hours ones.",
)
@click.option(
    "--bar",
    metavar="Nmin",
    help="Minute data: resample to N-minute bars (1, 2, 3, 5, 6, 10, 15, 30 or 60min) aligned to 09:30 "
    "(04:00 outside regular hours), never across sessions or the regular/extended boundary; adds vwap "
    "and bar_count.",
)
@answer_options
@click.option(
    "--all-symbols",
    is_flag=True,
    help="Every symbol instead of --symbols: a cross-section (one session: --start-date D --end-date D).",
)
@click.option(
    "--no-cache",
    is_flag=True,
    help="Compute the answer afresh instead of reading the lake's result cache (query.cache_mb).",
)
@click.option(
    "--explain",
    is_flag=True,
    help="Instead of the rows, say what the query reads: partitions read and pruned by path, and per "
    "Parquet scan the files and row groups DuckDB scanned or skipped on their statistics; then the plan.",
)
@click.option(
    "--data-root",
    type=click.Path(path_type=Path, file_okay=False),
    help="Lake root (default: configured data_root, $DATA_ROOT or ./data).",
)
def query(
    data_type: str,
    symbols: tuple[str, ...],
    underlying: str | None,
    expiration: str | None,
    start_date: str,
    end_date: str,
    fields: tuple[str, ...],
    adjusted: bool | None,
    adjustment: str | None,
    session: str,
    bar: str | None,
    output_format: str,
    output: Path | None,
    all_symbols: bool,
    no_cache: bool,
    explain: bool,
    data_root: Path | None,
) -> None:
    """Query bars of some symbols (or an option chain) between two sessions (inclusive)."""
    import polars as pl
    from rich.console import Console

    from quantmini.config import load_settings
    from quantmini.core.calendar import parse_date
    from quantmini.query import QueryEngine, QuerySpec
    from quantmini.query.engine import output_schema
    from quantmini.query.output import FileFormat, write_batches

    spec = QuerySpec(
        data_type=data_type,
        symbols=split_values(symbols),
        start=parse_date(start_date, "--start-date"),
        end=parse_date(end_date, "--end-date"),
        fields=split_values(fields) or None,
        adjusted=adjusted,
        adjustment=adjustment,
        session=session,
        bar=bar,
        underlying=underlying,
        expiration=None if expiration is None else parse_date(expiration, "--expiration"),
        all_symbols=all_symbols,
    )
    settings = load_settings({"data_root": data_root})
    engine = QueryEngine(
        settings.data_root, features=settings.features, cache_mb=0 if no_cache else settings.query.cache_mb
    )
    resolution = engine.resolve(spec)
    for note in resolution.notes if resolution is not None else ():
        click.echo(note, err=True)
    if explain:
        for line in engine.explain(spec).lines():
            click.echo(line)
        return
    if output_format == "table":
        _print_table(engine.query(spec), engine, spec, Console(highlight=False, soft_wrap=False))
        return
    schema = pl.DataFrame(schema=output_schema(spec)).to_arrow().schema
    fmt: FileFormat = output_format  # type: ignore[assignment]
    if output is not None:  # a file: streamed from DuckDB a batch at a time, however large
        rows = write_batches(engine.batches(spec), schema, fmt, output)
        click.echo(f"wrote {rows} rows to {output}", err=True)
    else:  # stdout: the (cached) answer
        rows = write_batches(engine.query(spec).to_arrow().to_batches(), schema, fmt, sys.stdout)
    if rows == 0:
        # stdout keeps the (empty) data; the explanation goes beside it.
        _explain_empty(engine, spec, Console(stderr=True, highlight=False))


def _print_table(frame: pl.DataFrame, engine: QueryEngine, spec: QuerySpec, console: Console) -> None:
    from quantmini.cli.query_render import adjustment_note, render_table

    if frame.is_empty():
        _explain_empty(engine, spec, console)
    else:
        render_table(frame, console, TABLE_ROW_LIMIT)
        note = adjustment_note(spec)
        if note:
            console.print(note, soft_wrap=True, markup=False)


def _explain_empty(engine: QueryEngine, spec: QuerySpec, console: Console) -> None:
    from quantmini.cli.query_render import no_rows_message

    for line in no_rows_message(spec, engine.coverage(spec)):
        console.print(line, soft_wrap=True, markup=False)
