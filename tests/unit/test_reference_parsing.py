"""Reference parsers read the vendor's response shapes (tests/fixtures/polygon-rest) and check the envelope.

Expected values are worked by hand from those files, never produced by the code under test.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from quantmini import ValidationError
from quantmini.core.corporate_actions import clean_dividends, clean_splits
from quantmini.core.reference import dividends_from_payload, splits_from_payload, tickers_from_payload
from tests.support.paths import rest_fixture

_fixture = rest_fixture


def test_legacy_splits_fixture() -> None:
    frame = splits_from_payload(_fixture("v3_reference_splits.json"))
    assert frame.rows() == [
        ("GADG", dt.date(2022, 7, 18), 1.0, 20.0, None),
        ("GDGA", dt.date(2022, 7, 18), 1.0, 20.0, None),
        ("RPT", dt.date(2022, 6, 29), 1.0, 10.0, None),
        ("RPT", dt.date(2022, 6, 22), 1.0, 10.0, None),
        ("RVS", dt.date(2022, 5, 20), 2.0, 1.0, None),
        ("ODD.C", dt.date(2022, 5, 2), 3.0, 4.0, None),
    ]


def test_legacy_dividends_fixture() -> None:
    frame = dividends_from_payload(_fixture("v3_reference_dividends.json"))
    assert frame.height == 4
    assert frame["cash_amount"][0] == pytest.approx(0.59375)
    assert frame["ex_dividend_date"][0] == dt.date(2024, 6, 13)
    assert frame["frequency"].to_list() == [4, 4, 0, 4]
    special = frame.row(2, named=True)
    assert (special["ticker"], special["dividend_type"], special["cash_amount"]) == ("GADG", "SC", 1.25)
    assert special["pay_date"] is None  # null in the body
    assert special["record_date"] == dt.date(2024, 2, 13)
    assert frame["currency"].null_count() == 4  # the legacy shape has no currency field


def test_ticker_pages_and_single_ticker_details() -> None:
    page = tickers_from_payload(_fixture("v3_reference_tickers_page1.json"))
    assert page["ticker"].to_list() == ["GADG", "WDG.B"]
    assert page["active"].to_list() == [True, True]
    second = tickers_from_payload(_fixture("v3_reference_tickers_page2.json"))
    assert second.select("ticker", "type", "cik").rows() == [
        ("WDGpA", "PFD", None),
        ("WDGX", "ETF", "0000000404"),
    ]
    assert second["last_updated_utc"][0] == dt.datetime(2022, 4, 27, tzinfo=dt.UTC)
    details = tickers_from_payload(_fixture("v3_reference_tickers_GADG.json"))
    assert details.row(0, named=True)["list_date"] == dt.date(1999, 11, 18)


def test_delisted_tickers_keep_their_last_day_and_null_identifiers() -> None:
    frame = tickers_from_payload(_fixture("v3_reference_tickers_delisted.json"))
    assert frame.select("ticker", "active", "delisted_utc").rows() == [
        ("GDGT", False, dt.datetime(2022, 6, 10, tzinfo=dt.UTC)),
        ("OLDCO", False, dt.datetime(2019, 3, 29, tzinfo=dt.UTC)),
    ]
    assert frame.row(1, named=True)["cik"] is None
    assert frame.row(1, named=True)["composite_figi"] is None
    assert frame.row(0, named=True)["list_date"] is None  # not in the list shape


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"status": "ERROR", "error": "You've exceeded the maximum requests per minute"}, "exceeded"),
        ({"status": "NOT_AUTHORIZED", "message": "not entitled"}, "not entitled"),
        ("<html>", "not a JSON object"),
    ],
)
def test_error_envelopes_become_readable_errors(payload: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        splits_from_payload(payload, "/v3/reference/splits")


def test_empty_results_are_empty_data() -> None:
    assert splits_from_payload({"status": "OK", "request_id": "x"}).is_empty()


def test_split_cleaning_dedupes_and_rejects_with_reasons() -> None:
    payload = _fixture("v3_reference_splits.json")
    frame = splits_from_payload(payload)
    extra = pl.DataFrame(
        {
            "ticker": ["DUP", "DUP", "BAD", "CON", "CON", "ONE", "HUGE"],
            "execution_date": [dt.date(2022, 1, 3)] * 7,
            "split_from": [1.0, 1.0, 0.0, 1.0, 1.0, 2.0, 1.0],
            "split_to": [4.0, 4.0, 2.0, 2.0, 3.0, 2.0, 100000.0],
            "id": [None] * 7,
        },
        schema=frame.schema,
    )
    cleaned = clean_splits(pl.concat([frame, extra]))
    accepted = cleaned.accepted.filter(pl.col("ticker").is_in(["DUP", "BAD", "CON", "ONE", "HUGE"]))
    assert accepted["ticker"].to_list() == ["DUP"]
    reasons = dict(cleaned.rejected.select("ticker", "reason").iter_rows())
    assert reasons["BAD"].startswith("non-positive")
    assert reasons["CON"].startswith("contradictory")
    assert reasons["ONE"].startswith("ratio 1:1")
    assert reasons["HUGE"].startswith("implausible")
    # The fixture's own records: RPT has two different 1:10 dates (both kept: different dates), the
    # reverse split and the odd 3:4 ratio are plausible and kept.
    assert cleaned.accepted.filter(pl.col("ticker") == "RPT").height == 2
    kept = cleaned.accepted.filter(pl.col("ticker").is_in(["RVS", "ODD.C"])).sort("ticker")
    assert kept.select("ticker", "split_from", "split_to").rows() == [("ODD.C", 3.0, 4.0), ("RVS", 2.0, 1.0)]


def test_dividend_cleaning() -> None:
    frame = dividends_from_payload(_fixture("v3_reference_dividends.json"))
    doubled = pl.concat([frame, frame, frame.head(1).with_columns(pl.lit(-1.0).alias("cash_amount"))])
    cleaned = clean_dividends(doubled)
    assert cleaned.accepted.height == 4  # the fixture's four distinct dividends, each once
    assert cleaned.rejected["reason"].to_list() == ["non-positive or missing cash_amount"]


def test_renames_from_the_vendor_events_fixture() -> None:
    from quantmini.core.entities import RUNS_SCHEMA, entity_table
    from quantmini.core.reference import ticker_events_from_payload

    events = ticker_events_from_payload(_fixture("vX_reference_tickers_GADG_events.json"))
    spans = entity_table(None, events, pl.DataFrame(schema=RUNS_SCHEMA))
    assert spans.select("ticker", "valid_from", "valid_to", "instrument").rows() == [
        ("GADG", dt.date(2022, 6, 13), dt.date(9999, 12, 31), "GADG"),
        ("GDGT", dt.date(1900, 1, 1), dt.date(2022, 6, 13), "GADG"),
    ]
    assert spans["entity"].n_unique() == 1
