"""Silver features of minute stock bars and their daily roll-ups (pure transforms of a session window).

Intraday windows count **minute slots**, as the daily features count calendar sessions: the slots of a
session are its exchange-local minutes, a minute without a bar (the vendor writes no bar for a minute
without trades) is an empty slot, and a value ``k`` minutes back is the bar of the slot ``k`` minutes
earlier of the *same* session — null when that slot is empty or before the session's first bar. A
window is never taken across sessions, so the overnight gap never counts as one minute.

* ``ret_1m``, ``ret_5m``, ``ret_15m``, ``ret_30m``: simple returns ``close(t) / close(t−h) − 1``
  over ``h`` slots. Pre-market, regular and after-hours bars are one session: the 09:30 return compares
  with the 09:29 pre-market bar. No adjustment is needed: splits and dividends take effect between
  sessions.
* ``rv_30m``: sample standard deviation (ddof = 1) of ``ret_1m`` over the 30 slots ending at ``t`` (31
  consecutive bars) — simple returns, as ``vol_20d`` is of ``ret_1d``; not annualised.
* ``vwap_dist``: ``close ÷ VWAP − 1`` with the session's cumulative VWAP from 09:30 up to and including
  the bar, from the typical price ``(high + low + close) / 3`` weighted by volume (the files carry no
  per-bar VWAP). Regular-session bars only — the benchmark VWAP of a day — null on extended-hours bars.
* ``volume_rel_20d``: volume ÷ the mean split-adjusted volume of the same exchange-local minute over the
  20 previous sessions. A session where the ticker has bars but none that minute counts as volume 0
  (nothing traded; this includes minutes after an early close, so the mean dips by up to 1/20 in the 20
  sessions after a half day); a session where the ticker has no bar at all makes the feature null, as a
  missing daily bar does for the daily features.

Window statistics follow :mod:`quantmini.core.window`: sums of lagged values in a fixed order, never a
running sum across sessions, so any grouping of output sessions gives bit-identical rows. The VWAP's
cumulative sums run over one session's bars in time order, which are the same rows however sessions are
grouped. Values are finite or null.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa

from quantmini.core.window import SessionWindow, finite_or_null
from quantmini.datasets.stocks_minute import ROLLUP_SCHEMA, SPEC

#: Return horizons in minute slots.
RETURN_HORIZONS = (1, 5, 15, 30)
VOLATILITY_WINDOW = 30
#: Previous sessions averaged by ``volume_rel_20d`` (the part's lookback).
VOLUME_SESSIONS = 20
#: The feature columns the spec declares for the main silver table, in order.
FEATURES = SPEC.features

#: Columns of :func:`minute_daily_rollups` (the spec's ``ROLLUP_SCHEMA`` in Polars types); prices and
#: volumes of the regular session only, except ``extended_volume``.
DAILY_ROLLUP_SCHEMA = pl.Schema(pl.DataFrame(pa.Table.from_batches([], schema=ROLLUP_SCHEMA)).schema)

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Flags = npt.NDArray[np.bool_]

_MINUTE_NS = 60_000_000_000
#: Empty slots laid before each (ticker, session) on a :class:`Slots` line: a lag of up to this many
#: slots never reaches the previous ticker or session.
_PAD = max(*RETURN_HORIZONS, VOLATILITY_WINDOW)


def output_bars(window: SessionWindow) -> pl.DataFrame:
    """Bars of the output sessions with ``_minute``, their exchange-local minute of the day (09:30 is
    570), sorted by (ticker, window_start) — hence by (ticker, session_date, _minute)."""
    bars = _sorted_output_bars(window)
    zone = _time_zone(window)
    midnights = {session: _midnight_ns(session, zone) for session in window.outputs}
    midnight = pl.col("session_date").replace_strict(midnights, return_dtype=pl.Int64)
    return bars.with_columns(((pl.col("ts").dt.epoch("ns") - midnight) // _MINUTE_NS).alias("_minute"))


def _sorted_output_bars(window: SessionWindow) -> pl.DataFrame:
    """Bars of the output sessions in (ticker, window_start) order."""
    outputs = pl.Series(list(window.outputs), dtype=pl.Date).implode()
    bars = window.bars.filter(pl.col("session_date").is_in(outputs))
    return bars if _sorted_by_ticker_and_time(bars) else bars.sort("ticker", "window_start")


def _time_zone(window: SessionWindow) -> str | None:
    dtype = window.bars.schema["ts"]
    return dtype.time_zone if isinstance(dtype, pl.Datetime) else None


def _midnight_ns(session: dt.date, zone: str | None) -> int:
    """Start of ``session``'s local day in epoch nanoseconds. A bar's local minute is its distance from
    it: a session never contains a DST change, so the UTC offset of midnight is that of the session's
    hours — the same clock minute on both sides of a change is the same slot."""
    tz = ZoneInfo(zone) if zone else dt.UTC
    return int(dt.datetime.combine(session, dt.time(), tzinfo=tz).timestamp()) * 1_000_000_000


def _sorted_by_ticker_and_time(bars: pl.DataFrame) -> bool:
    """Whether ``bars`` are in (ticker, window_start) order, as a bronze partition is: a linear check
    that saves a sort."""
    ticker, start = pl.col("ticker"), pl.col("window_start")
    following = ticker.shift(-1)
    out_of_order = (ticker > following) | ((ticker == following) & (start >= start.shift(-1)))
    return not bool(bars.select(out_of_order.any()).item())


def _group_starts(bars: pl.DataFrame) -> Flags:
    """Whether each row of :func:`output_bars` starts a (ticker, session)."""
    ticker, session = pl.col("ticker"), pl.col("session_date")
    starts = (ticker != ticker.shift()) | (session != session.shift())
    return bars.select(starts.fill_null(True)).to_series().to_numpy()


@dataclasses.dataclass(frozen=True, slots=True)
class Slots:
    """The minute slots of the bars of :func:`output_bars`, laid end to end on one line.

    Each (ticker, session) takes ``_PAD`` empty slots, then the slots from its first to its last bar,
    so a thinly traded ticker costs its span; ``slot`` is each bar's place on the line and ``group``
    numbers the (ticker, session)s in row order.
    """

    group: Ints
    slot: Ints
    size: int

    @classmethod
    def of(cls, bars: pl.DataFrame) -> Slots:
        starts = _group_starts(bars)
        group = np.cumsum(starts) - 1
        minute = bars["_minute"].to_numpy()
        first_rows = np.flatnonzero(starts)
        last_rows = np.append(first_rows[1:], len(minute))[: len(first_rows)] - 1
        first = minute[first_rows]
        spans = minute[last_rows] - first + 1 + _PAD
        begins = np.cumsum(spans) - spans + _PAD
        return cls(group, begins[group] + (minute - first[group]), int(spans.sum()))

    def line(self, values: Floats) -> Floats:
        """``values`` on the slot line, NaN on empty slots: ``line[slot - k]`` is the value ``k`` slots
        back (k ≤ ``_PAD``)."""
        line = np.full(self.size, np.nan)
        line[self.slot] = values
        return line

    def consecutive(self, k: int) -> Flags:
        """Whether the ``k`` slots before each bar hold bars of its ticker and session: then its ``k``
        previous rows are its ``k`` previous slots."""
        full = np.zeros(len(self.slot), dtype=bool)
        full[k:] = self.slot[k:] - self.slot[:-k] == k
        return full


def _finite(name: str, values: Floats) -> pl.Series:
    """``values`` with every NaN or infinite value null (what :func:`finite_or_null` does)."""
    return pl.Series(name, np.where(np.isfinite(values), values, np.nan), nan_to_null=True)


def _sample_std(values: Floats, n: int) -> Floats:
    """Sample standard deviation (ddof = 1) of each value and its ``n - 1`` predecessors, two-pass, the
    terms summed from the current value back (as :func:`~quantmini.core.window.total` adds them); NaN
    when any term is. Rows with fewer than ``n - 1`` predecessors hold partial sums: mask them.

    The divisions by the count are Polars' (it multiplies by the reciprocal), as in the daily features'
    :func:`~quantmini.core.window.with_window_stats`, so the two round alike.
    """
    sums = values.copy()
    for k in range(1, n):
        sums[k:] += values[:-k]
    mean = (pl.Series(sums) / n).to_numpy()
    squares = (values - mean) ** 2
    term = np.empty_like(values)
    for k in range(1, n):
        np.subtract(values[:-k], mean[k:], out=term[k:])
        np.multiply(term[k:], term[k:], out=term[k:])
        squares[k:] += term[k:]
    return (pl.Series(squares) / (n - 1)).sqrt().to_numpy()


def with_intraday_features(bars: pl.DataFrame) -> pl.DataFrame:
    """Add the returns, ``rv_30m`` and ``vwap_dist`` to :func:`output_bars` rows.

    Element-wise float operations in the order the module docstring gives, so results do not depend
    on where a row sits: numpy for the slot arithmetic, Polars (eager: a lazy plan may fuse a multiply
    and an add, which rounds differently) for the VWAP's cumulative sums.
    """
    slots = Slots.of(bars)
    closes = bars["close"].to_numpy()
    line = slots.line(closes)
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = {h: closes / line[slots.slot - h] - 1 for h in RETURN_HORIZONS}
        ret_1m = np.where(np.isfinite(returns[1]), returns[1], np.nan)
        # The ret_1m of the 30 slots ending at t need the 31 bars t-30..t: rows, once they are consecutive.
        rv = np.where(slots.consecutive(VOLATILITY_WINDOW), _sample_std(ret_1m, VOLATILITY_WINDOW), np.nan)
    close, regular = pl.col("close"), pl.col("regular_session")
    typical = (pl.col("high") + pl.col("low") + close) / 3
    cumulative_value = pl.when(regular).then(typical * pl.col("volume")).cum_sum().over("_group")
    cumulative_volume = pl.when(regular).then(pl.col("volume")).cum_sum().over("_group")
    frame = bars.with_columns(
        pl.Series("_group", slots.group).set_sorted(),
        *(_finite(f"ret_{h}m", values) for h, values in returns.items()),
        _finite("rv_30m", rv),
    )
    frame = frame.with_columns(
        pl.when(regular).then(close / (cumulative_value / cumulative_volume) - 1).alias("vwap_dist")
    )
    return frame.with_columns(finite_or_null(pl.col("vwap_dist")).alias("vwap_dist"))


def relative_volume(rows: pl.DataFrame, window: SessionWindow) -> pl.Series:
    """``volume_rel_20d`` of :func:`output_bars` ``rows``, in their order.

    The window's sessions are visited newest first. Each one's volumes are scattered into a dense
    (ticker × minute) array — the tickers and the minute span of ``rows`` only, so the array stays small
    whatever the window holds — and read back at the rows of every output session 1 to 20 sessions
    later: each row's terms arrive in the order j = 1..20 and are summed in that order.
    """
    if rows.is_empty():
        return pl.Series("volume_rel_20d", [], dtype=pl.Float64)
    starts = (pl.col("ticker") != pl.col("ticker").shift()).fill_null(True)
    keyed = rows.select("ticker", "session_date", "_minute", (starts.cum_sum() - 1).alias("_tid"))
    names = keyed.filter(starts).select("ticker", pl.col("_tid").cast(pl.Int64))
    grid = _MinuteGrid(names, int(keyed["_minute"].min()), int(keyed["_minute"].max()))  # type: ignore[arg-type]
    position = {session: i for i, session in enumerate(window.sessions)}
    row_positions = keyed["session_date"].replace_strict(position, default=-1, return_dtype=pl.Int64)
    row_tickers = keyed["_tid"].cast(pl.Int64).to_numpy()
    row_cells = grid.cells(row_tickers, keyed["_minute"].to_numpy())
    outputs = {
        p: _OutputRows(at, row_cells[at], row_tickers[at])
        for p, at in _rows_by_position(row_positions.to_numpy()).items()
        if p >= 0
    }
    multipliers = _split_multipliers(window, names, position)
    frames = _session_frames(window, position)
    zone = _time_zone(window)
    dense = np.zeros(grid.size)
    for q in range(max(outputs, default=0) - 1, min(outputs, default=0) - VOLUME_SESSIONS - 1, -1):
        frame = frames.get(q)
        if frame is None:
            cells, present = np.empty(0, dtype=np.int64), np.zeros(grid.tickers + 1, dtype=bool)
        else:
            cells, present = grid.scatter(frame, dense, _midnight_ns(window.sessions[q], zone))
        for p, out in outputs.items():
            if 1 <= p - q <= VOLUME_SESSIONS:
                out.add(p - q, dense, present[:-1], multipliers[p] if p - q == 1 else multipliers[q + 1])
        dense[cells] = 0.0
    sums = np.full(rows.height, np.nan)
    for out in outputs.values():
        if out.total is not None:
            sums[out.at] = out.total
    mean = pl.Series(sums, nan_to_null=True) / VOLUME_SESSIONS
    return rows.select(finite_or_null(pl.col("volume") / mean).alias("volume_rel_20d")).to_series()


@dataclasses.dataclass(slots=True)
class _OutputRows:
    """The rows of one output session (``at``), their grid cells and ticker ids, and the running sum of
    their ``volume_rel_20d`` terms."""

    at: Ints
    cells: Ints
    tickers: Ints
    scale: Floats | None = None
    total: Floats | None = None

    def add(self, j: int, dense: Floats, present: Flags, multiplier: Floats) -> None:
        """Add the term of ``j`` sessions back: the volume in ``dense`` (0 without a bar that minute) ÷
        the product of the split multipliers of the ``j`` sessions ending at the output session, one
        ``multiplier`` per call (a raw volume of then ÷ it is in the output session's shares); NaN (null)
        where the ticker has no bar that session."""
        self.scale = multiplier if j == 1 or self.scale is None else self.scale * multiplier
        term = dense[self.cells] / np.where(present, self.scale, np.nan)[self.tickers]
        self.total = term if j == 1 or self.total is None else self.total + term


@dataclasses.dataclass(frozen=True, slots=True)
class _MinuteGrid:
    """Cells ``ticker id × minute`` of a dense array for the tickers ``names`` (``ticker``, ``_tid``) of
    the output rows and the minutes ``first..last`` they trade in; one more row takes the bars of other
    tickers and one more column on each side the minutes outside, so a scatter needs no mask."""

    names: pl.DataFrame
    first: int
    last: int

    @property
    def tickers(self) -> int:
        return self.names.height

    @property
    def width(self) -> int:
        return self.last - self.first + 3

    @property
    def size(self) -> int:
        return (self.tickers + 1) * self.width

    def cells(self, tickers: Ints, minutes: Ints) -> Ints:
        column = minutes - (self.first - 1)
        np.minimum(column, self.width - 1, out=column)
        np.maximum(column, 0, out=column)
        column += tickers * self.width
        return column

    def scatter(self, frame: pl.DataFrame, dense: Floats, midnight: int) -> tuple[Ints, Flags]:
        """Write the volumes of one session's bars into ``dense``; return the cells written and whether
        each ticker id has bars that session.

        Tickers are matched run by run: a bronze partition, sorted by ticker, has a few thousand runs.
        """
        runs = frame["ticker"].rle().struct.unnest()
        ids = runs.join(self.names, left_on="value", right_on="ticker", how="left", maintain_order="left")
        run_tickers = ids["_tid"].fill_null(self.tickers).to_numpy()
        present = np.zeros(self.tickers + 1, dtype=bool)
        present[run_tickers] = True
        minutes = (frame["ts"].dt.epoch("ns").to_numpy() - midnight) // _MINUTE_NS
        cells = self.cells(np.repeat(run_tickers, runs["len"].to_numpy()), minutes)
        dense[cells] = frame["volume"].to_numpy()
        return cells, present


def _rows_by_position(positions: Ints) -> dict[int, Ints]:
    """Row indices of each window position, in row order."""
    order = np.argsort(positions, kind="stable")
    values, starts = np.unique(positions[order], return_index=True)
    ends = [*starts[1:], len(order)]
    return {int(v): order[s:e] for v, s, e in zip(values, starts, ends, strict=True)}


def _split_multipliers(window: SessionWindow, names: pl.DataFrame, position: dict[dt.date, int]) -> Floats:
    """The split multiplier of every (window position, ticker id): 1.0 without an action."""
    table = np.ones((len(window.sessions), names.height))
    if window.factors is None or window.factors.multipliers.is_empty():
        return table
    actions = (
        window.factors.multipliers.join(names, on="ticker", how="inner")
        .with_columns(
            pl.col("session_date").replace_strict(position, default=-1, return_dtype=pl.Int64).alias("_pos")
        )
        .filter(pl.col("_pos") >= 0)
    )
    table[actions["_pos"].to_numpy(), actions["_tid"].to_numpy()] = actions["split_multiplier"].to_numpy()
    return table


def _session_frames(window: SessionWindow, position: dict[dt.date, int]) -> dict[int, pl.DataFrame]:
    """``ticker, ts, volume`` of the window's bars by session position: slices when the bars are in
    session order (a window read partition by partition), else one copy per session."""
    bars = window.bars.select("session_date", "ticker", "ts", "volume")
    dates = bars["session_date"]
    if not dates.is_sorted():
        parts = bars.partition_by("session_date", as_dict=True)
        return {position[key[0]]: part for key, part in parts.items() if key[0] in position}
    days = pl.Series(list(position), dtype=pl.Date)
    begins = dates.search_sorted(days, side="left").to_list()
    ends = dates.search_sorted(days, side="right").to_list()
    return {
        position[day]: bars.slice(begin, end - begin)
        for day, begin, end in zip(position, begins, ends, strict=True)
        if end > begin
    }


def stocks_minute_silver(window: SessionWindow) -> pl.DataFrame:
    """Silver rows of the output sessions: the bronze columns plus :data:`FEATURES`.

    ``volume_rel_20d`` needs the 20 previous sessions in the window (lookback 20) and the split
    multipliers of the window's sessions; the other features need the output session only.
    """
    columns = window.bars.columns
    rows = with_intraday_features(output_bars(window))
    rows = rows.with_columns(relative_volume(rows, window))
    return rows.select(*columns, *(pl.col(name).cast(pl.Float64) for name in FEATURES))


def minute_daily_rollups(window: SessionWindow) -> pl.DataFrame:
    """Per ticker and output session, the regular-session bar of the day built from minute bars.

    ``open``/``close`` are the first/last regular bar's, ``vwap`` is Σ typical·volume ÷ Σ volume over
    regular bars, ``bar_count`` counts them, ``extended_volume`` sums the other bars. A ticker trading
    only outside regular hours has a row with null prices, ``volume`` and ``bar_count`` 0. Sums are the
    last value of a cumulative sum in time order, so they never depend on how a group-by is partitioned.
    """
    bars = _sorted_output_bars(window)
    bars = bars.with_columns(pl.Series("_group", np.cumsum(_group_starts(bars))).set_sorted())
    regular = pl.col("regular_session")
    typical = (pl.col("high") + pl.col("low") + pl.col("close")) / 3

    def running_sum(values: pl.Expr, where: pl.Expr) -> pl.Expr:
        return values.filter(where).cum_sum().last()

    day = bars.group_by("_group", maintain_order=True).agg(
        pl.col("ticker").first(),
        pl.col("session_date").first(),
        pl.col("open").filter(regular).first(),
        pl.col("high").filter(regular).max(),
        pl.col("low").filter(regular).min(),
        pl.col("close").filter(regular).last(),
        running_sum(pl.col("volume"), regular).fill_null(0.0).alias("volume"),
        running_sum(typical * pl.col("volume"), regular).alias("_value"),
        regular.sum().alias("bar_count"),
        running_sum(pl.col("volume"), ~regular).fill_null(0.0).alias("extended_volume"),
    )
    return day.with_columns(finite_or_null(pl.col("_value") / pl.col("volume")).alias("vwap")).select(
        pl.col(name).cast(dtype) for name, dtype in DAILY_ROLLUP_SCHEMA.items()
    )
