"""US stocks, one bar per ticker and traded minute, 04:00-20:00 ET (``us_stocks_sip/minute_aggs_v1``)."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from quantmini.datasets.base import (
    AGGREGATE_CSV_COLUMNS,
    MINUTE_BRONZE_FIELDS,
    DatasetSpec,
    QlibTarget,
    Ref,
    SilverPart,
    aggregate_schema,
)

#: Per ticker and session, the regular-session bar built from minute bars (``silver/stocks_minute_rollups``).
ROLLUP_SCHEMA = pa.schema(
    [
        pa.field("ticker", pa.string()),
        pa.field("session_date", pa.date32()),
        pa.field("open", pa.float64()),
        pa.field("high", pa.float64()),
        pa.field("low", pa.float64()),
        pa.field("close", pa.float64()),
        pa.field("volume", pa.float64()),
        pa.field("vwap", pa.float64()),
        pa.field("bar_count", pa.int64()),
        pa.field("extended_volume", pa.float64()),
    ]
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
    silver=(
        SilverPart(
            transform=Ref("quantmini.core.minute:stocks_minute_silver"),
            # volume_rel_20d compares a minute with the same minute of the 20 previous sessions.
            lookback=20,
            columns=("ret_1m", "ret_5m", "ret_15m", "ret_30m", "rv_30m", "vwap_dist", "volume_rel_20d"),
            factors="window",
            per_ticker=True,
            # Measured: ~85 B a bronze row, ~315 B of transform, the sorted copy written; earlier
            # sessions give only the volume of each minute.
            row_bytes=600,
            lookback_columns=("ticker", "session_date", "ts", "window_start", "volume"),
            lookback_row_bytes=100,
        ),
        SilverPart(
            name="stocks_minute_rollups",
            transform=Ref("quantmini.core.minute:minute_daily_rollups"),
            lookback=0,
            schema=ROLLUP_SCHEMA,
            per_ticker=True,
            row_bytes=400,
        ),
    ),
    gold=(
        QlibTarget(
            freq="1min",
            fields=("open", "high", "low", "close", "volume", "vwap", "factor"),
            frame=Ref("quantmini.core.gold:qlib_minute_frame"),
            columns=("ticker", "session_date", "open", "high", "low", "close", "volume"),
        ),
    ),
)
