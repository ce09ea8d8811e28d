"""The report's aggregates and charts: worst-state downsampling, runs, row-count anomalies against a plain
pandas trailing median, quarantine per month, and line decimation."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd
import polars as pl

from quantmini.report.aggregates import (
    ANOMALY_RATIO,
    MIN_TRAILING,
    QUARANTINE_SCHEMA,
    ROWS_SCHEMA,
    TRAILING_SESSIONS,
    downsample,
    granularity_for,
    months_between,
    quarantine_by_month,
    reason_stacks,
    row_anomalies,
    worst,
)
from quantmini.report.svg import Line, Marker, heatmap, line_chart

D = dt.date


def test_worst_follows_the_status_severity() -> None:
    assert worst(["present", "late", "republished"]) == "republished"
    assert worst(["quarantined", "stale", "late"]) == "stale"
    assert worst(["present", "missing", "stale"]) == "missing"


def test_granularity_keeps_a_long_history_a_few_hundred_columns_wide() -> None:
    assert granularity_for(250) == "session"
    assert granularity_for(1000) == "week"
    assert granularity_for(20 * 252) == "month"


def test_downsample_by_week_and_month_keeps_the_worst_state() -> None:
    days = {
        D(2025, 9, 29): "present",  # Monday
        D(2025, 9, 30): "quarantined",
        D(2025, 10, 1): "late",
        D(2025, 10, 6): "present",
    }
    assert downsample(days, "week") == {D(2025, 9, 29): "quarantined", D(2025, 10, 6): "present"}
    assert downsample(days, "month") == {D(2025, 9, 1): "quarantined", D(2025, 10, 1): "late"}
    assert downsample(days, "session") == days


def test_heatmap_draws_runs_of_neighbouring_cells() -> None:
    columns = [D(2025, 9, d) for d in (1, 2, 3, 4, 5)]
    cells = {columns[0]: "present", columns[1]: "present", columns[2]: "missing", columns[4]: "present"}
    svg = heatmap([("t / bronze", cells)], columns, {"present": "#0f0", "missing": "#f00"}, unit="session")
    runs = re.findall(r'class="cell (\w+)" data-date="([\d-]+)" data-last="([\d-]+)" data-cells="(\d+)"', svg)
    assert runs == [
        ("present", "2025-09-01", "2025-09-02", "2"),
        ("missing", "2025-09-03", "2025-09-03", "1"),
        ("present", "2025-09-05", "2025-09-05", "1"),  # 09-04 is blank: not a neighbour
    ]


def test_row_anomalies_match_a_pandas_trailing_median() -> None:
    rng = np.random.default_rng(3)
    sessions = pd.bdate_range("2024-01-01", periods=120).date
    parts = []
    for table in ("a", "b"):
        rows = rng.integers(900, 1100, len(sessions))
        rows[[10, 60, 61]] = [2500, 300, 0]
        parts.append(pd.DataFrame({"data_type": table, "layer": "bronze", "session": sessions, "rows": rows}))
    frame = pd.concat(parts, ignore_index=True)

    got = row_anomalies(pl.from_pandas(frame).cast(ROWS_SCHEMA))  # type: ignore[arg-type]

    expected: list[tuple[str, dt.date, bool]] = []
    for _, group in frame.groupby("data_type"):
        baseline = group["rows"].shift(1).rolling(TRAILING_SESSIONS, min_periods=MIN_TRAILING).median()
        ratio = group["rows"] / baseline
        flagged = (ratio > ANOMALY_RATIO) | (ratio < 1 / ANOMALY_RATIO)
        expected.extend(zip(group["data_type"], group["session"], flagged, strict=True))
    assert list(zip(got["data_type"], got["session"], got["anomaly"], strict=True)) == expected
    assert got.filter(pl.col("anomaly"))["session"].to_list() == [sessions[i] for i in (10, 60, 61)] * 2
    assert got["baseline"].head(MIN_TRAILING).is_null().all()


def test_quarantine_per_month_and_reason() -> None:
    quarantine = pl.DataFrame(
        [
            ("stocks_daily", D(2025, 11, 3), "ohlc_inconsistent", 2),
            ("stocks_daily", D(2025, 11, 20), "ohlc_inconsistent", 1),
            ("stocks_daily", D(2026, 1, 5), "outside_session", 4),
            ("stocks_daily", D(2026, 1, 6), "null_key", 0),
        ],
        schema=QUARANTINE_SCHEMA,
        orient="row",
    )
    monthly = quarantine_by_month(quarantine)
    months = months_between(D(2025, 11, 3), D(2026, 1, 6))
    assert months == [D(2025, 11, 1), D(2025, 12, 1), D(2026, 1, 1)]
    assert reason_stacks(monthly, months) == {"ohlc_inconsistent": [3, 0, 0], "outside_session": [0, 0, 4]}


def test_a_long_line_keeps_at_most_a_few_points_per_pixel_and_its_extremes() -> None:
    days = [D(2005, 1, 3) + dt.timedelta(days=i) for i in range(7300)]
    values = [100.0 + (i % 50) for i in range(7300)]
    values[4000] = 1000.0
    svg = line_chart(
        [Line("close", "#000", list(zip(days, values, strict=True)))],
        [Marker(D(2010, 6, 1), "split", "2-for-1 split", "#800")],
        width=600,
    )
    points = re.search(r' points="([^"]+)"', svg)
    assert points is not None
    coords = [tuple(map(float, p.split(","))) for p in points.group(1).split()]
    assert len(coords) <= 4 * 600
    # The one spike (10x the others) survives decimation: one point near the top, the rest low.
    assert len([y for _, y in coords if y < 60]) == 1
    assert 'data-points="7300"' in svg
    assert '<g class="marker split" data-date="2010-06-01">' in svg


def test_rows_after_none_are_an_anomaly_and_none_after_none_is_not() -> None:
    rows = [0, 0, 0, 0, 0, 0, 0, 3]
    sessions = [D(2024, 1, 1) + dt.timedelta(days=i) for i in range(len(rows))]
    frame = pl.DataFrame(
        {"data_type": "t", "layer": "silver/checks", "session": sessions, "rows": rows}, schema=ROWS_SCHEMA
    )
    got = row_anomalies(frame)
    assert got["anomaly"].to_list() == [False] * 7 + [True]
    assert got["ratio"].to_list()[-1] == float("inf")
    assert got["ratio"].to_list()[MIN_TRAILING] is None
