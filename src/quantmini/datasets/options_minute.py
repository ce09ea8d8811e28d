"""US options (OPRA), one bar per contract and traded minute (``us_options_opra/minute_aggs_v1``)."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from quantmini.datasets.base import (
    AGGREGATE_BRONZE_FIELDS,
    AGGREGATE_CSV_COLUMNS,
    MINUTE_BRONZE_FIELDS,
    OPTION_BRONZE_FIELDS,
    DatasetSpec,
    Ref,
    SilverInput,
    SilverPart,
    aggregate_schema,
)
from quantmini.datasets.options_daily import CONTRACT_FIELDS, PRICING_SETTINGS

#: Per contract and traded minute (``silver/options_minute``): the bar, the contract fields and the
#: start of the stock minute bar the underlying's price comes from.
OPTIONS_MINUTE_SCHEMA = pa.schema(
    [
        *AGGREGATE_BRONZE_FIELDS,
        pa.field("regular_session", pa.bool_()),
        *CONTRACT_FIELDS,
        pa.field("underlying_window_start", pa.int64()),
    ]
)
#: What the as-of join reads of each stock minute bar.
_UNDERLYING_COLUMNS = ("ticker", "session_date", "window_start", "close")

SPEC = DatasetSpec(
    name="options_minute",
    asset="us_options_opra",
    dataset="minute_aggs_v1",
    description="US options minute bars (OPRA) with contract fields parsed from the OCC ticker",
    csv_columns=AGGREGATE_CSV_COLUMNS,
    bronze_schema=aggregate_schema(MINUTE_BRONZE_FIELDS, OPTION_BRONZE_FIELDS),
    key_columns=("ticker", "window_start"),
    sort_columns=("ticker", "window_start"),
    frequency="1min",
    first_session=dt.date(2014, 6, 2),
    is_option=True,
    silver=(
        SilverPart(
            transform=Ref("quantmini.core.option_silver:options_minute_silver"),
            lookback=0,
            schema=OPTIONS_MINUTE_SCHEMA,
            inputs=(
                SilverInput("stocks_minute", columns=("ticker", "session_date", "window_start", "close")),
            ),
            optional_references=("options_contracts",),
            settings=(*PRICING_SETTINGS, "options.minute_iv"),
            summary=Ref("quantmini.core.option_silver:summary"),
            per_ticker=True,
            row_bytes=900,
        ),
    ),
)
