"""Adjustment factors against hand-worked answers and a plain-Python reference."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantmini.core.adjustment import adjustment_factors
from tests.support.reference_factors import reference_factors

FIXTURES = Path(__file__).parent.parent / "fixtures" / "adjustment"


def apply_adjustment(bars: pl.DataFrame, factors: pl.DataFrame) -> pl.DataFrame:
    """Adjusted close and split-adjusted volume, as the definition says (raw × factor, raw ÷ split)."""
    joined = bars.join(factors, on=["ticker", "session_date"], how="left")
    return joined.with_columns(
        (pl.col("close") * pl.col("adj_factor")).alias("adj_close"),
        (pl.col("volume") / pl.col("split_factor")).alias("adj_volume"),
    )


def _load(name: str, dates: tuple[str, ...]) -> pl.DataFrame:
    frame = pl.read_csv(FIXTURES / name)
    return frame.with_columns(
        *[pl.col(c).str.to_date() for c in dates],
        *[pl.col(c).cast(pl.Float64) for c, t in frame.schema.items() if t.is_numeric()],
    )


def test_factors_match_hand_worked_answers() -> None:
    bars = _load("bars.csv", ("session_date",))
    splits = _load("splits.csv", ("execution_date",))
    dividends = _load("dividends.csv", ("ex_dividend_date",))
    renames = _load("renames.csv", ("change_date",))
    expected = _load("expected_factors.csv", ("session_date",)).sort("ticker", "session_date")

    got = adjustment_factors(bars, splits, dividends, renames).sort("ticker", "session_date")

    assert got.select("ticker", "session_date").equals(expected.select("ticker", "session_date"))
    np.testing.assert_allclose(
        got["split_factor"].to_numpy(), expected["split_factor"].to_numpy(), rtol=1e-12
    )
    np.testing.assert_allclose(got["adj_factor"].to_numpy(), expected["adj_factor"].to_numpy(), rtol=1e-12)


def test_dividends_around_a_split_match_hand_worked_answers() -> None:
    """Before, on and after a 1:10 and a 10:1 split's execution date, with and without the vendor's
    split-adjusted amount; later splits stay pending (``dividend_timing/README.md``)."""
    bars = _load("dividend_timing/bars.csv", ("session_date",))
    splits = _load("dividend_timing/splits.csv", ("execution_date",))
    dividends = _load("dividend_timing/dividends.csv", ("ex_dividend_date",)).with_columns(
        pl.col("fetched_at").str.to_datetime(time_zone="UTC")
    )
    expected = _load("dividend_timing/expected_factors.csv", ("session_date",)).sort("ticker", "session_date")

    got = adjustment_factors(bars, splits, dividends, as_of=dt.date(2025, 1, 10)).sort(
        "ticker", "session_date"
    )

    assert got.select("ticker", "session_date").equals(expected.select("ticker", "session_date"))
    np.testing.assert_allclose(
        got["split_factor"].to_numpy(), expected["split_factor"].to_numpy(), rtol=1e-12
    )
    np.testing.assert_allclose(got["adj_factor"].to_numpy(), expected["adj_factor"].to_numpy(), rtol=1e-12)


def test_adjusted_prices_are_continuous_across_the_forward_split() -> None:
    bars = _load("bars.csv", ("session_date",)).with_columns(
        pl.col("close").alias("open"),
        pl.col("close").alias("high"),
        pl.col("close").alias("low"),
        pl.lit(1000.0).alias("volume"),
    )
    factors = adjustment_factors(
        bars, _load("splits.csv", ("execution_date",)), _load("dividends.csv", ("ex_dividend_date",))
    )
    adjusted = apply_adjustment(bars, factors).filter(pl.col("ticker") == "FWD").sort("session_date")
    assert adjusted["adj_close"].to_list() == pytest.approx([10.0, 10.2, 10.3, 10.4])
    # Across the rename, the company's adjusted closes are continuous too: 20.0, 20.5, 20.75, 21.0.
    factors = adjustment_factors(
        bars,
        _load("splits.csv", ("execution_date",)),
        _load("dividends.csv", ("ex_dividend_date",)),
        _load("renames.csv", ("change_date",)),
    )
    company = (
        apply_adjustment(bars, factors)
        .filter(
            ((pl.col("ticker") == "OLDN") & (pl.col("session_date") < dt.date(2025, 1, 8)))
            | (pl.col("ticker") == "NEWN")
        )
        .sort("session_date")
    )
    assert company["adj_close"].to_list() == pytest.approx([20.0, 20.5, 20.75, 21.0])
    # Split-adjusted volume: 1000 raw shares before a 10:1 split are 10,000 of today's shares.
    assert adjusted["adj_volume"].to_list() == pytest.approx([10000.0, 10000.0, 1000.0, 1000.0])


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_splits=st.integers(0, 4),
    n_divs=st.integers(0, 4),
    rename=st.booleans(),
)
def test_factors_match_plain_reference_on_random_histories(
    seed: int, n_splits: int, n_divs: int, rename: bool
) -> None:
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2024-01-01", periods=30).date
    bars = pd.DataFrame(
        [(t, d, float(rng.uniform(5, 200))) for t in ("A", "B") for d in days if rng.random() > 0.1],
        columns=["ticker", "session_date", "close"],
    )
    split_rows = {(str(rng.choice(["A", "B"])), days[int(rng.integers(0, 30))]) for _ in range(n_splits)}
    splits = pd.DataFrame(
        [(t, d, float(rng.choice([1, 2, 3])), float(rng.choice([1, 2, 4, 10])) + 0.5) for t, d in split_rows],
        columns=["ticker", "execution_date", "split_from", "split_to"],
    )
    dividends = pd.DataFrame(
        [
            (str(rng.choice(["A", "B"])), days[int(rng.integers(0, 30))], float(rng.uniform(0.01, 1.0)))
            for _ in range(n_divs)
        ],
        columns=["ticker", "ex_dividend_date", "cash_amount"],
    )
    dividends = dividends.drop_duplicates(["ticker", "ex_dividend_date"])

    # Half the records carry the vendor's amount in today's basis: × the ratios of the company's later splits.
    def later_splits(ticker: str, day: dt.date) -> float:
        ratios = [
            r.split_from / r.split_to
            for r in splits.itertuples()
            if r.ticker == ticker and r.execution_date > day
        ]
        return float(np.prod(ratios))

    adjusted = [
        cash * later_splits(ticker, day) if rng.random() < 0.5 else None
        for ticker, day, cash in zip(
            dividends.ticker, dividends.ex_dividend_date, dividends.cash_amount, strict=True
        )
    ]
    dividends["split_adjusted_cash_amount"] = pd.Series(adjusted, index=dividends.index, dtype=object)
    renames = pd.DataFrame(columns=["old_ticker", "new_ticker", "change_date"])
    if rename:  # company A trades as C from day 15 on: its rows from then on carry the new name
        change = days[15]
        renames = pd.DataFrame([("A", "C", change)], columns=["old_ticker", "new_ticker", "change_date"])
        for frame, column in (
            (bars, "session_date"),
            (splits, "execution_date"),
            (dividends, "ex_dividend_date"),
        ):
            frame.loc[(frame.ticker == "A") & (frame[column] >= change), "ticker"] = "C"

    def to_pl(frame: pd.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
        return pl.DataFrame({c: frame[c].tolist() for c in schema}, schema=schema)

    got = adjustment_factors(
        to_pl(bars, {"ticker": pl.String(), "session_date": pl.Date(), "close": pl.Float64()}),
        to_pl(
            splits,
            {
                "ticker": pl.String(),
                "execution_date": pl.Date(),
                "split_from": pl.Float64(),
                "split_to": pl.Float64(),
            },
        ),
        to_pl(
            dividends,
            {
                "ticker": pl.String(),
                "ex_dividend_date": pl.Date(),
                "cash_amount": pl.Float64(),
                "split_adjusted_cash_amount": pl.Float64(),
            },
        ),
        to_pl(renames, {"old_ticker": pl.String(), "new_ticker": pl.String(), "change_date": pl.Date()}),
    ).sort("ticker", "session_date")
    expected = reference_factors(bars, splits, dividends, renames).sort_values(["ticker", "session_date"])
    assert got["session_date"].to_list() == [dt.date(*d.timetuple()[:3]) for d in expected.session_date]
    np.testing.assert_allclose(got["split_factor"].to_numpy(), expected.split_factor.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(got["adj_factor"].to_numpy(), expected.adj_factor.to_numpy(), rtol=1e-12)
