"""``data status`` on hand-made manifest trees: every state of every layer, worked out by hand.

The tree (stocks_daily, 2024-03-04 … 2024-03-15, ten XNYS sessions, no holiday; DST starts 2024-03-10):

=========  ======================================  ==========================================
session    what the manifests say                  expected (landing, bronze, silver, gold)
=========  ======================================  ==========================================
03-04      published 03-05 23:59 ET (deadline      present, present, present, present
           03-06 00:00 ET); no ``replaced`` field
03-05      two versions replaced, the first        republished, present, present, present
           published 03-06 11:00 ET
03-06      published 03-08 00:00:01 ET: late       late, present, present, stale (gold
           (next session 03-07, deadline 03-08)    recorded another silver checksum)
03-07      nothing anywhere                        missing ×4
03-08      published Mon 03-11 20:00 EDT (next     present, quarantined (3 rows), present,
           session 03-11, deadline 03-12 00:00)    present
03-11      ordinary                                present ×4
03-12      bronze ingested another landed file     present, stale, present (its bronze
                                                   output is unchanged), stale (not in gold)
03-13      landed, not ingested                    present, stale, stale, stale
03-14      bronze re-ingested after silver built   present, present, stale, stale
03-15      silver window holds 03-14               present, present, stale, stale
=========  ======================================  ==========================================
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from quantmini._exceptions import ConfigurationError
from quantmini.cli.main import cli
from quantmini.datasets import get_spec
from quantmini.io.lake import Lake
from quantmini.io.manifest import write_manifest
from quantmini.pipeline.gold import GOLD_VERSION
from quantmini.pipeline.partitions import Partition
from quantmini.pipeline.silver import upstream_digest, upstream_lines, window_calendar
from quantmini.pipeline.status import deadline, lake_status

SPEC = get_spec("stocks_daily")
D = dt.date
SESSIONS = [D(2024, 3, d) for d in (4, 5, 6, 7, 8, 11, 12, 13, 14, 15)]
LANDED = [s for s in SESSIONS if s != D(2024, 3, 7)]
PUBLISHED = {
    D(2024, 3, 4): "2024-03-05T23:59:00-05:00",
    D(2024, 3, 5): "2024-03-06T11:00:00-05:00",
    D(2024, 3, 6): "2024-03-08T00:00:01-05:00",
    D(2024, 3, 8): "2024-03-11T20:00:00-04:00",
}


def _next_day_11(session: dt.date) -> str:
    return f"{session + dt.timedelta(days=1)}T11:00:00-04:00"


def landing_manifest(session: dt.date) -> dict[str, Any]:
    published = PUBLISHED.get(session, _next_day_11(session))
    manifest: dict[str, Any] = {
        "key": SPEC.source_key(session),
        "session": session.isoformat(),
        "sha256": f"L-{session}",
        "size": 100,
        "source": {"etag": "e", "last_modified": published, "size": 100},
        "landed_at": "2024-04-01T00:00:00+00:00",
    }
    if session == D(2024, 3, 5):
        manifest["source"]["last_modified"] = "2024-03-20T10:00:00-04:00"
        manifest["replaced"] = [
            {"sha256": "v1", "size": 90, "last_modified": published, "landed_at": "x"},
            {"sha256": "v2", "size": 95, "last_modified": "2024-03-12T10:00:00-04:00", "landed_at": "y"},
        ]
    return manifest


def bronze_sha(session: dt.date, *, at_silver_build: bool = False) -> str:
    return f"B-old-{session}" if at_silver_build and session == D(2024, 3, 14) else f"B-{session}"


def partition_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    lake = Lake(tmp_path / "lake")
    bronze_sessions = [s for s in LANDED if s != D(2024, 3, 13)]
    for session in LANDED:
        write_manifest(lake.manifest("landing", SPEC, session), landing_manifest(session), durable=False)
    for session in bronze_sessions:
        quarantined = 3 if session == D(2024, 3, 8) else 0
        write_manifest(
            lake.manifest("bronze", SPEC, session),
            {
                "input_sha256": "L-older" if session == D(2024, 3, 12) else f"L-{session}",
                "output_sha256": bronze_sha(session),
                "output_size": 10,
                "rows_in": 100,
                "rows_bronze": 100 - quarantined,
                "rows_quarantined": quarantined,
                "duplicates": 0,
                "reasons": {"ohlc_inconsistent": 2, "outside_session": 1} if quarantined else {},
            },
            durable=False,
        )
        partition_dir(lake.bronze_partition(SPEC, session).parent)
    # Silver as the silver stage wrote it, when bronze 03-14 still had its old checksum.
    part = SPEC.main_silver
    assert part is not None
    built = {s: Partition(s, bronze_sha(s, at_silver_build=True), 10, 1) for s in bronze_sessions}
    calendar = window_calendar(list(built), SPEC.calendar)
    for session, lines in upstream_lines(part, built, [], calendar):
        write_manifest(
            lake.manifest("silver", SPEC, session),
            {"identity": "i", "output_sha256": f"S-{session}", "rows": 7, "upstream": upstream_digest(lines)},
            durable=False,
        )
        partition_dir(lake.silver_partition(SPEC, session).parent)
    target = SPEC.gold[0]
    recorded = {s: f"S-{s}" for s in SESSIONS[:6] if s != D(2024, 3, 7)}
    recorded[D(2024, 3, 6)] = "S-older"
    write_manifest(
        lake.gold_state_dir(SPEC.name, "day") / "state.json",
        {
            "version": GOLD_VERSION,
            "target_version": target.version,
            "fields": list(target.fields),
            "sessions": {s.isoformat(): v for s, v in recorded.items()},
        },
        durable=False,
    )
    return lake


EXPECTED = {
    "landing": "present republished late missing present present present present present present",
    "bronze": "present present present missing quarantined present stale stale present present",
    "silver": "present present present missing present present present stale stale stale",
    "gold/day": "present present stale missing present present stale stale stale stale",
}


def test_every_layer_has_the_hand_worked_state_of_each_session(lake: Lake) -> None:
    status = lake_status(lake)
    assert [t.data_type for t in status.types] == ["stocks_daily"]
    kind = status.types[0]
    assert kind.sessions == SESSIONS
    assert [layer.layer for layer in kind.layers] == ["landing", "bronze", "silver", "gold/day"]
    for name, words in EXPECTED.items():
        layer = kind.layer(name)
        assert list(layer.days) == SESSIONS
        assert " ".join(layer.days.values()) == words, name


def test_counts_spans_and_reasons(lake: Lake) -> None:
    kind = lake_status(lake).types[0]
    landing, bronze, silver, gold = (kind.layer(n) for n in ("landing", "bronze", "silver", "gold/day"))
    assert (landing.first, landing.last) == (D(2024, 3, 4), D(2024, 3, 15))
    assert (gold.first, gold.last) == (D(2024, 3, 4), D(2024, 3, 11))
    assert landing.republished == {D(2024, 3, 5): 2}
    assert landing.late == {D(2024, 3, 6)}
    # The first version's publication time decides lateness, not the republished one's.
    assert landing.published[D(2024, 3, 5)] == dt.datetime.fromisoformat("2024-03-06T11:00:00-05:00")
    assert bronze.quarantined == {D(2024, 3, 8): 3}
    assert bronze.quarantine_reasons == {"ohlc_inconsistent": 2, "outside_session": 1}
    assert bronze.rows[D(2024, 3, 8)] == 97
    assert bronze.stale == {
        D(2024, 3, 12): "landed file changed since ingested",
        D(2024, 3, 13): "landed, not ingested",
    }
    assert silver.counts == {
        "missing": 1,
        "stale": 3,
        "quarantined": 0,
        "republished": 0,
        "late": 0,
        "present": 6,
    }
    assert gold.stale[D(2024, 3, 6)] == "silver changed since converted"
    assert gold.stale[D(2024, 3, 12)] == "silver not converted into the root"


def test_the_manifest_index_gives_the_same_status(lake: Lake) -> None:
    past = 1_577_836_800 * 10**9  # 2020-01-01: every manifest directory long settled, so it is indexed
    directories = [p for p in (lake.root / "_manifests").rglob("*") if p.is_dir()]
    for directory in directories:
        os.utime(directory, ns=(past, past))
    first = lake_status(lake)
    assert len(list((lake.root / "_manifests" / ".index").rglob("*.json"))) == 3
    assert lake_status(lake) == first


def test_a_range_shows_its_sessions_only_and_keeps_the_layers_spans(lake: Lake) -> None:
    kind = lake_status(lake, ["stocks_daily"], D(2024, 3, 9), D(2024, 3, 12)).types[0]
    assert kind.sessions == [D(2024, 3, 11), D(2024, 3, 12)]
    assert list(kind.layer("bronze").days.values()) == ["present", "stale"]
    assert kind.layer("gold/day").last == D(2024, 3, 11)


def test_silver_manifests_without_an_upstream_digest_are_judged_present(lake: Lake) -> None:
    for session in (D(2024, 3, 14), D(2024, 3, 15)):
        path = lake.manifest("silver", SPEC, session)
        manifest = json.loads(path.read_text())
        del manifest["upstream"]
        write_manifest(path, manifest, durable=False)
    silver = lake_status(lake).types[0].layer("silver")
    assert silver.days[D(2024, 3, 14)] == silver.days[D(2024, 3, 15)] == "present"


def test_a_bronze_partition_lost_is_stale_and_so_is_the_silver_built_from_it(lake: Lake) -> None:
    lake.bronze_partition(SPEC, D(2024, 3, 11)).parent.rmdir()
    kind = lake_status(lake).types[0]
    assert kind.layer("bronze").stale[D(2024, 3, 11)] == "its partition is gone"
    assert kind.layer("silver").stale[D(2024, 3, 11)] == "its bronze partition is gone"
    assert kind.layer("gold/day").days[D(2024, 3, 11)] == "present"


def test_a_gold_state_of_another_stage_version_makes_every_held_session_stale(lake: Lake) -> None:
    path = lake.gold_state_dir(SPEC.name, "day") / "state.json"
    state = json.loads(path.read_text())
    state["version"] = GOLD_VERSION - 1
    write_manifest(path, state, durable=False)
    gold = lake_status(lake).types[0].layer("gold/day")
    assert set(gold.days.values()) == {"stale", "missing"}
    assert gold.stale[D(2024, 3, 4)] == "the root is of another version (rebuilt next run)"
    assert gold.stale[D(2024, 3, 13)] == "not built into silver yet"
    assert gold.first is None


@pytest.mark.parametrize(
    ("next_session", "expected"),
    [
        (D(2024, 3, 7), "2024-03-08T00:00:00-05:00"),  # EST
        (D(2024, 3, 11), "2024-03-12T00:00:00-04:00"),  # EDT, after the change on 03-10
        (D(2024, 11, 1), "2024-11-02T00:00:00-04:00"),  # the day before the change back
        (D(2024, 11, 4), "2024-11-05T00:00:00-05:00"),
    ],
)
def test_the_late_deadline_is_the_end_of_the_next_session_day_in_exchange_time(
    next_session: dt.date, expected: str
) -> None:
    assert deadline(next_session) == dt.datetime.fromisoformat(expected)


def test_an_empty_lake_shows_no_type_and_a_missing_one_is_an_error(tmp_path: Path) -> None:
    assert lake_status(Lake(tmp_path)).types == []
    with pytest.raises(ConfigurationError, match="no lake at"):
        lake_status(Lake(tmp_path / "nowhere"))


def test_the_cli_prints_the_json_document(lake: Lake) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "data",
            "status",
            "--data-root",
            str(lake.root),
            "--format",
            "json",
            "--dates",
            "2024-03-05,2024-03-08",
        ],
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["format"] == "quantmini.status/1"
    (kind,) = document["types"]
    assert (kind["first"], kind["last"], kind["sessions"]) == ("2024-03-04", "2024-03-15", 10)
    bronze = next(layer for layer in kind["layers"] if layer["layer"] == "bronze")
    assert bronze["stale"] == ["2024-03-12", "2024-03-13"]
    assert bronze["missing"] == ["2024-03-07"]
    assert bronze["quarantined_rows"] == 3
    landing = kind["layers"][0]
    assert (landing["republished_files"], landing["replaced_versions"], landing["late_files"]) == (1, 2, 1)
    assert [day["session"] for day in kind["days"]] == ["2024-03-05", "2024-03-08"]
    assert kind["days"][0]["landing"] == {
        "state": "republished",
        "replaced": 2,
        "published": "2024-03-06T11:00:00-05:00",
    }
    assert kind["days"][1]["bronze"] == {
        "state": "quarantined",
        "rows": 97,
        "quarantined": 3,
        "reasons": {"ohlc_inconsistent": 2, "outside_session": 1},
    }


def test_the_cli_table_names_the_problems(lake: Lake) -> None:
    result = CliRunner().invoke(cli, ["data", "status", "--data-root", str(lake.root), "--detail"])
    assert result.exit_code == 0, result.output
    assert "bronze: 2 stale: 2024-03-12 … 2024-03-13 (2)" in result.output
    assert "silver: 3 stale: 2024-03-13 … 2024-03-15 (3)" in result.output
    assert "bronze: quarantined rows by reason: ohlc_inconsistent 2, outside_session 1" in result.output
