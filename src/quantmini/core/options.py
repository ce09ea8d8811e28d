"""OCC option tickers → contract fields, vectorised (options minute files have millions of rows).

``O:`` + root (1–6 chars; digits for adjusted contracts such as ``TSLA1``; dots allowed) + ``YYMMDD``
+ ``C|P`` + strike × 1000 as 8 digits. ``O:SPY241220C00500000`` = SPY, 2024-12-20, call, 500.0.
"""

from __future__ import annotations

import polars as pl

OCC_PATTERN = r"^O:([A-Z0-9.]{1,6}?)(\d{6})([CP])(\d{8})$"


def contract_columns(ticker: str = "ticker") -> list[pl.Expr]:
    """Expressions adding ``underlying``, ``expiration``, ``option_type`` and ``strike``.

    Each is null when the ticker does not parse (including impossible dates such as month 13).
    """
    groups = pl.col(ticker).str.extract_groups(OCC_PATTERN)
    expiration = groups.struct.field("2").str.to_date("%y%m%d", strict=False)
    valid = expiration.is_not_null()
    return [
        pl.when(valid).then(groups.struct.field("1")).alias("underlying"),
        expiration.alias("expiration"),
        pl.when(valid)
        .then(pl.when(groups.struct.field("3") == "C").then(pl.lit("call")).otherwise(pl.lit("put")))
        .alias("option_type"),
        pl.when(valid).then(groups.struct.field("4").cast(pl.Int64, strict=False) / 1000).alias("strike"),
    ]
