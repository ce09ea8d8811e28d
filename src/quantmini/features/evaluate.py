"""Evaluation of parsed feature expressions over series (see :mod:`.expression`).

A :class:`Frame` holds each input series as a ``rows × positions`` array (one row per ticker, oldest
position first) and which positions lie before a ticker's series starts. Element-wise operators are numpy
on whole arrays, ``Ref`` shifts along a row, and rolling operators run the compiled kernels of
:mod:`.kernels`, every window of one operator and input in one call (``MA5``..``MA60`` share it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from quantmini._exceptions import ConfigurationError
from quantmini.features import kernels
from quantmini.features.expression import RECURSIVE, Apply, Const, Leaf, Node, Roll

_ELEMENTWISE: dict[str, Callable[[Any], Any]] = {"Log": np.log, "Abs": np.abs, "Sign": np.sign}
_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.divide,
    "Greater": np.maximum,
    "Less": np.minimum,
}
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "gt": np.greater,
    "lt": np.less,
    "ge": np.greater_equal,
    "le": np.less_equal,
}

Group = tuple[str, str, float | None]


@dataclass
class Frame:
    """Input series (name → ``rows × positions`` float64, NaN where missing), ``absent`` (positions before
    the series starts) and ``strict`` (rolling windows must be full, else one value suffices)."""

    leaves: Mapping[str, np.ndarray]
    absent: np.ndarray
    strict: bool = False
    #: Per row and position, the earliest position a window may reach (``None``: the row's start).
    lo: np.ndarray | None = None
    #: Per (operator, input keys, q): every window the features ask for (computed in one kernel call).
    windows: Mapping[Group, tuple[int, ...]] = field(default_factory=dict)
    #: Sub-expressions that several features share: kept once computed (the others are not).
    shared: frozenset[str] = frozenset()
    #: Per input, the quantile levels asked for (see :func:`levels_of`).
    levels: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    cache: dict[str, Any] = field(default_factory=dict)

    def bounds(self) -> np.ndarray:
        """:attr:`lo`, or zeros (each window may reach its row's start), made once."""
        if self.lo is None:
            self.lo = np.zeros(self.absent.shape, dtype=np.int64)
        return self.lo


def _every_node(nodes: list[Node]) -> Iterator[Node]:
    """Every node of every tree, each occurrence."""
    stack = list(nodes)
    while stack:
        node = stack.pop()
        yield node
        stack.extend(getattr(node, "args", ()))


def windows_of(nodes: list[Node]) -> dict[Group, tuple[int, ...]]:
    """Rolling windows grouped by operator and input, so one kernel call serves ``MA5``..``MA60``."""
    found: dict[Group, set[int]] = {}
    for node in _every_node(nodes):
        if isinstance(node, Roll) and node.op not in RECURSIVE:
            found.setdefault(_group(node), set()).add(node.n)
    return {k: tuple(sorted(v)) for k, v in found.items()}


def shared_of(nodes: list[Node]) -> frozenset[str]:
    """Keys of the sub-expressions that occur more than once among ``nodes``."""
    seen: dict[str, int] = {}

    def walk(node: Node) -> None:
        seen[node.key] = seen.get(node.key, 0) + 1
        if seen[node.key] == 1:
            for child in getattr(node, "args", ()):
                walk(child)

    for node in nodes:
        walk(node)
    return frozenset(k for k, n in seen.items() if n > 1)


#: Rolling operators read from one sorted copy of each window, in one kernel call per input.
ORDERED = ("Quantile", "Rank")


def _group(node: Roll) -> Group:
    inputs = ",".join(a.key for a in node.args)
    return ("Ordered", inputs, None) if node.op in ORDERED else (node.op, inputs, node.q)


def levels_of(nodes: list[Node]) -> dict[str, tuple[float, ...]]:
    """Per input, the quantile levels the features ask for (one ordered pass serves them all)."""
    found: dict[str, set[float]] = {}
    for node in _every_node(nodes):
        if isinstance(node, Roll) and node.op == "Quantile" and node.q is not None:
            found.setdefault(",".join(a.key for a in node.args), set()).add(node.q)
    return {k: tuple(sorted(v)) for k, v in found.items()}


def evaluate(node: Node, frame: Frame) -> np.ndarray | float:
    """Values of ``node`` at every position of every row, or a scalar for a constant."""
    if isinstance(node, Const):
        return node.value
    cached: np.ndarray | None = frame.cache.get(node.key)
    if cached is None:
        cached = _evaluate(node, frame)
        if node.key in frame.shared:
            frame.cache[node.key] = cached
    return cached


def _array(value: np.ndarray | float, frame: Frame) -> np.ndarray:
    return value if isinstance(value, np.ndarray) else np.full(frame.absent.shape, value)


def _evaluate(node: Node, frame: Frame) -> np.ndarray:
    if isinstance(node, Leaf):
        data = frame.leaves.get(node.name)
        if data is None:
            known = ", ".join(f"${name}" for name in sorted(frame.leaves))
            raise ConfigurationError(f"no input series ${node.name} (inputs: {known})")
        return data
    if isinstance(node, Apply):
        return _apply(node, frame)
    assert isinstance(node, Roll)
    if node.op in RECURSIVE:
        return kernels.smooth(node.op, _array(evaluate(node.args[0], frame), frame), node.n)
    group = _group(node)
    windows = frame.windows.get(group, (node.n,))
    if node.n not in windows:
        windows = (node.n,)
    key = f"{group}@{windows}"
    levels = frame.levels.get(group[1], ()) if group[0] == "Ordered" else ()
    if node.q is not None and node.q not in levels:  # a level the set's declarations did not list
        levels, key = (*levels, node.q), f"{key}@{node.q}"
    table = frame.cache.get(key)
    if table is None:
        inputs = [_array(evaluate(a, frame), frame) for a in node.args]
        windows_array = np.array(windows, dtype=np.int64)
        table = kernels.rolling(
            group[0], inputs, frame.absent, frame.bounds(), windows_array, frame.strict, levels
        )
        frame.cache[key] = table
    result: np.ndarray = table[windows.index(node.n)]
    if group[0] == "Ordered":
        result = result[0 if node.op == "Rank" else 1 + levels.index(node.q)]
    return result


def _apply(node: Apply, frame: Frame) -> np.ndarray:
    op = node.op
    if op == "Ref":
        x = _array(evaluate(node.args[0], frame), frame)
        shifted = np.full_like(x, np.nan)
        if node.shift < x.shape[1]:
            shifted[:, node.shift :] = x[:, : x.shape[1] - node.shift]
        return shifted
    values = [evaluate(a, frame) for a in node.args]
    with np.errstate(all="ignore"):
        if op in _ELEMENTWISE:
            return _array(_ELEMENTWISE[op](values[0]), frame)
        if op in _BINARY:
            return _array(_BINARY[op](*values), frame)
        # comparisons: 0/1 inside the series (NaN compares false), absent before it
        compared = _COMPARE[op](*values).astype(np.float64)
        return np.where(frame.absent, np.nan, compared)
