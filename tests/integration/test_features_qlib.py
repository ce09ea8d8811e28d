"""Alpha158 and Alpha360 in silver equal what real pyqlib computes from the lake's own Qlib root.

The lake is built by the pipeline from a generated sample edited into the hard cases: a 1:10 split and
cash dividends inside the windows (prices flat across the split), a 15-session halt, a halt across an
ex-date, a ticker listed mid-history, a rename, a 40-session constant price, a dividend exactly offset by
the price drop (a flat total return across the ex-date), and zero and 1–7-share volumes. Real qlib reads
the root the same run wrote, in a child process (:mod:`tests.support.qlib_child`): the Alpha158 handler
without processors, and Alpha360's loader expressions through ``D.features``.

Silver has a row for each bar; qlib has one for each session inside an instrument's span, NaN where it has
no bar (a halt, a quarantined row). Those rows are checked to be exactly qlib's sessions without a close,
then left out. On silver's rows every value must equal qlib's (same nulls, |Δ| ≤ 1e-4·max(1, |qlib|))
unless a rule below, computed here from qlib's own stored inputs, explains the cell:

* ``float32 tie``: two of the feature's prices inside its window, on either side of a corporate action, are
  within 2 float32 ulps of each other in qlib's root. Distinct cent prices are never that close, so the
  two prices are equal in total-return terms and which one is larger is rounding (qlib's float32 root, or
  silver's float64 product of a raw price and its multipliers).
* ``running moments``: the feature (volume deviation, WVMA) computed directly (two passes) from qlib's own
  stored inputs equals silver's value, not qlib's: pandas' rolling moments carry round-off from far
  larger values that left the window (1–7-share volumes after millions).

Outside the cells of silver's known semantic differences, at least 99.9 % of the values must agree. Those
differences are delimited by rules of their own, each checked to account for the value numerically, and
asserted equal to qlib in ``xfail(strict=True)`` tests:

* ``infinite volume ratio``: CORD over a window holding ``$volume/Ref($volume, 1)`` = inf (a bar after a
  zero-volume bar): both skip it as missing (asserted: no such cell differs).
* ``zero volume, later action`` / ``few shares, later action``: ``$volume+1e-12`` and ``Log($volume+1)``
  add absolute constants to volumes, which silver holds in the basis of its computation's first session
  and qlib in the basis of the root's last session (so qlib's value changes when a later action
  arrives).

The lake is also built again up to a cut without the later sessions and actions (its features must be
bit-identical: no look-ahead), then extended by one session (only that session's feature partitions are
written, and they equal the full build's). A second, small lake with minute bars checks ``VWAP0`` against
qlib's ``$vwap/$close`` once ``pipeline run`` of stocks_minute has followed the stocks_daily run.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest
from click.testing import CliRunner

from quantmini.cli.main import cli
from quantmini.config.settings import FeatureSettings, Settings
from quantmini.datasets import get_spec
from quantmini.io.lake import Lake
from quantmini.io.source import LocalMirrorSource
from quantmini.pipeline.runner import PipelineReport, PipelineRunner
from quantmini.sample import generate_sample
from tests.support.qlib_child import QlibAlphas, read_alphas_with_qlib, read_with_qlib

pytestmark = pytest.mark.slow

SPEC = get_spec("stocks_daily")
START, END = dt.date(2025, 1, 2), dt.date(2025, 8, 29)  # 165 sessions
SETS = ("alpha158", "alpha360")
SETTINGS = Settings(features=FeatureSettings(stocks_daily=("base", *SETS)))
TOLERANCE = 1e-4
#: Session indices of the edits (see :func:`_edit_mirror`).
HALT = range(90, 105)
FLAT = range(40, 80)
ZERO = (30, 31, 32, 33, 34, 100)
LOW = range(110, 140)
#: The last session of the lake built without later sessions (no-look-ahead and append tests).
CUT = 86


# -- the source: a generated sample edited into the hard cases ----------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """Who plays which part in the edited sample (vendor tickers) and the sessions."""

    sessions: list[dt.date]
    halted: str  # no bars on HALT sessions
    flat: str  # open = high = low = close, constant, on FLAT sessions
    quiet: str  # volume 0 on ZERO sessions, 1–7 shares on LOW sessions
    split: str  # constant prices across its forward split
    offset: str  # a dividend exactly equal to the price drop on its ex-date
    thin: str  # zero and 1–7-share volumes before its last dividend (an action later than the bar)
    halted_payer: str  # no bars around an ex-date
    listed: str  # first bar mid-history


class _Files:
    """The sample's day files as rows of strings (vendor columns), edited in place."""

    def __init__(self, source: Path, record: dict[str, Any]) -> None:
        self.paths = {
            dt.date.fromisoformat(day): source / entry["key"]
            for day, entry in record["files"]["stocks_daily"].items()
        }

    def read(self, day: dt.date) -> tuple[str, list[list[str]]]:
        header, *lines = gzip.decompress(self.paths[day].read_bytes()).decode().splitlines()
        return header, [line.split(",") for line in lines]

    def edit(self, day: dt.date, ticker: str, change: Callable[[list[str]], list[str] | None]) -> None:
        header, rows = self.read(day)
        assert any(r[0] == ticker for r in rows), (day, ticker)
        kept = [r if r[0] != ticker else change(r) for r in rows]
        lines = [header, *(",".join(r) for r in kept if r is not None)]
        self.paths[day].write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))

    def close(self, day: dt.date, ticker: str) -> float:
        return next(float(r[3]) for r in self.read(day)[1] if r[0] == ticker)


def _price(value: str) -> Callable[[list[str]], list[str]]:
    def change(row: list[str]) -> list[str]:
        return [row[0], row[1], value, value, value, value, *row[6:]]

    return change


def _volume(value: int) -> Callable[[list[str]], list[str]]:
    def change(row: list[str]) -> list[str]:
        return [row[0], str(value), *row[2:]]

    return change


def _edit_mirror(source: Path) -> Scenario:
    """Apply the hard cases to a generated sample; vendor-shaped rows and REST bodies only."""
    record = json.loads((source / "sample.json").read_text())
    sessions = [dt.date.fromisoformat(s) for s in record["sessions"]]
    actions = record["corporate_actions"]
    files = _Files(source, record)
    split = next(a for a in actions["splits"] if a["split_to"] > a["split_from"])
    payers = sorted({d["ticker"] for d in actions["dividends"]} - {split["ticker"]})
    touched = {a["ticker"] for kind in ("splits", "dividends") for a in actions[kind]}
    touched |= {d["ticker"] for d in record["defects"]}
    touched |= {
        t for change in actions["ticker_changes"] for t in (change["old_ticker"], change["new_ticker"])
    }
    plain = sorted(
        t
        for t, info in record["tickers"].items()
        if t not in touched and (info["first_session"], info["last_session"]) == (str(START), str(END))
    )
    listed = next(t for t, info in record["tickers"].items() if info["ipo"])
    scenario = Scenario(sessions, *plain[:3], split["ticker"], *payers[:3], listed=listed)

    for i in HALT:
        files.edit(sessions[i], scenario.halted, lambda row: None)
    flat = f"{files.close(sessions[FLAT[0]], scenario.flat):.2f}"
    for i in FLAT:
        files.edit(sessions[i], scenario.flat, _price(flat))
    for i in ZERO:
        files.edit(sessions[i], scenario.quiet, _volume(0))
    for i in LOW:
        files.edit(sessions[i], scenario.quiet, _volume(1 + i % 7))

    # Constant prices across the split: P before, exactly P / ratio from its execution date.
    s = sessions.index(dt.date.fromisoformat(split["execution_date"]))
    ratio = split["split_to"] // split["split_from"]
    before = ratio * max(1, round(files.close(sessions[s - 8], split["ticker"]) / ratio))
    for i in range(s - 8, s + 8):
        files.edit(sessions[i], split["ticker"], _price(f"{before / (ratio if i >= s else 1):.2f}"))

    # A dividend of 1 % of a whole-dollar close, the next bars 1 % lower: total return flat across it.
    dividends_path = source / "rest" / "v3" / "reference" / "dividends.json"
    body = json.loads(dividends_path.read_text())
    ex_dates = {t: sorted(d["ex_dividend_date"] for d in body["results"] if d["ticker"] == t) for t in payers}
    offset = next(d for d in body["results"] if d["ticker"] == scenario.offset)
    e = sessions.index(dt.date.fromisoformat(offset["ex_dividend_date"]))
    close = round(files.close(sessions[e - 6], scenario.offset))
    while close * (1 - close / 100 / close) == round(close * 0.99, 2):
        close += 1  # a close whose 1 % drop is inexact in binary: which price is larger is rounding
    offset["cash_amount"] = close / 100
    dividends_path.write_text(json.dumps(body))
    for i in range(e - 6, e + 6):
        files.edit(sessions[i], scenario.offset, _price(f"{close * (0.99 if i >= e else 1):.2f}"))

    last = sessions.index(dt.date.fromisoformat(ex_dates[scenario.thin][-1]))
    assert last >= 40
    for i in (last - 30, last - 29):
        files.edit(sessions[i], scenario.thin, _volume(0))
    for i in range(last - 25, last - 10):
        files.edit(sessions[i], scenario.thin, _volume(1 + i % 7))

    e = sessions.index(dt.date.fromisoformat(ex_dates[scenario.halted_payer][-1]))
    for i in range(e - 3, min(e + 4, len(sessions) - 1)):
        files.edit(sessions[i], scenario.halted_payer, lambda row: None)
    return scenario


def _run(root: Path, source: Path, end: dt.date) -> PipelineReport:
    report = PipelineRunner(Lake(root), SPEC, settings=SETTINGS).run(LocalMirrorSource(source), START, end)
    assert report.failures == [], report.failures
    return report


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Scenario]:
    source = tmp_path_factory.mktemp("features-qlib") / "source"
    generate_sample(source, START, END, tickers=20, seed=7, data_types=("stocks_daily",))
    return source, _edit_mirror(source)


@pytest.fixture(scope="module")
def lake(mirror: tuple[Path, Scenario]) -> Path:
    source, _ = mirror
    root = source.parent / "lake"
    _run(root, source, END)
    return root


@pytest.fixture(scope="module")
def qlib(lake: Path) -> QlibAlphas:
    return read_alphas_with_qlib(Lake(lake).qlib_root("stocks_daily", "day"), lake.parent / "qlib")


# -- silver against qlib ------------------------------------------------------------------------------------


def _instrument(ticker: str) -> str:
    """The instrument qlib reads a ticker as (lower-case letters become ``_`` + upper case: BApA → BA_PA)."""
    return re.sub("[a-z]", lambda m: "_" + m.group().upper(), ticker)


def _silver(root: Path, table: str) -> pd.DataFrame:
    """A silver table indexed as qlib reads the root: a renamed company under its new ticker (the generated
    sample's record, beside the lake, says which)."""
    record = json.loads((root.parent / "source" / "sample.json").read_text())
    renamed = {c["old_ticker"]: c["new_ticker"] for c in record["corporate_actions"]["ticker_changes"]}
    frame = pl.read_parquet(Lake(root).silver_dir(table) / "*" / "part.parquet")
    out = frame.drop("ticker", "session_date").to_pandas().astype(np.float64)
    out.index = pd.MultiIndex.from_arrays(
        [
            [_instrument(renamed.get(t, t)) for t in frame["ticker"].to_list()],
            pd.to_datetime(frame["session_date"].to_numpy()),
        ],
        names=["instrument", "datetime"],
    )
    return out.sort_index()


@dataclass(frozen=True)
class Cell:
    """One value of a feature set that differs between silver and qlib."""

    instrument: str
    session: pd.Timestamp
    feature: str
    ours: float
    qlib: float


def _agree(a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray | bool:
    """Same null, or |a − b| ≤ TOLERANCE·max(1, |b|)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        close = np.abs(a - b) <= TOLERANCE * np.maximum(1.0, np.abs(b))
    return (np.isnan(a) & np.isnan(b)) | close


@dataclass
class Compared:
    """One set: silver's values and qlib's on silver's rows, and the cells that differ."""

    ours: pd.DataFrame
    qlib: pd.DataFrame
    cells: list[Cell]

    @property
    def values(self) -> int:
        return int(self.ours.size)


@pytest.fixture(scope="module")
def compared(lake: Path, qlib: QlibAlphas) -> dict[str, Compared]:
    out = {}
    for name in SETS:
        ours = _silver(lake, f"stocks_daily_{name}")
        theirs: pd.DataFrame = getattr(qlib, name)
        assert list(ours.columns) == list(theirs.columns)
        aligned = theirs.reindex(ours.index).astype(np.float64)
        a, b = ours.to_numpy(), aligned.to_numpy()
        rows, columns = np.nonzero(~_agree(a, b))
        cells = [
            Cell(ours.index[r][0], ours.index[r][1], ours.columns[c], float(a[r, c]), float(b[r, c]))
            for r, c in zip(rows, columns, strict=True)
        ]
        out[name] = Compared(ours, aligned, cells)
    return out


# -- the rules ----------------------------------------------------------------------------------------------


class Inputs:
    """qlib's stored inputs of one root: per instrument, its span's sessions (NaN where it has no bar)."""

    def __init__(self, qlib: QlibAlphas) -> None:
        self.by_instrument = {
            name: frame.droplevel(0).astype(np.float64) for name, frame in qlib.inputs.groupby(level=0)
        }

    def window(self, cell: Cell, lags: int, extra: int = 0) -> pd.DataFrame:
        """Rows of lags ``0..lags`` before the cell's session (plus ``extra`` older), cut at the span."""
        frame = self.by_instrument[cell.instrument]
        p = frame.index.get_loc(cell.session)
        return frame.iloc[max(0, p - lags - extra) : p + 1]

    def at(self, cell: Cell) -> pd.Series:
        return self.by_instrument[cell.instrument].loc[cell.session]


def _reach(expression: str) -> int:
    """Lags before the current one a feature reads, from qlib's expression: its rolling window − 1 plus
    its largest ``Ref`` offset."""
    refs = [int(n) for n in re.findall(r"Ref\([^()]*,\s*(\d+)\)", expression)]
    arguments = [int(n) for n in re.findall(r",\s*(\d+)(?:,\s*0?\.\d+)?\)", expression)]
    windows = list((Counter(arguments) - Counter(refs)).elements())
    return max([1, *windows]) - 1 + max([0, *refs])


def _window(feature: str) -> int:
    return int(re.sub(r"^[A-Z]+", "", feature))


PRICES = ("open", "high", "low", "close", "vwap")


def _float32_tie(cell: Cell, expression: str, inputs: Inputs) -> bool:
    """Two of the feature's prices in its window, across a corporate action, within 2 float32 ulps."""
    fields = [f for f in re.findall(r"\$(\w+)", expression) if f in PRICES]
    part = inputs.window(cell, _reach(expression))
    values = part[fields].to_numpy(np.float32)
    factor = np.repeat(part["factor"].to_numpy(), len(fields))
    x = values.ravel()
    keep = np.isfinite(x)
    x, factor = x[keep], factor[keep]
    spacing = np.spacing(np.maximum(np.abs(x)[:, None], np.abs(x)[None, :]))
    near = np.abs(x[:, None] - x[None, :]).astype(np.float64) <= 2 * spacing
    return bool((near & (factor[:, None] != factor[None, :])).any())


def _std(values: np.ndarray) -> float:
    values = values[~np.isnan(values)]
    return float(np.std(values, ddof=1)) if values.size >= 2 else float("nan")


def _mean(values: np.ndarray) -> float:
    values = values[~np.isnan(values)]
    return float(np.mean(values)) if values.size else float("nan")


def _direct_moments(cell: Cell, inputs: Inputs) -> float:
    """VSTD/WVMA from qlib's stored inputs in two passes over the window (qlib's definitions)."""
    d = _window(cell.feature)
    part = inputs.window(cell, d - 1, extra=1)
    volume, close = part["volume"].to_numpy(), part["close"].to_numpy()
    with np.errstate(all="ignore"):
        if cell.feature.startswith("VSTD"):
            return _std(volume[-d:]) / (volume[-1] + 1e-12)
        moved = np.abs(close[1:] / close[:-1] - 1) * volume[1:]
        if len(part) <= d:  # the window starts at the span's first session: its Ref is missing
            moved = np.concatenate([[np.nan], moved])
        return _std(moved[-d:]) / (_mean(moved[-d:]) + 1e-12)


def _running_moments(cell: Cell, expression: str, inputs: Inputs) -> bool:
    if not re.fullmatch(r"(VSTD|WVMA)\d+", cell.feature):
        return False
    direct = _direct_moments(cell, inputs)
    return bool(_agree(cell.ours, direct)) and not bool(_agree(cell.qlib, direct))


def _infinite_ratio(cell: Cell, expression: str, inputs: Inputs) -> bool:
    """CORD's window holds a volume ratio ``$volume/Ref($volume, 1)`` that is infinite (a bar after a
    zero-volume bar): silver's correlation is null, qlib's skips the pair (pandas' rolling windows treat
    ±inf as missing) — checked by computing it so."""
    if not cell.feature.startswith("CORD"):
        return False
    d = _window(cell.feature)
    part = inputs.window(cell, d - 1, extra=1)
    volume, close = part["volume"].to_numpy(), part["close"].to_numpy()
    with np.errstate(all="ignore"):
        x = (close[1:] / close[:-1])[-d:]
        y = np.log(volume[1:] / volume[:-1] + 1)[-d:]
    if not np.isinf(y).any():
        return False
    x = np.where(np.isfinite(x), x, np.nan)
    y = np.where(np.isfinite(y), y, np.nan)
    both = ~np.isnan(x) & ~np.isnan(y)
    flat = not _std(x) > 2e-5 or not _std(y) > 2e-5
    direct = float("nan") if flat or both.sum() < 2 else float(np.corrcoef(x[both], y[both])[0, 1])
    return np.isnan(cell.ours) and bool(_agree(cell.qlib, direct))


def _zero_volume_basis(cell: Cell, expression: str, inputs: Inputs) -> bool:
    """A zero-volume bar of an instrument with a corporate action, in a feature divided by
    ``$volume+1e-12``.

    qlib divides volumes by the total-return factor of the root's last session; silver holds a series in
    the basis of its computation's first session (here one computation from the instrument's first bar,
    the lake being small): ratios of volumes agree, but ``x / (0 + 1e-12)`` keeps the scale, so qlib's
    value is silver's times qlib's last ``$factor`` over its first (checked)."""
    if "($volume+1e-12)" not in expression.replace(" ", ""):
        return False
    factor = inputs.by_instrument[cell.instrument]["factor"]
    first, last = factor.dropna().iloc[0], factor.iloc[-1]
    if inputs.at(cell)["volume"] != 0 or first == last:
        return False
    return bool(_agree(cell.ours, cell.qlib * first / last))


def _log_volume_basis(cell: Cell, expression: str, inputs: Inputs) -> bool:
    """CORR (``Corr($close, Log($volume+1), d)``) of few-share volumes of an instrument with a corporate
    action: the ``+1`` is added to volumes in qlib's basis (the root's last session), in silver to volumes
    in the basis of the computation's first session (here the instrument's first bar), which is not the
    same function of the volume. Checked by computing both from qlib's inputs: silver's with the volumes
    brought into that basis (times qlib's first ``$factor`` over its last)."""
    if not re.fullmatch(r"CORR\d+", cell.feature):
        return False
    frame = inputs.by_instrument[cell.instrument]["factor"]
    scale = frame.dropna().iloc[0] / frame.iloc[-1]
    if scale == 1:
        return False
    part = inputs.window(cell, _window(cell.feature) - 1)
    close, volume = part["close"].to_numpy(), part["volume"].to_numpy()

    def corr(log_volume: np.ndarray) -> float:
        both = ~np.isnan(close) & ~np.isnan(log_volume)
        if not _std(close) > 2e-5 or not _std(log_volume) > 2e-5 or both.sum() < 2:
            return float("nan")
        return float(np.corrcoef(close[both], log_volume[both])[0, 1])

    silver, theirs = corr(np.log(volume * scale + 1)), corr(np.log(volume + 1))
    return bool(_agree(cell.ours, silver)) and bool(_agree(cell.qlib, theirs))


#: Rules that explain a cell by rounding or by qlib's numerics.
EXPLAINED: dict[str, Callable[[Cell, str, Inputs], bool]] = {
    "float32 tie": _float32_tie,
    "running moments": _running_moments,
}
#: Semantic differences of silver (asserted equal to qlib in the xfail tests).
DIFFERENCES: dict[str, Callable[[Cell, str, Inputs], bool]] = {
    "infinite volume ratio": _infinite_ratio,
    "zero volume, later action": _zero_volume_basis,
    "few shares, later action": _log_volume_basis,
}


def _classify(compared: Compared, expressions: dict[str, str], inputs: Inputs) -> dict[Cell, str | None]:
    rules = {**EXPLAINED, **DIFFERENCES}
    return {
        cell: next(
            (name for name, rule in rules.items() if rule(cell, expressions[cell.feature], inputs)), None
        )
        for cell in compared.cells
    }


@pytest.fixture(scope="module")
def classified(compared: dict[str, Compared], qlib: QlibAlphas) -> dict[str, dict[Cell, str | None]]:
    inputs = Inputs(qlib)
    return {name: _classify(compared[name], qlib.expressions[name], inputs) for name in SETS}


def _summary(cells: dict[Cell, str | None]) -> str:
    by_rule = Counter(rule for rule in cells.values())
    by_feature = Counter((rule, c.feature) for c, rule in cells.items())
    return f"{dict(by_rule)}; {dict(by_feature.most_common(12))}"


# -- tests --------------------------------------------------------------------------------------------------


def test_qlib_has_a_row_for_each_session_inside_a_span_silver_one_for_each_bar(
    mirror: tuple[Path, Scenario], compared: dict[str, Compared], qlib: QlibAlphas
) -> None:
    _, scenario = mirror
    closes = qlib.inputs["close"]
    for name in SETS:
        ours, theirs = compared[name].ours.index, getattr(qlib, name).index
        assert ours.isin(theirs).all()
        assert theirs.difference(ours).equals(closes.index[closes.isna()])
    missing = closes.index[closes.isna()]
    halted = [(scenario.halted, pd.Timestamp(scenario.sessions[i])) for i in HALT]
    assert pd.MultiIndex.from_tuples(halted).isin(missing).all()
    assert any(i == _instrument(scenario.halted_payer) for i, _ in missing)
    listed = qlib.inputs.loc[scenario.listed].index
    assert listed[0] > pd.Timestamp(START)


def test_the_hard_cases_reach_the_features(
    mirror: tuple[Path, Scenario], compared: dict[str, Compared]
) -> None:
    """The edits are where they should be, as the features see them: flat windows give no R² and no
    correlation, zero volumes give VOLUME0 = 0, a split inside a flat stretch keeps the close ratio 1."""
    _, scenario = mirror
    ours = compared["alpha158"].ours
    flat = ours.loc[scenario.flat].loc[[pd.Timestamp(scenario.sessions[i]) for i in FLAT[20:]]]
    assert flat[["RSQR5", "RSQR10", "RSQR20", "CORR5", "CORR20"]].isna().all().all()
    assert (flat[["STD5", "STD20", "KLEN", "ROC20"]] == [0, 0, 0, 1]).all().all()
    volume = compared["alpha360"].ours.loc[scenario.quiet, "VOLUME0"]
    assert (volume.loc[[pd.Timestamp(scenario.sessions[i]) for i in ZERO]] == 0).all()
    roc = ours.loc[scenario.split, "ROC5"].to_numpy()
    assert (np.abs(roc - 1) < 1e-6).sum() >= 11  # the 11 windows inside the 16 flat sessions


@pytest.mark.parametrize("name", SETS)
def test_silver_equals_qlib_unless_a_rule_explains_the_cell(
    name: str, compared: dict[str, Compared], classified: dict[str, dict[Cell, str | None]]
) -> None:
    cells = classified[name]
    unexplained = [c for c, rule in cells.items() if rule is None]
    assert unexplained == [], f"{len(unexplained)} cells differ: {unexplained[:10]}"
    differences = sum(1 for rule in cells.values() if rule in DIFFERENCES)
    agreeing = compared[name].values - len(cells)
    assert agreeing >= 0.999 * (compared[name].values - differences), _summary(cells)


def _of_rule(classified: dict[str, dict[Cell, str | None]], rule: str) -> dict[Cell, str | None]:
    return {c: r for cells in classified.values() for c, r in cells.items() if r == rule}


def test_an_infinite_input_is_skipped_as_qlib_skips_it(classified: dict[str, dict[Cell, str | None]]) -> None:
    cells = _of_rule(classified, "infinite volume ratio")
    assert cells == {}, _summary(cells)


@pytest.mark.xfail(
    strict=True,
    reason="volumes are offset by absolute constants ($volume+1e-12, Log($volume+1)) in the basis of the "
    "computation's first session in silver, in the basis of the root's last session in qlib (which changes "
    "with later actions): at zero or few-share volumes the features differ",
)
def test_volume_offsets_equal_qlib(classified: dict[str, dict[Cell, str | None]]) -> None:
    cells = {
        **_of_rule(classified, "zero volume, later action"),
        **_of_rule(classified, "few shares, later action"),
    }
    assert cells == {}, _summary(cells)


# -- no look-ahead, appends ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def truncated(mirror: tuple[Path, Scenario], lake: Path) -> tuple[Path, Path]:
    """A mirror whose reference lists no action after ``sessions[CUT]``, and a lake built from it to there."""
    source, scenario = mirror
    cut = scenario.sessions[CUT].isoformat()
    copy = source.parent / "source-cut"
    shutil.copytree(source, copy)
    later = 0
    for kind, field in (("splits", "execution_date"), ("dividends", "ex_dividend_date")):
        path = copy / "rest" / "v3" / "reference" / f"{kind}.json"
        body = json.loads(path.read_text())
        later += sum(1 for r in body["results"] if r[field] > cut)
        assert all(r[field] != scenario.sessions[CUT + 1].isoformat() for r in body["results"])
        body["results"] = [r for r in body["results"] if r[field] <= cut]
        path.write_text(json.dumps(body))
    assert later >= 3  # the full lake knows splits and dividends after the cut
    root = source.parent / "lake-cut"
    _run(root, copy, scenario.sessions[CUT])
    return copy, root


def _bits(paths: list[Path]) -> tuple[list[object], bytes, bytes]:
    """Partitions' content: keys, and the features' null mask and float bit patterns."""
    frame = pl.concat([pl.read_parquet(p) for p in paths])
    features = frame.drop("ticker", "session_date")
    assert set(features.dtypes) == {pl.Float32}
    nulls = features.select(pl.all().is_null()).to_numpy()
    values = features.fill_null(0.0).to_numpy().view(np.uint32)
    return frame.select("ticker", "session_date").rows(), nulls.tobytes(), values.tobytes()


def _partitions(root: Path, name: str) -> dict[str, Path]:
    return {
        p.parent.name: p for p in sorted(Lake(root).silver_dir(f"stocks_daily_{name}").glob("*/part.parquet"))
    }


@pytest.mark.parametrize("name", SETS)
def test_features_never_look_ahead(
    name: str, mirror: tuple[Path, Scenario], lake: Path, truncated: tuple[Path, Path]
) -> None:
    """Every session up to the cut, computed by a lake that ends there and knows no later action, is
    bit-identical to the same session in the lake that holds 78 more sessions (a halt, a reverse split,
    dividends among them)."""
    _, scenario = mirror
    short, full = _partitions(truncated[1], name), _partitions(lake, name)
    assert list(short) == [f"date={d}" for d in scenario.sessions[: CUT + 1]]
    assert _bits(list(short.values())) == _bits([full[p] for p in short])


def _state(root: Path) -> dict[Path, tuple[bytes, int]]:
    """Feature tables' partitions and manifests: content and inode (a rewrite changes the inode)."""
    lake = Lake(root)
    paths = [p for name in SETS for p in _partitions(root, name).values()]
    paths += [
        p for name in SETS for p in sorted(lake.manifest_dir("silver", f"stocks_daily_{name}").glob("*"))
    ]
    return {p.relative_to(root): (p.read_bytes(), p.stat().st_ino) for p in paths}


def test_appending_a_session_writes_only_its_feature_partitions(
    mirror: tuple[Path, Scenario], lake: Path, truncated: tuple[Path, Path], tmp_path: Path
) -> None:
    _, scenario = mirror
    source, built = truncated
    root = tmp_path / "lake"
    shutil.copytree(built, root)
    before = _state(root)
    new = scenario.sessions[CUT + 1]
    report = _run(root, source, new)
    outcomes = {o.table: o for o in report.silver}
    after = _state(root)
    for name in SETS:
        assert outcomes[f"stocks_daily_{name}"].written == 1
    added = sorted(str(p) for p in set(after) - set(before))
    assert added == sorted(
        f"{where}/stocks_daily_{name}/{leaf}"
        for name in SETS
        for where, leaf in (("silver", f"date={new}/part.parquet"), ("_manifests/silver", f"{new}.json"))
    )
    assert {p: after[p] for p in before} == before  # nothing earlier rewritten, not even in place
    for name in SETS:
        partition = f"date={new}"
        assert _bits([_partitions(root, name)[partition]]) == _bits([_partitions(lake, name)[partition]])


# -- $vwap from minute bars ---------------------------------------------------------------------------------

MINUTE_START, MINUTE_END = dt.date(2025, 11, 3), dt.date(2025, 11, 21)


def _pipeline_run(source: Path, root: Path, data_type: str) -> None:
    args = ["pipeline", "run", "--data-type", data_type, "--source", source, "--data-root", root]
    args += ["--start-date", MINUTE_START.isoformat(), "--end-date", MINUTE_END.isoformat()]
    env = {"QUANTMINI_FEATURES_STOCKS_DAILY": ",".join(("base", *SETS))}
    result = CliRunner().invoke(cli, [str(a) for a in args], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def minute_lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, pd.DataFrame]:
    """``pipeline run`` of stocks_daily then of stocks_minute (minute bars of 3 tickers on the last 5
    sessions), and qlib's ``$vwap/$close`` of the daily root."""
    base = tmp_path_factory.mktemp("features-vwap")
    source, root = base / "source", base / "lake"
    generate_sample(
        source,
        MINUTE_START,
        MINUTE_END,
        tickers=8,
        seed=3,
        data_types=("stocks_daily", "stocks_minute"),
        minute_tickers=3,
        minute_sessions=5,
    )
    for data_type in ("stocks_daily", "stocks_minute"):
        _pipeline_run(source, root, data_type)
    expressions = ["$vwap/$close", "($high+$low+$close)/3/$close"]
    _, read = read_with_qlib(Lake(root).qlib_root("stocks_daily", "day"), "day", expressions, base / "qlib")
    read["datetime"] = pd.to_datetime(read["datetime"])
    return source, root, read.set_index(["instrument", "datetime"]).sort_index()


def _vwap_mismatches(root: Path, read: pd.DataFrame) -> dict[str, int]:
    out = {}
    for name in SETS:
        ours = _silver(root, f"stocks_daily_{name}")["VWAP0"]
        theirs = read["$vwap/$close"].reindex(ours.index)
        out[name] = int((~_agree(ours.to_numpy(), theirs.to_numpy())).sum())
    return out


def test_the_minute_run_gives_the_root_a_traded_vwap(minute_lake: tuple[Path, Path, pd.DataFrame]) -> None:
    _, _, read = minute_lake
    traded = ~_agree(read["$vwap/$close"].to_numpy(), read["($high+$low+$close)/3/$close"].to_numpy())
    assert 3 <= traded.sum() <= 15  # minute bars of 3 tickers on 5 sessions


def test_vwap_features_follow_the_minute_run(minute_lake: tuple[Path, Path, pd.DataFrame]) -> None:
    _, root, read = minute_lake
    assert _vwap_mismatches(root, read) == dict.fromkeys(SETS, 0)


def test_the_next_daily_run_brings_vwap_features_in_line(
    minute_lake: tuple[Path, Path, pd.DataFrame], tmp_path: Path
) -> None:
    built_source, built, read = minute_lake
    source, root = tmp_path / "source", tmp_path / "lake"
    shutil.copytree(built_source, source)
    shutil.copytree(built, root)
    vwap = sorted(Lake(root).qlib_root("stocks_daily", "day").glob("features/*/vwap.day.bin"))
    before = [p.read_bytes() for p in vwap]
    _pipeline_run(source, root, "stocks_daily")
    assert [p.read_bytes() for p in vwap] == before  # qlib's reading above still holds
    assert _vwap_mismatches(root, read) == dict.fromkeys(SETS, 0)
