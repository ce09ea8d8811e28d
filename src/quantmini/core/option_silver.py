"""Silver rows of option bars: the contract's deliverable, time to expiry, the underlying's price,
moneyness, implied volatility and greeks; and per-underlying daily aggregates of them.

**Deliverable.** Each contract resolves to the stock it delivers and its shares per contract through
:func:`~quantmini.core.option_contracts.resolve_contracts` (the options-contracts reference table, then
the root map, then a plain OCC root). A contract that does not resolve keeps its row with a null
``underlying`` and ``iv_reason = "unresolved_contract"``.

**Underlying price.** ``underlying_close`` is the underlying's raw (unadjusted) close that session from
stocks bronze — for minute bars, the close of the last stock minute bar starting at or before the
option bar's start (``underlying_window_start`` says which). ``underlying_price`` is the value of the
deliverable per 100 units, the price the strike is quoted against: ``underlying_close ×
shares_per_contract / 100`` (an adjusted contract delivering 150 shares is worth 1.5 × the close; cash
parts of a deliverable are not valued). Indexes (``SPX``) have no stock bars in the lake: their rows get
``iv_reason = "no_underlying_price"``.

**Time.** ``years = (expiration close − observation) / 365 days``: the expiration day's regular close
(16:00 ET, or the early close) minus the session's close (daily bars) or the bar's end (minute bars,
``window_start`` + 60 s), in real elapsed time. ``dte_calendar`` counts calendar days to expiration,
``dte_trading`` exchange sessions after the session up to and including expiration (after expiration,
minus the sessions after expiration up to and including the session; null for an expiration after the
end of the shipped session table, :data:`~quantmini.core.calendar.TABLE_END`, so the value never depends
on the day it is computed).

**Implied volatility and greeks** (:mod:`quantmini.core.option_pricing`): Black–Scholes–Merton on the
bar's close with the ``options.risk_free_rate`` and the underlying's continuous dividend yield
(``options.dividend_yields``, else ``options.dividend_yield``). Every contract is priced as European —
an approximation for American-style equity options (see that module). Where no vol exists the row keeps
null ``iv``/greeks and says why in ``iv_reason``: ``unresolved_contract``, ``no_underlying_price``,
``zero_volume``, ``expiration_day`` (at the expiration day's close no time value is left; minute bars
earlier that day still get an IV),
``expired`` (a bar after its expiration), then the solver's reasons (``below_intrinsic``, …).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

from quantmini.core.calendar import TABLE_END, close_instants_ns, sessions
from quantmini.core.option_contracts import with_deliverables
from quantmini.core.option_pricing import IV_REASONS, greeks, implied_vol
from quantmini.core.window import SessionWindow
from quantmini.datasets.options_daily import OPTIONS_DAILY_SCHEMA, UNDERLYING_DAILY_SCHEMA
from quantmini.datasets.options_minute import OPTIONS_MINUTE_SCHEMA

_NS_PER_YEAR = 365 * 86_400 * 1_000_000_000
_MINUTE_NS = 60 * 1_000_000_000

#: Days of the at-the-money implied volatility :func:`underlying_aggregates` interpolates to.
IV_HORIZON_DAYS = 30
#: |delta| of the wings of ``skew25``.
SKEW_DELTA = 0.25
#: Quotes the ``skew25`` wings are interpolated from: at least this price and this |delta|.
WING_MIN_PRICE = 0.05
WING_MIN_DELTA = 0.05


def options_daily_silver(window: SessionWindow) -> pl.DataFrame:
    """Silver rows of the output sessions' daily option bars (:data:`OPTIONS_DAILY_SCHEMA`)."""
    bars = window.bars.filter(pl.col("session_date").is_in(list(window.outputs)))
    stocks = window.inputs.get("stocks_daily", pl.DataFrame())
    closes = _stock_closes(stocks)
    frame = _with_contracts(bars, window.references.get("options_contracts"))
    frame = frame.join(closes, on=["underlying", "session_date"], how="left")
    observed = _session_closes(frame["session_date"])
    return _priced(frame, observed, window.settings, compute_iv=True).select(OPTIONS_DAILY_SCHEMA.names)


def options_minute_silver(window: SessionWindow) -> pl.DataFrame:
    """Silver rows of the output sessions' option minute bars (:data:`OPTIONS_MINUTE_SCHEMA`).

    The underlying's price is the close of its last stock minute bar starting at or before the option
    bar's start, in the same session (an as-of join); IV and greeks only with ``options.minute_iv``.
    """
    bars = window.bars.filter(pl.col("session_date").is_in(list(window.outputs)))
    frame = _with_contracts(bars, window.references.get("options_contracts"))
    stocks = window.inputs.get("stocks_minute", pl.DataFrame())
    if stocks.height:
        quotes = stocks.select(
            pl.col("ticker").alias("underlying"),
            "session_date",
            pl.col("window_start").alias("underlying_window_start"),
            pl.col("close").alias("underlying_close"),
        ).sort("underlying_window_start")
        frame = frame.sort("window_start").join_asof(
            quotes,
            left_on="window_start",
            right_on="underlying_window_start",
            by=["underlying", "session_date"],
            strategy="backward",
            check_sortedness=False,  # both sides are sorted on the join column just above
        )
    else:
        frame = frame.with_columns(
            pl.lit(None, dtype=pl.Int64).alias("underlying_window_start"),
            pl.lit(None, dtype=pl.Float64).alias("underlying_close"),
        )
    observed = frame["window_start"] + _MINUTE_NS
    compute = bool(window.settings.get("options.minute_iv", False))
    return _priced(frame, observed, window.settings, compute_iv=compute).select(OPTIONS_MINUTE_SCHEMA.names)


_HINTS = {"no_underlying_price": " (no stock bar that session: an index, or stocks not ingested yet)"}


def summary(rows: pl.DataFrame) -> dict[str, int]:
    """Run-summary counts: rows without an IV by reason, and the roots of unresolved contracts."""
    counts: dict[str, int] = {}
    reasons = rows.filter(pl.col("iv_reason").is_not_null() & (pl.col("iv_reason") != "not_computed"))
    for reason, n in reasons.group_by("iv_reason").len().iter_rows():
        counts[f"no IV: {reason}{_HINTS.get(reason, '')}"] = n
    unresolved = rows.filter(pl.col("underlying").is_null())
    for root, n in unresolved.group_by("root").len().iter_rows():
        counts[
            f"contract not resolved (root {root}: not in the options-contracts table, or its rows conflict)"
        ] = n
    return counts


def _stock_closes(stocks: pl.DataFrame) -> pl.DataFrame:
    """``underlying, session_date, underlying_close`` from stock bronze rows."""
    if not stocks.height:
        return pl.DataFrame(
            schema={"underlying": pl.String(), "session_date": pl.Date(), "underlying_close": pl.Float64()}
        )
    return stocks.select(
        pl.col("ticker").alias("underlying"), "session_date", pl.col("close").alias("underlying_close")
    ).unique(["underlying", "session_date"], keep="first")


def _with_contracts(bars: pl.DataFrame, reference: pl.DataFrame | None) -> pl.DataFrame:
    """The bars with the resolved deliverable (``root`` is the OCC root bronze calls ``underlying``)."""
    resolved = with_deliverables(bars.rename({"underlying": "root"}), reference)
    return resolved.drop("unresolved_reason").rename({"source": "contract_source"})


def _session_closes(days: pl.Series) -> pl.Series:
    """The regular-close instant (UTC ns) of each date of ``days``."""
    closes = close_instants_ns(days.unique().to_list())
    return days.replace_strict(closes, return_dtype=pl.Int64)


def _trading_days(frame: pl.DataFrame) -> pl.Series:
    """Sessions after ``session_date`` up to and including ``expiration``, negative past expiration
    (null past the calendar)."""
    if not frame.height:
        return pl.Series("dte_trading", [], dtype=pl.Int32)
    # From the earliest date either column holds: an expired bar counts the sessions since expiration.
    dates = pl.concat([frame["session_date"], frame["expiration"]])
    first, last = dates.min(), dates.max()
    known = TABLE_END  # fixed, not "a year from today": a rebuilt partition must equal the first build
    assert isinstance(first, dt.date)
    assert isinstance(last, dt.date)
    days = sessions(first, max(first, min(last, known)))
    ordinals = np.array([d.toordinal() for d in days], dtype=np.int64)
    epoch = dt.date(1970, 1, 1).toordinal()
    session = frame["session_date"].cast(pl.Int64).to_numpy() + epoch
    expiration = frame["expiration"].cast(pl.Int64).to_numpy() + epoch
    count = np.searchsorted(ordinals, expiration, side="right") - np.searchsorted(
        ordinals, session, side="right"
    )
    return pl.Series("dte_trading", count, dtype=pl.Int32).set(
        pl.Series(expiration > known.toordinal()), None
    )


def _dividend_yields(underlying: pl.Series, settings: Any) -> np.ndarray:
    default = float(settings.get("options.dividend_yield", 0.0))
    table = {str(k): float(v) for k, v in dict(settings.get("options.dividend_yields", {})).items()}
    if not table:
        return np.full(len(underlying), default)
    return underlying.replace_strict(table, default=default, return_dtype=pl.Float64).to_numpy()


def _priced(frame: pl.DataFrame, observed: pl.Series, settings: Any, *, compute_iv: bool) -> pl.DataFrame:
    """Add time to expiry, underlying price, moneyness and (``compute_iv``) IV, greeks and reasons."""
    expiry_close = _session_closes(frame["expiration"]).to_numpy()
    years = (expiry_close - observed.to_numpy()) / _NS_PER_YEAR
    frame = frame.with_columns(
        (pl.col("expiration") - pl.col("session_date")).dt.total_days().cast(pl.Int32).alias("dte_calendar"),
        _trading_days(frame),
        pl.Series("years", years, dtype=pl.Float64),
        (pl.col("underlying_close") * pl.col("shares_per_contract") / 100.0).alias("underlying_price"),
    ).with_columns((pl.col("underlying_price") / pl.col("strike")).log().alias("moneyness"))
    r = float(settings.get("options.risk_free_rate", 0.0))
    q = _dividend_yields(frame["underlying"], settings)
    frame = frame.with_columns(
        pl.lit(r, dtype=pl.Float64).alias("risk_free_rate"), pl.Series("dividend_yield", q, dtype=pl.Float64)
    )
    before = (
        pl.when(pl.col("underlying").is_null())
        .then(pl.lit("unresolved_contract"))
        .when(pl.col("underlying_close").is_null())
        .then(pl.lit("no_underlying_price"))
        .when(pl.col("volume") <= 0)
        .then(pl.lit("zero_volume"))
        .when((pl.col("years") <= 0) & (pl.col("dte_calendar") == 0))
        .then(pl.lit("expiration_day"))
        .when(pl.col("years") <= 0)
        .then(pl.lit("expired"))
    )
    nulls = [pl.lit(None, dtype=pl.Float64).alias(c) for c in ("iv", "delta", "gamma", "vega", "theta")]
    if not compute_iv:
        return frame.with_columns(*nulls, pl.lit("not_computed").alias("iv_reason"))
    frame = frame.with_columns(before.alias("iv_reason"))
    todo = frame["iv_reason"].is_null().to_numpy()
    if not todo.any():
        return frame.with_columns(nulls)
    pick = np.flatnonzero(todo)
    call = (frame["option_type"] == "call").fill_null(False).to_numpy()[pick]
    spot = frame["underlying_price"].to_numpy()[pick]
    strike = frame["strike"].to_numpy()[pick]
    t = years[pick]
    iv, reason = implied_vol(frame["close"].to_numpy()[pick], call, spot, strike, t, r, q[pick])
    sens = greeks(call, spot, strike, t, iv, r, q[pick])
    columns: dict[str, np.ndarray] = {}
    for name, values in (("iv", iv), *sens._asdict().items()):
        full = np.full(frame.height, np.nan)
        full[pick] = values
        columns[name] = full
    return frame.with_columns(
        *(pl.Series(name, values, dtype=pl.Float64).fill_nan(None) for name, values in columns.items()),
        pl.coalesce(pl.col("iv_reason"), _solver_reasons(reason, pick, frame.height)).alias("iv_reason"),
    )


def _solver_reasons(reason: np.ndarray, pick: np.ndarray, height: int) -> pl.Series:
    """The solver's ``reason`` of rows ``pick`` as a column of ``height`` rows, null where it found a
    vol or did not run; by the index of each reason (converting a million numpy strings is slower)."""
    names: list[str | None] = [name or None for name in IV_REASONS]
    codes = np.full(height, len(names), dtype=np.int64)  # one past the names: null
    for code, name in enumerate(IV_REASONS):
        codes[pick[reason == name]] = code
    return pl.Series("_solver", [*names, None], dtype=pl.String).gather(codes)


def underlying_aggregates(window: SessionWindow) -> pl.DataFrame:
    """Per underlying and output session, from that day's option silver rows.

    * ``call_volume``, ``put_volume``, ``opt_volume``: contracts traded (standard and adjusted); ``pcr``
      = put / call volume (null without call volume); ``contract_count``: contracts with a bar.
    * ``iv_vw``: volume-weighted mean ``iv`` of the contracts that have one.
    * ``iv30``: at-the-money IV at :data:`IV_HORIZON_DAYS` days. Per expiration (standard contracts with
      an IV) the ATM IV is the mean IV of the contracts at the strike closest to the forward
      (smallest ``|ln(K / F)|``, ``F = S·e^((r−q)t)``); the nearest expirations at or below and above 30
      days (``years × 365``) are interpolated linearly in total variance ``σ²·t``; null unless both exist.
    * ``skew25``: 25-delta put IV minus 25-delta call IV of an expiration (each linear in delta between
      the two contracts whose deltas bracket ±0.25, among those quoted at least
      :data:`WING_MIN_PRICE` with |delta| at least :data:`WING_MIN_DELTA`), interpolated linearly in
      time to 30 days between the nearest expirations on either side that have both wings; null
      otherwise.
    """
    rows = window.inputs.get("options_daily")
    empty = pl.DataFrame(UNDERLYING_DAILY_SCHEMA.empty_table())
    if rows is None or not rows.height:
        return empty
    rows = rows.filter(
        pl.col("underlying").is_not_null() & pl.col("session_date").is_in(list(window.outputs))
    )
    key = ["underlying", "session_date"]
    call = pl.col("option_type") == "call"
    volume = pl.col("volume")
    weighted = pl.col("iv").is_not_null() & (volume > 0)
    base = rows.group_by(key).agg(
        volume.filter(call).sum().alias("call_volume"),
        volume.filter(~call).sum().alias("put_volume"),
        volume.sum().alias("opt_volume"),
        pl.len().cast(pl.Int64).alias("contract_count"),
        (pl.col("iv") * volume).filter(weighted).sum().alias("_iv_volume"),
        volume.filter(weighted).sum().alias("_volume_with_iv"),
    )
    base = base.with_columns(
        pl.when(pl.col("call_volume") > 0).then(pl.col("put_volume") / pl.col("call_volume")).alias("pcr"),
        pl.when(pl.col("_volume_with_iv") > 0)
        .then(pl.col("_iv_volume") / pl.col("_volume_with_iv"))
        .alias("iv_vw"),
    )
    standard = rows.filter(~pl.col("adjusted") & pl.col("iv").is_not_null() & (pl.col("years") > 0))
    expiries = _expiries(standard, key)
    iv30 = _at_horizon(
        expiries.filter(pl.col("atm_iv").is_not_null()),
        key,
        (pl.col("atm_iv").pow(2) * pl.col("years")).alias("_value"),
        lambda value, years: (value / years).sqrt(),
        "iv30",
    )
    skew = _at_horizon(
        expiries.filter(pl.col("skew").is_not_null()),
        key,
        pl.col("skew").alias("_value"),
        lambda value, years: value,
        "skew25",
    )
    out = base.join(iv30, on=key, how="left").join(skew, on=key, how="left")
    return (
        out.rename({"underlying": "ticker"})
        .select(UNDERLYING_DAILY_SCHEMA.names)
        .cast(pl.DataFrame(empty).schema)
        .sort(["ticker", "session_date"])
    )


def _expiries(rows: pl.DataFrame, key: list[str]) -> pl.DataFrame:
    """Per expiration: ``years``, ``atm_iv`` and ``skew`` (25-delta put IV − call IV, null without both)."""
    expiry = [*key, "expiration"]
    log_k_over_f = -pl.col("moneyness") - (pl.col("risk_free_rate") - pl.col("dividend_yield")) * pl.col(
        "years"
    )
    dist = rows.with_columns(log_k_over_f.abs().alias("_dist"))
    atm = (
        dist.filter(pl.col("_dist") == pl.col("_dist").min().over(expiry))
        .group_by(expiry)
        .agg(pl.col("iv").mean().alias("atm_iv"), pl.col("years").mean().alias("years"))
    )
    # Wings from quotes worth at least WING_MIN_PRICE whose deltas are not vanishing: a one-cent far
    # wing has an IV that says more about the tick than about volatility.
    wings = rows.filter((pl.col("close") >= WING_MIN_PRICE) & (pl.col("delta").abs() >= WING_MIN_DELTA))
    put = _wing(wings.filter(pl.col("option_type") == "put"), expiry, -SKEW_DELTA).rename({"_wing": "_put"})
    call = _wing(wings.filter(pl.col("option_type") == "call"), expiry, SKEW_DELTA).rename({"_wing": "_call"})
    return (
        atm.join(put, on=expiry, how="left")
        .join(call, on=expiry, how="left")
        .with_columns((pl.col("_put") - pl.col("_call")).alias("skew"))
        .select(*expiry, "years", "atm_iv", "skew")
    )


def _wing(rows: pl.DataFrame, expiry: list[str], target: float) -> pl.DataFrame:
    """IV at ``delta == target`` per expiration: linear between the neighbours (in delta) bracketing it."""
    ordered = rows.filter(pl.col("delta").is_not_null()).sort([*expiry, "delta"])
    nxt_delta = pl.col("delta").shift(-1).over(expiry)
    nxt_iv = pl.col("iv").shift(-1).over(expiry)
    bracket = ordered.with_columns(nxt_delta.alias("_d1"), nxt_iv.alias("_iv1")).filter(
        (pl.col("delta") <= target) & (pl.col("_d1") >= target) & (pl.col("_d1") > pl.col("delta"))
    )
    weight = (pl.lit(target) - pl.col("delta")) / (pl.col("_d1") - pl.col("delta"))
    return bracket.group_by(expiry).agg(
        (pl.col("iv") + (pl.col("_iv1") - pl.col("iv")) * weight).first().alias("_wing")
    )


def _at_horizon(
    expiries: pl.DataFrame,
    key: list[str],
    value: pl.Expr,
    finish: Callable[[pl.Expr, pl.Expr], pl.Expr],
    name: str,
) -> pl.DataFrame:
    """``value`` interpolated linearly in time to :data:`IV_HORIZON_DAYS` between the nearest expirations
    at or below and above it, then ``finish(value, years)``."""
    horizon = IV_HORIZON_DAYS / 365.0
    frame = expiries.with_columns(value)
    below = (
        frame.filter(pl.col("years") <= horizon)
        .sort("years")
        .group_by(key)
        .agg(pl.col("years").last().alias("_t0"), pl.col("_value").last().alias("_v0"))
    )
    above = (
        frame.filter(pl.col("years") > horizon)
        .sort("years")
        .group_by(key)
        .agg(pl.col("years").first().alias("_t1"), pl.col("_value").first().alias("_v1"))
    )
    both = below.join(above, on=key, how="inner")
    at = pl.col("_v0") + (pl.col("_v1") - pl.col("_v0")) * (horizon - pl.col("_t0")) / (
        pl.col("_t1") - pl.col("_t0")
    )
    return both.select(*key, finish(at, pl.lit(horizon)).alias(name))
