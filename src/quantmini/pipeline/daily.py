"""What ``quantmini pipeline daily`` lands for each data type: from the last session the manifests prove
complete (minus a short re-check window) to the newest session the source has published.

Nothing here trusts the clock for what exists: the clock only bounds the listing (``until``, by default
today in exchange time); the source's listing says which sessions are published, and the manifests say
which are complete. A session is *complete* when its file is landed and bronze holds exactly that file (the
bronze manifest's input checksum equals the landing manifest's); silver and gold follow on their own,
incrementally, whenever the runner runs.

The re-check window (``pipeline.daily_lookback_sessions``) lists the last complete sessions again, so a file
the vendor republished after it was landed flows through every layer, and a session that was missing at the
source on an earlier day is fetched once it appears. Gaps older than the window are not looked for: the
cost of a daily run follows the new sessions, never the history (``quantmini data status`` shows old gaps;
``pipeline run`` over their range fills them).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from quantmini.core.calendar import EXCHANGE_TZ
from quantmini.core.calendar import sessions as exchange_sessions
from quantmini.datasets.base import DatasetSpec
from quantmini.io.lake import Lake
from quantmini.io.manifest import read_manifest, session_manifests
from quantmini.io.source import Source
from quantmini.pipeline.landing import month_prefixes

DailyStatus = Literal["catch_up", "up_to_date", "not_started", "nothing_published"]


@dataclass(frozen=True, slots=True)
class DailyPlan:
    """What the daily job does for one data type."""

    data_type: str
    status: DailyStatus
    #: The newest session the manifests prove complete before this run (``None``: the lake holds none).
    complete: dt.date | None
    #: The newest session the source lists, up to ``until`` (``None``: it lists none in the months looked at).
    published: dt.date | None
    #: Sessions to land and ingest, ``[start, end]`` (``None`` when there is nothing to land).
    start: dt.date | None = None
    end: dt.date | None = None
    #: Calendar sessions after ``complete`` up to ``published``: what this run catches up.
    new_sessions: int = 0

    def describe(self) -> str:
        """One phrase for the summary."""
        if self.status == "not_started":
            return "not started: the lake holds none of its sessions (pass --since, or `pipeline run` once)"
        if self.status == "nothing_published":
            return "the source lists no file in the months looked at"
        if self.status == "up_to_date":
            return f"up to date (newest published {self.published})"
        return f"{self.new_sessions} new session(s) up to {self.published}"


def today_in_exchange_time() -> dt.date:
    """Today's date in America/New_York (the default ``--until``)."""
    return dt.datetime.now(ZoneInfo(EXCHANGE_TZ)).date()


def last_complete_session(lake: Lake, spec: DatasetSpec) -> dt.date | None:
    """The newest session whose landed file bronze holds exactly; reads manifests from the newest back,
    so it costs one or two reads on a lake that is up to date."""
    try:
        manifests = session_manifests(lake.manifest_dir("landing", spec))
    except FileNotFoundError:
        return None
    for session, _ in reversed(manifests):
        landed = read_manifest(lake.manifest("landing", spec, session))
        ingested = read_manifest(lake.manifest("bronze", spec, session))
        if landed and ingested and ingested.get("input_sha256") == landed.get("sha256"):
            return session
    return None


def newest_published(source: Source, spec: DatasetSpec, first: dt.date, until: dt.date) -> dt.date | None:
    """The newest session in ``[first, until]`` whose file the source lists (one listing per month)."""
    calendar = exchange_sessions(first, until, spec.calendar)
    if not calendar:
        return None
    listed = source.list_many(month_prefixes(spec, calendar))
    found = (spec.session_from_key(o.key) for o in listed)
    return max((s for s in found if s is not None and first <= s <= until), default=None)


def plan_daily(
    lake: Lake,
    spec: DatasetSpec,
    source: Source,
    *,
    until: dt.date,
    lookback: int,
    since: dt.date | None = None,
) -> DailyPlan:
    """Decide the range to land for ``spec``: from ``lookback`` sessions before the last complete one (or
    ``since`` for a data type the lake does not hold yet) to the newest published session up to ``until``."""
    complete = last_complete_session(lake, spec)
    if complete is None and since is None:
        return DailyPlan(spec.name, "not_started", None, None)
    if complete is None:
        assert since is not None
        first = since
    else:
        # The re-check window: the last ``lookback`` complete sessions are listed again.
        recent = exchange_sessions(complete - dt.timedelta(days=2 * lookback + 10), complete, spec.calendar)
        first = recent[-lookback] if 0 < lookback <= len(recent) else complete + dt.timedelta(days=1)
    published = newest_published(source, spec, first, until) if first <= until else None
    if published is None:
        return DailyPlan(spec.name, "nothing_published" if complete is None else "up_to_date", complete, None)
    end = max(published, complete) if complete is not None else published
    start = exchange_sessions(first, end, spec.calendar)[0]  # ``published`` is one, so there is one
    after = first if complete is None else complete + dt.timedelta(days=1)
    new_sessions = len(exchange_sessions(after, published, spec.calendar)) if after <= published else 0
    status: DailyStatus = "catch_up" if new_sessions else "up_to_date"
    return DailyPlan(spec.name, status, complete, published, start, end, new_sessions)
