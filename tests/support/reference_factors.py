"""A deliberately plain implementation of the adjustment definition, for tests only.

For every bar: product of split_from/split_to over splits executed after the bar's session, times
product of (1 − cash / previous raw close) over dividends with ex-date after it — all within the bar's
company, followed across ticker renames. The previous close (session S) is put in the amount's share basis
first: × split_from/split_to of each split executed after S and on or before the ex-date for
``cash_amount``; where ``split_adjusted_cash_amount`` is given and positive, that amount is used instead,
with the splits executed after S and on or before the later of the ex-date and the New York date of
``fetched_at`` (every split when there is none).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd


def _entity(ticker: str, day: object, renames: pd.DataFrame | None) -> str:
    """Follow renames of ``ticker`` that happen after ``day`` (earliest first)."""
    while renames is not None:
        later = renames[(renames.old_ticker == ticker) & (renames.change_date > day)]
        if later.empty:
            break
        ticker = later.sort_values("change_date").iloc[0].new_ticker
    return ticker


def _with_entity(frame: pd.DataFrame, date_column: str, renames: pd.DataFrame | None) -> pd.DataFrame:
    entities = [_entity(t, d, renames) for t, d in zip(frame.ticker, frame[date_column], strict=True)]
    return frame.assign(entity=entities)


def _vendor_day(fetched_at: object, ex_date: object) -> object:
    """The later of the ex-date and the New York date of ``fetched_at`` (far future without one)."""
    if fetched_at is None or pd.isna(fetched_at):
        return dt.date.max
    return max(ex_date, pd.Timestamp(fetched_at).tz_convert("America/New_York").date())


def reference_factors(
    bars: pd.DataFrame, splits: pd.DataFrame, dividends: pd.DataFrame, renames: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Factors per bar.

    bars: ticker, session_date, close (NaN: a session that needs factors but has no close); splits: ticker,
    execution_date, split_from, split_to;
    dividends: ticker, ex_dividend_date, cash_amount (optionally split_adjusted_cash_amount, fetched_at);
    renames: old_ticker, new_ticker, change_date.
    Returns ticker, session_date, split_factor, adj_factor.
    """
    bars = _with_entity(bars, "session_date", renames)
    splits = _with_entity(splits, "execution_date", renames)
    dividends = _with_entity(dividends, "ex_dividend_date", renames)
    rows = []
    for entity, group in bars.groupby("entity"):
        group = group.sort_values("session_date")
        own_splits = splits[splits.entity == entity]
        multipliers = []
        for _, div in dividends[dividends.entity == entity].iterrows():
            before = group[(group.session_date < div.ex_dividend_date) & group.close.notna()]
            if len(before):
                close_date, close = before.session_date.iloc[-1], before.close.iloc[-1]
                amount, basis_end = div.cash_amount, div.ex_dividend_date
                vendor_amount = div.get("split_adjusted_cash_amount")
                if vendor_amount is not None and vendor_amount == vendor_amount and vendor_amount > 0:
                    amount, basis_end = vendor_amount, _vendor_day(div.get("fetched_at"), basis_end)
                for _, split in own_splits.iterrows():
                    if close_date < split.execution_date <= basis_end:
                        close *= split.split_from / split.split_to
                if amount < close:  # otherwise not applied (reported)
                    multipliers.append((div.ex_dividend_date, 1 - amount / close))
        for _, bar in group.iterrows():
            split_factor = float(
                np.prod(
                    [
                        r.split_from / r.split_to
                        for _, r in own_splits.iterrows()
                        if r.execution_date > bar.session_date
                    ]
                )
            )
            dividend_factor = float(np.prod([m for date, m in multipliers if date > bar.session_date]))
            rows.append((bar.ticker, bar.session_date, split_factor, split_factor * dividend_factor))
    return pd.DataFrame(rows, columns=["ticker", "session_date", "split_factor", "adj_factor"])
