"""The adjustments prices are read in (no dataframe import: settings, data-type specs and the CLI take their
choices from here).

* ``total_return``: splits and dividends, prices × ``adj_factor``. The change of an adjusted close is the
  total return (silver's ``ret_1d``). The default, and Qlib's usual data.
* ``split``: splits only, prices × ``split_factor``: prices as traded, in today's share basis, with no
  dividend taken out. The change of an adjusted close is the price return (silver's ``price_ret_1d``).

One volume convention for every adjustment: adjusted volume = raw volume ÷ the factor the prices are
multiplied by, so price × volume (the traded value) is the same raw or adjusted. That is Qlib's
convention (``$volume * $factor`` is the raw volume), which the queries' ``adj_volume`` and
``split_volume`` follow too.
"""

from __future__ import annotations

from typing import Literal

Adjustment = Literal["total_return", "split"]

#: Every adjustment, the default first.
ADJUSTMENTS: tuple[Adjustment, ...] = ("total_return", "split")

#: Column of the compact factor table (``silver/reference/adjustment_factors``) each adjustment applies.
FACTOR_COLUMNS: dict[str, str] = {"total_return": "adj_factor", "split": "split_factor"}

#: Silver column (stocks_daily) holding the change of each adjustment's close since the previous session.
RETURN_COLUMNS: dict[str, str] = {"total_return": "ret_1d", "split": "price_ret_1d"}

#: Prefix of a query's adjusted columns per adjustment (``adj_close``, ``split_close`` …).
COLUMN_PREFIXES: dict[str, str] = {"total_return": "adj_", "split": "split_"}

#: How the run summary names each adjustment.
LABELS: dict[str, str] = {"total_return": "total return", "split": "split-only"}

#: A query's choices: one of :data:`ADJUSTMENTS`, or ``none`` (raw bars as traded).
QUERY_ADJUSTMENTS: tuple[str, ...] = (*ADJUSTMENTS, "none")
