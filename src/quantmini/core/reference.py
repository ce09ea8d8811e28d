"""Vendor REST reference payloads (decoded JSON) → typed Polars frames.

One parser per endpoint family, shared by every way a payload arrives (the REST client, a local mirror
of responses, the sample generator's files). Both the legacy ``/v3/reference/*`` shapes and the newer
``/stocks/v1/*`` shapes are accepted; they share the fields of :data:`SPLITS_SCHEMA` and
:data:`DIVIDENDS_SCHEMA`. The ``*_v1_from_payload`` parsers also keep what only the new shapes carry
(``adjustment_type``, ``historical_adjustment_factor``, ``distribution_type``,
``split_adjusted_cash_amount``); a table mixing both holds nulls there for legacy rows.

Parsers are tolerant: a field the payload lacks becomes null, fields they do not know are ignored, and a
value of the wrong type becomes null rather than failing the whole page. Fundamentals live in
:mod:`quantmini.core.fundamentals`, REST aggregates in :mod:`quantmini.core.rest_aggregates`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from quantmini._exceptions import ValidationError

STRINGS = pl.List(pl.String())

SPLITS_SCHEMA: dict[str, pl.DataType] = {
    "ticker": pl.String(),
    "execution_date": pl.Date(),
    "split_from": pl.Float64(),
    "split_to": pl.Float64(),
    "id": pl.String(),
}
#: ``/stocks/v1/splits`` adds the split direction and the vendor's cumulative factor.
SPLITS_V1_SCHEMA: dict[str, pl.DataType] = {
    **SPLITS_SCHEMA,
    "adjustment_type": pl.String(),
    "historical_adjustment_factor": pl.Float64(),
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
#: ``/stocks/v1/dividends`` adds a recurrence class, the split-adjusted amount and the vendor's factor.
DIVIDENDS_V1_SCHEMA: dict[str, pl.DataType] = {
    **DIVIDENDS_SCHEMA,
    "distribution_type": pl.String(),
    "split_adjusted_cash_amount": pl.Float64(),
    "historical_adjustment_factor": pl.Float64(),
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

TICKER_DETAILS_SCHEMA: dict[str, pl.DataType] = {
    **TICKERS_SCHEMA,
    "ticker_root": pl.String(),
    "sic_code": pl.String(),
    "sic_description": pl.String(),
    "description": pl.String(),
    "homepage_url": pl.String(),
    "total_employees": pl.Int64(),
    "round_lot": pl.Int64(),
    "market_cap": pl.Float64(),
    "share_class_shares_outstanding": pl.Float64(),
    "weighted_shares_outstanding": pl.Float64(),
}
TICKER_EVENTS_SCHEMA: dict[str, pl.DataType] = {
    "composite_figi": pl.String(),
    "cik": pl.String(),
    "name": pl.String(),
    "event_type": pl.String(),
    "date": pl.Date(),
    "ticker": pl.String(),
}
OPTIONS_CONTRACTS_SCHEMA: dict[str, pl.DataType] = {
    "ticker": pl.String(),
    "underlying_ticker": pl.String(),
    "contract_type": pl.String(),
    "exercise_style": pl.String(),
    "expiration_date": pl.Date(),
    "strike_price": pl.Float64(),
    "shares_per_contract": pl.Float64(),
    "primary_exchange": pl.String(),
    "cfi": pl.String(),
    "correction": pl.Int64(),
}
NEWS_SCHEMA: dict[str, pl.DataType] = {
    "id": pl.String(),
    "published_utc": pl.Datetime("us", "UTC"),
    "publisher_name": pl.String(),
    "author": pl.String(),
    "title": pl.String(),
    "description": pl.String(),
    "article_url": pl.String(),
    "amp_url": pl.String(),
    "image_url": pl.String(),
    "tickers": STRINGS,
    "keywords": STRINGS,
}
MARKET_HOLIDAYS_SCHEMA: dict[str, pl.DataType] = {
    "exchange": pl.String(),
    "name": pl.String(),
    "date": pl.Date(),
    "status": pl.String(),
    "open": pl.Datetime("us", "UTC"),
    "close": pl.Datetime("us", "UTC"),
}
MARKET_STATUS_SCHEMA: dict[str, pl.DataType] = {
    "server_time": pl.Datetime("us", "UTC"),
    "market": pl.String(),
    "early_hours": pl.Boolean(),
    "after_hours": pl.Boolean(),
    "exchange_nyse": pl.String(),
    "exchange_nasdaq": pl.String(),
    "exchange_otc": pl.String(),
    "currency_fx": pl.String(),
    "currency_crypto": pl.String(),
}
EXCHANGES_SCHEMA: dict[str, pl.DataType] = {
    "id": pl.Int64(),
    "type": pl.String(),
    "asset_class": pl.String(),
    "locale": pl.String(),
    "name": pl.String(),
    "acronym": pl.String(),
    "mic": pl.String(),
    "operating_mic": pl.String(),
    "participant_id": pl.String(),
    "url": pl.String(),
}
CONDITIONS_SCHEMA: dict[str, pl.DataType] = {
    "id": pl.Int64(),
    "type": pl.String(),
    "name": pl.String(),
    "abbreviation": pl.String(),
    "asset_class": pl.String(),
    "description": pl.String(),
    "data_types": STRINGS,
    "legacy": pl.Boolean(),
    "exchange": pl.Int64(),
    "sip_mapping_cta": pl.String(),
    "sip_mapping_utp": pl.String(),
    "sip_mapping_opra": pl.String(),
}

#: Natural keys: a re-run that brings the same facts again adds nothing. Tables whose facts change over
#: time (ticker details, market status) key on the facts themselves, so each change is kept as a new row.
NATURAL_KEYS: dict[str, tuple[str, ...]] = {
    "splits": ("ticker", "execution_date", "split_from", "split_to"),
    "dividends": ("ticker", "ex_dividend_date", "cash_amount", "dividend_type"),
    "tickers": ("ticker", "active", "list_date", "delisted_utc"),
    "ticker_details": (
        "ticker",
        "active",
        "composite_figi",
        "name",
        "list_date",
        "delisted_utc",
        "market_cap",
        "share_class_shares_outstanding",
        "weighted_shares_outstanding",
    ),
    "ticker_events": ("composite_figi", "cik", "event_type", "date", "ticker"),
    "options_contracts": ("ticker", "underlying_ticker", "strike_price", "shares_per_contract"),
    "news": ("id",),
    "financials": (
        "ticker",
        "cik",
        "fiscal_year",
        "fiscal_period",
        "period_end",
        "filing_date",
        "statement",
        "line_item",
        "source",
    ),
    "financial_ratios": ("ticker", "cik", "date", "ratio"),
    "market_holidays": ("exchange", "date", "status", "name"),
    "market_status": ("server_time",),
    "exchanges": ("id", "asset_class", "locale", "mic", "name"),
    "conditions": ("id", "asset_class", "type", "name"),
    "bars": ("ticker", "timespan", "multiplier", "adjusted", "timestamp"),
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
    if results is None:
        return []
    if isinstance(results, Mapping):
        return [results]
    if not isinstance(results, list):
        raise ValidationError(f"{endpoint}: 'results' is neither a list nor an object")
    return [r for r in results if isinstance(r, Mapping)]


def frame_of(
    rows: Sequence[Mapping[str, Any]], schema: Mapping[str, pl.DataType], endpoint: str
) -> pl.DataFrame:
    """Rows (flat mappings) → a frame with exactly ``schema``; missing or ill-typed values become null."""
    scalars = [name for name, dtype in schema.items() if not isinstance(dtype, pl.List)]
    records = [{name: _scalar(row.get(name)) for name in scalars} for row in rows]
    raw = pl.DataFrame(records, schema=dict.fromkeys(scalars, pl.String()), strict=False)
    if not rows:
        raw = pl.DataFrame(schema=dict.fromkeys(scalars, pl.String()))
    try:
        typed = raw.select(_cast(name, schema[name]) for name in scalars)
    except pl.exceptions.PolarsError as exc:
        raise ValidationError(f"{endpoint}: unexpected value in response: {exc}") from exc
    lists = [
        pl.Series(name, [_strings(row.get(name)) for row in rows], dtype=STRINGS)
        for name, dtype in schema.items()
        if isinstance(dtype, pl.List)
    ]
    return typed.with_columns(lists).select(list(schema))


def _scalar(value: Any) -> Any:
    return None if isinstance(value, Mapping | list) else value


def _strings(value: Any) -> list[str] | None:
    if not isinstance(value, list):
        return None
    return [str(item) for item in value if item is not None]


def _cast(name: str, dtype: pl.DataType) -> pl.Expr:
    col = pl.col(name)
    if isinstance(dtype, pl.Date):
        return col.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False).alias(name)
    if isinstance(dtype, pl.Datetime):
        return col.str.to_datetime(time_zone="UTC", strict=False).dt.cast_time_unit("us").alias(name)
    if isinstance(dtype, pl.Boolean):
        return (col.str.to_lowercase() == "true").alias(name)
    if isinstance(dtype, pl.Int64):
        return col.cast(pl.Float64, strict=False).cast(pl.Int64, strict=False).alias(name)
    return col.cast(dtype, strict=False).alias(name)


def splits_from_payload(payload: Any, endpoint: str = "splits") -> pl.DataFrame:
    """Split records: ticker, execution_date, split_from, split_to, id."""
    return frame_of(results_of(payload, endpoint), SPLITS_SCHEMA, endpoint)


def splits_v1_from_payload(payload: Any, endpoint: str = "/stocks/v1/splits") -> pl.DataFrame:
    """``/stocks/v1/splits`` records: :data:`SPLITS_SCHEMA` plus direction and the vendor's factor."""
    return frame_of(results_of(payload, endpoint), SPLITS_V1_SCHEMA, endpoint)


def dividends_from_payload(payload: Any, endpoint: str = "dividends") -> pl.DataFrame:
    """Cash dividend records (ex-date, amount, type, dates)."""
    return frame_of(results_of(payload, endpoint), DIVIDENDS_SCHEMA, endpoint)


def dividends_v1_from_payload(payload: Any, endpoint: str = "/stocks/v1/dividends") -> pl.DataFrame:
    """``/stocks/v1/dividends`` records: :data:`DIVIDENDS_SCHEMA` plus class, adjusted amount, factor."""
    return frame_of(results_of(payload, endpoint), DIVIDENDS_V1_SCHEMA, endpoint)


def tickers_from_payload(payload: Any, endpoint: str = "tickers") -> pl.DataFrame:
    """Ticker records, active and delisted."""
    return frame_of(results_of(payload, endpoint), TICKERS_SCHEMA, endpoint)


def ticker_details_from_payload(payload: Any, endpoint: str = "ticker details") -> pl.DataFrame:
    """One ``/v3/reference/tickers/{t}`` record: identity, classification and share counts."""
    return frame_of(results_of(payload, endpoint), TICKER_DETAILS_SCHEMA, endpoint)


def ticker_events_from_payload(payload: Any, endpoint: str = "ticker events") -> pl.DataFrame:
    """``/vX/reference/tickers/{t}/events``: one row per event; ``ticker`` is the symbol taken on ``date``."""
    rows: list[Mapping[str, Any]] = []
    for result in results_of(payload, endpoint):
        events = result.get("events")
        for event in events if isinstance(events, list) else []:
            if not isinstance(event, Mapping):
                continue
            kind = event.get("type")
            detail = event.get(kind) if isinstance(kind, str) else None
            rows.append(
                {
                    "composite_figi": result.get("composite_figi"),
                    "cik": result.get("cik"),
                    "name": result.get("name"),
                    "event_type": kind,
                    "date": event.get("date"),
                    "ticker": detail.get("ticker") if isinstance(detail, Mapping) else None,
                }
            )
    return frame_of(rows, TICKER_EVENTS_SCHEMA, endpoint)


def options_contracts_from_payload(payload: Any, endpoint: str = "options contracts") -> pl.DataFrame:
    """``/v3/reference/options/contracts`` records."""
    return frame_of(results_of(payload, endpoint), OPTIONS_CONTRACTS_SCHEMA, endpoint)


def news_from_payload(payload: Any, endpoint: str = "news") -> pl.DataFrame:
    """``/v2/reference/news`` articles (publisher flattened to ``publisher_name``; insights not kept)."""
    rows = []
    for row in results_of(payload, endpoint):
        publisher = row.get("publisher")
        name = publisher.get("name") if isinstance(publisher, Mapping) else None
        rows.append({**row, "publisher_name": name})
    return frame_of(rows, NEWS_SCHEMA, endpoint)


def market_holidays_from_payload(payload: Any, endpoint: str = "market holidays") -> pl.DataFrame:
    """``/v1/marketstatus/upcoming`` (a bare JSON array): closed and early-close days per exchange."""
    return frame_of(results_of(payload, endpoint), MARKET_HOLIDAYS_SCHEMA, endpoint)


def market_status_from_payload(payload: Any, endpoint: str = "market status") -> pl.DataFrame:
    """``/v1/marketstatus/now`` (a bare object without envelope) → one row."""
    if not isinstance(payload, Mapping):
        raise ValidationError(f"{endpoint}: response is not a JSON object")
    exchanges = payload.get("exchanges")
    currencies = payload.get("currencies")
    ex = exchanges if isinstance(exchanges, Mapping) else {}
    cur = currencies if isinstance(currencies, Mapping) else {}
    row = {
        "server_time": payload.get("serverTime"),
        "market": payload.get("market"),
        "early_hours": payload.get("earlyHours"),
        "after_hours": payload.get("afterHours"),
        "exchange_nyse": ex.get("nyse"),
        "exchange_nasdaq": ex.get("nasdaq"),
        "exchange_otc": ex.get("otc"),
        "currency_fx": cur.get("fx"),
        "currency_crypto": cur.get("crypto"),
    }
    return frame_of([row], MARKET_STATUS_SCHEMA, endpoint)


def exchanges_from_payload(payload: Any, endpoint: str = "exchanges") -> pl.DataFrame:
    """``/v3/reference/exchanges`` records."""
    return frame_of(results_of(payload, endpoint), EXCHANGES_SCHEMA, endpoint)


def conditions_from_payload(payload: Any, endpoint: str = "conditions") -> pl.DataFrame:
    """``/v3/reference/conditions`` records (``sip_mapping`` flattened to one column per feed)."""
    rows = []
    for row in results_of(payload, endpoint):
        mapping = row.get("sip_mapping")
        sip = mapping if isinstance(mapping, Mapping) else {}
        rows.append({**row, **{f"sip_mapping_{feed.lower()}": code for feed, code in sip.items()}})
    return frame_of(rows, CONDITIONS_SCHEMA, endpoint)
