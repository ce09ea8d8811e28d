"""Render :class:`~quantmini.report.gather.ReportFacts` as one self-contained HTML page: inline CSS and SVG,
no script, font or network request, so it opens from disk anywhere.

Each section has a stable ``id`` (``summary``, ``coverage``, ``quarantine``, ``anomalies``,
``corporate-actions``, ``symbols`` with one ``symbol-<SYMBOL>`` article per chosen symbol); figures a
reader (or a test) looks for carry ``data-*`` attributes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

import polars as pl

from quantmini import __version__
from quantmini.pipeline.status import SEVERITY
from quantmini.report.aggregates import (
    ANOMALY_RATIO,
    TRAILING_SESSIONS,
    downsample,
    granularity_for,
    months_between,
    quarantine_by_month,
    reason_stacks,
    row_anomalies,
)
from quantmini.report.gather import ReportFacts, SymbolSeries
from quantmini.report.svg import Line, Marker, heatmap, line_chart, stacked_bars

STATE_COLORS = {
    "present": "#4caf50",
    "late": "#fdd835",
    "republished": "#42a5f5",
    "quarantined": "#fb8c00",
    "stale": "#ab47bc",
    "missing": "#e53935",
}
_PALETTE = ("#e53935", "#fb8c00", "#fdd835", "#43a047", "#1e88e5", "#8e24aa", "#6d4c41", "#00acc1", "#757575")
#: Longest tables shown in full; beyond, the most recent rows and a count of the others.
MAX_TABLE_ROWS = 200

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:24px;color:#222;
background:#fff;max-width:1280px}
h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}
h3{font-size:15px}section,article{margin-bottom:24px}.note{color:#555;font-size:13px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;
text-align:right}th{background:#f5f5f5}td:first-child,th:first-child{text-align:left}
.legend span{display:inline-block;margin-right:12px;font-size:13px}
.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:middle}
.chart{overflow-x:auto}.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(620px,1fr));gap:8px}
"""


def render(facts: ReportFacts) -> str:
    """The whole page."""
    anomalies = row_anomalies(facts.rows)
    body = [
        "<h1>quantmini lake report</h1>",
        f"<p class='note'>{escape(str(facts.root))} · quantmini {__version__}</p>",
        _summary(facts, anomalies),
        _coverage(facts),
        _quarantine(facts.quarantine),
        _anomalies(anomalies),
        _corporate_actions(facts),
        _symbols(facts.symbols),
    ]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>quantmini report — {escape(str(facts.root))}</title><style>{_CSS}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


def _summary(facts: ReportFacts, anomalies: pl.DataFrame) -> str:
    quarantined = int(facts.quarantine["rows"].sum())
    per_type = facts.quarantine.group_by("data_type").agg(pl.col("rows").sum())
    held = dict(zip(per_type["data_type"].to_list(), per_type["rows"].to_list(), strict=True))
    types = [
        [
            t.data_type,
            f"{len(t.sessions):,}",
            t.sessions[0] if t.sessions else "",
            t.sessions[-1] if t.sessions else "",
            f"{held.get(t.data_type, 0):,}",
        ]
        for t in facts.coverage.types
    ]
    per_layer = (
        anomalies.group_by("data_type", "layer")
        .agg(
            pl.col("session").min().alias("first"),
            pl.col("session").max().alias("last"),
            pl.len().alias("partitions"),
            pl.col("rows").sum().alias("rows"),
            pl.col("anomaly").sum().alias("anomalies"),
        )
        .sort("data_type", "layer")
    )
    layers = [
        [
            r["data_type"],
            r["layer"],
            r["first"],
            r["last"],
            f"{r['partitions']:,}",
            f"{r['rows']:,}",
            f"{r['anomalies']:,}",
        ]
        for r in per_layer.iter_rows(named=True)
    ]
    return "".join(
        [
            "<section id='summary'><h2>Summary</h2>",
            f"<p>Lake root <code>{escape(str(facts.root))}</code>: {len(types)} data types, "
            f"<span data-quarantined-rows='{quarantined}'>{quarantined:,}</span> rows quarantined.</p>",
            _table(["data type", "sessions", "first", "last", "quarantined rows"], types, attrs="id='types'"),
            _table(
                ["data type", "layer", "first session", "last session", "partitions", "rows", "anomalies"],
                layers,
                attrs="id='layers'",
            ),
            _last_run(facts.last_run),
            "</section>",
        ]
    )


def _last_run(record: dict[str, Any] | None) -> str:
    if record is None:
        return "<p class='note' id='last-run'>No run records yet (they are kept under _runs/).</p>"
    shown = [[key, str(value)] for key, value in record.items() if not isinstance(value, dict | list)]
    return (
        f"<h3>Last run</h3><div id='last-run' data-run-id='{escape(str(record['id']))}'>"
        f"{_table(['field', 'value'], shown)}</div>"
    )


def _coverage(facts: ReportFacts) -> str:
    rows: list[tuple[str, dict[dt.date, str]]] = []
    sessions = sorted({s for t in facts.coverage.types for s in t.sessions})
    granularity = granularity_for(len(sessions))
    counts = []
    for status in facts.coverage.types:
        for layer in status.layers:
            label = f"{status.data_type} / {layer.layer}"
            rows.append((label, downsample(layer.days, granularity)))
            counts.append([label, *(f"{n:,}" for n in layer.counts.values())])
    columns = sorted({day for _, cells in rows for day in cells})
    legend = "".join(f"<span><i style='background:{STATE_COLORS[s]}'></i>{s}</span>" for s in SEVERITY)
    return (
        f"<section id='coverage' data-granularity='{granularity}'><h2>Coverage</h2>"
        f"<p class='note'>One cell per {granularity} ({len(sessions):,} sessions); a cell shows the worst "
        "state of its sessions: missing &gt; stale &gt; quarantined &gt; republished &gt; late &gt; "
        "present.</p>"
        f"<div class='legend'>{legend}</div>"
        f"<div class='chart'>{heatmap(rows, columns, STATE_COLORS, unit=granularity)}</div>"
        f"{_table(['table / layer', *SEVERITY], counts)}</section>"
    )


def _quarantine(quarantine: pl.DataFrame) -> str:
    monthly = quarantine_by_month(quarantine)
    total = int(quarantine["rows"].sum())
    parts = [
        f"<section id='quarantine' data-total='{total}'><h2>Quarantine reasons over time</h2>",
        f"<p class='note'>{total:,} rows quarantined (from the bronze manifests' reasons), per month and "
        "reason; the table sums them per reason.</p>",
    ]
    if monthly.is_empty():
        parts.append("<p>No quarantined rows.</p></section>")
        return "".join(parts)
    months = months_between(monthly["month"].min(), monthly["month"].max())  # type: ignore[arg-type]
    labels = [f"{m:%Y-%m}" for m in months]
    for data_type in monthly["data_type"].unique().sort().to_list():
        stacks = reason_stacks(monthly.filter(pl.col("data_type") == data_type), months)
        reasons = list(stacks)
        colors = {reason: _PALETTE[i % len(_PALETTE)] for i, reason in enumerate(reasons)}
        legend = "".join(f"<span><i style='background:{colors[r]}'></i>{escape(r)}</span>" for r in reasons)
        parts.append(
            f"<h3>{escape(data_type)}</h3><div class='legend'>{legend}</div>"
            f"<div class='chart'>{stacked_bars(labels, stacks, colors)}</div>"
        )
    per_reason = (
        monthly.group_by("data_type", "reason")
        .agg(
            pl.col("rows").sum(),
            pl.len().alias("months"),
            pl.col("month").min().alias("first"),
            pl.col("month").max().alias("last"),
        )
        .sort("data_type", "rows", "reason", descending=[False, True, False])
    )
    table_rows = [
        [
            r["data_type"],
            r["reason"],
            f"{r['rows']:,}",
            f"{r['months']:,}",
            f"{r['first']:%Y-%m}",
            f"{r['last']:%Y-%m}",
        ]
        for r in per_reason.iter_rows(named=True)
    ]
    parts.append(
        _table(
            ["data type", "reason", "rows", "months", "first month", "last month"],
            table_rows,
            attrs="id='reasons'",
        )
    )
    parts.append("</section>")
    return "".join(parts)


def _anomalies(anomalies: pl.DataFrame) -> str:
    flagged = anomalies.filter(pl.col("anomaly")).sort(
        "session", "data_type", "layer", descending=[True, False, False]
    )
    parts = [
        f"<section id='anomalies' data-count='{flagged.height}'><h2>Row-count anomalies</h2>",
        f"<p class='note'>Rows per partition (from the manifests) against the median of the same table's "
        f"previous {TRAILING_SESSIONS} partitions; flagged beyond ×{ANOMALY_RATIO:g} or ÷{ANOMALY_RATIO:g}. "
        f"{flagged.height:,} flagged.</p>",
    ]
    charts = []
    for (data_type, layer), frame in sorted(anomalies.group_by("data_type", "layer"), key=lambda g: g[0]):
        frame = frame.sort("session")
        points = list(zip(frame["session"].to_list(), frame["rows"].cast(pl.Float64).to_list(), strict=True))
        marks = [
            Marker(
                r["session"],
                "anomaly",
                f"{r['session']}: {r['rows']:,} rows, median {r['baseline']:,.0f}",
                "#e53935",
            )
            for r in frame.filter(pl.col("anomaly")).iter_rows(named=True)
        ]
        chart = line_chart([Line("rows", "#1e88e5", points)], marks, width=600, height=140, counts=True)
        charts.append(
            f"<div class='chart' data-table='{escape(str(data_type))} / {escape(str(layer))}' "
            f"data-anomalies='{len(marks)}'><h3>{escape(str(data_type))} / {escape(str(layer))}</h3>"
            f"{chart}</div>"
        )
    parts.append(f"<div class='grid'>{''.join(charts)}</div>")
    rows = [
        [
            r["data_type"],
            r["layer"],
            r["session"],
            f"{r['rows']:,}",
            f"{r['baseline']:,.0f}",
            f"{r['ratio']:.2f}" if r["ratio"] is not None else "—",
        ]
        for r in flagged.head(MAX_TABLE_ROWS).iter_rows(named=True)
    ]
    parts.append(
        _table(
            ["data type", "layer", "session", "rows", "median", "ratio"],
            rows,
            more=flagged.height - len(rows),
        )
    )
    parts.append("</section>")
    return "".join(parts)


def _corporate_actions(facts: ReportFacts) -> str:
    actions = facts.actions
    findings = actions.findings.sort("session_date", descending=True)
    finding_rows = [
        [
            r["ticker"],
            r["session_date"],
            r["check"],
            "" if r["expected_ratio"] is None else f"{r['expected_ratio']:.4g}",
            "" if r["observed_ratio"] is None else f"{r['observed_ratio']:.4g}",
        ]
        for r in findings.head(MAX_TABLE_ROWS).iter_rows(named=True)
    ]
    years = [
        [str(r["year"]), f"{r['splits']:,}", f"{r['reverse_splits']:,}", f"{r['dividends']:,}"]
        for r in actions.per_year.iter_rows(named=True)
    ]
    rejected = [[r["kind"], r["reason"], f"{r['records']:,}"] for r in actions.rejected.iter_rows(named=True)]
    return "".join(
        [
            "<section id='corporate-actions'><h2>Corporate actions and reconciliation</h2>",
            "<p class='note'>Reference splits and dividends per year; the reconciliation's findings (a split "
            "with no matching price move, a split-sized move with no split); records the factor step "
            "rejected.</p>",
            _table(["year", "splits", "reverse splits", "dividends"], years, attrs="id='actions-per-year'"),
            f"<h3>Reconciliation findings ({findings.height:,})</h3>",
            _table(
                ["ticker", "session", "check", "expected ratio", "observed ratio"],
                finding_rows,
                attrs=f"id='findings' data-count='{findings.height}'",
                more=findings.height - len(finding_rows),
            ),
            f"<h3>Rejected records ({int(actions.rejected['records'].sum()):,})</h3>",
            _table(["kind", "reason", "records"], rejected, attrs="id='rejected-actions'"),
            "</section>",
        ]
    )


def _symbols(series: Sequence[SymbolSeries]) -> str:
    if not series:
        return (
            "<section id='symbols'><h2>Symbols</h2><p class='note'>Choose symbols with --symbol to chart "
            "their raw and adjusted closes.</p></section>"
        )
    return f"<section id='symbols'><h2>Symbols</h2>{''.join(_symbol(s) for s in series)}</section>"


def _symbol(series: SymbolSeries) -> str:
    closes = series.closes
    dates = closes["session_date"].to_list()
    lines = [
        Line("raw close", "#757575", list(zip(dates, closes["raw"].to_list(), strict=True))),
        Line(
            "adjusted close",
            "#1e88e5",
            [(d, v) for d, v in zip(dates, closes["adjusted"].to_list(), strict=True) if v is not None],
        ),
    ]
    markers = [
        Marker(
            r["event_date"],
            r["kind"],
            _event_label(r["event_date"], r["kind"], r["multiplier"]),
            _EVENT_COLORS[r["kind"]],
        )
        for r in series.events.iter_rows(named=True)
    ]
    notes = "".join(f"<p class='note'>{escape(n)}</p>" for n in series.notes)
    events = [
        [r["event_date"], r["kind"], f"{r['multiplier']:.6g}"] for r in series.events.iter_rows(named=True)
    ]
    tickers = ", ".join(closes["ticker"].unique(maintain_order=True).to_list())
    if closes.is_empty():
        body = "<p>No bars for this symbol in the range.</p>"
    else:
        body = (
            f"<p class='note'>{closes.height:,} sessions, {dates[0]} → {dates[-1]}; traded as "
            f"{escape(tickers)}. Log scale; markers: splits (purple), dividends (green); the multiplier is "
            "what earlier prices are multiplied by.</p>"
            f"<div class='chart'>{line_chart(lines, markers, log=True)}</div>"
            f"{_table(['date', 'event', 'multiplier'], events, attrs='class=events')}"
        )
    ident = escape(series.symbol)
    return (
        f"<article id='symbol-{ident}' data-symbol='{ident}' data-sessions='{closes.height}'>"
        f"<h3>{ident}</h3>{notes}{body}</article>"
    )


_EVENT_COLORS = {"split": "#8e24aa", "dividend": "#2e7d32"}


def _event_label(day: dt.date, kind: str, multiplier: float) -> str:
    if kind == "split":
        ratio = 1 / multiplier
        shape = f"{ratio:g}-for-1 split" if ratio >= 1 else f"1-for-{multiplier:g} reverse split"
        return f"{day}: {shape}"
    return f"{day}: dividend (earlier prices × {multiplier:.6g})"


def _table(header: Sequence[str], rows: Iterable[Sequence[object]], *, attrs: str = "", more: int = 0) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    if not body:
        body = f"<tr class='none'><td colspan='{len(header)}'>none</td></tr>"
    tail = f"<p class='note'>… and {more:,} more.</p>" if more > 0 else ""
    return f"<table {attrs}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{tail}"
