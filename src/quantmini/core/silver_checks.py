"""Re-check a stored silver partition against its declared schema and its manifest (pure).

Used by ``quantmini validate silver``: the promises of a silver partition are its table's exact schema,
one session, unique keys, finite floats (a missing value is stored as null, never NaN or ±inf), and the
row count and checksum its manifest recorded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import polars as pl
import pyarrow as pa

from quantmini.core.bronze_checks import manifest_problems
from quantmini.core.ordering import duplicated_keys
from quantmini.datasets.columns import schema_problems


def silver_violations(
    table: pa.Table,
    schema: pa.Schema,
    keys: Sequence[str],
    session: dt.date,
    manifest: dict[str, Any] | None,
    file_sha256: str,
) -> list[str]:
    """Every broken promise of one silver partition, as short sentences (empty when it is sound)."""
    problems = manifest_problems("silver", manifest, file_sha256, table.num_rows, "rows")
    if differs := schema_problems(table.schema, schema):
        problems.append("schema differs from the spec: " + ", ".join(differs))
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    if frame.height == 0:
        return problems
    if "session_date" in frame.columns:
        dates = frame["session_date"].unique().sort().to_list()
        if dates != [session]:
            problems.append(f"session_date holds {dates[:3]}, expected only {session}")
    present = [k for k in keys if k in frame.columns]
    if present and (count := int(duplicated_keys(frame, present).sum())):
        problems.append(f"{count} rows share a key ({', '.join(present)})")
    floats = [name for name, dtype in frame.schema.items() if dtype.is_float()]
    if floats:
        counts = frame.select(pl.col(c).is_nan().sum().alias(c) for c in floats).row(0, named=True)
        infinite = frame.select(pl.col(c).is_infinite().sum().alias(c) for c in floats).row(0, named=True)
        problems += [f"{n} NaN values in {c} (missing values are null)" for c, n in counts.items() if n]
        problems += [f"{n} infinite values in {c}" for c, n in infinite.items() if n]
    return problems
