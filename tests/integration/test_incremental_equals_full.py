"""Incremental runs equal a build from scratch, byte for byte.

A lake is updated run after run while the source changes under it — new sessions, republished days
(a corrected price, a dropped row, a new ticker), new splits and dividends (inside the history and
pending after it), renames and reused tickers learned from the reference, a deleted gold instrument
folder — and after each step every file of its Qlib roots (total-return and split-only), every silver
table and the factor table must equal what one run over the same source builds in a new lake. Random
sequences of those steps are tried for several seeds.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil
from pathlib import Path

import polars as pl
import pytest

from quantmini.datasets import get_spec
from quantmini.io.lake import Lake
from quantmini.io.source import LocalMirrorSource
from quantmini.pipeline.runner import PipelineRunner
from quantmini.sample import generate_sample
from tests.support.mirror_files import add_reference_record, day_files, rewrite_day_file

SPEC = get_spec("stocks_daily")
#: Both Qlib roots are built and compared.
ADJUSTMENTS = ("total_return", "split")
START, END = dt.date(2025, 3, 3), dt.date(2025, 5, 30)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mirror_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("template") / "mirror"
    generate_sample(out, START, END, tickers=10, seed=5, data_types=("stocks_daily",))
    return out


def _run(root: Path, mirror: Path, end: dt.date, budget_gb: float = 4.0) -> None:
    report = PipelineRunner(Lake(root), SPEC, memory_budget_gb=budget_gb, adjustments=ADJUSTMENTS).run(
        LocalMirrorSource(mirror), START, end
    )
    assert report.failures == [], report.failures


def _snapshot(root: Path) -> dict[str, object]:
    """What must be identical: the Qlib roots' bytes, silver tables' content, the factor table."""
    lake = Lake(root)
    out: dict[str, object] = {}
    for adjustment in ADJUSTMENTS:
        gold = lake.qlib_root(SPEC.name, "day", adjustment)
        for p in sorted(gold.rglob("*")):
            if p.is_file():
                out[f"gold {adjustment}/{p.relative_to(gold).as_posix()}"] = p.read_bytes()
    for part in SPEC.silver:
        table = part.table(SPEC.name)
        for path in sorted(lake.silver_dir(table).glob("date=*/part.parquet")):
            out[f"silver/{table}/{path.parent.name}"] = pl.read_parquet(path)
    out["factors"] = pl.read_parquet(lake.adjustment_factors())
    return out


def _assert_same(incremental: Path, mirror: Path, end: dt.date, scratch: Path, step: str) -> None:
    if scratch.exists():
        shutil.rmtree(scratch)
    _run(scratch, mirror, end)
    got, want = _snapshot(incremental), _snapshot(scratch)
    assert sorted(got) == sorted(want), step
    for name, value in want.items():
        if isinstance(value, pl.DataFrame):
            assert isinstance(got[name], pl.DataFrame)
            assert got[name].equals(value), f"{step}: {name}"  # type: ignore[union-attr]
        else:
            assert got[name] == value, f"{step}: {name} differs"


def _edit_tickers(mirror: Path, edit: object) -> None:
    path = mirror / "rest" / "v3" / "reference" / "tickers.json"
    payload = json.loads(path.read_text())
    assert callable(edit)
    payload["results"] = edit(payload["results"])
    path.write_text(json.dumps(payload))


KINDS = (
    "append",
    "rename",
    "reuse",
    "republish",
    "drop_row",
    "new_ticker",
    "split",
    "dividend",
    "pending",
    "delete",
    "lose_history",
)


def _step(
    kind: str, rng: random.Random, mirror: Path, lake: Path, end: dt.date, sessions: list[dt.date]
) -> tuple[str, dt.date]:
    """Apply one change of ``kind``; return its description and the new end of the range."""
    files = day_files(mirror, SPEC.prefix)
    if kind == "append":
        later = [s for s in sessions if s > end]
        return kind, later[min(len(later) - 1, rng.randint(0, 4))]
    session = rng.choice([s for s in sessions if START < s <= end])
    if kind == "republish":

        def bump(rows: list[str]) -> list[str]:
            i = rng.randrange(len(rows))
            f = rows[i].split(",")
            f[3] = f"{float(f[3]) * 1.01:.2f}"
            f[4] = f"{max(float(f[4]), float(f[3])):.2f}"
            rows[i] = ",".join(f)
            return rows

        rewrite_day_file(files[session], bump)
    elif kind == "drop_row":
        rewrite_day_file(files[session], lambda rows: rows[: len(rows) - 1])
    elif kind == "new_ticker":
        rewrite_day_file(
            files[session], lambda rows: [*rows, rows[0].replace(rows[0].split(",")[0], "NEWT", 1)]
        )
    elif kind in ("split", "pending"):
        day = session if kind == "split" else end + dt.timedelta(days=3)
        ticker = rng.choice(["PRN", "BRK.B", "BApA", "AAA"])
        add_reference_record(
            mirror,
            "splits",
            {"execution_date": day.isoformat(), "split_from": 1, "split_to": 2, "ticker": ticker},
        )
    elif kind == "dividend":
        ticker = rng.choice(["PRN", "BRK.B", "BApA"])
        add_reference_record(
            mirror,
            "dividends",
            {
                "cash_amount": 0.25,
                "dividend_type": "CD",
                "ex_dividend_date": session.isoformat(),
                "ticker": ticker,
                "frequency": 4,
            },
        )
    elif kind == "rename":
        # From ``session`` on, a company trades as NEWCO (the reference says so): one instrument.
        old = rng.choice(["PRN", "BRK.B", "UMWS"])
        for day, path in files.items():
            if day >= session:
                rewrite_day_file(
                    path,
                    lambda rows: [
                        r.replace(f"{old},", "NEWCO,", 1) if r.startswith(f"{old},") else r for r in rows
                    ],
                )

        def rename(records: list[dict[str, object]]) -> list[dict[str, object]]:
            first = next(r for r in records if r["ticker"] == old)
            first["delisted_utc"], first["active"] = f"{session - dt.timedelta(days=1)}T00:00:00Z", False
            return [*records, {**first, "ticker": "NEWCO", "active": True, "delisted_utc": None}]

        _edit_tickers(mirror, rename)
    elif kind == "reuse":
        # Another company takes over the ticker from ``session`` on: two instruments.
        ticker = rng.choice(["PRN", "BApA", "VNON"])

        def reuse(records: list[dict[str, object]]) -> list[dict[str, object]]:
            first = next(r for r in records if r["ticker"] == ticker)
            first["delisted_utc"], first["active"] = f"{session - dt.timedelta(days=1)}T00:00:00Z", False
            second = {**first, "active": True, "list_date": str(session), "delisted_utc": None}
            second["composite_figi"] = f"BBGNEW{rng.randrange(10**5):05d}"
            return [*records, second]

        _edit_tickers(mirror, reuse)
    elif kind == "delete":
        features = Lake(lake).qlib_root(SPEC.name, "day", rng.choice(ADJUSTMENTS)) / "features"
        victims = sorted(p for p in features.iterdir() if p.is_dir())
        shutil.rmtree(rng.choice(victims))
    elif kind == "lose_history":
        # The raw history beside the root is a cache: without it a rewrite reads silver instead.
        history = Lake(lake).gold_state_dir(SPEC.name, "day", rng.choice(ADJUSTMENTS)) / "history"
        for victim in rng.sample(sorted(history.iterdir()), 3):
            victim.unlink()
        add_reference_record(
            mirror,
            "splits",
            {"execution_date": str(session), "split_from": 1, "split_to": 4, "ticker": "AAA"},
        )
    return f"{kind} {session}", end


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_sequences_of_updates_equal_a_build_from_scratch(
    mirror_template: Path, tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    mirror = tmp_path / "mirror"
    shutil.copytree(mirror_template, mirror)
    sessions = list(day_files(mirror, SPEC.prefix))
    lake, scratch = tmp_path / "lake", tmp_path / "scratch"
    end = sessions[25]
    _run(lake, mirror, end)
    _assert_same(lake, mirror, end, scratch, "first build")
    history = []
    # Every kind of change once, in an order of the seed's choosing, then two more at random.
    for kind in [*rng.sample(KINDS, len(KINDS)), rng.choice(KINDS), "append"]:
        step, end = _step(kind, rng, mirror, lake, end, sessions)
        history.append(step)
        _run(lake, mirror, end)
        _assert_same(lake, mirror, end, scratch, " → ".join(history))


def test_appending_one_session_touches_each_file_once_and_rewrites_none(
    mirror_template: Path, tmp_path: Path
) -> None:
    mirror = tmp_path / "mirror"
    shutil.copytree(mirror_template, mirror)
    sessions = list(day_files(mirror, SPEC.prefix))
    # Declared, not yet due: a split two sessions after the appended one and a dividend on its execution
    # date. Neither may be applied, priced or change anything until its session is in the lake.
    pending = sessions[33]
    add_reference_record(
        mirror, "splits", {"execution_date": str(pending), "split_from": 1, "split_to": 2, "ticker": "PRN"}
    )
    add_reference_record(
        mirror,
        "dividends",
        {"cash_amount": 0.25, "dividend_type": "CD", "ex_dividend_date": str(pending), "ticker": "PRN"},
    )
    lake = tmp_path / "lake"
    _run(lake, mirror, sessions[30])
    closes = pl.read_parquet(Lake(lake).silver_reference("dividend_closes"))
    assert pending not in closes["ex_dividend_date"].to_list()  # its close was not looked up
    root = Lake(lake).qlib_root(SPEC.name, "day")
    before = {p: (p.stat().st_ino, p.stat().st_size) for p in root.rglob("*.bin")}
    report = PipelineRunner(Lake(lake), SPEC, adjustments=ADJUSTMENTS).run(
        LocalMirrorSource(mirror), START, sessions[31]
    )
    assert report.factors is not None
    assert not report.factors.changed
    assert report.factors.closes_read == 0
    assert [gold.adjustment for gold in report.gold] == list(ADJUSTMENTS)
    for gold in report.gold:
        assert gold.status == "updated"
        assert gold.appended == 1
        assert gold.rewritten == gold.repaired == 0
    silver = {o.table: o.written for o in report.silver}
    assert silver["stocks_daily"] == 1
    assert all(written <= 1 for written in silver.values()), silver  # no earlier partition rewritten
    after = {p: (p.stat().st_ino, p.stat().st_size) for p in root.rglob("*.bin")}
    # Appended in place (same inode), never replaced; symbols trading that day grew by one value.
    assert all(after[p][0] == ino for p, (ino, _) in before.items() if p in after)
    assert {after[p][1] - size for p, (_, size) in before.items()} <= {0, 4}


def test_a_tiny_memory_budget_builds_the_same_lake_in_many_small_steps(
    mirror_template: Path, tmp_path: Path
) -> None:
    """~2 KB of budget: silver one session per chunk, gold buckets of a few tickers, appends and rewrites in
    small groups — the result must not change."""
    mirror = tmp_path / "mirror"
    shutil.copytree(mirror_template, mirror)
    sessions = list(day_files(mirror, SPEC.prefix))
    small, large = tmp_path / "small", tmp_path / "large"
    _run(small, mirror, sessions[20], budget_gb=2e-6)
    add_reference_record(
        mirror,
        "splits",
        {"execution_date": str(sessions[10]), "split_from": 1, "split_to": 2, "ticker": "PRN"},
    )
    _run(small, mirror, sessions[40], budget_gb=2e-6)
    _assert_same(small, mirror, sessions[40], large, "tiny budget")
