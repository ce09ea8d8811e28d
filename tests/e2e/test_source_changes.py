"""What the source does after files were landed, through the CLI on a generated mirror.

A file deleted upstream keeps its data and is reported; a bad republished version (wrong header, zero
bytes, empty gzip) never destroys the good raw copy, and a later good version replaces it cleanly; a
range without sessions or a source without the data type says that nothing happened.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from quantmini.cli.main import cli
from quantmini.datasets import get_spec
from quantmini.sample import generate_sample

SPEC = get_spec("stocks_daily")
START, END = "2025-09-02", "2025-09-12"
SESSION = dt.date(2025, 9, 5)
KEY = SPEC.source_key(SESSION)


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=True)


def stage(command: str, source: Path, root: Path) -> Result:
    """``data download`` / ``data ingest`` / ``pipeline run`` over the whole sample range."""
    group = "pipeline" if command == "run" else "data"
    return run(
        group,
        command,
        "--start-date",
        START,
        "--end-date",
        END,
        "--source",
        source,
        "--data-root",
        root,
    )


def lines_starting(result: Result, prefix: str) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith(prefix)]


def republish(path: Path, data: bytes) -> None:
    """The vendor replaces a file: new bytes and a later modification time (a new version)."""
    mtime = path.stat().st_mtime + 60
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))


def bronze_partition(root: Path) -> Path:
    return root / "bronze" / "stocks_daily" / f"date={SESSION}" / "part.parquet"


def versions_area(root: Path) -> Path:
    return root / "landing" / ".versions"


def kept_files(root: Path) -> list[Path]:
    area = versions_area(root)
    return sorted(p for p in area.rglob("*") if p.is_file()) if area.exists() else []


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("changes") / "mirror"
    generate_sample(
        out,
        dt.date.fromisoformat(START),
        dt.date.fromisoformat(END),
        tickers=8,
        seed=3,
        data_types=("stocks_daily",),
    )
    return out


@pytest.fixture
def mirror(generated: Path, tmp_path: Path) -> Path:
    """A private copy of the generated mirror, free to change."""
    return Path(shutil.copytree(generated, tmp_path / "mirror"))


def test_file_deleted_upstream_is_reported_and_its_data_kept(mirror: Path, tmp_path: Path) -> None:
    root = tmp_path / "lake"
    first = stage("run", mirror, root)
    assert first.exit_code == 0, first.output
    landed = (root / "landing" / KEY).read_bytes()
    bronze = bronze_partition(root).read_bytes()
    silver = root / "silver" / "stocks_daily" / f"date={SESSION}" / "part.parquet"
    silver_bytes = silver.read_bytes()

    (mirror / "flatfiles" / KEY).unlink()
    second = stage("run", mirror, root)
    assert second.exit_code == 0, second.output
    assert "Nothing to do" not in second.output
    warnings = [line for line in lines_starting(second, "warning:") if "deleted upstream" in line]
    assert len(warnings) == 1, second.output
    assert str(SESSION) in warnings[0]
    assert "1 deleted_upstream" in second.output
    assert (root / "landing" / KEY).read_bytes() == landed
    assert bronze_partition(root).read_bytes() == bronze
    assert silver.read_bytes() == silver_bytes

    catalog = run(
        "data", "catalog", "--start-date", START, "--end-date", END, "--source", mirror, "--data-root", root
    )
    assert catalog.exit_code == 0, catalog.output
    assert f"{SESSION} │ deleted upstream" in catalog.output
    assert "2025-09-04 │ downloaded" in catalog.output
    assert "1 deleted upstream" in catalog.output


def _wrong_header(good: bytes) -> bytes:
    return gzip.compress(b"symbol,vol\nAAPL,1\n")


def _zero_bytes(good: bytes) -> bytes:
    return b""


def _empty_gzip(good: bytes) -> bytes:
    return gzip.compress(b"")


@pytest.mark.parametrize(
    ("make_bad", "refused_at_landing", "message"),
    [
        (_wrong_header, False, "wrong header 'symbol,vol'"),
        (_zero_bytes, True, "empty file (0 bytes)"),
        (_empty_gzip, False, "file is empty (no header)"),
    ],
    ids=["wrong_header", "zero_bytes", "empty_gzip"],
)
def test_bad_republished_version_keeps_the_previous_raw_file_and_bronze(
    make_bad: Callable[[bytes], bytes], refused_at_landing: bool, message: str, mirror: Path, tmp_path: Path
) -> None:
    root = tmp_path / "lake"
    assert stage("ingest", mirror, root).exit_code == 0
    good = (root / "landing" / KEY).read_bytes()
    assert good == (mirror / "flatfiles" / KEY).read_bytes()
    bronze = bronze_partition(root).read_bytes()
    bad = make_bad(good)
    republish(mirror / "flatfiles" / KEY, bad)
    kept_at = versions_area(root) / f"{KEY}.{hashlib.sha256(good).hexdigest()[:12]}"

    for attempt in range(2):  # a re-run fails the same way and keeps exactly one copy
        result = stage("ingest", mirror, root)
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output
        failed = lines_starting(result, "failed:")
        assert len(failed) == 1, result.output
        assert KEY in failed[0]
        assert message in failed[0]
        assert bronze_partition(root).read_bytes() == bronze, attempt
        if refused_at_landing:
            assert (root / "landing" / KEY).read_bytes() == good
            assert kept_files(root) == []
        else:
            assert (root / "landing" / KEY).read_bytes() == bad  # landing holds what the source serves
            assert kept_files(root) == [kept_at]
            assert kept_at.read_bytes() == good
            kept_lines = lines_starting(result, "kept:")
            assert len(kept_lines) == 1, result.output
            assert str(kept_at) in kept_lines[0]
            assert str(SESSION) in kept_lines[0]

    rows = gzip.decompress(good).decode().splitlines()
    corrected = rows[:-1]  # the vendor's next version: one row fewer
    republish(mirror / "flatfiles" / KEY, gzip.compress(("\n".join(corrected) + "\n").encode()))
    fixed = stage("ingest", mirror, root)
    assert fixed.exit_code == 0, fixed.output
    assert lines_starting(fixed, "kept:") == []
    assert kept_files(root) == []
    assert not versions_area(root).exists()
    assert bronze_partition(root).read_bytes() != bronze
    manifest = (root / "_manifests" / "bronze" / "stocks_daily" / f"{SESSION}.json").read_text()
    assert f'"rows_in": {len(corrected) - 1}' in manifest


def test_download_alone_keeps_the_previous_version_until_bronze_accepts_one(
    mirror: Path, tmp_path: Path
) -> None:
    root = tmp_path / "lake"
    assert stage("ingest", mirror, root).exit_code == 0
    good = (root / "landing" / KEY).read_bytes()
    republish(mirror / "flatfiles" / KEY, _wrong_header(good))
    kept_at = versions_area(root) / f"{KEY}.{hashlib.sha256(good).hexdigest()[:12]}"

    for _ in range(2):
        download = stage("download", mirror, root)
        assert download.exit_code == 0, download.output
        assert kept_files(root) == [kept_at]
        assert kept_at.read_bytes() == good
        assert any(str(kept_at) in line for line in lines_starting(download, "kept:")), download.output

    ingest = stage("ingest", mirror, root)
    assert ingest.exit_code == 1
    assert kept_files(root) == [kept_at]

    # The vendor goes back to the good bytes: bronze holds them already, so the copy is no longer needed.
    republish(mirror / "flatfiles" / KEY, good)
    again = stage("ingest", mirror, root)
    assert again.exit_code == 0, again.output
    assert (root / "landing" / KEY).read_bytes() == good
    assert kept_files(root) == []


def test_range_without_a_session_touches_no_reference_table(mirror: Path, tmp_path: Path) -> None:
    assert (mirror / "rest" / "v3" / "reference" / "splits.json").exists()
    root = tmp_path / "lake"
    result = run(
        "data",
        "ingest",
        "--start-date",
        "2025-09-06",
        "--end-date",
        "2025-09-07",
        "--source",
        mirror,
        "--data-root",
        root,
    )
    assert result.exit_code == 0, result.output
    assert "no XNYS session in the range" in result.output
    assert not (root / "bronze" / "reference").exists()


def test_source_without_the_data_type_warns_naming_prefix_and_source(mirror: Path, tmp_path: Path) -> None:
    root = tmp_path / "lake"
    result = run(
        "data",
        "ingest",
        "--data-type",
        "options_daily",
        "--start-date",
        "2025-09-02",
        "--end-date",
        "2025-09-03",
        "--source",
        mirror,
        "--data-root",
        root,
    )
    assert result.exit_code == 0, result.output
    assert "Nothing to do" not in result.output
    warnings = lines_starting(result, "warning:")
    assert len(warnings) == 1, result.output
    assert "us_options_opra/day_aggs_v1/2025/09/" in warnings[0]
    assert f"local mirror {mirror}" in warnings[0]
    assert "2 sessions" in warnings[0]
    assert not (root / "bronze" / "options_daily").exists()
