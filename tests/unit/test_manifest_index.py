"""The manifest index: used while its directory is unchanged, rebuilt after a manifest write, never
written for a directory modified just now, and never an error where it cannot be written."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

from quantmini.io.manifest import write_manifest
from quantmini.io.manifest_index import read_manifests

#: 2020-01-01T00:00:00Z: a directory time long settled.
PAST_NS = 1_577_836_800 * 10**9
KEYS = ("sha256", "rows")


def make_directory(tmp_path: Path) -> Path:
    directory = tmp_path / "manifests"
    for day, rows in ((2, 10), (3, 20)):
        write_manifest(
            directory / f"2024-01-0{day}.json", {"sha256": f"s{day}", "rows": rows, "other": 1}, durable=False
        )
    (directory / "notes.txt").write_text("not a manifest")
    os.utime(directory, ns=(PAST_NS, PAST_NS))
    return directory


EXPECTED = {
    dt.date(2024, 1, 2): {"sha256": "s2", "rows": 10},
    dt.date(2024, 1, 3): {"sha256": "s3", "rows": 20},
}


def test_a_settled_directory_is_indexed_and_the_index_is_read_while_it_is_unchanged(tmp_path: Path) -> None:
    directory = make_directory(tmp_path)
    index = tmp_path / "index" / "manifests.json"
    assert read_manifests(directory, KEYS, index) == EXPECTED
    assert json.loads(index.read_text())["mtime_ns"] == PAST_NS
    # Edited in place (no rename), the directory time put back: only the index can answer the old value.
    (directory / "2024-01-02.json").write_text(json.dumps({"sha256": "edited", "rows": 10}))
    os.utime(directory, ns=(PAST_NS, PAST_NS))
    assert read_manifests(directory, KEYS, index) == EXPECTED
    assert read_manifests(directory, KEYS)[dt.date(2024, 1, 2)]["sha256"] == "edited"


def test_a_manifest_written_makes_the_index_stale(tmp_path: Path) -> None:
    directory = make_directory(tmp_path)
    index = tmp_path / "index.json"
    read_manifests(directory, KEYS, index)
    write_manifest(directory / "2024-01-04.json", {"sha256": "s4", "rows": 30}, durable=False)
    found = read_manifests(directory, KEYS, index)
    assert found == {**EXPECTED, dt.date(2024, 1, 4): {"sha256": "s4", "rows": 30}}


def test_a_directory_modified_just_now_is_not_indexed(tmp_path: Path) -> None:
    directory = make_directory(tmp_path)
    write_manifest(directory / "2024-01-04.json", {"sha256": "s4"}, durable=False)  # its time: now
    index = tmp_path / "index.json"
    assert len(read_manifests(directory, KEYS, index)) == 3
    assert not index.exists()


def test_an_index_of_other_keys_is_not_used(tmp_path: Path) -> None:
    directory = make_directory(tmp_path)
    index = tmp_path / "index.json"
    read_manifests(directory, ("sha256",), index)
    assert read_manifests(directory, KEYS, index) == EXPECTED


def test_an_index_that_cannot_be_written_is_skipped(tmp_path: Path) -> None:
    directory = make_directory(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("a file where the index directory would be")
    assert read_manifests(directory, KEYS, blocker / "index.json") == EXPECTED
    assert read_manifests(tmp_path / "absent", KEYS, blocker / "other.json") == {}
