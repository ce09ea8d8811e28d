"""The compact factor table and the per-session multipliers, against hand-worked answers."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from quantmini.core.adjustment import (
    BEGINNING,
    DIVIDEND_CLOSE_SCHEMA,
    END_OF_TIME,
    corporate_events,
    factor_intervals,
    factors_on,
    session_multipliers,
    ticker_spans,
)

D = dt.date


def _splits(rows: list[tuple[str, dt.date, float, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={
            "ticker": pl.String,
            "execution_date": pl.Date,
            "split_from": pl.Float64,
            "split_to": pl.Float64,
        },
        orient="row",
    )


def _dividends(rows: list[tuple[str, dt.date, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={"ticker": pl.String, "ex_dividend_date": pl.Date, "cash_amount": pl.Float64},
        orient="row",
    )


def _closes(rows: list[tuple[str, dt.date, dt.date, float]]) -> pl.DataFrame:
    """(entity, ex-date, the close's session, close)."""
    return pl.DataFrame(rows, schema=DIVIDEND_CLOSE_SCHEMA, orient="row")


def test_one_row_per_span_of_constant_factors() -> None:
    # XYZ: 2:1 split on 2024-03-04, then a 1.00 dividend on 2024-05-06 measured against a close of 50.
    splits = _splits([("XYZ", D(2024, 3, 4), 1, 2)])
    dividends = _dividends([("XYZ", D(2024, 5, 6), 1.0)])
    events, unapplied = corporate_events(
        splits, dividends, _closes([("XYZ", D(2024, 5, 6), D(2024, 5, 3), 50.0)])
    )
    assert unapplied.is_empty()
    intervals = factor_intervals(events, ticker_spans(pl.Series(["XYZ", "OTHER"]), None))
    assert intervals.rows() == [
        ("XYZ", BEGINNING, D(2024, 3, 4), 0.5, 0.5 * 0.98),
        ("XYZ", D(2024, 3, 4), D(2024, 5, 6), 1.0, 0.98),
    ]  # from the dividend on: factors 1, which the table leaves out, as it does for OTHER
    keys = pl.DataFrame(
        {
            "ticker": ["XYZ", "XYZ", "XYZ", "XYZ", "OTHER"],
            "session_date": [D(2024, 3, 1), D(2024, 3, 4), D(2024, 5, 3), D(2024, 5, 6), D(2024, 1, 2)],
        }
    )
    got = factors_on(keys, intervals)
    assert got["split_factor"].to_list() == [0.5, 1.0, 1.0, 1.0, 1.0]
    assert got["adj_factor"].to_list() == pytest.approx([0.49, 0.98, 0.98, 1.0, 1.0])


def test_actions_after_as_of_are_pending() -> None:
    splits = _splits([("XYZ", D(2024, 3, 4), 1, 2), ("XYZ", D(2024, 9, 2), 1, 3)])
    events, _ = corporate_events(
        splits, _dividends([]), pl.DataFrame(schema=DIVIDEND_CLOSE_SCHEMA), as_of=D(2024, 6, 28)
    )
    assert events["event_date"].to_list() == [D(2024, 3, 4)]


@pytest.mark.parametrize(
    ("close", "reason"),
    [
        (None, "no close before the ex-dividend date"),
        (0.0, "dividend multiplier is not a finite number"),
        (0.8, "dividend not below the previous close"),
    ],
)
def test_dividends_that_cannot_be_applied_are_reported_never_applied(
    close: float | None, reason: str
) -> None:
    closes = _closes([("XYZ", D(2024, 5, 6), D(2024, 5, 3), close)])
    events, unapplied = corporate_events(_splits([]), _dividends([("XYZ", D(2024, 5, 6), 1.0)]), closes)
    assert events.is_empty()
    assert unapplied["reason"].to_list() == [reason]


@pytest.mark.parametrize(("adjusted", "multiplier"), [(0.5, 0.98), (None, 0.96), (0.0, 0.96)])
def test_the_vendors_split_adjusted_amount_wins_where_positive(
    adjusted: float | None, multiplier: float
) -> None:
    # Ex-date on a 1:2 split's execution date, previous close 50 (25 in post-split shares). The record's
    # cash_amount of 1.00 disagrees with its split-adjusted 0.50 (no later split): 0.50 is used where given.
    dividends = _dividends([("XYZ", D(2024, 5, 6), 1.0)]).with_columns(
        pl.Series("split_adjusted_cash_amount", [adjusted], dtype=pl.Float64)
    )
    events, unapplied = corporate_events(
        _splits([("XYZ", D(2024, 5, 6), 1, 2)]),
        dividends,
        _closes([("XYZ", D(2024, 5, 6), D(2024, 5, 3), 50.0)]),
    )
    assert unapplied.is_empty()
    assert events.rows() == [("XYZ", D(2024, 5, 6), 0.5, pytest.approx(0.5 * multiplier))]


def test_pending_dividends_are_neither_applied_nor_reported() -> None:
    # Declared for after the lake's last session: no close was looked up for it, and none is missing yet.
    dividends = _dividends([("XYZ", D(2024, 5, 6), 1.0), ("XYZ", D(2024, 8, 5), 1.0)])
    closes = _closes([("XYZ", D(2024, 5, 6), D(2024, 5, 3), 50.0)])
    events, unapplied = corporate_events(_splits([]), dividends, closes, as_of=D(2024, 6, 28))
    assert events.rows() == [("XYZ", D(2024, 5, 6), 1.0, pytest.approx(0.98))]
    assert unapplied.is_empty()


def test_renamed_ticker_spans_carry_the_company_factors() -> None:
    renames = pl.DataFrame(
        {"old_ticker": ["OLD"], "new_ticker": ["NEW"], "change_date": [D(2024, 4, 1)]},
        schema={"old_ticker": pl.String, "new_ticker": pl.String, "change_date": pl.Date},
    )
    spans = ticker_spans(pl.Series(["NEW"]), renames)
    assert spans.sort("ticker", "valid_from").rows() == [
        ("NEW", BEGINNING, END_OF_TIME, "NEW"),
        ("OLD", BEGINNING, D(2024, 4, 1), "NEW"),
        ("OLD", D(2024, 4, 1), END_OF_TIME, "OLD"),  # the name reused later is another company
    ]
    events, _ = corporate_events(_splits([("NEW", D(2024, 6, 3), 1, 4)]), _dividends([]), _closes([]), spans)
    intervals = factor_intervals(events, spans)
    assert intervals.rows() == [
        ("NEW", BEGINNING, D(2024, 6, 3), 0.25, 0.25),
        ("OLD", BEGINNING, D(2024, 4, 1), 0.25, 0.25),
    ]


def test_session_multipliers_put_an_event_on_the_next_session() -> None:
    # A split "executed" on a Saturday belongs to Monday's session: bars from Monday on are post-split.
    # Monday's dividend is measured against Friday's close of 50, 25 in post-split shares.
    splits = _splits([("XYZ", D(2024, 3, 2), 1, 2)])
    dividends = _dividends([("XYZ", D(2024, 3, 4), 0.5), ("XYZ", D(2024, 3, 6), 1.0)])
    closes = _closes(
        [("XYZ", D(2024, 3, 4), D(2024, 3, 1), 50.0), ("XYZ", D(2024, 3, 6), D(2024, 3, 5), 20.0)]
    )
    events, _ = corporate_events(splits, dividends, closes)
    sessions = [D(2024, 3, 1), D(2024, 3, 4), D(2024, 3, 5), D(2024, 3, 6)]
    got = session_multipliers(events, ticker_spans(pl.Series(["XYZ"]), None), sessions)
    assert got.rows() == [
        ("XYZ", "XYZ", D(2024, 3, 4), 0.5, pytest.approx(0.5 * 0.98)),
        ("XYZ", "XYZ", D(2024, 3, 6), 1.0, pytest.approx(0.95)),
    ]


def test_split_digests_follow_splits_only() -> None:
    """The split-only Qlib root's per-ticker digest: a dividend (before or after the split, or on a ticker
    without splits) changes none; a new split changes that ticker's only."""
    from quantmini.pipeline.factors import split_digests

    spans = ticker_spans(pl.Series(["XYZ", "ABC"]), None)
    closes = _closes(
        [
            ("XYZ", D(2024, 2, 1), D(2024, 1, 31), 40.0),
            ("XYZ", D(2024, 5, 6), D(2024, 5, 3), 50.0),
            ("ABC", D(2024, 4, 1), D(2024, 3, 28), 9.0),
        ]
    )

    def digests(splits: list[tuple[str, dt.date, float, float]], dividends: list[tuple[str, dt.date, float]]):
        events, _ = corporate_events(_splits(splits), _dividends(dividends), closes)
        return split_digests(factor_intervals(events, spans))

    split = [("XYZ", D(2024, 3, 4), 1.0, 2.0)]
    plain = digests(split, [])
    assert set(plain) == {"XYZ"}
    with_dividends = [("XYZ", D(2024, 2, 1), 0.5), ("XYZ", D(2024, 5, 6), 1.0), ("ABC", D(2024, 4, 1), 0.1)]
    assert digests(split, with_dividends) == plain
    another = digests([*split, ("ABC", D(2024, 4, 2), 3.0, 1.0)], with_dividends)
    assert another["XYZ"] == plain["XYZ"]
    assert set(another) == {"XYZ", "ABC"}
    assert digests([("XYZ", D(2024, 3, 4), 1.0, 4.0)], [])["XYZ"] != plain["XYZ"]
