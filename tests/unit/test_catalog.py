"""Per-date catalog statuses from hand-made listings, manifests and publication times."""

from __future__ import annotations

import datetime as dt

from quantmini.core.catalog import Version, classify

ET = dt.timezone(dt.timedelta(hours=-5))
MON, TUE, WED, THU, FRI, SAT = (dt.date(2025, 12, d) for d in (22, 23, 24, 25, 26, 27))


def test_every_status() -> None:
    sessions = frozenset({MON, TUE, WED, FRI})  # Thursday 25th: Christmas
    listed = {MON: Version(100, '"a"'), TUE: Version(200, '"b2"'), WED: Version(300, '"c"')}
    landed = {MON: Version(100, '"a"'), TUE: Version(200, '"b1"')}
    published_at = {
        MON: dt.datetime(2025, 12, 23, 11, tzinfo=ET),
        TUE: dt.datetime(2025, 12, 24, 11, tzinfo=ET),
        WED: dt.datetime(2025, 12, 26, 11, tzinfo=ET),
        FRI: dt.datetime(2025, 12, 29, 11, tzinfo=ET),
    }
    now = dt.datetime(2025, 12, 27, 9, tzinfo=ET)
    entries = classify([MON, TUE, WED, THU, FRI, SAT], sessions, listed, landed, published_at, now)
    assert [(e.day, e.status, e.size) for e in entries] == [
        (MON, "downloaded", 100),
        (TUE, "republished upstream", 200),
        (WED, "available", 300),
        (THU, "exchange holiday", None),
        (FRI, "not yet published", None),  # expected Monday 11:00 ET
    ]  # Saturday: not a weekday, not listed


def test_unlisted_session_after_its_publication_time_is_missing_upstream() -> None:
    entries = classify(
        [MON],
        frozenset({MON}),
        listed={},
        landed={},
        published_at={MON: dt.datetime(2025, 12, 23, 11, tzinfo=ET)},
        now=dt.datetime(2025, 12, 23, 11, 0, 1, tzinfo=ET),
    )
    assert [e.status for e in entries] == ["missing upstream"]


def test_landed_session_no_longer_listed_is_deleted_upstream_whatever_the_time() -> None:
    for now in (dt.datetime(2025, 12, 23, 10, tzinfo=ET), dt.datetime(2025, 12, 30, tzinfo=ET)):
        entries = classify(
            [MON, TUE],
            frozenset({MON, TUE}),
            listed={},
            landed={MON: Version(100, '"a"')},
            published_at={
                MON: dt.datetime(2025, 12, 23, 11, tzinfo=ET),
                TUE: dt.datetime(2025, 12, 24, 11, tzinfo=ET),
            },
            now=now,
        )
        assert [(e.day, e.status, e.size) for e in entries] == [
            (MON, "deleted upstream", None),
            (TUE, "not yet published" if now.day == 23 else "missing upstream", None),
        ]
