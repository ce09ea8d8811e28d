"""A queried symbol names a company, not just a ticker (:mod:`quantmini.core.entities`).

``--symbols QXCV`` after QXCV became HEY returns the company's bars under both tickers, and ``--symbols
HEY`` its whole history too; a ticker that named two companies in the queried range returns both, each
limited to its own span. Rows keep the ticker they traded under; :attr:`Resolution.notes` says what was
resolved, in one line per symbol.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import polars as pl

from quantmini.core.adjustment import entity_of


@dataclass(frozen=True, slots=True)
class Resolution:
    """The tickers to read for the asked symbols, which company spans to keep, and what to tell."""

    tickers: tuple[str, ...]
    #: ``ticker, valid_from, valid_to, entity`` of every resolved company (rows outside them are dropped).
    spans: pl.DataFrame
    entities: frozenset[str] = frozenset()
    notes: tuple[str, ...] = field(default_factory=tuple)
    #: Each asked symbol that names companies, with their entity ids (in the order asked).
    named: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def symbol_of(self, frame: pl.DataFrame) -> pl.Series:
        """For each row of ``frame`` (``ticker``, ``session_date``), the asked symbol whose company it
        belongs to (its own ticker for a symbol nothing was resolved for)."""
        if frame.is_empty() or not self.entities:
            return frame["ticker"]
        owner = {entity: symbol for symbol, entities in reversed(self.named) for entity in entities}
        entity = entity_of(frame, "session_date", self.spans)
        return entity.replace_strict(owner, default=None).fill_null(frame["ticker"]).alias("ticker")

    def keep(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Rows of ``frame`` (``ticker``, ``session_date``) that belong to a resolved company, or to a
        symbol nothing was resolved for."""
        if frame.is_empty() or not self.entities:
            return frame
        entity = entity_of(frame, "session_date", self.spans)
        resolved = frame["ticker"].is_in(self.spans["ticker"].unique().implode())
        return frame.filter(~resolved | entity.is_in(sorted(self.entities)))


def resolve(entities: pl.DataFrame, symbols: tuple[str, ...], start: dt.date, end: dt.date) -> Resolution:
    """Resolve ``symbols`` to the companies that traded under them between ``start`` and ``end``."""
    traded = entities.filter(
        pl.col("first_bar").is_not_null() & (pl.col("first_bar") <= end) & (pl.col("last_bar") >= start)
    )
    tickers: list[str] = []
    chosen: set[str] = set()
    notes: list[str] = []
    found: list[tuple[str, tuple[str, ...]]] = []
    for symbol in symbols:
        named = traded.filter(pl.col("ticker") == symbol)
        if named.is_empty():
            tickers.append(symbol)
            continue
        companies = named["entity"].unique(maintain_order=True).to_list()
        chosen.update(companies)
        found.append((symbol, tuple(companies)))
        spans = traded.filter(pl.col("entity").is_in(companies)).sort("first_bar")
        tickers.extend(spans["ticker"].to_list())
        if len(companies) > 1:
            firsts = spans.unique(subset=["entity"], keep="first", maintain_order=True)
            parts = [
                f"{r['instrument']} ({r['first_bar']} to {r['last_bar']})"
                for r in firsts.iter_rows(named=True)
            ]
            notes.append(f"{symbol} named {len(companies)} companies in this range: {', '.join(parts)}")
        names = spans["ticker"].unique(maintain_order=True).to_list()
        if len(names) > 1:
            history = ", then ".join(
                f"{r['ticker']} from {r['first_bar']}" for r in spans.iter_rows(named=True)
            )
            notes.append(f"{symbol} is one company under several tickers ({history}): showing all of them")
    spans = traded.filter(pl.col("entity").is_in(sorted(chosen))).select(
        "ticker", "valid_from", "valid_to", "entity"
    )
    return Resolution(tuple(dict.fromkeys(tickers)), spans, frozenset(chosen), tuple(notes), tuple(found))
