"""A feature set's silver transform: a session window → the set's columns for the output sessions.

The window's bars become dense ``ticker × session`` arrays, one row per ticker: each ticker's series. A
series is held in the share basis of the window's first session (prices divided, volumes multiplied, by
the total-return multipliers of the corporate actions since), so ratios of prices — what Qlib's factors
are — equal those of a total-return adjusted Qlib root; a feature measured in prices or shares (MACD,
ATR, OBV) is brought back into its own session's basis by its degree
(:func:`quantmini.features.expression.degree`). No later action changes a stored value: a partition
depends on the multipliers inside its window only.

``$vwap`` is the root's: the volume-weighted price of the session's regular-hours minute bars where the
lake has them (``stocks_minute_rollups``), else the typical price (high + low + close) / 3.

Positions count exchange sessions (``sessions`` sets: Qlib's global calendar, a session without a bar is
a missing value once the ticker's series has started) or the ticker's own bars (``bars`` sets). Values
computed in a daily update and in a full rebuild agree to about 1e-9 relative (running sums start where
the window does), not bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from quantmini._exceptions import ConfigurationError
from quantmini.core.window import SessionWindow, series_of
from quantmini.features.evaluate import Frame, evaluate, levels_of, shared_of, windows_of
from quantmini.features.expression import VOLUME_SERIES, Node, degree, parse
from quantmini.features.library import MARKET_PROXY, FeatureSet, feature_set

#: Bytes of one series array of a block of tickers (rows × positions × 8): a block's intermediate arrays
#: stay in memory together, and small ones stay in the processor's caches.
BLOCK_BYTES = 2_000_000


class _Grid:
    """The window's bars as ``series × session`` arrays (NaN where a series has no bar): a series is a
    company (:func:`~quantmini.core.window.series_of`), whichever ticker it traded under."""

    def __init__(self, window: SessionWindow, columns: Sequence[str]) -> None:
        bars = window.bars.filter(pl.col("session_date").is_in(list(window.sessions)))
        bars = bars.with_columns(series_of(window, bars))
        self.series = bars["_series"].unique().sort()
        codes = {t: i for i, t in enumerate(self.series.to_list())}
        position = {s: i for i, s in enumerate(window.sessions)}
        shape = (len(codes), len(window.sessions))
        t = bars["_series"].replace_strict(codes, return_dtype=pl.Int64).to_numpy()
        s = bars["session_date"].replace_strict(position, return_dtype=pl.Int64).to_numpy()
        self.present = np.zeros(shape, dtype=np.bool_)
        self.present[t, s] = True
        # The ticker of each bar (an index into ``tickers``): what an output row is named.
        self.tickers = bars["ticker"].unique().sort()
        self.names = np.zeros(shape, dtype=np.int64)
        self.names[t, s] = (
            bars["ticker"]
            .replace_strict({n: i for i, n in enumerate(self.tickers.to_list())}, return_dtype=pl.Int64)
            .to_numpy()
        )
        self.bars = bars.select("ticker", "session_date", "_series")
        self.values: dict[str, np.ndarray] = {}
        for column in columns:
            grid = np.full(shape, np.nan)
            grid[t, s] = bars[column].cast(pl.Float64).to_numpy()
            self.values[column] = grid
        self.mult = np.ones(shape)
        multipliers = window.factors.multipliers if window.factors is not None else pl.DataFrame()
        if not multipliers.is_empty():
            known = multipliers.filter(
                pl.col("entity").is_in(self.series.implode()) & pl.col("session_date").is_in(list(position))
            )
            mt = known["entity"].replace_strict(codes, return_dtype=pl.Int64).to_numpy()
            ms = known["session_date"].replace_strict(position, return_dtype=pl.Int64).to_numpy()
            self.mult[mt, ms] = known["total_multiplier"].to_numpy()
        self.codes = codes
        self.position = position

    def row_of(self, ticker: str) -> int | None:
        """The row of the series that last traded as ``ticker`` in the window (``None``: none did)."""
        named = self.bars.filter(pl.col("ticker") == ticker)
        if named.is_empty():
            return None
        return self.codes[named.sort("session_date")["_series"][-1]]

    def set_vwap(self, window: SessionWindow) -> None:
        """``vwap``: the minute roll-ups' VWAP where present, else the typical price."""
        typical = (self.values["high"] + self.values["low"] + self.values["close"]) / 3
        rollups = window.inputs.get("stocks_minute_rollups")
        if rollups is not None and not rollups.is_empty():
            known = rollups.filter(pl.col("vwap").is_not_null()).join(
                self.bars, on=["ticker", "session_date"], how="inner"
            )
            t = known["_series"].replace_strict(self.codes, return_dtype=pl.Int64).to_numpy()
            s = known["session_date"].replace_strict(self.position, return_dtype=pl.Int64).to_numpy()
            minute = np.full_like(typical, np.nan)
            minute[t, s] = known["vwap"].to_numpy()
            # As the Qlib root: a roll-up counts on sessions with a daily bar only.
            typical = np.where(np.isnan(minute) | ~self.present, typical, minute)
        self.values["vwap"] = typical


def compute(fs: FeatureSet, window: SessionWindow) -> pl.DataFrame:
    """``ticker, session_date`` and the set's features for every bar of the output sessions, ordered by
    session then ticker."""
    nodes = [parse(f.expression) for f in fs.features if f.expression is not None]
    names = [f.name for f in fs.features if f.expression is not None]
    inputs = fs.inputs
    columns = [c for c in ("open", "high", "low", "close", "volume") if c in inputs or c == "close"]
    if "vwap" in inputs:
        columns = list(dict.fromkeys([*columns, "high", "low", "close"]))
    grid = _Grid(window, columns)
    if "vwap" in inputs:
        grid.set_vwap(window)
    dtype = pl.Float32 if fs.precision == 32 else pl.Float64
    outputs = np.zeros(len(window.sessions), dtype=np.bool_)
    outputs[[grid.position[s] for s in window.outputs if s in grid.position]] = True
    rt, rs = np.nonzero(grid.present & outputs[None, :])
    if rt.size == 0:
        return pl.DataFrame(
            schema={"ticker": pl.String(), "session_date": pl.Date(), **dict.fromkeys(names, dtype)}
        )
    # Each ticker's series in the basis of the window's first session; an output is brought back into
    # its own session's basis by its degree (prices × scale, volumes ÷ scale): ratios need nothing.
    ones = np.ones((grid.mult.shape[0], 1))
    scale = np.cumprod(np.hstack([ones, grid.mult[:, 1:]]), axis=1)
    proxy = grid.row_of(str(window.settings.get(MARKET_PROXY, "SPY"))) if "mkt_close" in inputs else None
    series = {name: _series(grid, scale, name, proxy) for name in inputs}
    if fs.mode == "bars":
        frame, position = _bars_frame(grid, series, rt, rs, fs.history)
    else:
        gap = fs.history - max(_lookbacks(nodes), default=0)
        frame, position = Frame(series, _before_series(grid.present, gap)), rs
    frame.strict = fs.strict
    frame.windows = windows_of(nodes)
    frame.shared = shared_of(nodes)
    frame.levels = levels_of(nodes)
    values = {name: np.empty(rt.size) for name in names}
    size = frame.absent.shape[1]
    step = max(1, BLOCK_BYTES // (8 * size))
    bounds = np.searchsorted(rt, np.arange(0, grid.present.shape[0] + step, step))
    for k, first in enumerate(range(0, grid.present.shape[0], step)):  # blocks of tickers: bounded memory
        lo, hi = int(bounds[k]), int(bounds[k + 1])
        if lo == hi:
            continue
        block = _block(frame, first, first + step)
        flat = (rt[lo:hi] - first) * size + position[lo:hi]
        for name, node in zip(names, nodes, strict=True):
            value = evaluate(node, block)
            values[name][lo:hi] = value if isinstance(value, float) else value.ravel().take(flat)
    # Rows go out by session, then ticker (the order silver stores them in: nothing to sort later), each
    # value in its own session's basis by its degree, non-finite values as nulls (silver stores no inf).
    by_session = np.lexsort((grid.names[rt, rs], rs))
    numpy_type = np.float32 if fs.precision == 32 else np.float64
    out: list[pl.Series] = []
    for name, node in zip(names, nodes, strict=True):
        d = degree(node)
        if d is not None and d.market:
            raise ConfigurationError(
                f"feature {name}: a value in the market proxy's price units has no basis"
            )
        column = values.pop(name).take(by_session)
        if d is not None and d.price:
            column *= scale[rt, rs].take(by_session) ** d.price
        np.copyto(column, np.nan, where=~np.isfinite(column))
        out.append(pl.Series(name, column.astype(numpy_type), nan_to_null=True))
    sessions = np.array(window.sessions, dtype="datetime64[D]")
    return pl.DataFrame(
        [
            grid.tickers.gather(grid.names[rt, rs][by_session]).alias("ticker"),
            pl.Series("session_date", sessions[rs[by_session]], dtype=pl.Date()),
            *out,
        ]
    )


def _block(frame: Frame, first: int, last: int) -> Frame:
    """The rows ``first..last`` of ``frame`` (tickers), with an empty cache."""
    leaves = {name: values[first:last] for name, values in frame.leaves.items()}
    absent = frame.absent[first:last]
    lo = None if frame.lo is None else frame.lo[first:last]
    return Frame(
        leaves, absent, frame.strict, lo=lo, windows=frame.windows, shared=frame.shared, levels=frame.levels
    )


def _lookbacks(nodes: list[Node]) -> list[int]:
    return [b for b in (n.lookback() for n in nodes) if b is not None]


def _series(grid: _Grid, scale: np.ndarray, name: str, proxy: int | None) -> np.ndarray:
    """``tickers × sessions``: input ``name`` in each ticker's window-start basis."""
    if name == "mkt_close":
        if proxy is None:
            return np.full(grid.present.shape, np.nan)
        row = grid.values["close"][proxy] / scale[proxy]
        return np.broadcast_to(row, grid.present.shape).copy()
    values = grid.values[name]
    converted: np.ndarray = values * scale if name in VOLUME_SERIES else values / scale
    return converted


def _before_series(present: np.ndarray, gap: int) -> np.ndarray:
    """Sessions with no bar in them nor in the ``gap`` sessions before: before the ticker's series.

    Qlib's instrument starts at its first bar and a session without a bar after that is a NaN row; a
    window only sees ``gap`` sessions before its first, so a halt longer than that reads as a new start.
    """
    seen = np.cumsum(present, axis=1)
    before = np.zeros_like(seen)
    if gap + 1 < seen.shape[1]:
        before[:, gap + 1 :] = seen[:, : seen.shape[1] - gap - 1]
    return np.asarray((seen - before) == 0)


def _bars_frame(
    grid: _Grid, series: dict[str, np.ndarray], rt: np.ndarray, rs: np.ndarray, history: int
) -> tuple[Frame, np.ndarray]:
    """Each ticker's bars packed to the front of its row (positions count bars), each window kept within
    ``history`` sessions of its last bar; and where the outputs sit."""
    counts = grid.present.sum(axis=1)
    width = int(counts.max())
    index = np.cumsum(grid.present, axis=1) - 1  # a bar's position among its ticker's bars
    t, s = np.nonzero(grid.present)  # row-major: by ticker, then session
    packed = {}
    for name, values in series.items():
        array = np.full((grid.present.shape[0], width), np.nan)
        array[t, index[t, s]] = values[t, s]
        packed[name] = array
    absent = np.arange(width)[None, :] >= counts[:, None]
    # The first bar of the ticker within `history` sessions of each bar: its key (ticker, session) sorted.
    span = grid.present.shape[1] + history + 1
    keys = t * span + s
    first = np.searchsorted(keys, keys - history) - np.searchsorted(keys, t * span)
    lo = np.zeros((grid.present.shape[0], width), dtype=np.int64)
    lo[t, index[t, s]] = first
    lo = np.maximum.accumulate(lo, axis=1)  # padding after a row's last bar keeps its last bound
    return Frame(packed, absent, lo=lo), index[rt, rs]


def alpha158(window: SessionWindow) -> pl.DataFrame:
    """Silver transform of the ``alpha158`` set."""
    return compute(feature_set("stocks_daily", "alpha158"), window)


def alpha360(window: SessionWindow) -> pl.DataFrame:
    """Silver transform of the ``alpha360`` set."""
    return compute(feature_set("stocks_daily", "alpha360"), window)


def ta(window: SessionWindow) -> pl.DataFrame:
    """Silver transform of the ``ta`` set."""
    return compute(feature_set("stocks_daily", "ta"), window)
