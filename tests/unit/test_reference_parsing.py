"""Reference parsers read the vendor's real response shapes (MIT fixtures) and check the envelope."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest

from quantmini import ValidationError
from quantmini.core.corporate_actions import clean_dividends, clean_splits
from quantmini.core.reference import dividends_from_payload, splits_from_payload, tickers_from_payload
from tests.support.paths import VENDOR_FIXTURES

FIXTURES = VENDOR_FIXTURES


def _fixture(name: str) -> object:
    return json.loads((FIXTURES / name).read_text())


def test_legacy_splits_fixture() -> None:
    payload = _fixture("v3_reference_splits.json")
    frame = splits_from_payload(payload)
    assert isinstance(payload, dict)
    assert frame.height == len(payload["results"])
    first = payload["results"][0]
    assert frame.row(0, named=True) | {"id": None} == {
        "ticker": first["ticker"],
        "execution_date": dt.date.fromisoformat(first["execution_date"]),
        "split_from": float(first["split_from"]),
        "split_to": float(first["split_to"]),
        "id": None,
    }


def test_legacy_dividends_fixture() -> None:
    payload = _fixture("v3_reference_dividends.json")
    frame = dividends_from_payload(payload)
    assert isinstance(payload, dict)
    assert frame.height == len(payload["results"])
    assert frame["cash_amount"][0] == pytest.approx(0.59375)
    assert frame["ex_dividend_date"][0] == dt.date(2025, 6, 12)
    assert frame["frequency"][0] == 4


def test_ticker_pages_and_single_ticker_details() -> None:
    page = tickers_from_payload(_fixture("v3_reference_tickers_page1.json"))
    assert page["ticker"].to_list() == ["A", "AA"]
    assert page["active"].to_list() == [True, True]
    details = tickers_from_payload(_fixture("v3_reference_tickers_AAPL.json"))
    assert details.row(0, named=True)["list_date"] == dt.date(1980, 12, 12)


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
    # The fixture's own records: SHOP has two different 1:10 dates (both kept: different dates).
    assert cleaned.accepted.filter(pl.col("ticker") == "SHOP").height == 2


def test_dividend_cleaning() -> None:
    frame = dividends_from_payload(_fixture("v3_reference_dividends.json"))
    doubled = pl.concat([frame, frame, frame.head(1).with_columns(pl.lit(-1.0).alias("cash_amount"))])
    cleaned = clean_dividends(doubled)
    assert (
        cleaned.accepted.height
        == frame.unique(["ticker", "ex_dividend_date", "cash_amount", "dividend_type"]).height
    )
    assert cleaned.rejected["reason"].to_list() == ["non-positive or missing cash_amount"]


def test_renames_from_the_vendor_events_fixture() -> None:
    from quantmini.core.corporate_actions import renames_from_events
    from quantmini.core.reference import ticker_events_from_payload

    events = ticker_events_from_payload(_fixture("vX_reference_tickers_META_events.json"))
    renames = renames_from_events(events)
    assert renames.rows() == [("FB", "META", dt.date(2022, 6, 11))]
