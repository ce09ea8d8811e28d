"""The query layer over real lakes: what a query reads (DuckDB's own profile against Parquet metadata), the
result cache shared on disk and invalidated by exactly the inputs that changed, read-only SQL, streamed
outputs, cross-sections and panels (against plain Polars over the partitions)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from quantmini.cli.main import cli
from quantmini.datasets import get_spec
from quantmini.io.lake import Lake
from quantmini.io.source import LocalMirrorSource
from quantmini.pipeline.runner import PipelineRunner
from quantmini.query import QueryEngine, QuerySpec, cross_section, panel, sql
from quantmini.query.cache import ResultCache
from quantmini.sample import generate_sample
from tests.support.mirror_files import add_reference_record, day_files, rewrite_day_file

DAILY, MINUTE = get_spec("stocks_daily"), get_spec("stocks_minute")
START, END = dt.date(2025, 9, 2), dt.date(2025, 10, 31)
SEPTEMBER = (dt.date(2025, 9, 1), dt.date(2025, 9, 30))
OCTOBER = (dt.date(2025, 10, 1), dt.date(2025, 10, 31))


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=True)


def build(root: Path, mirror: Path, spec_name: str = "stocks_daily") -> None:
    report = PipelineRunner(Lake(root), get_spec(spec_name)).run(LocalMirrorSource(mirror), START, END)
    assert report.failures == [], report.failures


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A two-month daily lake (silver, factors, gold) and its mirror."""
    base = tmp_path_factory.mktemp("query-layer")
    generate_sample(base / "mirror", START, END, tickers=10, seed=11, data_types=("stocks_daily",))
    build(base / "lake", base / "mirror")
    return base / "mirror", base / "lake"


@pytest.fixture
def lake(built: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    """A private copy of the built lake and its mirror (the cache tests change them)."""
    mirror, root = (tmp_path / "mirror", tmp_path / "lake")
    shutil.copytree(built[0], mirror)
    shutil.copytree(built[1], root)
    return mirror, root


def month(symbols: tuple[str, ...], span: tuple[dt.date, dt.date], **kwargs: object) -> QuerySpec:
    return QuerySpec("stocks_daily", symbols, span[0], span[1], **kwargs)  # type: ignore[arg-type]


def tickers_of(root: Path) -> list[str]:
    files = root / "bronze" / "stocks_daily" / "*" / "*.parquet"
    return sorted(pl.scan_parquet(files).select("ticker").unique().collect()["ticker"])


def silver(root: Path, start: dt.date, end: dt.date) -> pl.DataFrame:
    """The main silver table's rows in ``[start, end]``, read plainly (the independent reference)."""
    files = sorted((root / "silver" / "stocks_daily").glob("date=*/part.parquet"))
    chosen = [f for f in files if start <= dt.date.fromisoformat(f.parent.name[5:]) <= end]
    return pl.read_parquet(chosen)


def engine(root: Path, **kwargs: object) -> QueryEngine:
    return QueryEngine(root, cache_size=0, cache_mb=64, **kwargs)  # type: ignore[arg-type]


# -- the result cache -------------------------------------------------------------------------------------


def test_a_repeated_query_is_served_from_the_lakes_cache_in_another_engine(lake: tuple[Path, Path]) -> None:
    _, root = lake
    spec = month((), OCTOBER, all_symbols=True)
    first = engine(root)
    answer = first.query(spec)
    assert first.stats == {"misses": 1}
    second = engine(root)  # another process would see the same files
    assert second.query(spec).equals(answer)
    assert second.stats == {"hits": 1}
    entries = list((root / "_cache" / "query").glob("*/*.parquet"))
    assert len(entries) == 1
    off = QueryEngine(root, cache_mb=0)
    assert off.query(spec).equals(answer)
    assert off.stats == {"misses": 1}


def test_a_republished_day_invalidates_the_answers_that_read_it_and_no_other(lake: tuple[Path, Path]) -> None:
    mirror, root = lake
    october, september = month((), OCTOBER, all_symbols=True), month((), SEPTEMBER, all_symbols=True)
    before = engine(root).query(october)
    engine(root).query(september)
    files = day_files(mirror, DAILY.prefix)
    republished = max(files)  # an October day
    rewrite_day_file(files[republished], lambda rows: rows[:-1])  # the vendor drops a row
    build(root, mirror)

    again = engine(root)
    after = again.query(october)
    assert again.stats == {"misses": 1}
    assert after.height == before.height - 1
    assert after.equals(QueryEngine(root, cache_mb=0).query(october))
    untouched = engine(root)
    untouched.query(september)
    assert untouched.stats == {"hits": 1}


def test_a_new_split_invalidates_adjusted_answers_but_not_raw_ones(lake: tuple[Path, Path]) -> None:
    mirror, root = lake
    symbol = tickers_of(root)[0]
    # September's partitions are before the split (its silver windows reach forward into none of them):
    # the raw answer reads the same files, the adjusted one also reads the factor table.
    adjusted, raw = month((symbol,), SEPTEMBER), month((symbol,), SEPTEMBER, adjustment="none")
    before = engine(root).query(adjusted)
    engine(root).query(raw)
    add_reference_record(
        mirror, "splits", {"execution_date": "2025-10-15", "split_from": 1, "split_to": 2, "ticker": symbol}
    )
    build(root, mirror)

    again = engine(root)
    after = again.query(adjusted)
    assert again.stats == {"misses": 1}
    assert after["close"].to_list() == pytest.approx((before["close"] / 2).to_list(), rel=1e-9)
    raw_engine = engine(root)
    raw_engine.query(raw)
    assert raw_engine.stats == {"hits": 1}


def test_the_cache_keeps_to_its_budget_evicting_the_least_recently_used(tmp_path: Path) -> None:
    frame = pl.DataFrame({"x": list(range(20_000))})
    cache = ResultCache(tmp_path / "cache", budget_bytes=1)
    cache.put("aa" + "0" * 62, frame)  # larger than the whole budget: not kept
    assert not list((tmp_path / "cache").rglob("*.parquet"))

    one = tmp_path / "one.parquet"
    frame.write_parquet(one, compression="zstd")
    size = one.stat().st_size
    cache = ResultCache(tmp_path / "cache", budget_bytes=int(size * 2.5))
    keys = [f"{c}{c}" + "0" * 62 for c in "abc"]
    for age, key in enumerate(keys[:2]):
        cache.put(key, frame)
        os.utime(cache._path(key), ns=(10**18 + age, 10**18 + age))  # a first, then b
    assert cache.get(keys[0]) is not None  # a is now the most recently used
    cache.put(keys[2], frame)
    kept = sorted(p.stem for p in (tmp_path / "cache").rglob("*.parquet"))
    assert kept == sorted([keys[0], keys[2]])
    assert cache.get(keys[1]) is None


# -- read-only SQL ----------------------------------------------------------------------------------------


def test_sql_answers_over_the_catalog_views_and_refuses_writes(
    lake: tuple[Path, Path], tmp_path: Path
) -> None:
    _, root = lake
    counts = sql(root, "SELECT ticker, count(*) AS n FROM silver_stocks_daily GROUP BY 1 ORDER BY 1")
    reference = silver(root, START, END).group_by("ticker").len("n").sort("ticker")
    assert counts["ticker"].to_list() == reference["ticker"].to_list()
    assert counts["n"].to_list() == reference["n"].to_list()
    assert sql(root, "SELECT count(*) AS n FROM ref_splits WHERE ticker = ?", ["NOPE"])["n"][0] == 0

    out = tmp_path / "rows.parquet"
    written = run("sql", "SELECT * FROM adjusted_stocks_daily", "--format", "parquet", "--output", out,
                  "--data-root", root)  # fmt: skip
    assert written.exit_code == 0, written.output
    assert pq.read_table(out).num_rows == silver(root, START, END).height
    as_csv = run("sql", "SELECT ticker, session_date FROM silver_stocks_daily ORDER BY 1, 2 LIMIT 3",
                 "--format", "csv", "--data-root", root)  # fmt: skip
    assert as_csv.output.splitlines()[0] == "ticker,session_date"
    assert len(as_csv.output.splitlines()) == 4

    target = tmp_path / "leak.csv"
    refused = run("sql", f"COPY (SELECT 1) TO '{target}'", "--data-root", root)
    assert refused.exit_code == 1
    assert "only SELECT queries run against the lake (read-only); this is a COPY statement" in refused.output
    assert not target.exists()
    two = run("sql", "SELECT 1; SELECT 2", "--data-root", root)
    assert "give exactly one SQL statement (got 2)" in two.output
    missing = run("sql", "SELECT * FROM no_such_view", "--data-root", root)
    assert missing.exit_code == 1
    assert "no_such_view" in missing.output


# -- outputs, cross-sections, panels ---------------------------------------------------------------------


def test_a_cross_section_is_every_symbols_bar_of_the_session(lake: tuple[Path, Path]) -> None:
    _, root = lake
    day = dt.date(2025, 10, 15)
    got = cross_section(
        root, "stocks_daily", day, ["ticker", "close", "ret_1d"], adjustment="none", cache=False
    )
    expected = silver(root, day, day).select("ticker", "close", "ret_1d").sort("ticker")
    assert got.equals(expected)
    as_pandas = cross_section(
        root, "stocks_daily", day, ["ticker", "close"], adjustment="none", output="pandas"
    )
    assert isinstance(as_pandas, pd.DataFrame)
    assert as_pandas["close"].tolist() == expected["close"].to_list()


def test_a_panel_is_dates_by_symbols_of_one_field(lake: tuple[Path, Path]) -> None:
    _, root = lake
    wide = panel(root, "stocks_daily", "close", *OCTOBER, adjustment="none", cache=False)
    rows = silver(root, *OCTOBER)
    expected = rows.pivot(on="ticker", index="session_date", values="close", sort_columns=True).sort(
        "session_date"
    )
    assert wide.columns == ["session_date", *sorted(rows["ticker"].unique())]
    assert wide.equals(expected.select(wide.columns))
    named = panel(root, "stocks_daily", "close", *OCTOBER, ["ZZZZ", wide.columns[1]], adjustment="none",
                  output="arrow")  # fmt: skip
    assert isinstance(named, pa.Table)
    assert named.column_names == ["session_date", wide.columns[1], "ZZZZ"]
    assert named.column("ZZZZ").null_count == named.num_rows


def test_query_files_are_streamed_and_equal_the_answer(lake: tuple[Path, Path], tmp_path: Path) -> None:
    _, root = lake
    answer = QueryEngine(root, cache_mb=0).query(month((), OCTOBER, all_symbols=True))
    for fmt in ("parquet", "csv", "json"):
        out = tmp_path / f"answer.{fmt}"
        result = run("data", "query", "--all-symbols", "--start-date", OCTOBER[0], "--end-date", OCTOBER[1],
                     "--format", fmt, "--output", out, "--data-root", root)  # fmt: skip
        assert result.exit_code == 0, result.output
        assert f"wrote {answer.height} rows to {out}" in result.output
        read = {"parquet": pl.read_parquet, "csv": pl.read_csv, "json": pl.read_json}[fmt](out)
        assert read.height == answer.height
        assert read["close"].to_list() == pytest.approx(answer["close"].to_list())


# -- what a query reads -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_one_month_query_over_years_opens_only_that_months_partitions(tmp_path: Path) -> None:
    mirror, root = tmp_path / "mirror", tmp_path / "lake"
    first, last = dt.date(2023, 1, 3), dt.date(2025, 6, 30)
    generate_sample(mirror, first, last, tickers=8, seed=2, data_types=("stocks_daily",))
    ingest = run("data", "ingest", "--start-date", first, "--end-date", last, "--source", mirror,
                 "--data-root", root)  # fmt: skip
    assert ingest.exit_code == 0, ingest.output
    stored = sorted((root / "bronze" / "stocks_daily").glob("date=*"))
    in_month = [p for p in stored if p.name.startswith("date=2024-03-")]
    symbol = tickers_of(root)[0]

    explanation = QueryEngine(root, cache_mb=0).explain(
        QuerySpec("stocks_daily", (symbol,), dt.date(2024, 3, 1), dt.date(2024, 3, 31), adjustment="none")
    )
    assert explanation.stored == len(stored) > 600
    assert [p.parent for p in explanation.partitions] == in_month
    (bars,) = explanation.scans
    assert (bars.source, bars.files) == ("bronze/stocks_daily", len(in_month))
    dates = ["--start-date", "2024-03-01", "--end-date", "2024-03-31"]
    shown = run("data", "query", "--symbols", symbol, *dates, "--raw", "--explain", "--data-root", root)
    assert shown.exit_code == 0, shown.output
    assert f"partitions: {len(in_month)} of {len(stored)} partitions of stocks_daily read" in shown.output
    assert f"pruned by path (never opened): {len(stored) - len(in_month)} partitions" in shown.output


@pytest.mark.slow
def test_a_one_symbol_query_skips_the_row_groups_of_other_symbols(tmp_path: Path) -> None:
    mirror, root = tmp_path / "mirror", tmp_path / "lake"
    day = dt.date(2025, 9, 5)
    generate_sample(mirror, day, day, tickers=260, seed=4, data_types=("stocks_minute",), minute_tickers=260)
    ingest = run("data", "ingest", "--data-type", "stocks_minute", "--start-date", day, "--end-date", day,
                 "--source", mirror, "--data-root", root)  # fmt: skip
    assert ingest.exit_code == 0, ingest.output
    (partition,) = (root / "bronze" / "stocks_minute").glob("date=*/part.parquet")
    metadata = pq.ParquetFile(partition).metadata
    column = metadata.schema.to_arrow_schema().get_field_index("ticker")
    bounds = [
        (
            metadata.row_group(i).column(column).statistics.min,
            metadata.row_group(i).column(column).statistics.max,
        )
        for i in range(metadata.num_row_groups)
    ]
    assert len(bounds) >= 2
    symbol = str(pl.read_parquet(partition, columns=["ticker"])["ticker"][0])
    holding = sum(1 for low, high in bounds if low <= symbol <= high)

    explanation = QueryEngine(root, cache_mb=0).explain(
        QuerySpec("stocks_minute", (symbol,), day, day, adjustment="none")
    )
    (bars,) = explanation.scans
    assert (bars.row_groups_total, bars.row_groups_scanned) == (len(bounds), holding)
    assert bars.row_groups_scanned < bars.row_groups_total
    assert explanation.rows == pl.read_parquet(partition).filter(pl.col("ticker") == symbol).height


def test_many_symbols_and_an_empty_cross_section(lake: tuple[Path, Path]) -> None:
    _, root = lake
    engine_ = QueryEngine(root, cache_mb=0)
    asked = (*tickers_of(root)[::2], *(f"NONE{i}" for i in range(15)))  # past the IN list's limit
    many = engine_.query(month(asked, OCTOBER))
    halves = [engine_.query(month(part, OCTOBER)) for part in (asked[:10], asked[10:])]  # each within it
    assert many.equals(pl.concat(halves).sort("ticker", "session_date"))
    assert set(many["ticker"]) >= set(tickers_of(root)[::2])
    weekend = run("data", "query", "--all-symbols", "--start-date", "2025-10-04", "--end-date", "2025-10-05",
                  "--data-root", root)  # fmt: skip
    assert weekend.exit_code == 0, weekend.output
    assert "No rows" in weekend.output or "no rows" in weekend.output
