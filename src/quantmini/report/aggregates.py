"""Pure aggregates behind the lake report, from a :class:`~quantmini.pipeline.status.LakeStatus`: heatmap
cells per session, week or month (worst state wins), row counts against their trailing median,
quarantined rows per month and reason.

Values in, frames (or plain mappings) out: no paths, no clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

import polars as pl

from quantmini.pipeline.status import SEVERITY, LakeStatus

_RANK: dict[str, int] = {state: -rank for rank, state in enumerate(SEVERITY)}

Granularity = Literal["session", "week", "month"]
#: Most columns the heatmap shows one per session; up to :data:`WEEKLY_UP_TO` sessions, one per week;
#: beyond, one per month (a 20-year lake: 240 columns).
DAILY_UP_TO = 260
WEEKLY_UP_TO = 1300

#: Sessions before a partition whose row counts form its baseline, and how many of them it needs.
TRAILING_SESSIONS = 20
MIN_TRAILING = 5
#: A partition is an anomaly when its rows are more than this many times its baseline, or less than its
#: baseline divided by it.
ANOMALY_RATIO = 2.0

ROWS_SCHEMA: dict[str, pl.DataType] = {
    "data_type": pl.String(),
    "layer": pl.String(),
    "session": pl.Date(),
    "rows": pl.Int64(),
}
QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "data_type": pl.String(),
    "session": pl.Date(),
    "reason": pl.String(),
    "rows": pl.Int64(),
}


def worst(states: Iterable[str]) -> str:
    """The worst of ``states`` (see :data:`~quantmini.pipeline.status.SEVERITY`)."""
    return max(states, key=_RANK.__getitem__)


def granularity_for(sessions: int) -> Granularity:
    """One heatmap column per session, week or month, so that a long history stays a few hundred wide."""
    if sessions <= DAILY_UP_TO:
        return "session"
    return "week" if sessions <= WEEKLY_UP_TO else "month"


def bucket_of(session: dt.date, granularity: Granularity) -> dt.date:
    """First day of the column ``session`` falls in: itself, its week's Monday or its month's first day."""
    if granularity == "session":
        return session
    if granularity == "week":
        return session - dt.timedelta(days=session.weekday())
    return session.replace(day=1)


def downsample(days: Mapping[dt.date, str], granularity: Granularity) -> dict[dt.date, str]:
    """Per column (see :func:`bucket_of`), the worst state of its sessions."""
    cells: dict[dt.date, str] = {}
    for session, state in days.items():
        bucket = bucket_of(session, granularity)
        held = cells.get(bucket)
        cells[bucket] = state if held is None else worst((held, state))
    return dict(sorted(cells.items()))


def layer_rows(status: LakeStatus) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Rows per session of every layer that counts them (:data:`ROWS_SCHEMA`), and quarantined rows per
    session and reason (:data:`QUARANTINE_SCHEMA`)."""
    rows: list[tuple[str, str, dt.date, int]] = []
    reasons: list[tuple[str, dt.date, str, int]] = []
    for data_type in status.types:
        for layer in data_type.layers:
            rows.extend((data_type.data_type, layer.layer, s, n) for s, n in layer.rows.items())
            reasons.extend(
                (data_type.data_type, s, reason, n)
                for s, found in layer.reasons.items()
                for reason, n in found.items()
                if n
            )
    return (
        pl.DataFrame(rows, schema=ROWS_SCHEMA, orient="row"),
        pl.DataFrame(reasons, schema=QUARANTINE_SCHEMA, orient="row"),
    )


def row_anomalies(rows: pl.DataFrame) -> pl.DataFrame:
    """Every partition of ``rows`` (:data:`ROWS_SCHEMA`) with ``baseline`` (median rows of the same data
    type and layer over its previous :data:`TRAILING_SESSIONS` partitions, null with fewer than
    :data:`MIN_TRAILING`), ``ratio`` (rows / baseline; infinite for rows after none, null for none after
    none) and ``anomaly`` (ratio beyond :data:`ANOMALY_RATIO` either way)."""
    baseline = (
        pl.col("rows")
        .cast(pl.Float64)
        .shift(1)
        .rolling_median(TRAILING_SESSIONS, min_samples=MIN_TRAILING)
        .over("data_type", "layer", order_by="session")
    )
    ratio = (
        pl.when(pl.col("baseline") > 0)
        .then(pl.col("rows") / pl.col("baseline"))
        .when((pl.col("baseline") == 0) & (pl.col("rows") > 0))
        .then(float("inf"))  # rows where there were none
    )
    flagged = (pl.col("ratio") > ANOMALY_RATIO) | (pl.col("ratio") < 1 / ANOMALY_RATIO)
    return (
        rows.sort("data_type", "layer", "session")
        .with_columns(baseline.alias("baseline"))
        .with_columns(ratio.alias("ratio"))
        .with_columns(flagged.fill_null(False).alias("anomaly"))
    )


def quarantine_by_month(quarantine: pl.DataFrame) -> pl.DataFrame:
    """Quarantined rows (:data:`QUARANTINE_SCHEMA`) summed per data type, month (its first day) and
    reason, sorted."""
    return (
        quarantine.filter(pl.col("rows") > 0)
        .group_by("data_type", pl.col("session").dt.truncate("1mo").alias("month"), "reason")
        .agg(pl.col("rows").sum())
        .sort("data_type", "month", "reason")
    )


def months_between(first: dt.date, last: dt.date) -> list[dt.date]:
    """First days of the months from ``first``'s to ``last``'s, inclusive."""
    months = []
    month = first.replace(day=1)
    while month <= last:
        months.append(month)
        month = (month + dt.timedelta(days=32)).replace(day=1)
    return months


def reason_stacks(monthly: pl.DataFrame, months: Sequence[dt.date]) -> dict[str, list[int]]:
    """Per reason of ``monthly`` (one data type's :func:`quarantine_by_month`), its rows in each of
    ``months``."""
    stacks: dict[str, list[int]] = {}
    for reason, frame in monthly.group_by("reason"):
        held = dict(zip(frame["month"].to_list(), frame["rows"].to_list(), strict=True))
        stacks[str(reason[0])] = [int(held.get(m, 0)) for m in months]
    return dict(sorted(stacks.items()))
