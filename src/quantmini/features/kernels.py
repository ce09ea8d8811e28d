"""Compiled window kernels: one pass per row over its lags (0 = current) serves every window of a group.

Each kernel walks a row's lags newest to oldest, accumulates what its statistic needs over the values
present (NaN skipped; lags at or beyond the row's ``span`` lie before the series and are never read) and
emits the statistic whenever the walk has covered one of the requested windows. A window needs one value,
or — ``strict`` — all of its values. Accumulation order is fixed per row, so results never depend on how
rows were grouped into a computation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba
import numpy as np

F = TypeVar("F", bound=Callable[..., Any])


def jit(fn: F) -> F:
    """Compile ``fn`` with numba (cached on disk beside the module; float errors give NaN/inf as numpy)."""
    return cast(F, numba.njit(cache=True, nogil=True, error_model="numpy")(fn))


SUM, MEAN, STD, VAR, STDP = 0, 1, 2, 3, 4
MAX, MIN = 0, 1
SLOPE, RSQUARE, RESI = 0, 1, 2
CORR, COV = 0, 1

#: Deviations at or below this make ``Rsquare`` and ``Corr`` NaN (Qlib: ``np.isclose(std, 0, atol=2e-5)``).
FLAT = 2e-5


@jit
def _moments(x: np.ndarray, windows: np.ndarray, span: np.ndarray, strict: bool, kind: int) -> np.ndarray:
    rows, width = x.shape
    out = np.full((rows, windows.shape[0]), np.nan)
    for i in range(rows):
        limit = min(span[i], width)
        n = 0
        total = 0.0
        mean = 0.0
        m2 = 0.0
        w = 0
        for j in range(windows[-1]):
            if j < limit:
                v = x[i, j]
                if not np.isnan(v):
                    n += 1
                    total += v
                    delta = v - mean
                    mean += delta / n
                    m2 += delta * (v - mean)
            if j + 1 == windows[w]:
                if n >= (windows[w] if strict else 1):
                    if kind == SUM:
                        out[i, w] = total
                    elif kind == MEAN:
                        out[i, w] = total / n
                    elif kind == STDP:
                        out[i, w] = np.sqrt(max(m2, 0.0) / n)
                    elif n >= 2:
                        var = max(m2, 0.0) / (n - 1)
                        out[i, w] = np.sqrt(var) if kind == STD else var
                w += 1
    return out


@jit
def _extreme(x: np.ndarray, windows: np.ndarray, span: np.ndarray, strict: bool, kind: int) -> np.ndarray:
    rows, width = x.shape
    out = np.full((rows, windows.shape[0]), np.nan)
    for i in range(rows):
        limit = min(span[i], width)
        n = 0
        best = 0.0
        w = 0
        for j in range(windows[-1]):
            if j < limit:
                v = x[i, j]
                if not np.isnan(v):
                    if n == 0 or (v > best if kind == MAX else v < best):
                        best = v
                    n += 1
            if j + 1 == windows[w]:
                if n >= (windows[w] if strict else 1):
                    out[i, w] = best
                w += 1
    return out


@jit
def _index_of_extreme(
    x: np.ndarray, windows: np.ndarray, span: np.ndarray, strict: bool, kind: int
) -> np.ndarray:
    """numpy's ``argmax + 1`` (or argmin) over the window taken oldest first: the first NaN wins, then the
    oldest of equal extremes; the window is cut where the series starts."""
    rows, width = x.shape
    out = np.full((rows, windows.shape[0]), np.nan)
    for i in range(rows):
        limit = min(span[i], width)
        n = 0
        best = 0.0
        best_lag = -1
        nan_lag = -1
        w = 0
        for j in range(windows[-1]):
            if j < limit:
                v = x[i, j]
                if np.isnan(v):
                    nan_lag = j
                else:
                    if n == 0 or (v >= best if kind == MAX else v <= best):
                        best = v
                        best_lag = j
                    n += 1
            if j + 1 == windows[w]:
                if n >= (windows[w] if strict else 1):
                    length = min(windows[w], limit)
                    lag = nan_lag if nan_lag >= 0 else best_lag
                    out[i, w] = length - lag
                w += 1
    return out


@jit
def _quantile(x: np.ndarray, windows: np.ndarray, span: np.ndarray, strict: bool, q: float) -> np.ndarray:
    rows, width = x.shape
    out = np.full((rows, windows.shape[0]), np.nan)
    buffer = np.empty(windows[-1])
    for i in range(rows):
        limit = min(span[i], width)
        n = 0
        w = 0
        for j in range(windows[-1]):
            if j < limit:
                v = x[i, j]
                if not np.isnan(v):
                    k = n  # insertion into the sorted buffer
                    while k > 0 and buffer[k - 1] > v:
                        buffer[k] = buffer[k - 1]
                        k -= 1
                    buffer[k] = v
                    n += 1
            if j + 1 == windows[w]:
                if n >= (windows[w] if strict else 1):
                    position = q * (n - 1)
                    low = int(np.floor(position))
                    high = min(low + 1, n - 1)
                    fraction = position - low
                    if fraction == 0.0:
                        out[i, w] = buffer[low]
                    else:
                        out[i, w] = buffer[low] + (buffer[high] - buffer[low]) * fraction
                w += 1
    return out


@jit
def _rank(x: np.ndarray, windows: np.ndarray, span: np.ndarray, strict: bool) -> np.ndarray:
    """Average percentile rank of the current value among the window's values (pandas ``rank(pct=True)``)."""
    rows, width = x.shape
    out = np.full((rows, windows.shape[0]), np.nan)
    for i in range(rows):
        limit = min(span[i], width)
        current = x[i, 0] if limit > 0 else np.nan
        n = 0
        less = 0
        equal = 0
        w = 0
        for j in range(windows[-1]):
            if j < limit:
                v = x[i, j]
                if not np.isnan(v):
                    n += 1
                    if v < current:
                        less += 1
                    elif v == current:
                        equal += 1
            if j + 1 == windows[w]:
                if not np.isnan(current) and n >= (windows[w] if strict else 1):
                    out[i, w] = (less + (equal + 1) / 2.0) / n
                w += 1
    return out


@jit
def _trend(x: np.ndarray, windows: np.ndarray, span: np.ndarray, strict: bool, kind: int) -> np.ndarray:
    """Least-squares line of the window's values against their positions (Qlib's ``Slope``, ``Rsquare``,
    ``Resi``): positions run 1..N oldest to newest, missing values are left out of the fit."""
    rows, width = x.shape
    out = np.full((rows, windows.shape[0]), np.nan)
    for i in range(rows):
        limit = min(span[i], width)
        current = x[i, 0] if limit > 0 else np.nan
        n = 0
        center = 0.0
        sj = 0.0
        sjj = 0.0
        sy = 0.0
        syy = 0.0
        sjy = 0.0
        mean = 0.0
        m2 = 0.0
        w = 0
        for j in range(windows[-1]):
            if j < limit:
                v = x[i, j]
                if not np.isnan(v):
                    if n == 0:
                        center = v
                    y = v - center
                    n += 1
                    sj += j
                    sjj += j * j
                    sy += y
                    syy += y * y
                    sjy += j * y
                    delta = v - mean
                    mean += delta / n
                    m2 += delta * (v - mean)
            if j + 1 == windows[w]:
                if n >= (windows[w] if strict else 1):
                    var_j = sjj - sj * sj / n
                    cov = sjy - sj * sy / n
                    slope = -cov / var_j  # positions count oldest to newest: the lag axis reversed
                    if kind == SLOPE:
                        out[i, w] = slope
                    elif kind == RSQUARE:
                        var_y = syy - sy * sy / n
                        flat = n >= 2 and np.sqrt(max(m2, 0.0) / (n - 1)) <= FLAT
                        out[i, w] = np.nan if flat else cov * cov / (var_j * var_y)
                    else:
                        out[i, w] = current - (center + sy / n + slope * (sj / n))
                w += 1
    return out


@jit
def _pair(
    x: np.ndarray, y: np.ndarray, windows: np.ndarray, span: np.ndarray, strict: bool, kind: int
) -> np.ndarray:
    """Correlation (Qlib: NaN where either input's own rolling deviation is flat) or sample covariance,
    over the lags where both inputs have a value."""
    rows, width = x.shape
    out = np.full((rows, windows.shape[0]), np.nan)
    for i in range(rows):
        limit = min(span[i], width)
        n = 0
        cx = 0.0
        cy = 0.0
        sx = 0.0
        sy = 0.0
        sxx = 0.0
        syy = 0.0
        sxy = 0.0
        nx = 0
        mx = 0.0
        m2x = 0.0
        ny = 0
        my = 0.0
        m2y = 0.0
        w = 0
        for j in range(windows[-1]):
            if j < limit:
                a = x[i, j]
                b = y[i, j]
                if not np.isnan(a):
                    nx += 1
                    d = a - mx
                    mx += d / nx
                    m2x += d * (a - mx)
                if not np.isnan(b):
                    ny += 1
                    d = b - my
                    my += d / ny
                    m2y += d * (b - my)
                if not np.isnan(a) and not np.isnan(b):
                    if n == 0:
                        cx = a
                        cy = b
                    u = a - cx
                    v = b - cy
                    n += 1
                    sx += u
                    sy += v
                    sxx += u * u
                    syy += v * v
                    sxy += u * v
            if j + 1 == windows[w]:
                if n >= 2 and n >= (windows[w] if strict else 1):
                    cov = sxy - sx * sy / n
                    if kind == COV:
                        out[i, w] = cov / (n - 1)
                    else:
                        flat_x = nx >= 2 and np.sqrt(max(m2x, 0.0) / (nx - 1)) <= FLAT
                        flat_y = ny >= 2 and np.sqrt(max(m2y, 0.0) / (ny - 1)) <= FLAT
                        if not (flat_x or flat_y):
                            out[i, w] = cov / np.sqrt((sxx - sx * sx / n) * (syy - sy * sy / n))
                w += 1
    return out


@jit
def _smooth(x: np.ndarray, n: int, span: np.ndarray, wilder: bool) -> np.ndarray:
    """Exponential smoothing from the oldest lag of the window to the newest, NaN inputs skipped.

    ``wilder``: Wilder's average (seed: the mean of the first ``n`` values, then ``(prev·(n-1) + x)/n``);
    else the EMA with ``α = 2/(n+1)`` seeded with the first value (pandas ``ewm(span=n, adjust=False)``).
    A value exists once ``n`` inputs have been seen.
    """
    rows, width = x.shape
    out = np.full((rows, width), np.nan)
    alpha = 2.0 / (n + 1.0)
    for i in range(rows):
        limit = min(span[i], width)
        count = 0
        state = 0.0
        for j in range(limit - 1, -1, -1):
            v = x[i, j]
            if np.isnan(v):
                continue
            count += 1
            if wilder:
                if count <= n:
                    state += v
                    if count == n:
                        state /= n
                else:
                    state = (state * (n - 1) + v) / n
            elif count == 1:
                state = v
            else:
                state = alpha * v + (1.0 - alpha) * state
            if count >= n:
                out[i, j] = state
    return out


def ema(x: np.ndarray, n: int, span: np.ndarray, strict: bool) -> np.ndarray:
    """EMA over each row's lags (see :func:`_smooth`)."""
    del strict
    return _smooth(x, n, span, False)


def rma(x: np.ndarray, n: int, span: np.ndarray, strict: bool) -> np.ndarray:
    """Wilder's moving average over each row's lags (see :func:`_smooth`)."""
    del strict
    return _smooth(x, n, span, True)


_MOMENTS = {"Sum": SUM, "Mean": MEAN, "Std": STD, "Var": VAR, "StdP": STDP}
_TRENDS = {"Slope": SLOPE, "Rsquare": RSQUARE, "Resi": RESI}


def rolling(
    op: str, inputs: list[np.ndarray], windows: np.ndarray, span: np.ndarray, strict: bool, q: float | None
) -> np.ndarray:
    """``rows × len(windows)``: ``op`` over each window (ascending) of each row's lags."""
    x = inputs[0]
    span = span.astype(np.int64, copy=False)
    if op in _MOMENTS:
        return _moments(x, windows, span, strict, _MOMENTS[op])
    if op in ("Max", "Min"):
        return _extreme(x, windows, span, strict, MAX if op == "Max" else MIN)
    if op in ("IdxMax", "IdxMin"):
        return _index_of_extreme(x, windows, span, strict, MAX if op == "IdxMax" else MIN)
    if op == "Quantile":
        assert q is not None
        return _quantile(x, windows, span, strict, q)
    if op == "Rank":
        return _rank(x, windows, span, strict)
    if op in _TRENDS:
        return _trend(x, windows, span, strict, _TRENDS[op])
    return _pair(x, inputs[1], windows, span, strict, CORR if op == "Corr" else COV)
