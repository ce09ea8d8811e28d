"""Stored partition files against their declared schemas, from Parquet footers only.

A lake of 20 years holds tens of thousands of partition files, almost all with one of a handful of
schemas: files are grouped by the Arrow schema bytes their footer stores
(:func:`~quantmini.io.parquet.arrow_schema_bytes`, no data and no footer decoding), one footer per group
is decoded, and each distinct schema is compared with the spec once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from quantmini.datasets.base import DatasetSpec
from quantmini.datasets.columns import Layer, TableSchema, layer_tables, reference_tables, schema_problems
from quantmini.io.lake import PARTITION_FILE, Lake
from quantmini.io.parquet import arrow_schema_bytes

#: Layers whose tables are Parquet files (gold is checked by ``quantmini validate gold``).
FILE_LAYERS: tuple[Layer, ...] = ("bronze", "silver", "quarantine", "reference")


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
    """Every stored file of ``specs`` in ``layers`` against its table's declared schema (the lake-wide
    reference tables once, whatever ``specs``)."""
    tables = [
        t
        for spec in specs
        for layer in layers
        if layer not in ("gold", "reference")
        for t in layer_tables(spec, layer)
    ]
    if "reference" in layers:
        tables += reference_tables()
    files = schemas = 0
    findings: list[SchemaFinding] = []
    for table in tables:
        if table.layer == "reference":
            single = lake.root / table.directory
            paths = [single] if single.exists() else []
        else:
            paths = sorted((lake.root / table.directory).glob(f"date=*/{PARTITION_FILE}"))
        groups, errors = _stored_schemas(paths)
        files += len(paths)
        schemas += len(groups)
        found = [SchemaFinding(p, table, problem) for p, problem in errors.items()]
        for stored, members in groups.items():
            problems = schema_problems(stored, table.schema, table.optional)
            found += [SchemaFinding(p, table, problem) for p in members for problem in problems]
        findings += sorted(found, key=lambda f: f.path)
    return SchemaReport(files, schemas, findings)


def _stored_schemas(paths: Sequence[Path]) -> tuple[dict[pa.Schema, list[Path]], dict[Path, str]]:
    """``paths`` grouped by stored schema, and the files whose footer cannot be read (with why).

    Files are first grouped by the Arrow schema bytes their footer stores (cheap) and one footer per
    group is decoded; files without those bytes are decoded one by one.
    """
    by_bytes: dict[bytes, list[Path]] = {}
    loose: list[Path] = []
    errors: dict[Path, str] = {}
    for path in paths:
        try:
            key = arrow_schema_bytes(path)
        except OSError as exc:
            errors[path] = f"unreadable: {exc.strerror or exc}"
            continue
        if key is None:
            loose.append(path)
        else:
            by_bytes.setdefault(key, []).append(path)
    groups: dict[pa.Schema, list[Path]] = {}
    for members in by_bytes.values():
        schema = _read_schema(members[0], errors)
        if schema is None:
            loose += members[1:]
        else:
            groups.setdefault(schema, []).extend(members)
    for path in loose:
        if (schema := _read_schema(path, errors)) is not None:
            groups.setdefault(schema, []).append(path)
    return groups, errors


def _read_schema(path: Path, errors: dict[Path, str]) -> pa.Schema | None:
    """The file's Arrow schema without metadata (``None``, and the reason in ``errors``, when unreadable)."""
    try:
        return pq.read_schema(path).remove_metadata()
    except (pa.ArrowException, OSError) as exc:
        errors[path] = f"unreadable Parquet footer: {exc}"
        return None
