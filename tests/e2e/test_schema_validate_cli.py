"""``quantmini schema show|check``, ``validate silver`` and ``validate gold`` on a small built lake, clean and
then with one deliberate corruption at a time (each detected with a line naming what is wrong)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from quantmini.cli.main import cli
from quantmini.datasets import get_spec
from quantmini.io.lake import Lake
from quantmini.sample import generate_sample

SPEC = get_spec("stocks_daily")
START, END = dt.date(2025, 6, 2), dt.date(2025, 7, 31)
ROOT = Path("gold/qlib/stocks_daily/day")


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=True)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("schema")
    source, root = base / "source", base / "lake"
    generate_sample(source, START, END, tickers=8, seed=3, data_types=("stocks_daily",))
    result = run(
        *("pipeline", "run", "--data-type", "stocks_daily", "--start-date", START, "--end-date", END),
        *("--source", source, "--data-root", root),
    )
    assert result.exit_code == 0, result.output
    return root


@pytest.fixture
def lake(built: Path, tmp_path: Path) -> Lake:
    shutil.copytree(built, tmp_path / "lake")
    return Lake(tmp_path / "lake")


def lines(result: Result, prefix: str) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith(prefix)]


def test_show_prints_every_column_with_its_doc() -> None:
    result = run("schema", "show", "--data-type", "stocks_daily", "--layer", "silver", "--format", "json")
    assert result.exit_code == 0, result.output
    tables = {t["table"]: t for t in json.loads(result.output)}
    main = tables["stocks_daily"]["columns"]
    assert [c["name"] for c in main] == SPEC.silver_schema.names
    assert all(c["doc"] for t in tables.values() for c in t["columns"])
    assert {k: v for k, v in main[[c["name"] for c in main].index("vol_20d")].items() if k != "doc"} == {
        "type": "double",
        "name": "vol_20d",
        "nullable": True,
    }
    bronze = run("schema", "show", "--data-type", "stocks_daily", "--layer", "bronze")
    assert "timestamp[ns, tz=America/New_York]" in bronze.output
    gold = run("schema", "show", "--data-type", "stocks_daily", "--layer", "gold")
    assert gold.exit_code == 0
    assert "$factor" in gold.output
    assert "adjusted / raw price" in gold.output
    unknown = run("schema", "show", "--data-type", "stocks_daily", "--layer", "silver", "--table", "nope")
    assert unknown.exit_code != 0
    assert "has no silver table 'nope'" in unknown.output


def test_a_clean_lake_passes_every_check(lake: Lake) -> None:
    check = run("schema", "check", "--data-root", lake.root)
    assert check.exit_code == 0, check.output
    assert "all match the spec" in check.output
    silver = run("validate", "silver", "--data-type", "stocks_daily", "--data-root", lake.root)
    assert silver.exit_code == 0, silver.output
    assert "silver stocks_daily: 42 partitions, ok" in silver.output  # sessions from June 2 to July 31
    gold = run("validate", "gold", "--data-root", lake.root)
    assert gold.exit_code == 0, gold.output
    assert lines(gold, "error:") == []
    assert "gold stocks_daily/day (total return): 8 instruments, 96 files, 0 errors" in gold.output


def _rewrite(path: Path, table: pa.Table) -> None:
    pq.write_table(table, path)


def test_schema_check_names_each_drifted_file(lake: Lake) -> None:
    dropped = lake.silver_partition("stocks_daily", dt.date(2025, 6, 10))
    _rewrite(dropped, pq.read_table(dropped).drop_columns(["ret_5d"]))
    retyped = lake.bronze_partition(SPEC, dt.date(2025, 7, 1))
    table = pq.read_table(retyped)
    i = table.schema.get_field_index("volume")
    volume = pc.cast(table["volume"], pa.float32())
    _rewrite(retyped, table.set_column(i, pa.field("volume", pa.float32()), volume))
    result = run("schema", "check", "--data-type", "stocks_daily", "--data-root", lake.root)
    assert result.exit_code == 1
    assert lines(result, "schema:") == [
        "schema: bronze/stocks_daily/date=2025-07-01/part.parquet: column volume is float, expected double",
        "schema: silver/stocks_daily/date=2025-06-10/part.parquet: missing column ret_5d (double)",
    ]
    only_silver = run("schema", "check", "--layer", "silver", "--data-root", lake.root)
    assert len(lines(only_silver, "schema:")) == 1


def test_schema_check_covers_the_reference_tables(lake: Lake) -> None:
    path = lake.reference_table("splits")
    table = pq.read_table(path)
    i = table.schema.get_field_index("split_from")
    _rewrite(path, table.set_column(i, "split_from", pc.cast(table["split_from"], pa.string())))
    result = run("schema", "check", "--layer", "reference", "--data-root", lake.root)
    assert result.exit_code == 1
    assert lines(result, "schema:") == [
        "schema: bronze/reference/splits.parquet: column split_from is string, expected double"
    ]
    shown = run("schema", "show", "--layer", "reference", "--table", "bronze/splits", "--format", "json")
    (splits,) = json.loads(shown.output)
    assert splits["path"] == "bronze/reference/splits.parquet"
    assert {c["name"]: c["type"] for c in splits["columns"]}["fetched_at"] == "timestamp[us, tz=UTC]"


def test_validate_silver_names_each_bad_partition(lake: Lake) -> None:
    dropped = lake.silver_partition("stocks_daily", dt.date(2025, 6, 10))
    _rewrite(dropped, pq.read_table(dropped).drop_columns(["ret_5d"]))
    doubled = lake.silver_partition("universes", dt.date(2025, 6, 11))
    table = pq.read_table(doubled)
    universe_rows = table.num_rows
    _rewrite(doubled, pa.concat_tables([table, table.slice(0, 1)]))
    nan = lake.silver_partition("stocks_daily", dt.date(2025, 6, 12))
    table = pq.read_table(nan)
    i = table.schema.get_field_index("vol_20d")
    values = table["vol_20d"].to_pylist()
    values[0] = float("nan")
    _rewrite(nan, table.set_column(i, table.schema.field(i), pa.array(values, pa.float64())))
    lake.silver_partition("stocks_daily", dt.date(2025, 6, 13)).unlink()
    lake.manifest("silver", "stocks_daily", dt.date(2025, 6, 16)).unlink()
    result = run("validate", "silver", "--data-type", "stocks_daily", "--data-root", lake.root)
    assert result.exit_code == 1
    bad = lines(result, "invalid:")
    assert len(bad) == 5
    by_date = {line.split(":")[1].strip(): line for line in bad}
    assert "missing column ret_5d (double)" in by_date["silver stocks_daily 2025-06-10"]
    assert "checksum differs" in by_date["silver stocks_daily 2025-06-10"]
    assert "1 NaN values in vol_20d" in by_date["silver stocks_daily 2025-06-12"]
    assert by_date["silver stocks_daily 2025-06-13"].endswith("manifest present but partition missing")
    assert "no silver manifest" in by_date["silver stocks_daily 2025-06-16"]
    universes = by_date["silver universes 2025-06-11"]
    assert "2 rows share a key (ticker, session_date, universe)" in universes
    assert f"{universe_rows + 1} rows but the manifest recorded {universe_rows}" in universes
    narrow = run(
        *("validate", "silver", "--data-type", "stocks_daily", "--data-root", lake.root),
        *("--start-date", "2025-07-01", "--end-date", "2025-07-31"),
    )
    assert narrow.exit_code == 0, narrow.output


def _calendar(lake: Lake) -> list[str]:
    return (lake.root / ROOT / "calendars" / "day.txt").read_text().split()


def _instruments(lake: Lake) -> dict[str, tuple[str, str]]:
    text = (lake.root / ROOT / "instruments" / "all.txt").read_text()
    rows = [line.split("\t") for line in text.splitlines()]
    return {symbol: (start, end) for symbol, start, end in rows}


def _bin(lake: Lake, symbol: str, field: str) -> Path:
    return lake.root / ROOT / "features" / symbol.lower() / f"{field}.day.bin"


def _read(path: Path) -> np.ndarray:
    return np.fromfile(path, dtype="<f4")


def test_validate_gold_finds_a_truncated_file_and_an_infinite_value(lake: Lake) -> None:
    calendar, instruments = _calendar(lake), _instruments(lake)
    first, second = sorted(instruments)[:2]
    truncated = _bin(lake, first, "volume")
    truncated.write_bytes(truncated.read_bytes()[:-4])
    infinite = _bin(lake, second, "high")
    data = _read(infinite)
    start = int(data[0])
    data[1 + 5] = np.inf
    data.tofile(infinite)
    span = (calendar.index(instruments[first][0]), calendar.index(instruments[first][1]))
    result = run("validate", "gold", "--data-root", lake.root)
    assert result.exit_code == 1
    errors = lines(result, "error:")
    name = "gold stocks_daily/day (total return)"
    assert (
        f"error: {name} features/{first.lower()}/volume.day.bin: covers bars {span[0]}..{span[1] - 1} "
        f"but {first} spans {span[0]}..{span[1]}"
    ) in errors
    infinite_line = (
        f"error: {name} features/{second.lower()}/high.day.bin {calendar[start + 5]}: 1 infinite values"
    )
    assert infinite_line in errors


def test_validate_gold_finds_a_shifted_calendar(lake: Lake) -> None:
    calendar = _calendar(lake)
    # One day later each: the same number of bars, every one a day off.
    shifted = [(dt.date.fromisoformat(d) + dt.timedelta(days=1)).isoformat() for d in calendar]
    (lake.root / ROOT / "calendars" / "day.txt").write_text("".join(f"{d}\n" for d in shifted))
    result = run("validate", "gold", "--data-root", lake.root)
    assert result.exit_code == 1
    assert (
        f"error: gold stocks_daily/day (total return) calendars/day.txt: line 1 is {shifted[0]}, "
        f"the gold state's sessions give {calendar[0]}"
    ) in lines(result, "error:")


def test_validate_gold_finds_a_factor_change_without_a_corporate_action(lake: Lake) -> None:
    calendar, instruments = _calendar(lake), _instruments(lake)
    symbol = sorted(instruments)[0]
    path = _bin(lake, symbol, "factor")
    data = _read(path)
    values = data[1:]
    # The first bar k whose factor equals the previous bar's: scale the factor from there on.
    k = next(i for i in range(1, len(values)) if values[i] == values[i - 1] and not np.isnan(values[i]))
    values[k:] *= 1.5
    data.tofile(path)
    session = calendar[int(data[0]) + k]
    result = run("validate", "gold", "--data-root", lake.root)
    assert result.exit_code == 1
    errors = lines(result, "error:")
    where = f"error: gold stocks_daily/day (total return) features/{symbol.lower()}"
    assert any(
        e.startswith(f"{where}/factor.day.bin {session}: $factor changes from")
        and e.endswith("without a corporate action in the factor table")
        for e in errors
    ), errors
    # The prices over the changed factor no longer give the raw closes back.
    assert any(e.startswith(f"{where}/close.day.bin {session}: $close / $factor") for e in errors), errors


def test_validate_gold_finds_a_wrong_instrument_span_and_a_stray_directory(lake: Lake) -> None:
    calendar = _calendar(lake)
    path = lake.root / ROOT / "instruments" / "all.txt"
    rows = [line.split("\t") for line in path.read_text().splitlines()]
    symbol, start, end = rows[0]
    rows[0] = [symbol, calendar[calendar.index(start) + 1], end]
    path.write_text("".join("\t".join(row) + "\n" for row in rows))
    (lake.root / ROOT / "features" / "zzzz").mkdir()
    result = run("validate", "gold", "--data-root", lake.root)
    assert result.exit_code == 1
    name = "error: gold stocks_daily/day (total return)"
    assert lines(result, "error:") == [
        f"{name} instruments/all.txt:1: {symbol} spans {rows[0][1]}..{end}, "
        f"the gold state records {start}..{end}",
        f"{name} features/zzzz: features directory of no instrument of the gold state",
    ]
