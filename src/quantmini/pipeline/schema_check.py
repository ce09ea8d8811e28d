"""Stored partition files against their declared schemas, from Parquet footers only.

A lake of 20 years holds tens of thousands of partition files, almost all with one of a handful of
schemas: each file's footer is read (no data), files are grouped by schema, and each distinct schema is
compared with the spec once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from quantmini.datasets.base import DatasetSpec
from quantmini.datasets.columns import Layer, TableSchema, layer_tables, schema_problems
from quantmini.io.lake import PARTITION_FILE, Lake

#: Layers whose tables are partition files (gold is checked by ``quantmini validate gold``).
FILE_LAYERS: tuple[Layer, ...] = ("bronze", "silver", "quarantine")


@dataclass(frozen=True, slots=True)
class SchemaFinding:
    """One problem of one stored file."""

    path: Path
    table: TableSchema
    problem: str


@dataclass(frozen=True, slots=True)
class SchemaReport:
    """What :func:`check_schemas` looked at and found."""

    files: int
    #: Distinct stored schemas compared with their spec (over all tables).
    schemas: int
    findings: list[SchemaFinding]


def check_schemas(
    lake: Lake, specs: Sequence[DatasetSpec], layers: Sequence[Layer] = FILE_LAYERS
) -> SchemaReport:
    """Every partition file of ``specs`` in ``layers`` against its table's declared schema."""
    files = schemas = 0
    findings: list[SchemaFinding] = []
    for spec in specs:
        for layer in layers:
            if layer not in FILE_LAYERS:
                continue
            for table in layer_tables(spec, layer):
                groups: dict[pa.Schema, list[Path]] = {}
                errors: dict[Path, str] = {}
                for path in sorted((lake.root / table.directory).glob(f"date=*/{PARTITION_FILE}")):
                    try:
                        stored = pq.read_schema(path).remove_metadata()
                    except (pa.ArrowException, OSError) as exc:
                        errors[path] = f"unreadable Parquet footer: {exc}"
                        continue
                    groups.setdefault(stored, []).append(path)
                files += sum(len(paths) for paths in groups.values()) + len(errors)
                schemas += len(groups)
                found = [SchemaFinding(p, table, problem) for p, problem in errors.items()]
                for stored, paths in groups.items():
                    problems = schema_problems(stored, table.schema)
                    found += [SchemaFinding(p, table, problem) for p in paths for problem in problems]
                findings += sorted(found, key=lambda f: f.path)
    return SchemaReport(files, schemas, findings)
