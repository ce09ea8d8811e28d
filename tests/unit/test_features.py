"""Daily features against a plain pandas reference (groupby + rolling), across symbols and gaps."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import polars as pl

from quantmini.core.features import daily_features


def _history(seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2024-01-01", periods=60)
    rows = []
    for ticker, start in (("AAA", 0), ("BRK.B", 10), ("ZZ", 45)):
        price = 50.0
        for day in days[start:]:
            if rng.random() < 0.05:
                continue  # a halted day is not a bar
            price *= float(np.exp(rng.normal(0, 0.02)))
            rows.append((ticker, day.date(), price, float(rng.lognormal(10, 0.5))))
    return pd.DataFrame(rows, columns=["ticker", "session_date", "adj_close", "adj_volume"])


def test_features_match_pandas_rolling_reference() -> None:
    hist = _history()
    got = daily_features(pl.from_pandas(hist)).sort("ticker", "session_date").to_pandas()

    ref = hist.sort_values(["ticker", "session_date"]).copy()
    g = ref.groupby("ticker")
    for h in (1, 5, 20):
        ref[f"ret_{h}d"] = ref.adj_close / g.adj_close.shift(h) - 1
    ref["vol_20d"] = ref.groupby("ticker").ret_1d.transform(
        lambda s: s.rolling(20, min_periods=20).std(ddof=1)
    )
    mean = g.adj_volume.transform(lambda s: s.rolling(20, min_periods=20).mean())
    std = g.adj_volume.transform(lambda s: s.rolling(20, min_periods=20).std(ddof=1))
    ref["volume_z_20d"] = (ref.adj_volume - mean) / std

    for col in ("ret_1d", "ret_5d", "ret_20d", "vol_20d", "volume_z_20d"):
        expected = ref[col].to_numpy(dtype=float)
        actual = got[col].to_numpy(dtype=float)
        np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected), err_msg=col)
        np.testing.assert_allclose(
            actual[~np.isnan(actual)], expected[~np.isnan(expected)], rtol=1e-9, err_msg=col
        )


def test_features_are_not_null_once_history_is_long_enough() -> None:
    got = daily_features(pl.from_pandas(_history())).sort("ticker", "session_date")
    aaa = got.filter(pl.col("ticker") == "AAA")
    # Bar 21 onward has 20 returns: every feature is defined from there on.
    assert aaa.slice(20).select(pl.all().null_count()).sum_horizontal().item() == 0
    # ZZ starts late: its first bar has no return (no earlier bar), never a return against AAA's prices.
    zz = got.filter(pl.col("ticker") == "ZZ")
    assert zz["ret_1d"][0] is None
    assert zz["session_date"][0] > dt.date(2024, 3, 1)
