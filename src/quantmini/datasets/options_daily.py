"""US options (OPRA), one bar per contract and session (``us_options_opra/day_aggs_v1``)."""

from __future__ import annotations

import datetime as dt

from quantmini.datasets.base import (
    AGGREGATE_CSV_COLUMNS,
    OPTION_BRONZE_FIELDS,
    DatasetSpec,
    aggregate_schema,
)

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
)
