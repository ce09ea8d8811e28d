"""Point-in-time universes of daily stocks, per session: by security type and by liquidity.

A silver partition for session D lists, one row per (ticker, universe), the universes each ticker belongs
to on D, from D's window alone (no later bar, no look-ahead):

* **Type universes** (:data:`TYPE_UNIVERSES`): a ticker with a bar on D is in the universe of its vendor
  ``type`` code in the ``tickers`` reference table, read as of D (:func:`records_on`). A ticker without a
  reference record is in none.
* **Liquidity universes** ``top<N>`` (sizes from ``universes.liquidity_sizes``): reconstituted on the
  first session S of each calendar month, from the :data:`RANK_SESSIONS` sessions before S only. A
  ticker's liquidity is the median of its dollar volume (raw close × raw volume: a split changes neither
  the product nor the ranks) over those sessions, a session without a bar counting as no trade (zero).
  Tickers with a positive median and not delisted before S (per the reference as of S) are ranked by
  median, highest first, ties by ticker (so a rank never depends on row order); the first N are the
  members of ``top<N>`` for every session of the month, whether or not they trade that day, until their
  delisting: a member delisted per the reference has no row after its delisting date (survivorship-free:
  its rows up to then stay in history).

``delisting`` marks a ticker's last session on or before its reference ``delisted_utc`` (the vendor's
last trading date): for a member that trades to the end, its last bar.

Windows count exchange sessions (:func:`~quantmini.core.window.align`); a session D of a month is at most
:data:`LONGEST_MONTH` − 1 sessions after the month's first, so :data:`LOOKBACK` sessions before D always
hold that first session and the :data:`RANK_SESSIONS` before it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Final

import polars as pl

from quantmini.core.adjustment import entity_of
from quantmini.core.calendar import sessions as exchange_sessions
from quantmini.core.window import SessionWindow, align, output_rows

#: Vendor ``type`` code → type universe. Every other code (``SP`` structured product, ``OS`` ordinary
#: shares, ``GDR``, ``BOND``, ``BASKET``, ``LT`` liquidating trust, ``NYRS``, ``OTHER`` …) and a record
#: without a type go to :data:`OTHER`.
TYPE_UNIVERSES: Final[Mapping[str, str]] = {
    "CS": "common",
    "ETF": "etf",
    "ETS": "etf",  # single-security ETF
    "ETV": "etf",  # exchange-traded vehicle (commodity trusts)
    "ETN": "etn",
    "ADRC": "adr",
    "ADRP": "adr",
    "ADRR": "adr",
    "ADRW": "adr",
    "PFD": "preferred",
    "WARRANT": "warrant",
    "RIGHT": "right",
    "UNIT": "unit",
    "FUND": "fund",
}
OTHER: Final = "other"
#: Every type universe, in documentation order.
TYPE_NAMES: Final[tuple[str, ...]] = (*dict.fromkeys(TYPE_UNIVERSES.values()), OTHER)

#: Sessions before a month's first session whose dollar volumes rank the month's liquidity universes.
RANK_SESSIONS: Final = 20
#: Most XNYS sessions in a calendar month.
LONGEST_MONTH: Final = 23
#: Sessions a partition's window holds before its session.
LOOKBACK: Final = RANK_SESSIONS + LONGEST_MONTH
#: The settings key holding the liquidity universes' sizes (``top500``, ``top1000``, ``top3000`` by default).
SIZES_KEY: Final = "universes.liquidity_sizes"

UNIVERSE_COLUMNS: Final[dict[str, pl.DataType]] = {
    "ticker": pl.String(),
    "session_date": pl.Date(),
    "universe": pl.String(),
    "rank": pl.Int32(),
    "median_dollar_volume": pl.Float64(),
    "delisting": pl.Boolean(),
}


def liquidity_name(size: int) -> str:
    """The name of the liquidity universe of the ``size`` most liquid tickers (``top500``)."""
    return f"top{size}"


def session_universes(window: SessionWindow) -> pl.DataFrame:
    """Rows (:data:`UNIVERSE_COLUMNS`) of the output sessions, sorted by (session_date, ticker, universe)."""
    if not window.outputs:
        return pl.DataFrame(schema=UNIVERSE_COLUMNS)
    sizes = tuple(int(n) for n in window.settings[SIZES_KEY])
    spans = window.factors.spans if window.factors is not None else None
    tickers = window.references.get("tickers")
    frame = align(window, ("close", "volume")).with_columns(
        (pl.col("close") * pl.col("volume")).fill_null(0.0).alias("_dollar_volume"),
        # The ticker a company trades under on each session (its last one on sessions without a bar).
        pl.col("ticker").forward_fill().backward_fill().over("_series").alias("_ticker"),
    )
    starts = _month_starts(window.sessions, window.outputs)
    ranked = [
        _ranked(frame, window.sessions.index(start), start, tickers, spans) for start in sorted(set(starts))
    ]
    members = _members(ranked, frame, window.outputs, starts, sizes)
    members = members.filter(_still_named(members, "session_date", spans)).drop("_series")
    typed = _typed(output_rows(frame, window).select("ticker", "session_date"), tickers, spans)
    rows = pl.concat([typed, members], how="vertical")
    return (
        _with_delisting(rows, window.outputs)
        .select(list(UNIVERSE_COLUMNS))
        .sort("session_date", "ticker", "universe", "rank")
    )


def _month_starts(sessions: Sequence[dt.date], outputs: Sequence[dt.date]) -> list[dt.date]:
    """For each output session, the first session of its calendar month in ``sessions``."""
    first: dict[tuple[int, int], dt.date] = {}
    for session in sessions:
        first.setdefault((session.year, session.month), session)
    return [first[(d.year, d.month)] for d in outputs]


def _ranked(
    frame: pl.DataFrame,
    position: int,
    start: dt.date,
    tickers: pl.DataFrame | None,
    spans: pl.DataFrame | None,
) -> pl.DataFrame:
    """``_series, start, rank, median_dollar_volume, _delisted`` of the companies eligible on ``start`` (at
    window ``position``), ranked by their median dollar volume over the sessions before it, whichever
    ticker they traded under."""
    # Slots before the window's first session (the calendar's start, before any bar) hold no trade.
    slots = pl.DataFrame({"_pos": range(position - RANK_SESSIONS, position)}, schema={"_pos": pl.Int32()})
    before = frame.filter(pl.col("_pos").is_between(position - RANK_SESSIONS, position - 1))
    grid = frame.select("_series").unique().join(slots, how="cross")
    traded = grid.join(
        before.select("_series", "_pos", "_dollar_volume", "ticker"), on=["_series", "_pos"], how="left"
    )
    medians = (
        traded.sort("_series", "_pos")
        .group_by("_series")
        .agg(
            pl.col("_dollar_volume").fill_null(0.0).median().alias("median_dollar_volume"),
            # The ticker the company traded under last before the month: its reference record.
            pl.col("ticker").drop_nulls().last().alias("ticker"),
        )
        .with_columns(pl.lit(start).alias("start"))
        .filter(pl.col("ticker").is_not_null())
    )
    # A company that no longer trades under its last ticker (retired, or taken by another) is not ranked.
    medians = medians.filter(_still_named(medians, "start", spans))
    records = _continuing(records_on(tickers, medians.select("ticker", pl.col("start").alias("on"))), spans)
    eligible = (
        medians.join(records, left_on=["ticker", "start"], right_on=["ticker", "on"], how="left")
        .filter(
            (pl.col("median_dollar_volume") > 0)
            & (pl.col("_delisted").is_null() | (pl.col("_delisted") >= start))
        )
        .sort(["median_dollar_volume", "ticker"], descending=[True, False])
    )
    return eligible.select(
        "_series",
        "start",
        pl.int_range(1, pl.len() + 1, dtype=pl.Int32).alias("rank"),
        "median_dollar_volume",
        "_delisted",
    )


def _members(
    ranked: list[pl.DataFrame],
    frame: pl.DataFrame,
    outputs: Sequence[dt.date],
    starts: list[dt.date],
    sizes: tuple[int, ...],
) -> pl.DataFrame:
    """A row per member of each ``top<N>`` and output session of its month, up to its delisting date,
    under the ticker the company trades as that session."""
    months = pl.DataFrame(
        {"session_date": list(outputs), "start": starts},
        schema={"session_date": pl.Date(), "start": pl.Date()},
    )
    names = pl.DataFrame(
        {"universe": [liquidity_name(n) for n in sizes], "_size": list(sizes)},
        schema={"universe": pl.String(), "_size": pl.Int32()},
    )
    members = pl.concat(ranked).join(names, how="cross").filter(pl.col("rank") <= pl.col("_size"))
    return (
        members.join(months, on="start")
        .filter(pl.col("_delisted").is_null() | (pl.col("session_date") <= pl.col("_delisted")))
        .join(
            frame.select("_series", "session_date", pl.col("_ticker").alias("ticker")),
            on=["_series", "session_date"],
        )
        .select("_series", "ticker", "session_date", "universe", "rank", "median_dollar_volume", "_delisted")
    )


def _still_named(rows: pl.DataFrame, date_column: str, spans: pl.DataFrame | None) -> pl.Series:
    """Whether each row's ``ticker`` still names its company (``_series``) on ``date_column``."""
    if spans is None or spans.is_empty() or "entity" not in spans.columns:
        return pl.Series([True] * rows.height, dtype=pl.Boolean)
    return entity_of(rows, date_column, spans) == rows["_series"]


def _continuing(records: pl.DataFrame, spans: pl.DataFrame | None) -> pl.DataFrame:
    """``records`` (``ticker, on, …, _delisted``) without the delistings of companies that go on trading
    under another ticker (a rename retires the old ticker, not the company)."""
    if spans is None or spans.is_empty() or "entity" not in spans.columns or records.is_empty():
        return records
    keyed = records.with_columns(entity_of(records, "on", spans).alias("_entity"))
    later = keyed.join(spans.select(pl.col("entity").alias("_entity"), "valid_from"), on="_entity").filter(
        pl.col("valid_from") > pl.col("_delisted")
    )
    renamed = later.select("ticker", "on").unique()
    return records.join(
        renamed.with_columns(pl.lit(True).alias("_renamed")), on=["ticker", "on"], how="left"
    ).select(
        pl.exclude("_renamed", "_delisted"),
        pl.when(pl.col("_renamed")).then(None).otherwise(pl.col("_delisted")).alias("_delisted"),
    )


def _typed(rows: pl.DataFrame, tickers: pl.DataFrame | None, spans: pl.DataFrame | None) -> pl.DataFrame:
    """A row per ticker with a bar on an output session and its type universe as of that session."""
    records = _continuing(
        records_on(tickers, rows.select("ticker", pl.col("session_date").alias("on"))), spans
    )
    universe = pl.col("type").replace_strict(TYPE_UNIVERSES, default=OTHER, return_dtype=pl.String)
    return rows.join(
        records, left_on=["ticker", "session_date"], right_on=["ticker", "on"], how="inner"
    ).select(
        "ticker",
        "session_date",
        universe.alias("universe"),
        pl.lit(None, dtype=pl.Int32).alias("rank"),
        pl.lit(None, dtype=pl.Float64).alias("median_dollar_volume"),
        "_delisted",
    )


def records_on(tickers: pl.DataFrame | None, keys: pl.DataFrame) -> pl.DataFrame:
    """``ticker, on, type, _delisted``: the reference record that describes each (``ticker``, ``on``)
    date of ``keys`` (keys without a record are left out).

    Records of one listing (same ticker and ``list_date``) are versions of each other: the most
    recently updated one holds. Across listings, a record not delisted before the date describes it —
    the one delisted soonest after it, an active record only after the last delisting (a ticker reused by
    a later listing is the earlier listing's until its delisting) — else the one delisted last. Ties go to
    the earlier ``list_date``. ``_delisted`` is the UTC date of ``delisted_utc``.
    """
    schema = {"ticker": pl.String(), "on": pl.Date(), "type": pl.String(), "_delisted": pl.Date()}
    if tickers is None or tickers.is_empty() or keys.is_empty():
        return pl.DataFrame(schema=schema)
    listings = (
        tickers.select(
            "ticker",
            "list_date",
            "type",
            pl.col("delisted_utc").dt.date().alias("_delisted"),
            "last_updated_utc",
        )
        .sort(["ticker", "list_date", "last_updated_utc", "_delisted", "type"], nulls_last=False)
        .unique(subset=["ticker", "list_date"], keep="last", maintain_order=True)
        .sort(["ticker", "_delisted", "list_date"], nulls_last=True)
    )
    dated = listings.filter(pl.col("_delisted").is_not_null()).unique(
        subset=["ticker", "_delisted"], keep="first", maintain_order=True
    )
    # The listing delisted soonest on or after the date …
    soonest = keys.sort("on").join_asof(
        dated.select("ticker", "type", "_delisted", pl.col("_delisted").alias("_until")).sort("_until"),
        left_on="on",
        right_on="_until",
        by="ticker",
        strategy="forward",
        check_sortedness=False,  # both sides sorted on the dates as a whole, so within each ticker too
    )
    # … else the first active listing, else the listing delisted last.
    active = listings.filter(pl.col("_delisted").is_null()).unique(subset="ticker", keep="first")
    last = dated.unique(subset="ticker", keep="last", maintain_order=True)
    found, has_active = pl.col("_until").is_not_null(), pl.col("_active").is_not_null()

    def pick(column: str) -> pl.Expr:
        chosen = pl.when(found).then(pl.col(column)).when(has_active).then(pl.col(f"{column}_active"))
        return chosen.otherwise(pl.col(f"{column}_last")).alias(column)

    return (
        soonest.join(
            active.select("ticker", pl.lit(True).alias("_active"), pl.col("type").alias("type_active")),
            on="ticker",
            how="left",
        )
        .join(
            last.select(
                "ticker",
                pl.lit(True).alias("_last"),
                pl.col("type").alias("type_last"),
                pl.col("_delisted").alias("_delisted_last"),
            ),
            on="ticker",
            how="left",
        )
        .with_columns(pl.lit(None, dtype=pl.Date).alias("_delisted_active"))
        .filter(found | has_active | pl.col("_last").is_not_null())
        .select("ticker", "on", pick("type"), pick("_delisted"))
    )


def _with_delisting(rows: pl.DataFrame, outputs: Sequence[dt.date]) -> pl.DataFrame:
    """``delisting``: the row's session is the last one on or before the ticker's delisting date."""
    nexts = pl.DataFrame(
        {"session_date": list(outputs), "_next": [_next_session(d) for d in outputs]},
        schema={"session_date": pl.Date(), "_next": pl.Date()},
    )
    last = (pl.col("_delisted") >= pl.col("session_date")) & (pl.col("_delisted") < pl.col("_next"))
    return rows.join(nexts, on="session_date", how="left").with_columns(
        last.fill_null(False).alias("delisting")
    )


def _next_session(day: dt.date) -> dt.date:
    """The exchange session after ``day``."""
    return exchange_sessions(day + dt.timedelta(days=1), day + dt.timedelta(days=15))[0]
