"""Option silver rows beyond the contract answers: minute bars with IV on, and the expired-bar count."""

from __future__ import annotations

import dataclasses
import datetime as dt

import polars as pl

from quantmini.datasets import get_spec
from tests.support.silver_answers import (
    ANSWERS,
    OPTION_TOLERANCES,
    answers_window,
    assert_matches_answers,
    polars_types,
    read_typed_csv,
)


def test_minute_iv_prices_each_bar_against_its_as_of_underlying() -> None:
    spec = get_spec("options_minute")
    part = spec.silver[0]
    got = part.transform(answers_window(spec, part, {"options.minute_iv": True}))
    # Written by tests/fixtures/silver/options_minute/make_answers.py with minute_iv on.
    expected = read_typed_csv(
        ANSWERS / "options_minute" / "expected_options_minute_with_iv.csv",
        polars_types(part.output_schema(spec.bronze_schema)),
    )
    assert expected["iv"].is_not_null().sum() == 10  # the file does test IVs (one on its expiration day)
    assert_matches_answers(got, expected, "options_minute (minute_iv on)", OPTION_TOLERANCES)


def test_an_expired_bar_counts_the_sessions_since_expiration_whatever_else_the_window_holds() -> None:
    spec = get_spec("options_daily")
    part = spec.silver[0]
    window = answers_window(spec, part)
    expired = pl.col("ticker") == "O:AAA251120C00100000"
    # 2025-11-20 to 2025-11-28: 11-21, 11-24, 11-25, 11-26 and 11-28 (Thanksgiving closed) = 5 sessions.
    for bars in (window.bars, window.bars.filter(expired)):
        rows = part.transform(dataclasses.replace(window, bars=bars)).filter(expired)
        assert rows.select("session_date", "dte_calendar", "dte_trading", "iv_reason").rows() == [
            (dt.date(2025, 11, 28), -8, -5, "expired")
        ]
