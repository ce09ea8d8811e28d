"""US stocks, one bar per ticker and session (``us_stocks_sip/day_aggs_v1``)."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from quantmini.core.adjustment_names import ADJUSTMENTS, RETURN_COLUMNS
from quantmini.core.ratio_names import STATEMENT_RATIOS, VALUATION_RATIOS
from quantmini.datasets.base import (
    AGGREGATE_CSV_COLUMNS,
    DatasetSpec,
    QlibTarget,
    Ref,
    SilverInput,
    SilverJoin,
    SilverPart,
    aggregate_schema,
)
from quantmini.features.library import MARKET_PROXY, sets_of


def feature_parts(data_type: str) -> tuple[SilverPart, ...]:
    """A silver part per feature set of ``data_type`` (``base`` excepted: the main table holds it)."""
    parts = []
    for fs in sets_of(data_type).values():
        if fs.is_base:
            continue
        # The inputs a set reads, from its texts: parsing (``fs.inputs``) would cost every start-up.
        texts = " ".join(f.expression or "" for f in fs.features)
        float_type = pa.float32() if fs.precision == 32 else pa.float64()
        parts.append(
            SilverPart(
                name=fs.table(),
                transform=Ref(f"quantmini.features.silver:{fs.name}"),
                lookback=fs.history,
                schema=pa.schema(
                    [
                        pa.field("ticker", pa.string()),
                        pa.field("session_date", pa.date32()),
                        *(pa.field(name, float_type) for name in fs.names),
                    ]
                ),
                factors="window",
                version=fs.version,
                row_bytes=fs.row_bytes,
                lookback_columns=("ticker", "session_date", "open", "high", "low", "close", "volume"),
                lookback_row_bytes=200,
                # $vwap is the Qlib root's: the minute roll-ups' VWAP where the lake has minute bars.
                inputs=(
                    (
                        SilverInput(
                            "stocks_minute_rollups", "silver", ("ticker", "session_date", "vwap"), window=True
                        ),
                    )
                    if "$vwap" in texts
                    else ()
                ),
                settings=(MARKET_PROXY,) if "$mkt_close" in texts else (),
                # Each ticker alone, unless the market proxy's bars are read beside it.
                per_ticker="$mkt_close" not in texts,
                feature_set=fs.name,
                compression="snappy",
            )
        )
    return tuple(parts)


#: Findings of the split/price reconciliation (``silver/corporate_action_checks``).
CHECKS_SCHEMA = pa.schema(
    [
        pa.field("ticker", pa.string()),
        pa.field("session_date", pa.date32()),
        pa.field("check", pa.string()),
        pa.field("expected_ratio", pa.float64()),
        pa.field("observed_ratio", pa.float64()),
    ]
)

#: Point-in-time ratios from the latest annual statement filed before each session (``silver/daily_ratios``).
DAILY_RATIOS_SCHEMA = pa.schema(
    [
        pa.field("ticker", pa.string()),
        pa.field("session_date", pa.date32()),
        pa.field("filing_date", pa.date32()),
        pa.field("fiscal_year", pa.int64()),
        *(pa.field(name, pa.float64()) for name in (*STATEMENT_RATIOS, *VALUATION_RATIOS)),
    ]
)

#: Point-in-time universe memberships, one row per ticker and universe (``silver/universes``): ``rank`` and
#: ``median_dollar_volume`` (what the month's ranking used) for liquidity universes, null for type ones.
UNIVERSES_SCHEMA = pa.schema(
    [
        pa.field("ticker", pa.string()),
        pa.field("session_date", pa.date32()),
        pa.field("universe", pa.string()),
        pa.field("rank", pa.int32()),
        pa.field("median_dollar_volume", pa.float64()),
        pa.field("delisting", pa.bool_()),
    ]
)

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
    adjustable=True,
    silver=(
        SilverPart(
            transform=Ref("quantmini.core.features:stocks_daily_silver"),
            # ret_20d compares with the close 20 sessions back; vol_20d needs ret_1d of 20 sessions.
            lookback=20,
            columns=("ret_1d", "ret_5d", "ret_20d", "vol_20d", "volume_z_20d", "price_ret_1d"),
            factors="window",
            version=4,
        ),
        SilverPart(
            name="corporate_action_checks",
            transform=Ref("quantmini.core.reconciliation:session_checks"),
            lookback=5,  # the previous bar is looked for up to 5 sessions back
            schema=CHECKS_SCHEMA,
            factors="window",
            key_columns=("ticker", "session_date", "check"),
        ),
        SilverPart(
            name="daily_ratios",
            transform=Ref("quantmini.core.ratios:session_ratios"),
            lookback=0,
            schema=DAILY_RATIOS_SCHEMA,
            factors="history",
            references=("financials",),
        ),
        SilverPart(
            name="universes",
            transform=Ref("quantmini.core.universes:session_universes"),
            # The month's first session and the 20 sessions ranking it (quantmini.core.universes.LOOKBACK).
            lookback=43,
            schema=UNIVERSES_SCHEMA,
            key_columns=("ticker", "session_date", "universe"),
            # The window's company spans let align() follow a renamed company as one series.
            factors="window",
            optional_references=("tickers",),
            settings=("universes.liquidity_sizes",),
            lookback_columns=("ticker", "session_date", "close", "volume"),
            row_bytes=400,
            lookback_row_bytes=150,
        ),
        *feature_parts("stocks_daily"),
    ),
    gold=(
        QlibTarget(
            freq="day",
            fields=(
                *("open", "high", "low", "close", "volume", "vwap", "factor", "change"),
                *("opt_volume", "pcr", "iv30", "skew25"),
            ),
            frame=Ref("quantmini.core.gold:qlib_daily_frame"),
            columns=("ticker", "session_date", "open", "high", "low", "close", "volume"),
            # $change: the change of the root's own close (total return, or price return when split-only).
            adjustment_columns=tuple((a, (RETURN_COLUMNS[a],)) for a in ADJUSTMENTS),
            # $vwap from the day's regular-session minute bars where the lake has them.
            joins=(
                SilverJoin(
                    "stocks_minute_rollups", (("vwap", "minute_vwap"),), label="$vwap from minute bars"
                ),
                # The stock's option aggregates, where the lake has options on it.
                SilverJoin(
                    "options_underlying_daily",
                    tuple((name, name) for name in ("opt_volume", "pcr", "iv30", "skew25")),
                    label="option fields",
                ),
            ),
            version=3,
            markets="universes",
        ),
    ),
)
