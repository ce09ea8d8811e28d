"""What a query reads, as DuckDB reports it: the partitions handed to it (the rest are pruned by their
session in the path, never opened) and, per Parquet scan, the files read and the row groups scanned out of
those the files hold (the others are skipped on their ticker and date statistics).

The figures come from DuckDB's own profile of the query run (``profiling_mode = detailed``), not from a
model of what it should do, so ``data query --explain`` shows what really happened.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb


@dataclass(frozen=True, slots=True)
class Scan:
    """One Parquet scan of the query."""

    #: What the scan reads, relative to the lake (``silver/stocks_daily``, ``silver/reference/…``).
    source: str
    files: int
    row_groups_scanned: int
    row_groups_total: int
    rows_scanned: int
    #: The filters DuckDB pushed into the scan (checked against each row group's statistics).
    filters: str


@dataclass(frozen=True, slots=True)
class Explanation:
    """How a query was answered: the pruning by path, each scan's row groups, DuckDB's plan and the SQL."""

    data_type: str
    #: Sessions stored for the data type (the partitions a query could read).
    stored: int
    #: The partitions handed to DuckDB: one per stored session in the query's range.
    partitions: list[Path]
    scans: list[Scan]
    rows: int
    plan: str
    sql: str

    @property
    def sessions(self) -> tuple[dt.date, dt.date] | None:
        """First and last session read."""
        if not self.partitions:
            return None
        days = sorted(dt.date.fromisoformat(p.parent.name.removeprefix("date=")) for p in self.partitions)
        return days[0], days[-1]

    def lines(self) -> list[str]:
        """The explanation as text lines (what ``data query --explain`` prints)."""
        span = self.sessions
        read = f"{len(self.partitions)} of {self.stored} partitions of {self.data_type}"
        lines = [f"partitions: {read} read" + (f" ({span[0]} … {span[1]})" if span else "")]
        lines.append(f"pruned by path (never opened): {self.stored - len(self.partitions)} partitions")
        for scan in self.scans:
            skipped = scan.row_groups_total - scan.row_groups_scanned
            lines.append(
                f"scan {scan.source}: {scan.files} file(s), row groups {scan.row_groups_scanned} scanned of "
                f"{scan.row_groups_total} ({skipped} pruned by statistics), {scan.rows_scanned:,} rows out"
            )
            if scan.filters:
                lines.append(f"  filters pushed into the scan: {' AND '.join(scan.filters.splitlines())}")
        lines.append(f"answer: {self.rows:,} rows")
        lines += ["", "plan:", self.plan.rstrip(), "", "SQL:", self.sql]
        return lines


def profiled(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[object], root: Path
) -> tuple[int, list[Scan], str]:
    """Run ``sql`` on the cursor ``con`` with DuckDB's profiler on; return the answer's row count, its
    Parquet scans and the physical plan."""
    plan = "\n".join(str(row[1]) for row in con.execute(f"EXPLAIN {sql}", params).fetchall())
    con.execute("SET enable_profiling = 'no_output'")
    con.execute("SET profiling_mode = 'detailed'")
    try:
        rows = len(con.execute(sql, params).fetchall())
        profile = json.loads(con.get_profiling_information(format="json"))
    finally:
        con.execute("RESET enable_profiling")
    return rows, [_scan(op, root) for op in _operators(profile) if "row_groups_scanned" in op], plan


def _operators(node: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for child in node.get("operator", []) + node.get("children", []):
        found.append(child)
        found += _operators(child)
    return found


def _scan(op: dict[str, Any], root: Path) -> Scan:
    info = op.get("extra_info", {})
    names = str(info.get("Filename(s)", "")).split(",")[0].strip()
    return Scan(
        source=_source(names, root),
        files=int(info.get("Total Files Read", 0)),
        row_groups_scanned=int(op.get("row_groups_scanned", 0)),
        row_groups_total=int(op.get("total_row_groups_to_scan", 0)),
        rows_scanned=int(op.get("rows_scanned", 0)),
        filters=str(info.get("Filters", "")),
    )


def _source(first_file: str, root: Path) -> str:
    """``silver/stocks_daily`` for a partition file below the lake, the file itself for a single table."""
    path = Path(first_file)
    try:
        relative = path.relative_to(root)
    except ValueError:
        return first_file
    parts = relative.parts
    if len(parts) >= 3 and parts[-2].startswith("date="):
        return "/".join(parts[:-2])
    return relative.as_posix()
