"""What ``pipeline daily`` lands, decided from hand-made manifests and a mirror's listing: the last complete
session, the re-check window, a data type not started, and a source that lists nothing new."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from quantmini.datasets import get_spec
from quantmini.io.lake import Lake
from quantmini.io.manifest import write_manifest
from quantmini.io.source import LocalMirrorSource
from quantmini.pipeline.daily import last_complete_session, newest_published, plan_daily

SPEC = get_spec("stocks_daily")
D = dt.date
#: XNYS sessions of 2025-09-15 … 2025-09-26 (no holiday): two full weeks.
WEEKS = [D(2025, 9, d) for d in (15, 16, 17, 18, 19, 22, 23, 24, 25, 26)]


def landed(lake: Lake, session: dt.date, sha: str, *, ingested: str | None = None) -> None:
    """A landing manifest for ``session``; with ``ingested``, a bronze manifest whose input is that sha."""
    write_manifest(lake.manifest("landing", SPEC, session), {"session": str(session), "sha256": sha})
    if ingested is not None:
        write_manifest(lake.manifest("bronze", SPEC, session), {"input_sha256": ingested})


def published(mirror: Path, *sessions: dt.date) -> LocalMirrorSource:
    for session in sessions:
        path = mirror / "flatfiles" / SPEC.source_key(session)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    (mirror / "flatfiles" / SPEC.prefix / "2025" / "09" / "notes.txt").write_text("not a day file")
    return LocalMirrorSource(mirror)


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(tmp_path / "lake")


def test_the_last_complete_session_is_the_newest_that_bronze_holds_exactly(lake: Lake) -> None:
    assert last_complete_session(lake, SPEC) is None
    landed(lake, WEEKS[0], "a", ingested="a")
    landed(lake, WEEKS[1], "b", ingested="b")
    landed(lake, WEEKS[2], "c2", ingested="c1")  # republished, bronze not yet re-ingested
    landed(lake, WEEKS[3], "d")  # landed, never ingested
    assert last_complete_session(lake, SPEC) == WEEKS[1]


def test_newest_published_reads_the_listing_within_the_range(tmp_path: Path) -> None:
    source = published(tmp_path / "m", *WEEKS[:7])
    assert newest_published(source, SPEC, WEEKS[0], WEEKS[-1]) == WEEKS[6]
    assert newest_published(source, SPEC, WEEKS[0], WEEKS[4]) == WEEKS[4]  # --until bounds it
    assert newest_published(source, SPEC, WEEKS[7], WEEKS[-1]) is None
    assert newest_published(source, SPEC, D(2025, 9, 20), D(2025, 9, 21)) is None  # a weekend: no session


def test_catch_up_starts_lookback_sessions_before_the_last_complete_one(lake: Lake, tmp_path: Path) -> None:
    for session in WEEKS[:5]:
        landed(lake, session, str(session), ingested=str(session))
    source = published(tmp_path / "m", *WEEKS[:8])
    plan = plan_daily(lake, SPEC, source, until=WEEKS[-1], lookback=2)
    assert (plan.status, plan.complete, plan.published) == ("catch_up", WEEKS[4], WEEKS[7])
    # The last two complete sessions (18th, 19th) are listed again; the three new ones land.
    assert (plan.start, plan.end, plan.new_sessions) == (WEEKS[3], WEEKS[7], 3)

    no_window = plan_daily(lake, SPEC, source, until=WEEKS[-1], lookback=0)
    assert (no_window.start, no_window.end, no_window.new_sessions) == (WEEKS[5], WEEKS[7], 3)


def test_nothing_new_is_up_to_date_and_still_rechecks_the_window(lake: Lake, tmp_path: Path) -> None:
    for session in WEEKS[:5]:
        landed(lake, session, str(session), ingested=str(session))
    source = published(tmp_path / "m", *WEEKS[:5])
    plan = plan_daily(lake, SPEC, source, until=WEEKS[-1], lookback=3)
    assert (plan.status, plan.published, plan.new_sessions) == ("up_to_date", WEEKS[4], 0)
    assert (plan.start, plan.end) == (WEEKS[2], WEEKS[4])
    bare = plan_daily(lake, SPEC, source, until=WEEKS[-1], lookback=0)
    assert (bare.status, bare.start, bare.end) == ("up_to_date", None, None)


def test_a_type_the_lake_does_not_hold_needs_since(lake: Lake, tmp_path: Path) -> None:
    source = published(tmp_path / "m", *WEEKS[3:6])
    assert plan_daily(lake, SPEC, source, until=WEEKS[-1], lookback=5).status == "not_started"
    plan = plan_daily(lake, SPEC, source, until=WEEKS[-1], lookback=5, since=WEEKS[0])
    assert (plan.status, plan.start, plan.end, plan.new_sessions) == ("catch_up", WEEKS[0], WEEKS[5], 6)
    empty = published(tmp_path / "empty", WEEKS[0])
    late = plan_daily(lake, SPEC, empty, until=WEEKS[-1], lookback=5, since=WEEKS[1])
    assert (late.status, late.start) == ("nothing_published", None)
