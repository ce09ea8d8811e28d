"""A deliberately plain implementation of the adjustment definition, for tests only.

For every bar: product of split_from/split_to over splits executed after the bar's session, times
product of (1 − cash / previous raw close) over dividends with ex-date after it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def reference_factors(bars: pd.DataFrame, splits: pd.DataFrame, dividends: pd.DataFrame) -> pd.DataFrame:
    """Factors per bar.

    bars: ticker, session_date, close; splits: ticker, execution_date, split_from, split_to;
    dividends: ticker, ex_dividend_date, cash_amount. Returns ticker, session_date, split_factor,
    adj_factor.
    """
    rows = []
    for ticker, group in bars.groupby("ticker"):
        group = group.sort_values("session_date")
        own_splits = splits[splits.ticker == ticker]
        multipliers = []
        for _, div in dividends[dividends.ticker == ticker].iterrows():
            before = group[group.session_date < div.ex_dividend_date]
            if len(before):
                multipliers.append((div.ex_dividend_date, 1 - div.cash_amount / before.close.iloc[-1]))
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
            rows.append((ticker, bar.session_date, split_factor, split_factor * dividend_factor))
    return pd.DataFrame(rows, columns=["ticker", "session_date", "split_factor", "adj_factor"])
