"""The landing manifest's ``replaced`` history: one entry per version replaced, oldest first, capped."""

from __future__ import annotations

from typing import Any

from quantmini.pipeline.landing_versions import MAX_REPLACED, replaced_history


def manifest(n: int, history: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {
        "sha256": f"sha{n}",
        "size": n,
        "landed_at": f"landed{n}",
        "source": {"etag": f"etag{n}", "last_modified": f"modified{n}", "size": n, "key": "k"},
    }
    if history is not None:
        found["replaced"] = history
    return found


def test_a_republished_version_is_added_after_the_ones_it_replaced() -> None:
    first = replaced_history(manifest(1), republished=True)
    assert first == [
        {"sha256": "sha1", "size": 1, "etag": "etag1", "last_modified": "modified1", "landed_at": "landed1"}
    ]
    second = replaced_history(manifest(2, first), republished=True)
    assert [v["sha256"] for v in second] == ["sha1", "sha2"]


def test_the_same_bytes_fetched_again_keep_the_history_as_it_is() -> None:
    history = replaced_history(manifest(1), republished=True)
    assert replaced_history(manifest(2, history), republished=False) == history
    assert replaced_history(manifest(3), republished=False) == []  # a manifest from before the history


def test_only_the_most_recent_versions_are_remembered() -> None:
    history: list[dict[str, Any]] = []
    for n in range(MAX_REPLACED + 3):
        history = replaced_history(manifest(n, history), republished=True)
    assert [v["sha256"] for v in history] == [f"sha{n}" for n in range(3, MAX_REPLACED + 3)]
