"""Window arithmetic on session-aligned frames, against numpy."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from quantmini.core.window import (
    FactorContext,
    SessionWindow,
    align,
    lag,
    with_relative_basis,
    with_window_stats,
)

SESSIONS = tuple(dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(8))


def _window(rows: list[tuple[str, int, float]]) -> SessionWindow:
    bars = pl.DataFrame(
        [(t, SESSIONS[i], v) for t, i, v in rows],
        schema={"ticker": pl.String, "session_date": pl.Date, "value": pl.Float64},
        orient="row",
    )
    return SessionWindow(bars=bars, sessions=SESSIONS, outputs=SESSIONS)


def test_align_puts_every_ticker_on_every_session_and_lag_never_crosses_tickers() -> None:
    frame = align(_window([("A", 0, 1.0), ("A", 2, 3.0), ("B", 0, 10.0), ("B", 7, 80.0)]), ["value"])
    assert frame.height == 2 * len(SESSIONS)
    assert frame.filter(pl.col("_series") == "A")["_present"].to_list() == [True, False, True] + [False] * 5
    lagged = frame.with_columns(lag(pl.col("value"), 2).alias("back2"))
    b = lagged.filter(pl.col("_series") == "B")
    assert b["back2"].to_list()[:2] == [None, None]  # never A's last values
    assert b["back2"].to_list()[2] == 10.0
    assert lagged.filter(pl.col("_series") == "A")["back2"].to_list()[4] == 3.0


def test_a_renamed_company_is_one_series_and_a_reused_ticker_two() -> None:
    # OLD became NEW from session 3 on; from session 5, another company trades as OLD.
    spans = pl.DataFrame(
        [
            ("OLD", dt.date(1900, 1, 1), SESSIONS[3], "F1"),
            ("NEW", SESSIONS[3], dt.date(9999, 12, 31), "F1"),
            ("OLD", SESSIONS[5], dt.date(9999, 12, 31), "F2"),
        ],
        schema={"ticker": pl.String, "valid_from": pl.Date, "valid_to": pl.Date, "entity": pl.String},
        orient="row",
    )
    bars = [("OLD", i, float(i)) for i in (0, 1, 2, 5, 6)] + [("NEW", i, 10.0 + i) for i in (3, 4, 5)]
    window = _window(bars)
    window = SessionWindow(
        bars=window.bars,
        sessions=SESSIONS,
        outputs=SESSIONS,
        factors=FactorContext(pl.DataFrame(), pl.DataFrame(), spans),
    )
    frame = align(window, ["value"]).with_columns(lag(pl.col("value"), 1).alias("back1"))
    f1 = frame.filter(pl.col("_series") == "F1")
    assert f1["ticker"].to_list() == ["OLD", "OLD", "OLD", "NEW", "NEW", "NEW", None, None]
    assert f1["back1"].to_list()[3] == 2.0  # NEW's first session looks back at OLD's last bar
    f2 = frame.filter(pl.col("_series") == "F2")
    assert f2["value"].to_list()[5:7] == [5.0, 6.0]
    assert f2["back1"].to_list()[5] is None  # never the first company's bars


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.floats(-1e6, 1e6)), min_size=8, max_size=8), st.integers(2, 5))
def test_window_stats_match_numpy_and_need_a_full_window(values: list[float | None], n: int) -> None:
    rows = [("A", i, v) for i, v in enumerate(values) if v is not None]
    if not rows:
        return
    frame = align(_window(rows), ["value"])
    stats = with_window_stats(frame, "w", [lag(pl.col("value"), k) for k in range(n)])
    series = np.array([np.nan if v is None else v for v in values])
    for i in range(len(values)):
        window = series[max(0, i - n + 1) : i + 1]
        mean, std = stats["w_mean"][i], stats["w_std"][i]
        if i < n - 1 or np.isnan(window).any():
            assert mean is None
            assert std is None
        else:
            np.testing.assert_allclose(mean, window.mean(), rtol=1e-12, atol=1e-9)
            np.testing.assert_allclose(std, window.std(ddof=1), rtol=1e-9, atol=1e-6)


def test_relative_basis_multiplies_the_actions_between_a_lag_and_now() -> None:
    frame = align(_window([("A", i, 1.0) for i in range(8)]), ["value"])
    multipliers = [1.0, 1.0, 0.5, 1.0, 0.25, 1.0, 1.0, 1.0]
    frame = frame.with_columns(pl.Series("split_multiplier", multipliers))
    frame, basis = with_relative_basis(frame, "split_multiplier", 4)
    got = frame.select(b.alias(f"b{j}") for j, b in enumerate(basis))
    # On session 5 (index 5): lag 1 has no action since; lag 2 crossed index 4 (×0.25); lag 3 too.
    assert got.row(5) == (1.0, 1.0, 0.25, 0.25)
    # On session 4: the action of session 4 itself converts every earlier value; lag 3 crossed index 2 too.
    assert got.row(4) == (1.0, 0.25, 0.25, 0.125)
