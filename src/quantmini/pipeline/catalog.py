"""Compare what a source lists with the exchange calendar and the landing manifests."""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

from quantmini.core.calendar import EXCHANGE_TZ, sessions
from quantmini.core.catalog import PUBLICATION_TIME_ET, CatalogEntry, Version, classify
from quantmini.datasets.base import DatasetSpec
from quantmini.io.lake import Lake
from quantmini.io.manifest import read_manifest
from quantmini.io.source import Source
from quantmini.pipeline.landing import month_prefixes


def catalog_range(
    lake: Lake, source: Source, spec: DatasetSpec, start: dt.date, end: dt.date, now: dt.datetime
) -> list[CatalogEntry]:
    """Per-date status for ``[start, end]`` (weekdays; sessions from the dataset's calendar)."""
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    # One session past the end, so the last session's publication time (next session, 11:00 ET) is known.
    known = sessions(start, end + dt.timedelta(days=10), spec.calendar)
    in_range = frozenset(s for s in known if s <= end)
    tz = ZoneInfo(EXCHANGE_TZ)
    published_at = {
        s: dt.datetime.combine(nxt, PUBLICATION_TIME_ET, tzinfo=tz) for s, nxt in itertools.pairwise(known)
    }
    for s in in_range - published_at.keys():  # beyond the calendar's horizon
        published_at[s] = dt.datetime.combine(s + dt.timedelta(days=1), PUBLICATION_TIME_ET, tzinfo=tz)

    listed: dict[dt.date, Version] = {}
    for obj in source.list_many(month_prefixes(spec, days)):
        day = spec.session_from_key(obj.key)
        if day is not None:
            listed[day] = Version(obj.size, obj.etag)
    landed: dict[dt.date, Version] = {}
    for day in in_range:
        manifest = read_manifest(lake.manifest("landing", spec, day))
        if manifest is not None:
            recorded = manifest.get("source", {})
            landed[day] = Version(int(recorded.get("size", -1)), recorded.get("etag"))
    return classify(days, in_range, listed, landed, published_at, now)
