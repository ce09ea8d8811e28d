"""What the lake holds and what went wrong, per data type and layer, from manifests alone.

``quantmini data status`` and the HTML report read this. Nothing here opens a Parquet file or takes the
lake's lock: a session's state in a layer comes from the per-partition manifests (read through their
index, :mod:`quantmini.io.manifest_index`), the gold state files, directory listings and the exchange
calendar. One state per calendar session and layer, the worst that
applies (:data:`SEVERITY`):

* **missing** — neither the layer nor any layer above it holds the session (for landing: nothing was
  landed). A gap of the lake, not work pending.
* **stale** — the layer is behind a layer above it, and the next pipeline run will (re)build the session
  (a session landed but not ingested is stale in bronze, silver and gold):
  - bronze: landed but not ingested, the landed file changed since bronze ingested it (the bronze
    manifest's ``input_sha256`` is not the landing manifest's ``sha256``), or the partition beside its
    manifest is gone;
  - silver (each table): bronze holds the session but the table does not; the table holds it but
    bronze does not any more; or the bronze or input partitions it was built from changed since (the
    ``upstream`` digest its manifest records, recomputed with the silver planner's own
    :func:`~quantmini.pipeline.silver.upstream_lines`). Changes the planner sees beyond the lake's
    partitions — corporate actions, reference tables, settings, a new part version — are not judged
    here (reading them means reading Parquet); a partition written before manifests recorded
    ``upstream`` is judged present;
  - gold (each Qlib root): the main silver table holds the session but the root does not, or the silver
    partitions (main and joined) the root recorded for the session (``state.json`` ``sessions``) are
    not the current ones, or the root's state is of another stage version or field list (rebuilt).
* **quarantined** — bronze set rows of the session aside (``rows_quarantined`` > 0; reasons counted).
* **republished** — the vendor replaced the session's file after it was first landed (the landing
  manifest's ``replaced`` history; counted per session).
* **late** — the first landed version of the file (the oldest the ``replaced`` history remembers) was
  published (the source's ``last_modified``) after the deadline :data:`LATE_AFTER` sets.
* **present** — none of the above.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from quantmini._exceptions import ConfigurationError, StorageError
from quantmini.core.adjustment_names import ADJUSTMENTS, Adjustment
from quantmini.core.calendar import EXCHANGE_TZ
from quantmini.core.calendar import sessions as exchange_sessions
from quantmini.datasets import DATASETS, get_spec
from quantmini.datasets.base import DatasetSpec, SilverPart
from quantmini.io.lake import Lake
from quantmini.io.manifest_index import read_manifests
from quantmini.pipeline.gold import recorded_sessions, session_identity
from quantmini.pipeline.landing_versions import REPLACED_FIELD
from quantmini.pipeline.partitions import Partition, PartitionIndex
from quantmini.pipeline.silver import upstream_digest, upstream_lines, window_calendar

LayerState = Literal["present", "missing", "late", "republished", "quarantined", "stale"]
LayerKind = Literal["landing", "bronze", "silver", "gold"]

#: Every state, worst first: a session shows the first that applies.
SEVERITY: tuple[LayerState, ...] = ("missing", "stale", "quarantined", "republished", "late", "present")

#: A session's file is *late* when its first version's ``last_modified`` is later than this after the
#: start (00:00, exchange time) of the next session: one day, the end of the next session day. The vendor
#: publishes around 11:00 ET on the next session, so a file past this missed a whole day.
LATE_AFTER = dt.timedelta(days=1)

_ZONE = ZoneInfo(EXCHANGE_TZ)
#: Calendar days after a lake's last session within which its next session surely falls.
_NEXT_SESSION_DAYS = 15


@dataclass(frozen=True, slots=True)
class LayerStatus:
    """One layer (or silver table, or Qlib root) of a data type over the sessions shown."""

    #: ``landing``, ``bronze``, ``silver`` (the type's main table), ``silver/<table>`` (another silver
    #: table), ``gold/<freq>`` (total-return Qlib root) or ``gold_split/<freq>`` (split-only root).
    layer: str
    kind: LayerKind
    #: Oldest and newest session the layer holds (the whole lake, not only the range shown).
    first: dt.date | None
    last: dt.date | None
    #: One state per calendar session of the range.
    days: dict[dt.date, LayerState]
    #: Rows per session held (bronze: rows kept; silver: rows written; not known for landing and gold).
    rows: dict[dt.date, int] = field(default_factory=dict)
    #: Bronze: rows set aside per session, and how many per reason.
    quarantined: dict[dt.date, int] = field(default_factory=dict)
    reasons: dict[dt.date, dict[str, int]] = field(default_factory=dict)
    #: Landing: versions the current file replaced, per republished session.
    republished: dict[dt.date, int] = field(default_factory=dict)
    #: Landing: when the source published the first landed version of each session's file.
    published: dict[dt.date, dt.datetime] = field(default_factory=dict)
    #: Landing: sessions whose file was late (whatever state they show).
    late: frozenset[dt.date] = frozenset()
    #: Why each stale session is stale.
    stale: dict[dt.date, str] = field(default_factory=dict)

    def count(self, state: LayerState) -> int:
        """Sessions showing ``state``."""
        return sum(1 for s in self.days.values() if s == state)

    @property
    def counts(self) -> dict[LayerState, int]:
        """Sessions per state, every state present (zeros included)."""
        found = dict.fromkeys(SEVERITY, 0)
        for state in self.days.values():
            found[state] += 1
        return found

    @property
    def quarantined_rows(self) -> int:
        """Rows quarantined over the range."""
        return sum(self.quarantined.get(s, 0) for s in self.days)

    @property
    def quarantine_reasons(self) -> dict[str, int]:
        """Quarantined rows per reason over the range, most first."""
        total: dict[str, int] = {}
        for session in self.days:
            for reason, n in self.reasons.get(session, {}).items():
                total[reason] = total.get(reason, 0) + n
        return dict(sorted(total.items(), key=lambda kv: (-kv[1], kv[0])))


@dataclass(frozen=True, slots=True)
class TypeStatus:
    """Every layer of one data type over the calendar sessions shown."""

    data_type: str
    #: The calendar sessions of the range shown, oldest first.
    sessions: list[dt.date]
    layers: list[LayerStatus]

    def layer(self, name: str) -> LayerStatus:
        """The layer called ``name`` (``KeyError`` when the type has none)."""
        for layer in self.layers:
            if layer.layer == name:
                return layer
        raise KeyError(name)


@dataclass(frozen=True, slots=True)
class LakeStatus:
    """The status of every data type shown."""

    types: list[TypeStatus]


def lake_status(
    lake: Lake,
    data_types: Sequence[str] | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> LakeStatus:
    """The status of ``data_types`` (default: every type the lake holds anything of) over the calendar
    sessions from ``start`` to ``end`` (default: each type's first to last session in any layer).

    Raises :class:`ConfigurationError` when ``lake.root`` is not a directory and :class:`StorageError`
    when it cannot be read.
    """
    if not lake.root.is_dir():
        raise ConfigurationError(f"no lake at {lake.root} (is --data-root / DATA_ROOT right?)")
    if start is not None and end is not None and end < start:
        raise ConfigurationError(f"--end-date {end} is before --start-date {start}")
    reader = _Reader(lake)
    names = list(data_types) if data_types is not None else [n for n in DATASETS if _holds(lake, n)]
    return LakeStatus([_type_status(reader, get_spec(name), start, end) for name in names])


def _holds(lake: Lake, name: str) -> bool:
    """Whether the lake holds anything of data type ``name``."""
    spec = get_spec(name)
    return (
        any(lake.manifest_dir(stage, spec).is_dir() for stage in ("landing", "bronze", "silver"))
        or lake.silver_dir(spec).is_dir()
    )


#: The manifest fields status reads (the manifest index keeps these only).
MANIFEST_KEYS = (
    "sha256",
    "source",
    REPLACED_FIELD,
    "input_sha256",
    "output_sha256",
    "output_size",
    "rows_bronze",
    "rows_quarantined",
    "reasons",
    "rows",
    "upstream",
)


class _Reader:
    """Manifests and partition listings of one status call, each directory read once."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self._manifests: dict[Path, dict[dt.date, dict[str, Any]]] = {}
        self._listed: dict[Path, set[str]] = {}
        self._indexes: dict[Path, PartitionIndex] = {}

    def manifests(self, directory: Path) -> dict[dt.date, dict[str, Any]]:
        """Every readable ``YYYY-MM-DD.json`` manifest in ``directory``, by session (the fields
        :data:`MANIFEST_KEYS` only, through the directory's manifest index)."""
        if directory not in self._manifests:
            index = self.lake.manifest_index(directory)
            self._manifests[directory] = read_manifests(directory, MANIFEST_KEYS, index)
        return self._manifests[directory]

    def partitions(self, manifest_dir: Path, partition_dir: Path) -> dict[dt.date, dict[str, Any]]:
        """The manifests of ``manifest_dir`` whose partition directory ``date=…`` is listed in
        ``partition_dir`` (a manifest without its partition is a partition lost)."""
        if partition_dir not in self._listed:
            self._listed[partition_dir] = set(_listdir(partition_dir))
        listed = self._listed[partition_dir]
        return {s: m for s, m in self.manifests(manifest_dir).items() if f"date={s.isoformat()}" in listed}

    def index(self, manifest_dir: Path, partition_dir: Path) -> PartitionIndex:
        """The partitions as the planners' :class:`PartitionIndex` (checksums and rows from manifests)."""
        if manifest_dir not in self._indexes:
            found = {
                s: Partition(
                    session=s,
                    sha256=str(m["output_sha256"]),
                    size=m.get("output_size"),
                    rows=int(m.get("rows_bronze", m.get("rows", 0))),
                )
                for s, m in self.partitions(manifest_dir, partition_dir).items()
                if "output_sha256" in m
            }
            self._indexes[manifest_dir] = PartitionIndex(found, [])
        return self._indexes[manifest_dir]


def _listdir(directory: Path) -> list[str]:
    try:
        return os.listdir(directory)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise StorageError(f"cannot read {directory}: {exc.strerror or exc}") from exc


def _type_status(
    reader: _Reader, spec: DatasetSpec, start: dt.date | None, end: dt.date | None
) -> TypeStatus:
    lake = reader.lake
    landing = reader.manifests(lake.manifest_dir("landing", spec))
    bronze = reader.partitions(lake.manifest_dir("bronze", spec), lake.bronze_dir(spec))
    silver = [
        (part, reader.index(lake.manifest_dir("silver", t), lake.silver_dir(t)))
        for part, t in _tables(lake, spec)
    ]
    roots = _roots(lake, spec)
    gold = [(layer, recorded_sessions(d, target)) for layer, target, d in roots]
    held = [*landing, *bronze, *(s for _, index in silver for s in index.partitions)]
    held += [s for _, recorded in gold for s in (recorded or {})]
    first = start or (min(held) if held else None)
    last = end or (max(held) if held else None)
    if first is None or last is None or last < first:
        sessions: list[dt.date] = []
    else:
        sessions = exchange_sessions(first, last, spec.calendar)
    layers = [
        _landing(landing, sessions, spec.calendar),
        _bronze(
            bronze,
            landing,
            sessions,
            lost=set(reader.manifests(lake.manifest_dir("bronze", spec))) - set(bronze),
        ),
    ]
    bronze_index = reader.index(lake.manifest_dir("bronze", spec), lake.bronze_dir(spec))
    above = set(landing) | set(bronze)
    for part, index in silver:
        layers.append(_silver(reader, spec, part, index, bronze_index, above, sessions))
    main = next((index for part, index in silver if part.name is None), None)
    above |= set(main.partitions if main is not None else ())
    for (layer, recorded), (_, target, state_dir) in zip(gold, roots, strict=True):
        joined = {
            j.table: reader.index(lake.manifest_dir("silver", j.table), lake.silver_dir(j.table))
            for j in target.joins
        }
        # A state the stage no longer accepts: the next run rebuilds the root from scratch.
        outdated = recorded is None and (state_dir / "state.json").exists()
        silver_main = main or PartitionIndex({}, [])
        layers.append(_gold(layer, recorded, silver_main, joined, above, sessions, outdated=outdated))
    return TypeStatus(spec.name, sessions, layers)


def _tables(lake: Lake, spec: DatasetSpec) -> list[tuple[SilverPart, str]]:
    """The silver tables shown: the type's main table, and the others the lake holds."""
    found = []
    for part in spec.silver:
        table = part.table(spec.name)
        if part.name is None or lake.manifest_dir("silver", table).is_dir():
            found.append((part, table))
    return found


def _roots(lake: Lake, spec: DatasetSpec) -> list[tuple[str, Any, Path]]:
    """The Qlib roots shown: per declared target its roots the lake holds state of (the total-return
    root when it holds none), as ``(layer name, target, state directory)``."""
    found = []
    for target in spec.gold:
        adjustments: list[Adjustment] = [
            a for a in ADJUSTMENTS if lake.gold_state_dir(spec.name, target.freq, a).is_dir()
        ] or ["total_return"]
        for adjustment in adjustments:
            name = (
                f"gold/{target.freq}" if adjustment == "total_return" else f"gold_{adjustment}/{target.freq}"
            )
            found.append(
                (
                    name,
                    target.for_adjustment(adjustment),
                    lake.gold_state_dir(spec.name, target.freq, adjustment),
                )
            )
    return found


def _span(sessions: Iterable[dt.date]) -> tuple[dt.date | None, dt.date | None]:
    held = list(sessions)
    return (min(held), max(held)) if held else (None, None)


def _landing(manifests: dict[dt.date, dict[str, Any]], sessions: list[dt.date], calendar: str) -> LayerStatus:
    following = _next_sessions(sessions, calendar)
    days: dict[dt.date, LayerState] = {}
    republished: dict[dt.date, int] = {}
    published: dict[dt.date, dt.datetime] = {}
    late: set[dt.date] = set()
    for session in sessions:
        manifest = manifests.get(session)
        if manifest is None:
            days[session] = "missing"
            continue
        history = [v for v in manifest.get(REPLACED_FIELD, []) if isinstance(v, dict)]
        if history:
            republished[session] = len(history)
        first = history[0] if history else manifest.get("source") or {}
        when = _instant(first.get("last_modified"))
        if when is not None:
            published[session] = when
            if when > deadline(following[session]):
                late.add(session)
        days[session] = "republished" if history else "late" if session in late else "present"
    first, last = _span(manifests)
    return LayerStatus(
        "landing",
        "landing",
        first,
        last,
        days,
        republished=republished,
        published=published,
        late=frozenset(late),
    )


def deadline(next_session: dt.date) -> dt.datetime:
    """When a file is late, given the session after its own (:data:`LATE_AFTER`)."""
    return dt.datetime.combine(next_session, dt.time(0), tzinfo=_ZONE) + LATE_AFTER


def _next_sessions(sessions: list[dt.date], calendar: str) -> dict[dt.date, dt.date]:
    if not sessions:
        return {}
    days = exchange_sessions(sessions[0], sessions[-1] + dt.timedelta(days=_NEXT_SESSION_DAYS), calendar)
    return dict(itertools.pairwise(days))


def _instant(value: object) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def _bronze(
    manifests: dict[dt.date, dict[str, Any]],
    landing: dict[dt.date, dict[str, Any]],
    sessions: list[dt.date],
    lost: set[dt.date],
) -> LayerStatus:
    """``lost``: sessions whose bronze manifest has no partition beside it (re-ingested by the next run)."""
    days: dict[dt.date, LayerState] = {}
    rows: dict[dt.date, int] = {}
    quarantined: dict[dt.date, int] = {}
    reasons: dict[dt.date, dict[str, int]] = {}
    stale: dict[dt.date, str] = {}
    for session in sessions:
        manifest, landed = manifests.get(session), landing.get(session)
        if manifest is None:
            if landed is None:
                days[session] = "missing"
            elif session in lost:
                days[session], stale[session] = "stale", "its partition is gone"
            else:
                days[session], stale[session] = "stale", "landed, not ingested"
            continue
        rows[session] = int(manifest.get("rows_bronze", 0))
        n = int(manifest.get("rows_quarantined", 0))
        if n:
            quarantined[session] = n
            reasons[session] = {str(k): int(v) for k, v in (manifest.get("reasons") or {}).items()}
        if landed is not None and manifest.get("input_sha256") != landed.get("sha256"):
            days[session], stale[session] = "stale", "landed file changed since ingested"
        else:
            days[session] = "quarantined" if n else "present"
    first, last = _span(manifests)
    return LayerStatus(
        "bronze",
        "bronze",
        first,
        last,
        days,
        rows=rows,
        quarantined=quarantined,
        reasons=reasons,
        stale=stale,
    )


def _silver(
    reader: _Reader,
    spec: DatasetSpec,
    part: SilverPart,
    index: PartitionIndex,
    bronze: PartitionIndex,
    above: set[dt.date],
    sessions: list[dt.date],
) -> LayerStatus:
    """``above``: sessions some layer above silver holds."""
    lake = reader.lake
    table = part.table(spec.name)
    inputs = []
    for source in part.inputs:
        if source.layer == "bronze":
            other = get_spec(source.source)
            found = reader.index(lake.manifest_dir("bronze", other), lake.bronze_dir(other))
        else:
            found = reader.index(lake.manifest_dir("silver", source.source), lake.silver_dir(source.source))
        inputs.append((source, found.partitions))
    calendar = window_calendar(bronze.sessions, spec.calendar)
    shown = set(sessions)
    # Digests of the sessions shown only (formatting every window costs time on a long history).
    current = {
        s: upstream_digest(lines)
        for s, lines in upstream_lines(part, bronze.partitions, inputs, calendar)
        if s in shown and s in index.partitions
    }
    manifests = reader.manifests(lake.manifest_dir("silver", table))
    days: dict[dt.date, LayerState] = {}
    rows: dict[dt.date, int] = {}
    stale: dict[dt.date, str] = {}
    for session in sessions:
        held, upstream = index.partitions.get(session), session in bronze.partitions
        if held is None:
            if upstream:
                days[session], stale[session] = "stale", "bronze not built into silver"
            elif session in above:
                days[session], stale[session] = "stale", "landed, not ingested"
            else:
                days[session] = "missing"
            continue
        rows[session] = held.rows
        recorded = manifests[session].get("upstream")
        if not upstream:
            days[session], stale[session] = "stale", "its bronze partition is gone"
        elif recorded is not None and recorded != current.get(session):
            days[session], stale[session] = "stale", "bronze or input partitions changed since built"
        else:
            days[session] = "present"
    first, last = _span(index.partitions)
    layer = "silver" if part.name is None else f"silver/{table}"
    return LayerStatus(layer, "silver", first, last, days, rows=rows, stale=stale)


def _gold(
    layer: str,
    recorded: dict[dt.date, str] | None,
    silver: PartitionIndex,
    joined: dict[str, PartitionIndex],
    above: set[dt.date],
    sessions: list[dt.date],
    *,
    outdated: bool = False,
) -> LayerStatus:
    """``above``: sessions some layer above gold holds (the main silver table among them); ``outdated``:
    the root's state is of another stage version or field list."""
    days: dict[dt.date, LayerState] = {}
    stale: dict[dt.date, str] = {}
    held = recorded or {}
    for session in sessions:
        built, partition = held.get(session), silver.partitions.get(session)
        if built is None:
            if partition is not None and outdated:
                days[session], stale[session] = "stale", "the root is of another version (rebuilt next run)"
            elif partition is not None:
                days[session], stale[session] = "stale", "silver not converted into the root"
            elif session in above:
                days[session], stale[session] = "stale", "not built into silver yet"
            else:
                days[session] = "missing"
        elif partition is None:
            days[session], stale[session] = "stale", "its silver partition is gone"
        elif built != session_identity(partition.sha256, session, joined):
            days[session], stale[session] = "stale", "silver changed since converted"
        else:
            days[session] = "present"
    first, last = _span(held)
    return LayerStatus(layer, "gold", first, last, days, stale=stale)
