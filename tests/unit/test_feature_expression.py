"""Feature expressions: the parser, lookbacks and the window kernels against hand-worked or numpy answers.

A frame here is built from rows written oldest first that all end at the same, current position (the
last); a row shorter than the others starts later, so the positions before its first value are absent.
Expected values are computed window by window: the window of ``n`` ending at a position reaches back
``n - 1`` positions, never before the row's bound ``lo``, absent positions left out.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

from quantmini import ConfigurationError
from quantmini.features.evaluate import Frame, evaluate, levels_of, shared_of, windows_of
from quantmini.features.expression import (
    BINARY,
    ELEMENTWISE,
    PAIR,
    RECURSIVE,
    ROLLING,
    Apply,
    Const,
    Leaf,
    Roll,
    parse,
)
from quantmini.features.library import sets_of

NAN = np.nan


def frame(
    rows: list[list[float]],
    strict: bool = False,
    lo: list[list[int]] | None = None,
    **more: list[list[float]],
) -> Frame:
    """``$close`` (and the series of ``more``) from rows written oldest first, each ending at the current
    (last) position; a shorter row starts later, the positions before it absent."""
    width = max(len(r) for r in rows)
    starts = np.array([width - len(r) for r in rows])

    def matrix(values: list[list[float]]) -> np.ndarray:
        out = np.full((len(values), width), NAN)
        for i, row in enumerate(values):
            out[i, width - len(row) :] = row
        return out

    leaves = {"close": matrix(rows), **{name: matrix(values) for name, values in more.items()}}
    absent = np.arange(width)[None, :] < starts[:, None]
    bounds = None if lo is None else np.asarray(lo, dtype=np.int64)
    return Frame(leaves, absent, strict=strict, lo=bounds)


def values(text: str, f: Frame) -> np.ndarray:
    """``text`` at every position of every row."""
    result = evaluate(parse(text), f)
    assert isinstance(result, np.ndarray)
    assert result.shape == f.absent.shape
    return result


def current(text: str, f: Frame) -> np.ndarray:
    """``text`` at the current (last) position of every row."""
    return values(text, f)[:, -1]


def close(
    got: np.ndarray,
    expected: npt.ArrayLike,
    rtol: float = 1e-12,
    atol: float = 1e-14,
) -> None:
    np.testing.assert_allclose(got, np.asarray(expected, dtype=float), rtol=rtol, atol=atol, equal_nan=True)


# ---------------------------------------------------------------------------------------------- parser


def test_leaves_constants_arithmetic_and_comparisons_parse_into_nodes() -> None:
    node = parse("($close-$open)/($high-$low+1e-12)")
    assert isinstance(node, Apply)
    assert node.op == "div"
    assert sorted(set(node.leaves())) == ["close", "high", "low", "open"]
    assert parse("2*$close").key == "mul(2.0,$close)"
    assert parse("-$close").key == "sub(0.0,$close)"
    assert parse("$a+$b-$c*$d/$e").key == "sub(add($a,$b),div(mul($c,$d),$e))"
    for text, op in (("$a>$b", "gt"), ("$a<$b", "lt"), ("$a>=$b", "ge"), ("$a<=$b", "le")):
        assert parse(text).key == f"{op}($a,$b)"
    assert isinstance(parse("$close"), Leaf)
    assert isinstance(parse("3"), Const)


@pytest.mark.parametrize("name", ROLLING)
def test_every_rolling_operator_parses_with_its_window(name: str) -> None:
    text = f"{name}($close, 5, 0.3)" if name == "Quantile" else f"{name}($close, 5)"
    node = parse(text)
    assert isinstance(node, Roll)
    assert (node.op, node.n, node.q) == (name, 5, 0.3 if name == "Quantile" else None)
    assert list(node.leaves()) == ["close"]


@pytest.mark.parametrize("name", PAIR)
def test_every_pair_operator_parses_with_both_inputs(name: str) -> None:
    node = parse(f"{name}($close, Log($volume+1), 20)")
    assert isinstance(node, Roll)
    assert (node.op, node.n) == (name, 20)
    assert list(node.leaves()) == ["close", "volume"]


@pytest.mark.parametrize("name", RECURSIVE)
def test_every_recursive_operator_parses(name: str) -> None:
    node = parse(f"{name}($close, 12)")
    assert isinstance(node, Roll)
    assert (node.op, node.n) == (name, 12)


@pytest.mark.parametrize(("name", "arity"), [*((n, 1) for n in ELEMENTWISE), *((n, 2) for n in BINARY)])
def test_every_elementwise_operator_parses(name: str, arity: int) -> None:
    node = parse(f"{name}({', '.join(['$close', '$open'][:arity])})")
    assert isinstance(node, Apply)
    assert node.op == name
    assert len(node.args) == arity


def test_ref_keeps_its_offset() -> None:
    node = parse("Ref($close, 3)")
    assert isinstance(node, Apply)
    assert (node.op, node.shift, node.key) == ("Ref", 3, "Ref($close,3)")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Foo($close, 5)", "unknown operator Foo"),
        ("Mean($close)", "Mean takes 2 arguments, got 1"),
        ("Mean($close, 5, 6)", "Mean takes 2 arguments, got 3"),
        ("Corr($close, 5)", "Corr takes 3 arguments, got 2"),
        ("Quantile($close, 5)", "Quantile takes 3 arguments, got 2"),
        ("Log($close, 2)", "Log takes 1 arguments, got 2"),
        ("Greater($close)", "Greater takes 2 arguments, got 1"),
        ("Ref($close)", "Ref takes 2 arguments, got 1"),
        ("Mean($close, 0)", "the window must be a positive integer"),
        ("Mean($close, 2.5)", "the window must be a positive integer"),
        ("Mean($close, $open)", "the window must be a positive integer"),
        ("Ref($close, -1)", "Ref's offset must be a positive integer"),
        ("Quantile($close, 5, 2)", "Quantile's level must be a number in [0, 1]"),
        ("Quantile($close, 5, 1.5)", "Quantile's level must be a number in [0, 1]"),
        ("Mean($close, N=5)", "unsupported syntax"),
        ("$close ** 2", "unsupported syntax"),
        ("1 < $close < 2", "unsupported syntax"),
        ("$close == $open", "unsupported syntax"),
        ("'close'", "unsupported syntax"),
        ("Mean($close, 5", "'(' was never closed"),
        ("$close +", "invalid syntax"),
    ],
)
def test_errors_name_the_expression_and_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse(text)
    assert str(caught.value).startswith(f"feature expression {text!r}: ")
    assert message in str(caught.value)


def test_an_unknown_input_series_is_an_error_naming_the_inputs() -> None:
    with pytest.raises(ConfigurationError, match=re.escape("no input series $foo (inputs: $close)")):
        evaluate(parse("$foo/$close"), frame([[1.0, 2.0]]))


# -------------------------------------------------------------------------------------------- lookbacks


@pytest.mark.parametrize(
    ("text", "lookback"),
    [
        ("$close", 0),
        ("1", 0),
        ("$close/$open", 0),
        ("Ref($close, 3)", 3),
        ("Mean($close, 5)", 4),
        ("Ref(Mean($close, 5), 3)", 7),
        ("Mean(Ref($close, 3), 5)", 7),
        ("Mean(Mean($close, 5), 10)", 13),
        ("Corr($close/Ref($close,1), Log($volume/Ref($volume, 1)+1), 60)", 60),
        ("Max($high, 20)/$close - Ref($close, 30)", 30),
        ("EMA($close, 12)", None),
        ("Mean(EMA($close, 12), 5)", None),
        ("EMA($close, 12)-Ref($close, 5)", None),
    ],
)
def test_lookback_counts_the_positions_before_the_current_one(text: str, lookback: int | None) -> None:
    assert parse(text).lookback() == lookback


def test_every_library_definition_parses_and_fits_its_sets_history() -> None:
    longest = {}
    for data_type in ("stocks_daily", "stocks_minute"):
        for fs in sets_of(data_type).values():
            backs = [parse(f.expression).lookback() for f in fs.features if f.expression is not None]
            assert len(set(fs.names)) == len(fs.names), fs.name
            if backs:
                known = [b for b in backs if b is not None]
                longest[fs.name] = max(known)
                assert max(known) <= fs.history, fs.name
    # Qlib's longest lookbacks: CORD60 reads 61 closes; Alpha360 reads 60 sessions.
    assert longest == {"alpha158": 60, "alpha360": 59, "ta": 252}


# ---------------------------------------------------------------------------- kernels against numpy

#: Operators whose window is cut after its last absent position (numpy's argmax over what exists).
EXTREMES = ("Max", "Min", "IdxMax", "IdxMin")


def window_of(
    f: Frame, name: str, i: int, p: int, n: int, cut: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Values (NaN included) and positions of the window of ``n`` ending at position ``p`` of row ``i``,
    oldest first: from ``p - n + 1`` or the row's bound ``lo``, whichever is later, absent positions left
    out (``cut``: only the positions after the window's last absent one)."""
    start = max(p - n + 1, 0 if f.lo is None else int(f.lo[i, p]))
    positions = np.arange(start, p + 1)
    gone = f.absent[i, start : p + 1]
    last = np.flatnonzero(gone)[-1] if cut and gone.any() else None
    positions = positions[~gone] if last is None else positions[last + 1 :]
    return f.leaves[name][i, positions], positions


def _present(w: np.ndarray) -> np.ndarray:
    present: np.ndarray = w[~np.isnan(w)]
    return present


def _fit(w: np.ndarray, q: np.ndarray, v: float) -> tuple[float, float, float]:
    """Slope, R² and the current value's residual of the least-squares line through the window's values
    against their positions."""
    ok = ~np.isnan(w)
    if ok.sum() < 2:
        return NAN, NAN, NAN
    slope, intercept = np.polyfit(q[ok].astype(float), w[ok], 1)
    flat = np.std(w[ok], ddof=1) <= 2e-5  # Qlib masks R² where the values' deviation is within 2e-5 of 0
    rsquare = NAN if flat else np.corrcoef(q[ok], w[ok])[0, 1] ** 2
    return slope, rsquare, v - (intercept + slope * q[-1])


def _rank(w: np.ndarray, v: float) -> float:
    return NAN if np.isnan(v) else float(pd.Series(_present(w)).rank(pct=True).iloc[-1])


#: Independent answers: the operator over a window (values oldest first, NaN included; their positions;
#: the current value) that holds at least one value.
NUMPY: dict[str, Callable[[np.ndarray, np.ndarray, float], float]] = {
    "Mean": lambda w, q, v: np.mean(_present(w)),
    "Sum": lambda w, q, v: math.fsum(_present(w)),
    "Std": lambda w, q, v: np.std(_present(w), ddof=1) if len(_present(w)) > 1 else NAN,
    "StdP": lambda w, q, v: np.std(_present(w)),
    "Var": lambda w, q, v: np.var(_present(w), ddof=1) if len(_present(w)) > 1 else NAN,
    "Max": lambda w, q, v: np.max(_present(w)),
    "Min": lambda w, q, v: np.min(_present(w)),
    "Quantile": lambda w, q, v: np.quantile(_present(w), 0.3),
    "Rank": lambda w, q, v: _rank(w, v),
    "IdxMax": lambda w, q, v: float(np.argmax(w) + 1),
    "IdxMin": lambda w, q, v: float(np.argmin(w) + 1),
    "Slope": lambda w, q, v: _fit(w, q, v)[0],
    "Rsquare": lambda w, q, v: _fit(w, q, v)[1],
    "Resi": lambda w, q, v: _fit(w, q, v)[2],
}

#: Rows of different lengths (later starts), with missing values inside, ties and a flat stretch.
ROWS = [
    [10.0, 11.5, NAN, 12.0, 11.0, 13.5, 12.0, 14.0, NAN, 13.0, 15.0, 14.5],
    [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0],
    [NAN, 2.0, 2.0, 7.0, 1.0, 8.0],
    [5.0, NAN, 6.0],
    [4.0],
    [NAN, NAN, NAN, 2.5],
    [2.0, 3.0, NAN],
]

#: Per row of ``ROWS`` and position, the earliest position a window may reach (non-decreasing, at most
#: the position itself): blocks of three or four positions, shifted per row.
LO = [[max(0, p - (p + i) % (3 + i % 2)) for p in range(12)] for i in range(len(ROWS))]


def expected(op: str, n: int, f: Frame) -> np.ndarray:
    """``op`` over every window of ``$close`` in ``f``, computed window by window."""
    out = np.full(f.absent.shape, NAN)
    for i, p in np.ndindex(*f.absent.shape):
        w, q = window_of(f, "close", i, p, n, cut=op in EXTREMES)
        count = len(_present(w))
        if count and not (f.strict and count < n):
            v = NAN if f.absent[i, p] else float(f.leaves["close"][i, p])
            out[i, p] = NUMPY[op](w, q, v)
    return out


def _text(op: str, n: int) -> str:
    return f"{op}($close, {n}, 0.3)" if op == "Quantile" else f"{op}($close, {n})"


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("op", NUMPY)
def test_rolling_operators_match_numpy_on_every_window(op: str, strict: bool) -> None:
    for n in (1, 2, 3, 5, 12):
        f = frame(ROWS, strict)
        with np.errstate(all="ignore"):
            close(values(_text(op, n), f), expected(op, n, f), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("op", NUMPY)
def test_lo_bounds_every_window(op: str, strict: bool) -> None:
    for n in (2, 3, 5, 12):
        f = frame(ROWS, strict, lo=LO)
        with np.errstate(all="ignore"):
            answer = expected(op, n, f)
            close(values(_text(op, n), f), answer, rtol=1e-10, atol=1e-12)
        if n == 5:  # the bound binds: windows differ from the unbounded ones
            with np.errstate(all="ignore"):
                unbounded = expected(op, n, frame(ROWS, strict))
            assert not np.allclose(answer, unbounded, equal_nan=True), (op, n)


def test_lo_makes_a_window_start_at_its_bound() -> None:
    f = frame([[1.0, 2.0, 4.0, 8.0, 16.0, 32.0]], lo=[[0, 0, 0, 2, 2, 4]])
    # Window of 3 ending at 3: from max(1, 2) = 2 -> (4, 8); at 4: from 2 -> (4, 8, 16); at 5: from 4.
    close(values("Mean($close, 3)", f), [[1.0, 1.5, 7 / 3, 6.0, 28 / 3, 24.0]])
    close(
        values("Max($close, 3)", frame([[9.0, 2.0, 4.0, 8.0, 1.0, 3.0]], lo=[[0, 0, 0, 2, 2, 4]])),
        [[9, 9, 9, 8, 8, 3]],
    )


def test_windows_levels_and_shared_parts_computed_once_equal_each_alone() -> None:
    texts = [f"{op}($close, {n})" for op in ("Mean", "Std", "IdxMax", "Slope", "Rank") for n in (2, 3, 5, 12)]
    texts += [f"Quantile($close, {n}, {q})" for n in (3, 5) for q in (0.1, 0.5, 0.9)]
    texts += [
        "Mean($close/Ref($close, 1), 3)",
        "Std($close/Ref($close, 1), 5)",
        "Quantile($close/Ref($close, 1), 5, 0.5)",
    ]
    nodes = [parse(t) for t in texts]
    assert windows_of(nodes)[("Mean", "$close", None)] == (2, 3, 5, 12)
    assert windows_of(nodes)[("Ordered", "$close", None)] == (2, 3, 5, 12)
    assert levels_of(nodes)["$close"] == (0.1, 0.5, 0.9)
    assert "div($close,Ref($close,1))" in shared_of(nodes)
    for strict in (False, True):
        plain = frame(ROWS, strict, lo=LO)
        grouped = Frame(
            plain.leaves,
            plain.absent,
            strict,
            lo=plain.lo,
            windows=windows_of(nodes),
            shared=shared_of(nodes),
            levels=levels_of(nodes),
        )
        for text, node in zip(texts, nodes, strict=True):
            alone = evaluate(node, frame(ROWS, strict, lo=LO))
            assert isinstance(alone, np.ndarray)
            np.testing.assert_array_equal(evaluate(node, grouped), alone, err_msg=text)


def pair_expected(f: Frame, n: int, op: str) -> np.ndarray:
    out = np.full(f.absent.shape, NAN)
    for i, p in np.ndindex(*f.absent.shape):
        wx, _ = window_of(f, "close", i, p, n)
        wy, _ = window_of(f, "other", i, p, n)
        both = ~np.isnan(wx) & ~np.isnan(wy)
        if both.sum() < 2 or (f.strict and both.sum() < n):
            continue
        if op == "Cov":
            out[i, p] = np.cov(wx[both], wy[both], ddof=1)[0, 1]
        else:
            flat = any(len(_present(w)) > 1 and np.std(_present(w), ddof=1) <= 2e-5 for w in (wx, wy))
            out[i, p] = NAN if flat else np.corrcoef(wx[both], wy[both])[0, 1]
    return out


PAIR_X = [[1.0, 2.0, NAN, 4.0, 3.0, 5.0], [2.0, 1.0, 3.0], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [7.0, 7.0]]
PAIR_Y = [
    [2.0, NAN, 1.0, 3.0, 2.5, 4.0],
    [1.0, 1.5, 0.5],
    [1.0, 1.000001, 1.0, 1.000001, 1.0, 1.0],
    [1.0, 3.0],
]


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("op", PAIR)
def test_pair_operators_use_the_positions_where_both_have_a_value(op: str, strict: bool) -> None:
    for lo in (None, [[0, 0, 1, 1, 3, 3]] * 4):
        f = frame(PAIR_X, strict, lo=lo, other=PAIR_Y)
        for n in (2, 3, 6):
            with np.errstate(all="ignore"):
                answer = pair_expected(f, n, op)
            assert n == 6 or np.isfinite(answer).any()
            close(values(f"{op}($close, $other, {n})", f), answer)


# ------------------------------------------------------------------------- positions and precision


def _random_rows(size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A price-like random walk and a volume-like series, each with a few missing values."""
    rng = np.random.default_rng(seed)
    price = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, size)))
    volume = rng.lognormal(13, 0.5, size)
    price[rng.random(size) < 0.05] = NAN
    volume[rng.random(size) < 0.05] = NAN
    return price, volume


ALL_ROLLING = [_text(op, 0).replace("0", "{n}", 1) for op in NUMPY]
ALL_ROLLING += ["Corr($close, $other, {n})", "Cov($close, $other, {n})"]

#: Operators from running sums of squares and products: re-summed around a recent value each time a window
#: has turned over, they agree with the same window of a row that starts elsewhere to round-off of the
#: window's own values (relative 1e-9, absolute 1e-9 for values near 0 such as a residual).
IMPRECISE = ("Std", "StdP", "Var", "Slope", "Rsquare", "Resi", "Corr", "Cov")


@pytest.mark.parametrize("text", ALL_ROLLING)
def test_a_long_row_equals_the_same_positions_of_a_row_that_starts_later(text: str) -> None:
    tolerance = (1e-9, 1e-9) if text.split("(")[0] in IMPRECISE else (1e-12, 1e-14)
    size, later = 400, 150
    price, volume = _random_rows(size, 7)
    # Row 0: the whole series. Row 1: starts at `later` (NaN and absent before). Row 2: the same values
    # before `later` but absent. Row 3: every value, windows bounded at `later`.
    absent = np.zeros((4, size), dtype=np.bool_)
    absent[1:3, :later] = True
    leaves = {"close": np.tile(price, (4, 1)), "other": np.tile(volume, (4, 1))}
    for series in leaves.values():
        series[1, :later] = NAN
    lo = np.zeros((4, size), dtype=np.int64)
    lo[3] = np.minimum(np.arange(size), later)
    f = Frame(leaves, absent, lo=lo)
    for n in (5, 20, 60):
        got = values(text.format(n=n), f)
        assert np.isfinite(got[0, later:]).sum() > (size - later) // 2
        # Windows inside the later row: as those of the whole series (running sums start elsewhere).
        for row in (1, 2, 3):
            close(got[row, later + n - 1 :], got[0, later + n - 1 :], *tolerance)
        # Windows that reach the later start: the same in the three later rows.
        for row in (2, 3):
            close(got[row, later:], got[1, later:], *tolerance)


@pytest.mark.parametrize(
    "text",
    [
        *ALL_ROLLING,
        "EMA($close, {n})",
        "RMA($close, {n})",
        "Ref(Mean($close, {n}), 3)",
        "$close>Ref($close, {n})",
    ],
)
def test_a_value_never_depends_on_later_positions(text: str) -> None:
    price, volume = _random_rows(300, 11)
    earlier, later = 200, 300
    for n in (5, 20, 60):
        node = parse(text.format(n=n))
        results = []
        for size in (earlier, later):
            leaves = {"close": price[None, :size].copy(), "other": volume[None, :size].copy()}
            absent = np.zeros((1, size), dtype=np.bool_)
            absent[0, :10] = True
            result = evaluate(node, Frame(leaves, absent))
            assert isinstance(result, np.ndarray)
            results.append(result)
        assert np.isfinite(results[0]).sum() > earlier // 2
        np.testing.assert_array_equal(results[1][:, :earlier], results[0], err_msg=text)


RUN = [144.86, 6.92, 85.24, 85.24, 85.24, 85.24]


def test_a_run_of_equal_values_has_no_deviation_and_an_exact_mean_and_sum() -> None:
    # Running sums over (144.86, 6.92, 85.24, ...) leave a residue; a window inside the run must not.
    rows = [RUN, [1e6, 3.7, 0.1, 0.1, NAN, 0.1], [0.1, 0.1, 0.1, 0.1], [2.5, 2.5]]
    f = frame(rows)
    checked = 0
    for n in (1, 2, 3, 4):
        got = {op: values(f"{op}($close, {n})", f) for op in ("Std", "StdP", "Var", "Mean", "Sum")}
        for i, p in np.ndindex(*f.absent.shape):
            w, _ = window_of(f, "close", i, p, n)
            run = _present(w)
            if len(run) == 0 or np.any(run != run[0]):
                continue
            checked += len(run) > 1
            where = f"row {i} position {p} window {n}"
            assert got["Mean"][i, p] == run[0], where
            assert got["Sum"][i, p] == math.fsum(run), where
            assert got["StdP"][i, p] == 0.0, where
            if len(run) > 1:
                assert got["Std"][i, p] == 0.0, where
                assert got["Var"][i, p] == 0.0, where
    assert checked == 22  # windows of two values or more inside a run


def test_a_run_of_equal_values_after_a_missing_value_has_no_deviation() -> None:
    f = frame([[144.86, 6.92, NAN, 85.24, 85.24, 85.24]])
    got = {op: current(f"{op}($close, 4)", f)[0] for op in ("Std", "StdP", "Var", "Mean", "Sum")}
    assert got == {"Std": 0.0, "StdP": 0.0, "Var": 0.0, "Mean": 85.24, "Sum": math.fsum([85.24] * 3)}


_CUT_SCRIPT = """
import json
import numpy as np
from quantmini.features.evaluate import Frame, evaluate
from quantmini.features.expression import parse
x = np.array([[1.0, 3.0, 2.0, 4.0], [4.0, 5.0, np.nan, np.nan], [5.0, np.nan, 3.0, 1.0]])
absent = np.array([[False] * 4, [False, False, True, True], [False, True, False, False]])
out = {op: evaluate(parse(op + "($close, 2)"), Frame({"close": x}, absent)).tolist()
       for op in ("Max", "Min", "IdxMax", "IdxMin")}
print(json.dumps(out))
"""


def test_a_window_whose_values_all_lie_before_an_absent_position_is_missing() -> None:
    # Run apart: the faulty read can crash the interpreter. Row 1 ends in absent positions (as a bars
    # frame pads a ticker with fewer bars); row 2 has one inside.
    ran = subprocess.run([sys.executable, "-c", _CUT_SCRIPT], capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, f"exit {ran.returncode}: {ran.stderr[-500:]}"
    got = json.loads(ran.stdout)
    x = np.array([[1.0, 3.0, 2.0, 4.0], [4.0, 5.0, NAN, NAN], [5.0, NAN, 3.0, 1.0]])
    absent = np.array([[False] * 4, [False, False, True, True], [False, True, False, False]])
    f = Frame({"close": x}, absent)
    for op in EXTREMES:
        close(np.array(got[op]), expected(op, 2, f))


# ------------------------------------------------------------------------------------------ edge cases


@pytest.mark.parametrize("op", [*NUMPY, "Corr", "Cov"])
def test_an_all_missing_window_is_missing(op: str) -> None:
    f = frame([[1.0, 2.0, NAN, NAN, NAN]], other=[[1.0, 2.0, NAN, NAN, NAN]])
    text = {
        "Quantile": "Quantile($close, 3, 0.5)",
        "Corr": "Corr($close, $other, 3)",
        "Cov": "Cov($close, $other, 3)",
    }
    assert np.isnan(current(text.get(op, f"{op}($close, 3)"), f)[0])


def test_a_window_of_one_value() -> None:
    f = frame([[NAN, 7.0, NAN]])
    got = {op: current(f"{op}($close, 3)", f)[0] for op in ("Mean", "Sum", "Max", "StdP", "IdxMax", "IdxMin")}
    # IdxMax: numpy returns the first NaN of the window (oldest first: NaN, 7, NaN), the oldest value.
    assert got == {"Mean": 7.0, "Sum": 7.0, "Max": 7.0, "StdP": 0.0, "IdxMax": 1.0, "IdxMin": 1.0}
    for op in ("Std", "Var", "Slope", "Rsquare", "Resi", "Rank"):  # Rank: the current value is missing
        assert np.isnan(current(f"{op}($close, 3)", f)[0]), op
    one = frame([[2.0, NAN, 5.0]])
    assert current("Rank($close, 2)", one)[0] == 1.0
    assert current("IdxMax($close, 2)", one)[0] == 1.0  # oldest first: NaN, 5 -> the NaN
    assert np.isnan(current("Slope($close, 2)", one)[0])
    assert np.isnan(current("Std($close, 2)", one)[0])


def test_ties_go_to_the_oldest_for_idxmax_and_average_for_rank() -> None:
    f = frame([[1.0, 3.0, 3.0, 2.0], [3.0, 1.0, 3.0]])
    close(current("IdxMax($close, 4)", f), [2.0, 1.0])
    close(current("IdxMin($close, 4)", frame([[2.0, 1.0, 1.0, 3.0]])), [2.0])
    # 3 among (1, 3, 3, 2): 2 below, 2 equal -> (2 + 1.5) / 4; among (3, 1, 3): (1 + 1.5) / 3.
    close(current("Rank($close, 4)", frame([[1.0, 3.0, 2.0, 3.0], [3.0, 1.0, 3.0]])), [0.875, 2.5 / 3])


def test_idxmax_returns_the_first_missing_value_inside_the_series_but_ignores_positions_before_it() -> None:
    # Oldest first: 1, NaN, 5, 2 -> numpy's argmax is the NaN (position 2), not the 5 (position 3).
    f = frame([[1.0, NAN, 5.0, 2.0], [NAN, 4.0, NAN, 9.0, 2.0]])
    close(current("IdxMax($close, 4)", f), [2.0, 2.0])
    close(current("IdxMin($close, 4)", f), [2.0, 2.0])
    # A row that starts two positions later: its window holds its own two values only (no missing value).
    late = frame([[1.0, NAN, 5.0, 2.0], [5.0, 2.0]])
    close(values("IdxMax($close, 4)", late), [[1.0, 2.0, 2.0, 2.0], [NAN, NAN, 1.0, 1.0]])
    close(values("IdxMin($close, 4)", late), [[1.0, 2.0, 2.0, 2.0], [NAN, NAN, 1.0, 2.0]])


def test_strict_windows_need_every_value() -> None:
    rows = [[1.0, 2.0, 3.0], [1.0, NAN, 3.0], [2.0, 3.0]]
    close(values("Mean($close, 3)", frame(rows)), [[1.0, 1.5, 2.0], [1.0, 1.0, 2.0], [NAN, 2.0, 2.5]])
    close(values("Mean($close, 3)", frame(rows, strict=True)), [[NAN, NAN, 2.0], [NAN] * 3, [NAN] * 3])
    close(values("Max($close, 2)", frame(rows, strict=True)), [[NAN, 2.0, 3.0], [NAN] * 3, [NAN, NAN, 3.0]])


def _ema(row: list[float], n: int) -> np.ndarray:
    """pandas' ``ewm(span=n, adjust=False)`` over a row's values (missing ones left out), a value once
    ``n`` were seen."""
    series = pd.Series(row)
    known = series.dropna()
    smoothed = known.ewm(span=n, adjust=False).mean()
    smoothed.iloc[: n - 1] = NAN
    out: np.ndarray = smoothed.reindex(series.index).to_numpy()
    return out


def _wilder(row: list[float] | np.ndarray, n: int) -> np.ndarray:
    """Wilder's average over a row's values (missing ones left out): the mean of the first ``n``, then
    ``(previous·(n-1) + x)/n``."""
    out = np.full(len(row), NAN)
    seen: list[float] = []
    state = NAN
    for p, v in enumerate(row):
        if np.isnan(v):
            continue
        seen.append(float(v))
        if len(seen) == n:
            state = sum(seen) / n
        elif len(seen) > n:
            state = (state * (n - 1) + v) / n
        out[p] = state
    return out


def test_ema_is_pandas_ewm_seeded_with_the_first_value() -> None:
    rows = [[1.0, 2.0, 3.0, 4.0, 5.0], [1.0, NAN, 2.0, 3.0, 4.0, 5.0], [1.0, 2.0]]
    # α = 0.5: 1, 1.5, 2.25, 3.125, 4.0625; a missing input is skipped (the state carries over).
    answer = [[NAN, NAN, NAN, 2.25, 3.125, 4.0625], [NAN, NAN, NAN, 2.25, 3.125, 4.0625], [NAN] * 6]
    close(values("EMA($close, 3)", frame(rows)), answer)
    series = [5.0, 3.0, 8.0, NAN, 1.0, 4.0, 6.0, NAN, 2.0, 7.0, 3.0]
    got = values("EMA($close, 4)", frame([series, series[2:]]))  # the second row starts two positions later
    close(got, [_ema(series, 4), np.concatenate([[NAN, NAN], _ema(series[2:], 4)])])
    assert list(np.isfinite(got).sum(axis=1)) == [6, 4]
    # Strictness does not apply: a value exists once n inputs were seen.
    close(values("EMA($close, 3)", frame(rows, strict=True)), answer)


def test_rma_is_wilders_average_seeded_with_the_mean_of_the_first_n() -> None:
    # Seed mean(1, 2, 3) = 2, then (2·2 + 4)/3 = 8/3, then (8/3·2 + 5)/3 = 31/9.
    rows = [[1.0, 2.0, 3.0, 4.0, 5.0], [1.0, 2.0, NAN, 3.0, 4.0, 5.0], [1.0, 2.0, 3.0], [1.0, 2.0]]
    close(current("RMA($close, 3)", frame(rows)), [31 / 9, 31 / 9, 2.0, NAN])
    answer = [
        [NAN, NAN, NAN, 2.0, 8 / 3, 31 / 9],
        [NAN, NAN, NAN, 2.0, 8 / 3, 31 / 9],
        [NAN] * 5 + [2.0],
        [NAN] * 6,
    ]
    close(values("RMA($close, 3)", frame(rows)), answer)
    close(values("RMA($close, 3)", frame(rows)), [_wilder([NAN] * (6 - len(r)) + r, 3) for r in rows])


def test_the_rsi_of_a_row_is_seeded_at_the_first_position_of_its_row() -> None:
    closes = [44.0, 44.3, 44.1, 44.5, 43.9, 44.6, 45.2, 45.0, 45.6, 46.1]

    def rsi(row: list[float]) -> np.ndarray:
        change = np.diff(row)
        gain, loss = np.maximum(change, 0), np.maximum(-change, 0)
        return np.concatenate([[NAN], 100 - 100 / (1 + _wilder(gain, 4) / _wilder(loss, 4))])

    answer, late = rsi(closes), rsi(closes[3:])
    assert (np.isfinite(answer).sum(), np.isfinite(late).sum()) == (6, 3)
    text = "100-100/(1+RMA(Greater($close-Ref($close, 1), 0), 4)/RMA(Greater(Ref($close, 1)-$close, 0), 4))"
    # A row that starts three positions later is seeded at its own first position.
    close(values(text, frame([closes, closes[3:]])), [answer, np.concatenate([[NAN] * 3, late])])
    assert not np.isclose(answer[-1], late[-1])


def test_a_rolling_value_at_an_earlier_position_uses_that_positions_window() -> None:
    rows = [[1.0, 2.0, 4.0, 8.0, 16.0, 32.0], [1.0, 2.0, 4.0], [5.0]]
    # Mean of 3 two sessions back: (2, 4, 8); the second row starts at its 1 -> (1); the third: nothing.
    close(current("Ref(Mean($close, 3), 2)", frame(rows)), [14 / 3, 1.0, NAN])
    close(current("Ref(Mean($close, 3), 2)", frame(rows, strict=True)), [14 / 3, NAN, NAN])
    close(values("Ref(Mean($close, 3), 2)", frame(rows))[0], [NAN, NAN, 1.0, 1.5, 7 / 3, 14 / 3])
    # A rolling statistic of a rolling statistic: Mean of the 2-session means at the last three positions.
    close(current("Mean(Mean($close, 2), 3)", frame(rows)), [(48 + 24 + 12) / 2 / 3, (3 + 1.5 + 1) / 3, 5.0])
    close(current("Max($close - Ref(Mean($close, 2), 1), 2)", frame(rows)), [32 - 12, 4 - 1.5, NAN])


def test_comparisons_are_zero_on_a_missing_operand_and_absent_before_the_series() -> None:
    rows = [[1.0, 2.0, NAN, 3.0, 2.0], [4.0, 5.0]]
    # Row 1, oldest first: (1>NaN)=0, 2>1=1, NaN>2=0, 3>NaN=0, 2>3=0 -> 1 up in 5; row 2: 0, 1 -> 1 in 2.
    close(
        values("$close>Ref($close, 1)", frame(rows)), [[0.0, 1.0, 0.0, 0.0, 0.0], [NAN, NAN, NAN, 0.0, 1.0]]
    )
    close(current("Mean($close>Ref($close, 1), 5)", frame(rows)), [0.2, 0.5])
    close(current("Sum($close<Ref($close, 1), 5)", frame(rows)), [1.0, 0.0])
    close(values("$close>=Ref($close, 1)", frame([[2.0, 2.0], [3.0, 2.0]])), [[0.0, 1.0], [0.0, 0.0]])
    close(values("$close<=Ref($close, 1)", frame([[2.0, 2.0], [3.0]])), [[0.0, 1.0], [NAN, 0.0]])


def test_elementwise_operators_propagate_missing_values() -> None:
    f = frame([[4.0, -2.0], [NAN, 3.0], [1.0, NAN]])
    close(current("Greater($close, Ref($close, 1))", f), [4.0, NAN, NAN])
    close(current("Less($close, Ref($close, 1))", f), [-2.0, NAN, NAN])
    close(values("Abs($close)", f), [[4.0, 2.0], [NAN, 3.0], [1.0, NAN]])
    close(values("Sign($close)", f), [[1.0, -1.0], [NAN, 1.0], [1.0, NAN]])
    close(current("Log(Abs($close))", f), [np.log(2.0), np.log(3.0), NAN])
    close(values("Greater($close, 0)+1", f), [[5.0, 1.0], [NAN, 4.0], [2.0, NAN]])
    assert evaluate(parse("3"), f) == 3.0  # a constant stays a number


def test_rsquare_and_corr_are_missing_on_a_flat_window() -> None:
    flat = [10.0, 10.00001, 10.0, 10.00001, 10.0]  # std ~5.5e-6, within Qlib's 2e-5 of 0
    assert np.isnan(current("Rsquare($close, 5)", frame([flat]))[0])
    f = frame([flat], other=[[1.0, 2.0, 3.0, 5.0, 4.0]])
    assert np.isnan(current("Corr($close, $other, 5)", f)[0])
    assert np.isnan(current("Corr($other, $close, 5)", f)[0])
    # Cov is not masked: its sample value.
    close(current("Cov($close, $other, 5)", f), [np.cov(flat, [1.0, 2.0, 3.0, 5.0, 4.0])[0, 1]])
    steep = [10.0, 10.1, 10.0, 10.1, 10.0]
    close(current("Rsquare($close, 5)", frame([steep])), [np.corrcoef(np.arange(5), steep)[0, 1] ** 2])
