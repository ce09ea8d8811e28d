"""``quantmini data status``: what the lake holds per data type and layer, and what went wrong.

A report, not a check: it exits 0 whatever it finds (1 only when the lake cannot be read) and never takes
the lake's lock. The JSON output (``--format json``) is a stable document, described in
:func:`status_document`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from quantmini.cli.options import DataTypeChoice, data_root_option

if TYPE_CHECKING:
    from rich.table import Table

    from quantmini.pipeline.status import LakeStatus, LayerStatus, TypeStatus

#: Version of the JSON document; bumped when a key changes meaning or disappears (added keys do not).
FORMAT = "quantmini.status/1"
#: Width of the tables when the output is not a terminal.
_FILE_WIDTH = 132
#: Sessions of a state named one by one in the summary lines (more are summarised).
_LISTED = 8
_STYLES = {
    "present": "green",
    "missing": "red",
    "stale": "yellow",
    "quarantined": "magenta",
    "republished": "cyan",
    "late": "blue",
}


@click.command()
@click.option(
    "--data-type",
    "data_types",
    type=DataTypeChoice(),
    multiple=True,
    help="Data type to show (repeatable; default: every type the lake holds).",
)
@click.option("--start-date", help="First session shown, YYYY-MM-DD (default: the type's first).")
@click.option("--end-date", help="Last session shown, YYYY-MM-DD (default: the type's last).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--detail", is_flag=True, help="Also one line per session that is not present in every layer.")
@click.option(
    "--dates",
    multiple=True,
    help="Also one line for each of these sessions (YYYY-MM-DD; repeatable or comma-separated).",
)
@data_root_option
def status(
    data_types: tuple[str, ...],
    start_date: str | None,
    end_date: str | None,
    fmt: str,
    detail: bool,
    dates: tuple[str, ...],
    data_root: Path | None,
) -> None:
    """Show, per data type and layer, the sessions held, missing, stale, quarantined, republished or late.

    Everything comes from manifests (no data file is read); the lake is not locked.
    """
    from rich.console import Console

    from quantmini.cli.common import console, optional_range, settings_from
    from quantmini.core.calendar import parse_date
    from quantmini.io.lake import Lake
    from quantmini.pipeline.status import lake_status

    start, end = optional_range(start_date, end_date)
    wanted = {
        parse_date(value.strip(), "--dates")
        for values in dates
        for value in values.split(",")
        if value.strip()
    }
    lake = Lake(settings_from(data_root).data_root)
    found = lake_status(lake, list(data_types) or None, start, end)
    if fmt == "json":
        document = status_document(found, lake.root, start, end, detail=detail, dates=wanted)
        click.echo(json.dumps(document, indent=2))
        return
    if not found.types:
        console.print(f"The lake at {lake.root} holds no data yet.")
        return
    if not console.is_terminal:
        # Eight columns of layer names and dates: to a file or a pipe, not squeezed into 80 columns.
        console = Console(highlight=False, width=max(console.width, _FILE_WIDTH))
    for kind in found.types:
        console.print(_summary(kind))
        for line in _notes(kind):
            console.print(line, soft_wrap=True)
        shown = _detail_sessions(kind, detail=detail, dates=wanted)
        if shown:
            console.print(_detail(kind, shown))


def status_document(
    found: LakeStatus,
    root: Path,
    start: dt.date | None,
    end: dt.date | None,
    *,
    detail: bool = False,
    dates: Iterable[dt.date] = (),
) -> dict[str, Any]:
    """The JSON document of ``data status --format json``.

    Top level: ``format`` (:data:`FORMAT`), ``root``, ``start`` and ``end`` (as requested, or null) and
    ``types``, one object per data type: ``data_type``, ``first`` and ``last`` (the range shown), ``sessions``
    (calendar sessions in it) and ``layers``. A layer object has ``layer`` (``landing``, ``bronze``,
    ``silver``, ``silver/<table>``, ``gold/<freq>``, ``gold_split/<freq>``), ``kind`` (landing, bronze,
    silver or gold), ``first`` and ``last`` (the oldest and newest session the layer holds, whole lake),
    ``states`` (sessions of the range per state, every state present: present, missing, stale,
    quarantined, republished, late), ``missing`` and ``stale`` (those sessions, ISO dates),
    ``quarantined_rows`` and ``quarantine_reasons`` (rows per reason), ``republished_files`` (sessions whose
    file was replaced), ``replaced_versions`` (versions replaced in all) and ``late_files`` (sessions whose
    file was late, whatever state they show). With ``detail`` (sessions not present in every layer) or
    ``dates``, a type also has ``days``: one object per session, ``session`` and per layer name an object
    with ``state`` and, when known, ``rows``, ``quarantined``, ``reasons``, ``replaced``, ``published``
    (ISO instant), ``late`` (true) and ``stale`` (why).
    """
    types = []
    for kind in found.types:
        entry: dict[str, Any] = {
            "data_type": kind.data_type,
            "first": _iso(kind.sessions[0] if kind.sessions else None),
            "last": _iso(kind.sessions[-1] if kind.sessions else None),
            "sessions": len(kind.sessions),
            "layers": [_layer_document(layer) for layer in kind.layers],
        }
        shown = _detail_sessions(kind, detail=detail, dates=set(dates))
        if detail or dates:
            entry["days"] = [
                {"session": s.isoformat(), **{layer.layer: _day(layer, s) for layer in kind.layers}}
                for s in shown
            ]
        types.append(entry)
    return {"format": FORMAT, "root": str(root), "start": _iso(start), "end": _iso(end), "types": types}


def _layer_document(layer: LayerStatus) -> dict[str, Any]:
    return {
        "layer": layer.layer,
        "kind": layer.kind,
        "first": _iso(layer.first),
        "last": _iso(layer.last),
        "states": dict(layer.counts),
        "missing": [s.isoformat() for s, state in layer.days.items() if state == "missing"],
        "stale": [s.isoformat() for s, state in layer.days.items() if state == "stale"],
        "quarantined_rows": layer.quarantined_rows,
        "quarantine_reasons": layer.quarantine_reasons,
        "republished_files": sum(1 for s in layer.days if s in layer.republished),
        "replaced_versions": sum(layer.republished.get(s, 0) for s in layer.days),
        "late_files": sum(1 for s in layer.days if s in layer.late),
    }


def _day(layer: LayerStatus, session: dt.date) -> dict[str, Any]:
    found: dict[str, Any] = {"state": layer.days.get(session, "missing")}
    if session in layer.rows:
        found["rows"] = layer.rows[session]
    if session in layer.quarantined:
        found["quarantined"] = layer.quarantined[session]
        found["reasons"] = layer.reasons.get(session, {})
    if session in layer.republished:
        found["replaced"] = layer.republished[session]
    if session in layer.published:
        found["published"] = layer.published[session].isoformat()
    if session in layer.late:
        found["late"] = True
    if session in layer.stale:
        found["stale"] = layer.stale[session]
    return found


def _iso(day: dt.date | None) -> str | None:
    return None if day is None else day.isoformat()


def _detail_sessions(kind: TypeStatus, *, detail: bool, dates: set[dt.date]) -> list[dt.date]:
    """Sessions given one line each: the requested ``dates`` of the type's calendar range, and with
    ``detail`` every session some layer does not show as present."""
    chosen = {s for s in kind.sessions if s in dates}
    if detail:
        chosen |= {s for s in kind.sessions if any(layer.days[s] != "present" for layer in kind.layers)}
    return sorted(chosen)


def _summary(kind: TypeStatus) -> Table:
    from rich import box
    from rich.table import Table

    span = f"{kind.sessions[0]} … {kind.sessions[-1]}, " if kind.sessions else ""
    table = Table(
        title=f"{kind.data_type}: {span}{len(kind.sessions)} sessions", title_justify="left", box=box.SIMPLE
    )
    table.add_column("layer", no_wrap=True)
    table.add_column("held", no_wrap=True)
    for name in ("present", "missing", "stale", "quarantined", "republished", "late"):
        table.add_column(name, justify="right", no_wrap=True)
    for layer in kind.layers:
        counts = layer.counts
        rows = layer.quarantined_rows
        table.add_row(
            layer.layer,
            f"{layer.first} … {layer.last}" if layer.first else "-",
            f"{counts['present']:,}",
            _cell(counts["missing"], "missing"),
            _cell(counts["stale"], "stale"),
            f"[magenta]{sum(1 for s in layer.days if s in layer.quarantined)} ({rows:,} rows)[/]"
            if rows
            else "",
            _cell(sum(1 for s in layer.days if s in layer.republished), "republished"),
            _cell(sum(1 for s in layer.days if s in layer.late), "late"),
        )
    return table


def _cell(count: int, state: str) -> str:
    return f"[{_STYLES[state]}]{count:,}[/]" if count else ""


def _notes(kind: TypeStatus) -> list[str]:
    """One line per layer and problem: which sessions, and the quarantine reasons."""
    lines = []
    position = {s: i for i, s in enumerate(kind.sessions)}
    for layer in kind.layers:
        for state in ("missing", "stale"):
            days = [s for s, found in layer.days.items() if found == state]
            if days:
                lines.append(f"  {layer.layer}: {len(days)} {state}: {_dates(days, position)}")
        reasons = layer.quarantine_reasons
        if reasons:
            text = ", ".join(f"{reason} {n:,}" for reason, n in reasons.items())
            lines.append(f"  {layer.layer}: quarantined rows by reason: {text}")
    return lines


def _dates(days: list[dt.date], position: dict[dt.date, int]) -> str:
    """Sessions as runs of consecutive sessions (``a … b (n)``), the first :data:`_LISTED` runs named."""
    runs: list[list[dt.date]] = []
    for day in days:
        if runs and position[day] - position[runs[-1][-1]] == 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    text = [str(r[0]) if len(r) == 1 else f"{r[0]} … {r[-1]} ({len(r)})" for r in runs[:_LISTED]]
    more = len(runs) - _LISTED
    return ", ".join(text) + (f" and {more} more runs" if more > 0 else "")


def _detail(kind: TypeStatus, sessions: list[dt.date]) -> Table:
    """One row per session: each layer's state, present layers folded into one word."""
    from rich.table import Table

    table = Table(title=f"{kind.data_type}: {len(sessions)} sessions in detail", title_justify="left")
    table.add_column("session", no_wrap=True)
    table.add_column("layers")
    for session in sessions:
        cells = [f"{layer.layer} {_state_text(layer, session)}" for layer in kind.layers]
        present = [layer.layer for layer in kind.layers if _state_text(layer, session) == "present"]
        other = [c for c, layer in zip(cells, kind.layers, strict=True) if layer.layer not in present]
        if present:
            other.append(
                f"[green]present[/] in {len(present)} other layer(s)" if other else "[green]present[/]"
            )
        table.add_row(str(session), "; ".join(other))
    return table


def _state_text(layer: LayerStatus, session: dt.date) -> str:
    """``state`` plus what explains it: rows and reasons, versions replaced, late, why stale."""
    state = layer.days[session]
    words = [state if state == "present" else f"[{_STYLES[state]}]{state}[/]"]
    if session in layer.quarantined:
        reasons = ", ".join(f"{r} {n:,}" for r, n in sorted(layer.reasons.get(session, {}).items()))
        words.append(f"{layer.quarantined[session]:,} rows ({reasons})")
    if session in layer.republished:
        words.append(f"{layer.republished[session]} version(s) replaced")
    if session in layer.late and state != "late":
        words.append("and late")
    if session in layer.published and session in layer.late:
        from zoneinfo import ZoneInfo

        from quantmini.core.calendar import EXCHANGE_TZ

        published = layer.published[session].astimezone(ZoneInfo(EXCHANGE_TZ))
        words.append(f"published {published:%Y-%m-%d %H:%M} ET")
    if session in layer.stale:
        words.append(f"({layer.stale[session]})")
    return " ".join(words)
