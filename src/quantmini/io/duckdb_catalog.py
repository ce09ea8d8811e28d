"""The DuckDB catalog: a database file of views over the lake's Parquet, for ad-hoc SQL.

Views (only for layers that have at least one partition or file):

    bronze_<type>, silver_<type>, quarantine_<type>   over <layer>/<type>/date=*/part.parquet
    ref_<table>                                        over bronze/reference/<table>.parquet
    <table>                                            over silver/reference/<table>.parquet (adjustment
                                                       factors, corporate-action checks, financial ratios)

Views hold absolute paths and globs, so partitions ingested later show up without a rebuild; the file
is built beside its target and swapped in with ``os.replace``, so readers never see a half-built one.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable
from pathlib import Path

import duckdb

from quantmini._exceptions import StorageError
from quantmini.datasets import DatasetSpec, get_spec
from quantmini.io.atomic import temp_path_for
from quantmini.io.lake import PARTITION_FILE, Lake
from quantmini.query.sql import create_view_sql

_PARTITION_GLOB = f"date=*/{PARTITION_FILE}"
_GLOB_CHARS = re.compile(r"[*?\[\]{}]")


def catalog_views(lake: Lake, data_types: Iterable[str]) -> dict[str, str]:
    """View name → Parquet path or glob (absolute when ``lake.root`` is), for every layer with files."""
    _check_root(lake.root)
    views: dict[str, str] = {}
    for data_type in data_types:
        spec = get_spec(data_type)
        for layer, directory in _layer_dirs(lake, spec):
            if any(directory.glob(_PARTITION_GLOB)):
                views[f"{layer}_{spec.name}"] = (directory / _PARTITION_GLOB).as_posix()
    reference_dir = lake.reference_table("splits").parent
    if reference_dir.is_dir():
        for table in sorted(reference_dir.glob("*.parquet")):
            if not table.name.startswith("."):
                views[f"ref_{table.stem}"] = table.as_posix()
    derived_dir = lake.adjustment_factors().parent
    if derived_dir.is_dir():
        for table in sorted(derived_dir.glob("*.parquet")):
            if not table.name.startswith("."):
                views[table.stem] = table.as_posix()
    return views


def build_catalog(data_root: Path, data_types: Iterable[str]) -> Path:
    """Create (or atomically replace) the lake's DuckDB catalog file and return its path."""
    lake = Lake(Path(data_root).resolve())
    views = catalog_views(lake, data_types)
    target = lake.duckdb_file()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create directory {target.parent}: {exc.strerror or exc}") from exc
    tmp = temp_path_for(target)
    try:
        with duckdb.connect(str(tmp)) as con:
            for name, parquet in views.items():
                con.execute(create_view_sql(name, parquet))
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
    return target


def _layer_dirs(lake: Lake, spec: DatasetSpec) -> tuple[tuple[str, Path], ...]:
    return (
        ("bronze", lake.bronze_dir(spec)),
        ("silver", lake.silver_dir(spec)),
        ("quarantine", lake.quarantine_dir(spec)),
    )


def _check_root(root: Path) -> None:
    if _GLOB_CHARS.search(root.as_posix()):
        raise StorageError(
            f"the data root {root} contains glob characters (* ? [ ] {{ }}) that DuckDB would expand: "
            "move the lake to a plain path to build its catalog"
        )
