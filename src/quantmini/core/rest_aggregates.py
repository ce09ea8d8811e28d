"""REST aggregate bars (``/v2/aggs/...``, decoded JSON) → a typed frame.

Unlike flat files, REST bars carry ``t`` in **milliseconds** since the epoch (UTC) and a ``vw`` (VWAP);
they are split-adjusted unless the request said ``adjusted=false``, so every row records how it was asked
for (``timespan``, ``multiplier``, ``adjusted``). An empty aggregate (no ``results``) is an empty frame.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from quantmini.core.reference import frame_of, results_of

BARS_SCHEMA: dict[str, pl.DataType] = {
    "ticker": pl.String(),
    "timestamp": pl.Datetime("ms", "UTC"),
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "volume": pl.Float64(),
    "vwap": pl.Float64(),
    "transactions": pl.Int64(),
    "otc": pl.Boolean(),
    "timespan": pl.String(),
    "multiplier": pl.Int64(),
    "adjusted": pl.Boolean(),
}
_RAW_SCHEMA: dict[str, pl.DataType] = {
    "T": pl.String(),
    "t": pl.Int64(),
    "o": pl.Float64(),
    "h": pl.Float64(),
    "l": pl.Float64(),
    "c": pl.Float64(),
    "v": pl.Float64(),
    "vw": pl.Float64(),
    "n": pl.Int64(),
    "otc": pl.Boolean(),
}


def bars_from_payload(
    payload: Any,
    endpoint: str = "aggregates",
    *,
    timespan: str = "day",
    multiplier: int = 1,
    adjusted: bool | None = None,
) -> pl.DataFrame:
    """Range (``ticker`` at the top) or grouped (``T`` per bar) aggregates → :data:`BARS_SCHEMA` rows.

    ``adjusted`` defaults to the payload's own ``adjusted`` flag (the vendor echoes it), else ``True``,
    the vendor's default.
    """
    raw = frame_of(results_of(payload, endpoint), _RAW_SCHEMA, endpoint)
    top = payload.get("ticker") if isinstance(payload, dict) else None
    echoed = payload.get("adjusted") if isinstance(payload, dict) else None
    flag = adjusted if adjusted is not None else (echoed if isinstance(echoed, bool) else True)
    ticker = pl.col("T") if top is None else pl.col("T").fill_null(pl.lit(str(top)))
    return raw.select(
        ticker.alias("ticker"),
        pl.col("t").cast(pl.Datetime("ms")).dt.replace_time_zone("UTC").alias("timestamp"),
        pl.col("o").alias("open"),
        pl.col("h").alias("high"),
        pl.col("l").alias("low"),
        pl.col("c").alias("close"),
        pl.col("v").alias("volume"),
        pl.col("vw").alias("vwap"),
        pl.col("n").alias("transactions"),
        pl.col("otc"),
        pl.lit(timespan, dtype=pl.String()).alias("timespan"),
        pl.lit(multiplier, dtype=pl.Int64()).alias("multiplier"),
        pl.lit(flag, dtype=pl.Boolean()).alias("adjusted"),
    )
