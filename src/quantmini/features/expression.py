"""Feature expressions in Qlib's syntax: parsed (never ``eval``-ed) into a small tree.

A feature is written as Qlib writes it — ``Mean($close, 5)/$close``, ``Corr($close, Log($volume+1), 20)`` —
over input series such as ``$close`` (see :mod:`quantmini.features.silver` for the series and their
share basis, :mod:`quantmini.features.evaluate` for the evaluation).

Window semantics follow Qlib's operators (``qlib/data/ops.py``) exactly:

* rolling statistics skip missing values and need one value (``min_periods=1``); a *strict* frame (the
  ``ta`` set) needs the whole window instead;
* ``Std`` is the sample deviation (ddof 1); ``Quantile`` interpolates linearly; ``Rank`` is the average
  percentile rank of the current value among the window's values;
* ``IdxMax``/``IdxMin`` are numpy's ``argmax + 1`` over the window oldest-first, so a missing value inside
  the series wins (numpy returns the first NaN), while rows before the series starts are not in the window;
* ``Slope``/``Rsquare``/``Resi`` fit the window's values against their positions ``1..N`` (latest at N);
  ``Rsquare`` and ``Corr`` are NaN where an input's rolling deviation is within 2e-5 of 0;
* comparisons (``$close>Ref($close, 1)``) are 0 or 1 — a missing operand compares false — inside the
  series, and absent before it starts.

A frame's ``absent`` positions lie before a series starts (Qlib: rows that do not exist); everything
before the last of them is outside every window.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from quantmini._exceptions import ConfigurationError

#: Rolling operators over one input.
ROLLING: tuple[str, ...] = ("Mean", "Sum", "Std", "StdP", "Var", "Max", "Min", "Quantile", "Rank")
ROLLING += ("IdxMax", "IdxMin", "Slope", "Rsquare", "Resi")
#: Rolling operators over two inputs.
PAIR = ("Corr", "Cov")
#: Recursive smoothers over every lag of the window (oldest first).
RECURSIVE = ("EMA", "RMA")
ELEMENTWISE = ("Log", "Abs", "Sign")
BINARY = ("Greater", "Less")

_LEAF = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


class Node:
    """An expression node; ``key`` identifies equal sub-expressions (evaluated once per frame)."""

    key: str

    def lookback(self) -> int | None:
        """Lags before the current one this node reads (``None``: the whole window, for recursions)."""
        raise NotImplementedError

    def leaves(self) -> Iterator[str]:
        """Names of the input series the node reads."""
        raise NotImplementedError


@dataclass(frozen=True)
class Leaf(Node):
    name: str
    key: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", f"${self.name}")

    def lookback(self) -> int | None:
        return 0

    def leaves(self) -> Iterator[str]:
        yield self.name


@dataclass(frozen=True)
class Const(Node):
    value: float
    key: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", repr(float(self.value)))

    def lookback(self) -> int | None:
        return 0

    def leaves(self) -> Iterator[str]:
        return iter(())


@dataclass(frozen=True)
class Apply(Node):
    """Element-wise: arithmetic, comparisons, ``Greater``/``Less``, ``Log``/``Abs``/``Sign``, ``Ref``."""

    op: str
    args: tuple[Node, ...]
    shift: int = 0
    key: str = field(init=False)

    def __post_init__(self) -> None:
        inner = ",".join(a.key for a in self.args)
        object.__setattr__(self, "key", f"{self.op}({inner}{f',{self.shift}' if self.op == 'Ref' else ''})")

    def lookback(self) -> int | None:
        backs = [a.lookback() for a in self.args]
        if any(b is None for b in backs):
            return None
        return max(b for b in backs if b is not None) + self.shift

    def leaves(self) -> Iterator[str]:
        for a in self.args:
            yield from a.leaves()


@dataclass(frozen=True)
class Roll(Node):
    """A rolling window of ``n`` lags (``Rolling``/``PAIR``) or a recursion (``RECURSIVE``)."""

    op: str
    args: tuple[Node, ...]
    n: int
    q: float | None = None
    key: str = field(init=False)

    def __post_init__(self) -> None:
        inner = ",".join(a.key for a in self.args)
        object.__setattr__(
            self, "key", f"{self.op}({inner},{self.n}{'' if self.q is None else f',{self.q}'})"
        )

    def lookback(self) -> int | None:
        if self.op in RECURSIVE:
            return None
        backs = [a.lookback() for a in self.args]
        if any(b is None for b in backs):
            return None
        return max(b for b in backs if b is not None) + self.n - 1

    def leaves(self) -> Iterator[str]:
        for a in self.args:
            yield from a.leaves()


@functools.lru_cache(maxsize=4096)
def parse(text: str) -> Node:
    """The expression tree of ``text`` (Qlib syntax); :class:`ConfigurationError` naming what is wrong.
    Trees are immutable, so each text is parsed once per process."""
    source = _LEAF.sub(r"__leaf_\1", text)
    try:
        tree = ast.parse(source, mode="eval").body
    except SyntaxError as exc:
        raise ConfigurationError(f"feature expression {text!r}: {exc.msg}") from None
    try:
        return _build(tree)
    except ConfigurationError as exc:
        raise ConfigurationError(f"feature expression {text!r}: {exc}") from None


_ARITHMETIC = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div"}
_COMPARE = {ast.Gt: "gt", ast.Lt: "lt", ast.GtE: "ge", ast.LtE: "le"}


def _int(node: ast.expr, what: str) -> int:
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and node.value > 0:
        return node.value
    raise ConfigurationError(f"{what} must be a positive integer")


def _build(node: ast.expr) -> Node:
    if isinstance(node, ast.Name) and node.id.startswith("__leaf_"):
        return Leaf(node.id.removeprefix("__leaf_"))
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return Const(float(node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return Apply("sub", (Const(0.0), _build(node.operand)))
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
        return Apply(_ARITHMETIC[type(node.op)], (_build(node.left), _build(node.right)))
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE:
        return Apply(_COMPARE[type(node.ops[0])], (_build(node.left), _build(node.comparators[0])))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        return _call(node.func.id, node.args)
    raise ConfigurationError(f"unsupported syntax {ast.unparse(node)!r}")


def _call(name: str, args: list[ast.expr]) -> Node:
    def arity(n: int) -> None:
        if len(args) != n:
            raise ConfigurationError(f"{name} takes {n} arguments, got {len(args)}")

    if name in ELEMENTWISE:
        arity(1)
        return Apply(name, (_build(args[0]),))
    if name in BINARY:
        arity(2)
        return Apply(name, (_build(args[0]), _build(args[1])))
    if name == "Ref":
        arity(2)
        return Apply("Ref", (_build(args[0]),), shift=_int(args[1], "Ref's offset"))
    if name == "Quantile":
        arity(3)
        q = args[2]
        if not (isinstance(q, ast.Constant) and isinstance(q.value, float) and 0 <= q.value <= 1):
            raise ConfigurationError("Quantile's level must be a number in [0, 1]")
        return Roll(name, (_build(args[0]),), _int(args[1], "the window"), float(q.value))
    if name in ROLLING or name in RECURSIVE:
        arity(2)
        return Roll(name, (_build(args[0]),), _int(args[1], "the window"))
    if name in PAIR:
        arity(3)
        return Roll(name, (_build(args[0]), _build(args[1])), _int(args[2], "the window"))
    raise ConfigurationError(f"unknown operator {name}")


#: Input series that are prices (scale with a split as a price does) and volumes (inversely).
PRICE_SERIES = frozenset({"open", "high", "low", "close", "vwap"})
VOLUME_SERIES = frozenset({"volume"})
#: The market proxy's series: in the proxy's own share basis.
MARKET_SERIES = frozenset({"mkt_close"})

_SAME = frozenset({"Abs", "Ref", "Mean", "Sum", "Max", "Min", "Quantile", "Std", "StdP", "Slope", "Resi"})
_SAME |= set(RECURSIVE)
_FREE = frozenset({"Rank", "IdxMax", "IdxMin", "Rsquare", "Corr", "Sign", "gt", "lt", "ge", "le"})


@dataclass(frozen=True, slots=True)
class Degree:
    """How a value scales when the share basis changes: ``price`` powers of the ticker's price scale
    (a volume is -1), ``market`` of the proxy's; ``exact`` is False when a term breaks the homogeneity
    (``Log($volume+1)``: the +1 does not scale), so the value depends slightly on the basis."""

    price: int
    market: int
    exact: bool = True


_ANY: Degree | None = None  # a constant takes the degree its context needs


def degree(node: Node) -> Degree | None:
    """The scaling of ``node`` (``None`` for a constant)."""
    if isinstance(node, Const):
        return _ANY
    if isinstance(node, Leaf):
        if node.name in VOLUME_SERIES:
            return Degree(-1, 0)
        return (
            Degree(0, 1) if node.name in MARKET_SERIES else Degree(1 if node.name in PRICE_SERIES else 0, 0)
        )
    assert isinstance(node, Apply | Roll)
    parts = [degree(a) for a in node.args]
    exact = all(p is None or p.exact for p in parts)
    known = [p for p in parts if p is not None]
    op = node.op
    if op in ("mul", "Cov", "div"):
        a, b = (part or Degree(0, 0) for part in parts)
        sign = -1 if op == "div" else 1
        return Degree(a.price + sign * b.price, a.market + sign * b.market, exact)
    if op == "Var":
        a = known[0] if known else Degree(0, 0)
        return Degree(2 * a.price, 2 * a.market, exact)
    if op == "Log":
        scale_free = not known or (known[0].price == 0 and known[0].market == 0)
        return Degree(0, 0, exact and scale_free)
    same = len({(p.price, p.market) for p in known}) <= 1
    if op in _FREE:
        return Degree(0, 0, exact and same)
    base = known[0] if known else Degree(0, 0)
    if op in _SAME and not same:
        return Degree(base.price, base.market, False)
    return Degree(base.price, base.market, exact and same)
