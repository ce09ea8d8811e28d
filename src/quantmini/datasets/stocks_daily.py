"""US stocks, one bar per ticker and session (``us_stocks_sip/day_aggs_v1``)."""

from __future__ import annotations

import datetime as dt

from quantmini.datasets.base import AGGREGATE_CSV_COLUMNS, DatasetSpec, aggregate_schema

SPEC = DatasetSpec(
    name="stocks_daily",
    asset="us_stocks_sip",
    dataset="day_aggs_v1",
    description="US stocks daily bars (SIP), unadjusted",
    csv_columns=AGGREGATE_CSV_COLUMNS,
    bronze_schema=aggregate_schema(),
    key_columns=("ticker", "session_date"),
    sort_columns=("ticker", "window_start"),
    frequency="day",
    first_session=dt.date(2003, 9, 10),
    features=("ret_1d", "ret_5d", "ret_20d", "vol_20d", "volume_z_20d"),
)
