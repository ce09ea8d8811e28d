"""A feature set's silver transform: a session window → the set's columns for the output sessions.

The window's bars become dense ``ticker × session`` grids. Each output row (a ticker with a bar on an
output session D) gets its input series as ``rows × lags`` matrices in **D's share basis**: a price ``k``
lags back is multiplied by the total-return multipliers of the corporate actions between it and D (a
volume divided by them), exactly the ratio between the two sessions' prices in a total-return adjusted
Qlib root. Ratios of prices — what Qlib's factors are — therefore equal the root's, and no later action
ever changes a stored value (the partition depends on the multipliers inside its window only).

``$vwap`` is the root's: the volume-weighted price of the session's regular-hours minute bars where the
lake has them (``stocks_minute_rollups``), else the typical price (high + low + close) / 3.

Lags count exchange sessions (``sessions`` sets, Qlib's global calendar: a session without a bar is a
missing value once the ticker's series has started, the first bar within the set's history being where
it starts) or the ticker's own bars (``bars`` sets). Rows are evaluated in blocks to bound memory.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from quantmini.core.window import SessionWindow
from quantmini.features.evaluate import Frame, evaluate, windows_of
from quantmini.features.expression import Node, parse
from quantmini.features.kernels import jit
from quantmini.features.library import FeatureSet, feature_set

#: Output rows evaluated at once (bounds the lag matrices: rows × lags × 8 bytes each).
BLOCK_ROWS = 32_768
#: Settings key naming the market proxy of ``$mkt_close``.
MARKET_PROXY = "features.market_proxy"
#: Input series that are volumes (divided, not multiplied, by the multipliers).
VOLUME_SERIES = frozenset({"volume"})


@jit
def _session_lags(
    values: np.ndarray, mult: np.ndarray, rt: np.ndarray, rs: np.ndarray, width: int, divide: bool
) -> np.ndarray:
    """``rows × width``: the value ``k`` sessions before each row's session, in that session's basis."""
    out = np.full((rt.shape[0], width), np.nan)
    for r in range(rt.shape[0]):
        t = rt[r]
        s = rs[r]
        rel = 1.0
        for k in range(min(width, s + 1)):
            p = s - k
            if k > 0:
                rel = rel * mult[t, p + 1]
            out[r, k] = values[t, p] / rel if divide else values[t, p] * rel
    return out


@jit
def _bar_lags(
    values: np.ndarray,
    mult: np.ndarray,
    present: np.ndarray,
    rt: np.ndarray,
    rs: np.ndarray,
    width: int,
    history: int,
    divide: bool,
    source: np.ndarray,
) -> np.ndarray:
    """``rows × width``: the value at each row ticker's ``k``-th previous bar within ``history`` sessions,
    read from ticker row ``source[r]`` of ``values``/``mult`` (the market proxy's, or the ticker's own)."""
    out = np.full((rt.shape[0], width), np.nan)
    for r in range(rt.shape[0]):
        t = rt[r]
        s = rs[r]
        u = source[r]
        if u < 0:
            continue
        rel = 1.0
        k = 0
        for p in range(s, max(-1, s - history - 1), -1):
            if p < s:
                rel = rel * mult[u, p + 1]
            if present[t, p]:
                out[r, k] = values[u, p] / rel if divide else values[u, p] * rel
                k += 1
                if k == width:
                    break
    return out


@jit
def _spans(present: np.ndarray, rt: np.ndarray, rs: np.ndarray, history: int, bars: bool) -> np.ndarray:
    """Per row, the lags inside the series: sessions since the ticker's first bar within ``history``
    sessions (``bars``: the number of bars there)."""
    out = np.zeros(rt.shape[0], dtype=np.int64)
    for r in range(rt.shape[0]):
        t = rt[r]
        s = rs[r]
        first = s
        count = 0
        for p in range(max(0, s - history), s + 1):
            if present[t, p]:
                if count == 0:
                    first = p
                count += 1
        out[r] = count if bars else s - first + 1
    return out


class _Grid:
    """The window's bars as ``ticker × session`` arrays (NaN where a ticker has no bar)."""

    def __init__(self, window: SessionWindow, columns: Sequence[str]) -> None:
        bars = window.bars.filter(pl.col("session_date").is_in(list(window.sessions)))
        self.tickers = bars["ticker"].unique().sort()
        codes = {t: i for i, t in enumerate(self.tickers.to_list())}
        position = {s: i for i, s in enumerate(window.sessions)}
        shape = (len(codes), len(window.sessions))
        t = bars["ticker"].replace_strict(codes, return_dtype=pl.Int64).to_numpy()
        s = bars["session_date"].replace_strict(position, return_dtype=pl.Int64).to_numpy()
        self.present = np.zeros(shape, dtype=np.bool_)
        self.present[t, s] = True
        self.values: dict[str, np.ndarray] = {}
        for column in columns:
            grid = np.full(shape, np.nan)
            grid[t, s] = bars[column].cast(pl.Float64).to_numpy()
            self.values[column] = grid
        self.mult = np.ones(shape)
        multipliers = window.factors.multipliers if window.factors is not None else pl.DataFrame()
        if not multipliers.is_empty():
            known = multipliers.filter(
                pl.col("ticker").is_in(self.tickers.implode()) & pl.col("session_date").is_in(list(position))
            )
            mt = known["ticker"].replace_strict(codes, return_dtype=pl.Int64).to_numpy()
            ms = known["session_date"].replace_strict(position, return_dtype=pl.Int64).to_numpy()
            self.mult[mt, ms] = known["total_multiplier"].to_numpy()
        self.codes = codes
        self.position = position

    def set_vwap(self, window: SessionWindow) -> None:
        """``vwap``: the minute roll-ups' VWAP where present, else the typical price."""
        typical = (self.values["high"] + self.values["low"] + self.values["close"]) / 3
        rollups = window.inputs.get("stocks_minute_rollups")
        if rollups is not None and not rollups.is_empty():
            known = rollups.filter(
                pl.col("ticker").is_in(self.tickers.implode())
                & pl.col("session_date").is_in(list(self.position))
                & pl.col("vwap").is_not_null()
            )
            t = known["ticker"].replace_strict(self.codes, return_dtype=pl.Int64).to_numpy()
            s = known["session_date"].replace_strict(self.position, return_dtype=pl.Int64).to_numpy()
            minute = np.full_like(typical, np.nan)
            minute[t, s] = known["vwap"].to_numpy()
            typical = np.where(np.isnan(minute), typical, minute)
        self.values["vwap"] = typical


def compute(fs: FeatureSet, window: SessionWindow) -> pl.DataFrame:
    """``ticker, session_date`` and the set's features for every bar of the output sessions."""
    nodes = [parse(f.expression) for f in fs.features if f.expression is not None]
    names = [f.name for f in fs.features if f.expression is not None]
    inputs = fs.inputs
    columns = [c for c in ("open", "high", "low", "close", "volume") if c in inputs or c == "close"]
    if "vwap" in inputs:
        columns = list(dict.fromkeys([*columns, "high", "low", "close"]))
    grid = _Grid(window, columns)
    if "vwap" in inputs:
        grid.set_vwap(window)
    outputs = np.array(sorted(grid.position[s] for s in window.outputs if s in grid.position), dtype=np.int64)
    rt, rs = np.nonzero(grid.present[:, outputs])
    rs = outputs[rs]
    order = np.lexsort((rs, rt))
    rt, rs = rt[order].astype(np.int64), rs[order].astype(np.int64)
    dtype = pl.Float32 if fs.precision == 32 else pl.Float64
    if rt.size == 0:
        return pl.DataFrame(
            schema={"ticker": pl.String(), "session_date": pl.Date(), **dict.fromkeys(names, dtype)}
        )
    width = _width(nodes, fs)
    windows = windows_of(nodes)
    proxy = grid.codes.get(str(window.settings.get(MARKET_PROXY, "SPY"))) if "mkt_close" in inputs else None
    blocks: list[dict[str, np.ndarray]] = []
    for start in range(0, rt.size, BLOCK_ROWS):
        bt, bs = rt[start : start + BLOCK_ROWS], rs[start : start + BLOCK_ROWS]
        leaves = _leaves(fs, grid, inputs, bt, bs, width, proxy)
        span = _spans(grid.present, bt, bs, fs.history, fs.mode == "bars")
        frame = Frame(leaves, span, strict=fs.strict, windows=windows)
        blocks.append(
            {name: _column(evaluate(node, frame), frame) for name, node in zip(names, nodes, strict=True)}
        )
    sessions = list(window.sessions)
    result = pl.DataFrame(
        {
            "ticker": grid.tickers.gather(rt),
            "session_date": pl.Series([sessions[i] for i in rs], dtype=pl.Date()),
            **{name: np.concatenate([b[name] for b in blocks]) for name in names},
        }
    )
    return result.with_columns(
        pl.when(pl.col(n).is_finite()).then(pl.col(n)).cast(dtype).alias(n) for n in names
    )


def _width(nodes: list[Node], fs: FeatureSet) -> int:
    """Lags the leaves need: the longest definition's, or the whole history for recursions."""
    backs = [n.lookback() for n in nodes]
    return (fs.history if any(b is None for b in backs) else max(b for b in backs if b is not None)) + 1


def _leaves(
    fs: FeatureSet,
    grid: _Grid,
    inputs: tuple[str, ...],
    rt: np.ndarray,
    rs: np.ndarray,
    width: int,
    proxy: int | None,
) -> dict[str, np.ndarray]:
    leaves = {}
    own = rt
    for name in inputs:
        divide = name in VOLUME_SERIES
        if name == "mkt_close":
            source = np.full(rt.shape, -1 if proxy is None else proxy, dtype=np.int64)
            values = grid.values["close"]
        else:
            source, values = own, grid.values[name]
        if fs.mode == "bars":
            leaves[name] = _bar_lags(
                values, grid.mult, grid.present, rt, rs, width, fs.history, divide, source
            )
        elif name == "mkt_close":
            leaves[name] = (
                _session_lags(values, grid.mult, source, rs, width, divide)
                if proxy is not None
                else (np.full((rt.shape[0], width), np.nan))
            )
        else:
            leaves[name] = _session_lags(values, grid.mult, rt, rs, width, divide)
    return leaves


def _column(value: np.ndarray | float, frame: Frame) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return np.ascontiguousarray(value[:, 0])
    return np.full(frame.rows, value)


def alpha158(window: SessionWindow) -> pl.DataFrame:
    """Silver transform of the ``alpha158`` set."""
    return compute(feature_set("stocks_daily", "alpha158"), window)


def alpha360(window: SessionWindow) -> pl.DataFrame:
    """Silver transform of the ``alpha360`` set."""
    return compute(feature_set("stocks_daily", "alpha360"), window)


def ta(window: SessionWindow) -> pl.DataFrame:
    """Silver transform of the ``ta`` set."""
    return compute(feature_set("stocks_daily", "ta"), window)
