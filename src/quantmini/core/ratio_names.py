"""Names of the financial ratios (no dataframe import: data-type specs declare their schemas from these)."""

from __future__ import annotations

#: Ratios of one filed statement.
STATEMENT_RATIOS: tuple[str, ...] = (
    "gross_margin",
    "operating_margin",
    "net_margin",
    "return_on_equity",
    "return_on_assets",
    "current_ratio",
    "debt_to_equity",
    "debt_to_assets",
    "asset_turnover",
    "revenue_growth_yoy",
    "net_income_growth_yoy",
)
#: Ratios of a statement to the session's price.
VALUATION_RATIOS: tuple[str, ...] = ("pe_ratio", "price_to_book", "price_to_sales")
