"""US stocks, one bar per ticker and traded minute, 04:00-20:00 ET (``us_stocks_sip/minute_aggs_v1``)."""

from __future__ import annotations

import datetime as dt

from quantmini.datasets.base import (
    AGGREGATE_CSV_COLUMNS,
    MINUTE_BRONZE_FIELDS,
    DatasetSpec,
    aggregate_schema,
)

SPEC = DatasetSpec(
    name="stocks_minute",
    asset="us_stocks_sip",
    dataset="minute_aggs_v1",
    description="US stocks minute bars (SIP), unadjusted, extended hours included",
    csv_columns=AGGREGATE_CSV_COLUMNS,
    bronze_schema=aggregate_schema(MINUTE_BRONZE_FIELDS),
    key_columns=("ticker", "window_start"),
    sort_columns=("ticker", "window_start"),
    frequency="1min",
    first_session=dt.date(2003, 9, 10),
    adjustable=True,
)
