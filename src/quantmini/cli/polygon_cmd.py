"""``quantmini polygon ...``: pull reference data over REST into the lake's bronze reference tables."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from quantmini._exceptions import ConfigurationError
from quantmini.cli.options import data_root_option, wait_option

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

if TYPE_CHECKING:
    from quantmini.pipeline.reference_pull import BarsRequest, PullResult, ReferencePull

    Work = Callable[[ReferencePull], Awaitable[T]]

TIMESPANS = ("second", "minute", "hour", "day", "week", "month", "quarter", "year")


def tickers_option(required: bool) -> Callable[[F], F]:
    """``--ticker T`` (repeatable)."""
    return click.option(
        "--ticker", "tickers", multiple=True, required=required, help="Ticker symbol (repeat for several)."
    )


def run_rest(data_root: Path | None, work: Work[T]) -> T:
    """Run ``work`` with a client and a puller built from the settings, drawing progress on stderr."""
    import asyncio

    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from quantmini.cli.common import err_console, settings_from
    from quantmini.io.lake import Lake
    from quantmini.io.rest_client import RestClient
    from quantmini.pipeline.reference_pull import ReferencePull

    settings = settings_from(data_root=data_root)
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description:<18}"),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    )
    tasks: dict[str, Any] = {}
    requests = progress.add_task("requests", total=None, detail="0 sent")
    sent = [0]

    def on_request(url: str) -> None:
        sent[0] += 1
        progress.update(requests, detail=f"{sent[0]} sent, last {url}")

    def on_page(table: str, rows: int) -> None:
        if table not in tasks:
            tasks[table] = progress.add_task(table, total=None, detail="")
        progress.update(tasks[table], detail=f"{rows:,} rows fetched")

    async def main() -> T:
        async with RestClient.from_settings(settings, on_request=on_request) as client:
            return await work(ReferencePull(client, Lake(settings.data_root), on_page=on_page))

    with progress:
        return asyncio.run(main())


def render_results(results: list[PullResult]) -> None:
    """The summary: per table, the endpoints used, pages, rows fetched and rows new to the table."""
    from rich.table import Table

    from quantmini.cli.common import console
    from quantmini.config.redaction import redact

    table = Table(title="reference tables", show_header=True)
    for column in ("table", "endpoint", "pages", "fetched", "new rows"):
        table.add_column(column, justify="right" if column in ("pages", "fetched", "new rows") else "left")
    for r in results:
        table.add_row(
            r.table, ", ".join(r.endpoints) or "-", f"{r.pages:,}", f"{r.fetched:,}", f"{r.added:,}"
        )
    console.print(table)
    for r in results:
        for note in r.notes:
            console.print(f"[yellow]{r.table}:[/] {redact(note)}", soft_wrap=True)
        if r.missing:
            console.print(f"[yellow]{r.table}:[/] not found: {', '.join(sorted(r.missing))}", soft_wrap=True)


def _pull(data_root: Path | None, wait: bool, work: Work[list[PullResult]]) -> None:
    """Run ``work`` holding the lake's lock (it merges into the lake's reference tables), then summarise."""
    from quantmini.cli.common import lake_writer, settings_from

    with lake_writer(settings_from(data_root=data_root).data_root, wait=wait):
        results = run_rest(data_root, work)
    render_results(results)


@click.group()
def polygon() -> None:
    """Pull reference data from the vendor's REST API into bronze reference tables (needs POLYGON_API_KEY)."""


@polygon.command()
@data_root_option
@wait_option
@click.option("--market", default="stocks", show_default=True, help="Vendor market (stocks, otc, indices …).")
@click.option("--active-only", is_flag=True, help="Skip delisted symbols (active=false).")
@tickers_option(required=False)
def tickers(
    data_root: Path | None, wait: bool, market: str, active_only: bool, tickers: tuple[str, ...]
) -> None:
    """Active and delisted tickers; with --ticker, also their details (/v3/reference/tickers/{t})."""

    async def work(pull: ReferencePull) -> list[PullResult]:
        active = (True,) if active_only else (True, False)
        results = [await pull.tickers(active=active, market=market)]
        if tickers:
            results.append(await pull.ticker_details(tickers))
        return results

    _pull(data_root, wait, work)


@polygon.command("corporate-actions")
@data_root_option
@wait_option
@click.option("--ticker", default=None, help="Only this ticker (default: every ticker).")
@click.option("--splits/--no-splits", default=True, show_default=True, help="Pull splits.")
@click.option("--dividends/--no-dividends", default=True, show_default=True, help="Pull dividends.")
def corporate_actions(
    data_root: Path | None, wait: bool, ticker: str | None, splits: bool, dividends: bool
) -> None:
    """Splits and cash dividends (new /stocks/v1 endpoints, legacy /v3/reference fallback)."""

    async def work(pull: ReferencePull) -> list[PullResult]:
        results = [await pull.splits(ticker)] if splits else []
        return results + ([await pull.dividends(ticker)] if dividends else [])

    _pull(data_root, wait, work)


@polygon.command()
@data_root_option
@wait_option
@tickers_option(required=True)
def events(data_root: Path | None, wait: bool, tickers: tuple[str, ...]) -> None:
    """Ticker changes (renames) of each --ticker."""

    async def work(pull: ReferencePull) -> list[PullResult]:
        return [await pull.ticker_events(tickers)]

    _pull(data_root, wait, work)


@polygon.command()
@data_root_option
@wait_option
@tickers_option(required=True)
def fundamentals(data_root: Path | None, wait: bool, tickers: tuple[str, ...]) -> None:
    """Income statements, balance sheets, cash-flow statements (long table) and ratios of each --ticker."""

    async def work(pull: ReferencePull) -> list[PullResult]:
        return await pull.fundamentals(tickers)

    _pull(data_root, wait, work)


@polygon.command()
@data_root_option
@wait_option
@click.option("--ticker", default=None, help="Only articles about this ticker.")
@click.option("--since", default=None, help="Only articles published on or after YYYY-MM-DD.")
def news(data_root: Path | None, wait: bool, ticker: str | None, since: str | None) -> None:
    """News articles (/v2/reference/news)."""
    from quantmini.core.calendar import parse_date

    first = None if since is None else parse_date(since, "--since")

    async def work(pull: ReferencePull) -> list[PullResult]:
        return [await pull.news(ticker, since=first)]

    _pull(data_root, wait, work)


@polygon.command("options-contracts")
@data_root_option
@wait_option
@click.option("--underlying", default=None, help="Only contracts on this underlying ticker.")
@click.option("--expired", is_flag=True, help="Expired contracts instead of active ones.")
def options_contracts(data_root: Path | None, wait: bool, underlying: str | None, expired: bool) -> None:
    """Options contract reference (/v3/reference/options/contracts)."""

    async def work(pull: ReferencePull) -> list[PullResult]:
        return [await pull.options_contracts(underlying, expired=expired)]

    _pull(data_root, wait, work)


@polygon.command("market-status")
@data_root_option
@wait_option
@click.option("--codes/--no-codes", default=True, show_default=True, help="Also exchanges and conditions.")
def market_status(data_root: Path | None, wait: bool, codes: bool) -> None:
    """Upcoming holidays and early closes, the market status now, exchanges and condition codes."""

    async def work(pull: ReferencePull) -> list[PullResult]:
        results = await pull.market_status()
        if codes:
            results += [await pull.exchanges(), await pull.conditions()]
        return results

    _pull(data_root, wait, work)


def bars_options(func: F) -> F:
    """Options shared by ``polygon bars`` and ``api bars``."""
    for option in reversed(
        [
            click.option("--ticker", default=None, help="Ticker (omit with --grouped)."),
            click.option("--from", "start", required=True, help="First day, YYYY-MM-DD."),
            click.option("--to", "end", default=None, help="Last day, YYYY-MM-DD (default: --from)."),
            click.option("--timespan", type=click.Choice(TIMESPANS), default="day", show_default=True),
            click.option("--multiplier", type=click.IntRange(1, 10_000), default=1, show_default=True),
            click.option(
                "--adjusted/--raw",
                default=False,
                show_default=True,
                help="Split-adjusted bars (the vendor's default) or raw ones, like bronze.",
            ),
            click.option("--grouped", is_flag=True, help="Every ticker's daily bar on --from."),
        ]
    ):
        func = option(func)
    return func


def bars_request(
    ticker: str | None,
    start: str,
    end: str | None,
    timespan: str,
    multiplier: int,
    adjusted: bool,
    grouped: bool,
) -> BarsRequest:
    """Check the bar options once and build the request."""
    from quantmini.core.calendar import parse_date
    from quantmini.pipeline.reference_pull import BarsRequest

    first = parse_date(start, "--from")
    last = first if end is None else parse_date(end, "--to")
    if last < first:
        raise ConfigurationError(f"--to {last} is before --from {first}")
    if grouped == (ticker is not None):
        raise ConfigurationError("give either --ticker or --grouped")
    if grouped and (timespan != "day" or multiplier != 1 or last != first):
        raise ConfigurationError("--grouped returns one day of daily bars: use --timespan day and one date")
    return BarsRequest(ticker, first, last, timespan=timespan, multiplier=multiplier, adjusted=adjusted)


@polygon.command()
@data_root_option
@wait_option
@bars_options
def bars(
    data_root: Path | None,
    wait: bool,
    ticker: str | None,
    start: str,
    end: str | None,
    timespan: str,
    multiplier: int,
    adjusted: bool,
    grouped: bool,
) -> None:
    """Aggregate bars merged into the ``bars`` reference table (REST timestamps are in milliseconds)."""
    request = bars_request(ticker, start, end, timespan, multiplier, adjusted, grouped)

    async def work(pull: ReferencePull) -> list[PullResult]:
        return [await pull.bars(request)]

    _pull(data_root, wait, work)
