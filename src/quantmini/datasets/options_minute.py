"""US options (OPRA), one bar per contract and traded minute (``us_options_opra/minute_aggs_v1``)."""

from __future__ import annotations

import datetime as dt

from quantmini.datasets.base import (
    AGGREGATE_CSV_COLUMNS,
    MINUTE_BRONZE_FIELDS,
    OPTION_BRONZE_FIELDS,
    DatasetSpec,
    aggregate_schema,
)

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
)
