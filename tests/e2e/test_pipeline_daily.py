"""``quantmini pipeline daily`` as a scheduled job meets it: the vendor publishes day by day, files get
republished, one data type's file is bad, a manual run holds the lock.

The mirror is published in steps (files copied from a generated sample), so each run sees exactly what a
vendor listing would show that day.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from quantmini.cli.main import cli
from quantmini.datasets import get_spec
from quantmini.io.lock import LakeLock
from quantmini.sample import generate_sample
from tests.support.cli_child import Child
from tests.support.lake_files import lake_contents
from tests.support.mirror_files import day_files, rewrite_day_file

DAILY, MINUTE = get_spec("stocks_daily"), get_spec("stocks_minute")
START, END = dt.date(2025, 9, 2), dt.date(2025, 9, 30)
FIRST_DAY = dt.date(2025, 9, 19)  # what the vendor has published on the first scheduled run
TYPES = ["--data-type", "stocks_daily", "--data-type", "stocks_minute"]


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=True)


def daily(mirror: Path, root: Path, *types: str) -> Result:
    """The scheduled command line: the same every day (``--since`` only matters before a type has data)."""
    chosen = [arg for name in types for arg in ("--data-type", name)] or TYPES
    dates = ["--until", str(END), "--since", str(START)]
    return run("pipeline", "daily", *chosen, *dates, "--source", mirror, "--data-root", root)


@pytest.fixture(scope="module")
def vendor(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every file the vendor will have published by the end of the month."""
    out = tmp_path_factory.mktemp("daily") / "vendor"
    generate_sample(
        out, START, END, tickers=12, seed=5, data_types=("stocks_daily", "stocks_minute"),
        minute_tickers=3, minute_sessions=12,
    )  # fmt: skip
    return out


def publish(vendor: Path, mirror: Path, until: dt.date) -> None:
    """The listing of ``mirror`` as of ``until``: every vendor file of a session up to it (and the REST
    reference responses)."""
    if not (mirror / "rest").exists():
        shutil.copytree(vendor / "rest", mirror / "rest")
    for spec in (DAILY, MINUTE):
        for session, path in day_files(vendor, spec.prefix).items():
            target = mirror / "flatfiles" / spec.source_key(session)
            if session <= until and not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)


def sessions_of(root: Path, layer: str, spec_name: str) -> list[dt.date]:
    manifests = (root / "_manifests" / layer / spec_name).glob("*.json")
    return sorted(dt.date.fromisoformat(p.stem) for p in manifests)


def latest_record(root: Path) -> dict[str, object]:
    """The newest run record (``runs show latest --format json``)."""
    shown = run("runs", "show", "latest", "--format", "json", "--data-root", root)
    assert shown.exit_code == 0, shown.output
    return dict(json.loads(shown.output))


def manifest(root: Path, layer: str, spec_name: str, session: dt.date) -> dict[str, object]:
    return dict(json.loads((root / "_manifests" / layer / spec_name / f"{session}.json").read_text()))


@pytest.mark.slow
def test_day_by_day_ends_with_the_lake_of_one_full_run_and_then_does_nothing(
    vendor: Path, tmp_path: Path
) -> None:
    mirror, root = tmp_path / "mirror", tmp_path / "lake"
    publish(vendor, mirror, FIRST_DAY)
    first = daily(mirror, root)
    assert first.exit_code == 0, first.output
    listed = {spec.name: sorted(day_files(mirror, spec.prefix)) for spec in (DAILY, MINUTE)}
    for name, sessions in listed.items():
        assert sessions_of(root, "bronze", name) == sessions  # everything published, nothing more
    assert f"{len(listed['stocks_daily'])} new session(s) up to {FIRST_DAY}" in first.output
    record = latest_record(root)  # one record for the whole daily run, a report per data type
    assert record["status"] == "ok"
    assert [r["data_type"] for r in record["reports"]] == ["stocks_daily", "stocks_minute"]  # type: ignore[index]
    assert {s["data_type"] for s in record["stages"]} == {"stocks_daily", "stocks_minute"}  # type: ignore[index]

    publish(vendor, mirror, END)
    second = daily(mirror, root)
    assert second.exit_code == 0, second.output
    new = [s for s in day_files(mirror, DAILY.prefix) if s > FIRST_DAY]
    assert f"{len(new)} new session(s) up to {END}" in second.output.replace("\n", " ")
    # Landing fetched only the new files: the earlier sessions keep the manifests of the first day.
    assert "landed" in second.output
    assert "republished" not in second.output

    expected = tmp_path / "full"
    for name in ("stocks_daily", "stocks_minute"):
        full = run(
            "pipeline", "run", "--data-type", name, "--start-date", START, "--end-date", END,
            "--source", mirror, "--data-root", expected,
        )  # fmt: skip
        assert full.exit_code == 0, full.output
    assert lake_contents(root) == lake_contents(expected)

    before = lake_contents(root)
    third = daily(mirror, root)
    assert third.exit_code == 0, third.output
    assert "Nothing new: every data type is as current as its source." in third.output
    assert lake_contents(root) == before


@pytest.mark.slow
def test_a_republished_file_is_picked_up_within_the_window_and_old_ones_are_not_listed(
    vendor: Path, tmp_path: Path
) -> None:
    mirror, root = tmp_path / "mirror", tmp_path / "lake"
    publish(vendor, mirror, END)
    assert daily(mirror, root, "stocks_daily").exit_code == 0
    files = day_files(mirror, DAILY.prefix)
    recent, old = list(files)[-2], min(files)
    before = {s: manifest(root, "landing", "stocks_daily", s) for s in (recent, old)}
    for session in (recent, old):
        rewrite_day_file(files[session], lambda lines: lines[:-1])  # the vendor drops a row

    result = daily(mirror, root, "stocks_daily")
    assert result.exit_code == 0, result.output
    assert "1 republished" in result.output
    landed = manifest(root, "landing", "stocks_daily", recent)
    assert landed["sha256"] != before[recent]["sha256"]
    assert manifest(root, "bronze", "stocks_daily", recent)["input_sha256"] == landed["sha256"]
    # Outside the re-check window (5 sessions): not listed, not landed; `data status` / `pipeline run`.
    assert manifest(root, "landing", "stocks_daily", old) == before[old]


@pytest.mark.slow
def test_one_bad_data_type_fails_the_run_but_not_the_others(vendor: Path, tmp_path: Path) -> None:
    mirror, root = tmp_path / "mirror", tmp_path / "lake"
    publish(vendor, mirror, END)
    last = list(day_files(mirror, MINUTE.prefix).values())[-1]
    last.write_bytes(gzip.compress(b"not,the,header\n1,2,3\n")[:-9])  # truncated, and wrong inside
    result = daily(mirror, root)
    assert result.exit_code == 1
    assert "daily run failed for: stocks_minute" in result.output
    record = latest_record(root)
    assert record["status"] == "failed"
    assert any("stocks_minute" in str(line) or MINUTE.prefix in str(line) for line in record["failures"])  # type: ignore[attr-defined]
    assert sessions_of(root, "bronze", "stocks_daily") == sorted(day_files(mirror, DAILY.prefix))
    assert (root / "gold" / "qlib" / "stocks_daily" / "day" / "calendars" / "day.txt").is_file()


@pytest.mark.slow
def test_a_scheduled_run_waits_for_a_manual_one_with_wait(vendor: Path, tmp_path: Path) -> None:
    mirror, root = tmp_path / "mirror", tmp_path / "lake"
    publish(vendor, mirror, FIRST_DAY)
    args = ["pipeline", "daily", "--data-type", "stocks_daily", "--until", str(END), "--since", str(START)]
    args += ["--source", str(mirror), "--data-root", str(root)]
    with LakeLock(root, "manual run").hold():
        refused = run(*args)
        assert refused.exit_code == 1
        assert "wait with --wait or try later" in refused.output
        child = Child(*args, "--wait")
        try:
            assert child.next_stderr_line().startswith(f"waiting for pid {os.getpid()} ")
            assert not (root / "bronze").exists()  # it waits; nothing written
        except BaseException:
            child.kill()
            raise
    done = child.finish()
    assert done.code == 0, done.stderr
    lock = latest_record(root)["lock"]
    assert "(manual run)" in lock["holder"]  # type: ignore[index]
    assert lock["waited_s"] > 0  # type: ignore[index]
    assert sessions_of(root, "bronze", "stocks_daily") == sorted(day_files(mirror, DAILY.prefix))
