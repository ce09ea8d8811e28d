"""Compiled rolling kernels over series: ``rows × positions`` arrays, one row per ticker, oldest first.

Every kernel walks each row once, keeping the state of each requested window as it slides (running sums,
monotonic queues, a sorted copy of the window), so a window costs O(1) or O(log n) per position whatever
its length. Missing values (NaN, and infinities: pandas reads them as missing) are skipped; positions
flagged ``absent`` lie before the series starts (Qlib: rows that do not exist) and are skipped too, and
they cut the window for ``IdxMax``/``IdxMin``. A window never reaches before ``lo`` (the earliest
position of a row's window at each position). A window's statistic needs one value, or — ``strict`` —
every value of the window. The output holds the statistic at every position for every window
(``windows × rows × positions``).
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
def _needed(n: int, d: int, strict: bool) -> bool:
    return n >= d if strict else n >= 1


@jit
def _first_value(row: np.ndarray) -> float:
    """A row's first finite value (the centre its sums are taken around, for precision)."""
    for v in row:
        if np.isfinite(v):
            return float(v)
    return 0.0


@jit
def _plus(total: float, carry: float, x: float) -> tuple[float, float]:
    """Neumaier's compensated addition: ``total + carry`` keeps what plain sums lose, so a window that
    held millions of shares and now holds a few has the deviation of the few (pandas' running sums
    keep a residue of the millions there)."""
    t = total + x
    if abs(total) >= abs(x):
        carry += (total - t) + x
    else:
        carry += (x - t) + total
    return t, carry


@jit
def _moment_step(u: float, sign: float, c: float, sums: np.ndarray) -> None:
    """Add (``sign`` 1) or remove (-1) value ``u`` to compensated sums ``s1 k1 s2 k2`` around ``c``."""
    y = sign * (u - c)
    sums[0], sums[1] = _plus(sums[0], sums[1], y)
    sums[2], sums[3] = _plus(sums[2], sums[3], sign * (u - c) * (u - c))


@jit
def _moments(
    x: np.ndarray, absent: np.ndarray, lo: np.ndarray, windows: np.ndarray, strict: bool, kind: int
) -> np.ndarray:
    """Sum, mean, sample or population deviation, variance, from compensated running sums; exact
    (deviation 0) over a run of equal values."""
    rows, size = x.shape
    out = np.full((windows.shape[0], rows, size), np.nan)
    sums = np.zeros(4)  # s1, its carry, s2, its carry
    for w in range(windows.shape[0]):
        d = windows[w]
        for i in range(rows):
            c = _first_value(x[i])
            n = 0
            sums[:] = 0.0
            start = 0
            run_value = np.nan
            run_count = 0  # values since the current run of equal values began
            since = 0
            cut = -1
            for p in range(size):
                v = x[i, p]
                if absent[i, p]:
                    cut = p
                elif np.isfinite(v):
                    n += 1
                    _moment_step(v, 1.0, c, sums)
                    if v != run_value:
                        run_value = v
                        run_count = 0
                    run_count += 1
                target = max(p - d + 1, lo[i, p], cut + 1)
                while start < target:
                    u = x[i, start]
                    if not absent[i, start] and np.isfinite(u):
                        n -= 1
                        _moment_step(u, -1.0, c, sums)
                    start += 1
                if n == 0:
                    sums[:] = 0.0  # no drift carried across an empty window
                since += 1
                if since >= d and np.isfinite(v) and not absent[i, p]:
                    # Once a window has turned over, sum it again around its newest value: deviations
                    # are then never taken around a value far from the window's (shares after millions).
                    since = 0
                    c = v
                    sums[:] = 0.0
                    for o in range(start, p + 1):
                        if not absent[i, o] and np.isfinite(x[i, o]):
                            _moment_step(x[i, o], 1.0, c, sums)
                if not _needed(n, d, strict):
                    continue
                flat = run_count >= n  # every value of the window is in the run
                a1 = sums[0] + sums[1]
                if kind == SUM:
                    out[w, i, p] = n * run_value if flat else a1 + n * c
                elif kind == MEAN:
                    out[w, i, p] = run_value if flat else c + a1 / n
                else:
                    m2 = 0.0 if flat else max((sums[2] + sums[3]) - a1 * a1 / n, 0.0)
                    if kind == STDP:
                        out[w, i, p] = np.sqrt(m2 / n)
                    elif n >= 2:
                        out[w, i, p] = np.sqrt(m2 / (n - 1)) if kind == STD else m2 / (n - 1)
    return out


@jit
def _extremes(
    x: np.ndarray,
    absent: np.ndarray,
    lo: np.ndarray,
    windows: np.ndarray,
    strict: bool,
    kind: int,
    index: bool,
) -> np.ndarray:
    """Rolling max/min (``kind``), or — ``index`` — numpy's ``argmax + 1`` (``argmin``) over the window taken
    oldest first: the oldest NaN wins, then the oldest of equal extremes; the window is cut after the last
    absent position."""
    rows, size = x.shape
    out = np.full((windows.shape[0], rows, size), np.nan)
    queue = np.empty(size, dtype=np.int64)  # positions of candidate extremes, oldest first
    nans = np.empty(size, dtype=np.int64)  # positions of NaN inside the series, oldest first
    for w in range(windows.shape[0]):
        d = windows[w]
        for i in range(rows):
            head = 0
            tail = 0
            nan_head = 0
            nan_tail = 0
            n = 0
            start = 0
            cut = -1  # the last absent position
            for p in range(size):
                v = x[i, p]
                if absent[i, p]:
                    cut = p
                elif not np.isfinite(v):  # pandas reads an infinity as missing
                    nans[nan_tail] = p
                    nan_tail += 1
                else:
                    n += 1
                    if kind == MAX:
                        while tail > head and x[i, queue[tail - 1]] < v:
                            tail -= 1
                    else:
                        while tail > head and x[i, queue[tail - 1]] > v:
                            tail -= 1
                    queue[tail] = p
                    tail += 1
                target = max(p - d + 1, lo[i, p], cut + 1)
                while start < target:
                    u = x[i, start]
                    if not absent[i, start] and np.isfinite(u):
                        n -= 1
                    start += 1
                first = start
                while tail > head and queue[head] < first:
                    head += 1
                while nan_tail > nan_head and nans[nan_head] < first:
                    nan_head += 1
                if not _needed(n, d, strict):
                    continue
                if not index:
                    out[w, i, p] = x[i, queue[head]]
                elif nan_tail > nan_head:
                    out[w, i, p] = nans[nan_head] - first + 1
                else:
                    out[w, i, p] = queue[head] - first + 1
    return out


@jit
def _insert(buffer: np.ndarray, n: int, v: float) -> None:
    """Insert ``v`` into the sorted ``buffer[:n]``."""
    k = n
    while k > 0 and buffer[k - 1] > v:
        buffer[k] = buffer[k - 1]
        k -= 1
    buffer[k] = v


@jit
def _remove(buffer: np.ndarray, n: int, v: float) -> None:
    """Remove one ``v`` from the sorted ``buffer[:n]``."""
    k = np.searchsorted(buffer[:n], v)
    for j in range(k, n - 1):
        buffer[j] = buffer[j + 1]


@jit
def _ordered(
    x: np.ndarray, absent: np.ndarray, lo: np.ndarray, windows: np.ndarray, strict: bool, qs: np.ndarray
) -> np.ndarray:
    """From a sorted copy of each window: the average percentile rank of the current value (pandas
    ``rank(pct=True)``) at statistic 0, then the linear-interpolated quantiles ``qs`` (pandas)."""
    rows, size = x.shape
    out = np.full((windows.shape[0], 1 + qs.shape[0], rows, size), np.nan)
    for w in range(windows.shape[0]):
        d = windows[w]
        buffer = np.empty(size + 1)
        for i in range(rows):
            n = 0
            start = 0
            cut = -1
            for p in range(size):
                v = x[i, p]
                here = not absent[i, p] and np.isfinite(v)
                if absent[i, p]:
                    cut = p
                if here:
                    _insert(buffer, n, v)
                    n += 1
                target = max(p - d + 1, lo[i, p], cut + 1)
                while start < target:
                    u = x[i, start]
                    if not absent[i, start] and np.isfinite(u):
                        _remove(buffer, n, u)
                        n -= 1
                    start += 1
                if not _needed(n, d, strict):
                    continue
                if here:
                    less = np.searchsorted(buffer[:n], v)
                    equal = np.searchsorted(buffer[:n], v, side="right") - less
                    out[w, 0, i, p] = (less + (equal + 1) / 2.0) / n
                for k in range(qs.shape[0]):
                    position = qs[k] * (n - 1)
                    low = int(np.floor(position))
                    high = min(low + 1, n - 1)
                    fraction = position - low
                    value = buffer[low]
                    if fraction != 0.0:
                        value = value + (buffer[high] - buffer[low]) * fraction
                    out[w, 1 + k, i, p] = value
    return out


@jit
def _trend_step(u: float, q: float, sign: float, c: float, sums: np.ndarray) -> None:
    """Add (``sign`` 1) or remove (-1) value ``u`` at position ``q``: ``n sq sqq sy syy sqy`` around ``c``."""
    y = u - c
    sums[0] += sign
    sums[1] += sign * q
    sums[2] += sign * q * q
    sums[3] += sign * y
    sums[4] += sign * y * y
    sums[5] += sign * q * y


@jit
def _trend(
    x: np.ndarray, absent: np.ndarray, lo: np.ndarray, windows: np.ndarray, strict: bool, kind: int
) -> np.ndarray:
    """Least-squares line of the window's values against their positions (Qlib's ``Slope``, ``Rsquare``,
    ``Resi``), missing values left out of the fit."""
    rows, size = x.shape
    out = np.full((windows.shape[0], rows, size), np.nan)
    sums = np.zeros(6)
    for w in range(windows.shape[0]):
        d = windows[w]
        for i in range(rows):
            c = _first_value(x[i])
            q0 = 0  # positions are counted from q0, values from c
            sums[:] = 0.0
            start = 0
            since = 0
            cut = -1
            for p in range(size):
                v = x[i, p]
                if absent[i, p]:
                    cut = p
                elif np.isfinite(v):
                    _trend_step(v, p - q0, 1.0, c, sums)
                target = max(p - d + 1, lo[i, p], cut + 1)
                while start < target:
                    if not absent[i, start] and np.isfinite(x[i, start]):
                        _trend_step(x[i, start], start - q0, -1.0, c, sums)
                    start += 1
                since += 1
                if sums[0] == 0 or (since >= d and np.isfinite(v) and not absent[i, p]):
                    # Sum the window again around its newest value and position once it has turned
                    # over: running sums then carry no round-off from values that left long ago.
                    since = 0
                    q0 = p
                    c = v if np.isfinite(v) else c
                    sums[:] = 0.0
                    for o in range(start, p + 1):
                        if not absent[i, o] and np.isfinite(x[i, o]):
                            _trend_step(x[i, o], o - q0, 1.0, c, sums)
                n = int(sums[0])
                if not _needed(n, d, strict):
                    continue
                sq, sqq, sy, syy, sqy = sums[1], sums[2], sums[3], sums[4], sums[5]
                var_q = sqq - sq * sq / n
                cov = sqy - sq * sy / n
                slope = cov / var_q if n >= 2 else np.nan  # one point: 0/0 in Qlib, whatever the residue
                if kind == SLOPE:
                    out[w, i, p] = slope
                elif kind == RSQUARE:
                    var_y = max(syy - sy * sy / n, 0.0)
                    flat = n >= 2 and np.sqrt(var_y / (n - 1)) <= FLAT
                    out[w, i, p] = np.nan if flat or n < 2 else cov * cov / (var_q * var_y)
                else:
                    out[w, i, p] = (v - c) - (sy / n + slope * ((p - q0) - sq / n))
    return out


@jit
def _pair_step(
    x: np.ndarray, y: np.ndarray, i: int, o: int, sign: int, cx: float, cy: float, sums: np.ndarray
) -> None:
    """Add (``sign`` 1) or remove (-1) position ``o`` of row ``i``: ``n sx sy sxx syy sxy`` over complete
    pairs, then each input's own ``n s ss``."""
    a = x[i, o] - cx
    b = y[i, o] - cy
    if np.isfinite(a):
        sums[6] += sign
        sums[7] += sign * a
        sums[8] += sign * a * a
    if np.isfinite(b):
        sums[9] += sign
        sums[10] += sign * b
        sums[11] += sign * b * b
    if np.isfinite(a) and np.isfinite(b):
        sums[0] += sign
        sums[1] += sign * a
        sums[2] += sign * b
        sums[3] += sign * a * a
        sums[4] += sign * b * b
        sums[5] += sign * a * b


@jit
def _flat(n: float, s: float, ss: float) -> bool:
    """Whether a rolling sample deviation is within :data:`FLAT` of 0 (Qlib's ``np.isclose`` mask)."""
    return n >= 2 and np.sqrt(max(ss - s * s / n, 0.0) / (n - 1)) <= FLAT


@jit
def _pair(
    x: np.ndarray,
    y: np.ndarray,
    absent: np.ndarray,
    lo: np.ndarray,
    windows: np.ndarray,
    strict: bool,
    kind: int,
) -> np.ndarray:
    """Correlation (Qlib: NaN where either input's own rolling deviation is flat) or sample covariance,
    over the positions where both inputs have a value."""
    rows, size = x.shape
    out = np.full((windows.shape[0], rows, size), np.nan)
    sums = np.zeros(12)
    for w in range(windows.shape[0]):
        d = windows[w]
        for i in range(rows):
            cx = _first_value(x[i])
            cy = _first_value(y[i])
            sums[:] = 0.0
            start = 0
            since = 0
            cut = -1
            for p in range(size):
                if absent[i, p]:
                    cut = p
                else:
                    _pair_step(x, y, i, p, 1, cx, cy, sums)
                target = max(p - d + 1, lo[i, p], cut + 1)
                while start < target:
                    if not absent[i, start]:
                        _pair_step(x, y, i, start, -1, cx, cy, sums)
                    start += 1
                since += 1
                if since >= d and np.isfinite(x[i, p]) and np.isfinite(y[i, p]) and not absent[i, p]:
                    since = 0  # sum the turned-over window again around its newest values
                    cx, cy = x[i, p], y[i, p]
                    sums[:] = 0.0
                    for o in range(start, p + 1):
                        if not absent[i, o]:
                            _pair_step(x, y, i, o, 1, cx, cy, sums)
                n = sums[0]
                if n < 2 or not _needed(int(n), d, strict):
                    continue
                cov = sums[5] - sums[1] * sums[2] / n
                if kind == COV:
                    out[w, i, p] = cov / (n - 1)
                elif not (_flat(sums[6], sums[7], sums[8]) or _flat(sums[9], sums[10], sums[11])):
                    var_x = max(sums[3] - sums[1] * sums[1] / n, 0.0)
                    var_y = max(sums[4] - sums[2] * sums[2] / n, 0.0)
                    out[w, i, p] = cov / np.sqrt(var_x * var_y)
    return out


@jit
def _smooth(x: np.ndarray, n: int, wilder: bool) -> np.ndarray:
    """Exponential smoothing along each row, NaN inputs skipped (the state carries over them).

    ``wilder``: Wilder's average (seed: the mean of the first ``n`` values, then ``(prev·(n-1) + x)/n``);
    else the EMA with ``α = 2/(n+1)`` seeded with the first value (pandas ``ewm(span=n, adjust=False)``).
    A value exists once ``n`` inputs have been seen.
    """
    rows, size = x.shape
    out = np.full((rows, size), np.nan)
    alpha = 2.0 / (n + 1.0)
    for i in range(rows):
        count = 0
        state = 0.0
        for p in range(size):
            v = x[i, p]
            if not np.isfinite(v):
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
                out[i, p] = state
    return out


def smooth(op: str, x: np.ndarray, n: int) -> np.ndarray:
    """``EMA`` or ``RMA`` (Wilder) of each row (see :func:`_smooth`)."""
    return _smooth(np.ascontiguousarray(x), n, op == "RMA")


_MOMENTS = {"Sum": SUM, "Mean": MEAN, "Std": STD, "Var": VAR, "StdP": STDP}
_TRENDS = {"Slope": SLOPE, "Rsquare": RSQUARE, "Resi": RESI}


def rolling(
    op: str,
    inputs: list[np.ndarray],
    absent: np.ndarray,
    lo: np.ndarray,
    windows: np.ndarray,
    strict: bool,
    levels: tuple[float, ...] = (),
) -> np.ndarray:
    """``windows × rows × positions``: ``op`` over each window of each row, a window never reaching before
    ``lo`` (``Ordered``: ``windows × statistics × rows × positions``, the rank then the quantiles at
    ``levels``)."""
    x = np.ascontiguousarray(inputs[0])
    if op in _MOMENTS:
        return _moments(x, absent, lo, windows, strict, _MOMENTS[op])
    if op in ("Max", "Min", "IdxMax", "IdxMin"):
        return _extremes(
            x, absent, lo, windows, strict, MAX if op in ("Max", "IdxMax") else MIN, op.startswith("Idx")
        )
    if op == "Ordered":
        return _ordered(x, absent, lo, windows, strict, np.array(levels, dtype=np.float64))
    if op in _TRENDS:
        return _trend(x, absent, lo, windows, strict, _TRENDS[op])
    y = np.ascontiguousarray(inputs[1])
    return _pair(x, y, absent, lo, windows, strict, CORR if op == "Corr" else COV)
