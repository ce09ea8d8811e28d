"""``quantmini data status`` on a real sample lake: a full run, then a day the vendor republished twice
(landed and ingested, silver and gold not rebuilt) and a late file; the JSON counts are checked against
the lake's files listed directly and the sample's own record."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from click.testing import CliRunner, Result

from quantmini.cli.main import cli
from quantmini.sample import generate_sample
from tests.support.mirror_files import day_files, rewrite_day_file

START, END = "2025-09-02", "2025-09-19"
REPUBLISHED = dt.date(2025, 9, 10)
LATE = dt.date(2025, 9, 16)


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def stage(command: str, *args: str | Path) -> None:
    result = run(*command.split(), "--data-type", "stocks_daily", *args)
    assert result.exit_code == 0, result.output


def status(root: Path, *args: str) -> dict[str, Any]:
    result = run("data", "status", "--data-root", root, "--format", "json", *args)
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.output)
    return document


def layers(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (kind,) = document["types"]
    return {layer["layer"]: layer for layer in kind["layers"]}


def listed_sessions(directory: Path) -> set[str]:
    return {p.name.removeprefix("date=") for p in directory.iterdir() if (p / "part.parquet").is_file()}


def test_status_follows_a_republished_and_a_late_file(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    generate_sample(
        mirror,
        dt.date.fromisoformat(START),
        dt.date.fromisoformat(END),
        tickers=8,
        seed=5,
        data_types=("stocks_daily",),
    )
    files = day_files(mirror, "us_stocks_sip/day_aggs_v1")
    # The vendor published LATE's file two days after its next session.
    late = files[LATE].stat().st_mtime + 2 * 86400
    os.utime(files[LATE], (late, late))
    root = tmp_path / "lake"
    stage("pipeline run", "--start-date", START, "--end-date", END, "--source", mirror, "--data-root", root)

    after_run = layers(status(root))
    sessions = sorted(files)
    assert listed_sessions(root / "bronze" / "stocks_daily") == {s.isoformat() for s in sessions}
    quarantine = root / "quarantine" / "stocks_daily"
    quarantined_sessions = listed_sessions(quarantine) if quarantine.exists() else set()
    for name, layer in after_run.items():
        if name == "landing":
            expected_present = len(sessions) - 1
        elif name == "bronze":
            expected_present = len(sessions) - len(quarantined_sessions)
        else:
            expected_present = len(sessions)
        assert layer["states"]["present"] == expected_present, name
        assert layer["states"]["missing"] == layer["states"]["stale"] == 0, name
    assert after_run["landing"]["late_files"] == 1
    assert after_run["bronze"]["states"]["quarantined"] == len(quarantined_sessions)
    assert after_run["bronze"]["quarantined_rows"] == sum(
        pq.read_metadata(path).num_rows for path in quarantine.rglob("part.parquet")
    )
    assert after_run["bronze"]["quarantined_rows"] > 0

    # The vendor republishes one day twice; only bronze is rebuilt.
    shas = [hashlib.sha256(files[REPUBLISHED].read_bytes()).hexdigest()]
    for dropped in (1, 2):
        rewrite_day_file(files[REPUBLISHED], lambda lines, n=dropped: lines[:-n])
        shas.append(hashlib.sha256(files[REPUBLISHED].read_bytes()).hexdigest())
        stage(
            "data ingest", "--start-date", START, "--end-date", END, "--source", mirror, "--data-root", root
        )
    manifest = json.loads(
        (root / "_manifests" / "landing" / "stocks_daily" / f"{REPUBLISHED}.json").read_text()
    )
    assert manifest["sha256"] == shas[2]
    assert [v["sha256"] for v in manifest["replaced"]] == shas[:2]

    document = status(root, "--dates", REPUBLISHED.isoformat())
    found = layers(document)
    assert found["landing"]["republished_files"] == 1
    assert found["landing"]["replaced_versions"] == 2
    assert found["bronze"]["stale"] == []
    # The main table's window (20 sessions) holds every later session of the sample; the other tables
    # read fewer sessions back, so they are stale from REPUBLISHED on within their lookback.
    later = [s.isoformat() for s in sessions if s >= REPUBLISHED]
    assert found["silver"]["stale"] == later
    assert found["silver/corporate_action_checks"]["stale"] == later[:6]
    # Gold follows silver, which has not changed yet.
    assert found["gold/day"]["stale"] == []
    (day,) = document["types"][0]["days"]
    assert day["landing"]["state"] == "republished"
    assert day["landing"]["replaced"] == 2
    assert day["silver"]["stale"] == "bronze or input partitions changed since built"

    # Silver catches up: now gold is behind it, from the republished day on.
    stage("data enrich", "--data-root", root)
    enriched = layers(status(root))
    assert all(enriched[name]["stale"] == [] for name in enriched if name.startswith("silver"))
    assert REPUBLISHED.isoformat() in enriched["gold/day"]["stale"]
    assert min(enriched["gold/day"]["stale"]) == REPUBLISHED.isoformat()

    # Gold catches up: only the landing history remains to tell.
    stage("data convert", "--data-root", root)
    final = layers(status(root))
    assert all(layer["states"]["stale"] == 0 for layer in final.values())
    assert final["landing"]["states"]["republished"] == 1
