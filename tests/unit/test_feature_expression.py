"""Feature expressions: the parser, lookbacks and the window kernels against hand-worked or numpy answers.

A frame here is built from rows written oldest first (the last value is the current session, lag 0); a
row shorter than the others starts later (its ``span`` is its length), so the lags before it are absent.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from quantmini import ConfigurationError
from quantmini.features.evaluate import Frame, evaluate, windows_of
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


def frame(rows: list[list[float]], strict: bool = False, **more: list[list[float]]) -> Frame:
    """``$close`` (and the series of ``more``) from rows written oldest first; span = a row's length."""
    width = max(len(r) for r in rows)

    def matrix(values: list[list[float]]) -> np.ndarray:
        out = np.full((len(values), width), NAN)
        for i, row in enumerate(values):
            out[i, : len(row)] = row[::-1]
        return out

    leaves = {"close": matrix(rows), **{name: matrix(values) for name, values in more.items()}}
    return Frame(leaves, np.array([len(r) for r in rows], dtype=np.int64), strict=strict)


def values(text: str, f: Frame) -> np.ndarray:
    result = evaluate(parse(text), f)
    assert isinstance(result, np.ndarray)
    return result[:, 0]


def close(got: np.ndarray, expected: list[float] | np.ndarray, rtol: float = 1e-12) -> None:
    np.testing.assert_allclose(got, np.asarray(expected, dtype=float), rtol=rtol, atol=1e-14, equal_nan=True)


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
    with pytest.raises(ConfigurationError, match=re.escape("no input series $foo (inputs: close)")):
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
def test_lookback_counts_the_lags_before_the_current_one(text: str, lookback: int | None) -> None:
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


def window_of(row: list[float], n: int) -> np.ndarray:
    """The last ``n`` values of a row (fewer where it starts later), NaN included, oldest first."""
    return np.asarray(row[-n:], dtype=float)


def _present(w: np.ndarray) -> np.ndarray:
    return w[~np.isnan(w)]


def _fit(w: np.ndarray) -> tuple[float, float, float]:
    position = np.arange(len(w), dtype=float)
    ok = ~np.isnan(w)
    if ok.sum() < 2:
        return NAN, NAN, NAN
    slope, intercept = np.polyfit(position[ok], w[ok], 1)
    rsquare = np.corrcoef(position[ok], w[ok])[0, 1] ** 2
    return slope, rsquare, w[-1] - (intercept + slope * position[-1])


#: Independent answers: the operator over a window (oldest first, NaN included) of at least one value.
NUMPY: dict[str, Callable[[np.ndarray], float]] = {
    "Mean": lambda w: np.mean(_present(w)),
    "Sum": lambda w: np.sum(_present(w)),
    "Std": lambda w: np.std(_present(w), ddof=1) if len(_present(w)) > 1 else NAN,
    "StdP": lambda w: np.std(_present(w)),
    "Var": lambda w: np.var(_present(w), ddof=1) if len(_present(w)) > 1 else NAN,
    "Max": lambda w: np.max(_present(w)),
    "Min": lambda w: np.min(_present(w)),
    "Quantile": lambda w: np.quantile(_present(w), 0.3),
    "Rank": lambda w: NAN if np.isnan(w[-1]) else pd.Series(_present(w)).rank(pct=True).iloc[-1],
    "IdxMax": lambda w: np.argmax(w) + 1,
    "IdxMin": lambda w: np.argmin(w) + 1,
    "Slope": lambda w: _fit(w)[0],
    "Rsquare": lambda w: _fit(w)[1],
    "Resi": lambda w: _fit(w)[2],
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


def expected(op: str, n: int, strict: bool) -> list[float]:
    out = []
    for row in ROWS:
        w = window_of(row, n)
        count = len(_present(w))
        out.append(NAN if count == 0 or (strict and count < n) else float(NUMPY[op](w)))
    return out


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("op", NUMPY)
def test_rolling_operators_match_numpy_on_every_window(op: str, strict: bool) -> None:
    for n in (1, 2, 3, 5, 12):
        text = f"{op}($close, {n}, 0.3)" if op == "Quantile" else f"{op}($close, {n})"
        with np.errstate(all="ignore"):
            close(values(text, frame(ROWS, strict)), expected(op, n, strict), rtol=1e-10)


def test_windows_of_a_group_computed_in_one_pass_equal_each_alone() -> None:
    texts = [f"{op}($close, {n})" for op in ("Mean", "Std", "IdxMax", "Slope", "Rank") for n in (2, 3, 5, 12)]
    nodes = [parse(t) for t in texts]
    grouped = Frame(frame(ROWS).leaves, frame(ROWS).span, windows=windows_of(nodes))
    assert windows_of(nodes)[("Mean", "$close", None)] == (2, 3, 5, 12)
    for text, node in zip(texts, nodes, strict=True):
        alone = evaluate(node, frame(ROWS))
        assert isinstance(alone, np.ndarray)
        np.testing.assert_array_equal(evaluate(node, grouped), alone, err_msg=text)


def pair_expected(xs: list[list[float]], ys: list[list[float]], n: int, op: str) -> list[float]:
    out = []
    for x, y in zip(xs, ys, strict=True):
        wx, wy = window_of(x, n), window_of(y, n)
        both = ~np.isnan(wx) & ~np.isnan(wy)
        if both.sum() < 2:
            out.append(NAN)
        elif op == "Cov":
            out.append(float(np.cov(wx[both], wy[both], ddof=1)[0, 1]))
        else:
            flat = any(len(_present(w)) > 1 and np.std(_present(w), ddof=1) <= 2e-5 for w in (wx, wy))
            out.append(NAN if flat else float(np.corrcoef(wx[both], wy[both])[0, 1]))
    return out


@pytest.mark.parametrize("op", PAIR)
def test_pair_operators_use_the_lags_where_both_have_a_value(op: str) -> None:
    xs = [[1.0, 2.0, NAN, 4.0, 3.0, 5.0], [2.0, 1.0, 3.0], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [7.0, 7.0]]
    ys = [
        [2.0, NAN, 1.0, 3.0, 2.5, 4.0],
        [1.0, 1.5, 0.5],
        [1.0, 1.000001, 1.0, 1.000001, 1.0, 1.0],
        [1.0, 3.0],
    ]
    f = Frame(frame(xs).leaves | {"other": frame(ys).leaves["close"]}, frame(xs).span)
    for n in (2, 3, 6):
        close(values(f"{op}($close, $other, {n})", f), pair_expected(xs, ys, n, op))


# ------------------------------------------------------------------------------------------ edge cases


@pytest.mark.parametrize("op", [*NUMPY, "Corr", "Cov"])
def test_an_all_missing_window_is_missing(op: str) -> None:
    f = frame([[1.0, 2.0, NAN, NAN, NAN]], other=[[1.0, 2.0, NAN, NAN, NAN]])
    text = {
        "Quantile": "Quantile($close, 3, 0.5)",
        "Corr": "Corr($close, $other, 3)",
        "Cov": "Cov($close, $other, 3)",
    }
    assert np.isnan(values(text.get(op, f"{op}($close, 3)"), f)[0])


def test_a_window_of_one_value() -> None:
    f = frame([[NAN, 7.0, NAN]])
    got = {op: values(f"{op}($close, 3)", f)[0] for op in ("Mean", "Sum", "Max", "StdP", "IdxMax", "IdxMin")}
    # IdxMax: numpy returns the first NaN of the window (oldest first: NaN, 7, NaN), the oldest value.
    assert got == {"Mean": 7.0, "Sum": 7.0, "Max": 7.0, "StdP": 0.0, "IdxMax": 1.0, "IdxMin": 1.0}
    for op in ("Std", "Var", "Slope", "Rsquare", "Resi", "Rank"):  # Rank: the current value is missing
        assert np.isnan(values(f"{op}($close, 3)", f)[0]), op
    one = frame([[2.0, NAN, 5.0]])
    assert values("Rank($close, 2)", one)[0] == 1.0
    assert values("IdxMax($close, 2)", one)[0] == 1.0  # oldest first: NaN, 5 -> the NaN
    assert np.isnan(values("Slope($close, 2)", one)[0])
    assert np.isnan(values("Std($close, 2)", one)[0])


def test_ties_go_to_the_oldest_for_idxmax_and_average_for_rank() -> None:
    f = frame([[1.0, 3.0, 3.0, 2.0], [3.0, 1.0, 3.0]])
    close(values("IdxMax($close, 4)", f), [2.0, 1.0])
    close(values("IdxMin($close, 4)", frame([[2.0, 1.0, 1.0, 3.0]])), [2.0])
    # 3 among (1, 3, 3, 2): 2 below, 2 equal -> (2 + 1.5) / 4; among (3, 1, 3): (1 + 1.5) / 3.
    close(values("Rank($close, 4)", frame([[1.0, 3.0, 2.0, 3.0], [3.0, 1.0, 3.0]])), [0.875, 2.5 / 3])


def test_idxmax_returns_the_first_missing_value_inside_the_series_but_ignores_lags_before_it() -> None:
    # Oldest first: 1, NaN, 5, 2 -> numpy's argmax is the NaN (position 2), not the 5 (position 3).
    f = frame([[1.0, NAN, 5.0, 2.0], [NAN, 4.0, NAN, 9.0, 2.0]])
    close(values("IdxMax($close, 4)", f), [2.0, 2.0])
    close(values("IdxMin($close, 4)", f), [2.0, 2.0])
    # A row that starts two lags back: its window holds its own two values only (no missing value).
    late = frame([[1.0, NAN, 5.0, 2.0], [5.0, 2.0]])
    close(values("IdxMax($close, 4)", late), [2.0, 1.0])
    close(values("IdxMin($close, 4)", late), [2.0, 2.0])


def test_strict_windows_need_every_value() -> None:
    rows = [[1.0, 2.0, 3.0], [1.0, NAN, 3.0], [2.0, 3.0]]
    close(values("Mean($close, 3)", frame(rows)), [2.0, 2.0, 2.5])
    close(values("Mean($close, 3)", frame(rows, strict=True)), [2.0, NAN, NAN])
    close(values("Max($close, 2)", frame(rows, strict=True)), [3.0, NAN, 3.0])


def test_ema_is_pandas_ewm_seeded_with_the_first_value() -> None:
    rows = [[1.0, 2.0, 3.0, 4.0, 5.0], [1.0, NAN, 2.0, 3.0, 4.0, 5.0], [1.0, 2.0]]
    # α = 0.5: 1, 1.5, 2.25, 3.125, 4.0625; a missing input is skipped (the state carries over).
    close(values("EMA($close, 3)", frame(rows)), [4.0625, 4.0625, NAN])
    series = pd.Series([5.0, 3.0, 8.0, 1.0, 4.0, 6.0, 2.0])
    answer = series.ewm(span=4, adjust=False).mean().iloc[-1]
    close(values("EMA($close, 4)", frame([series.tolist()])), [answer])
    # Strictness does not apply: a value exists once n inputs were seen.
    close(values("EMA($close, 3)", frame(rows, strict=True)), [4.0625, 4.0625, NAN])


def test_rma_is_wilders_average_seeded_with_the_mean_of_the_first_n() -> None:
    # Seed mean(1, 2, 3) = 2, then (2·2 + 4)/3 = 8/3, then (8/3·2 + 5)/3 = 31/9.
    rows = [[1.0, 2.0, 3.0, 4.0, 5.0], [1.0, 2.0, NAN, 3.0, 4.0, 5.0], [1.0, 2.0, 3.0], [1.0, 2.0]]
    close(values("RMA($close, 3)", frame(rows)), [31 / 9, 31 / 9, 2.0, NAN])


def test_the_rsi_of_a_row_is_seeded_at_the_first_lag_of_its_window() -> None:
    closes = [44.0, 44.3, 44.1, 44.5, 43.9, 44.6, 45.2, 45.0, 45.6, 46.1]
    change = np.diff(closes)
    gain, loss = np.maximum(change, 0), np.maximum(-change, 0)

    def wilder(x: np.ndarray, n: int) -> float:
        state = x[:n].mean()
        for v in x[n:]:
            state = (state * (n - 1) + v) / n
        return float(state)

    answer = 100 - 100 / (1 + wilder(gain, 4) / wilder(loss, 4))
    text = "100-100/(1+RMA(Greater($close-Ref($close, 1), 0), 4)/RMA(Greater(Ref($close, 1)-$close, 0), 4))"
    close(values(text, frame([closes])), [answer])


def test_a_rolling_value_at_an_earlier_lag_uses_that_lags_window() -> None:
    rows = [[1.0, 2.0, 4.0, 8.0, 16.0, 32.0], [1.0, 2.0, 4.0], [5.0]]
    # Mean of 3 two sessions back: (2, 4, 8); the second row starts at its 1 -> (1); the third: nothing.
    close(values("Ref(Mean($close, 3), 2)", frame(rows)), [14 / 3, 1.0, NAN])
    close(values("Ref(Mean($close, 3), 2)", frame(rows, strict=True)), [14 / 3, NAN, NAN])
    # A rolling statistic of a rolling statistic: Mean of the 2-session means at lags 0, 1, 2.
    close(values("Mean(Mean($close, 2), 3)", frame(rows)), [(48 + 24 + 12) / 2 / 3, (3 + 1.5 + 1) / 3, 5.0])
    close(values("Max($close - Ref(Mean($close, 2), 1), 2)", frame(rows)), [32 - 12, 4 - 1.5, NAN])


def test_comparisons_are_zero_on_a_missing_operand_and_absent_before_the_series() -> None:
    rows = [[1.0, 2.0, NAN, 3.0, 2.0], [4.0, 5.0]]
    # Row 1, oldest first: (1>NaN)=0, 2>1=1, NaN>2=0, 3>NaN=0, 2>3=0 -> 1 up in 5; row 2: 0, 1 -> 1 in 2.
    close(values("Mean($close>Ref($close, 1), 5)", frame(rows)), [0.2, 0.5])
    close(values("Sum($close<Ref($close, 1), 5)", frame(rows)), [1.0, 0.0])
    close(values("$close>=Ref($close, 1)", frame([[2.0, 2.0], [3.0, 2.0]])), [1.0, 0.0])
    close(values("$close<=Ref($close, 1)", frame([[2.0, 2.0], [3.0]])), [1.0, 0.0])


def test_elementwise_operators_propagate_missing_values() -> None:
    f = frame([[4.0, -2.0], [NAN, 3.0], [1.0, NAN]])
    close(values("Greater($close, Ref($close, 1))", f), [4.0, NAN, NAN])
    close(values("Less($close, Ref($close, 1))", f), [-2.0, NAN, NAN])
    close(values("Abs($close)", f), [2.0, 3.0, NAN])
    close(values("Sign($close)", f), [-1.0, 1.0, NAN])
    close(values("Log(Abs($close))", f), [np.log(2.0), np.log(3.0), NAN])
    close(values("Greater($close, 0)+1", f), [1.0, 4.0, NAN])


def test_rsquare_and_corr_are_missing_on_a_flat_window() -> None:
    flat = [10.0, 10.00001, 10.0, 10.00001, 10.0]  # std ~5.5e-6, within Qlib's 2e-5 of 0
    assert np.isnan(values("Rsquare($close, 5)", frame([flat]))[0])
    f = frame([flat], other=[[1.0, 2.0, 3.0, 5.0, 4.0]])
    assert np.isnan(values("Corr($close, $other, 5)", f)[0])
    assert np.isnan(values("Corr($other, $close, 5)", f)[0])
    # Cov is not masked: its sample value.
    close(values("Cov($close, $other, 5)", f), [np.cov(flat, [1.0, 2.0, 3.0, 5.0, 4.0])[0, 1]])
    steep = [10.0, 10.1, 10.0, 10.1, 10.0]
    close(values("Rsquare($close, 5)", frame([steep])), [_fit(np.array(steep))[1]])
