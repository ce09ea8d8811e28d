"""Fault cases through the CLI: torn partitions are repaired, crash leftovers removed, odd roots work, and
every failure of every stage reaches the summary and the exit code."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import shutil
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from quantmini.cli.main import cli
from quantmini.datasets import get_spec
from quantmini.io.duckdb_catalog import connect_catalog
from quantmini.io.lake import Lake
from quantmini.sample import generate_sample

SPEC = get_spec("stocks_daily")
START, END = dt.date(2025, 4, 1), dt.date(2025, 5, 30)


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("faults") / "mirror"
    generate_sample(out, START, END, tickers=10, seed=21, data_types=("stocks_daily",))
    return out


@pytest.fixture(scope="module")
def built(mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("built") / "lake"
    result = run(mirror, root)
    assert result.exit_code == 0, result.output
    return root


def run(mirror: Path, root: Path, start: dt.date = START, end: dt.date = END) -> Result:
    return CliRunner().invoke(
        cli,
        [
            "pipeline",
            "run",
            "--data-type",
            "stocks_daily",
            "--start-date",
            str(start),
            "--end-date",
            str(end),
            "--source",
            str(mirror),
            "--data-root",
            str(root),
        ],
        env={"COLUMNS": "250"},
    )


def copy(root: Path, tmp_path: Path) -> Path:
    target = tmp_path / "lake"
    shutil.copytree(root, target)
    return target


def gold_bytes(root: Path) -> dict[str, str]:
    gold = Lake(root).qlib_root(SPEC.name, "day")
    return {
        p.relative_to(gold).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in gold.rglob("*")
        if p.is_file()
    }


def test_a_torn_bronze_partition_is_named_and_rebuilt_from_landing(
    mirror: Path, built: Path, tmp_path: Path
) -> None:
    root = copy(built, tmp_path)
    lake = Lake(root)
    session = dt.date(2025, 5, 14)
    path = lake.bronze_partition(SPEC, session)
    good = pq.read_table(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # a torn copy
    # The damaged day is outside the requested range: it is found anyway.
    result = run(mirror, root, START, dt.date(2025, 4, 30))
    assert result.exit_code == 0, result.output
    assert f"bronze {session}: {path} was damaged" in result.output
    assert "rebuilt from landing/" in result.output
    assert pq.read_table(path).equals(good)
    assert gold_bytes(root) == gold_bytes(built)


def test_a_leftover_of_a_killed_swap_is_removed(mirror: Path, built: Path, tmp_path: Path) -> None:
    root = copy(built, tmp_path)
    qlib = Lake(root).qlib_root(SPEC.name, "day")
    leftover = qlib.with_name(f".{qlib.name}.tmp-old-0123456789ab")
    shutil.copytree(qlib, leftover)  # a whole previous root, as a kill between the two renames leaves it
    stray = Lake(root).silver_partition(SPEC, START).with_name(".part.parquet.tmp-abcdef012345")
    stray.write_bytes(b"half a file")
    marker = root / "_manifests" / ".run-in-progress"
    assert not marker.exists()  # a run that ended normally leaves no mark
    marker.touch()  # a killed run leaves it
    result = run(mirror, root)
    assert result.exit_code == 0, result.output
    assert not leftover.exists()
    assert not stray.exists()
    assert not marker.exists()
    assert "Nothing to do" in result.output


def test_a_deleted_instrument_folder_is_rebuilt(mirror: Path, built: Path, tmp_path: Path) -> None:
    root = copy(built, tmp_path)
    features = Lake(root).qlib_root(SPEC.name, "day") / "features"
    victim = sorted(features.iterdir())[0]
    shutil.rmtree(victim)
    (sorted(features.iterdir())[1] / "close.day.bin").unlink()
    result = run(mirror, root)
    assert result.exit_code == 0, result.output
    assert "2 symbol(s) repaired" in result.output
    assert gold_bytes(root) == gold_bytes(built)


def test_a_data_root_with_glob_characters_works_end_to_end(mirror: Path, tmp_path: Path) -> None:
    root = tmp_path / "lake[1] *"
    result = run(mirror, root)
    assert result.exit_code == 0, result.output
    with connect_catalog(root) as con:
        rows = con.execute("SELECT count(*) FROM adjusted_stocks_daily").fetchone()
    silver = pl.read_parquet(list((root / "silver" / "stocks_daily").glob("date=*/part.parquet")), glob=False)
    assert rows == (silver.height,)


def test_failures_of_every_stage_reach_the_summary_and_the_exit_code(mirror: Path, tmp_path: Path) -> None:
    source = tmp_path / "mirror"
    shutil.copytree(mirror, source)
    files = sorted((source / "flatfiles" / SPEC.prefix).rglob("*.csv.gz"))
    files[3].write_bytes(gzip.compress(b"ticker,open\nAAA,1\n"))  # a wrong header: bronze fails
    files[5].write_bytes(b"\x1f\x8b\x08 not gzip at all")  # corrupt: landing fails
    root = tmp_path / "lake"
    # A silver partition cannot be written: a directory stands where the file goes.
    blocked = Lake(root).silver_partition(SPEC, dt.date.fromisoformat(files[10].name[:10]))
    blocked.mkdir(parents=True)
    result = run(source, root)
    assert result.exit_code == 1
    failed = [line for line in result.output.splitlines() if line.startswith("failed:")]
    assert any(files[3].name in line and "wrong header" in line for line in failed), failed
    assert any(files[5].name[:10] in line and "gzip" in line for line in failed), failed
    assert any(line.startswith("failed: silver stocks_daily") and str(blocked) in line for line in failed), (
        failed
    )
    # Everything else was still built: gold holds every symbol, with NaN where data is missing.
    assert "gold stocks_daily/day" in result.output
    assert "session(s) without data" in result.output
