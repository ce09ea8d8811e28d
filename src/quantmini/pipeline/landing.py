"""Landing stage: bring source objects into ``landing/`` byte-identical, verified, with a manifest each.

The plan comes from listing the source (never from assuming a calendar): a session whose file is not
listed is ``missing``; a file whose size and ETag match its manifest is ``unchanged`` and is not fetched
again. Everything else is fetched into a partial file beside its target (kept across runs so an
interrupted transfer resumes), checked — size, gzip integrity, sha256 in one streaming pass — and only
then renamed into place. A session that was landed but is no longer listed is ``deleted_upstream``: its
landed file and everything built from it are kept, and the run says so. The file a new version replaces
is kept until bronze has accepted a version (:mod:`quantmini.pipeline.landing_versions`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from quantmini._exceptions import NotEntitledError, QuantminiError, StorageError, ValidationError
from quantmini.datasets.base import DatasetSpec
from quantmini.io.inflate import FASTEST, Inflater
from quantmini.io.lake import Lake
from quantmini.io.manifest import read_manifest, write_manifest
from quantmini.io.source import FetchJob, FetchResult, Source, SourceObject
from quantmini.pipeline.landing_versions import KEPT_FIELD, REPLACED_FIELD, keep_replaced, replaced_history

LandingStatus = Literal["landed", "unchanged", "republished", "missing", "deleted_upstream"]
#: Statuses of sessions the source does not list.
UNLISTED: frozenset[LandingStatus] = frozenset({"missing", "deleted_upstream"})

_CHUNK = 1 << 20
#: Files verified at the same time while transfers continue.
VERIFY_THREADS = 2


@dataclass(frozen=True, slots=True)
class LandingOutcome:
    """What landing did for one session file."""

    session: dt.date
    key: str
    status: LandingStatus
    size: int = 0


@dataclass(frozen=True, slots=True)
class LandingPlan:
    """Sessions already decided (missing / unchanged) and the fetches still to do."""

    decided: list[LandingOutcome]
    jobs: list[FetchJob]

    @property
    def bytes_to_fetch(self) -> int:
        """Total size of the objects to fetch."""
        return sum(job.expected.size for job in self.jobs)


def month_prefixes(spec: DatasetSpec, sessions: Sequence[dt.date]) -> list[str]:
    """The ``{prefix}/YYYY/MM/`` listing prefixes covering ``sessions``."""
    return sorted({f"{spec.prefix}/{s:%Y}/{s:%m}/" for s in sessions})


def partial_path(target: Path) -> Path:
    """Where an object is fetched before it is verified (stable across runs, for resuming)."""
    # Deliberately not unique per run, so an interrupted transfer resumes from its bytes. Only the holder
    # of the lake's single-writer lock (quantmini.io.lock) lands files, so no two runs share one.
    return target.with_name(f".{target.name}.partial")


def plan_landing(
    lake: Lake, spec: DatasetSpec, sessions: Sequence[dt.date], listed: dict[str, SourceObject]
) -> LandingPlan:
    """Decide per session: missing or deleted upstream, unchanged since landed, or to fetch."""
    decided: list[LandingOutcome] = []
    jobs: list[FetchJob] = []
    for session in sessions:
        key = spec.source_key(session)
        obj = listed.get(key)
        previous = read_manifest(lake.manifest("landing", spec, session))
        if obj is None:
            if previous is None:
                decided.append(LandingOutcome(session, key, "missing"))
            else:  # landed earlier, gone upstream now: keep what was landed and built from it
                decided.append(LandingOutcome(session, key, "deleted_upstream", int(previous.get("size", 0))))
            continue
        target = lake.landing_file(key)
        if previous is not None and _same_version(previous, obj) and _intact(target, previous):
            decided.append(LandingOutcome(session, key, "unchanged", obj.size))
        else:
            jobs.append(FetchJob(key, partial_path(target), obj))
    return LandingPlan(decided, jobs)


def land_sessions(
    lake: Lake,
    source: Source,
    spec: DatasetSpec,
    sessions: Sequence[dt.date],
    *,
    on_plan: Callable[[LandingPlan], None] | None = None,
    on_bytes: Callable[[int], None] | None = None,
    on_file: Callable[[str], None] | None = None,
) -> tuple[list[LandingOutcome], list[str]]:
    """Land every session's file; return outcomes (sorted by session) and one line per failed file.

    A 403 from the source is raised after the files already fetched are secured: every further file
    would fail the same way.
    """
    listed = {obj.key: obj for obj in source.list_many(month_prefixes(spec, sessions))}
    plan = plan_landing(lake, spec, sessions, listed)
    if on_plan is not None:
        on_plan(plan)
    outcomes = list(plan.decided)
    failures: list[str] = []
    entitlement: list[NotEntitledError] = []
    sessions_by_key = {spec.source_key(s): s for s in sessions}
    for job in plan.jobs:
        try:
            job.dest.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(
                f"cannot write to the lake at {job.dest.parent}: {exc.strerror or exc}"
            ) from exc

    def secure(result: FetchResult) -> LandingOutcome:
        if isinstance(result.outcome, QuantminiError):
            raise result.outcome
        return _finalize(
            lake, spec, sessions_by_key[result.job.key], result.job, result.outcome, source.description
        )

    # Verification (gzip inflate, sha256, fsync) of each file overlaps with the transfers still running;
    # the inflater and hashlib release the GIL, so this uses the second core.
    with ThreadPoolExecutor(max_workers=VERIFY_THREADS) as pool:
        pending: list[tuple[FetchJob, Future[LandingOutcome]]] = []
        source.fetch_many(
            plan.jobs, on_bytes, on_done=lambda r: pending.append((r.job, pool.submit(secure, r)))
        )
        for job, future in pending:
            try:
                outcomes.append(future.result())
            except NotEntitledError as exc:
                entitlement.append(exc)
            except QuantminiError as exc:
                failures.append(f"landing {sessions_by_key[job.key]}: {exc}")
    if entitlement:
        raise entitlement[0]
    return sorted(outcomes, key=lambda o: o.session), failures


def landing_warnings(
    spec: DatasetSpec, sessions: Sequence[dt.date], outcomes: Sequence[LandingOutcome], description: str
) -> list[str]:
    """What a run must say although no file failed: a source listing no file of the range at all, and
    sessions deleted upstream after they were landed (kept in the lake)."""
    warnings: list[str] = []
    unlisted = [o for o in outcomes if o.status in UNLISTED]
    if sessions and len(unlisted) == len(sessions):
        which = f"any of the {len(sessions)} sessions" if len(sessions) > 1 else "the session"
        warnings.append(
            f"{description} lists no {spec.name} file for {which} in the range "
            f"(listed {_describe_prefixes(month_prefixes(spec, sessions))}): "
            "does this source hold the data type?"
        )
    deleted = [str(o.session) for o in outcomes if o.status == "deleted_upstream"]
    if deleted:
        warnings.append(
            f"{len(deleted)} {'sessions' if len(deleted) > 1 else 'session'} deleted upstream after "
            f"landing; the landed files and everything built from them are kept: {', '.join(deleted)}"
        )
    return warnings


def _describe_prefixes(prefixes: Sequence[str]) -> str:
    if len(prefixes) <= 2:
        return ", ".join(prefixes)
    return f"{prefixes[0]} … {prefixes[-1]} ({len(prefixes)} month prefixes)"


def verify_gzip(path: Path, label: str, *, inflater: Inflater = FASTEST) -> str:
    """Check that ``path`` is complete gzip data (at least one member, every member complete) and return
    its sha256, in one pass.

    ``label`` names the file in error messages.
    """
    digest = hashlib.sha256()
    decompressor = inflater.new()
    started = False
    size = 0
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                size += len(chunk)
                digest.update(chunk)
                data = chunk
                while data:
                    started = True
                    decompressor.decompress(data, _CHUNK)
                    data = decompressor.unconsumed_tail
                    if decompressor.eof:
                        # Everything after the member's end is in unused_data (zlib may still show part
                        # of it as unconsumed_tail too: taking both would feed those bytes twice).
                        data = decompressor.unused_data
                        decompressor = inflater.new()
                        started = False
    except inflater.error as exc:
        raise ValidationError(f"{label}: corrupt gzip data ({exc})") from exc
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if size == 0:  # as for `gzip -t`: no member at all is not gzip data
        raise ValidationError(f"{label}: empty file (0 bytes), not gzip data")
    if started:
        raise ValidationError(f"{label}: truncated gzip data (the last member has no end)")
    return digest.hexdigest()


def _finalize(
    lake: Lake, spec: DatasetSpec, session: dt.date, job: FetchJob, fetched: SourceObject, description: str
) -> LandingOutcome:
    partial = job.dest
    try:
        size = partial.stat().st_size
    except OSError as exc:
        raise StorageError(f"cannot read {partial}: {exc.strerror or exc}") from exc
    try:
        if size != fetched.size:
            raise ValidationError(f"{job.key}: received {size} bytes, the source says {fetched.size}")
        sha256 = verify_gzip(partial, job.key)
    except ValidationError as exc:
        _discard(partial)
        raise ValidationError(f"{exc}; the file was not landed and will be fetched again next run") from exc
    target = lake.landing_file(job.key)
    manifest_path = lake.manifest("landing", spec, session)
    previous = read_manifest(manifest_path)
    try:
        with partial.open("rb") as fh:
            os.fsync(fh.fileno())
    except OSError as exc:
        raise StorageError(f"cannot sync {partial}: {exc.strerror or exc}") from exc
    status: LandingStatus = "landed"
    kept: dict[str, Any] | None = None
    replaced: list[dict[str, Any]] = []
    if previous is not None:
        status = "unchanged" if previous.get("sha256") == sha256 else "republished"
        kept = keep_replaced(lake, job.key, previous) if status == "republished" else previous.get(KEPT_FIELD)
        replaced = replaced_history(previous, republished=status == "republished")
    try:
        os.replace(partial, target)
    except OSError as exc:
        raise StorageError(f"cannot move {partial} to {target}: {exc.strerror or exc}") from exc
    manifest: dict[str, Any] = {
        "key": job.key,
        "session": session.isoformat(),
        "size": size,
        "sha256": sha256,
        "source": fetched.identity(),
        "source_description": description,
        "landed_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    if kept is not None:
        manifest[KEPT_FIELD] = kept
    if replaced:
        manifest[REPLACED_FIELD] = replaced
    write_manifest(manifest_path, manifest)
    _discard(partial)
    return LandingOutcome(session, job.key, status, size)


def _same_version(previous: dict[str, Any], obj: SourceObject) -> bool:
    recorded = previous.get("source", {})
    return bool(recorded.get("size") == obj.size and recorded.get("etag") == obj.etag)


def _intact(target: Path, previous: dict[str, Any]) -> bool:
    try:
        return bool(target.stat().st_size == previous.get("size"))
    except OSError:
        return False


def _discard(path: Path) -> None:
    for leftover in (path, path.with_name(path.name + ".json")):
        try:
            leftover.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot remove {leftover}: {exc.strerror or exc}") from exc
