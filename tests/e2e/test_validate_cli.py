"""``quantmini pipeline run`` for a minute type (silver/gold skipped) and ``quantmini validate bronze``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from quantmini.cli.main import cli
from quantmini.datasets import get_spec
from quantmini.io.lake import Lake
from quantmini.io.manifest import sha256_file, write_manifest
from quantmini.sample import generate_sample

SPEC = get_spec("stocks_minute")
START, END = dt.date(2025, 6, 2), dt.date(2025, 6, 4)


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=True)


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    source = tmp_path / "source"
    generate_sample(source, START, END, tickers=8, minute_tickers=4, data_types=("stocks_minute",))
    root = tmp_path / "lake"
    result = run(
        "pipeline",
        "run",
        "--data-type",
        "stocks_minute",
        "--start-date",
        START,
        "--end-date",
        END,
        "--source",
        source,
        "--data-root",
        root,
    )
    assert result.exit_code == 0, result.output
    assert "silver stocks_minute" in result.output
    assert "gold stocks_minute/1min" in result.output
    return Lake(root)


def test_validate_passes_on_fresh_bronze_and_prints_the_report(lake: Lake) -> None:
    result = run("validate", "bronze", "--data-type", "stocks_minute", "--data-root", lake.root)
    assert result.exit_code == 0, result.output
    assert "3 partitions" in result.output
    assert "invalid" not in result.output
    manifest = json.loads(lake.manifest("bronze", SPEC, START).read_text())
    assert f"{manifest['rows_in']:,}" in result.output
    narrow = run(
        "validate",
        "bronze",
        "--data-type",
        "stocks_minute",
        "--data-root",
        lake.root,
        "--start-date",
        "2025-06-03",
        "--end-date",
        "2025-06-03",
    )
    assert narrow.exit_code == 0
    assert "1 partitions" in narrow.output


def test_validate_names_each_bad_partition(lake: Lake) -> None:
    first, middle = lake.bronze_partition(SPEC, START), lake.bronze_partition(SPEC, dt.date(2025, 6, 3))
    table = pq.read_table(first)
    pq.write_table(table.take(pa.array(range(table.num_rows - 1, -1, -1))), first)  # reversed order
    table = pq.read_table(middle)
    pq.write_table(table.drop_columns(["regular_session"]), middle)
    result = run("validate", "bronze", "--data-type", "stocks_minute", "--data-root", lake.root)
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.startswith("invalid:")]
    assert len(lines) == 2
    assert lines[0].startswith("invalid: bronze stocks_minute 2025-06-02:")
    assert "not sorted by (ticker, window_start)" in lines[0]
    assert "checksum differs" in lines[0]
    assert "schema differs from the spec: missing column regular_session (bool)" in lines[1]


def test_validate_catches_broken_rules_and_row_counts(lake: Lake) -> None:
    path = lake.bronze_partition(SPEC, END)
    table = pq.read_table(path)
    high = table.column("high").to_pylist()
    high[0] = -1.0
    table = table.set_column(table.schema.get_field_index("high"), table.schema.field("high"), pa.array(high))
    pq.write_table(table.slice(0, table.num_rows - 1), path)
    result = run("validate", "bronze", "--data-type", "stocks_minute", "--data-root", lake.root)
    assert result.exit_code == 1
    (line,) = [line for line in result.output.splitlines() if line.startswith("invalid:")]
    assert "1 rows break rule non_positive_price" in line
    assert "the manifest recorded" in line


def test_validate_reports_non_finite_absurd_values_and_bad_tickers_written_by_hand(tmp_path: Path) -> None:
    spec = get_spec("stocks_daily")
    session = dt.date(2025, 6, 2)
    start_ns = 1748836800000000000  # 2025-06-02 00:00 America/New_York
    nan, inf = float("nan"), float("inf")
    # ticker, open, high, low, close, volume, transactions — sorted by ticker as bronze is.
    rows = [
        ("A/B", 5.0, 6.0, 4.0, 5.0, 10.0, 3),  # bad_ticker
        ("AAA", 5.0, 6.0, 4.0, 5.0, 10.0, 3),  # sound
        ("BBB", 5.0, 6.0, 4.0, nan, 10.0, 3),  # non_finite
        ("CCC", 5.0, 1e39, 4.0, 5.0, 10.0, 3),  # out_of_range
        ("DDD", 5.0, 6.0, 4.0, 5.0, 10.0, -4),  # out_of_range
        ("EEE", 5.0, 6.0, 4.0, 5.0, inf, 3),  # non_finite
        ("alst", 5.0, 6.0, 4.0, 5.0, 10.0, 3),  # bad_ticker
    ]
    columns = list(zip(*rows, strict=True))
    table = pa.table(
        {
            "ticker": columns[0],
            "session_date": [session] * len(rows),
            "ts": [start_ns] * len(rows),
            "window_start": [start_ns] * len(rows),
            "open": columns[1],
            "high": columns[2],
            "low": columns[3],
            "close": columns[4],
            "volume": columns[5],
            "transactions": columns[6],
        }
    ).cast(spec.bronze_schema)
    lake = Lake(tmp_path / "lake")
    path = lake.bronze_partition(spec, session)
    path.parent.mkdir(parents=True)
    pq.write_table(table, path)
    write_manifest(
        lake.manifest("bronze", spec, session),
        {"rows_bronze": len(rows), "output_sha256": sha256_file(path)},
    )
    result = run("validate", "bronze", "--data-type", "stocks_daily", "--data-root", lake.root)
    assert result.exit_code == 1, result.output
    (line,) = [line for line in result.output.splitlines() if line.startswith("invalid:")]
    assert line == (
        "invalid: bronze stocks_daily 2025-06-02: 2 rows break rule bad_ticker; "
        "2 rows break rule non_finite; 2 rows break rule out_of_range"
    )


def test_validate_silver_and_gold_pass_on_the_minute_tables_and_root(lake: Lake) -> None:
    silver = run("validate", "silver", "--data-type", "stocks_minute", "--data-root", lake.root)
    assert silver.exit_code == 0, silver.output
    assert "silver stocks_minute: 3 partitions, ok" in silver.output
    assert "silver stocks_minute_rollups: 3 partitions, ok" in silver.output
    gold = run("validate", "gold", "--data-type", "stocks_minute", "--data-root", lake.root)
    assert gold.exit_code == 0, gold.output
    assert "gold stocks_minute/1min (total return): 4 instruments, 28 files, 0 errors" in gold.output
    # A minute bar's value on a bar the instrument does not have is found, named by the bar.
    root = lake.qlib_root("stocks_minute", "1min")
    calendar = (root / "calendars" / "1min.txt").read_text().splitlines()
    listed = (root / "instruments" / "all.txt").read_text().splitlines()
    # The first instrument with a bar missing inside its span.
    for symbol in sorted(line.split("\t")[0] for line in listed):
        path = root / "features" / symbol.lower() / "close.1min.bin"
        data = np.fromfile(path, dtype="<f4")
        if np.isnan(data[1:]).any():
            break
    hole = int(np.flatnonzero(np.isnan(data[1:]))[0])
    data[1 + hole] = 1.0
    data.tofile(path)
    broken = run("validate", "gold", "--data-type", "stocks_minute", "--data-root", lake.root)
    assert broken.exit_code == 1
    assert (
        f"error: gold stocks_minute/1min (total return) features/{symbol.lower()}/close.1min.bin "
        f"{calendar[int(data[0]) + hole]}: values on 1 bars without a bar"
    ) in broken.output.splitlines()
