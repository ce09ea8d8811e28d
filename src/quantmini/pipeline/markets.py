"""Qlib market files from a silver membership table, kept up to date incrementally.

A Qlib root whose target declares ``markets`` gets ``instruments/<universe>.txt`` for every universe of
that silver table's rows (``ticker, session_date, universe``): one ``SYMBOL<TAB>first<TAB>last`` line per
span of consecutive sessions an instrument is a member (:mod:`quantmini.core.market_spans`), so that
``D.list_instruments(D.instruments("top500"))`` gives the members of every date.

The spans live in the root's markets state (``_manifests/markets/<root below gold/>/``: ``spans.parquet``,
and ``state.json`` with the checksum of every silver partition they were built from, the digest of the
instrument names and the files written). A run compares it with the silver manifests and

* **extends** the spans with the new sessions, reading only their partitions;
* **rewinds** to the earliest republished (or removed) session — every span cut back to the session
  before it — and extends from there;
* **starts over** when there is no usable state or the instrument names changed;

then writes every market file (a new session moves the end of every open span) and removes the files of
universes that no longer have members. Files missing from the root (a full gold build swaps in a new
root) are written again from the spans, without reading silver. The result equals a build from scratch.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import polars as pl

from quantmini._exceptions import QuantminiError
from quantmini.core.market_spans import SPAN_COLUMNS, join_spans, market_text, name_instruments, spans_before
from quantmini.core.market_spans import spans_of as session_spans
from quantmini.core.universes import TYPE_NAMES
from quantmini.io.lake import Lake
from quantmini.io.manifest import read_manifest, write_manifest
from quantmini.io.parquet import read_parquet_files, write_parquet_atomic
from quantmini.io.qlib_writer import market_file, remove_market, write_market
from quantmini.pipeline.fingerprint import table_digest
from quantmini.pipeline.partitions import index_partitions

#: Bump when the state's or the files' conventions change: every root's market files are rebuilt.
MARKETS_VERSION = 1
#: Silver partitions read at once while extending the spans.
READ_SESSIONS = 100

MarketsStatus = Literal["built", "updated", "unchanged", "no_input"]


@dataclass(frozen=True, slots=True)
class MarketsOutcome:
    """What one run did to a root's market files."""

    root: Path
    status: MarketsStatus
    #: Per market file: the universe and how many instruments it lists.
    markets: tuple[tuple[str, int], ...] = ()
    #: Silver partitions read.
    read: int = 0
    rewound_to: dt.date | None = None
    #: Instruments of the root (``all.txt``) that are in no type universe: no tickers reference record.
    untyped: int = 0
    #: Names left out because Qlib cannot store them.
    skipped: tuple[str, ...] = ()


@dataclass(slots=True)
class _State:
    sessions: dict[dt.date, str]
    spans: pl.DataFrame
    files: dict[str, int]
    skipped: set[str]


def update_markets(
    lake: Lake, root: Path, table: str, *, instruments: pl.DataFrame | None = None
) -> MarketsOutcome:
    """Bring the market files of the Qlib root at ``root`` up to date with silver ``table``.

    ``instruments`` (``ticker, valid_from, valid_to, instrument``; see
    :func:`~quantmini.core.market_spans.name_instruments`) names the instrument each ticker's rows belong
    to over a span of dates; without it (or where it says nothing) an instrument is its ticker, named as
    the root names symbols. Call once per root: each keeps its own state.
    """
    silver = index_partitions(lake.manifest_dir("silver", table), lake.silver_dir(table))
    sessions = silver.sessions
    if not sessions:
        return MarketsOutcome(root, "no_input")
    shas = {s: p.sha256 for s, p in silver.partitions.items()}
    names = _names_digest(instruments)
    state_dir = lake.markets_state_dir(root)
    loaded = _load_state(state_dir, table, names)
    # Starting over still removes the files the previous state wrote.
    state = loaded or _State(
        {}, pl.DataFrame(schema=SPAN_COLUMNS), _files_of(read_manifest(state_dir / "state.json")), set()
    )
    changed = {s for s in sessions if state.sessions.get(s) != shas[s]} | (
        state.sessions.keys() - shas.keys()
    )
    through = max(state.sessions, default=None)
    rewind = min((s for s in changed if through is not None and s <= through), default=None)
    if rewind is not None:
        previous = max((s for s in state.sessions if s < rewind), default=None)
        state.spans = spans_before(state.spans, rewind, previous)
    todo = [s for s in sessions if (s >= rewind if rewind else through is None or s > through)]
    if not todo and not changed and _files_intact(root, state.files):
        return _outcome(root, "unchanged", state, 0, None)
    pieces = [state.spans]
    for start in range(0, len(todo), READ_SESSIONS):
        chunk = todo[start : start + READ_SESSIONS]
        rows = read_parquet_files(
            [lake.silver_partition(table, s) for s in chunk], columns=("ticker", "session_date", "universe")
        )
        named, skipped = name_instruments(rows, instruments)
        state.skipped |= skipped
        pieces.append(session_spans(named, sessions))
    state.spans = join_spans(pl.concat(pieces), sessions)
    state.sessions = dict(shas)
    state.files = _write_files(root, state.spans, state.files)
    _save_state(state_dir, table, names, state)
    return _outcome(root, "built" if loaded is None else "updated", state, len(todo), rewind)


def _write_files(root: Path, spans: pl.DataFrame, previous: dict[str, int]) -> dict[str, int]:
    """Every universe's market file; those of universes without spans any more removed. Returns the
    written files' sizes by universe."""
    written: dict[str, int] = {}
    for (universe,), group in spans.partition_by("universe", as_dict=True, maintain_order=True).items():
        text = market_text(group)
        write_market(root, str(universe), text)
        written[str(universe)] = len(text.encode())
    for universe in previous.keys() - written.keys():
        remove_market(root, universe)
    return written


def _files_intact(root: Path, files: dict[str, int]) -> bool:
    """Whether every market file the state wrote is in the root with the size it was written with."""
    for universe, size in files.items():
        try:
            if market_file(root, universe).stat().st_size != size:
                return False
        except OSError:
            return False
    return True


def _outcome(
    root: Path, status: MarketsStatus, state: _State, read: int, rewound_to: dt.date | None
) -> MarketsOutcome:
    counts = state.spans.group_by("universe").agg(pl.col("instrument").n_unique()).sort("universe")
    typed = set(state.spans.filter(pl.col("universe").is_in(TYPE_NAMES))["instrument"].to_list())
    return MarketsOutcome(
        root,
        status,
        markets=tuple((str(u), int(n)) for u, n in counts.iter_rows()),
        read=read,
        rewound_to=rewound_to,
        untyped=len(_root_instruments(root) - typed),
        skipped=tuple(sorted(state.skipped)),
    )


def _root_instruments(root: Path) -> set[str]:
    """The instruments of ``instruments/all.txt`` (none without one)."""
    try:
        text = (root / "instruments" / "all.txt").read_text(encoding="utf-8")
    except FileNotFoundError:
        return set()
    except OSError as exc:
        raise QuantminiError(
            f"cannot read {root / 'instruments' / 'all.txt'}: {exc.strerror or exc}"
        ) from exc
    return {line.split("\t", 1)[0] for line in text.splitlines() if line}


def _files_of(meta: dict[str, Any] | None) -> dict[str, int]:
    """The market files (universe → size) a state records, usable or not (none without one)."""
    return {str(k): int(v) for k, v in (meta or {}).get("files", {}).items()}


def _names_digest(instruments: pl.DataFrame | None) -> str:
    """What the names frame changes: its spans that name a ticker otherwise than by itself (a ticker
    listed or delisted changes nothing; a rename or a reused ticker does)."""
    named = (
        None
        if instruments is None
        else instruments.filter(
            pl.col("instrument").is_not_null() & (pl.col("instrument") != pl.col("ticker"))
        )
    )
    if named is None or named.is_empty():
        return "-"
    return table_digest(named.sort(named.columns).to_arrow())


def _load_state(directory: Path, table: str, names: str) -> _State | None:
    meta = read_manifest(directory / "state.json")
    spans_path = directory / "spans.parquet"
    if (
        meta is None
        or meta.get("version") != MARKETS_VERSION
        or meta.get("table") != table
        or meta.get("names") != names
        or not spans_path.exists()
    ):
        return None
    try:
        spans = read_parquet_files([spans_path])
    except QuantminiError:
        return None
    return _State(
        sessions={dt.date.fromisoformat(k): v for k, v in meta.get("sessions", {}).items()},
        spans=spans.select(list(SPAN_COLUMNS)),
        files=_files_of(meta),
        skipped=set(meta.get("skipped", [])),
    )


def _save_state(directory: Path, table: str, names: str, state: _State) -> None:
    write_parquet_atomic(state.spans.to_arrow(), directory / "spans.parquet")
    write_manifest(
        directory / "state.json",
        {
            "version": MARKETS_VERSION,
            "table": table,
            "names": names,
            "sessions": {s.isoformat(): sha for s, sha in sorted(state.sessions.items())},
            "files": dict(sorted(state.files.items())),
            "skipped": sorted(state.skipped),
        },
    )
