"""Minute silver features and daily roll-ups against a plain-Python reference, their independence from how
sessions are grouped, and the exchange-local minute calendar.

The history spans the 2024 DST change (outputs after it, most of the lookback before), a 2:1 split inside
the 20-session lookback, a ticker absent for a whole session, a sparse ticker, a pre-market-only ticker
and a ticker with zero prices and volumes. The reference walks bars one by one with dictionaries keyed by
(ticker, session, exchange-local minute) and applies the split as its share ratio — nothing from the code
under test.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from quantmini.core.calendar import sessions as xnys_sessions
from quantmini.core.minute import (
    DAILY_ROLLUP_SCHEMA,
    FEATURES,
    minute_daily_rollups,
    stocks_minute_silver,
)
from quantmini.core.window import FactorContext, SessionWindow

ZONE = ZoneInfo("America/New_York")
SESSIONS = xnys_sessions(dt.date(2024, 2, 5), dt.date(2024, 3, 15))
FIRST_OUTPUT = 24  # 2024-03-11, the first session after the DST change
OUTPUTS = list(range(FIRST_OUTPUT, len(SESSIONS)))
#: 09:00-10:20 (pre-market into the open) and 15:50-16:10 (the close into after-hours).
MINUTES = [*range(540, 621), *range(950, 971)]
SPLIT_TICKER, SPLIT_SESSION = "AAA", 14
ABSENT = ("CCC", 6)  # no bar at all that session
AAA_GAPS = {(25, 575), (26, 600), (26, 601), (26, 602), (27, 540)}
COLUMNS = ["ticker", "day", "minute", "open", "high", "low", "close", "volume"]


def test_history_spans_the_dst_change() -> None:
    assert SESSIONS[FIRST_OUTPUT] == dt.date(2024, 3, 11)
    assert SESSIONS[FIRST_OUTPUT - 1] == dt.date(2024, 3, 8)
    assert len(SESSIONS) == 29


def _economic_history(seed: int = 7) -> pd.DataFrame:
    """Bars in one share basis (as if no split happened)."""
    rng = np.random.default_rng(seed)
    rows = []
    for ticker, drop in (("AAA", 0.0), ("BBB", 0.4), ("CCC", 0.05), ("PRE", 0.1), ("ZED", 0.1)):
        price = 20.0
        for day in range(len(SESSIONS)):
            if (ticker, day) == ABSENT:
                continue
            for minute in MINUTES:
                if ticker == "PRE" and minute >= 570:
                    continue
                if rng.random() < drop or (ticker == "AAA" and (day, minute) in AAA_GAPS):
                    continue
                open_ = price
                price *= float(np.exp(rng.normal(0, 0.002)))
                close = price
                volume = float(rng.integers(0, 5) * 100)
                if ticker == "ZED" and rng.random() < 0.15:
                    open_ = close = 0.0
                if ticker == "ZED" and rng.random() < 0.3:
                    volume = 0.0
                high, low = max(open_, close) * 1.001, min(open_, close) * 0.999
                rows.append((ticker, day, minute, open_, high, low, close, volume))
    return pd.DataFrame(rows, columns=COLUMNS)


def _with_split(economic: pd.DataFrame) -> pd.DataFrame:
    """Raw bars: from the split session on, SPLIT_TICKER trades twice the shares at half the price."""
    raw = economic.copy()
    after = (raw.ticker == SPLIT_TICKER) & (raw.day >= SPLIT_SESSION)
    raw.loc[after, ["open", "high", "low", "close"]] /= 2
    raw.loc[after, "volume"] *= 2
    return raw


def _bronze(history: pd.DataFrame) -> pl.DataFrame:
    """The history in the bronze minute layout (window_start from zoneinfo, ts derived from it)."""
    starts, dates = [], []
    for day, minute in zip(history.day, history.minute, strict=True):
        local = dt.datetime.combine(SESSIONS[day], dt.time(minute // 60, minute % 60), tzinfo=ZONE)
        starts.append(int(local.timestamp()) * 1_000_000_000)
        dates.append(SESSIONS[day])
    frame = pl.DataFrame(
        {
            "ticker": history.ticker.tolist(),
            "session_date": dates,
            "window_start": starts,
            **{c: history[c].astype(float).tolist() for c in ("open", "high", "low", "close", "volume")},
            "transactions": [1] * len(history),
            "regular_session": [570 <= m < 960 for m in history.minute],
        },
        schema_overrides={"session_date": pl.Date, "window_start": pl.Int64},
    )
    ts = pl.from_epoch("window_start", time_unit="ns").dt.replace_time_zone("UTC")
    return frame.with_columns(ts.dt.convert_time_zone("America/New_York").alias("ts")).select(
        "ticker", "session_date", "ts", "window_start", "open", "high", "low", "close", "volume",
        "transactions", "regular_session",
    ).sort("ticker", "window_start")  # fmt: skip


def _window(history: pd.DataFrame, outputs: list[int], split: bool = True) -> SessionWindow:
    """Outputs with their 20-session lookback; the split as the engine passes it (multiplier 1/2)."""
    days = list(range(outputs[0] - 20, outputs[-1] + 1))
    bars = _bronze(history[history.day.isin(days)])
    multipliers = pl.DataFrame(
        [(SPLIT_TICKER, SESSIONS[SPLIT_SESSION], 0.5, 0.5)] if split else [],
        schema={
            "ticker": pl.String,
            "session_date": pl.Date,
            "split_multiplier": pl.Float64,
            "total_multiplier": pl.Float64,
        },
        orient="row",
    )
    return SessionWindow(
        bars=bars,
        sessions=tuple(SESSIONS[d] for d in days),
        outputs=tuple(SESSIONS[d] for d in outputs),
        factors=FactorContext(multipliers, pl.DataFrame(), pl.DataFrame()),
    )


def _ratio(a: float, b: float) -> float:
    if b == 0 or not math.isfinite(a / b):
        return math.nan
    return a / b


def _reference(raw: pd.DataFrame, outputs: list[int]) -> pd.DataFrame:
    bars = {(r.ticker, r.day, r.minute): r for r in raw.itertuples()}
    present = {(r.ticker, r.day) for r in raw.itertuples()}

    def ret(t: str, d: int, m: int, h: int) -> float:
        now, then = bars.get((t, d, m)), bars.get((t, d, m - h))
        return math.nan if now is None or then is None else _ratio(now.close, then.close) - 1

    rows = []
    for r in raw[raw.day.isin(outputs)].sort_values(["ticker", "day", "minute"]).itertuples():
        t, d, m = r.ticker, r.day, r.minute
        out = {"ticker": t, "day": d, "minute": m}
        for h in (1, 5, 15, 30):
            out[f"ret_{h}m"] = ret(t, d, m, h)
        ones = np.array([ret(t, d, m - k, 1) for k in range(30)])
        out["rv_30m"] = math.nan if np.isnan(ones).any() else float(np.std(ones, ddof=1))
        out["vwap_dist"] = math.nan
        if 570 <= m < 960:
            session = [bars[(t, d, x)] for x in range(570, m + 1) if (t, d, x) in bars]
            value = sum((b.high + b.low + b.close) / 3 * b.volume for b in session)
            out["vwap_dist"] = _ratio(r.close, _ratio(value, sum(b.volume for b in session))) - 1
        terms = []
        for j in range(1, 21):
            earlier = bars.get((t, d - j, m))
            share_ratio = 2.0 if t == SPLIT_TICKER and d - j < SPLIT_SESSION <= d else 1.0
            volume = 0.0 if earlier is None else earlier.volume
            terms.append(volume * share_ratio if (t, d - j) in present else math.nan)
        out["volume_rel_20d"] = _ratio(r.volume, sum(terms) / 20)
        rows.append(out)
    return pd.DataFrame(rows)


def _minutes_of(frame: pl.DataFrame) -> list[int]:
    return [ts.hour * 60 + ts.minute for ts in frame["ts"].to_list()]


def _assert_close(actual: list[float | None], expected: np.ndarray, name: str) -> None:
    got = np.array([np.nan if v is None else v for v in actual], dtype=float)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg=name)
    mask = ~np.isnan(got)
    np.testing.assert_allclose(got[mask], expected[mask], rtol=1e-9, atol=1e-12, err_msg=name)


def test_features_match_the_reference_across_gaps_sessions_dst_and_a_split() -> None:
    raw = _with_split(_economic_history())
    got = stocks_minute_silver(_window(raw, OUTPUTS))
    ref = _reference(raw, OUTPUTS)
    assert got.columns == [*_bronze(raw.head(1)).columns, *FEATURES]
    assert got["ticker"].to_list() == ref.ticker.tolist()
    assert got["session_date"].to_list() == [SESSIONS[d] for d in ref.day]
    assert _minutes_of(got) == ref.minute.tolist()
    for name in FEATURES:
        _assert_close(got[name].to_list(), ref[name].to_numpy(dtype=float), name)
    # The test exercises every feature: each has values and nulls.
    for name in FEATURES:
        assert 0 < got[name].null_count() < got.height, name
    # CCC has no bar on session 6: outputs whose 20 previous sessions include it have no volume_rel_20d.
    ccc = got.filter(pl.col("ticker") == "CCC").group_by("session_date").agg(pl.col("volume_rel_20d").count())
    counts = dict(ccc.iter_rows())
    assert [counts[SESSIONS[d]] > 0 for d in OUTPUTS] == [False, False, False, True, True]


def test_windows_count_minute_slots_within_one_session() -> None:
    raw = _with_split(_economic_history())
    got = stocks_minute_silver(_window(raw, OUTPUTS)).filter(pl.col("ticker") == "AAA")
    day = got.filter(pl.col("session_date") == SESSIONS[25])
    at = dict(zip(_minutes_of(day), day.iter_rows(named=True), strict=True))
    # The first bar of a session has no return, although the previous session has bars.
    assert at[540]["ret_1m"] is None
    assert at[541]["ret_1m"] is not None
    # 09:35 (575) is an empty slot: 09:36 has no 1-minute return, 09:40 no 5-minute one.
    assert at[576]["ret_1m"] is None
    assert at[580]["ret_5m"] is None
    assert at[581]["ret_5m"] == pytest.approx(at[581]["close"] / at[576]["close"] - 1, rel=1e-12)
    # 16:00 is 30 slots after 15:30 but the bar is missing: the gap between 10:20 and 15:50 is empty slots.
    assert at[955]["ret_5m"] == pytest.approx(at[955]["close"] / at[950]["close"] - 1, rel=1e-12)
    assert at[955]["ret_15m"] is None
    # rv_30m needs the 31 bars t-30..t: 09:35's gap hides it until 10:06.
    assert at[605]["rv_30m"] is None
    assert at[606]["rv_30m"] is not None
    # The regular VWAP starts at 09:30: pre-market bars have none.
    assert at[569]["vwap_dist"] is None
    assert at[570]["vwap_dist"] == pytest.approx(
        at[570]["close"] / ((at[570]["high"] + at[570]["low"] + at[570]["close"]) / 3) - 1, rel=1e-9
    )


def test_a_split_in_the_lookback_changes_no_feature() -> None:
    economic = _economic_history()
    before = stocks_minute_silver(_window(economic, OUTPUTS, split=False))
    after = stocks_minute_silver(_window(_with_split(economic), OUTPUTS))
    assert_frame_equal(after.select(FEATURES), before.select(FEATURES), check_exact=True)
    aaa = after.filter(pl.col("ticker") == SPLIT_TICKER)
    assert aaa["volume_rel_20d"].drop_nulls().len() > 100
    # Without the multiplier the raw volumes of the lookback straddle the split: the feature moves.
    unadjusted = stocks_minute_silver(_window(_with_split(economic), OUTPUTS, split=False))
    assert not unadjusted.select("volume_rel_20d").equals(after.select("volume_rel_20d"))


@pytest.mark.parametrize("transform", [stocks_minute_silver, minute_daily_rollups])
def test_results_do_not_depend_on_how_sessions_are_grouped(transform: object) -> None:
    """Three sessions at once, or each alone with its own lookback: bit-identical rows."""
    assert callable(transform)
    raw = _with_split(_economic_history())
    together = transform(_window(raw, OUTPUTS[:3]))
    alone = pl.concat([transform(_window(raw, [d])) for d in OUTPUTS[:3]]).sort(
        "ticker", "session_date", maintain_order=True
    )
    assert together.height > 0
    assert_frame_equal(together, alone, check_exact=True)


@pytest.mark.parametrize("transform", [stocks_minute_silver, minute_daily_rollups])
def test_results_do_not_depend_on_the_order_of_the_window_rows(transform: object) -> None:
    """Ticker-major (as the tests build it), session-major (as partitions are read) or shuffled rows."""
    assert callable(transform)
    window = _window(_with_split(_economic_history()), OUTPUTS[:3])
    expected = transform(window)
    by_session = window.bars.sort("session_date", "ticker", "window_start")
    shuffled = window.bars.sample(fraction=1.0, shuffle=True, seed=3)
    for bars in (by_session, shuffled):
        assert_frame_equal(transform(dataclasses.replace(window, bars=bars)), expected, check_exact=True)


@pytest.mark.parametrize("transform", [stocks_minute_silver, minute_daily_rollups])
def test_a_window_of_some_tickers_gives_their_rows_of_the_whole_window(transform: object) -> None:
    """A window may hold one range of tickers (a bucket of a large session), not the whole market."""
    assert callable(transform)
    window = _window(_with_split(_economic_history()), OUTPUTS)
    whole = transform(window)
    for bucket in (["AAA"], ["BBB", "CCC"], ["PRE", "ZED"]):
        part = dataclasses.replace(window, bars=window.bars.filter(pl.col("ticker").is_in(bucket)))
        expected = whole.filter(pl.col("ticker").is_in(bucket))
        assert expected.height > 0
        assert_frame_equal(transform(part), expected, check_exact=True)


def test_a_lookback_session_without_bars_or_outside_the_window_makes_volume_rel_20d_null() -> None:
    window = _window(_with_split(_economic_history()), [OUTPUTS[0]])
    full = stocks_minute_silver(window)
    assert full["volume_rel_20d"].null_count() < full.height
    # No partition for a session of the lookback: no ticker has a bar then.
    gap = window.bars.filter(pl.col("session_date") != SESSIONS[OUTPUTS[0] - 3])
    # A window that starts 15 sessions before the output: five of the 20 sessions are unknown.
    start = window.sessions[5]
    short = dataclasses.replace(
        window, sessions=window.sessions[5:], bars=window.bars.filter(pl.col("session_date") >= start)
    )
    for got in (stocks_minute_silver(dataclasses.replace(window, bars=gap)), stocks_minute_silver(short)):
        assert got["volume_rel_20d"].null_count() == got.height
        assert_frame_equal(got.drop("volume_rel_20d"), full.drop("volume_rel_20d"), check_exact=True)


def test_a_later_bar_never_changes_an_earlier_row() -> None:
    raw = _with_split(_economic_history())
    got = stocks_minute_silver(_window(raw, OUTPUTS))
    later = (raw.day > 25) | ((raw.day == 25) & (raw.minute > 600))
    changed = raw.copy()
    changed.loc[later, ["open", "high", "low", "close"]] *= 3
    changed.loc[later, "volume"] += 700
    changed = changed[~(later & (changed.minute % 7 == 0))]  # and some later bars vanish
    again = stocks_minute_silver(_window(changed, OUTPUTS))
    cutoff = int(dt.datetime(2024, 3, 12, 10, 0, tzinfo=ZONE).timestamp()) * 1_000_000_000
    assert SESSIONS[25] == dt.date(2024, 3, 12)
    earlier = pl.col("window_start") <= cutoff
    assert again.filter(earlier).height > 500
    assert_frame_equal(again.filter(earlier), got.filter(earlier), check_exact=True)


def test_zero_prices_and_volumes_give_null_never_nan_or_inf() -> None:
    raw = _with_split(_economic_history())
    zed = raw[raw.ticker == "ZED"]
    assert (zed.close == 0).any()
    assert (zed.volume == 0).any()
    got = stocks_minute_silver(_window(raw, OUTPUTS))
    for name in FEATURES:
        values = got[name].drop_nulls()
        assert values.is_finite().all(), name
    rollups = minute_daily_rollups(_window(raw, OUTPUTS))
    for name in ("open", "high", "low", "close", "volume", "vwap", "extended_volume"):
        assert rollups[name].drop_nulls().is_finite().all(), name


def test_empty_outputs_give_empty_frames_with_the_columns() -> None:
    raw = _with_split(_economic_history())
    window = _window(raw, OUTPUTS)
    empty = dataclasses.replace(window, outputs=(dt.date(2024, 3, 16),))
    assert stocks_minute_silver(empty).columns == [*window.bars.columns, *FEATURES]
    assert stocks_minute_silver(empty).height == 0
    assert minute_daily_rollups(empty).schema == DAILY_ROLLUP_SCHEMA


def _reference_rollups(raw: pd.DataFrame, outputs: list[int]) -> pd.DataFrame:
    rows = []
    for (ticker, day), group in raw[raw.day.isin(outputs)].groupby(["ticker", "day"], sort=True):
        group = group.sort_values("minute")
        regular = group[(group.minute >= 570) & (group.minute < 960)]
        volume = float(regular.volume.sum())
        value = float(((regular.high + regular.low + regular.close) / 3 * regular.volume).sum())
        rows.append(
            {
                "ticker": ticker,
                "session_date": SESSIONS[day],
                "open": regular.open.iloc[0] if len(regular) else math.nan,
                "high": regular.high.max() if len(regular) else math.nan,
                "low": regular.low.min() if len(regular) else math.nan,
                "close": regular.close.iloc[-1] if len(regular) else math.nan,
                "volume": volume,
                "vwap": _ratio(value, volume),
                "bar_count": len(regular),
                "extended_volume": float(group.volume.sum()) - volume,
            }
        )
    return pd.DataFrame(rows)


def test_daily_rollups_match_the_reference() -> None:
    raw = _with_split(_economic_history())
    got = minute_daily_rollups(_window(raw, OUTPUTS))
    ref = _reference_rollups(raw, OUTPUTS)
    assert got.schema == DAILY_ROLLUP_SCHEMA
    assert got["ticker"].to_list() == ref.ticker.tolist()
    assert got["session_date"].to_list() == ref.session_date.tolist()
    assert got["bar_count"].to_list() == ref.bar_count.tolist()
    for name in ("open", "high", "low", "close", "volume", "vwap", "extended_volume"):
        _assert_close(got[name].to_list(), ref[name].to_numpy(dtype=float), name)
    pre = got.filter(pl.col("ticker") == "PRE")
    assert pre["bar_count"].to_list() == [0] * len(OUTPUTS)
    assert pre["close"].null_count() == len(OUTPUTS)
    assert (pre["extended_volume"] > 0).all()
