"""Financial statements and ratios (decoded JSON) → long, tidy frames.

One row per (ticker, fiscal period, filing date, statement, line item): the same shape for the new
``/stocks/financials/v1/{income-statements,balance-sheets,cash-flow-statements}`` endpoints (flat records,
one per statement and period) and the legacy ``/vX/reference/financials`` (nested
``financials.<statement>.<item>.{label,value,unit}``). ``filing_date`` is kept so point-in-time logic can
refuse a statement before it was filed.

Assumptions about the new endpoints (their shapes are not among the test fixtures; taken from the
vendor's MIT client models): identifiers ``tickers`` (list), ``cik``, ``fiscal_year``, ``fiscal_quarter``,
``timeframe`` (``quarterly``/``annual``/``trailing_twelve_months``), ``period_end``, optionally
``period_start`` and ``filing_date``; every other numeric field is a line item (no unit is given: the
values are in the filing's currency, per-share items per share). Ratios (``/stocks/financials/v1/ratios``)
are daily snapshots keyed by ``ticker`` and ``date``; every numeric field is one ratio.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from quantmini.core.reference import frame_of, results_of

FINANCIALS_SCHEMA: dict[str, pl.DataType] = {
    "ticker": pl.String(),
    "cik": pl.String(),
    "company_name": pl.String(),
    "fiscal_year": pl.Int64(),
    "fiscal_period": pl.String(),
    "timeframe": pl.String(),
    "period_start": pl.Date(),
    "period_end": pl.Date(),
    "filing_date": pl.Date(),
    "statement": pl.String(),
    "line_item": pl.String(),
    "label": pl.String(),
    "value": pl.Float64(),
    "unit": pl.String(),
    "source": pl.String(),
}
RATIOS_SCHEMA: dict[str, pl.DataType] = {
    "ticker": pl.String(),
    "cik": pl.String(),
    "date": pl.Date(),
    "ratio": pl.String(),
    "value": pl.Float64(),
}

#: New statement endpoints → the ``statement`` value of their rows (legacy names are kept as given).
STATEMENT_ENDPOINTS: dict[str, str] = {
    "income-statements": "income_statement",
    "balance-sheets": "balance_sheet",
    "cash-flow-statements": "cash_flow_statement",
}
#: Fields of a new-endpoint record that identify it rather than being line items.
_IDENTIFIERS = frozenset(
    {
        "tickers",
        "ticker",
        "cik",
        "company_name",
        "fiscal_year",
        "fiscal_quarter",
        "fiscal_period",
        "timeframe",
        "period_start",
        "period_end",
        "filing_date",
        "start_date",
        "end_date",
        "id",
    }
)
_PERIODS = {"annual": "FY", "trailing_twelve_months": "TTM", "ttm": "TTM"}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _ticker(record: Mapping[str, Any], requested: str | None) -> str | None:
    tickers = record.get("tickers")
    listed = [str(t) for t in tickers] if isinstance(tickers, list) else []
    if isinstance(record.get("ticker"), str):
        listed.insert(0, record["ticker"])
    if requested is not None and (requested in listed or not listed):
        return requested
    return listed[0] if listed else None


def _fiscal_period(record: Mapping[str, Any]) -> str | None:
    if isinstance(record.get("fiscal_period"), str):
        return str(record["fiscal_period"])
    timeframe = record.get("timeframe")
    if isinstance(timeframe, str) and timeframe in _PERIODS:
        return _PERIODS[timeframe]
    quarter = record.get("fiscal_quarter")
    return f"Q{quarter}" if isinstance(quarter, int) and not isinstance(quarter, bool) else None


def statements_from_payload(
    payload: Any, statement: str, endpoint: str = "financials", *, ticker: str | None = None
) -> pl.DataFrame:
    """A new-endpoint statement page → long rows (``statement`` names the table, e.g. ``balance_sheet``).

    ``ticker`` is the symbol that was asked for; it labels rows whose ``tickers`` list contains it (a
    company with several share classes lists them all).
    """
    rows: list[dict[str, Any]] = []
    for record in results_of(payload, endpoint):
        common = {
            "ticker": _ticker(record, ticker),
            "cik": record.get("cik"),
            "company_name": record.get("company_name"),
            "fiscal_year": record.get("fiscal_year"),
            "fiscal_period": _fiscal_period(record),
            "timeframe": record.get("timeframe"),
            "period_start": record.get("period_start"),
            "period_end": record.get("period_end"),
            "filing_date": record.get("filing_date"),
            "statement": statement,
            "source": "stocks/financials/v1",
        }
        for item, value in sorted(record.items()):
            number = _number(value)
            if item in _IDENTIFIERS or number is None:
                continue
            rows.append({**common, "line_item": item, "label": None, "value": number, "unit": None})
    return frame_of(rows, FINANCIALS_SCHEMA, endpoint)


def legacy_financials_from_payload(
    payload: Any, endpoint: str = "/vX/reference/financials", *, ticker: str | None = None
) -> pl.DataFrame:
    """Legacy ``/vX/reference/financials`` → long rows, one per statement line item."""
    rows: list[dict[str, Any]] = []
    for record in results_of(payload, endpoint):
        common = {
            "ticker": _ticker(record, ticker),
            "cik": record.get("cik"),
            "company_name": record.get("company_name"),
            "fiscal_year": record.get("fiscal_year"),
            "fiscal_period": _fiscal_period(record),
            "timeframe": record.get("timeframe"),
            "period_start": record.get("start_date"),
            "period_end": record.get("end_date"),
            "filing_date": record.get("filing_date"),
            "source": "vX/reference/financials",
        }
        financials = record.get("financials")
        for statement, items in sorted((financials if isinstance(financials, Mapping) else {}).items()):
            if not isinstance(items, Mapping):
                continue
            for item, fact in sorted(items.items()):
                if not isinstance(fact, Mapping) or _number(fact.get("value")) is None:
                    continue
                rows.append(
                    {
                        **common,
                        "statement": statement,
                        "line_item": item,
                        "label": fact.get("label"),
                        "value": _number(fact.get("value")),
                        "unit": fact.get("unit"),
                    }
                )
    return frame_of(rows, FINANCIALS_SCHEMA, endpoint)


def ratios_from_payload(payload: Any, endpoint: str = "ratios", *, ticker: str | None = None) -> pl.DataFrame:
    """``/stocks/financials/v1/ratios`` → long rows: ticker, cik, date, ratio, value."""
    rows: list[dict[str, Any]] = []
    for record in results_of(payload, endpoint):
        common = {"ticker": _ticker(record, ticker), "cik": record.get("cik"), "date": record.get("date")}
        for name, value in sorted(record.items()):
            number = _number(value)
            if name in _IDENTIFIERS or name == "date" or number is None:
                continue
            rows.append({**common, "ratio": name, "value": number})
    return frame_of(rows, RATIOS_SCHEMA, endpoint)
