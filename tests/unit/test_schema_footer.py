"""Grouping partition files by the Arrow schema their footer stores, and checking each group once."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from quantmini.datasets import get_spec
from quantmini.io.lake import Lake
from quantmini.io.parquet import arrow_schema_bytes
from quantmini.pipeline.schema_check import check_schemas

SPEC = get_spec("stocks_daily")


def _bars(rows: int) -> pa.Table:
    session = dt.date(2025, 6, 2)
    return pa.table(
        {
            "ticker": [f"T{i}" for i in range(rows)],
            "session_date": [session] * rows,
            "ts": [1748836800000000000] * rows,
            "window_start": [1748836800000000000] * rows,
            **{name: [1.0] * rows for name in ("open", "high", "low", "close", "volume")},
            "transactions": [1] * rows,
        }
    ).cast(SPEC.bronze_schema)


def test_equal_schemas_give_equal_bytes_whatever_the_data(tmp_path: Path) -> None:
    pq.write_table(_bars(3), tmp_path / "a.parquet")
    pq.write_table(_bars(50), tmp_path / "b.parquet", row_group_size=7)
    narrower = _bars(3).drop_columns(["transactions"])
    pq.write_table(narrower, tmp_path / "c.parquet")
    pq.write_table(_bars(3), tmp_path / "d.parquet", store_schema=False)
    a, b, c = (arrow_schema_bytes(tmp_path / f"{n}.parquet") for n in "abc")
    assert a is not None
    assert a == b
    assert c is not None
    assert c != a
    # The value itself: the base64 IPC schema Arrow stored.
    assert pa.ipc.read_schema(pa.py_buffer(base64.b64decode(a))).equals(SPEC.bronze_schema)
    assert arrow_schema_bytes(tmp_path / "d.parquet") is None
    (tmp_path / "e.parquet").write_bytes(b"not parquet")
    assert arrow_schema_bytes(tmp_path / "e.parquet") is None


def test_every_file_of_a_drifted_group_is_named_and_loose_files_are_read(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    days = [dt.date(2025, 6, d) for d in (2, 3, 4, 5, 6)]
    paths = [lake.bronze_partition(SPEC, d) for d in days]
    for path in paths:
        path.parent.mkdir(parents=True)
    pq.write_table(_bars(2), paths[0])
    pq.write_table(_bars(4).drop_columns(["transactions"]), paths[1])
    pq.write_table(_bars(5).drop_columns(["transactions"]), paths[2])
    pq.write_table(_bars(2).drop_columns(["ts"]), paths[3], store_schema=False)  # no Arrow schema stored
    paths[4].write_bytes(b"PAR1 broken")
    report = check_schemas(lake, [SPEC], ["bronze"])
    assert report.files == 5
    assert report.schemas == 3
    assert [(f.path, f.problem) for f in report.findings[:-1]] == [
        (paths[1], "missing column transactions (int64)"),
        (paths[2], "missing column transactions (int64)"),
        # Without a stored Arrow schema the timestamp reads back without its zone.
        (paths[3], "missing column ts (timestamp[ns, tz=America/New_York])"),
    ]
    assert report.findings[-1].path == paths[4]
    assert report.findings[-1].problem.startswith("unreadable Parquet footer")
