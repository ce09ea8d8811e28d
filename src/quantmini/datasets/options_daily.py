"""US options (OPRA), one bar per contract and session (``us_options_opra/day_aggs_v1``)."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from quantmini.datasets.base import (
    AGGREGATE_BRONZE_FIELDS,
    AGGREGATE_CSV_COLUMNS,
    OPTION_BRONZE_FIELDS,
    DatasetSpec,
    Ref,
    SilverInput,
    SilverPart,
    aggregate_schema,
)

#: Contract fields every option silver row carries, after the bronze bar columns.
CONTRACT_FIELDS: tuple[pa.Field, ...] = (
    pa.field("root", pa.string()),
    pa.field("underlying", pa.string()),
    pa.field("expiration", pa.date32()),
    pa.field("option_type", pa.string()),
    pa.field("strike", pa.float64()),
    pa.field("shares_per_contract", pa.float64()),
    pa.field("adjusted", pa.bool_()),
    pa.field("contract_source", pa.string()),
    pa.field("dte_calendar", pa.int32()),
    pa.field("dte_trading", pa.int32()),
    pa.field("years", pa.float64()),
    pa.field("underlying_close", pa.float64()),
    pa.field("underlying_price", pa.float64()),
    pa.field("moneyness", pa.float64()),
    pa.field("risk_free_rate", pa.float64()),
    pa.field("dividend_yield", pa.float64()),
    pa.field("iv", pa.float64()),
    pa.field("delta", pa.float64()),
    pa.field("gamma", pa.float64()),
    pa.field("vega", pa.float64()),
    pa.field("theta", pa.float64()),
    pa.field("iv_reason", pa.string()),
)
#: Per contract and session (``silver/options_daily``): the bar, then :data:`CONTRACT_FIELDS`.
OPTIONS_DAILY_SCHEMA = pa.schema([*AGGREGATE_BRONZE_FIELDS, *CONTRACT_FIELDS])
#: Per underlying and session (``silver/options_underlying_daily``); definitions in
#: :func:`quantmini.core.option_silver.underlying_aggregates`.
UNDERLYING_DAILY_SCHEMA = pa.schema(
    [
        pa.field("ticker", pa.string()),
        pa.field("session_date", pa.date32()),
        pa.field("call_volume", pa.float64()),
        pa.field("put_volume", pa.float64()),
        pa.field("opt_volume", pa.float64()),
        pa.field("pcr", pa.float64()),
        pa.field("contract_count", pa.int64()),
        pa.field("iv_vw", pa.float64()),
        pa.field("iv30", pa.float64()),
        pa.field("skew25", pa.float64()),
    ]
)

#: Settings the option silver tables read (their values are part of every partition's identity).
PRICING_SETTINGS = ("options.risk_free_rate", "options.dividend_yield", "options.dividend_yields")

SPEC = DatasetSpec(
    name="options_daily",
    asset="us_options_opra",
    dataset="day_aggs_v1",
    description="US options daily bars (OPRA) with contract fields parsed from the OCC ticker",
    csv_columns=AGGREGATE_CSV_COLUMNS,
    bronze_schema=aggregate_schema(OPTION_BRONZE_FIELDS),
    key_columns=("ticker", "session_date"),
    sort_columns=("ticker", "window_start"),
    frequency="day",
    first_session=dt.date(2014, 6, 2),
    is_option=True,
    silver=(
        SilverPart(
            transform=Ref("quantmini.core.option_silver:options_daily_silver"),
            lookback=0,
            schema=OPTIONS_DAILY_SCHEMA,
            inputs=(SilverInput("stocks_daily", columns=("ticker", "session_date", "close")),),
            optional_references=("options_contracts",),
            settings=PRICING_SETTINGS,
            summary=Ref("quantmini.core.option_silver:summary"),
            # Measured: a 1 M-contract day peaks at 1.7-2 GB (benchmarks/bench_options_silver.py).
            row_bytes=2000,
        ),
        SilverPart(
            name="options_underlying_daily",
            transform=Ref("quantmini.core.option_silver:underlying_aggregates"),
            lookback=0,
            schema=UNDERLYING_DAILY_SCHEMA,
            inputs=(SilverInput("options_daily", layer="silver"),),
            row_bytes=1400,  # reads the per-contract silver rows: ~1.3 GB at a million contracts
        ),
    ),
)
