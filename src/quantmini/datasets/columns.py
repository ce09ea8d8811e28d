"""What every stored column means, and the tables of each layer of a data type with their schemas.

One place for column documentation: :data:`COLUMN_DOCS` (by column name, ``"<table>.<column>"`` where a
table's column means something of its own), the feature library's descriptions for feature columns
(:mod:`quantmini.features.library`) and :data:`~quantmini.core.gold.QLIB_FIELD_DOCS` for the fields of a
Qlib root. ``quantmini schema show`` prints them; ``quantmini schema check`` compares stored files with
the schemas listed here. Importing this module imports no dataframe library.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal

import polars as pl
import pyarrow as pa

from quantmini.core.bronze import QUARANTINE_SCHEMA
from quantmini.core.gold import QLIB_FIELD_DOCS
from quantmini.datasets.base import DatasetSpec
from quantmini.features.library import set_of_column

Layer = Literal["bronze", "silver", "quarantine", "gold", "reference"]
LAYERS: tuple[Layer, ...] = ("bronze", "silver", "quarantine", "gold", "reference")

_RATIO = "from the latest annual statement filed before the session"

#: Column → what it holds. ``"<table>.<column>"`` entries override the plain name in that table.
COLUMN_DOCS: Mapping[str, str] = {
    # Aggregate bars (every data type's bronze).
    "ticker": "symbol as the vendor names it: the stock ticker, or the OCC ticker of an option contract",
    "session_date": "exchange session (America/New_York) the row belongs to",
    "ts": "start of the bar in exchange time (window_start as a timestamp)",
    "window_start": "start of the bar, nanoseconds since the Unix epoch (UTC), as the vendor sends it",
    "open": "first trade price of the bar, unadjusted",
    "high": "highest trade price of the bar, unadjusted",
    "low": "lowest trade price of the bar, unadjusted",
    "close": "last trade price of the bar, unadjusted",
    "volume": "shares (or contracts) traded in the bar, unadjusted; fractional from 2026-02-23",
    "transactions": "number of trades in the bar",
    "regular_session": "the bar starts within the regular session (09:30 to the session's close)",
    # Option contract fields (bronze: parsed from the OCC ticker; silver: resolved and priced).
    "underlying": "OCC root of the contract in bronze; in silver the stock it delivers (null: unresolved)",
    "expiration": "expiration date of the contract",
    "option_type": "'call' or 'put'",
    "strike": "strike price",
    "root": "OCC root of the contract ticker",
    "shares_per_contract": "shares of the underlying one contract delivers (100 for a standard contract)",
    "adjusted": "non-standard deliverable (shares other than 100, extra underlyings, adjusted root)",
    "contract_source": "where the deliverable came from: the contracts reference, the root map, or the root",
    "dte_calendar": "calendar days from the session to expiration",
    "dte_trading": "exchange sessions after the session up to and including expiration",
    "years": "time to expiration in years (365 days), from the session's close or the bar's end",
    "underlying_close": "the underlying's raw close that session (minute bars: the last stock bar before)",
    "underlying_price": "deliverable value per 100 units: underlying_close × shares_per_contract / 100",
    "moneyness": "ln(underlying_price / strike)",
    "risk_free_rate": "continuous risk-free rate used for pricing (options.risk_free_rate)",
    "dividend_yield": "continuous dividend yield of the underlying used for pricing",
    "iv": "Black-Scholes-Merton implied volatility of the close (null: see iv_reason)",
    "delta": "option delta at iv",
    "gamma": "option gamma at iv",
    "vega": "option vega at iv (per unit of volatility)",
    "theta": "option theta at iv (per year)",
    "iv_reason": "why iv is null (unresolved_contract, no_underlying_price, zero_volume, expired …)",
    "underlying_window_start": "window_start of the stock minute bar underlying_close comes from",
    # Per-underlying option aggregates.
    "options_underlying_daily.ticker": "ticker of the underlying stock",
    "call_volume": "call contracts traded on the underlying that session",
    "put_volume": "put contracts traded on the underlying that session",
    "opt_volume": "option contracts traded on the underlying that session (calls and puts)",
    "pcr": "put volume over call volume (null without call volume)",
    "contract_count": "contracts with a bar that session",
    "iv_vw": "volume-weighted mean iv of the contracts that have one",
    "iv30": "at-the-money implied volatility interpolated to 30 days",
    "skew25": "25-delta put IV minus 25-delta call IV, interpolated to 30 days",
    # Minute roll-ups.
    "stocks_minute_rollups.open": "first regular-session minute bar's open, unadjusted",
    "stocks_minute_rollups.high": "highest regular-session minute high, unadjusted",
    "stocks_minute_rollups.low": "lowest regular-session minute low, unadjusted",
    "stocks_minute_rollups.close": "last regular-session minute bar's close, unadjusted",
    "stocks_minute_rollups.volume": "regular-session volume, unadjusted",
    "vwap": "volume-weighted typical price of the session's regular-hours minute bars",
    "bar_count": "regular-session minute bars",
    "extended_volume": "volume outside the regular session (pre-market and after hours)",
    # Corporate-action reconciliation.
    "check": "'split without price jump' or 'price jump without split'",
    "expected_ratio": "price ratio the split implies (null for a jump without a split)",
    "observed_ratio": "close-to-close ratio observed across the session",
    # Point-in-time ratios.
    "filing_date": "filing date of the statement the ratios come from",
    "fiscal_year": "fiscal year of that statement",
    "gross_margin": f"gross profit / revenue, {_RATIO}",
    "operating_margin": f"operating income / revenue, {_RATIO}",
    "net_margin": f"net income / revenue, {_RATIO}",
    "return_on_equity": f"net income / equity, {_RATIO}",
    "return_on_assets": f"net income / total assets, {_RATIO}",
    "current_ratio": f"current assets / current liabilities, {_RATIO}",
    "debt_to_equity": f"total liabilities / equity, {_RATIO}",
    "debt_to_assets": f"total liabilities / total assets, {_RATIO}",
    "asset_turnover": f"revenue / total assets, {_RATIO}",
    "revenue_growth_yoy": f"revenue over the prior year's, minus 1, {_RATIO}",
    "net_income_growth_yoy": f"net income over the prior year's, minus 1, {_RATIO}",
    "pe_ratio": "split-adjusted close / diluted EPS of the latest annual statement",
    "price_to_book": "market capitalisation / equity of the latest annual statement",
    "price_to_sales": "market capitalisation / revenue of the latest annual statement",
    # Universes.
    "universe": "universe name: a vendor type code (CS, ETF …) or top<N> by liquidity",
    "rank": "liquidity rank at the month's reconstitution (null for type universes)",
    "median_dollar_volume": "median raw dollar volume the ranking used (null for type universes)",
    "delisting": "the ticker's last session on or before its delisting date",
    # Quarantine.
    "source_file": "landing file the row was read from",
    "line": "line number of the row in that file",
    "reason": "rule the row broke (the quarantine reason code)",
    "detail": "what exactly was wrong",
    "raw": "the row as it was in the file",
    "quarantine.ticker": "ticker of the row, when it could be read",
    "quarantine.session_date": "session of the file the row came from",
    # Reference tables (bronze: as the vendor's REST API sends them, merged on natural keys).
    "fetched_at": "when the record was first fetched (UTC)",
    "id": "the vendor's record id",
    "execution_date": "date the split takes effect (first session in post-split shares)",
    "split_from": "shares before the split (a 2-for-1 split: 1)",
    "split_to": "shares after the split (a 2-for-1 split: 2)",
    "adjustment_type": "split direction as the vendor's newer records give it (forward, reverse …)",
    "historical_adjustment_factor": "the vendor's cumulative adjustment factor (newer records only)",
    "ex_dividend_date": "first session the stock trades without the dividend",
    "cash_amount": "dividend per share, in the record's currency",
    "currency": "currency of cash_amount",
    "dividend_type": "vendor dividend type (CD regular, SC special, LT/ST capital gains)",
    "frequency": "payments per year (0 one-off, 1, 2, 4, 12 …)",
    "declaration_date": "date the dividend was announced",
    "record_date": "date of record",
    "pay_date": "payment date",
    "distribution_type": "recurrence class of the newer records (recurring, special …)",
    "split_adjusted_cash_amount": "cash_amount in today's shares (newer records only)",
    "name": "company or security name",
    "market": "market (stocks, otc, indices …)",
    "locale": "locale (us, global)",
    "type": "vendor security type code (CS common stock, ETF, PFD, WARRANT …)",
    "active": "the ticker is traded now",
    "primary_exchange": "MIC of the primary listing exchange",
    "currency_name": "trading currency",
    "cik": "SEC Central Index Key of the issuer",
    "composite_figi": "composite OpenFIGI of the security",
    "share_class_figi": "share-class OpenFIGI of the security",
    "list_date": "first listing date",
    "delisted_utc": "delisting time (UTC), null while listed",
    "last_updated_utc": "when the vendor last updated the record (UTC)",
    "event_type": "ticker event type (ticker_change …)",
    "ticker_events.date": "date the event took effect",
    "ticker_events.ticker": "the ticker the security trades under from that date",
    "options_contracts.ticker": "OCC ticker of the contract",
    "underlying_ticker": "ticker of the deliverable's stock",
    "contract_type": "'call' or 'put'",
    "exercise_style": "american, european or bermudan",
    "expiration_date": "expiration date of the contract",
    "strike_price": "strike price",
    "cfi": "ISO 10962 CFI code (its sixth letter marks a non-standard deliverable)",
    "correction": "vendor correction number of the record",
    # Lake-wide silver tables.
    "valid_from": "first date the row holds (inclusive)",
    "valid_to": "date the row stops holding (exclusive)",
    "split_factor": "split-only factor: adjusted / raw price over the interval",
    "adj_factor": "total-return factor (splits and dividends): adjusted / raw price over the interval",
    "entity": "permanent id of the company (security) across ticker changes",
    "event_date": "date the corporate action takes effect",
    "split_multiplier": "price multiplier of the date's splits (2-for-1: 0.5)",
    "total_multiplier": "price multiplier of the date's splits and dividends",
    "instrument": "the Qlib instrument name of the entity (its latest ticker)",
    "first_bar": "first session with a bar under this ticker and entity",
    "last_bar": "last session with a bar under this ticker and entity",
    "source": "what established the span: events, reference, ticker (bars only) or inferred",
}


@dataclass(frozen=True, slots=True)
class TableSchema:
    """One stored table of a layer: its name, where its partitions live and its declared schema."""

    layer: Layer
    name: str
    #: Below the lake root: the directory holding ``date=YYYY-MM-DD/part.parquet`` (gold: the Qlib root;
    #: reference: the table's one file).
    directory: str
    schema: pa.Schema
    data_type: str
    #: Columns a stored file may lack (reference columns only the vendor's newer records carry).
    optional: frozenset[str] = frozenset()

    def doc(self, column: str) -> str:
        """What ``column`` holds (empty when nothing documents it: a test keeps that from happening)."""
        return column_doc(self.data_type, self.layer, self.name, column)


def column_doc(data_type: str, layer: Layer, table: str, column: str) -> str:
    """The documentation of ``column`` of ``table`` (empty when none)."""
    if layer == "gold":
        return QLIB_FIELD_DOCS.get(column.removeprefix("$"), "")
    owner = "quarantine" if layer == "quarantine" else table.removeprefix("silver/").removeprefix("bronze/")
    if layer == "silver" and (feature := set_of_column(data_type, column)) is not None:
        described = next(f for f in feature.features if f.name == column)
        return described.description
    return COLUMN_DOCS.get(f"{owner}.{column}") or COLUMN_DOCS.get(column, "")


def layer_tables(spec: DatasetSpec, layer: Layer) -> list[TableSchema]:
    """The tables ``spec`` declares in ``layer`` (silver: every part; gold: every Qlib root; reference:
    the lake-wide tables, whatever ``spec``)."""
    if layer == "reference":
        return reference_tables()
    if layer == "bronze":
        return [TableSchema(layer, spec.name, f"bronze/{spec.name}", spec.bronze_schema, spec.name)]
    if layer == "quarantine":
        return [TableSchema(layer, spec.name, f"quarantine/{spec.name}", QUARANTINE_SCHEMA, spec.name)]
    if layer == "silver":
        return [
            TableSchema(
                layer,
                part.table(spec.name),
                f"silver/{part.table(spec.name)}",
                part.output_schema(spec.bronze_schema),
                spec.name,
            )
            for part in spec.silver
        ]
    return [
        TableSchema(
            layer,
            f"{spec.name}/{target.freq}",
            f"gold/qlib/{spec.name}/{target.freq}",
            pa.schema([pa.field(f"${name}", pa.float32()) for name in target.fields]),
            spec.name,
        )
        for target in spec.gold
    ]


def reference_tables() -> list[TableSchema]:
    """The lake-wide tables: the bronze reference tables the pipeline reads and the factor and entity
    tables silver derives from them."""
    from quantmini.core.adjustment import EVENT_SCHEMA, INTERVAL_SCHEMA
    from quantmini.core.entities import ENTITIES_SCHEMA
    from quantmini.core.reference import (
        DIVIDENDS_SCHEMA,
        DIVIDENDS_V1_SCHEMA,
        OPTIONS_CONTRACTS_SCHEMA,
        SPLITS_SCHEMA,
        SPLITS_V1_SCHEMA,
        TICKER_EVENTS_SCHEMA,
        TICKERS_SCHEMA,
    )

    fetched = {"fetched_at": pl.Datetime("us", "UTC")}
    bronze = {
        "splits": ({**SPLITS_V1_SCHEMA, **fetched}, set(SPLITS_V1_SCHEMA) - set(SPLITS_SCHEMA)),
        "dividends": ({**DIVIDENDS_V1_SCHEMA, **fetched}, set(DIVIDENDS_V1_SCHEMA) - set(DIVIDENDS_SCHEMA)),
        "tickers": ({**TICKERS_SCHEMA, **fetched}, set()),
        "ticker_events": ({**TICKER_EVENTS_SCHEMA, **fetched}, set()),
        "options_contracts": ({**OPTIONS_CONTRACTS_SCHEMA, **fetched}, set()),
    }
    silver = {
        "adjustment_factors": INTERVAL_SCHEMA,
        "corporate_events": EVENT_SCHEMA,
        "entities": ENTITIES_SCHEMA,
    }
    return [
        *(
            TableSchema(
                "reference", f"bronze/{name}", f"bronze/reference/{name}.parquet", _arrow(s), "", frozenset(o)
            )
            for name, (s, o) in bronze.items()
        ),
        *(
            TableSchema("reference", f"silver/{name}", f"silver/reference/{name}.parquet", _arrow(s), "")
            for name, s in silver.items()
        ),
    ]


def _arrow(schema: dict[str, pl.DataType]) -> pa.Schema:
    """The Arrow schema a Polars frame of ``schema`` is stored with."""
    return pl.DataFrame(schema=schema).to_arrow().schema


def schema_problems(actual: pa.Schema, expected: pa.Schema, optional: Collection[str] = ()) -> list[str]:
    """How a stored schema differs from the declared one, one phrase per problem (empty: it conforms).

    Missing columns (``optional`` ones excepted) and unexpected ones, type changes, and columns that
    allow nulls where the spec declares them not null (a stored column declared not null where the spec
    allows nulls is fine). Column order counts only when nothing else differs and no column is optional
    (tables merged over time append the columns they learn).
    """
    wanted = {f.name: f for f in expected}
    got = {f.name: f for f in actual}
    problems = [
        f"missing column {n} ({f.type})" for n, f in wanted.items() if n not in got and n not in optional
    ]
    problems += [f"unexpected column {n} ({f.type})" for n, f in got.items() if n not in wanted]
    for name, field in wanted.items():
        if name not in got:
            continue
        if not got[name].type.equals(field.type):
            problems.append(f"column {name} is {got[name].type}, expected {field.type}")
        elif got[name].nullable and not field.nullable:
            problems.append(f"column {name} allows nulls, declared not null")
    if not problems and not optional and actual.names != expected.names:
        problems.append("columns out of order")
    return problems
