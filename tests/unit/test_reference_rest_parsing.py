"""Pure parsers of the REST endpoints beyond splits/dividends/tickers, and the client's pure helpers.

Expected values are worked by hand from the bodies in tests/fixtures/polygon-rest (written in the vendor's
documented shapes) or from the vendor's documented examples, never produced by the code under test.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import polars as pl
import pytest

from quantmini import ValidationError
from quantmini.core import fundamentals, reference
from quantmini.core.rest_aggregates import BARS_SCHEMA, bars_from_payload
from quantmini.io.rest_client import Pacer, RestClient, RetryPolicy, redact_url
from tests.support.clock import VirtualClock
from tests.support.paths import rest_fixture

#: The vendor's documented ``/stocks/v1/dividends`` example record (massive.com docs).
V1_DIVIDEND = {
    "cash_amount": 0.26,
    "currency": "USD",
    "declaration_date": "2025-07-31",
    "distribution_type": "recurring",
    "ex_dividend_date": "2025-08-11",
    "frequency": 4,
    "historical_adjustment_factor": 0.997899,
    "id": "Ed2c9da60abda1e3f0e99a43f6465863c137b671e1f5cd3f833d1fcb4f4eb27fe",
    "pay_date": "2025-08-14",
    "record_date": "2025-08-11",
    "split_adjusted_cash_amount": 0.26,
    "ticker": "AAPL",
}


fixture = rest_fixture


def test_v1_dividends_keep_the_vendor_factor_and_the_legacy_columns() -> None:
    frame = reference.dividends_v1_from_payload({"status": "OK", "results": [V1_DIVIDEND]})
    row = frame.row(0, named=True)
    assert row["ex_dividend_date"] == dt.date(2025, 8, 11)
    assert row["historical_adjustment_factor"] == 0.997899
    assert row["distribution_type"] == "recurring"
    assert row["dividend_type"] is None  # the new endpoint has no legacy type code
    assert set(reference.DIVIDENDS_SCHEMA) < set(frame.columns)


def test_v1_splits_and_a_mixed_table_merge() -> None:
    v1 = reference.splits_v1_from_payload(
        {
            "results": [
                {
                    "ticker": "AAPL",
                    "execution_date": "2020-08-31",
                    "split_from": 1,
                    "split_to": 4,
                    "adjustment_type": "forward_split",
                    "historical_adjustment_factor": 0.25,
                }
            ]
        }
    )
    legacy = reference.splits_from_payload(fixture("v3_reference_splits.json"))
    mixed = pl.concat([legacy, v1], how="diagonal_relaxed")
    assert mixed.height == 6 + 1
    assert mixed["historical_adjustment_factor"].to_list() == [None] * 6 + [0.25]


def test_ticker_details_and_events_fixtures() -> None:
    details = reference.ticker_details_from_payload(fixture("v3_reference_tickers_GADG.json")).row(
        0, named=True
    )
    assert details["market_cap"] == 1234567890.5
    assert details["share_class_shares_outstanding"] == 50000000.0
    assert details["weighted_shares_outstanding"] == 49750000.0
    assert details["total_employees"] == 420
    assert details["sic_code"] == "3571"  # a code, kept as text
    assert details["round_lot"] is None  # absent from the body
    events = reference.ticker_events_from_payload(fixture("vX_reference_tickers_GADG_events.json"))
    assert events.select("ticker", "date").rows() == [
        ("GADG", dt.date(2022, 6, 13)),
        ("GDGT", dt.date(1999, 11, 18)),
    ]
    assert set(events["composite_figi"]) == {"BBG00TEST001"}
    assert set(events["event_type"]) == {"ticker_change"}


def test_options_news_holidays_fixtures() -> None:
    frame = reference.options_contracts_from_payload(fixture("v3_reference_options_contracts.json"))
    assert frame["strike_price"].to_list() == [10.0, 12.5, 10.0, 15.0]
    assert frame["contract_type"].to_list() == ["call", "call", "put", "put"]
    assert frame["expiration_date"].to_list() == [dt.date(2022, 5, 20)] * 3 + [dt.date(2022, 6, 17)]
    assert set(frame["shares_per_contract"]) == {100.0}
    news = reference.news_from_payload(fixture("v2_reference_news_GADG.json")).row(0, named=True)
    assert news["publisher_name"] == "Example Wire"
    assert news["published_utc"] == dt.datetime(2022, 4, 28, 17, 8, tzinfo=dt.UTC)
    assert (news["tickers"], news["keywords"]) == (["GADG", "WDG.B", "WDGpA"], ["supply", "gadgets"])
    holidays = reference.market_holidays_from_payload(fixture("v1_marketstatus_upcoming.json"))
    assert holidays.height == 5
    assert holidays.filter(pl.col("status") == "closed")["open"].null_count() == 3
    early = holidays.filter(pl.col("status") == "early-close")
    assert early["exchange"].to_list() == ["NYSE", "NASDAQ"]
    assert early["open"][0] == dt.datetime(2022, 11, 25, 14, 30, tzinfo=dt.UTC)
    assert early["close"][0] == dt.datetime(2022, 11, 25, 18, 0, tzinfo=dt.UTC)


def test_market_status_and_codes() -> None:
    status = reference.market_status_from_payload(
        {
            "market": "extended-hours",
            "serverTime": "2020-11-10T17:37:37-05:00",
            "earlyHours": False,
            "afterHours": True,
            "exchanges": {"nyse": "extended-hours"},
        }
    ).row(0, named=True)
    assert status["server_time"] == dt.datetime(2020, 11, 10, 22, 37, 37, tzinfo=dt.UTC)
    assert (status["after_hours"], status["exchange_nyse"], status["exchange_otc"]) == (
        True,
        "extended-hours",
        None,
    )
    with pytest.raises(ValidationError, match="not a JSON object"):
        reference.market_status_from_payload([])
    codes = reference.conditions_from_payload(
        {"results": [{"id": 1, "name": "Acquisition", "sip_mapping": {"UTP": "A"}, "data_types": ["trade"]}]}
    ).row(0, named=True)
    assert (codes["id"], codes["sip_mapping_utp"], codes["data_types"]) == (1, "A", ["trade"])
    exchanges = reference.exchanges_from_payload({"results": [{"id": "not a number", "mic": "XNAS"}]})
    assert exchanges.row(0, named=True)["id"] is None  # tolerated: one bad value is null, not a failure


def test_legacy_financials_become_one_row_per_line_item() -> None:
    frame = fundamentals.legacy_financials_from_payload(
        fixture("vX_reference_financials.json"), ticker="GADG"
    )
    # 10 facts in four statements; the null "other_comprehensive_income_loss" is skipped.
    assert frame.height == 9
    assert frame.group_by("statement").len().sort("statement").rows() == [
        ("balance_sheet", 3),
        ("cash_flow_statement", 2),
        ("comprehensive_income", 1),
        ("income_statement", 3),
    ]
    assert "other_comprehensive_income_loss" not in frame["line_item"].to_list()
    eps = frame.filter(pl.col("line_item") == "diluted_earnings_per_share").row(0, named=True)
    assert (eps["value"], eps["unit"], eps["label"]) == (0.81, "USD / shares", "Diluted Earnings Per Share")
    assert (eps["filing_date"], eps["period_end"]) == (dt.date(2022, 5, 3), dt.date(2022, 4, 3))
    assert (eps["ticker"], eps["fiscal_year"], eps["fiscal_period"]) == ("GADG", 2022, "Q1")
    cash = dict(
        frame.filter(pl.col("statement") == "cash_flow_statement").select("line_item", "value").rows()
    )
    assert cash == {"net_cash_flow": -150000.0, "exchange_gains_losses": 0.0}


@pytest.mark.parametrize(
    ("timeframe", "quarter", "period"),
    [("quarterly", 3, "Q3"), ("annual", None, "FY"), ("trailing_twelve_months", 4, "TTM")],
)
def test_new_statements_name_the_fiscal_period(timeframe: str, quarter: int | None, period: str) -> None:
    record = {
        "tickers": ["BRK.A", "BRK.B"],
        "cik": "1067983",
        "fiscal_year": 2024,
        "fiscal_quarter": quarter,
        "timeframe": timeframe,
        "period_end": "2024-09-30",
        "revenue": 1.0,
        "note": "text",
        "flag": True,
    }
    frame = fundamentals.statements_from_payload({"results": [record]}, "income_statement", ticker="BRK.B")
    assert frame.select("ticker", "fiscal_period", "line_item", "value").rows() == [
        ("BRK.B", period, "revenue", 1.0)
    ]
    unlisted = fundamentals.statements_from_payload({"results": [record]}, "income_statement", ticker="XYZ")
    assert unlisted["ticker"].to_list() == ["BRK.A"]


def test_ratios_are_long() -> None:
    frame = fundamentals.ratios_from_payload(
        {
            "results": [
                {
                    "ticker": "AAPL",
                    "cik": "320193",
                    "date": "2025-01-02",
                    "price_to_earnings": 30.5,
                    "current": 0.9,
                    "average_volume": None,
                }
            ]
        }
    )
    assert sorted(frame.select("ratio", "value").rows()) == [("current", 0.9), ("price_to_earnings", 30.5)]


def test_aggregates_ms_timestamps_and_empty_results() -> None:
    payload = fixture("v2_aggs_GADG_1day_2005-04-01_2005-04-04.json")
    frame = bars_from_payload(payload, timespan="day", multiplier=1)
    assert frame.columns == list(BARS_SCHEMA)
    # 1112331600000 ms = 2005-04-01T05:00Z: midnight in New York (EST) that day; 1112587200000 ms =
    # 2005-04-04T04:00Z: midnight after the switch to daylight time (EDT) on 2005-04-03.
    assert frame["timestamp"].to_list() == [
        dt.datetime(2005, 4, 1, 5, 0, tzinfo=dt.UTC),
        dt.datetime(2005, 4, 4, 4, 0, tzinfo=dt.UTC),
    ]
    assert frame["vwap"].to_list() == [12.3456, 12.4321]
    assert frame["volume"].to_list() == [150000.0, 98765.5]  # a fractional volume is kept
    assert frame["adjusted"].to_list() == [True, True]  # echoed by the vendor
    empty = bars_from_payload({"ticker": "X", "status": "OK", "resultsCount": 0, "adjusted": False})
    assert empty.is_empty()
    assert empty.schema == pl.Schema(BARS_SCHEMA)


def test_every_table_has_natural_keys_within_its_columns() -> None:
    schemas = {
        "splits": reference.SPLITS_SCHEMA,
        "dividends": reference.DIVIDENDS_SCHEMA,
        "tickers": reference.TICKERS_SCHEMA,
        "ticker_details": reference.TICKER_DETAILS_SCHEMA,
        "ticker_events": reference.TICKER_EVENTS_SCHEMA,
        "options_contracts": reference.OPTIONS_CONTRACTS_SCHEMA,
        "news": reference.NEWS_SCHEMA,
        "financials": fundamentals.FINANCIALS_SCHEMA,
        "financial_ratios": fundamentals.RATIOS_SCHEMA,
        "market_holidays": reference.MARKET_HOLIDAYS_SCHEMA,
        "market_status": reference.MARKET_STATUS_SCHEMA,
        "exchanges": reference.EXCHANGES_SCHEMA,
        "conditions": reference.CONDITIONS_SCHEMA,
        "bars": BARS_SCHEMA,
    }
    assert set(schemas) == set(reference.NATURAL_KEYS)
    for table, keys in reference.NATURAL_KEYS.items():
        assert set(keys) <= set(schemas[table]), table


def test_backoff_grows_and_stays_within_bounds() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        delays = [policy.backoff(attempt) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)


def test_the_pacer_waits_only_for_what_is_left_of_the_interval() -> None:
    clock = VirtualClock()
    pacer = Pacer(600.0, clock)  # one start every 0.1 s

    async def scenario() -> list[float]:
        starts = []
        for work in (0.03, 0.25, 0.0, 0.0):
            await pacer.wait()
            starts.append(clock.elapsed())
            clock.advance(work)  # the request and what the caller did with it
        return starts

    starts = asyncio.run(scenario())
    # Starts at 0; after 0.03 s of work 0.07 s are left to wait; after 0.25 s of work nothing is; with no
    # work in between, a full 0.1 s.
    assert clock.sleeps == pytest.approx([0.07, 0.1])
    assert starts == pytest.approx([0.0, 0.1, 0.35, 0.45])


def test_next_url_is_rebased_without_the_key() -> None:
    c = RestClient("http://127.0.0.1:9/proxy", "k", requests_per_minute=60)
    assert c.follow("https://api.massive.com/v3/reference/tickers?cursor=abc&apiKey=k") == (
        "http://127.0.0.1:9/proxy/v3/reference/tickers?cursor=abc"
    )
    assert c.follow("http://127.0.0.1:9/proxy/x?cursor=1") == "http://127.0.0.1:9/proxy/x?cursor=1"
    assert c.url_for("/v3/reference/tickers", {"active": False, "limit": 1000}) == (
        "http://127.0.0.1:9/proxy/v3/reference/tickers?active=false&limit=1000"
    )
    assert redact_url("https://h/p?APIKEY=1") == "https://h/p"
