"""Financial ratios from filed statements, point in time.

* **Statement ratios**, one row per filing (an amendment is a new row with its own filing date):
  profitability (margins, ROE, ROA), liquidity (current ratio), leverage (debt/equity, debt/assets),
  efficiency (asset turnover) and year-over-year growth against the same fiscal period one year earlier
  *as it was known when this statement was filed* (fiscal order, not filing order).
* **Daily ratios**, one row per bar: the latest *annual* statement filed strictly before the session
  (a statement filed on D is first used on the next session), plus valuation with split-adjusted prices:
  P/E, P/B, P/S. Prices and per-share figures are compared in today's share basis: adjusted price =
  close × split_factor(session), EPS × split_factor(filing date), shares ÷ split_factor(filing date).

Statements arrive as a long table (see :mod:`quantmini.core.fundamentals`); line items are mapped to
canonical names across the legacy and the new endpoints' vocabularies.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from quantmini.core.ratio_names import STATEMENT_RATIOS
from quantmini.core.window import SessionWindow

#: Canonical item → line-item names that carry it (first present wins), legacy and new vocabularies.
CANONICAL_ITEMS: dict[str, tuple[str, ...]] = {
    "revenue": ("revenues", "revenue", "total_revenue"),
    "gross_profit": ("gross_profit",),
    "operating_income": ("operating_income_loss", "operating_income"),
    "net_income": (
        "net_income_loss_attributable_to_parent",
        "net_income_loss",
        "net_income_loss_attributable_common_shareholders",
        "consolidated_net_income_loss",
    ),
    "eps_diluted": ("diluted_earnings_per_share", "diluted_eps", "earnings_per_share_diluted"),
    "diluted_shares": ("diluted_average_shares", "weighted_average_shares_outstanding_diluted"),
    "total_assets": ("assets", "total_assets"),
    "current_assets": ("current_assets", "total_current_assets"),
    "current_liabilities": ("current_liabilities", "total_current_liabilities"),
    "total_liabilities": ("liabilities", "total_liabilities"),
    "equity": (
        "equity_attributable_to_parent",
        "equity",
        "total_equity",
        "total_equity_attributable_to_parent",
    ),
}

STATEMENT_KEYS = ("ticker", "fiscal_year", "fiscal_period", "period_end", "filing_date")


def statement_items(financials: pl.DataFrame) -> pl.DataFrame:
    """Long statements → one row per filing with the canonical items as columns (null when absent).

    Filings without a filing date cannot be placed in time and are left out.
    """
    filed = financials.filter(pl.col("filing_date").is_not_null() & pl.col("value").is_not_null())
    columns = []
    for canonical, names in CANONICAL_ITEMS.items():
        rank = {name: i for i, name in enumerate(names)}
        picked = (
            filed.filter(pl.col("line_item").is_in(names))
            .with_columns(pl.col("line_item").replace_strict(rank, return_dtype=pl.Int64).alias("_rank"))
            .sort("_rank")
            .group_by(list(STATEMENT_KEYS))
            .agg(pl.col("value").first().alias(canonical))
        )
        columns.append(picked)
    keys = filed.select(list(STATEMENT_KEYS)).unique()
    for picked in columns:
        keys = keys.join(picked, on=list(STATEMENT_KEYS), how="left", nulls_equal=True)
    return keys.sort("ticker", "filing_date", "fiscal_year", "fiscal_period")


def statement_ratios(items: pl.DataFrame) -> pl.DataFrame:
    """Per filing: the ratios of :data:`STATEMENT_RATIOS` (null where an input is missing or zero)."""

    def ratio(num: str, den: str) -> pl.Expr:
        return pl.when(pl.col(den) != 0).then(pl.col(num) / pl.col(den))

    prior = items.select(
        "ticker",
        "fiscal_period",
        (pl.col("fiscal_year") + 1).alias("fiscal_year"),
        pl.col("filing_date").alias("_prior_filed"),
        pl.col("revenue").alias("_prior_revenue"),
        pl.col("net_income").alias("_prior_net_income"),
    )
    # The prior-year figure as known when this statement was filed: the latest version filed by then.
    with_prior = (
        items.join(prior, on=["ticker", "fiscal_period", "fiscal_year"], how="left")
        .filter(pl.col("_prior_filed").is_null() | (pl.col("_prior_filed") <= pl.col("filing_date")))
        .sort("_prior_filed", nulls_last=False)
        .group_by(list(STATEMENT_KEYS), maintain_order=True)
        .last()
    )
    unmatched = items.join(with_prior.select(list(STATEMENT_KEYS)), on=list(STATEMENT_KEYS), how="anti")
    combined = pl.concat([with_prior, unmatched], how="diagonal_relaxed")
    return combined.select(
        *STATEMENT_KEYS,
        ratio("gross_profit", "revenue").alias("gross_margin"),
        ratio("operating_income", "revenue").alias("operating_margin"),
        ratio("net_income", "revenue").alias("net_margin"),
        ratio("net_income", "equity").alias("return_on_equity"),
        ratio("net_income", "total_assets").alias("return_on_assets"),
        ratio("current_assets", "current_liabilities").alias("current_ratio"),
        ratio("total_liabilities", "equity").alias("debt_to_equity"),
        ratio("total_liabilities", "total_assets").alias("debt_to_assets"),
        ratio("revenue", "total_assets").alias("asset_turnover"),
        (ratio("revenue", "_prior_revenue") - 1).alias("revenue_growth_yoy"),
        (ratio("net_income", "_prior_net_income") - 1).alias("net_income_growth_yoy"),
    ).sort("ticker", "filing_date", "fiscal_year")


def daily_ratios(
    bars: pl.DataFrame,
    items: pl.DataFrame,
    split_factor_at: pl.DataFrame,
) -> pl.DataFrame:
    """Point-in-time ratios per bar from the latest annual statement filed before the session.

    ``bars``: ticker, session_date, close (raw), split_factor (of that session). ``items``: from
    :func:`statement_items`. ``split_factor_at``: ticker, date, split_factor for each filing date.
    """
    annual = items.filter(pl.col("fiscal_period") == "FY")
    ratios = statement_ratios(annual).join(annual, on=list(STATEMENT_KEYS), how="left", nulls_equal=True)
    ratios = ratios.join(
        split_factor_at.rename({"date": "filing_date", "split_factor": "_filing_factor"}),
        on=["ticker", "filing_date"],
        how="left",
    ).with_columns(pl.col("_filing_factor").fill_null(1.0))
    # filing_date + 1 day <= session_date  <=>  filed strictly before the session.
    known = (
        ratios.with_columns((pl.col("filing_date") + dt.timedelta(days=1)).alias("session_date"))
        .sort("ticker", "session_date", "fiscal_year")
        .unique(subset=["ticker", "session_date"], keep="last", maintain_order=True)
    )
    joined = bars.sort("ticker", "session_date").join_asof(
        known, on="session_date", by="ticker", strategy="backward", check_sortedness=False
    )
    shares = pl.coalesce(
        "diluted_shares",
        pl.when(pl.col("eps_diluted") != 0).then(pl.col("net_income") / pl.col("eps_diluted")),
    )
    adjusted_price = pl.col("close") * pl.col("split_factor")
    eps_today = pl.col("eps_diluted") * pl.col("_filing_factor")
    market_cap = adjusted_price * shares / pl.col("_filing_factor")
    return joined.select(
        "ticker",
        "session_date",
        "filing_date",
        "fiscal_year",
        *STATEMENT_RATIOS,
        pl.when(eps_today != 0).then(adjusted_price / eps_today).alias("pe_ratio"),
        pl.when(pl.col("equity") != 0).then(market_cap / pl.col("equity")).alias("price_to_book"),
        pl.when(pl.col("revenue") != 0).then(market_cap / pl.col("revenue")).alias("price_to_sales"),
    )


def session_ratios(window: SessionWindow) -> pl.DataFrame:
    """:func:`daily_ratios` for each output session of ``window``, in that session's share basis.

    Needs the ``financials`` reference table. Prices stay raw and per-share figures of a filing are
    converted with the splits between its filing date and the session only, so a later split never
    changes a stored row.
    """
    financials = window.references.get("financials")
    if financials is None or financials.is_empty():
        return pl.DataFrame()
    items = statement_items(financials)
    tickers = items["ticker"].unique().implode()
    filings = items.select("ticker", "filing_date").unique()
    parts = []
    for session in window.outputs:
        bars = window.bars.filter(
            (pl.col("session_date") == session) & pl.col("ticker").is_in(tickers)
        ).select("ticker", "session_date", "close", pl.lit(1.0).alias("split_factor"))
        known = filings.filter(pl.col("filing_date") < session)
        parts.append(daily_ratios(bars, items, _splits_between(known, session, window)))
    return pl.concat(parts, how="vertical_relaxed") if parts else pl.DataFrame()


def _splits_between(filings: pl.DataFrame, session: dt.date, window: SessionWindow) -> pl.DataFrame:
    """Per (ticker, filing date): the product of split multipliers in (filing date, ``session``]."""
    keyed = filings.select("ticker", pl.col("filing_date").alias("date"))
    if window.factors is None or window.factors.events.is_empty():
        return keyed.with_columns(pl.lit(1.0).alias("split_factor"))
    spans = window.factors.spans.filter(
        (pl.col("valid_from") <= session) & (pl.col("valid_to") > session)
    ).select("ticker", "entity")
    splits = window.factors.events.filter(pl.col("split_multiplier") != 1.0).select(
        "entity", "event_date", "split_multiplier"
    )
    products = (
        keyed.join(spans, on="ticker")
        .join(splits, on="entity")
        .filter((pl.col("event_date") > pl.col("date")) & (pl.col("event_date") <= session))
        .sort("ticker", "date", "event_date")
        .group_by("ticker", "date", maintain_order=True)
        .agg(pl.col("split_multiplier").product().alias("split_factor"))
    )
    return keyed.join(products, on=["ticker", "date"], how="left").with_columns(
        pl.col("split_factor").fill_null(1.0)
    )
