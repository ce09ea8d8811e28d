"""The split-only Qlib root (``gold.adjustment = ["total_return", "split"]``) on generated data: read back
with real pyqlib and checked against the raw bars and a plain pandas reference of the split factors; a
new dividend rewrites the total-return root and leaves the split-only root's files untouched."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from quantmini.datasets import get_spec
from quantmini.io.lake import Lake
from quantmini.io.source import LocalMirrorSource
from quantmini.pipeline.runner import PipelineReport, PipelineRunner
from quantmini.sample import generate_sample
from tests.support.qlib_child import read_with_qlib
from tests.support.reference_factors import reference_factors

SPEC = get_spec("stocks_daily")
START, END = dt.date(2025, 3, 3), dt.date(2025, 5, 30)
BOTH = ("total_return", "split")


def _run(root: Path, source: Path) -> PipelineReport:
    report = PipelineRunner(Lake(root), SPEC, adjustments=BOTH).run(LocalMirrorSource(source), START, END)
    assert report.failures == [], report.failures
    return report


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, PipelineReport]:
    base = tmp_path_factory.mktemp("split_root")
    source, root = base / "source", base / "lake"
    generate_sample(source, START, END, tickers=10, seed=5, data_types=("stocks_daily",))
    return source, root, _run(root, source)


def _record(source: Path) -> dict[str, Any]:
    return json.loads((source / "sample.json").read_text())


def _stored(ticker: str) -> str:
    """The root's instrument of ``ticker``: lower-case letters become ``_`` + the letter (BApA → BA_PA)."""
    return re.sub("[a-z]", lambda m: "_" + m.group().upper(), ticker)


def _files(root: Path) -> dict[str, tuple[str, int]]:
    """Every file of a Qlib root: its SHA-256 and modification time."""
    return {
        p.relative_to(root).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_both_roots_are_built_each_with_its_own_state(built: tuple[Path, Path, PipelineReport]) -> None:
    _, root, report = built
    assert [(o.name, o.status, o.root) for o in report.gold] == [
        ("stocks_daily/day (total return)", "built", root / "gold" / "qlib" / "stocks_daily" / "day"),
        ("stocks_daily/day (split-only)", "built", root / "gold" / "qlib_split" / "stocks_daily" / "day"),
    ]
    for state in ("gold", "gold_split"):
        assert (root / "_manifests" / state / "stocks_daily" / "day" / "state.json").is_file()
    assert report.gold[0].symbols == report.gold[1].symbols > 0


@pytest.mark.slow
def test_the_split_root_read_with_qlib_is_raw_times_the_split_factor(
    built: tuple[Path, Path, PipelineReport], tmp_path: Path
) -> None:
    source, root, _ = built
    expressions = ["$open", "$close", "$volume", "$factor", "$vwap", "$change"]
    split_root = Lake(root).qlib_root("stocks_daily", "day", "split")
    meta, features = read_with_qlib(split_root, "day", expressions, tmp_path)
    calendar = [dt.date.fromisoformat(d[:10]) for d in meta["calendar"]]

    actions = _record(source)["corporate_actions"]
    splits = pd.DataFrame(actions["splits"])
    splits["execution_date"] = pd.to_datetime(splits.execution_date).dt.date
    renames = pd.DataFrame(actions["ticker_changes"]).rename(columns={"date": "change_date"})
    renames["change_date"] = pd.to_datetime(renames.change_date).dt.date
    no_dividends = pd.DataFrame(columns=["ticker", "ex_dividend_date", "cash_amount"])

    bars = pd.read_parquet(root / "bronze" / "stocks_daily")
    bars["session_date"] = pd.to_datetime(bars.session_date).dt.date
    factors = reference_factors(bars[["ticker", "session_date", "close"]], splits, no_dividends, renames)
    bars = bars.merge(factors, on=["ticker", "session_date"], validate="one_to_one")
    # Renamed companies are left out: how their instruments are named is not this test's subject.
    bars = bars[~bars.ticker.isin({*renames.old_ticker, *renames.new_ticker})]
    assert set(splits.ticker) <= set(bars.ticker)

    f = bars.split_factor
    bars["$open"], bars["$close"] = bars.open * f, bars.close * f
    bars["$volume"], bars["$factor"] = bars.volume / f, f
    bars["$vwap"] = (bars.high + bars.low + bars.close) / 3 * f
    expected = []
    for ticker, group in bars.groupby("ticker"):
        g = group.set_index("session_date").reindex(pd.Index(calendar, name="session_date"))
        g["$change"] = g["$close"] / g["$close"].shift(1) - 1  # the price return: no dividend in it
        g["instrument"] = _stored(str(ticker))
        expected.append(g[g.ticker.notna()].reset_index())
    want = pd.concat(expected).set_index(["instrument", "session_date"])

    features["session_date"] = pd.to_datetime(features.datetime).dt.date
    got = features.rename(columns={f"c{i}": e for i, e in enumerate(expressions)})
    got = got.set_index(["instrument", "session_date"]).loc[want.index]
    for expr in expressions:
        act = got[expr].to_numpy(dtype=np.float32)
        exp = want[expr].to_numpy(dtype=np.float64).astype(np.float32)
        np.testing.assert_array_equal(np.isnan(act), np.isnan(exp), err_msg=expr)
        np.testing.assert_allclose(act[~np.isnan(act)], exp[~np.isnan(exp)], rtol=1e-6, err_msg=expr)
    # Across each split the raw close jumps by the ratio; the split-only close moves like any day.
    for split in splits.itertuples():
        series = want.loc[_stored(split.ticker)]
        after = series[series.index >= split.execution_date].iloc[0]
        assert abs(after["$change"]) < 0.15
    # The traded value is the same raw or adjusted.
    traded = (got["$close"] * got["$volume"]).to_numpy(dtype=np.float64)
    np.testing.assert_allclose(traded, (want.close * want.volume).to_numpy(), rtol=1e-5)


def _add_dividend(source: Path, ticker: str, ex_date: dt.date) -> None:
    path = source / "rest" / "v3" / "reference" / "dividends.json"
    payload = json.loads(path.read_text())
    record = {
        "cash_amount": 0.5,
        "dividend_type": "CD",
        "ex_dividend_date": ex_date.isoformat(),
        "ticker": ticker,
        "frequency": 4,
    }
    record["id"] = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:20]
    payload["results"].append(record)
    path.write_text(json.dumps(payload))


@pytest.mark.slow
def test_a_dividend_rewrites_the_total_return_root_and_not_the_split_root(
    built: tuple[Path, Path, PipelineReport], tmp_path: Path
) -> None:
    shutil.copytree(built[0], tmp_path / "source")
    shutil.copytree(built[1], tmp_path / "lake")
    source, root = tmp_path / "source", tmp_path / "lake"
    lake = Lake(root)
    total_root, split_root = (lake.qlib_root("stocks_daily", "day", a) for a in BOTH)
    total_before, split_before = _files(total_root), _files(split_root)
    # A ticker with a split (its split root files hold factors other than 1) gets a dividend mid-history.
    split = _record(source)["corporate_actions"]["splits"][0]
    sessions = sorted(_record(source)["files"]["stocks_daily"])
    _add_dividend(source, split["ticker"], dt.date.fromisoformat(sessions[30]))

    report = _run(root, source)
    assert report.factors is not None
    assert report.factors.changed
    total, only = report.gold
    assert (total.adjustment, total.rewritten) == ("total_return", 1)
    assert (only.adjustment, only.rewritten) == ("split", 0)
    split_after = _files(split_root)
    assert {n: sha for n, (sha, _) in split_after.items()} == {n: sha for n, (sha, _) in split_before.items()}
    bins = {n: v for n, v in split_before.items() if n.startswith("features/")}
    assert bins
    assert all(split_after[n] == v for n, v in bins.items())  # not even rewritten
    total_after = _files(total_root)
    changed = {name.split("/")[1] for name, (sha, _) in total_after.items() if total_before[name][0] != sha}
    assert changed == {_stored(split["ticker"]).lower()}
