"""Adjustment factors from cleaned corporate actions, following the vendor's semantics, as a compact table.

* Bars on a split's execution date are already post-split. A raw price on session D is multiplied by
  the product of ``split_from / split_to`` over every split executed **after** D (``split_factor``).
* A cash dividend with ex-date E multiplies every price before E by ``1 - cash / close``, the close being
  the raw close of the company's last bar before E (session S), with cash and close in **one share basis**.
  ``cash_amount`` is per share of the ex-date session, so the close is converted by the company's splits
  executed after S and on or before E (a dividend whose ex-date is a split's execution date is measured
  against the pre-split close in post-split shares). Where the vendor's ``split_adjusted_cash_amount`` is
  present (and positive) it is used instead, against the close converted by the splits executed after S
  and on or before the later of E and the day the record was fetched (``fetched_at``, New York date; every
  known split when the column is absent): that amount is expressed after every split the vendor had
  executed when it sent the record, and a split announced for a later date is not in it.
  ``adj_factor`` = ``split_factor`` × the product of those multipliers over ex-dates after D.

Adjusted price = raw × adj_factor; split-adjusted volume = raw volume / split_factor.

Factors are kept **compact**: a row per ticker and span of dates over which its factors are constant
(``ticker, valid_from, valid_to, split_factor, adj_factor``, ``valid_to`` exclusive); a bar matching no
row has both factors 1. The table has about one row per corporate action, whatever the history's length,
and it is applied where prices are read (queries, DuckDB views, Qlib roots), so a new action never
rewrites stored history.

Companies, not tickers: factors are computed per *entity*, found for each (ticker, date) in a table of
ticker **spans** (``ticker, valid_from, valid_to, entity``). The lake's spans come from its entities
(:mod:`quantmini.core.entities`): a ticker's bars before a rename (FB before 2022-06-09) belong to the
company now trading as META, so its later actions adjust them too, and a reused ticker's two companies
never share an action. :func:`ticker_spans` builds spans from renames alone (entity = latest name).

Point in time: only actions dated on or before ``as_of`` (the lake's last session) are applied; a
declared dividend whose ex-date has not come yet changes nothing (nor is it reported) until it does, and
a split executed later only converts amounts the vendor already expressed after it.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from quantmini.core.calendar import EXCHANGE_TZ

FACTOR_SCHEMA: dict[str, pl.DataType] = {
    "ticker": pl.String(),
    "session_date": pl.Date(),
    "split_factor": pl.Float64(),
    "adj_factor": pl.Float64(),
}

#: The compact factor table: constant factors per ticker over ``[valid_from, valid_to)``.
INTERVAL_SCHEMA: dict[str, pl.DataType] = {
    "ticker": pl.String(),
    "valid_from": pl.Date(),
    "valid_to": pl.Date(),
    "split_factor": pl.Float64(),
    "adj_factor": pl.Float64(),
}

#: Per company and date: the multipliers of that date's actions (product when several share a date).
EVENT_SCHEMA: dict[str, pl.DataType] = {
    "entity": pl.String(),
    "event_date": pl.Date(),
    "split_multiplier": pl.Float64(),
    "total_multiplier": pl.Float64(),
}

#: Dividend prices: the close each dividend is measured against and its session (null when none was found).
DIVIDEND_CLOSE_SCHEMA: dict[str, pl.DataType] = {
    "entity": pl.String(),
    "ex_dividend_date": pl.Date(),
    "close_date": pl.Date(),
    "close_before": pl.Float64(),
}

#: Dividend columns only the vendor's newer records carry (null for legacy rows and where absent).
OPTIONAL_DIVIDEND_COLUMNS: dict[str, pl.DataType] = {
    "split_adjusted_cash_amount": pl.Float64(),
    "fetched_at": pl.Datetime("us", "UTC"),
}

#: Bounds of open-ended spans.
BEGINNING = dt.date(1900, 1, 1)
END_OF_TIME = dt.date(9999, 12, 31)

#: Longest chain of renames followed (A → B → C …); real chains are short.
MAX_RENAME_CHAIN = 16


def span_value(frame: pl.DataFrame, date_column: str, spans: pl.DataFrame | None, value: str) -> pl.Series:
    """``value`` of the span (``ticker, valid_from, valid_to, <value>``) covering each row's (``ticker``,
    ``date_column``); the row's ticker where none does. Row order is kept."""
    keys = frame.select("ticker", pl.col(date_column).alias("_d")).with_row_index("_row")
    if spans is None or spans.is_empty():
        return keys["ticker"].alias(value)
    table = spans.select("ticker", pl.col("valid_from").alias("_d"), "valid_to", value).sort("_d")
    joined = keys.sort("_d").join_asof(
        table, on="_d", by="ticker", strategy="backward", check_sortedness=False
    )
    found = pl.when(pl.col("_d") < pl.col("valid_to")).then(pl.col(value))
    return joined.sort("_row").select(pl.coalesce(found, pl.col("ticker")).alias(value))[value]


def entity_of(frame: pl.DataFrame, date_column: str, spans: pl.DataFrame | None) -> pl.Series:
    """The entity of each row's ``ticker`` as of ``date_column``, from ticker ``spans``
    (:func:`ticker_spans`, or the lake's entities); the ticker itself where no span covers it."""
    return span_value(frame, date_column, spans, "entity")


def with_entity(frame: pl.DataFrame, date_column: str, spans: pl.DataFrame | None) -> pl.DataFrame:
    """``frame`` with an ``entity`` column (see :func:`entity_of`)."""
    return frame.with_columns(entity_of(frame, date_column, spans).alias("entity"))


def _latest_name(frame: pl.DataFrame, date_column: str, renames: pl.DataFrame | None) -> pl.Series:
    """The latest name of each row's ``ticker`` as of ``date_column``, following ``renames``."""
    entity = frame.select(pl.col("ticker").alias("entity"), pl.col(date_column).alias("_d"))
    if renames is None or renames.is_empty():
        return entity["entity"]
    # change_date - 1 day >= d  <=>  change_date > d: the forward as-of match finds the first later rename.
    table = (
        renames.select(
            pl.col("old_ticker").alias("entity"),
            (pl.col("change_date") - dt.timedelta(days=1)).alias("_d"),
            pl.col("new_ticker").alias("_next"),
        )
        .unique(subset=["entity", "_d"], keep="first")
        .sort("entity", "_d")
    )
    entity = entity.with_row_index("_row")
    for _ in range(MAX_RENAME_CHAIN):
        stepped = entity.sort("entity", "_d").join_asof(
            table, on="_d", by="entity", strategy="forward", check_sortedness=False
        )
        if stepped["_next"].null_count() == stepped.height:
            break
        entity = stepped.select("_row", pl.coalesce("_next", "entity").alias("entity"), "_d")
    return entity.sort("_row")["entity"]


def ticker_spans(tickers: pl.Series, renames: pl.DataFrame | None) -> pl.DataFrame:
    """Which company each of ``tickers`` names over time: ``ticker, valid_from, valid_to, entity``.

    A ticker's timeline is cut at each date it was renamed away (its bars before that date belong to the
    company under its later name); tickers that appear in ``renames`` are included too.
    """
    names = pl.DataFrame({"ticker": tickers.cast(pl.String)})
    cuts = pl.DataFrame(schema={"ticker": pl.String(), "valid_from": pl.Date()})
    if renames is not None and not renames.is_empty():
        names = pl.concat(
            [
                names,
                renames.select(pl.col("old_ticker").alias("ticker")),
                renames.select(pl.col("new_ticker").alias("ticker")),
            ]
        )
        cuts = renames.select(pl.col("old_ticker").alias("ticker"), pl.col("change_date").alias("valid_from"))
    starts = pl.concat(
        [names.unique().with_columns(pl.lit(BEGINNING).alias("valid_from")), cuts.unique()]
    ).sort("ticker", "valid_from")
    spans = starts.with_columns(
        pl.col("valid_from").shift(-1).over("ticker").fill_null(END_OF_TIME).alias("valid_to")
    )
    return spans.with_columns(_latest_name(spans, "valid_from", renames).alias("entity"))


def dividend_closes_from_bars(
    closes: pl.DataFrame, dividends: pl.DataFrame, spans: pl.DataFrame | None = None
) -> pl.DataFrame:
    """For each dividend, the raw close of its company's last bar before the ex-date and that bar's session
    (null if none), in :data:`DIVIDEND_CLOSE_SCHEMA`.

    ``closes``: ticker, session_date, close (raw); ``dividends``: ticker, ex_dividend_date, ….
    """
    events = (
        with_entity(dividends, "ex_dividend_date", spans)
        .select("entity", "ex_dividend_date")
        .unique()
        .sort("entity", "ex_dividend_date")
    )
    prior = (
        with_entity(closes, "session_date", spans)
        .select(
            "entity",
            # Shift by one day so the backward as-of match finds the last bar strictly before the ex-date.
            (pl.col("session_date") + dt.timedelta(days=1)).alias("ex_dividend_date"),
            pl.col("session_date").alias("close_date"),
            pl.col("close").alias("close_before"),
        )
        .unique(subset=["entity", "ex_dividend_date"], keep="first")
        .sort("entity", "ex_dividend_date")
    )
    joined = events.join_asof(
        prior, on="ex_dividend_date", by="entity", strategy="backward", check_sortedness=False
    )
    return joined.select([pl.col(n).cast(t) for n, t in DIVIDEND_CLOSE_SCHEMA.items()])


def corporate_events(
    splits: pl.DataFrame,
    dividends: pl.DataFrame,
    dividend_closes: pl.DataFrame,
    spans: pl.DataFrame | None = None,
    as_of: dt.date | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per company and date, the multipliers of cleaned actions dated on or before ``as_of``.

    ``dividend_closes`` is in :data:`DIVIDEND_CLOSE_SCHEMA`; ``dividends`` may carry the columns of
    :data:`OPTIONAL_DIVIDEND_COLUMNS`. Returns ``(events, unapplied)``: events in :data:`EVENT_SCHEMA`, and
    due dividends that cannot be applied (``ticker, ex_dividend_date, cash_amount, reason``): no close
    before the ex-date, or a multiplier that is not a finite number in (0, 1).
    """
    split_events = with_entity(splits, "execution_date", spans).select(
        "entity",
        pl.col("execution_date").alias("event_date"),
        (pl.col("split_from") / pl.col("split_to")).alias("split_multiplier"),
        (pl.col("split_from") / pl.col("split_to")).alias("total_multiplier"),
    )
    if as_of is not None:
        dividends = dividends.filter(pl.col("ex_dividend_date") <= as_of)
    divs = with_entity(dividends, "ex_dividend_date", spans).join(
        dividend_closes, on=["entity", "ex_dividend_date"], how="left"
    )
    multiplier = pl.col("_m")
    judged = _dividend_multipliers(divs, split_events).with_columns(
        pl.when(pl.col("close_before").is_null())
        .then(pl.lit("no close before the ex-dividend date"))
        .when(~multiplier.is_finite())
        .then(pl.lit("dividend multiplier is not a finite number"))
        .when(multiplier <= 0)
        .then(pl.lit("dividend not below the previous close"))
        .otherwise(None)
        .alias("reason"),
    )
    div_events = judged.filter(pl.col("reason").is_null()).select(
        "entity",
        pl.col("ex_dividend_date").alias("event_date"),
        pl.lit(1.0).alias("split_multiplier"),
        pl.col("_m").alias("total_multiplier"),
    )
    events = pl.concat([split_events, div_events], how="vertical_relaxed").filter(
        pl.col("split_multiplier").is_finite() & pl.col("total_multiplier").is_finite()
    )
    if as_of is not None:
        events = events.filter(pl.col("event_date") <= as_of)
    events = (
        # A fixed order before the products: the same actions always give bit-identical multipliers.
        events.sort("entity", "event_date", "split_multiplier", "total_multiplier")
        .group_by("entity", "event_date", maintain_order=True)
        .agg(pl.col("split_multiplier").product(), pl.col("total_multiplier").product())
        .select([pl.col(n).cast(t) for n, t in EVENT_SCHEMA.items()])
    )
    unapplied = judged.filter(pl.col("reason").is_not_null()).select(
        "ticker", "ex_dividend_date", "cash_amount", "reason"
    )
    return events, unapplied


def _dividend_multipliers(dividends: pl.DataFrame, split_events: pl.DataFrame) -> pl.DataFrame:
    """``dividends`` (with ``entity`` and their close) plus ``_m``: ``1 - amount / close``, both in one basis.

    The close of session S is brought into the amount's share basis by the company's splits executed
    after S: up to the ex-date E for ``cash_amount``; up to the later of E and the record's fetch day for
    ``split_adjusted_cash_amount``, which is used where it is positive (see the module docstring).
    """
    frame = dividends.with_columns(
        pl.lit(None, dtype).alias(name)
        for name, dtype in OPTIONAL_DIVIDEND_COLUMNS.items()
        if name not in dividends.columns
    ).with_row_index("_div")
    fetched_day = pl.col("fetched_at").dt.convert_time_zone(EXCHANGE_TZ).dt.date()
    vendor_basis = pl.max_horizontal("ex_dividend_date", fetched_day.fill_null(END_OF_TIME))
    conversions = (
        frame.select("_div", "entity", "close_date", "ex_dividend_date", vendor_basis.alias("_vendor_basis"))
        .join(split_events.select("entity", "event_date", "split_multiplier"), on="entity")
        .filter(
            (pl.col("event_date") > pl.col("close_date")) & (pl.col("event_date") <= pl.col("_vendor_basis"))
        )
        .sort("_div", "event_date")
        .group_by("_div", maintain_order=True)
        .agg(
            pl.when(pl.col("event_date") <= pl.col("ex_dividend_date"))
            .then(pl.col("split_multiplier"))
            .otherwise(1.0)
            .product()
            .alias("_to_ex_date"),
            pl.col("split_multiplier").product().alias("_to_vendor"),
        )
    )
    vendor_amount = pl.col("split_adjusted_cash_amount")
    close = pl.col("close_before")
    return (
        frame.join(conversions, on="_div", how="left")
        .with_columns(pl.col("_to_ex_date", "_to_vendor").fill_null(1.0))
        .with_columns(
            pl.when(vendor_amount > 0)
            .then(1 - vendor_amount / (close * pl.col("_to_vendor")))
            .otherwise(1 - pl.col("cash_amount") / (close * pl.col("_to_ex_date")))
            .alias("_m")
        )
        .drop("_div", "_to_ex_date", "_to_vendor")
    )


def factor_intervals(events: pl.DataFrame, spans: pl.DataFrame) -> pl.DataFrame:
    """The compact factor table (:data:`INTERVAL_SCHEMA`) of ``events`` over the tickers of ``spans``.

    Within a company, the factor of date D is the product of the multipliers dated after D; it changes
    only at event dates, so each ticker span is cut at its company's event dates. Spans whose factors are
    both 1 are left out.
    """
    if events.is_empty():
        return pl.DataFrame(schema=INTERVAL_SCHEMA)
    spans = spans.join(events.select("entity").unique(), on="entity", how="semi")
    inner = spans.join(events.select("entity", "event_date"), on="entity").filter(
        (pl.col("event_date") > pl.col("valid_from")) & (pl.col("event_date") < pl.col("valid_to"))
    )
    starts = pl.concat(
        [
            spans.select("ticker", "entity", "valid_from", pl.col("valid_to").alias("_span_end")),
            inner.select(
                "ticker",
                "entity",
                pl.col("event_date").alias("valid_from"),
                pl.col("valid_to").alias("_span_end"),
            ),
        ]
    ).sort("ticker", "valid_from")
    starts = starts.with_columns(
        pl.min_horizontal(
            pl.col("valid_from").shift(-1).over("ticker", "_span_end"), pl.col("_span_end")
        ).alias("valid_to")
    )
    cumulative = (
        events.sort("entity", "event_date", descending=[False, True])
        .with_columns(
            pl.col("split_multiplier").cum_prod().over("entity").alias("split_factor"),
            pl.col("total_multiplier").cum_prod().over("entity").alias("adj_factor"),
            # The factor of a span starting at s is the cumulative product at the first event after s.
            (pl.col("event_date") - dt.timedelta(days=1)).alias("_lookup"),
        )
        .sort("entity", "_lookup")
        .select("entity", "_lookup", "split_factor", "adj_factor")
    )
    joined = starts.with_columns(pl.col("valid_from").alias("_lookup")).sort("entity", "_lookup")
    joined = joined.join_asof(
        cumulative, on="_lookup", by="entity", strategy="forward", check_sortedness=False
    ).with_columns(pl.col("split_factor").fill_null(1.0), pl.col("adj_factor").fill_null(1.0))
    return (
        joined.filter((pl.col("split_factor") != 1.0) | (pl.col("adj_factor") != 1.0))
        .select([pl.col(n).cast(t) for n, t in INTERVAL_SCHEMA.items()])
        .sort("ticker", "valid_from")
    )


def factors_on(
    keys: pl.DataFrame, intervals: pl.DataFrame, date_column: str = "session_date"
) -> pl.DataFrame:
    """``keys`` (ticker and ``date_column``, any order) with ``split_factor`` and ``adj_factor`` from the
    compact table (1 where no interval matches). Row order is kept.

    Rows read session by session are already in date order, the only order the as-of join needs (it
    matches within each ticker), so such input is not sorted at all.
    """
    ordered = keys[date_column].is_sorted()
    frame = keys if ordered else keys.with_row_index("_row").sort(date_column)
    table = intervals.select(
        "ticker", pl.col("valid_from").alias(date_column), "valid_to", "split_factor", "adj_factor"
    ).sort(date_column)
    joined = frame.join_asof(table, on=date_column, by="ticker", strategy="backward", check_sortedness=False)
    inside = pl.col("valid_to").is_not_null() & (pl.col(date_column) < pl.col("valid_to"))
    joined = joined.with_columns(
        pl.when(inside).then(pl.col("split_factor")).otherwise(1.0).alias("split_factor"),
        pl.when(inside).then(pl.col("adj_factor")).otherwise(1.0).alias("adj_factor"),
    ).drop("valid_to")
    return joined if ordered else joined.sort("_row").drop("_row")


def session_multipliers(events: pl.DataFrame, spans: pl.DataFrame, sessions: list[dt.date]) -> pl.DataFrame:
    """Per ticker and session, the multipliers of the events between the previous session and it.

    ``ticker, entity, session_date, split_multiplier, total_multiplier``: an event dated E belongs to the
    first session on or after E, under the name its company had on that session. Sessions without events are
    left out (multiplier 1). Scale-free features use these to compare prices of different sessions in the
    same share basis, without the factors of later actions.
    """
    schema = {
        "ticker": pl.String(),
        "entity": pl.String(),
        "session_date": pl.Date(),
        "split_multiplier": pl.Float64(),
        "total_multiplier": pl.Float64(),
    }
    if events.is_empty() or not sessions:
        return pl.DataFrame(schema=schema)
    calendar = pl.DataFrame({"session_date": sessions}, schema={"session_date": pl.Date()}).sort(
        "session_date"
    )
    mapped = (
        events.sort("event_date")
        .join_asof(
            calendar.with_columns(pl.col("session_date").alias("event_date")),
            on="event_date",
            strategy="forward",
            check_sortedness=False,
        )
        .filter(pl.col("session_date").is_not_null())
    )
    named = mapped.join(spans.select("ticker", "entity", "valid_from", "valid_to"), on="entity").filter(
        (pl.col("session_date") >= pl.col("valid_from")) & (pl.col("session_date") < pl.col("valid_to"))
    )
    return (
        named.sort("ticker", "session_date", "event_date")
        .group_by("ticker", "entity", "session_date", maintain_order=True)
        .agg(pl.col("split_multiplier").product(), pl.col("total_multiplier").product())
        .select([pl.col(n).cast(t) for n, t in schema.items()])
    )


def adjustment_factors(
    closes: pl.DataFrame,
    splits: pl.DataFrame,
    dividends: pl.DataFrame,
    renames: pl.DataFrame | None = None,
    as_of: dt.date | None = None,
) -> pl.DataFrame:
    """Factors per (ticker, session_date) of ``closes`` (ticker, session_date, close — raw).

    ``splits`` and ``dividends`` must already be cleaned (:mod:`quantmini.core.corporate_actions`);
    ``renames`` (old_ticker, new_ticker, change_date) link a company's bars across ticker changes. The
    per-bar expansion of :func:`factor_intervals`; the dividend closes come from ``closes`` itself.
    """
    spans = ticker_spans(closes["ticker"].unique(), renames)
    dividend_closes = dividend_closes_from_bars(closes, dividends, spans)
    events, _ = corporate_events(splits, dividends, dividend_closes, spans, as_of)
    intervals = factor_intervals(events, spans)
    keys = closes.select("ticker", "session_date")
    return factors_on(keys, intervals).select([pl.col(n).cast(t) for n, t in FACTOR_SCHEMA.items()])


def split_factors_on(keys: pl.DataFrame, splits: pl.DataFrame) -> pl.DataFrame:
    """``split_factor`` of (ticker, date) pairs that need not be sessions (e.g. filing dates)."""
    events, _ = corporate_events(splits, _NO_DIVIDENDS, pl.DataFrame(schema=DIVIDEND_CLOSE_SCHEMA))
    spans = ticker_spans(keys["ticker"].unique(), None)
    dated = keys.select("ticker", "date").unique()
    factors = factors_on(dated, factor_intervals(events, spans), date_column="date")
    return factors.select("ticker", "date", "split_factor")


_NO_DIVIDENDS = pl.DataFrame(
    schema={"ticker": pl.String(), "ex_dividend_date": pl.Date(), "cash_amount": pl.Float64()}
)
