"""The DuckDB catalog: a database file of views over the lake's Parquet, for ad-hoc SQL.

Views (only for layers that have at least one partition or file), for every registered data type:

    bronze_<type>, quarantine_<type>     over <layer>/<type>/date=*/part.parquet
    silver_<type>                        the data type's main silver table (raw bars + features)
    <table>                              its other silver tables (corporate_action_checks, daily_ratios …)
    <type>_<set>                         a feature set's table (stocks_daily_alpha158, stocks_daily_ta …):
                                         ticker, session_date and the set's features, as stored (never
                                         adjusted); join it to silver_<type> or adjusted_<type> on both
    adjusted_<type>                      silver (else bronze) bars plus, computed from the compact factor
                                         table when read: split_factor, adj_factor; adj_open … adj_close =
                                         raw × adj_factor (splits and dividends: total return, as gold/qlib)
                                         and adj_volume = raw ÷ adj_factor; split_open … split_close = raw ×
                                         split_factor (splits only, as gold/qlib_split) and split_volume =
                                         raw ÷ split_factor (price × volume stays the raw traded value)
    ref_<table>                          over bronze/reference/<table>.parquet
    <table>                              over silver/reference/<table>.parquet (adjustment_factors …)

Paths inside views are **relative to the lake root**, so a moved or copied lake keeps working: open the
catalog with :func:`connect_catalog` (it points DuckDB's ``file_search_path`` at the lake), or run the
``duckdb`` shell from the lake root. Views use globs, so partitions added later show up without a rebuild.
The file is built beside its target and swapped in with ``os.replace``; readers never see a half-built one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

import duckdb

from quantmini._exceptions import StorageError
from quantmini.datasets import DATASETS, DatasetSpec, get_spec
from quantmini.io.atomic import temp_path_for
from quantmini.io.lake import PARTITION_FILE, Lake
from quantmini.io.manifest import read_manifest, write_manifest
from quantmini.query.sql import adjusted_view_sql, create_view_sql, string_literal

_PARTITION_GLOB = f"date=*/{PARTITION_FILE}"


def catalog_views(lake: Lake, data_types: Iterable[str] | None = None) -> dict[str, str]:
    """View name → Parquet path or glob relative to the lake root, for every layer with files."""
    views: dict[str, str] = {}
    for data_type in DATASETS if data_types is None else data_types:
        spec = get_spec(data_type)
        for name, directory in _tables(lake, spec):
            if _has_partition(directory):
                views[name] = _relative(lake, directory / _PARTITION_GLOB)
    for prefix, directory in (
        ("ref_", lake.reference_table("splits").parent),
        ("", lake.adjustment_factors().parent),
    ):
        if directory.is_dir():
            for table in sorted(directory.glob("*.parquet")):
                if not table.name.startswith("."):
                    views[f"{prefix}{table.stem}"] = _relative(lake, table)
    return views


def build_catalog(data_root: Path, data_types: Iterable[str] | None = None) -> Path:
    """Create (or atomically replace) the lake's DuckDB catalog file and return its path."""
    lake = Lake(Path(data_root).resolve())
    views = catalog_views(lake, data_types)
    target = lake.duckdb_file()
    if "?" in str(target):
        raise StorageError(
            f"DuckDB cannot open a database file whose path contains '?' ({target}): move the lake to a "
            "path without one to get its catalog"
        )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create directory {target.parent}: {exc.strerror or exc}") from exc
    statements = [create_view_sql(name, parquet) for name, parquet in views.items()]
    for data_type in DATASETS if data_types is None else data_types:
        spec = get_spec(data_type)
        source = f"silver_{spec.name}" if f"silver_{spec.name}" in views else f"bronze_{spec.name}"
        if spec.adjustable and source in views:
            factors = "adjustment_factors" if "adjustment_factors" in views else None
            statements.append(adjusted_view_sql(f"adjusted_{spec.name}", source, factors))
    # Views read globs, so new partitions need no rebuild: only a new set of views does.
    record = lake.root / "_manifests" / "gold" / "catalog.json"
    digest = hashlib.sha256("\n".join(statements).encode()).hexdigest()
    previous = read_manifest(record)
    if target.exists() and previous is not None and previous.get("views") == digest:
        return target
    tmp = temp_path_for(target)
    try:
        with duckdb.connect(str(tmp)) as con:
            _search_lake(con, lake)
            for statement in statements:
                con.execute(statement)
            con.execute("CHECKPOINT")
        os.replace(tmp, target)
    except duckdb.Error as exc:
        raise StorageError(f"cannot build the DuckDB catalog {target}: {exc}") from exc
    except OSError as exc:
        raise StorageError(f"cannot write the DuckDB catalog {target}: {exc.strerror or exc}") from exc
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
    write_manifest(record, {"views": digest})
    return target


def connect_catalog(data_root: Path, *, read_only: bool = True) -> duckdb.DuckDBPyConnection:
    """Open the lake's catalog with relative paths resolved against the lake root."""
    lake = Lake(Path(data_root).resolve())
    path = lake.duckdb_file()
    if not path.exists():
        raise StorageError(f"{path} does not exist: run the gold stage (quantmini data convert) first")
    try:
        con = duckdb.connect(str(path), read_only=read_only)
        _search_lake(con, lake)
    except duckdb.Error as exc:
        raise StorageError(f"cannot open the DuckDB catalog {path}: {exc}") from exc
    return con


def _search_lake(con: duckdb.DuckDBPyConnection, lake: Lake) -> None:
    if "," in str(lake.root):
        raise StorageError(
            f"the data root {lake.root} contains a comma, which DuckDB's file_search_path cannot hold: "
            "move the lake to a path without one to use its catalog"
        )
    con.execute(f"SET file_search_path = {string_literal(str(lake.root))}")


def _tables(lake: Lake, spec: DatasetSpec) -> list[tuple[str, Path]]:
    tables = [(f"bronze_{spec.name}", lake.bronze_dir(spec))]
    for part in spec.silver:
        name = f"silver_{spec.name}" if part.name is None else part.name
        tables.append((name, lake.silver_dir(part.table(spec.name))))
    tables.append((f"quarantine_{spec.name}", lake.quarantine_dir(spec)))
    return tables


def _has_partition(directory: Path) -> bool:
    if not directory.is_dir():
        return False
    return any(
        (child / PARTITION_FILE).is_file() for child in directory.iterdir() if child.name.startswith("date=")
    )


def _relative(lake: Lake, path: Path) -> str:
    return path.relative_to(lake.root).as_posix()
