"""The query engine and DuckDB catalog against a real DuckDB and a small lake written here with pyarrow.

Expected answers are computed with plain pandas filtering of the frames the lake was written from.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

from quantmini._exceptions import QueryError
from quantmini.datasets import get_spec
from quantmini.io.duckdb_catalog import build_catalog, connect_catalog
from quantmini.io.lake import Lake
from quantmini.query import QueryEngine, QuerySpec, query

NY = "America/New_York"
SYMBOLS = ("AAPL", "BRK.B", "MSFT")
#: 2024-01-05 is deliberately missing (not ingested); 2024-01-09 has bronze but no silver yet.
SESSIONS = (
    dt.date(2024, 1, 2),
    dt.date(2024, 1, 3),
    dt.date(2024, 1, 4),
    dt.date(2024, 1, 8),
    dt.date(2024, 1, 9),
)
SILVER_SESSIONS = SESSIONS[:-1]
FEATURES = ("ret_1d", "ret_5d", "ret_20d", "vol_20d", "volume_z_20d")
ADJUSTMENT = (
    *("split_factor", "adj_factor", "adj_open", "adj_high", "adj_low", "adj_close", "adj_volume"),
    *("split_open", "split_high", "split_low", "split_close", "split_volume"),
)
DAILY = get_spec("stocks_daily")
MINUTE = get_spec("stocks_minute")
#: What a silver partition stores: raw bars and scale-free features.
SILVER_SCHEMA = pa.schema(list(DAILY.bronze_schema) + [pa.field(n, pa.float64()) for n in FEATURES])
#: What the expectations hold: also the adjustment columns, worked out here per row.
EXPECTED_SCHEMA = pa.schema(list(SILVER_SCHEMA) + [pa.field(n, pa.float64()) for n in ADJUSTMENT])
SPLIT_DATE = dt.date(2024, 1, 8)
#: The compact factor table the lake holds: BRK.B had a 2:1 split on 2024-01-08 and every ticker a
#: dividend after the sample (×0.98); valid_to is exclusive.
FACTOR_TABLE = pd.DataFrame(
    {
        "ticker": ["AAPL", "BRK.B", "BRK.B", "MSFT"],
        "valid_from": [dt.date(1900, 1, 1), dt.date(1900, 1, 1), SPLIT_DATE, dt.date(1900, 1, 1)],
        "valid_to": [dt.date(9999, 12, 31), SPLIT_DATE, dt.date(9999, 12, 31), dt.date(9999, 12, 31)],
        "split_factor": [1.0, 0.5, 1.0, 1.0],
        "adj_factor": [0.98, 0.49, 0.98, 0.98],
    }
)


def bronze_rows(session: dt.date, bump: float = 0.0) -> pd.DataFrame:
    """One daily bar per symbol, listed out of order to make sure the engine sorts."""
    midnight = pd.Timestamp(session).tz_localize(NY)
    rows = []
    for i, ticker in reversed(list(enumerate(SYMBOLS))):
        base = 100.0 + 50 * i + session.day + bump
        rows.append(
            {
                "ticker": ticker,
                "session_date": session,
                "ts": midnight,
                "window_start": midnight.value,
                "open": base,
                "high": base + 2,
                "low": base - 1,
                "close": base + 1,
                "volume": 1000.0 * (i + 1) + session.day,
                "transactions": 10 * (i + 1) + session.day,
            }
        )
    return pd.DataFrame(rows)


def silver_rows(bronze: pd.DataFrame, position: int) -> pd.DataFrame:
    """Bronze plus made-up features, and — for expectations only — the adjustment columns worked out
    per row from the definition (BRK.B's 2:1 split on 2024-01-08: factor 1/2 before it)."""
    frame = bronze.copy()
    split = [
        0.5 if t == "BRK.B" and d < SPLIT_DATE else 1.0
        for t, d in zip(frame.ticker, frame.session_date, strict=True)
    ]
    frame["split_factor"] = split
    frame["adj_factor"] = [0.98 * s for s in split]
    for column in ("open", "high", "low", "close"):
        frame[f"adj_{column}"] = frame[column] * frame["adj_factor"]
        frame[f"split_{column}"] = frame[column] * frame["split_factor"]
    # Volumes in the share basis of the same adjustment's prices: price × volume is the traded value.
    frame["adj_volume"] = frame["volume"] / frame["adj_factor"]
    frame["split_volume"] = frame["volume"] / frame["split_factor"]
    first = position == 0
    frame["ret_1d"] = None if first else 0.01 * (position + 1)
    frame["ret_5d"] = None
    frame["ret_20d"] = None
    frame["vol_20d"] = None if first else 0.2
    frame["volume_z_20d"] = None if first else -0.5
    for column in ("ret_1d", "ret_5d", "ret_20d", "vol_20d", "volume_z_20d"):
        frame[column] = frame[column].astype("float64")
    return frame


def write(path: Path, frame: pd.DataFrame, schema: pa.Schema) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False), path)


def to_polars(frame: pd.DataFrame, schema: pa.Schema) -> pl.DataFrame:
    result = pl.from_arrow(
        pa.Table.from_pandas(frame.reset_index(drop=True), schema=schema, preserve_index=False)
    )
    assert isinstance(result, pl.DataFrame)
    return result


class SmallLake:
    """The lake under test and the pandas frames it was written from."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.lake = Lake(root)
        self.bronze: dict[dt.date, pd.DataFrame] = {}
        self.silver: dict[dt.date, pd.DataFrame] = {}
        for position, session in enumerate(SESSIONS):
            self.write_bronze(session, bronze_rows(session))
            if session in SILVER_SESSIONS:
                self.write_silver(session, silver_rows(self.bronze[session], position))
        write(
            self.lake.adjustment_factors(),
            FACTOR_TABLE,
            pa.Schema.from_pandas(FACTOR_TABLE, preserve_index=False),
        )
        # Leftovers of interrupted writes: garbage that must never be read.
        day = self.lake.bronze_partition(DAILY, SESSIONS[2]).parent
        (day / ".part.parquet.tmp-0123456789ab").write_bytes(b"not parquet")
        junk_dir = day.parent / ".date=2024-01-05.tmp-0123456789ab"
        junk_dir.mkdir()
        (junk_dir / "part.parquet").write_bytes(b"not parquet")

    def write_bronze(self, session: dt.date, frame: pd.DataFrame) -> None:
        self.bronze[session] = frame
        write(self.lake.bronze_partition(DAILY, session), frame, DAILY.bronze_schema)

    def write_silver(self, session: dt.date, frame: pd.DataFrame) -> None:
        self.silver[session] = frame
        write(self.lake.silver_partition(DAILY, session), frame[SILVER_SCHEMA.names], SILVER_SCHEMA)

    def expected(
        self,
        layer: dict[dt.date, pd.DataFrame],
        symbols: tuple[str, ...],
        start: dt.date,
        end: dt.date,
        columns: dict[str, str],
    ) -> pl.DataFrame:
        """``columns`` maps output name → source column; filtering and sorting done by pandas."""
        frame = pd.concat(layer.values(), ignore_index=True)
        frame = frame[
            frame.ticker.isin(symbols) & (frame.session_date >= start) & (frame.session_date <= end)
        ]
        frame = frame.sort_values(["ticker", "window_start"])
        out = pd.DataFrame({name: frame[source].tolist() for name, source in columns.items()})
        schema = pa.schema([pa.field(n, EXPECTED_SCHEMA.field(s).type) for n, s in columns.items()])
        return to_polars(out, schema)


DEFAULT_RAW = {
    c: c for c in ("ticker", "session_date", "open", "high", "low", "close", "volume", "transactions")
}
DEFAULT_ADJUSTED = {
    **DEFAULT_RAW,
    **{c: f"adj_{c}" for c in ("open", "high", "low", "close", "volume")},
}
DEFAULT_SPLIT_ONLY = {
    **DEFAULT_RAW,
    **{c: f"split_{c}" for c in ("open", "high", "low", "close", "volume")},
}


@pytest.fixture
def small_lake(tmp_path: Path) -> SmallLake:
    return SmallLake(tmp_path / "lake")


def spec(**overrides: object) -> QuerySpec:
    values: dict[str, object] = {
        "data_type": "stocks_daily",
        "symbols": ("AAPL", "BRK.B"),
        "start": dt.date(2024, 1, 3),
        "end": dt.date(2024, 1, 8),
    }
    values.update(overrides)
    return QuerySpec(**values)  # type: ignore[arg-type]


def test_adjusted_query_applies_the_factor_table_to_silver(small_lake: SmallLake) -> None:
    result = QueryEngine(small_lake.root).query(spec())
    expected = small_lake.expected(
        small_lake.silver, ("AAPL", "BRK.B"), dt.date(2024, 1, 3), dt.date(2024, 1, 8), DEFAULT_ADJUSTED
    )
    assert result.height == 6
    assert_frame_equal(result, expected)


def test_a_split_only_query_applies_the_split_factor_alone(small_lake: SmallLake) -> None:
    result = QueryEngine(small_lake.root).query(spec(adjustment="split"))
    expected = small_lake.expected(
        small_lake.silver, ("AAPL", "BRK.B"), dt.date(2024, 1, 3), dt.date(2024, 1, 8), DEFAULT_SPLIT_ONLY
    )
    assert result.height == 6
    assert_frame_equal(result, expected)


def test_raw_query_returns_unadjusted_bars_including_sessions_without_silver(small_lake: SmallLake) -> None:
    result = QueryEngine(small_lake.root).query(spec(adjusted=False, end=dt.date(2024, 1, 9)))
    expected = small_lake.expected(
        small_lake.bronze, ("AAPL", "BRK.B"), dt.date(2024, 1, 3), dt.date(2024, 1, 9), DEFAULT_RAW
    )
    assert result.height == 8
    assert_frame_equal(result, expected)
    assert result["session_date"].max() == dt.date(2024, 1, 9)


def test_adjusted_and_raw_prices_differ_by_the_adjustment_factor(small_lake: SmallLake) -> None:
    engine = QueryEngine(small_lake.root)
    adjusted = engine.query(spec(symbols=("BRK.B",), fields=("close", "adj_factor")))
    raw = engine.query(spec(symbols=("BRK.B",), fields=("close",), adjusted=False))
    assert adjusted["close"].to_list() == pytest.approx((raw["close"] * adjusted["adj_factor"]).to_list())


def test_field_selection_keeps_the_requested_order_and_types(small_lake: SmallLake) -> None:
    fields = ("ticker", "ts", "close", "ret_1d", "split_factor", "window_start")
    result = QueryEngine(small_lake.root).query(spec(fields=fields))
    expected = small_lake.expected(
        small_lake.silver,
        ("AAPL", "BRK.B"),
        dt.date(2024, 1, 3),
        dt.date(2024, 1, 8),
        {
            "ticker": "ticker",
            "ts": "ts",
            "close": "adj_close",
            "ret_1d": "ret_1d",
            "split_factor": "split_factor",
            "window_start": "window_start",
        },
    )
    assert result.columns == list(fields)
    assert result.schema["ts"] == pl.Datetime("ns", NY)
    assert_frame_equal(result, expected)


def test_raw_query_of_silver_only_columns_reads_silver(small_lake: SmallLake) -> None:
    result = QueryEngine(small_lake.root).query(
        spec(fields=("ticker", "close", "ret_1d"), adjusted=False, end=dt.date(2024, 1, 9))
    )
    expected = small_lake.expected(
        small_lake.silver,
        ("AAPL", "BRK.B"),
        dt.date(2024, 1, 3),
        dt.date(2024, 1, 9),
        {"ticker": "ticker", "close": "close", "ret_1d": "ret_1d"},
    )
    assert_frame_equal(result, expected)


def test_date_range_prunes_partitions_by_path(small_lake: SmallLake) -> None:
    # A corrupt partition outside the range proves it is never opened.
    corrupt = small_lake.lake.bronze_partition(DAILY, dt.date(2023, 12, 29))
    corrupt.parent.mkdir(parents=True)
    corrupt.write_bytes(b"definitely not parquet")
    engine = QueryEngine(small_lake.root)
    query_spec = spec(adjusted=False, start=dt.date(2024, 1, 4), end=dt.date(2024, 1, 8))
    assert engine.files_for(query_spec) == [
        small_lake.lake.silver_partition(DAILY, dt.date(2024, 1, 4)),
        small_lake.lake.silver_partition(DAILY, dt.date(2024, 1, 8)),
    ]
    result = engine.query(query_spec)
    assert sorted(set(result["session_date"].to_list())) == [dt.date(2024, 1, 4), dt.date(2024, 1, 8)]
    with pytest.raises(QueryError, match="query on stocks_daily failed"):
        engine.query(spec(adjusted=False, start=dt.date(2023, 12, 29), end=dt.date(2024, 1, 2)))


def test_symbol_filter_matches_exactly(small_lake: SmallLake) -> None:
    engine = QueryEngine(small_lake.root)
    result = engine.query(spec(symbols=("BRK.B",)))
    assert set(result["ticker"].to_list()) == {"BRK.B"}
    assert engine.query(spec(symbols=("brk.b",))).is_empty()


def test_no_matching_rows_gives_an_empty_frame_with_the_right_schema(small_lake: SmallLake) -> None:
    engine = QueryEngine(small_lake.root)
    full = engine.query(spec())
    no_symbol = engine.query(spec(symbols=("ZZZZ",)))
    no_session = engine.query(spec(start=dt.date(2024, 1, 5), end=dt.date(2024, 1, 7)))
    for empty in (no_symbol, no_session):
        assert empty.is_empty()
        assert empty.schema == full.schema


def test_nothing_ingested_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(QueryError, match="nothing was ingested for data type stocks_daily"):
        QueryEngine(tmp_path).query(spec())


def test_features_without_silver_say_to_enrich_and_prices_come_from_bronze(tmp_path: Path) -> None:
    write(Lake(tmp_path).bronze_partition(DAILY, SESSIONS[0]), bronze_rows(SESSIONS[0]), DAILY.bronze_schema)
    with pytest.raises(QueryError, match="data enrich"):
        QueryEngine(tmp_path).query(spec(start=SESSIONS[0], fields=("ticker", "ret_1d")))
    # No factor table yet: adjusted prices are the raw ones.
    adjusted = QueryEngine(tmp_path).query(spec(start=SESSIONS[0]))
    raw = QueryEngine(tmp_path).query(spec(adjusted=False, start=SESSIONS[0]))
    assert adjusted.height == 2
    assert adjusted.equals(raw)


def test_minute_bars_include_ts_and_are_adjusted_by_daily_factors(tmp_path: Path) -> None:
    session = dt.date(2024, 1, 2)
    bars = []
    for ticker in ("MSFT", "AAPL"):
        for minute in (2, 0, 1):
            ts = pd.Timestamp("2024-01-02 09:30", tz=NY) + pd.Timedelta(minutes=minute)
            bars.append(
                {
                    "ticker": ticker,
                    "session_date": session,
                    "ts": ts,
                    "window_start": ts.value,
                    "open": 1.0 + minute,
                    "high": 2.0,
                    "low": 0.5,
                    "close": 1.5,
                    "volume": 10.0,
                    "transactions": 3,
                    "regular_session": True,
                }
            )
    source = pd.DataFrame(bars)
    write(Lake(tmp_path).bronze_partition(MINUTE, session), source, MINUTE.bronze_schema)
    # Minute bars are adjusted by the daily factors of their session when read.
    factors = FACTOR_TABLE.assign(ticker=["AAPL", "X", "X", "MSFT"])
    write(Lake(tmp_path).adjustment_factors(), factors, pa.Schema.from_pandas(factors, preserve_index=False))
    adjusted = query(tmp_path, "stocks_minute", ["AAPL"], session, session)
    result = query(tmp_path, "stocks_minute", ["AAPL"], session, session, adjusted=False)
    assert adjusted["open"].to_list() == pytest.approx([0.98 * o for o in result["open"].to_list()])
    assert result.columns[:3] == ["ticker", "session_date", "ts"]
    expected = source[source.ticker == "AAPL"].sort_values("window_start")
    assert result["open"].to_list() == expected["open"].tolist()
    assert result["ts"].to_list() == [t.to_pydatetime() for t in expected["ts"]]


def test_cache_is_invalidated_when_a_partition_is_rewritten(
    small_lake: SmallLake, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = QueryEngine(small_lake.root, cache_size=4)
    runs = 0
    original = engine._run

    def counting_run(*args: object) -> pl.DataFrame:
        nonlocal runs
        runs += 1
        return original(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "_run", counting_run)
    query_spec = spec(adjusted=False)
    first = engine.query(query_spec)
    first.insert_column(0, pl.Series("scribble", [0] * first.height))  # callers may mutate their copy
    second = engine.query(query_spec)
    assert runs == 1
    assert "scribble" not in second.columns

    session = dt.date(2024, 1, 3)
    small_lake.write_bronze(session, bronze_rows(session, bump=1000.0))
    small_lake.write_silver(session, silver_rows(small_lake.bronze[session], 1))
    # Some filesystems keep coarse mtimes: make sure the rewrite is visible as a new version.
    partition = small_lake.lake.silver_partition(DAILY, session)
    later = partition.stat().st_mtime_ns + 1_000_000_000
    os.utime(partition, ns=(later, later))
    third = engine.query(query_spec)
    assert runs == 2
    expected = small_lake.expected(
        small_lake.bronze, ("AAPL", "BRK.B"), dt.date(2024, 1, 3), dt.date(2024, 1, 8), DEFAULT_RAW
    )
    assert_frame_equal(third, expected)
    assert third["open"].to_list()[0] > 1000


def test_cache_evicts_least_recently_used(small_lake: SmallLake) -> None:
    engine = QueryEngine(small_lake.root, cache_size=1)
    engine.query(spec())
    engine.query(spec(symbols=("MSFT",)))
    assert len(engine._cache) == 1


def test_catalog_views_are_queryable_read_only(small_lake: SmallLake) -> None:
    lake = small_lake.lake
    quarantine = pd.DataFrame(
        {
            "source_file": ["x.csv.gz"],
            "line": [7],
            "reason": ["negative volume"],
            "ticker": ["AAPL"],
            "raw": ["AAPL,-1,..."],
            "session_date": [SESSIONS[0]],
        }
    )
    quarantine_schema = pa.schema(
        [
            ("source_file", pa.string()),
            ("line", pa.int64()),
            ("reason", pa.string()),
            ("ticker", pa.string()),
            ("raw", pa.string()),
            ("session_date", pa.date32()),
        ]
    )
    write(lake.quarantine_partition(DAILY, SESSIONS[0]), quarantine, quarantine_schema)
    splits = pd.DataFrame(
        {"ticker": ["BRK.B"], "execution_date": [dt.date(2024, 1, 8)], "split_from": [1.0], "split_to": [2.0]}
    )
    write(lake.reference_table("splits"), splits, pa.Schema.from_pandas(splits, preserve_index=False))
    path = build_catalog(small_lake.root, ["stocks_daily", "stocks_minute", "options_daily"])

    assert path == lake.duckdb_file().resolve()
    assert sorted(p.name for p in path.parent.iterdir()) == ["quantmini.duckdb"]
    # The lake is moved after the catalog was built: relative paths keep every view working.
    moved = small_lake.root.parent / "moved lake"
    small_lake.root.rename(moved)
    with connect_catalog(moved) as con:
        views = {
            row[0]
            for row in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
        }
        assert views == {
            "bronze_stocks_daily",
            "silver_stocks_daily",
            "adjusted_stocks_daily",
            "quarantine_stocks_daily",
            "ref_splits",
            "adjustment_factors",
        }
        total = sum(len(f) for f in small_lake.bronze.values())
        assert con.execute("SELECT count(*) FROM bronze_stocks_daily").fetchone() == (total,)
        silver = con.execute(
            "SELECT sum(adj_close) FROM adjusted_stocks_daily WHERE ticker = 'BRK.B'"
        ).fetchone()
        expected = sum(f.loc[f.ticker == "BRK.B", "adj_close"].sum() for f in small_lake.silver.values())
        assert silver is not None
        assert silver[0] == pytest.approx(expected)
        assert con.execute("SELECT reason FROM quarantine_stocks_daily").fetchall() == [("negative volume",)]
        assert con.execute("SELECT split_to FROM ref_splits").fetchall() == [(2.0,)]
        assert con.execute("SELECT count(*) FROM adjustment_factors").fetchone() == (4,)
        sql = con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'bronze_stocks_daily'").fetchone()
        assert sql is not None
        assert "'bronze/stocks_daily/date=*/part.parquet'" in sql[0]


def test_catalog_rebuild_replaces_the_file_and_picks_up_new_layers(small_lake: SmallLake) -> None:
    first = build_catalog(small_lake.root, ["stocks_daily"])
    minute_session = dt.date(2024, 1, 2)
    bar = pd.DataFrame(
        [
            {
                "ticker": "AAPL",
                "session_date": minute_session,
                "ts": pd.Timestamp("2024-01-02 09:30", tz=NY),
                "window_start": pd.Timestamp("2024-01-02 09:30", tz=NY).value,
                "open": 1.0,
                "high": 1.0,
                "low": 1.0,
                "close": 1.0,
                "volume": 1.0,
                "transactions": 1,
                "regular_session": True,
            }
        ]
    )
    write(small_lake.lake.bronze_partition(MINUTE, minute_session), bar, MINUTE.bronze_schema)
    second = build_catalog(small_lake.root)  # every registered data type
    assert first == second
    with connect_catalog(small_lake.root) as con:
        assert con.execute("SELECT count(*) FROM bronze_stocks_minute").fetchone() == (1,)
        assert con.execute("SELECT count(*) FROM bronze_stocks_daily").fetchone() == (15,)
        # Minute bars get the daily factors of their session: BRK.B is not in this minute sample.
        assert con.execute("SELECT adj_open FROM adjusted_stocks_minute").fetchone() == (pytest.approx(0.98),)
