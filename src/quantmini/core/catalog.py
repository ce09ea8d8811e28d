"""Per-date availability of a dataset: what the source lists versus the exchange calendar and the lake."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

CatalogStatus = Literal[
    "downloaded",
    "available",
    "republished upstream",
    "not yet published",
    "missing upstream",
    "deleted upstream",
    "exchange holiday",
]

#: The vendor publishes a session's files around 11:00 ET on the next trading day.
PUBLICATION_TIME_ET = dt.time(11, 0)


@dataclass(frozen=True, slots=True)
class Version:
    """What identifies a version of a file: size and ETag."""

    size: int
    etag: str | None


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """One date's status, with the upstream size when the file is listed."""

    day: dt.date
    status: CatalogStatus
    size: int | None = None


def classify(
    days: Sequence[dt.date],
    sessions: frozenset[dt.date],
    listed: Mapping[dt.date, Version],
    landed: Mapping[dt.date, Version],
    published_at: Mapping[dt.date, dt.datetime],
    now: dt.datetime,
) -> list[CatalogEntry]:
    """Status of each weekday in ``days``.

    ``published_at`` gives, per session, when its file is expected upstream; a session that is not listed
    is "not yet published" before that moment and "missing upstream" after it, unless it was landed
    earlier: then it is "deleted upstream" (the lake keeps the landed file and what was built from it).
    """
    entries: list[CatalogEntry] = []
    for day in days:
        upstream = listed.get(day)
        if day not in sessions:
            if day.weekday() < 5:
                entries.append(CatalogEntry(day, "exchange holiday"))
            continue
        local = landed.get(day)
        if upstream is None and local is not None:
            status: CatalogStatus = "deleted upstream"  # landed earlier; the lake keeps it
        elif upstream is None:
            status = "not yet published" if now < published_at[day] else "missing upstream"
        elif local is None:
            status = "available"
        elif local == upstream:
            status = "downloaded"
        else:
            status = "republished upstream"
        entries.append(CatalogEntry(day, status, upstream.size if upstream else None))
    return entries
