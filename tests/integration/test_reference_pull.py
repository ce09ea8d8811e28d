"""Reference pulls end to end: local vendor server → client → parsers → bronze reference tables.

The sample generator's REST files are served at their REST paths, so the REST pull and the local-mirror
import (``import_reference_dir``) must produce the same tables: one code path for both.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import polars as pl
import pytest

from quantmini.io.lake import Lake
from quantmini.io.reference_store import load_reference
from quantmini.io.rest_client import RestClient, RetryPolicy
from quantmini.pipeline.reference import import_reference_dir
from quantmini.pipeline.reference_pull import BarsRequest, PullResult, ReferencePull
from quantmini.sample import generate_sample
from tests.support.clock import VirtualClock
from tests.support.paths import rest_fixture
from tests.support.polygon_server import KEY, FakePolygon, Reply, serve_sample

T = TypeVar("T")
FETCHED = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)


fixture = rest_fixture


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rest-sample")
    generate_sample(
        out, dt.date(2025, 1, 2), dt.date(2025, 6, 30), tickers=12, seed=7, data_types=["stocks_daily"]
    )
    return out


@pytest.fixture
def server() -> Iterator[FakePolygon]:
    with FakePolygon(lifetime=30) as running:
        yield running


def pull(server: FakePolygon, lake: Lake, work: Callable[[ReferencePull], Awaitable[T]]) -> T:
    async def main() -> T:
        retry = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05)
        async with RestClient(
            server.base_url, KEY, requests_per_minute=6000, retry=retry, clock=VirtualClock()
        ) as client:
            return await work(ReferencePull(client, lake, clock=lambda: FETCHED))

    return asyncio.run(main())


def results_in(path: Path) -> list[dict[str, Any]]:
    payload = json.loads(path.read_text())
    results = payload["results"]
    return results if isinstance(results, list) else [results]


def test_sample_reference_over_rest_equals_the_local_mirror_import(
    sample: Path, server: FakePolygon, tmp_path: Path
) -> None:
    serve_sample(server, sample)
    renamed = [p.parent.name for p in (sample / "rest/vX/reference/tickers").glob("*/events.json")]
    assert renamed, "the sample has a renamed ticker"
    rest_lake, mirror_lake = Lake(tmp_path / "rest"), Lake(tmp_path / "mirror")

    async def work(p: ReferencePull) -> list[PullResult]:
        return [await p.splits(), await p.dividends(), await p.tickers(), await p.ticker_events(renamed)]

    splits, dividends, tickers, events = pull(server, rest_lake, work)
    import_reference_dir(mirror_lake, sample)

    # New endpoints are not served: both corporate-action pulls fell back to the legacy ones.
    assert splits.endpoints == ["/v3/reference/splits"]
    assert "/stocks/v1/splits" in splits.notes[0]
    assert dividends.endpoints == ["/v3/reference/dividends"]
    assert len(server.requests_to("/stocks/v1/splits")) == 1
    expected = {
        "splits": len(results_in(sample / "rest/v3/reference/splits.json")),
        "dividends": len(results_in(sample / "rest/v3/reference/dividends.json")),
        "tickers": len(results_in(sample / "rest/v3/reference/tickers.json")),
    }
    assert {r.table: r.added for r in (splits, dividends, tickers)} == expected
    # active=true and active=false were both asked for, and together they hold every sample symbol.
    assert sorted(s.query["active"] for s in server.requests_to("/v3/reference/tickers")) == ["false", "true"]
    for name in expected:
        over_rest, mirrored = load_reference(rest_lake, name), load_reference(mirror_lake, name)
        assert over_rest is not None
        assert mirrored is not None
        keys = over_rest.columns[:3]
        assert_same(over_rest.drop("fetched_at").sort(keys), mirrored.drop("fetched_at").sort(keys))
    stored = load_reference(rest_lake, "ticker_events")
    assert stored is not None
    assert events.added == sum(
        len(results_in(p)[0]["events"]) for p in (sample / "rest/vX").rglob("events.json")
    )
    assert set(stored["event_type"]) == {"ticker_change"}
    assert stored["fetched_at"].to_list() == [FETCHED] * stored.height


def assert_same(left: pl.DataFrame, right: pl.DataFrame) -> None:
    assert left.columns == right.columns
    assert left.to_dicts() == right.to_dicts()


def test_a_rerun_adds_nothing_and_does_not_rewrite_tables(
    sample: Path, server: FakePolygon, tmp_path: Path
) -> None:
    serve_sample(server, sample)
    lake = Lake(tmp_path)

    async def work(p: ReferencePull) -> list[PullResult]:
        return [await p.splits(), await p.dividends(), await p.tickers()]

    first = pull(server, lake, work)
    assert all(r.added > 0 for r in first)
    before = {r.table: lake.reference_table(r.table).stat() for r in first}
    second = pull(server, lake, work)
    assert [r.added for r in second] == [0, 0, 0]
    assert [r.fetched for r in second] == [r.fetched for r in first]
    for table, stat in before.items():
        after = lake.reference_table(table).stat()
        assert (after.st_ino, after.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)


def test_new_splits_endpoint_is_used_when_available(server: FakePolygon, tmp_path: Path) -> None:
    records = [
        {
            "id": "E1",
            "execution_date": "2020-08-31",
            "split_from": 1.0,
            "split_to": 4.0,
            "ticker": "AAPL",
            "adjustment_type": "forward_split",
            "historical_adjustment_factor": 0.25,
        },
        {
            "id": "E2",
            "execution_date": "2014-06-09",
            "split_from": 1.0,
            "split_to": 7.0,
            "ticker": "AAPL",
            "adjustment_type": "forward_split",
            "historical_adjustment_factor": 0.035714,
        },
    ]
    server.paged("/stocks/v1/splits", [{"status": "OK", "results": [r]} for r in records])
    result = pull(server, Lake(tmp_path), lambda p: p.splits("AAPL"))
    assert result.endpoints == ["/stocks/v1/splits"]
    assert result.pages == 2
    assert result.added == 2
    assert server.requests_to("/v3/reference/splits") == []
    assert server.requests_to("/stocks/v1/splits")[0].query == {"ticker": "AAPL", "limit": "5000"}
    stored = load_reference(Lake(tmp_path), "splits")
    assert stored is not None
    assert stored.sort("execution_date")["historical_adjustment_factor"].to_list() == [0.035714, 0.25]


def test_fundamentals_from_the_new_endpoints(server: FakePolygon, tmp_path: Path) -> None:
    income = {
        "tickers": ["GOOG", "GOOGL"],
        "cik": "0001652044",
        "fiscal_year": 2024,
        "fiscal_quarter": 2,
        "timeframe": "quarterly",
        "period_end": "2024-06-30",
        "filing_date": "2024-07-24",
        "revenue": 84742000000.0,
        "diluted_earnings_per_share": 1.89,
        "ebitda": None,
    }
    balance = {
        "tickers": ["GOOGL"],
        "cik": "0001652044",
        "fiscal_year": 2024,
        "fiscal_quarter": 2,
        "timeframe": "quarterly",
        "period_end": "2024-06-30",
        "total_assets": 414770000000.0,
    }
    server.route("/stocks/financials/v1/income-statements", {"status": "OK", "results": [income]})
    server.route("/stocks/financials/v1/balance-sheets", {"status": "OK", "results": [balance]})
    server.route("/stocks/financials/v1/cash-flow-statements", {"status": "OK", "results": []})
    server.route(
        "/stocks/financials/v1/ratios",
        {
            "status": "OK",
            "results": [
                {
                    "ticker": "GOOGL",
                    "cik": "0001652044",
                    "date": "2024-07-25",
                    "price_to_earnings": 24.1,
                    "current": 1.9,
                }
            ],
        },
    )
    statements, ratios = pull(server, Lake(tmp_path), lambda p: p.fundamentals(["GOOGL"]))
    assert statements.added == 3
    assert ratios.added == 2
    frame = load_reference(Lake(tmp_path), "financials")
    assert frame is not None
    rows = {(r["statement"], r["line_item"]): r for r in frame.to_dicts()}
    assert rows[("income_statement", "revenue")]["value"] == 84742000000.0
    assert rows[("income_statement", "revenue")]["filing_date"] == dt.date(2024, 7, 24)
    assert rows[("income_statement", "revenue")]["fiscal_period"] == "Q2"
    assert rows[("income_statement", "revenue")]["ticker"] == "GOOGL"
    assert rows[("balance_sheet", "total_assets")]["filing_date"] is None
    assert server.requests_to("/vX/reference/financials") == []


def test_fundamentals_fall_back_to_the_legacy_endpoint(server: FakePolygon, tmp_path: Path) -> None:
    message = "You are not entitled to this data. Please upgrade your plan at https://massive.com/pricing"
    server.route(
        "/stocks/financials/v1/income-statements",
        Reply(403, {"status": "NOT_AUTHORIZED", "request_id": "r", "message": message}),
    )
    server.route("/vX/reference/financials", fixture("vX_reference_financials.json"))
    statements, ratios = pull(server, Lake(tmp_path), lambda p: p.fundamentals(["GADG"]))
    assert statements.added == 9  # ten facts, one of them null
    assert statements.endpoints == ["/vX/reference/financials"]
    assert ratios.missing == ["GADG"]  # the ratios route is not served (404)
    frame = load_reference(Lake(tmp_path), "financials")
    assert frame is not None
    assets = frame.filter((pl.col("statement") == "balance_sheet") & (pl.col("line_item") == "assets"))
    assert assets.select("ticker", "value", "unit", "filing_date", "fiscal_period").row(0) == (
        "GADG",
        5000000.0,
        "USD",
        dt.date(2022, 5, 3),
        "Q1",
    )


def test_market_status_options_news_and_codes(server: FakePolygon, tmp_path: Path) -> None:
    server.route("/v1/marketstatus/upcoming", fixture("v1_marketstatus_upcoming.json"))
    server.route(
        "/v1/marketstatus/now",
        {
            "afterHours": False,
            "earlyHours": False,
            "market": "open",
            "serverTime": "2020-11-10T17:37:37-05:00",
            "exchanges": {"nasdaq": "open", "nyse": "open", "otc": "open"},
            "currencies": {"fx": "open", "crypto": "open"},
        },
    )
    contracts = fixture("v3_reference_options_contracts.json")
    server.paged(
        "/v3/reference/options/contracts",
        [
            {**contracts, "results": contracts["results"][:2]},
            {**contracts, "results": contracts["results"][2:]},
        ],
    )
    server.route("/v2/reference/news", fixture("v2_reference_news_GADG.json"))
    server.route(
        "/v3/reference/exchanges",
        {
            "status": "OK",
            "results": [
                {
                    "id": 10,
                    "type": "exchange",
                    "asset_class": "stocks",
                    "locale": "us",
                    "name": "New York Stock Exchange",
                    "mic": "XNYS",
                    "operating_mic": "XNYS",
                    "participant_id": "N",
                }
            ],
        },
    )
    server.route(
        "/v3/reference/conditions",
        {
            "status": "OK",
            "results": [
                {
                    "id": 2,
                    "type": "sale_condition",
                    "name": "Average Price Trade",
                    "asset_class": "stocks",
                    "sip_mapping": {"CTA": "B", "UTP": "W"},
                    "data_types": ["trade"],
                    "legacy": False,
                }
            ],
        },
    )

    async def work(p: ReferencePull) -> list[PullResult]:
        return [
            *await p.market_status(),
            await p.options_contracts("GADG"),
            await p.news("GADG"),
            await p.exchanges(),
            await p.conditions(),
        ]

    holidays, status, options, news, exchanges, conditions = pull(server, Lake(tmp_path), work)
    assert holidays.added == 5  # five distinct (exchange, date, status, name) entries
    assert status.added == 1
    assert (options.pages, options.added) == (2, 4)
    assert server.requests_to("/v3/reference/options/contracts")[0].query["underlying_ticker"] == "GADG"
    assert news.added == 1
    assert exchanges.added == 1
    assert conditions.added == 1
    lake = Lake(tmp_path)
    now = load_reference(lake, "market_status")
    codes = load_reference(lake, "conditions")
    articles = load_reference(lake, "news")
    assert now is not None
    assert codes is not None
    assert articles is not None
    assert now["server_time"][0] == dt.datetime(2020, 11, 10, 22, 37, 37, tzinfo=dt.UTC)
    assert codes.select("sip_mapping_cta", "sip_mapping_utp", "sip_mapping_opra").row(0) == ("B", "W", None)
    assert articles["tickers"][0].to_list() == ["GADG", "WDG.B", "WDGpA"]


def test_bars_range_grouped_and_empty(server: FakePolygon, tmp_path: Path) -> None:
    server.route(
        "/v2/aggs/ticker/GADG/range/1/day/2005-04-01/2005-04-04",
        fixture("v2_aggs_GADG_1day_2005-04-01_2005-04-04.json"),
    )
    server.route(
        "/v2/aggs/grouped/locale/us/market/stocks/2005-04-04",
        fixture("v2_aggs_grouped_stocks_2005-04-04.json"),
    )
    empty = {
        "ticker": "ZZZ",
        "queryCount": 0,
        "resultsCount": 0,
        "adjusted": False,
        "status": "OK",
        "request_id": "r",
    }
    server.route("/v2/aggs/ticker/ZZZ/range/1/day/2005-04-01/2005-04-04", empty)
    start, end = dt.date(2005, 4, 1), dt.date(2005, 4, 4)

    async def work(p: ReferencePull) -> list[PullResult]:
        return [
            await p.bars(BarsRequest("GADG", start, end)),
            await p.bars(BarsRequest(None, end, end)),
            await p.bars(BarsRequest("ZZZ", start, end)),
        ]

    ranged, grouped, nothing = pull(server, Lake(tmp_path), work)
    assert (ranged.added, grouped.added, nothing.added) == (2, 2, 0)
    assert (
        server.requests_to("/v2/aggs/ticker/GADG/range/1/day/2005-04-01/2005-04-04")[0].query["adjusted"]
        == "false"
    )
    bars = load_reference(Lake(tmp_path), "bars")
    assert bars is not None
    ranged_bars = bars.filter(pl.col("ticker") == "GADG").sort("timestamp")
    # Midnight New York on 2005-04-01 (EST, 05:00Z) and on 2005-04-04 (EDT, 04:00Z).
    assert ranged_bars["timestamp"].to_list() == [
        dt.datetime(2005, 4, 1, 5, tzinfo=dt.UTC),
        dt.datetime(2005, 4, 4, 4, tzinfo=dt.UTC),
    ]
    assert ranged_bars["close"].to_list() == [12.34, 12.5]
    assert ranged_bars["volume"].to_list() == [150000.0, 98765.5]
    grouped_bars = bars.filter(pl.col("ticker").is_in(["WDG.B", "ZVZZT"])).sort("ticker")
    assert grouped_bars.select("ticker", "volume", "vwap").rows() == [
        ("WDG.B", 895345.0, 9.9979),
        ("ZVZZT", 100.0, None),
    ]
