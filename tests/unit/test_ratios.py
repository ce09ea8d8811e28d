"""Financial ratios against hand-worked answers (tests/fixtures/ratios/README.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from quantmini.core.adjustment import adjustment_factors, split_factors_on
from quantmini.core.ratios import STATEMENT_RATIOS, daily_ratios, statement_items, statement_ratios

FIXTURES = Path(__file__).parent.parent / "fixtures" / "ratios"


def _read(name: str) -> pl.DataFrame:
    frame = pl.read_csv(FIXTURES / name, infer_schema_length=None)
    dates = [c for c in frame.columns if c.endswith("_date") or c == "period_end"]
    return frame.with_columns(pl.col(dates).str.to_date())


def _financials() -> pl.DataFrame:
    return _read("financials.csv").with_columns(pl.col("value").cast(pl.Float64))


def _assert_frame_close(got: pl.DataFrame, expected: pl.DataFrame, columns: list[str]) -> None:
    assert got.height == expected.height
    for col in columns:
        a = got[col].cast(pl.Float64).to_numpy()
        b = expected[col].cast(pl.Float64).to_numpy()
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=col)
        np.testing.assert_allclose(a[~np.isnan(a)], b[~np.isnan(b)], rtol=1e-12, err_msg=col)


def test_statement_ratios_per_filing_with_fiscal_growth() -> None:
    got = statement_ratios(statement_items(_financials()))
    expected = _read("expected_statement_ratios.csv")
    assert (
        got.select("ticker", "fiscal_year", "fiscal_period", "filing_date").rows()
        == expected.select("ticker", "fiscal_year", "fiscal_period", "filing_date").rows()
    )
    _assert_frame_close(got, expected, list(STATEMENT_RATIOS))


def test_daily_ratios_are_point_in_time_and_split_consistent() -> None:
    bars = _read("bars.csv").with_columns(pl.col("close").cast(pl.Float64))
    splits = _read("splits.csv").with_columns(pl.col("split_from", "split_to").cast(pl.Float64))
    empty_divs = pl.DataFrame(
        schema={"ticker": pl.String, "ex_dividend_date": pl.Date, "cash_amount": pl.Float64}
    )
    factors = adjustment_factors(bars, splits, empty_divs)
    bars = bars.join(factors.select("ticker", "session_date", "split_factor"), on=["ticker", "session_date"])
    items = statement_items(_financials())
    filing_factors = split_factors_on(items.select("ticker", pl.col("filing_date").alias("date")), splits)
    got = daily_ratios(bars, items, filing_factors).sort("session_date")
    expected = _read("expected_daily.csv")
    assert got["filing_date"].to_list() == expected["filing_date"].to_list()
    _assert_frame_close(got, expected, ["net_margin", "pe_ratio", "price_to_book", "price_to_sales"])


def test_statements_without_filing_date_are_not_used() -> None:
    undated = _financials().with_columns(pl.lit(None, dtype=pl.Date).alias("filing_date"))
    assert statement_items(undated).is_empty()
