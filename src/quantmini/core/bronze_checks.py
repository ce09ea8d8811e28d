"""Re-check a stored bronze partition against its data type's spec and its manifest (pure).

Used by ``quantmini validate bronze``: whatever wrote the partition, these are the promises bronze
makes — exact schema, one session, sorted, unique keys, every row rule still holding, the row count and
checksum the manifest recorded.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pyarrow as pa

from quantmini.core.calendar import session_bounds
from quantmini.core.options import contract_columns
from quantmini.core.ordering import duplicated_keys, is_sorted_by
from quantmini.core.quality import Reason, row_checks
from quantmini.datasets.base import DatasetSpec
from quantmini.datasets.columns import schema_problems

_CONTRACT_FIELDS = ("underlying", "expiration", "option_type", "strike")


def manifest_problems(
    layer: str, manifest: dict[str, Any] | None, file_sha256: str, rows: int, rows_key: str
) -> list[str]:
    """What a partition's file says against its ``layer`` manifest: none, another checksum, other rows."""
    if manifest is None:
        return [f"no {layer} manifest"]
    problems = []
    if manifest.get("output_sha256") != file_sha256:
        problems.append("file checksum differs from the manifest's (changed after it was written)")
    if int(manifest.get(rows_key, -1)) != rows:
        problems.append(f"{rows} rows but the manifest recorded {manifest.get(rows_key)}")
    return problems


def partition_violations(
    table: pa.Table,
    spec: DatasetSpec,
    session: dt.date,
    manifest: dict[str, Any] | None,
    file_sha256: str,
) -> list[str]:
    """Every broken promise of one bronze partition, as short sentences (empty when it is sound)."""
    problems = manifest_problems("bronze", manifest, file_sha256, table.num_rows, "rows_bronze")
    if schema_differs := schema_problems(table.schema, spec.bronze_schema):
        problems.append("schema differs from the spec: " + ", ".join(schema_differs))
        return problems  # row checks need the spec's columns and types
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    if frame.height == 0:
        return problems
    dates = frame["session_date"].unique().to_list()
    if dates != [session]:
        problems.append(f"session_date holds {sorted(dates)[:3]}, expected only {session}")
    if not is_sorted_by(frame, spec.sort_columns):
        problems.append(f"not sorted by ({', '.join(spec.sort_columns)})")
    if duplicated_keys(frame, spec.key_columns).any():
        problems.append(f"duplicate keys ({', '.join(spec.key_columns)})")
    problems += [f"{count} rows break rule {reason}" for reason, count in _rule_breaks(frame, spec, session)]
    if spec.is_option:
        parsed = frame.select(contract_columns("ticker"))
        wrong = sum(
            int((parsed[c].ne_missing(frame[c])).sum()) for c in _CONTRACT_FIELDS if c in frame.columns
        )
        if wrong:
            problems.append(f"{wrong} contract fields differ from the OCC ticker")
    return problems


def _rule_breaks(frame: pl.DataFrame, spec: DatasetSpec, session: dt.date) -> list[tuple[str, int]]:
    """(reason, rows) for every row rule that stored rows break, each row counted under the first rule it
    breaks (as ingest would have quarantined it), in :class:`Reason` order."""
    checks = row_checks(spec, session_bounds(session))
    first = pl.coalesce([pl.when(cond.fill_null(True)).then(pl.lit(code.value)) for cond, code, _ in checks])
    counts = dict(frame.select(first.alias("reason")).drop_nulls()["reason"].value_counts().rows())
    return [(reason.value, int(counts[reason.value])) for reason in Reason if reason.value in counts]
