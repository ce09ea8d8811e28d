"""Evaluation of parsed feature expressions over a block of output rows (see :mod:`.expression`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from quantmini._exceptions import ConfigurationError
from quantmini.features import kernels
from quantmini.features.expression import BINARY, ELEMENTWISE, RECURSIVE, Apply, Const, Leaf, Node, Roll

_ELEMENTWISE: dict[str, Callable[[Any], Any]] = {"Log": np.log, "Abs": np.abs, "Sign": np.sign}
_BINARY: dict[str, Callable[[Any, Any], Any]] = {"Greater": np.maximum, "Less": np.minimum}


@dataclass
class Frame:
    """What a block of output rows is evaluated on.

    ``leaves``: name → ``rows × width`` float64 (lag 0 first, NaN where missing); ``span``: per row, the
    lags that lie inside the series; ``strict``: rolling windows must be full (else one value suffices).
    """

    leaves: Mapping[str, np.ndarray]
    span: np.ndarray
    strict: bool = False
    cache: dict[tuple[str, int], Any] = field(default_factory=dict)
    #: Per (operator, input keys, q): every window the features of the set ask for (computed in one pass).
    windows: Mapping[tuple[str, str, float | None], tuple[int, ...]] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return int(self.span.shape[0])

    @property
    def width(self) -> int:
        return min(int(a.shape[1]) for a in self.leaves.values())


def windows_of(nodes: list[Node]) -> dict[tuple[str, str, float | None], tuple[int, ...]]:
    """Rolling windows grouped by operator and input, so one kernel pass serves ``MA5``..``MA60``."""
    found: dict[tuple[str, str, float | None], set[int]] = {}

    def walk(node: Node) -> None:
        if isinstance(node, Roll) and node.op not in RECURSIVE:
            found.setdefault(_group(node), set()).add(node.n)
        for child in getattr(node, "args", ()):
            walk(child)

    for node in nodes:
        walk(node)
    return {k: tuple(sorted(v)) for k, v in found.items()}


def _group(node: Roll) -> tuple[str, str, float | None]:
    return node.op, ",".join(a.key for a in node.args), node.q


def evaluate(node: Node, frame: Frame, width: int = 1) -> np.ndarray | float:
    """Values of ``node`` at lags ``0..width-1`` (``rows × width``), or a scalar for a constant."""
    if isinstance(node, Const):
        return node.value
    cached: np.ndarray | None = frame.cache.get((node.key, width))
    if cached is not None:
        return cached
    value = _evaluate(node, frame, width)
    frame.cache[(node.key, width)] = value
    return value


def _matrix(value: np.ndarray | float, frame: Frame, width: int) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    return np.full((frame.rows, width), value)


def _leaf(frame: Frame, name: str, width: int) -> np.ndarray:
    data = frame.leaves.get(name)
    if data is None:
        raise ConfigurationError(f"no input series ${name} (inputs: {', '.join(sorted(frame.leaves))})")
    if width <= data.shape[1]:
        return data[:, :width]
    pad = np.full((data.shape[0], width - data.shape[1]), np.nan)
    return np.hstack([data, pad])


def _absent(frame: Frame, width: int) -> np.ndarray:
    """``rows × width``: True where a lag lies before the series starts."""
    return np.arange(width)[None, :] >= frame.span[:, None]


def _evaluate(node: Node, frame: Frame, width: int) -> np.ndarray:
    if isinstance(node, Leaf):
        return _leaf(frame, node.name, width)
    if isinstance(node, Apply):
        return _apply(node, frame, width)
    assert isinstance(node, Roll)
    if node.op in RECURSIVE:
        full = max(width, frame.width)
        x = np.ascontiguousarray(_matrix(evaluate(node.args[0], frame, full), frame, full))
        smooth = kernels.ema if node.op == "EMA" else kernels.rma
        return smooth(x, node.n, frame.span, frame.strict)[:, :width]
    if width == 1:
        return _rolling_now(node, frame)
    columns = []
    for lag in range(width):  # a rolling value of an earlier lag: the same window, shifted
        shifted = Frame({k: v[:, lag:] for k, v in frame.leaves.items()}, np.maximum(frame.span - lag, 0))
        shifted.strict = frame.strict
        columns.append(_rolling_now(node, shifted)[:, 0])
    return np.stack(columns, axis=1)


def _apply(node: Apply, frame: Frame, width: int) -> np.ndarray:
    op = node.op
    if op == "Ref":
        x = _matrix(evaluate(node.args[0], frame, width + node.shift), frame, width + node.shift)
        return x[:, node.shift : node.shift + width]
    values = [evaluate(a, frame, width) for a in node.args]
    if op in ELEMENTWISE:
        with np.errstate(all="ignore"):
            return _matrix(_ELEMENTWISE[op](values[0]), frame, width)
    with np.errstate(all="ignore"):
        a, b = values
        if op in ("add", "sub", "mul", "div"):
            result = _ARITH_FN[op](a, b)
        elif op in BINARY:
            result = _BINARY[op](a, b)
        else:  # comparisons: 0/1 inside the series (NaN compares false), absent before it
            result = np.where(_absent(frame, width), np.nan, _COMPARE_FN[op](a, b).astype(np.float64))
    return _matrix(result, frame, width)


_ARITH_FN: dict[str, Callable[[Any, Any], Any]] = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.divide,
}
_COMPARE_FN: dict[str, Callable[[Any, Any], Any]] = {
    "gt": np.greater,
    "lt": np.less,
    "ge": np.greater_equal,
    "le": np.less_equal,
}


def _rolling_now(node: Roll, frame: Frame) -> np.ndarray:
    """``rows × 1``: the rolling value at the current lag, every window of its group in one pass."""
    group = _group(node)
    windows = frame.windows.get(group, (node.n,))
    if node.n not in windows:
        windows = (node.n,)
    key = ("|".join(map(str, group)) + f"@{windows}", -1)
    table = frame.cache.get(key)
    if table is None:
        longest = max(windows)
        inputs = [
            np.ascontiguousarray(_matrix(evaluate(a, frame, longest), frame, longest)) for a in node.args
        ]
        table = kernels.rolling(
            node.op, inputs, np.array(windows, dtype=np.int64), frame.span, frame.strict, node.q
        )
        frame.cache[key] = table
    return table[:, windows.index(node.n)][:, None]
