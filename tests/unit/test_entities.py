"""Company identity against hand-worked answers (tests/fixtures/entities/README.md)."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from quantmini.core.entities import RUNS_SCHEMA, entity_table, reused_runs, series_boundaries
from quantmini.core.reference import TICKER_EVENTS_SCHEMA, TICKERS_SCHEMA
from quantmini.pipeline.entities import extend_runs
from tests.support.paths import REPO_ROOT

HERE = REPO_ROOT / "tests" / "fixtures" / "entities"
D = dt.date


def _tickers() -> pl.DataFrame:
    raw = pl.read_csv(HERE / "tickers.csv", infer_schema=False)
    return raw.with_columns(
        pl.col("active") == "true",
        pl.col("list_date").str.to_date(),
        *(pl.col(c).str.to_datetime(time_zone="UTC") for c in ("delisted_utc", "fetched_at")),
    ).with_columns(
        pl.lit(None, dtype=TICKERS_SCHEMA[c]).alias(c) for c in TICKERS_SCHEMA if c not in raw.columns
    )


def _events() -> pl.DataFrame:
    return (
        pl.read_csv(HERE / "events.csv", infer_schema=False)
        .with_columns(pl.col("date").str.to_date())
        .cast(
            TICKER_EVENTS_SCHEMA  # type: ignore[arg-type]
        )
    )


def _runs() -> pl.DataFrame:
    return pl.read_csv(HERE / "runs.csv", try_parse_dates=True).cast(RUNS_SCHEMA)  # type: ignore[arg-type]


def _splits() -> pl.DataFrame:
    return pl.read_csv(HERE / "splits.csv", try_parse_dates=True).cast(
        {"split_from": pl.Float64, "split_to": pl.Float64}
    )


def _table() -> pl.DataFrame:
    return entity_table(_tickers(), _events(), _runs(), _splits())


def test_entities_match_the_hand_worked_answers() -> None:
    expected = pl.read_csv(HERE / "expected.csv", try_parse_dates=True)
    got = _table().filter(pl.col("first_bar").is_not_null()).select(expected.columns)
    assert got.sort("ticker", "valid_from").rows() == expected.sort("ticker", "valid_from").rows()


def test_a_company_has_one_ticker_and_a_ticker_one_company_at_a_time() -> None:
    table = _table()
    for key in ("ticker", "entity"):
        ordered = table.sort(key, "valid_from")
        overlap = ordered.filter(pl.col("valid_from") < pl.col("valid_to").shift(1).over(key))
        assert overlap.is_empty(), f"overlapping spans by {key}: {overlap}"


def test_attributes_come_from_the_reference() -> None:
    table = _table()
    (hey,) = table.filter(pl.col("ticker") == "HEY").rows(named=True)
    assert (hey["name"], hey["type"], hey["cik"]) == ("Quixcove Inc", "CS", "0000000001")
    (inferred,) = table.filter(pl.col("source") == "inferred").rows(named=True)
    assert inferred["name"] is None
    assert inferred["composite_figi"] is None


def test_without_any_reference_only_bars_decide() -> None:
    table = entity_table(None, None, _runs(), _splits()).filter(pl.col("ticker") == "ABC")
    # 40 → 20 then a 15-month gap, reopening at 10: 20/10 = 2 ≥ 1.5, another company.
    assert table.select("valid_from", "valid_to", "entity", "instrument", "source").rows() == [
        (D(1900, 1, 1), D(2022, 6, 1), "ABC", "ABC_20210312", "ticker"),
        (D(2022, 6, 1), D(9999, 12, 31), "ABC@2022-06-01", "ABC", "inferred"),
    ]


@pytest.mark.parametrize(("close", "reused"), [(50.1, True), (50.0, False), (22.3, False), (22.2, True)])
def test_a_jump_counts_from_one_and_a_half_times_either_way(close: float, reused: bool) -> None:
    runs = pl.DataFrame(
        [
            ("X", D(2020, 1, 2), D(2020, 3, 2), 10.0, 11.12, 40),
            ("X", D(2020, 6, 1), D(2020, 7, 1), close, 9.0, 20),
        ],
        schema=RUNS_SCHEMA,
        orient="row",
    )
    # A 1:3 reverse split in the gap: the old close is 11.12 × 3 = 33.36 in new shares, so the bounds
    # are 33.36 × 1.5 = 50.04 and 33.36 / 1.5 = 22.24.
    splits = pl.DataFrame(
        {"ticker": ["X"], "execution_date": [D(2020, 6, 1)], "split_from": [3.0], "split_to": [1.0]}
    )
    assert reused_runs(runs, splits)["reused"].to_list() == [False, reused]


def test_series_boundaries_sit_on_the_first_session_of_each_later_span() -> None:
    sessions = [D(2019, 12, 31), D(2020, 1, 2), D(2020, 9, 1), D(2021, 3, 12), D(2021, 3, 15)]
    sessions += [D(2024, 4, 30), D(2024, 5, 1)]
    spans = _table().select("ticker", "valid_from", "valid_to", "entity")
    assert series_boundaries(spans, sessions).rows() == [
        (D(2020, 1, 2), "DEF", None),
        (D(2020, 9, 1), "ZZZ", None),
        (D(2021, 3, 15), "ABC", None),
        (D(2024, 5, 1), "HEY", "QXCV"),
    ]


def test_runs_extend_batch_by_batch_as_a_plain_walk_over_the_bars_says() -> None:
    calendar = [D(2024, 1, 1) + dt.timedelta(days=i) for i in range(120)]  # any increasing sessions
    position = {s: i for i, s in enumerate(calendar)}
    days = {"A": [0, 1, 2, 30, 31, 60, 81, 82], "B": [5, 26, 47, 48], "C": [100, 119]}
    bars = pl.DataFrame(
        [(t, calendar[i], float(i + 1)) for t, idx in days.items() for i in idx],
        schema={"ticker": pl.String, "session_date": pl.Date, "close": pl.Float64},
        orient="row",
    )
    # Plain walk: a gap of 20 or more sessions without a bar (index step of 21 or more) opens a run.
    expected = []
    for ticker, idx in days.items():
        start = prev = idx[0]
        count = 1
        for i in idx[1:]:
            if i - prev - 1 >= 20:
                expected.append((ticker, calendar[start], calendar[prev], start + 1.0, prev + 1.0, count))
                start, count = i, 0
            prev, count = i, count + 1
        expected.append((ticker, calendar[start], calendar[prev], start + 1.0, prev + 1.0, count))
    runs = pl.DataFrame(schema=RUNS_SCHEMA)
    for lo, hi in ((0, 3), (3, 40), (40, 82), (82, 120)):  # batches of sessions, in order
        batch = bars.filter(pl.col("session_date").is_between(calendar[lo], calendar[hi - 1]))
        runs = extend_runs(runs, batch, position)
    assert runs.sort("ticker", "first").rows() == sorted(expected)
