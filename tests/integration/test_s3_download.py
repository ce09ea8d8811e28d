"""Landing from a real S3 endpoint on 127.0.0.1 (moto server) through a fault-injecting proxy.

Every scenario ends by checking that landed files are byte-identical to what was uploaded and that the
manifest records the object's real ETag, size, LastModified and sha256.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from quantmini import NotEntitledError
from quantmini.cli.main import cli
from quantmini.datasets import get_spec
from quantmini.io.lake import Lake
from quantmini.io.s3_source import RetryPolicy, S3Source
from quantmini.io.source import LocalMirrorSource
from quantmini.pipeline.landing import land_sessions
from quantmini.pipeline.runner import PipelineReport, PipelineRunner
from quantmini.sample import generate_sample
from tests.support.clock import VirtualClock
from tests.support.s3_server import (
    ACCESS_KEY,
    BUCKET,
    SECRET_KEY,
    Rule,
    S3Endpoint,
    start_endpoint,
    stop_endpoint,
)

DAILY = get_spec("stocks_daily")
MINUTE = get_spec("stocks_minute")
START, END = dt.date(2025, 9, 2), dt.date(2025, 9, 12)
MINUTE_DAY = dt.date(2025, 9, 3)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("s3") / "mirror"
    generate_sample(out, START, END, tickers=30, seed=5, data_types=("stocks_daily",))
    generate_sample(
        out / "minute",
        MINUTE_DAY,
        MINUTE_DAY,
        tickers=300,
        minute_tickers=300,
        seed=5,
        data_types=("stocks_minute",),
    )
    return out


def _files(sample: Path) -> dict[str, bytes]:
    files = {}
    for base in (sample / "flatfiles", sample / "minute" / "flatfiles"):
        for path in base.rglob("*.csv.gz"):
            files[path.relative_to(base).as_posix()] = path.read_bytes()
    return files


@pytest.fixture(scope="module")
def endpoint() -> Iterator[S3Endpoint]:
    started = start_endpoint()
    yield started
    stop_endpoint(started)


@pytest.fixture
def s3(endpoint: S3Endpoint, sample: Path) -> S3Endpoint:
    """A freshly seeded bucket and a proxy with no rules."""
    existing = endpoint.client.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    for item in existing:
        endpoint.client.delete_object(Bucket=BUCKET, Key=item["Key"])
    for key, data in _files(sample).items():
        endpoint.client.put_object(Bucket=BUCKET, Key=key, Body=data)
    endpoint.proxy.reset()
    return endpoint


def source_for(s3: S3Endpoint, concurrency: int = 4, clock: VirtualClock | None = None) -> S3Source:
    """A source through the fault proxy whose retry waits run on virtual time (instant, recorded).

    Virtual waits cost nothing, so the retry policy is the production default.
    """
    return S3Source(
        endpoint=s3.proxy.url,
        bucket=BUCKET,
        region="us-east-1",
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        concurrency=concurrency,
        retry=RetryPolicy(),
        clock=clock or VirtualClock(),
    )


def daily_sessions(sample: Path) -> list[dt.date]:
    record = json.loads((sample / "sample.json").read_text())
    return [dt.date.fromisoformat(s) for s in record["sessions"]]


def assert_landed_exactly(lake: Lake, s3: S3Endpoint, keys: list[str]) -> None:
    for key in keys:
        head = s3.client.head_object(Bucket=BUCKET, Key=key)
        body = s3.client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        assert lake.landing_file(key).read_bytes() == body, key
        session = dt.date.fromisoformat(key[-17:-7])
        spec = MINUTE if "minute" in key else DAILY
        manifest = json.loads(lake.manifest("landing", spec, session).read_text())
        assert manifest["sha256"] == hashlib.sha256(body).hexdigest()
        assert manifest["size"] == len(body) == head["ContentLength"]
        assert manifest["source"]["etag"] == head["ETag"]
        assert dt.datetime.fromisoformat(manifest["source"]["last_modified"]) == head["LastModified"]
    # Hidden names are temporaries, except the versions area (checked by the tests that replace a file).
    versions = lake.landing_versions_dir()
    leftovers = [p for p in lake.root.rglob("*") if p.name.startswith(".") and p != versions]
    assert leftovers == []


def test_full_download_then_rerun_is_a_noop(s3: S3Endpoint, sample: Path, tmp_path: Path) -> None:
    lake, sessions = Lake(tmp_path / "lake"), daily_sessions(sample)
    outcomes, failures = land_sessions(lake, source_for(s3), DAILY, sessions)
    assert failures == []
    assert [o.status for o in outcomes] == ["landed"] * len(sessions)
    assert_landed_exactly(lake, s3, [DAILY.source_key(s) for s in sessions])
    assert len(s3.proxy.object_gets()) == len(sessions)

    s3.proxy.reset()
    again, failures = land_sessions(lake, source_for(s3), DAILY, sessions)
    assert failures == []
    assert [o.status for o in again] == ["unchanged"] * len(sessions)
    assert s3.proxy.object_gets() == []  # only listings: nothing fetched again


def test_republished_file_is_detected_and_fetched_again(s3: S3Endpoint, sample: Path, tmp_path: Path) -> None:
    lake, sessions = Lake(tmp_path / "lake"), daily_sessions(sample)
    land_sessions(lake, source_for(s3), DAILY, sessions)
    key = DAILY.source_key(sessions[2])
    first_version = lake.landing_file(key).read_bytes()
    s3.client.put_object(
        Bucket=BUCKET, Key=key, Body=(sample / "flatfiles" / DAILY.source_key(sessions[3])).read_bytes()
    )

    catalog = CliRunner().invoke(
        cli,
        [
            "data",
            "catalog",
            "--start-date",
            str(START),
            "--end-date",
            str(END),
            "--data-root",
            str(lake.root),
        ],
        env={
            "POLYGON_S3_ENDPOINT": s3.proxy.url,
            "POLYGON_S3_ACCESS_KEY_ID": ACCESS_KEY,
            "POLYGON_S3_SECRET_ACCESS_KEY": SECRET_KEY,
        },
    )
    assert catalog.exit_code == 0, catalog.output
    assert f"{sessions[2]} │ republished upstream" in catalog.output
    assert f"{sessions[1]} │ downloaded" in catalog.output

    outcomes, _ = land_sessions(lake, source_for(s3), DAILY, sessions)
    assert {o.session: o.status for o in outcomes if o.status != "unchanged"} == {sessions[2]: "republished"}
    assert_landed_exactly(lake, s3, [key])
    # Landing only: bronze has not accepted the new version yet, so the first one is kept.
    kept = [p for p in lake.landing_versions_dir().rglob("*") if p.is_file()]
    assert kept == [
        lake.root / "landing" / ".versions" / f"{key}.{hashlib.sha256(first_version).hexdigest()[:12]}"
    ]
    assert kept[0].read_bytes() == first_version


def test_403_stops_at_once_naming_the_key(s3: S3Endpoint, sample: Path, tmp_path: Path) -> None:
    # Listing works (the plan has no flat-file access), every object GET answers 403.
    s3.proxy.rules.append(
        Rule("GET", "/flatfiles/us_stocks_sip/day_aggs_v1/", "status", status=403, times=1000)
    )
    lake, sessions = Lake(tmp_path / "lake"), daily_sessions(sample)
    with pytest.raises(
        NotEntitledError, match=r"us_stocks_sip/day_aggs_v1/2025/09/.*not entitled to this dataset"
    ):
        land_sessions(lake, source_for(s3, concurrency=2), DAILY, sessions)
    gets = s3.proxy.object_gets()
    assert len(gets) <= 2  # the first answers stop the batch; no retries, no further files
    assert len({g.path for g in gets}) == len(gets)
    assert not list(lake.root.rglob("*.csv.gz"))


def test_missing_session_is_reported_not_a_crash(s3: S3Endpoint, sample: Path, tmp_path: Path) -> None:
    lake, sessions = Lake(tmp_path / "lake"), daily_sessions(sample)
    gone = DAILY.source_key(sessions[4])
    s3.client.delete_object(Bucket=BUCKET, Key=gone)
    outcomes, failures = land_sessions(lake, source_for(s3), DAILY, sessions)
    assert failures == []
    assert {o.session: o.status for o in outcomes if o.status != "landed"} == {sessions[4]: "missing"}

    catalog = CliRunner().invoke(
        cli,
        [
            "data",
            "catalog",
            "--start-date",
            "2025-09-01",
            "--end-date",
            str(END),
            "--data-root",
            str(lake.root),
        ],
        env={
            "POLYGON_S3_ENDPOINT": s3.proxy.url,
            "POLYGON_S3_ACCESS_KEY_ID": ACCESS_KEY,
            "POLYGON_S3_SECRET_ACCESS_KEY": SECRET_KEY,
        },
    )
    assert f"{sessions[4]} │ missing upstream" in catalog.output
    assert "2025-09-01 │ exchange holiday" in catalog.output  # Labor Day


def test_intermittent_endpoint_still_lands_identical_bytes(
    s3: S3Endpoint, sample: Path, tmp_path: Path
) -> None:
    minute_key = MINUTE.source_key(MINUTE_DAY)
    size = len((sample / "minute" / "flatfiles" / minute_key).read_bytes())
    assert size > 400_000
    s3.proxy.rules.extend(
        [
            Rule("GET", "/day_aggs_v1/2025/09/2025-09-0", "status", status=503, times=2),
            Rule("GET", "/day_aggs_v1/2025/09/2025-09-1", "status", status=429, headers={"Retry-After": "1"}),
            Rule("GET", "/day_aggs_v1/2025/09/2025-09-04", "status", status=500),
            Rule("GET", minute_key, "drop", after_bytes=size // 3),
            Rule("GET", minute_key, "drop", after_bytes=100_000),  # counts bytes of the ranged answer
        ]
    )
    lake = Lake(tmp_path / "lake")
    daily_clock, minute_clock = VirtualClock(), VirtualClock()
    daily, failures = land_sessions(lake, source_for(s3, clock=daily_clock), DAILY, daily_sessions(sample))
    minute, minute_failures = land_sessions(lake, source_for(s3, clock=minute_clock), MINUTE, [MINUTE_DAY])
    assert failures == minute_failures == []
    assert {o.status for o in daily + minute} == {"landed"}
    # Retry-After: 1 was honoured as given; the others are full-jitter backoffs (first or second retry of a
    # file: at most 0.5 * 2 s). Three 503/500 answers and one 429: four waits.
    assert daily_clock.sleeps.count(1.0) == 1
    assert len(daily_clock.sleeps) == 4
    assert all(0 <= w <= 1.0 for w in daily_clock.sleeps)
    assert len(minute_clock.sleeps) == 2  # one wait before each of the two resumed GETs
    assert_landed_exactly(lake, s3, [minute_key] + [DAILY.source_key(s) for s in daily_sessions(sample)])

    minute_gets = [g for g in s3.proxy.object_gets() if minute_key in g.path]
    assert len(minute_gets) == 3
    assert "range" not in minute_gets[0].headers
    assert minute_gets[1].headers["range"] == f"bytes={size // 3}-"
    assert minute_gets[2].headers["range"] == f"bytes={size // 3 + 100_000}-"
    etag = s3.client.head_object(Bucket=BUCKET, Key=minute_key)["ETag"]
    assert minute_gets[1].headers["if-match"] == minute_gets[2].headers["if-match"] == etag


_KILLABLE = textwrap.dedent(
    """
    import datetime as dt, sys
    from pathlib import Path
    from quantmini.datasets import get_spec
    from quantmini.io.lake import Lake
    from quantmini.io.s3_source import S3Source
    from quantmini.pipeline.landing import land_sessions

    url, root, day, key, secret = sys.argv[1:]
    source = S3Source(endpoint=url, bucket="flatfiles", region="us-east-1", access_key_id=key,
                      secret_access_key=secret)
    land_sessions(Lake(Path(root)), source, get_spec("stocks_minute"), [dt.date.fromisoformat(day)])
    """
)


def test_download_killed_midway_resumes_with_if_match(s3: S3Endpoint, sample: Path, tmp_path: Path) -> None:
    minute_key = MINUTE.source_key(MINUTE_DAY)
    # The proxy sends the first 150 000 bytes, then holds the connection: the child is killed while it
    # waits, at a byte count that does not depend on how fast either side runs.
    held_back = 150_000
    s3.proxy.rules.append(Rule("GET", minute_key, "stall", after_bytes=held_back))
    lake = Lake(tmp_path / "lake")
    partial = lake.landing_file(minute_key).with_name(f".{MINUTE_DAY}.csv.gz.partial")
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _KILLABLE,
            s3.proxy.url,
            str(lake.root),
            str(MINUTE_DAY),
            ACCESS_KEY,
            SECRET_KEY,
        ]
    )
    try:
        deadline = time.monotonic() + 60  # a bound on a broken run, not a speed assumption
        while time.monotonic() < deadline and (not partial.exists() or partial.stat().st_size < held_back):
            time.sleep(0.02)
        child.kill()
    finally:
        child.wait(timeout=30)
    held = partial.stat().st_size
    assert held == held_back
    assert held < len((sample / "minute" / "flatfiles" / minute_key).read_bytes())
    assert not lake.landing_file(minute_key).exists()

    s3.proxy.reset()
    outcomes, failures = land_sessions(lake, source_for(s3), MINUTE, [MINUTE_DAY])
    assert failures == []
    assert [o.status for o in outcomes] == ["landed"]
    gets = s3.proxy.object_gets()
    assert len(gets) == 1
    assert gets[0].headers["range"] == f"bytes={held}-"
    assert gets[0].headers["if-match"] == s3.client.head_object(Bucket=BUCKET, Key=minute_key)["ETag"]
    assert_landed_exactly(lake, s3, [minute_key])


def test_partial_of_a_replaced_object_restarts_cleanly(s3: S3Endpoint, sample: Path, tmp_path: Path) -> None:
    lake, sessions = Lake(tmp_path / "lake"), daily_sessions(sample)
    key = DAILY.source_key(sessions[0])
    old = s3.client.get_object(Bucket=BUCKET, Key=key)
    partial = lake.landing_file(key).with_name(f".{sessions[0]}.csv.gz.partial")
    partial.parent.mkdir(parents=True)
    partial.write_bytes(old["Body"].read()[:1000])
    partial.with_name(partial.name + ".json").write_text(json.dumps({"etag": old["ETag"]}))
    # The vendor replaces the file after our partial download; the listing now shows the new ETag.
    s3.client.put_object(
        Bucket=BUCKET, Key=key, Body=(sample / "flatfiles" / DAILY.source_key(sessions[1])).read_bytes()
    )
    outcomes, failures = land_sessions(lake, source_for(s3), DAILY, [sessions[0]])
    assert failures == []
    assert outcomes[0].status == "landed"
    assert "range" not in s3.proxy.object_gets()[0].headers  # other ETag: the partial bytes are not reused
    assert_landed_exactly(lake, s3, [key])


def test_pipeline_from_s3_gives_the_same_bronze_as_the_mirror(
    s3: S3Endpoint, sample: Path, tmp_path: Path
) -> None:
    sessions = daily_sessions(sample)
    from_s3, from_mirror = Lake(tmp_path / "s3"), Lake(tmp_path / "mirror")
    for lake, source in ((from_s3, source_for(s3)), (from_mirror, LocalMirrorSource(sample))):
        runner = PipelineRunner(lake, DAILY)
        report = PipelineReport("stocks_daily", sessions=sessions)
        runner.land(source, sessions, report)
        runner.ingest(sessions, report)
        assert report.failures == []
    for session in sessions:
        a = pq.read_table(from_s3.bronze_partition(DAILY, session))
        b = pq.read_table(from_mirror.bronze_partition(DAILY, session))
        assert a.equals(b), session


def test_download_command(s3: S3Endpoint, sample: Path, tmp_path: Path) -> None:
    env = {
        "POLYGON_S3_ENDPOINT": s3.proxy.url,
        "POLYGON_S3_ACCESS_KEY_ID": ACCESS_KEY,
        "POLYGON_S3_SECRET_ACCESS_KEY": SECRET_KEY,
        "DATA_ROOT": str(tmp_path / "lake"),
    }
    args = ["data", "download", "--start-date", str(START), "--end-date", str(END)]
    first = CliRunner().invoke(cli, args, env=env)
    assert first.exit_code == 0, first.output
    assert f"{len(daily_sessions(sample))} landed" in first.output
    second = CliRunner().invoke(cli, args, env=env)
    assert f"{len(daily_sessions(sample))} unchanged" in second.output
    assert ACCESS_KEY not in first.output + second.output
    assert SECRET_KEY not in first.output + second.output


def test_object_replaced_by_a_bad_version_keeps_the_good_raw_copy(
    s3: S3Endpoint, sample: Path, tmp_path: Path
) -> None:
    lake, sessions = Lake(tmp_path / "lake"), daily_sessions(sample)
    runner = PipelineRunner(lake, DAILY)
    first = runner.run(source_for(s3), START, END, last_stage="bronze")
    assert first.failures == []
    key = DAILY.source_key(sessions[3])
    good = s3.client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    bronze = lake.bronze_partition(DAILY, sessions[3]).read_bytes()
    kept_at = lake.root / "landing" / ".versions" / f"{key}.{hashlib.sha256(good).hexdigest()[:12]}"

    s3.client.put_object(Bucket=BUCKET, Key=key, Body=gzip.compress(b"symbol,vol\nAAPL,1\n"))
    for _ in range(2):  # the second run fails the same way and keeps the same single copy
        bad = runner.run(source_for(s3), START, END, last_stage="bronze")
        assert len(bad.failures) == 1
        assert f"{key}: wrong header 'symbol,vol'" in bad.failures[0]
        assert lake.bronze_partition(DAILY, sessions[3]).read_bytes() == bronze
        assert [(k.session, k.path) for k in bad.kept_versions] == [(sessions[3], kept_at)]
        assert [p for p in lake.landing_versions_dir().rglob("*") if p.is_file()] == [kept_at]
        assert kept_at.read_bytes() == good

    lines = gzip.decompress(good).decode().splitlines()
    s3.client.put_object(Bucket=BUCKET, Key=key, Body=gzip.compress(("\n".join(lines[:-1]) + "\n").encode()))
    fixed = runner.run(source_for(s3), START, END, last_stage="bronze")
    assert fixed.failures == []
    assert fixed.kept_versions == []
    assert [o.session for o in fixed.ingest if o.status == "ingested"] == [sessions[3]]
    assert not lake.landing_versions_dir().exists()
    assert_landed_exactly(lake, s3, [key])


def test_listing_without_the_data_type_warns(s3: S3Endpoint, tmp_path: Path) -> None:
    report = PipelineRunner(Lake(tmp_path / "lake"), get_spec("options_daily")).run(
        source_for(s3), START, END, last_stage="landing"
    )
    assert report.failures == []
    assert {o.status for o in report.landing} == {"missing"}
    assert len(report.warnings) == 1
    assert "us_options_opra/day_aggs_v1/2025/09/" in report.warnings[0]
    assert f"S3 {s3.proxy.url} bucket {BUCKET}" in report.warnings[0]
