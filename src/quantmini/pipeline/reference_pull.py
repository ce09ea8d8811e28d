"""Pull reference data over REST into bronze reference tables: client (io) → parser (core) → store (io).

Every pull pages through its endpoint, parses each page with the same parser that reads local mirrors and
sample files, and merges the rows into ``bronze/reference/<table>.parquet`` on the table's natural keys
(:data:`quantmini.core.reference.NATURAL_KEYS`), recording the request time as ``fetched_at``. A re-run
that brings nothing new adds no rows and leaves the file untouched.

Where the vendor has a new endpoint and a legacy one (splits, dividends, fundamentals), the new one is
tried first and the legacy one is used when the new one answers 404 or "not entitled" before any page.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import quote

import polars as pl

from quantmini._exceptions import NotEntitledError, NotFoundError
from quantmini.core import fundamentals, reference
from quantmini.core.rest_aggregates import BARS_SCHEMA, bars_from_payload
from quantmini.io.lake import Lake
from quantmini.io.reference_store import store_reference
from quantmini.io.rest_client import Params, RestClient

logger = logging.getLogger(__name__)

Parse = Callable[[Any, str], pl.DataFrame]
#: Called after each page with the table name and the rows fetched so far for it.
PageHook = Callable[[str, int], None]

#: Tickers pulled at the same time by per-ticker endpoints (the client's pacer still spaces requests).
TICKER_CONCURRENCY = 4


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One way to ask for a table: path, query and the parser of its pages."""

    path: str
    params: Params
    parse: Parse


@dataclass(slots=True)
class PullResult:
    """What one table's pull did: endpoint(s) used, rows fetched, rows new to the table."""

    table: str
    endpoints: list[str] = field(default_factory=list)
    pages: int = 0
    fetched: int = 0
    added: int = 0
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ReferencePull:
    """Reference pulls for one client and one lake. Methods return one :class:`PullResult` per table."""

    def __init__(
        self,
        client: RestClient,
        lake: Lake,
        *,
        on_page: PageHook | None = None,
        clock: Callable[[], dt.datetime] = _utc_now,
    ) -> None:
        self.client = client
        self.lake = lake
        self._on_page = on_page
        self._clock = clock

    async def _collect(self, table: str, candidates: Sequence[Endpoint], result: PullResult) -> pl.DataFrame:
        """Every page of the first candidate that answers; later ones only if an earlier is 404/403."""
        for index, endpoint in enumerate(candidates):
            frames: list[pl.DataFrame] = []
            try:
                async for payload in self.client.pages(endpoint.path, endpoint.params):
                    frames.append(endpoint.parse(payload, endpoint.path))
                    result.pages += 1
                    result.fetched += frames[-1].height
                    if self._on_page is not None:
                        self._on_page(table, result.fetched)
            except (NotFoundError, NotEntitledError) as exc:
                if frames or index == len(candidates) - 1:
                    raise
                note = (
                    f"{endpoint.path} unavailable ({type(exc).__name__}); using {candidates[index + 1].path}"
                )
                logger.info(note)
                if note not in result.notes:
                    result.notes.append(note)
                continue
            if endpoint.path not in result.endpoints:
                result.endpoints.append(endpoint.path)
            return pl.concat(frames, how="diagonal_relaxed") if frames else endpoint.parse([], endpoint.path)
        raise AssertionError("unreachable: no candidate endpoint")  # pragma: no cover

    def _store(self, table: str, frame: pl.DataFrame, fetched_at: dt.datetime, result: PullResult) -> None:
        result.added += store_reference(self.lake, table, frame, fetched_at)

    async def _simple(self, table: str, candidates: Sequence[Endpoint]) -> PullResult:
        result = PullResult(table)
        fetched_at = self._clock()
        self._store(table, await self._collect(table, candidates, result), fetched_at, result)
        return result

    async def _per_ticker(
        self, table: str, tickers: Sequence[str], candidates: Callable[[str], Sequence[Endpoint]]
    ) -> PullResult:
        """One request family per ticker; a ticker the vendor does not know is listed in ``missing``."""
        result = PullResult(table)
        fetched_at = self._clock()
        gate = asyncio.Semaphore(TICKER_CONCURRENCY)

        async def one(ticker: str) -> pl.DataFrame | None:
            async with gate:
                try:
                    return await self._collect(table, candidates(ticker), result)
                except NotFoundError:
                    result.missing.append(ticker)
                    return None

        frames = [f for f in await asyncio.gather(*(one(t) for t in tickers)) if f is not None]
        if frames:
            self._store(table, pl.concat(frames, how="diagonal_relaxed"), fetched_at, result)
        return result

    async def tickers(self, *, active: Sequence[bool] = (True, False), market: str = "stocks") -> PullResult:
        """``/v3/reference/tickers`` for active and delisted symbols (``active=true``, ``active=false``)."""
        candidates = [
            Endpoint(
                "/v3/reference/tickers",
                {"market": market, "active": flag, "limit": 1000},
                reference.tickers_from_payload,
            )
            for flag in active
        ]
        result = PullResult("tickers")
        fetched_at = self._clock()
        frames = [await self._collect("tickers", [endpoint], result) for endpoint in candidates]
        self._store("tickers", pl.concat(frames, how="diagonal_relaxed"), fetched_at, result)
        return result

    async def ticker_details(self, tickers: Sequence[str]) -> PullResult:
        """``/v3/reference/tickers/{t}`` for each ticker."""
        return await self._per_ticker(
            "ticker_details",
            tickers,
            lambda t: [
                Endpoint(f"/v3/reference/tickers/{_segment(t)}", {}, reference.ticker_details_from_payload)
            ],
        )

    async def ticker_events(self, tickers: Sequence[str]) -> PullResult:
        """``/vX/reference/tickers/{t}/events?types=ticker_change`` (renames) for each ticker."""
        return await self._per_ticker(
            "ticker_events",
            tickers,
            lambda t: [
                Endpoint(
                    f"/vX/reference/tickers/{_segment(t)}/events",
                    {"types": "ticker_change"},
                    reference.ticker_events_from_payload,
                )
            ],
        )

    async def splits(self, ticker: str | None = None) -> PullResult:
        """Splits from ``/stocks/v1/splits``, else the legacy ``/v3/reference/splits``."""
        query: dict[str, str | int] = {} if ticker is None else {"ticker": ticker}
        return await self._simple(
            "splits",
            [
                Endpoint("/stocks/v1/splits", {**query, "limit": 5000}, reference.splits_v1_from_payload),
                Endpoint("/v3/reference/splits", {**query, "limit": 1000}, reference.splits_from_payload),
            ],
        )

    async def dividends(self, ticker: str | None = None) -> PullResult:
        """Cash dividends from ``/stocks/v1/dividends``, else the legacy ``/v3/reference/dividends``."""
        query: dict[str, str | int] = {} if ticker is None else {"ticker": ticker}
        return await self._simple(
            "dividends",
            [
                Endpoint(
                    "/stocks/v1/dividends", {**query, "limit": 5000}, reference.dividends_v1_from_payload
                ),
                Endpoint(
                    "/v3/reference/dividends", {**query, "limit": 1000}, reference.dividends_from_payload
                ),
            ],
        )

    async def options_contracts(self, underlying: str | None = None, *, expired: bool = False) -> PullResult:
        """``/v3/reference/options/contracts`` (optionally one underlying; ``expired`` for past contracts)."""
        query: dict[str, str | int | bool] = {"expired": expired, "limit": 1000}
        if underlying is not None:
            query["underlying_ticker"] = underlying
        return await self._simple(
            "options_contracts",
            [Endpoint("/v3/reference/options/contracts", query, reference.options_contracts_from_payload)],
        )

    async def news(self, ticker: str | None = None, *, since: dt.date | None = None) -> PullResult:
        """``/v2/reference/news`` (optionally one ticker, articles published on or after ``since``)."""
        query: dict[str, str | int] = {"limit": 1000, "order": "asc", "sort": "published_utc"}
        if ticker is not None:
            query["ticker"] = ticker
        if since is not None:
            query["published_utc.gte"] = since.isoformat()
        return await self._simple(
            "news", [Endpoint("/v2/reference/news", query, reference.news_from_payload)]
        )

    async def fundamentals(self, tickers: Sequence[str]) -> list[PullResult]:
        """Statements (new endpoints, else legacy ``/vX/reference/financials``) and ratios per ticker."""
        statements = PullResult("financials")
        fetched_at = self._clock()
        frames = [fundamentals.statements_from_payload([], "none", "financials")]
        for ticker in tickers:
            try:
                frames.extend(await self._statements(ticker, statements))
            except NotFoundError:
                statements.missing.append(ticker)
        self._store("financials", pl.concat(frames, how="diagonal_relaxed"), fetched_at, statements)
        ratios = PullResult("financial_ratios")
        fetched_at = self._clock()
        found = [fundamentals.ratios_from_payload([], "ratios")]
        for ticker in tickers:
            endpoint = Endpoint(
                "/stocks/financials/v1/ratios",
                {"ticker": ticker, "limit": 1000},
                partial(_ratios, ticker=ticker),
            )
            try:
                found.append(await self._collect("financial_ratios", [endpoint], ratios))
            except NotFoundError:
                ratios.missing.append(ticker)
            except NotEntitledError as exc:
                ratios.notes.append(f"ratios skipped (no legacy equivalent): {exc}")
                break
        self._store("financial_ratios", pl.concat(found, how="diagonal_relaxed"), fetched_at, ratios)
        return [statements, ratios]

    async def _statements(self, ticker: str, result: PullResult) -> list[pl.DataFrame]:
        frames: list[pl.DataFrame] = []
        for kind, statement in fundamentals.STATEMENT_ENDPOINTS.items():
            endpoint = Endpoint(
                f"/stocks/financials/v1/{kind}",
                {"tickers": ticker, "limit": 1000},
                partial(_statements, statement=statement, ticker=ticker),
            )
            try:
                frames.append(await self._collect("financials", [endpoint], result))
            except (NotFoundError, NotEntitledError) as exc:
                if frames:
                    raise
                legacy = "/vX/reference/financials"
                note = f"{endpoint.path} unavailable ({type(exc).__name__}); using {legacy}"
                if note not in result.notes:
                    result.notes.append(note)
                fallback = Endpoint(legacy, {"ticker": ticker, "limit": 100}, partial(_legacy, ticker=ticker))
                return [await self._collect("financials", [fallback], result)]
        return frames

    async def market_status(self) -> list[PullResult]:
        """Upcoming holidays and early closes (``/v1/marketstatus/upcoming``) and the status right now."""
        holidays = await self._simple(
            "market_holidays",
            [Endpoint("/v1/marketstatus/upcoming", {}, reference.market_holidays_from_payload)],
        )
        status = await self._simple(
            "market_status", [Endpoint("/v1/marketstatus/now", {}, reference.market_status_from_payload)]
        )
        return [holidays, status]

    async def exchanges(self) -> PullResult:
        """``/v3/reference/exchanges``."""
        return await self._simple(
            "exchanges", [Endpoint("/v3/reference/exchanges", {}, reference.exchanges_from_payload)]
        )

    async def conditions(self) -> PullResult:
        """``/v3/reference/conditions`` (trade and quote condition codes)."""
        return await self._simple(
            "conditions",
            [Endpoint("/v3/reference/conditions", {"limit": 1000}, reference.conditions_from_payload)],
        )

    async def fetch_bars(self, request: BarsRequest, result: PullResult | None = None) -> pl.DataFrame:
        """Aggregate bars for one ticker and range, or for every ticker on one date (grouped)."""
        result = result if result is not None else PullResult("bars")
        query: dict[str, str | int | bool] = {"adjusted": request.adjusted}
        if request.ticker is None:
            path = f"/v2/aggs/grouped/locale/us/market/stocks/{request.start.isoformat()}"
        else:
            path = (
                f"/v2/aggs/ticker/{_segment(request.ticker)}/range/{request.multiplier}/{request.timespan}/"
                f"{request.start.isoformat()}/{request.end.isoformat()}"
            )
            query.update({"sort": "asc", "limit": 50000})

        def parse(payload: Any, endpoint: str) -> pl.DataFrame:
            return bars_from_payload(
                payload,
                endpoint,
                timespan=request.timespan,
                multiplier=request.multiplier,
                adjusted=request.adjusted,
            )

        frame = await self._collect("bars", [Endpoint(path, query, parse)], result)
        return frame.select(list(BARS_SCHEMA)).sort("ticker", "timestamp")

    async def bars(self, request: BarsRequest) -> PullResult:
        """Fetch bars and merge them into the ``bars`` reference table."""
        result = PullResult("bars")
        fetched_at = self._clock()
        self._store("bars", await self.fetch_bars(request, result), fetched_at, result)
        return result


@dataclass(frozen=True, slots=True)
class BarsRequest:
    """An aggregate request: ``ticker=None`` asks for the grouped daily bars of ``start``."""

    ticker: str | None
    start: dt.date
    end: dt.date
    timespan: str = "day"
    multiplier: int = 1
    adjusted: bool = False


def _statements(payload: Any, endpoint: str, *, statement: str, ticker: str) -> pl.DataFrame:
    return fundamentals.statements_from_payload(payload, statement, endpoint, ticker=ticker)


def _legacy(payload: Any, endpoint: str, *, ticker: str) -> pl.DataFrame:
    return fundamentals.legacy_financials_from_payload(payload, endpoint, ticker=ticker)


def _ratios(payload: Any, endpoint: str, *, ticker: str) -> pl.DataFrame:
    return fundamentals.ratios_from_payload(payload, endpoint, ticker=ticker)


def _segment(ticker: str) -> str:
    return quote(ticker, safe=".")
