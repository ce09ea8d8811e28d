"""The universes transform on small hand-made windows: ties, thin trading, records without a type, and the
declaration. (The committed answers in tests/fixtures/silver/stocks_daily cover the rest.)"""

from __future__ import annotations

import datetime as dt

import exchange_calendars as xcals
import polars as pl

from quantmini.core.universes import LOOKBACK, SIZES_KEY, session_universes
from quantmini.core.window import FactorContext, SessionWindow
from quantmini.datasets import get_spec

#: XNYS sessions of January and February 2025 (January has exactly 20).
SESSIONS = tuple(d.date() for d in xcals.get_calendar("XNYS").sessions_in_range("2025-01-02", "2025-02-28"))
FEB_3 = dt.date(2025, 2, 3)


def _window(
    bars: list[tuple[str, dt.date, float, float]], tickers: pl.DataFrame, sizes: tuple[int, ...]
) -> SessionWindow:
    frame = pl.DataFrame(
        bars,
        schema={
            "ticker": pl.String(),
            "session_date": pl.Date(),
            "close": pl.Float64(),
            "volume": pl.Float64(),
        },
        orient="row",
    )
    return SessionWindow(
        frame, SESSIONS, (FEB_3,), references={"tickers": tickers}, settings={SIZES_KEY: sizes}
    )


def _tickers(types: dict[str, str | None]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "ticker": list(types),
            "type": list(types.values()),
            "list_date": [dt.date(2000, 1, 3)] * len(types),
            "delisted_utc": [None] * len(types),
            "last_updated_utc": [dt.datetime(2025, 3, 1, tzinfo=dt.UTC)] * len(types),
        },
        schema={
            "ticker": pl.String(),
            "type": pl.String(),
            "list_date": pl.Date(),
            "delisted_utc": pl.Datetime("us", "UTC"),
            "last_updated_utc": pl.Datetime("us", "UTC"),
        },
    )


def test_equal_liquidity_ranks_by_ticker_and_a_ticker_needs_bars_on_half_the_sessions() -> None:
    january = SESSIONS[:20]
    bars = [(t, d, 10.0, 1000.0) for t in ("BBB", "AAA") for d in january]  # $10,000 a day each
    bars += [("CCC", d, 100.0, 1e6) for d in january[:9]]  # $100 M on 9 of 20 sessions: median 0
    bars += [("EEE", d, 100.0, 1e6) for d in january[:10]]  # on 10 of 20: median (0 + $100 M) / 2
    bars += [(t, FEB_3, 10.0, 1.0) for t in ("AAA", "BBB", "CCC", "DDD")]
    tickers = _tickers({"AAA": "CS", "BBB": "CS", "CCC": "ETF", "DDD": None, "EEE": "CS"})
    rows = session_universes(_window(bars, tickers, sizes=(2,)))
    assert rows.rows() == [
        ("AAA", FEB_3, "common", None, None, False),
        ("AAA", FEB_3, "top2", 2, 10_000.0, False),
        ("BBB", FEB_3, "common", None, None, False),
        ("CCC", FEB_3, "etf", None, None, False),
        ("DDD", FEB_3, "other", None, None, False),  # a record without a type
        ("EEE", FEB_3, "top2", 1, 50_000_000.0, False),  # a member without a bar that day
    ]


def test_without_the_tickers_table_only_liquidity_universes_exist() -> None:
    bars = [("AAA", d, 10.0, 1000.0) for d in (*SESSIONS[:20], FEB_3)]
    window = _window(bars, _tickers({}), sizes=(1, 5))
    rows = session_universes(SessionWindow(window.bars, SESSIONS, (FEB_3,), settings=window.settings))
    assert rows.select("universe", "rank").rows() == [("top1", 1), ("top5", 1)]


def test_the_declared_lookback_holds_a_month_and_its_ranking_sessions() -> None:
    part = next(p for p in get_spec("stocks_daily").silver if p.name == "universes")
    assert part.lookback == LOOKBACK == 20 + 23
    assert part.settings == (SIZES_KEY,)


def test_a_renamed_company_is_ranked_and_kept_as_one_across_its_rename() -> None:
    # OLD trades 10 January sessions, then becomes NEW (the same company, F1): $10 M a day throughout.
    # Per ticker neither would have a positive median; as one company its median is $10 M, and the old
    # ticker's delisting at the rename is no delisting of the company.
    january = SESSIONS[:20]
    rename = january[10]
    bars = [("OLD", d, 100.0, 1e5) for d in january[:10]]
    bars += [("NEW", d, 100.0, 1e5) for d in january[10:]]
    bars += [("SMALL", d, 10.0, 100.0) for d in january]
    bars += [("NEW", FEB_3, 100.0, 1e5), ("SMALL", FEB_3, 10.0, 100.0)]
    tickers = _tickers({"OLD": "CS", "NEW": "CS", "SMALL": "CS"}).with_columns(
        pl.when(pl.col("ticker") == "OLD")
        .then(pl.lit(dt.datetime(2025, 1, 16, tzinfo=dt.UTC)))
        .alias("delisted_utc")
    )
    spans = pl.DataFrame(
        [
            ("OLD", dt.date(1900, 1, 1), rename, "F1"),
            ("NEW", rename, dt.date(9999, 12, 31), "F1"),
            ("SMALL", dt.date(1900, 1, 1), dt.date(9999, 12, 31), "F2"),
        ],
        schema={"ticker": pl.String, "valid_from": pl.Date, "valid_to": pl.Date, "entity": pl.String},
        orient="row",
    )
    window = _window(bars, tickers, sizes=(1,))
    window = SessionWindow(
        window.bars,
        SESSIONS,
        (FEB_3,),
        references=window.references,
        settings=window.settings,
        factors=FactorContext(pl.DataFrame(), pl.DataFrame(), spans),
    )
    rows = session_universes(window)
    assert rows.filter(pl.col("universe") == "top1").rows() == [
        ("NEW", FEB_3, "top1", 1, 10_000_000.0, False)
    ]
