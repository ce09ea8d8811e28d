"""Run records as a user meets them: pipeline commands leave one each, ``runs list`` and ``runs show`` read
them back, a failed run says so, and profiling leaves a profile per stage and the rolling metrics file.

Row counts are checked against the vendor files (lines of each gzip file) and the bronze Parquet files
read with Polars, never against what the pipeline reports about itself.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner, Result

from quantmini.cli.main import cli
from quantmini.datasets import get_spec

SPEC = get_spec("stocks_daily")
START, END = dt.date(2025, 9, 2), dt.date(2025, 9, 30)
RANGE = ["--start-date", str(START), "--end-date", str(END)]

pytestmark = pytest.mark.slow


def run(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], env={"COLUMNS": "200", **(env or {})})


def show(root: Path, ref: str = "latest") -> dict[str, Any]:
    result = run("runs", "show", ref, "--data-root", root, "--format", "json")
    assert result.exit_code == 0, result.output
    record: dict[str, Any] = json.loads(result.stdout)
    return record


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "source"
    result = run("sample", "generate", "--out", out, *RANGE, "--tickers", "10", "--data-type", SPEC.name)
    assert result.exit_code == 0, result.output
    return out


def source_rows(mirror: Path) -> int:
    """Data lines of every vendor file in the range (each file has one header line)."""
    files = sorted((mirror / "flatfiles" / SPEC.prefix).rglob("*.csv.gz"))
    return sum(len(gzip.decompress(f.read_bytes()).splitlines()) - 1 for f in files)


def test_runs_are_recorded_listed_and_shown_with_their_stages(mirror: Path, tmp_path: Path) -> None:
    root = tmp_path / "lake"
    ingest = run("data", "ingest", *RANGE, "--source", mirror, "--data-root", root)
    assert ingest.exit_code == 0, ingest.output
    record = show(root)
    assert ingest.stdout.rstrip().endswith(f"run record: {root / '_runs' / record['run_id']}.json")
    assert record["status"] == "ok"
    assert record["command"].startswith("quantmini data ingest")
    assert [(s["data_type"], s["name"]) for s in record["stages"]] == [
        ("stocks_daily", "landing"),
        ("stocks_daily", "bronze"),
    ]
    landing, bronze = record["stages"]
    partitions = sorted((root / "bronze" / SPEC.name).rglob("*.parquet"))
    assert bronze["files"] == landing["files"] == len(partitions) > 15
    assert bronze["rows_in"] == source_rows(mirror)
    assert bronze["rows_out"] == sum(pl.read_parquet(p).height for p in partitions)
    vendor_bytes = sum(f.stat().st_size for f in (root / "landing").rglob("*.csv.gz"))
    assert landing["bytes_out"] == bronze["bytes_in"] == vendor_bytes
    assert bronze["peak_rss_bytes"] > 0
    assert record["execution"]["executors"] == ["streaming"]
    assert record["profiling"] is False
    assert not (root / "logs").exists()

    profiled = run(
        "pipeline", "run", *RANGE, "--source", mirror, "--data-root", root,
        env={"QUANTMINI_MONITORING_PROFILING": "true"},
    )  # fmt: skip
    assert profiled.exit_code == 0, profiled.output
    second = show(root)
    assert second["run_id"] > record["run_id"]
    names = [s["name"] for s in second["stages"]]
    assert names == ["landing", "bronze", "factors", "silver", "gold"]
    assert second["stages"][1]["files"] == 0  # bronze was up to date
    silver = sorted((root / "silver").glob("*/date=*/part.parquet"))  # every per-session silver table
    assert second["stages"][3]["files"] == len(silver) >= 2 * len(partitions)
    assert second["stages"][3]["rows_out"] == sum(pl.read_parquet(p).height for p in silver)
    for stage in names:
        assert (root / "_runs" / second["run_id"] / f"stocks_daily.{stage}.prof").is_file()
        assert (root / "_runs" / second["run_id"] / f"stocks_daily.{stage}.txt").is_file()
    metrics = json.loads((root / "logs" / "performance" / "performance_metrics.json").read_text())
    assert [r["run_id"] for r in metrics["runs"]] == [second["run_id"]]
    assert [s["name"] for s in metrics["runs"][0]["stages"]] == names

    listed = run("runs", "list", "--data-root", root, "--format", "json")
    assert [r["run_id"] for r in json.loads(listed.stdout)] == [second["run_id"], record["run_id"]]
    table = run("runs", "list", "--data-root", root)
    assert table.exit_code == 0, table.output
    assert record["run_id"] in table.stdout
    assert show(root, record["run_id"][:18])["run_id"] == record["run_id"]  # a unique prefix
    shown = run("runs", "show", second["run_id"], "--data-root", root)
    assert shown.exit_code == 0, shown.output
    assert "stocks_daily silver" in shown.stdout
    assert f"run {second['run_id']}: ok" in shown.stdout


def test_a_failed_run_is_recorded_as_failed_with_its_failures(mirror: Path, tmp_path: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(mirror, source)
    bad = sorted((source / "flatfiles" / SPEC.prefix).rglob("*.csv.gz"))[2]
    bad.write_bytes(gzip.compress(b"ticker,open\nAAA,1\n"))  # a wrong header: bronze fails
    root = tmp_path / "lake"
    result = run("data", "ingest", *RANGE, "--source", source, "--data-root", root)
    assert result.exit_code == 1
    record = show(root)
    assert record["status"] == "failed"
    assert any(bad.name in line and "wrong header" in line for line in record["failures"]), record
    assert "failed" in run("runs", "list", "--data-root", root).stdout


def test_unknown_runs_are_one_line_errors(tmp_path: Path) -> None:
    result = run("runs", "show", "latest", "--data-root", tmp_path)
    assert result.exit_code == 1
    assert result.stderr == f"error: no run records in {tmp_path / '_runs'} (pipeline commands write them)\n"
