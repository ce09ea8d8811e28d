"""Landing and bronze on a hand-built mirror: byte-identity, manifests, re-runs, bad input, interrupts."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import os
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from quantmini import ValidationError
from quantmini.datasets import get_spec
from quantmini.io.lake import Lake
from quantmini.io.source import LocalMirrorSource
from quantmini.pipeline.bronze import ingest_session
from quantmini.pipeline.landing import LandingOutcome, land_sessions
from quantmini.pipeline.runner import PipelineReport, PipelineRunner

SPEC = get_spec("stocks_daily")
HEADER = "ticker,volume,open,close,high,low,window_start,transactions"
D1, D2, D3 = dt.date(2025, 6, 2), dt.date(2025, 6, 3), dt.date(2025, 6, 4)


def _day_start_ns(day: dt.date) -> int:
    # June: EDT = UTC-4, so 00:00 ET = 04:00Z.
    return int(dt.datetime(day.year, day.month, day.day, 4, tzinfo=dt.UTC).timestamp()) * 10**9


def _write(mirror: Path, day: dt.date, lines: list[str]) -> Path:
    path = mirror / "flatfiles" / SPEC.source_key(day)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(("\n".join([HEADER, *lines]) + "\n").encode(), mtime=0))
    return path


def _rows(day: dt.date) -> list[str]:
    ws = _day_start_ns(day)
    return [
        f"MSFT,1000,400.5,401,402,399,{ws},10",
        f"AAPL,2000,190.25,191,192,189.5,{ws},20",
        f"BRK.B,300.5,410,411,412,409,{ws},3",
        f"AAPL,2000,190.25,191,192,189.5,{ws},20",  # exact duplicate
        f"BAD,10,5,5,4,6,{ws},1",  # high < low
        f"NEXT,10,5,5,6,4,{_day_start_ns(day + dt.timedelta(days=1))},1",  # stray row of the next session
    ]


def land_session(lake: Lake, source: LocalMirrorSource, spec: object, session: dt.date) -> LandingOutcome:
    outcomes, failures = land_sessions(lake, source, SPEC, [session])
    assert failures == []
    return outcomes[0]


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    root = tmp_path / "mirror"
    for day in (D1, D2):
        _write(root, day, _rows(day))
    return root


def test_landing_is_byte_identical_with_manifest_and_skips_unchanged(mirror: Path, tmp_path: Path) -> None:
    lake, source = Lake(tmp_path / "lake"), LocalMirrorSource(mirror)
    outcome = land_session(lake, source, SPEC, D1)
    assert outcome.status == "landed"
    original = (mirror / "flatfiles" / SPEC.source_key(D1)).read_bytes()
    assert lake.landing_file(SPEC.source_key(D1)).read_bytes() == original
    manifest = json.loads(lake.manifest("landing", SPEC, D1).read_text())
    assert manifest["sha256"] == hashlib.sha256(original).hexdigest()
    assert manifest["size"] == len(original)
    assert manifest["key"] == SPEC.source_key(D1)
    assert manifest["source"]["etag"]

    assert land_session(lake, source, SPEC, D1).status == "unchanged"
    assert land_session(lake, source, SPEC, D3).status == "missing"


def test_bronze_types_sorting_quarantine_and_conservation(mirror: Path, tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    land_session(lake, LocalMirrorSource(mirror), SPEC, D1)
    outcome = ingest_session(lake, SPEC, D1)
    assert (outcome.rows_in, outcome.rows_bronze, outcome.rows_quarantined, outcome.duplicates) == (
        6,
        3,
        2,
        1,
    )
    assert outcome.reasons == {"ohlc_inconsistent": 1, "outside_session": 1}

    table = pq.read_table(lake.bronze_partition(SPEC, D1))
    assert table.schema.equals(SPEC.bronze_schema, check_metadata=False)
    assert table.column("ticker").to_pylist() == ["AAPL", "BRK.B", "MSFT"]
    assert table.column("volume").to_pylist() == [2000.0, 300.5, 1000.0]
    assert set(table.column("session_date").to_pylist()) == {D1}
    assert str(table.column("ts")[0].as_py()) == "2025-06-02 00:00:00-04:00"

    quarantine = pq.read_table(lake.quarantine_partition(SPEC, D1)).to_pylist()
    assert [(q["line"], q["reason"], q["ticker"]) for q in quarantine] == [
        (6, "ohlc_inconsistent", "BAD"),
        (7, "outside_session", "NEXT"),
    ]
    assert quarantine[0]["raw"] == _rows(D1)[4]
    assert quarantine[0]["source_file"] == f"landing/{SPEC.source_key(D1)}"


def test_republished_file_reflows_and_rerun_is_noop(mirror: Path, tmp_path: Path) -> None:
    lake, source = Lake(tmp_path / "lake"), LocalMirrorSource(mirror)
    runner = PipelineRunner(lake, SPEC)
    first = PipelineReport("stocks_daily", sessions=[D1, D2])
    runner.land(source, first.sessions, first)
    runner.ingest(first.sessions, first)
    assert [o.status for o in first.ingest] == ["ingested", "ingested"]

    again = PipelineReport("stocks_daily", sessions=[D1, D2])
    runner.land(source, again.sessions, again)
    runner.ingest(again.sessions, again)
    assert [o.status for o in again.landing] == ["unchanged", "unchanged"]
    assert [o.status for o in again.ingest] == ["unchanged", "unchanged"]

    _write(mirror, D2, _rows(D2)[:2])  # the vendor replaces the file
    third = PipelineReport("stocks_daily", sessions=[D1, D2])
    runner.land(source, third.sessions, third)
    runner.ingest(third.sessions, third)
    assert [o.status for o in third.landing] == ["unchanged", "republished"]
    assert [o.status for o in third.ingest] == ["unchanged", "ingested"]
    assert pq.read_table(lake.bronze_partition(SPEC, D2)).num_rows == 2
    assert not lake.quarantine_partition(SPEC, D2).exists()


def test_corrupt_gzip_is_one_clear_failure_and_other_files_proceed(mirror: Path, tmp_path: Path) -> None:
    path = mirror / "flatfiles" / SPEC.source_key(D2)
    path.write_bytes(path.read_bytes()[:40])  # truncated download
    lake = Lake(tmp_path / "lake")
    runner = PipelineRunner(lake, SPEC)
    report = PipelineReport("stocks_daily", sessions=[D1, D2])
    runner.land(LocalMirrorSource(mirror), report.sessions, report)
    runner.ingest(report.sessions, report)
    assert [o.session for o in report.ingest if o.status == "ingested"] == [D1]
    assert len(report.failures) == 1
    assert (
        "landing 2025-06-03: us_stocks_sip/day_aggs_v1/2025/06/2025-06-03.csv.gz: truncated gzip"
        in (report.failures[0])
    )
    assert not lake.landing_file(SPEC.source_key(D2)).exists()
    assert not list(lake.landing_file(SPEC.source_key(D2)).parent.glob(".*partial*"))
    assert lake.bronze_partition(SPEC, D1).exists()
    assert not lake.bronze_partition(SPEC, D2).exists()


def test_wrong_header_names_the_file(mirror: Path, tmp_path: Path) -> None:
    path = mirror / "flatfiles" / SPEC.source_key(D1)
    path.write_bytes(gzip.compress(b"symbol,vol\nA,1\n"))
    lake = Lake(tmp_path / "lake")
    land_session(lake, LocalMirrorSource(mirror), SPEC, D1)
    with pytest.raises(ValidationError, match=r"2025-06-02\.csv\.gz: wrong header 'symbol,vol'"):
        ingest_session(lake, SPEC, D1)


def test_interrupt_mid_write_keeps_previous_partition_and_rerun_recovers(
    mirror: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake, source = Lake(tmp_path / "lake"), LocalMirrorSource(mirror)
    land_session(lake, source, SPEC, D1)
    ingest_session(lake, SPEC, D1)
    before = lake.bronze_partition(SPEC, D1).read_bytes()
    manifest_before = lake.manifest("bronze", SPEC, D1).read_text()

    _write(mirror, D1, _rows(D1)[:1])
    land_session(lake, source, SPEC, D1)

    def interrupted(table: object, where: object, **kwargs: object) -> None:
        Path(str(where)).write_bytes(b"PAR1 half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(pq, "write_table", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ingest_session(lake, SPEC, D1)
    assert lake.bronze_partition(SPEC, D1).read_bytes() == before
    assert lake.manifest("bronze", SPEC, D1).read_text() == manifest_before
    leftovers = [p.name for p in lake.bronze_partition(SPEC, D1).parent.iterdir()]
    assert leftovers == ["part.parquet"]

    monkeypatch.undo()
    outcome = ingest_session(lake, SPEC, D1)
    assert (outcome.status, outcome.rows_bronze) == ("ingested", 1)


def test_run_sweeps_temporaries_of_a_killed_run_but_not_fresh_ones(mirror: Path, tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    partition_dir = lake.bronze_partition(SPEC, D1).parent
    partition_dir.mkdir(parents=True)
    stale = partition_dir / ".part.parquet.tmp-0123456789ab"
    fresh = partition_dir / ".part.parquet.tmp-ba9876543210"
    stale.write_bytes(b"half a file")
    fresh.write_bytes(b"being written by another run")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    # A killed run leaves its in-progress marker behind; that is what makes the next run sweep.
    (lake.root / "_manifests").mkdir()
    (lake.root / "_manifests" / ".run-in-progress").touch()
    report = PipelineRunner(lake, SPEC).run(LocalMirrorSource(mirror), D1, D2, last_stage="bronze")
    assert report.failures == []
    assert not stale.exists()
    assert fresh.exists()
    assert lake.bronze_partition(SPEC, D1).exists()


def test_a_run_killed_after_keeping_the_old_file_keeps_it_under_its_own_name(
    mirror: Path, tmp_path: Path
) -> None:
    lake, source = Lake(tmp_path / "lake"), LocalMirrorSource(mirror)
    land_session(lake, source, SPEC, D1)
    assert ingest_session(lake, SPEC, D1).status == "ingested"
    key = SPEC.source_key(D1)
    old = lake.landing_file(key).read_bytes()
    kept = lake.root / "landing" / ".versions" / f"{key}.{hashlib.sha256(old).hexdigest()[:12]}"
    # The state a kill leaves between moving the landed file aside and renaming the new one in.
    kept.parent.mkdir(parents=True)
    lake.landing_file(key).rename(kept)
    path = _write(mirror, D1, _rows(D1)[:2])
    os.utime(path, (path.stat().st_mtime + 60,) * 2)

    assert land_session(lake, source, SPEC, D1).status == "republished"
    assert lake.landing_file(key).read_bytes() == path.read_bytes()
    assert kept.read_bytes() == old
    manifest = json.loads(lake.manifest("landing", SPEC, D1).read_text())
    assert manifest["kept_version"]["path"] == kept.relative_to(lake.root).as_posix()
    assert manifest["kept_version"]["sha256"] == hashlib.sha256(old).hexdigest()

    assert ingest_session(lake, SPEC, D1).rows_in == 2
    assert not kept.exists()
    assert not lake.landing_versions_dir().exists()
    assert "kept_version" not in json.loads(lake.manifest("landing", SPEC, D1).read_text())
