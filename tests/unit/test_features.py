"""Daily silver features against a plain pandas reference, and their independence from how sessions are
grouped into computations (the property incremental silver rests on).

The reference adjusts prices with the *global* factors of the plain adjustment definition
(tests/support/reference_factors.py), puts every ticker on the session calendar (NaN where it has no bar)
and uses pandas' rolling windows — nothing from the code under test.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import polars as pl
import pytest

from quantmini.core.adjustment import (
    corporate_events,
    dividend_closes_from_bars,
    session_multipliers,
    ticker_spans,
)
from quantmini.core.features import FEATURES, stocks_daily_silver
from quantmini.core.window import FactorContext, SessionWindow
from tests.support.reference_factors import reference_factors

SESSIONS = [d.date() for d in pd.bdate_range("2024-01-01", periods=70)]
SPLITS = pd.DataFrame(
    [("AAA", SESSIONS[30], 1.0, 2.0), ("BRK.B", SESSIONS[40], 3.0, 1.0)],
    columns=["ticker", "execution_date", "split_from", "split_to"],
)
DIVIDENDS = pd.DataFrame(
    [("AAA", SESSIONS[35], 0.4), ("BRK.B", SESSIONS[25], 1.1), ("AAA", SESSIONS[36], 0.2)],
    columns=["ticker", "ex_dividend_date", "cash_amount"],
)


def _history(seed: int = 3) -> pd.DataFrame:
    """Raw bars: a halted day now and then, a late starter, splits visible in the raw prices."""
    rng = np.random.default_rng(seed)
    rows = []
    for ticker, start in (("AAA", 0), ("BRK.B", 10), ("ZZ", 45)):
        price = 50.0
        for i, day in enumerate(SESSIONS[start:], start=start):
            price *= float(np.exp(rng.normal(0, 0.02)))
            raw = price
            split = SPLITS[(SPLITS.ticker == ticker) & (SPLITS.execution_date <= day)]
            for _, s in split.iterrows():
                raw = raw * s.split_from / s.split_to
            volume = float(rng.lognormal(10, 0.5))
            for _, s in split.iterrows():
                volume = volume * s.split_to / s.split_from
            if rng.random() < 0.05 and i not in (30, 40):
                continue  # a halted day is not a bar
            rows.append((ticker, day, raw, volume))
    return pd.DataFrame(rows, columns=["ticker", "session_date", "close", "volume"])


def _window(bars: pd.DataFrame, sessions: list[dt.date], outputs: list[dt.date]) -> SessionWindow:
    frame = pl.DataFrame(
        {
            "ticker": bars.ticker.tolist(),
            "session_date": bars.session_date.tolist(),
            "close": bars.close.tolist(),
            "volume": bars.volume.tolist(),
        },
        schema={"ticker": pl.String, "session_date": pl.Date, "close": pl.Float64, "volume": pl.Float64},
    )
    splits = pl.from_pandas(SPLITS).with_columns(pl.col("execution_date").cast(pl.Date))
    dividends = pl.from_pandas(DIVIDENDS).with_columns(pl.col("ex_dividend_date").cast(pl.Date))
    full = _window_bars()
    closes = dividend_closes_from_bars(full, dividends)
    events, _ = corporate_events(splits, dividends, closes)
    spans = ticker_spans(full["ticker"].unique(), None)
    multipliers = session_multipliers(events, spans, SESSIONS)
    window_bars = frame.filter(pl.col("session_date").is_in(pl.Series(sessions, dtype=pl.Date).implode()))
    return SessionWindow(
        bars=window_bars,
        sessions=tuple(sessions),
        outputs=tuple(outputs),
        factors=FactorContext(multipliers, events, spans),
    )


def _window_bars() -> pl.DataFrame:
    bars = _history()
    return pl.DataFrame(
        {
            "ticker": bars.ticker.tolist(),
            "session_date": bars.session_date.tolist(),
            "close": bars.close.tolist(),
        },
        schema={"ticker": pl.String, "session_date": pl.Date, "close": pl.Float64},
    )


def _reference(bars: pd.DataFrame) -> pd.DataFrame:
    factors = reference_factors(bars[["ticker", "session_date", "close"]], SPLITS, DIVIDENDS)
    merged = bars.merge(factors, on=["ticker", "session_date"])
    merged["adj_close"] = merged.close * merged.adj_factor
    merged["split_close"] = merged.close * merged.split_factor
    merged["split_volume"] = merged.volume / merged.split_factor
    out = []
    calendar = pd.Index(SESSIONS, name="session_date")
    for ticker, group in merged.groupby("ticker"):
        g = group.set_index("session_date").reindex(calendar)  # the session calendar, NaN where no bar
        for h in (1, 5, 20):
            g[f"ret_{h}d"] = g.adj_close / g.adj_close.shift(h) - 1
        g["price_ret_1d"] = g.split_close / g.split_close.shift(1) - 1
        g["vol_20d"] = g.ret_1d.rolling(20, min_periods=20).std(ddof=1)
        mean = g.split_volume.rolling(20, min_periods=20).mean()
        std = g.split_volume.rolling(20, min_periods=20).std(ddof=1)
        g["volume_z_20d"] = (g.split_volume - mean) / std
        g["ticker"] = ticker
        out.append(g[g.close.notna()].reset_index())
    return pd.concat(out, ignore_index=True).sort_values(["ticker", "session_date"]).reset_index(drop=True)


def test_features_match_the_pandas_reference_across_splits_dividends_and_halts() -> None:
    bars = _history()
    got = stocks_daily_silver(_window(bars, SESSIONS, SESSIONS)).sort("ticker", "session_date").to_pandas()
    ref = _reference(bars)
    assert got.ticker.tolist() == ref.ticker.tolist()
    assert [d.date() for d in got.session_date] == list(ref.session_date)
    for column in FEATURES:
        actual = got[column].to_numpy(dtype=float)
        expected = ref[column].to_numpy(dtype=float)
        np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected), err_msg=column)
        np.testing.assert_allclose(
            actual[~np.isnan(actual)], expected[~np.isnan(expected)], rtol=1e-9, err_msg=column
        )


def test_features_do_not_depend_on_how_sessions_are_grouped() -> None:
    """One session at a time with its 20-session lookback, or all at once: bit-identical rows."""
    bars = _history()
    whole = stocks_daily_silver(_window(bars, SESSIONS, SESSIONS)).sort("ticker", "session_date")
    for i in (20, 30, 31, 36, 41, 55, 69):
        one = stocks_daily_silver(_window(bars, SESSIONS[i - 20 : i + 1], [SESSIONS[i]])).sort("ticker")
        expected = whole.filter(pl.col("session_date") == SESSIONS[i])
        assert one.equals(expected), SESSIONS[i]


@pytest.mark.parametrize("session", [SESSIONS[30], SESSIONS[40]])
def test_a_split_inside_the_window_leaves_returns_continuous(session: dt.date) -> None:
    bars = _history()
    rows = stocks_daily_silver(_window(bars, SESSIONS, [session])).to_pandas()
    # The raw close halves (or triples) on the split; the total return across it stays a normal move.
    assert rows.ret_1d.abs().max() < 0.2


def test_the_first_bars_have_null_features_and_no_lookahead() -> None:
    bars = _history()
    got = stocks_daily_silver(_window(bars, SESSIONS, SESSIONS)).sort("ticker", "session_date")
    zz = got.filter(pl.col("ticker") == "ZZ")
    # ZZ starts late: its first bar has no return (no earlier bar), never a return against AAA's prices.
    assert zz["ret_1d"][0] is None
    assert zz["session_date"][0] == SESSIONS[45]
    # Changing the future changes nothing in the past.
    later = bars[bars.session_date > SESSIONS[50]].index
    changed = bars.copy()
    changed.loc[later, "close"] *= 3
    again = stocks_daily_silver(_window(changed, SESSIONS, SESSIONS)).sort("ticker", "session_date")
    before = pl.col("session_date") <= SESSIONS[50]
    assert again.filter(before).equals(got.filter(before))
