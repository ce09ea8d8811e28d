"""Inline SVG charts for the lake report, drawn from plain values: a dated line chart with event markers, a
stacked bar chart and a state heatmap. Hovering shows an SVG ``<title>`` (no script).

Every mark carries ``data-*`` attributes (its date, series, state) so a test can read a rendered chart back
from the DOM. A line keeps at most two points (its lowest and highest) per horizontal pixel, so a 20-year
daily series costs no more than a one-year one.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from html import escape

#: Plot margins (left, right, top, bottom) in pixels: room for the axes' labels.
_MARGIN = (64, 16, 12, 28)
_FONT = 'font-size="11" fill="#444"'


@dataclass(frozen=True, slots=True)
class Line:
    """One series of a line chart."""

    name: str
    color: str
    points: Sequence[tuple[dt.date, float]]


@dataclass(frozen=True, slots=True)
class Marker:
    """A vertical mark on a dated chart (a split, a dividend, an anomaly)."""

    date: dt.date
    kind: str
    label: str
    color: str


def line_chart(
    lines: Sequence[Line],
    markers: Sequence[Marker] = (),
    *,
    width: int = 900,
    height: int = 260,
    log: bool = False,
    counts: bool = False,
) -> str:
    """Dated lines on a shared y axis (logarithmic with ``log``: equal moves in percent look equal, and
    only positive values are drawn; whole-number labels with ``counts``), with vertical markers."""
    scale = math.log if log else float
    series = [
        [(d, scale(v)) for d, v in line.points if math.isfinite(v) and (v > 0 or not log)] for line in lines
    ]
    points = [p for line in series for p in line]
    if not points:
        return _empty(width, "no data")
    days = [d for d, _ in points] + [m.date for m in markers]
    first, last = min(days), max(days)
    low, high = _padded(min(v for _, v in points), max(v for _, v in points), at_zero=not log)
    left, right, top, bottom = _MARGIN
    plot_w, plot_h = width - left - right, height - top - bottom
    span = max((last - first).days, 1)

    def x(day: dt.date) -> float:
        return left + (day - first).days / span * plot_w

    def y(value: float) -> float:
        return top + (high - value) / (high - low) * plot_h

    def label(value: float) -> str:
        return _number(math.exp(value) if log else value, counts)

    parts = [_open(width, height), *_y_axis(low, high, y, label, left, width - right)]
    parts += _x_axis(first, last, x, height - bottom + 16)
    for line, values in zip(lines, series, strict=True):
        coords = _decimated([(x(d), y(v)) for d, v in values])
        parts.append(
            f'<polyline data-series="{escape(line.name)}" data-points="{len(line.points)}" fill="none" '
            f'stroke="{line.color}" stroke-width="1.5" points="{coords}"><title>{escape(line.name)}</title>'
            "</polyline>"
        )
    for marker in markers:
        mx = x(marker.date)
        parts.append(
            f'<g class="marker {escape(marker.kind)}" data-date="{marker.date}">'
            f'<line x1="{mx:.1f}" x2="{mx:.1f}" y1="{top}" y2="{height - bottom}" stroke="{marker.color}" '
            f'stroke-dasharray="3,2"/><circle cx="{mx:.1f}" cy="{top + 4}" r="4" fill="{marker.color}"/>'
            f"<title>{escape(marker.label)}</title></g>"
        )
    legend_x = left + 8
    for line in lines:
        parts.append(
            f'<rect x="{legend_x}" y="{top + 4}" width="10" height="10" fill="{line.color}"/>'
            f'<text x="{legend_x + 14}" y="{top + 13}" {_FONT}>{escape(line.name)}</text>'
        )
        legend_x += 14 + 7 * len(line.name) + 16
    parts.append("</svg>")
    return "".join(parts)


def stacked_bars(
    labels: Sequence[str],
    stacks: Mapping[str, Sequence[int]],
    colors: Mapping[str, str],
    *,
    height: int = 220,
) -> str:
    """One bar per label, stacked by series (``stacks[name][i]`` is label ``i``'s share of ``name``)."""
    totals = [sum(values[i] for values in stacks.values()) for i in range(len(labels))]
    if not labels or not any(totals):
        return _empty(600, "none")
    left, right, top, bottom = _MARGIN
    bar = max(4, min(28, 900 // len(labels)))
    width = left + right + bar * len(labels)
    plot_h = height - top - bottom
    peak = max(totals)

    def y(value: float) -> float:
        return top + (peak - value) / peak * plot_h

    parts = [_open(width, height), *_y_axis(0, peak, y, lambda v: _number(v, True), left, width - right)]
    for i, label in enumerate(labels):
        base = 0
        bx = left + i * bar
        for name, values in stacks.items():
            if not values[i]:
                continue
            y0, y1 = y(base + values[i]), y(base)
            parts.append(
                f'<rect class="bar" data-label="{escape(label)}" data-series="{escape(name)}" '
                f'data-value="{values[i]}" x="{bx + 1}" y="{y0:.1f}" width="{bar - 2}" '
                f'height="{max(y1 - y0, 0.5):.1f}" fill="{colors[name]}"><title>{escape(label)} '
                f"{escape(name)}: {values[i]:,}</title></rect>"
            )
            base += values[i]
    for i in range(0, len(labels), math.ceil(56 / bar)):
        parts.append(
            f'<text x="{left + i * bar + bar / 2}" y="{height - bottom + 16}" text-anchor="middle" {_FONT}>'
            f"{escape(labels[i])}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def heatmap(
    rows: Sequence[tuple[str, Mapping[dt.date, str]]],
    columns: Sequence[dt.date],
    colors: Mapping[str, str],
    *,
    unit: str,
) -> str:
    """One row per label, one column per date, each cell coloured by its state (blank where the row has
    none). Neighbouring cells of one state are drawn as one run (``data-date`` … ``data-last``, its
    ``data-cells``), which keeps a long, mostly healthy history small."""
    if not rows or not columns:
        return _empty(600, "no sessions")
    label_w, top = 12 + 7 * max(len(label) for label, _ in rows), 8
    cell_w = max(2, min(14, (1180 - label_w) // len(columns)))
    cell_h = 16
    width = label_w + cell_w * len(columns) + 8
    height = top + cell_h * len(rows) + 24
    index = {day: i for i, day in enumerate(columns)}
    parts = [_open(width, height)]
    for r, (label, cells) in enumerate(rows):
        ry = top + r * cell_h
        parts.append(f'<text x="4" y="{ry + 12}" {_FONT}>{escape(label)}</text>')
        parts.append(f'<g class="heat-row" data-row="{escape(label)}">')
        for first, last, state, n in _runs(cells, index):
            parts.append(
                f'<rect class="cell {state}" data-date="{first}" data-last="{last}" data-cells="{n}" '
                f'x="{label_w + index[first] * cell_w}" y="{ry + 1}" width="{n * cell_w - 1}" '
                f'height="{cell_h - 2}" fill="{colors[state]}"><title>{first}'
                f"{f' → {last}' if n > 1 else ''}, {n} {unit}{'s' if n > 1 else ''}: {state}</title></rect>"
            )
        parts.append("</g>")
    step = max(1, math.ceil(len(columns) / max(1, (width - label_w) // 80)))
    for i in range(0, len(columns), step):
        parts.append(
            f'<text x="{label_w + i * cell_w}" y="{height - 6}" {_FONT}>{columns[i]:%Y-%m-%d}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _runs(
    cells: Mapping[dt.date, str], index: Mapping[dt.date, int]
) -> list[tuple[dt.date, dt.date, str, int]]:
    """``(first, last, state, cells)`` of each run of neighbouring columns holding one state."""
    found: list[tuple[dt.date, dt.date, str, int]] = []
    for day in sorted(cells):
        state = cells[day]
        if found and found[-1][2] == state and index[found[-1][1]] + 1 == index[day]:
            first, _, _, n = found[-1]
            found[-1] = (first, day, state, n + 1)
        else:
            found.append((day, day, state, 1))
    return found


def _open(width: int, height: int) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img">'
    )


def _empty(width: int, text: str) -> str:
    return f'{_open(width, 40)}<text x="8" y="24" {_FONT}>{escape(text)}</text></svg>'


def _padded(low: float, high: float, *, at_zero: bool = True) -> tuple[float, float]:
    """The y range shown: the data's with 5% room, never empty (``at_zero``: not below zero for data
    that is not)."""
    pad = (high - low) * 0.05 or 1.0
    return (max(low - pad, 0.0) if at_zero and low >= 0 else low - pad), high + pad


def _y_axis(
    low: float, high: float, y: Callable[[float], float], label: Callable[[float], str], x0: int, x1: int
) -> list[str]:
    """Five horizontal grid lines, each with its ``label``."""
    parts = []
    for k in range(5):
        value = low + (high - low) * k / 4
        gy = y(value)
        parts.append(
            f'<line x1="{x0}" x2="{x1}" y1="{gy:.1f}" y2="{gy:.1f}" stroke="#e5e5e5"/>'
            f'<text x="{x0 - 6}" y="{gy + 4:.1f}" text-anchor="end" {_FONT}>{label(value)}</text>'
        )
    return parts


def _x_axis(first: dt.date, last: dt.date, x: Callable[[dt.date], float], ty: int) -> list[str]:
    """Five date labels evenly spread between ``first`` and ``last`` (the outer ones inside the chart)."""
    days = (last - first).days
    labels = sorted({first + dt.timedelta(days=round(days * k / 4)) for k in range(5)})
    anchors = ["start", *["middle"] * (len(labels) - 2), "end"] if len(labels) > 1 else ["start"]
    return [
        f'<text x="{x(day):.1f}" y="{ty}" text-anchor="{anchor}" {_FONT}>{day:%Y-%m-%d}</text>'
        for day, anchor in zip(labels, anchors, strict=True)
    ]


def _number(value: float, whole: bool = False) -> str:
    magnitude = abs(value)
    if magnitude >= 1e6:
        return f"{value / 1e6:.1f}M"
    if magnitude >= 1e4:
        return f"{value / 1e3:.0f}k"
    return f"{value:,.2f}" if magnitude < 100 and not whole else f"{value:,.0f}"


def _decimated(coords: Sequence[tuple[float, float]]) -> str:
    """``points`` of a polyline keeping, per horizontal pixel, the first point and the lowest and highest."""
    kept: list[tuple[float, float]] = []
    pixel: dict[int, list[tuple[float, float]]] = {}
    for cx, cy in coords:
        pixel.setdefault(int(cx), []).append((cx, cy))
    for column in sorted(pixel):
        group = pixel[column]
        if len(group) <= 3:
            kept.extend(group)
            continue
        chosen = {
            0,
            min(range(len(group)), key=lambda i: group[i][1]),
            max(range(len(group)), key=lambda i: group[i][1]),
        }
        chosen.add(len(group) - 1)
        kept.extend(group[i] for i in sorted(chosen))
    return " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy in kept)
