"""The ``query`` command through click's CliRunner, on a tiny lake written here with pyarrow."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from quantmini._exceptions import ConfigurationError, QueryError
from quantmini.cli.query_cmd import expand_multi_value_args, query, split_values
from quantmini.datasets import get_spec
from quantmini.io.lake import Lake

NY = "America/New_York"
DAILY = get_spec("stocks_daily")
SESSIONS = (dt.date(2024, 3, 1), dt.date(2024, 3, 4))
SILVER_EXTRA = ("split_factor", "adj_factor", "adj_open", "adj_high", "adj_low", "adj_close", "adj_volume")
FEATURES = ("ret_1d", "ret_5d", "ret_20d", "vol_20d", "volume_z_20d")
SILVER_SCHEMA = pa.schema(list(DAILY.bronze_schema) + [pa.field(n, pa.float64()) for n in FEATURES])
#: Every ticker: a dividend after the sample halves adjusted prices and doubles adjusted volumes (the lake's
#: compact factor table).
FACTORS = pa.table(
    {
        "ticker": ["AAPL", "BRK.B", "MSFT"],
        "valid_from": [dt.date(1900, 1, 1)] * 3,
        "valid_to": [dt.date(9999, 12, 31)] * 3,
        "split_factor": [1.0] * 3,
        "adj_factor": [0.5] * 3,
    }
)


def make_lake(root: Path, symbols: tuple[str, ...]) -> pd.DataFrame:
    """Write bronze and silver for ``symbols`` on :data:`SESSIONS`; return the silver rows."""
    lake = Lake(root)
    frames = []
    for session in SESSIONS:
        midnight = pd.Timestamp(session).tz_localize(NY)
        rows = pd.DataFrame(
            {
                "ticker": list(symbols),
                "session_date": [session] * len(symbols),
                "ts": [midnight] * len(symbols),
                "window_start": [midnight.value] * len(symbols),
                "open": [10.0 + i + session.day for i in range(len(symbols))],
                "high": [12.0 + i + session.day for i in range(len(symbols))],
                "low": [9.0 + i + session.day for i in range(len(symbols))],
                "close": [11.0 + i + session.day for i in range(len(symbols))],
                "volume": [100.0 * (i + 1) for i in range(len(symbols))],
                "transactions": [i + 1 for i in range(len(symbols))],
            }
        )
        for name, path, schema in (
            ("bronze", lake.bronze_partition(DAILY, session), DAILY.bronze_schema),
            ("silver", lake.silver_partition(DAILY, session), SILVER_SCHEMA),
        ):
            if name == "silver":
                rows["split_factor"] = 1.0
                rows["adj_factor"] = 0.5
                for column in ("open", "high", "low", "close"):
                    rows[f"adj_{column}"] = rows[column] * 0.5
                rows["adj_volume"] = rows["volume"] / 0.5  # price × volume stays the traded value
                for feature in FEATURES:
                    rows[feature] = float("nan")
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(
                pa.Table.from_pandas(rows[schema.names], schema=schema, preserve_index=False), path
            )
        frames.append(rows)
    lake.adjustment_factors().parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(FACTORS, lake.adjustment_factors())
    return pd.concat(frames, ignore_index=True)


@pytest.fixture
def lake(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    root = tmp_path / "lake"
    return root, make_lake(root, ("MSFT", "AAPL", "BRK.B"))


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(query, list(args), env=env, catch_exceptions=True)


def range_args(root: Path) -> list[str]:
    return ["--start-date", "2024-03-01", "--end-date", "2024-03-04", "--data-root", str(root)]


def expected_rows(silver: pd.DataFrame, symbols: set[str], adjusted: bool = True) -> pd.DataFrame:
    rows = silver[silver.ticker.isin(symbols)].sort_values(["ticker", "window_start"])
    prefix = "adj_" if adjusted else ""
    return pd.DataFrame(
        {
            "ticker": rows.ticker.tolist(),
            "session_date": [d.isoformat() for d in rows.session_date],
            **{c: rows[prefix + c].tolist() for c in ("open", "high", "low", "close", "volume")},
            "transactions": rows.transactions.tolist(),
        }
    )


def test_symbols_as_written_in_the_docs_and_csv_output(lake: tuple[Path, pd.DataFrame]) -> None:
    root, silver = lake
    result = invoke("--symbols", "AAPL", "BRK.B", *range_args(root), "--format", "csv")
    assert result.exit_code == 0, result.output
    got = pd.read_csv(io.StringIO(result.output))
    pd.testing.assert_frame_equal(got, expected_rows(silver, {"AAPL", "BRK.B"}))


def test_raw_json_output_with_repeated_and_comma_separated_symbols(lake: tuple[Path, pd.DataFrame]) -> None:
    root, silver = lake
    result = invoke(
        "--symbols", "AAPL", "--symbols", "MSFT,BRK.B", "--raw", "--format", "json", *range_args(root)
    )
    assert result.exit_code == 0, result.output
    got = pd.DataFrame(json.loads(result.output))
    pd.testing.assert_frame_equal(got, expected_rows(silver, {"AAPL", "MSFT", "BRK.B"}, adjusted=False))


def test_adjust_split_ignores_the_dividend_and_the_table_says_the_adjustment(
    lake: tuple[Path, pd.DataFrame],
) -> None:
    root, silver = lake
    # The lake's only action is a dividend: split-only bars are the raw ones.
    result = invoke("--symbols", "MSFT", "--adjust", "split", "--format", "csv", *range_args(root))
    assert result.exit_code == 0, result.output
    got = pd.read_csv(io.StringIO(result.output))
    pd.testing.assert_frame_equal(got, expected_rows(silver, {"MSFT"}, adjusted=False))
    table = invoke(
        "--symbols", "MSFT", "--adjust", "split", "--fields", "ticker,close,ret_1d", *range_args(root)
    )
    assert table.output.splitlines()[-1] == "close: split-only (prices × split_factor, volume ÷ split_factor)"
    table = invoke("--symbols", "MSFT", "--fields", "ticker,volume", *range_args(root))
    assert table.output.splitlines()[-1] == "volume: total return (prices × adj_factor, volume ÷ adj_factor)"
    contradiction = invoke("--symbols", "MSFT", "--adjust", "split", "--raw", *range_args(root))
    assert isinstance(contradiction.exception, QueryError)
    assert "--raw (adjusted=False) contradicts --adjust split" in str(contradiction.exception)


def test_fields_option_takes_several_values(lake: tuple[Path, pd.DataFrame]) -> None:
    root, silver = lake
    result = invoke(
        *range_args(root), "--fields", "ticker", "close,adj_factor", "--symbols", "MSFT", "--format", "csv"
    )
    assert result.exit_code == 0, result.output
    got = pd.read_csv(io.StringIO(result.output))
    rows = silver[silver.ticker == "MSFT"]
    assert list(got.columns) == ["ticker", "close", "adj_factor"]
    assert got.close.tolist() == rows.adj_close.tolist()


def test_table_output(lake: tuple[Path, pd.DataFrame]) -> None:
    root, _ = lake
    result = invoke("--symbols", "BRK.B", *range_args(root))
    assert result.exit_code == 0, result.output
    assert "ticker" in result.output
    assert result.output.count("BRK.B") == 2
    assert "more rows" not in result.output


def test_table_shows_at_most_fifty_rows(tmp_path: Path) -> None:
    symbols = tuple(f"S{i:03d}" for i in range(30))
    make_lake(tmp_path, symbols)
    result = invoke("--symbols", *symbols, *range_args(tmp_path), "--fields", "ticker", "close")
    assert result.exit_code == 0, result.output
    shown = [s for s in symbols if s in result.output]
    assert len(shown) == 25  # 50 rows = 25 symbols x 2 sessions, sorted by ticker
    assert "… 10 more rows" in result.output


def test_empty_result_in_every_format(lake: tuple[Path, pd.DataFrame]) -> None:
    root, _ = lake
    assert "no rows matched" in invoke("--symbols", "ZZZ", *range_args(root)).output
    csv = invoke("--symbols", "ZZZ", *range_args(root), "--format", "csv")
    assert csv.stdout.splitlines() == ["ticker,session_date,open,high,low,close,volume,transactions"]
    assert "no rows matched" in csv.stderr  # the explanation stays out of the data
    as_json = invoke("--symbols", "ZZZ", *range_args(root), "--format", "json")
    assert json.loads(as_json.stdout) == []
    assert "no rows matched" in as_json.stderr


def test_no_rows_says_what_the_lake_holds(lake: tuple[Path, pd.DataFrame]) -> None:
    root, _ = lake  # MSFT, AAPL and BRK.B on 2024-03-01 and 2024-03-04
    args = ["--start-date", "2023-01-02", "--end-date", "2023-01-31", "--data-root", str(root)]
    result = invoke("--symbols", "AAPL", "ZZZ", *args, env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "no rows matched: AAPL, ZZZ between 2023-01-02 and 2023-01-31 "
        "(no stocks_daily session is stored in that range).",
        "the lake holds stocks_daily from 2024-03-01 to 2024-03-04; AAPL 2024-03-01 to 2024-03-04; "
        "not in the lake: ZZZ.",
    ]


def test_no_rows_for_an_unknown_symbol_inside_the_lake_s_range(lake: tuple[Path, pd.DataFrame]) -> None:
    root, _ = lake
    result = invoke("--symbols", "MSFT.X", *range_args(root), "--raw", env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "no rows matched: MSFT.X between 2024-03-01 and 2024-03-04.",
        "the lake holds stocks_daily from 2024-03-01 to 2024-03-04; not in the lake: MSFT.X.",
    ]


def test_table_fits_eighty_columns(lake: tuple[Path, pd.DataFrame]) -> None:
    root, silver = lake
    every_field = ["ticker", "session_date", "open", "high", "low", "close", "volume", "transactions"]
    every_field += ["ret_1d", "ret_5d", "split_factor", "adj_factor", "adj_close", "adj_volume"]
    result = invoke(
        "--symbols", "BRK.B", "MSFT", *range_args(root), "--fields", *every_field, env={"COLUMNS": "80"}
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    table = lines[: lines.index(next(line for line in lines if line.startswith("… ")))]
    assert all(len(line) <= 80 for line in table), result.output
    rows = [line.split() for line in table if line.startswith(("BRK.B", "MSFT"))]
    expected = silver[silver.ticker.isin({"BRK.B", "MSFT"})].sort_values(["ticker", "session_date"])
    # Adjusted prices (silver's adj_*), two decimals; volumes whole with separators.
    assert [row[:4] for row in rows] == [
        [t, d.isoformat(), f"{o:,.2f}", f"{h:,.2f}"]
        for t, d, o, h in zip(
            expected.ticker, expected.session_date, expected.adj_open, expected.adj_high, strict=True
        )
    ]
    assert "not shown at this width" in " ".join(lines)


def test_parquet_needs_output_and_is_written_atomically(
    lake: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    root, silver = lake
    missing = invoke("--symbols", "AAPL", *range_args(root), "--format", "parquet")
    assert missing.exit_code == 2
    assert "--format parquet needs --output FILE" in missing.output

    target = tmp_path / "out" / "aapl.parquet"
    result = invoke("--symbols", "AAPL", *range_args(root), "--format", "parquet", "--output", str(target))
    assert result.exit_code == 0, result.output
    table = pq.read_table(target)
    assert table.column("close").to_pylist() == silver[silver.ticker == "AAPL"].adj_close.tolist()
    assert table.schema.field("session_date").type == pa.date32()
    assert [p.name for p in target.parent.iterdir()] == ["aapl.parquet"]


def test_csv_to_a_file(lake: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    root, silver = lake
    target = tmp_path / "aapl.csv"
    result = invoke("--symbols", "AAPL", *range_args(root), "--format", "csv", "--output", str(target))
    assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(pd.read_csv(target), expected_rows(silver, {"AAPL"}))


def test_data_root_defaults_to_the_environment(lake: tuple[Path, pd.DataFrame]) -> None:
    root, _ = lake
    args = ["--symbols", "AAPL", "--start-date", "2024-03-01", "--end-date", "2024-03-04", "--format", "csv"]
    result = invoke(*args, env={"DATA_ROOT": str(root)})
    assert result.exit_code == 0, result.output
    assert len(result.output.splitlines()) == 3


def test_bad_date_is_one_readable_error_naming_the_option(lake: tuple[Path, pd.DataFrame]) -> None:
    root, _ = lake
    result = invoke(
        "--symbols",
        "AAPL",
        "--start-date",
        "2024-13-01",
        "--end-date",
        "2024-03-04",
        "--data-root",
        str(root),
    )
    assert result.exit_code != 0
    assert isinstance(result.exception, ConfigurationError)
    message = str(result.exception)
    assert message == "--start-date: '2024-13-01' is not a date in YYYY-MM-DD form"
    assert "\n" not in message


def test_unknown_field_and_missing_data_are_query_errors(
    lake: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    root, _ = lake
    bad_field = invoke("--symbols", "AAPL", *range_args(root), "--fields", "price")
    assert isinstance(bad_field.exception, QueryError)
    assert "unknown field 'price'" in str(bad_field.exception)
    empty = invoke("--symbols", "AAPL", *range_args(tmp_path / "empty"))
    assert isinstance(empty.exception, QueryError)
    assert "nothing was ingested for data type stocks_daily" in str(empty.exception)


def test_unknown_data_type_is_a_usage_error(lake: tuple[Path, pd.DataFrame]) -> None:
    root, _ = lake
    result = invoke("--data-type", "crypto", "--symbols", "AAPL", *range_args(root))
    assert result.exit_code == 2
    assert "stocks_daily" in result.output


@pytest.mark.parametrize(
    ("args", "expanded"),
    [
        (["--symbols", "A", "B", "--raw"], ["--symbols", "A", "--symbols", "B", "--raw"]),
        (["--symbols=A", "B"], ["--symbols=A", "--symbols", "B"]),
        (["--symbols", "-A", "B"], ["--symbols", "-A", "--symbols", "B"]),
        (["--start-date", "2024-01-01", "X"], ["--start-date", "2024-01-01", "X"]),
        (["--symbols", "A", "--", "B"], ["--symbols", "A", "--", "B"]),
        (["--fields", "a", "--symbols", "A", "B"], ["--fields", "a", "--symbols", "A", "--symbols", "B"]),
    ],
)
def test_expand_multi_value_args(args: list[str], expanded: list[str]) -> None:
    assert expand_multi_value_args(args, {"--symbols", "--fields"}) == expanded


def test_split_values() -> None:
    assert split_values(("AAPL, MSFT", "BRK.B", ",")) == ("AAPL", "MSFT", "BRK.B")
