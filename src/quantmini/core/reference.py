"""Vendor REST reference payloads (decoded JSON) → typed Polars frames.

One parser per endpoint family, shared by every way a payload arrives (the REST client, a local mirror
of responses, the sample generator's files). Both the legacy ``/v3/reference/*`` shapes and the newer
``/stocks/v1/*`` shapes are accepted; they share the fields read here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from quantmini._exceptions import ValidationError

SPLITS_SCHEMA: dict[str, pl.DataType] = {
    "ticker": pl.String(),
    "execution_date": pl.Date(),
    "split_from": pl.Float64(),
    "split_to": pl.Float64(),
    "id": pl.String(),
}
DIVIDENDS_SCHEMA: dict[str, pl.DataType] = {
    "ticker": pl.String(),
    "ex_dividend_date": pl.Date(),
    "cash_amount": pl.Float64(),
    "currency": pl.String(),
    "dividend_type": pl.String(),
    "frequency": pl.Int64(),
    "declaration_date": pl.Date(),
    "record_date": pl.Date(),
    "pay_date": pl.Date(),
    "id": pl.String(),
}
TICKERS_SCHEMA: dict[str, pl.DataType] = {
    "ticker": pl.String(),
    "name": pl.String(),
    "market": pl.String(),
    "locale": pl.String(),
    "type": pl.String(),
    "active": pl.Boolean(),
    "primary_exchange": pl.String(),
    "currency_name": pl.String(),
    "cik": pl.String(),
    "composite_figi": pl.String(),
    "share_class_figi": pl.String(),
    "list_date": pl.Date(),
    "delisted_utc": pl.Datetime("us", "UTC"),
    "last_updated_utc": pl.Datetime("us", "UTC"),
}

#: Natural keys: a re-run that brings the same facts again adds nothing.
NATURAL_KEYS: dict[str, tuple[str, ...]] = {
    "splits": ("ticker", "execution_date", "split_from", "split_to"),
    "dividends": ("ticker", "ex_dividend_date", "cash_amount", "dividend_type"),
    "tickers": ("ticker", "active", "list_date", "delisted_utc"),
}


def results_of(payload: Any, endpoint: str) -> list[Mapping[str, Any]]:
    """The ``results`` list of a vendor envelope, after checking its ``status``."""
    if isinstance(payload, list):
        return [r for r in payload if isinstance(r, Mapping)]
    if not isinstance(payload, Mapping):
        raise ValidationError(f"{endpoint}: response is not a JSON object")
    status = payload.get("status")
    if status not in (None, "OK", "DELAYED"):
        message = payload.get("error") or payload.get("message") or status
        raise ValidationError(f"{endpoint}: vendor returned status {status!r}: {message}")
    results = payload.get("results", [])
    if isinstance(results, Mapping):
        return [results]
    if not isinstance(results, list):
        raise ValidationError(f"{endpoint}: 'results' is neither a list nor an object")
    return [r for r in results if isinstance(r, Mapping)]


def _frame(rows: list[Mapping[str, Any]], schema: Mapping[str, pl.DataType], endpoint: str) -> pl.DataFrame:
    records = [{name: row.get(name) for name in schema} for row in rows]
    raw = pl.DataFrame(records, schema=dict.fromkeys(schema, pl.String()), strict=False)
    try:
        return raw.select(_cast(name, dtype) for name, dtype in schema.items())
    except pl.exceptions.PolarsError as exc:
        raise ValidationError(f"{endpoint}: unexpected value in response: {exc}") from exc


def _cast(name: str, dtype: pl.DataType) -> pl.Expr:
    col = pl.col(name)
    if isinstance(dtype, pl.Date):
        return col.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False).alias(name)
    if isinstance(dtype, pl.Datetime):
        return col.str.to_datetime(time_zone="UTC", strict=False).dt.cast_time_unit("us").alias(name)
    if isinstance(dtype, pl.Boolean):
        return (col.str.to_lowercase() == "true").alias(name)
    return col.cast(dtype, strict=False).alias(name)


def splits_from_payload(payload: Any, endpoint: str = "splits") -> pl.DataFrame:
    """Split records: ticker, execution_date, split_from, split_to, id."""
    return _frame(results_of(payload, endpoint), SPLITS_SCHEMA, endpoint)


def dividends_from_payload(payload: Any, endpoint: str = "dividends") -> pl.DataFrame:
    """Cash dividend records (ex-date, amount, type, dates)."""
    return _frame(results_of(payload, endpoint), DIVIDENDS_SCHEMA, endpoint)


def tickers_from_payload(payload: Any, endpoint: str = "tickers") -> pl.DataFrame:
    """Ticker records, active and delisted."""
    return _frame(results_of(payload, endpoint), TICKERS_SCHEMA, endpoint)


PARSERS = {
    "splits": splits_from_payload,
    "dividends": dividends_from_payload,
    "tickers": tickers_from_payload,
}
