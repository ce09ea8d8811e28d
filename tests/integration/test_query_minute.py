"""Minute bars through the query layer (time-of-day filter, N-minute bars, adjusted or raw), on a lake
built by the project's own sample generator and pipeline (landing → bronze → adjustment factors).

Expected answers are computed here with plain pandas and numpy, never by the code under test: regular
hours from exchange_calendars (the 13:00 close after Thanksgiving included), factors from the adjustment
definition (``tests/support/reference_factors.py``) applied to the recorded corporate actions, and
N-minute bars by a pandas group-by on the exchange-local clock.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import warnings
from pathlib import Path

import exchange_calendars as xcals
import numpy as np
import pandas as pd
import polars as pl
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from quantmini._exceptions import QueryError
from quantmini.cli.main import cli
from quantmini.core.bronze import to_bronze
from quantmini.datasets import get_spec
from quantmini.io.lake import Lake
from quantmini.io.source import LocalMirrorSource
from quantmini.pipeline.runner import PipelineRunner
from quantmini.query import QueryEngine, QuerySpec, query
from quantmini.sample import generate_sample
from tests.support.reference_factors import reference_factors

NY = "America/New_York"
START, END = dt.date(2025, 11, 24), dt.date(2025, 12, 2)
EARLY_CLOSE = dt.date(2025, 11, 28)  # the day after Thanksgiving: the regular session ends at 13:00
MINUTE = get_spec("stocks_minute")
BARS = ("ticker", "session_date", "ts", "open", "high", "low", "close", "volume", "transactions")
RESAMPLED = (*BARS, "vwap", "bar_count")
FEATURES = ("ret_1m", "ret_5m", "ret_15m", "ret_30m", "rv_30m", "vwap_dist", "volume_rel_20d")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The generated source and the lake the pipeline built from it (daily and minute stocks)."""
    base = tmp_path_factory.mktemp("minute-query")
    source = base / "source"
    generate_sample(
        source, START, END, tickers=8, seed=0, data_types=("stocks_daily", "stocks_minute"), minute_tickers=5
    )
    lake = Lake(base / "lake")
    for name in ("stocks_daily", "stocks_minute"):
        report = PipelineRunner(lake, get_spec(name)).run(LocalMirrorSource(source), START, END)
        assert report.failures == []
    return source, lake.root


def read_partitions(directory: Path) -> pd.DataFrame:
    files = sorted(directory.glob("date=*/part.parquet"))
    return pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)


def xnys_hours() -> dict[dt.date, tuple[pd.Timestamp, pd.Timestamp]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cal = xcals.get_calendar("XNYS", start="2025-01-02")
        days = cal.sessions_in_range(pd.Timestamp(START), pd.Timestamp(END))
        return {d.date(): (cal.session_open(d), cal.session_close(d)) for d in days}


def corporate_actions(source: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    actions = json.loads((source / "sample.json").read_text())["corporate_actions"]
    splits = pd.DataFrame(actions["splits"])
    splits["execution_date"] = [dt.date.fromisoformat(d) for d in splits.execution_date]
    dividends = pd.DataFrame(actions["dividends"])
    dividends["ex_dividend_date"] = [dt.date.fromisoformat(d) for d in dividends.ex_dividend_date]
    renames = pd.DataFrame(actions["ticker_changes"]).rename(columns={"date": "change_date"})
    renames["change_date"] = [dt.date.fromisoformat(d) for d in renames.change_date]
    return splits, dividends, renames


@pytest.fixture(scope="module")
def minutes(built: tuple[Path, Path]) -> pd.DataFrame:
    """Every stored minute bar with ``regular`` (from exchange_calendars) and its session's factors (from
    the daily bars: NaN for a ticker whose daily bar of that session was quarantined)."""
    source, root = built
    frame = read_partitions(root / "bronze" / "stocks_minute")
    hours = xnys_hours()
    opens = pd.to_datetime([hours[d][0] for d in frame.session_date], utc=True)
    closes = pd.to_datetime([hours[d][1] for d in frame.session_date], utc=True)
    utc = frame.ts.dt.tz_convert("UTC")
    frame["regular"] = np.asarray((utc >= opens) & (utc < closes))
    daily = read_partitions(root / "bronze" / "stocks_daily")
    factors = reference_factors(daily[["ticker", "session_date", "close"]], *corporate_actions(source))
    # A session whose daily bar was quarantined has no factor here (NaN): such bars are only compared raw.
    frame = frame.merge(factors, on=["ticker", "session_date"], how="left", validate="many_to_one")
    return frame.sort_values(["ticker", "window_start"]).reset_index(drop=True)


def adjust(frame: pd.DataFrame, factor: str = "adj_factor") -> pd.DataFrame:
    """Prices × ``factor`` (``vwap`` too, when present, is a price), volume ÷ ``factor``."""
    assert not frame[["split_factor", "adj_factor"]].isna().any().any()
    out = frame.copy()
    for column in ("open", "high", "low", "close", *(["vwap"] if "vwap" in out else [])):
        out[column] = out[column] * out[factor]
    out["volume"] = out["volume"] / out[factor]
    return out


def resample(frame: pd.DataFrame, minutes: int) -> pd.DataFrame:
    """N-minute bars: buckets of the local clock from 09:30 (regular) or 04:00 (extended), per ticker,
    session and regular flag; the bar's ts is its bucket's start."""
    bars = frame.sort_values(["ticker", "window_start"]).copy()
    local = bars.ts.dt.tz_convert(NY)
    minute = (local.dt.hour * 60 + local.dt.minute).to_numpy()
    anchor = np.where(bars.regular, 9 * 60 + 30, 4 * 60)
    bars["bucket"] = minute - np.mod(minute - anchor, minutes)
    bars["pv"] = (bars.high + bars.low + bars.close) / 3 * bars.volume
    out = (
        bars.groupby(["ticker", "session_date", "regular", "bucket"], sort=False)
        .agg(
            open=("open", "first"),
            high=("high", "max"),
            low=("low", "min"),
            close=("close", "last"),
            volume=("volume", "sum"),
            transactions=("transactions", "sum"),
            pv=("pv", "sum"),
            bar_count=("open", "size"),
            split_factor=("split_factor", "first"),
            adj_factor=("adj_factor", "first"),
        )
        .reset_index()
    )
    out["vwap"] = out.pv / out.volume.where(out.volume != 0)
    days = zip(out.session_date, out.bucket, strict=True)
    starts = [pd.Timestamp(d) + pd.Timedelta(minutes=int(b)) for d, b in days]
    out["ts"] = pd.DatetimeIndex(starts).tz_localize(NY)
    return out.sort_values(["ticker", "ts"]).reset_index(drop=True)


def in_session(frame: pd.DataFrame, session: str) -> pd.DataFrame:
    if session == "all":
        return frame
    return frame[frame.regular] if session == "regular" else frame[~frame.regular]


def assert_bars_equal(result: pl.DataFrame, expected: pd.DataFrame) -> None:
    """Same bars in the same order: keys and counts exactly, prices and sums to 1e-12."""
    assert result.height == len(expected) > 0
    for column in ("ticker", "session_date", "ts", "bar_count", "transactions"):
        if column in result.columns:
            assert result[column].to_list() == expected[column].tolist(), column
    for column in ("open", "high", "low", "close", "volume", "vwap"):
        if column in result.columns:
            np.testing.assert_allclose(result[column], expected[column], rtol=1e-12, err_msg=column)


def test_session_filter_keeps_09_30_to_the_close_early_close_included(
    built: tuple[Path, Path], minutes: pd.DataFrame
) -> None:
    _, root = built
    symbols = sorted(minutes.ticker.unique())
    answers = {}
    for session in ("all", "regular", "extended"):
        answers[session] = query(
            root, "stocks_minute", symbols, START, END, ("ticker", "ts", "close"), False, session=session
        )
        expected = in_session(minutes, session)
        assert answers[session]["ts"].to_list() == expected.ts.tolist()
        assert answers[session]["close"].to_list() == expected.close.tolist()
    assert answers["regular"].height + answers["extended"].height == answers["all"].height == len(minutes)
    # Regular bars end at the session's close: 15:59 on full days, 12:59 after Thanksgiving, when the
    # afternoon's bars are after-hours.
    regular = minutes[minutes.regular]
    last = regular.groupby("session_date").ts.max().dt.strftime("%H:%M").to_dict()
    assert last[EARLY_CLOSE] == "12:59"
    assert {t for d, t in last.items() if d != EARLY_CLOSE} == {"15:59"}
    early_extended = answers["extended"].filter(pl.col("ts").dt.date() == EARLY_CLOSE)
    afternoon = early_extended.filter(pl.col("ts").dt.hour() >= 13)
    assert afternoon.height > 0
    assert afternoon["ts"].min().strftime("%H:%M") == "13:00"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("bar", "session"),
    [("1min", "all"), ("5min", "regular"), ("15min", "extended"), ("30min", "all"), ("60min", "all")],
)
def test_resampled_raw_bars_equal_a_pandas_resample(
    built: tuple[Path, Path], minutes: pd.DataFrame, bar: str, session: str
) -> None:
    _, root = built
    symbols = sorted(minutes.ticker.unique())
    fields = (*RESAMPLED, "regular_session", "window_start")
    result = query(root, "stocks_minute", symbols, START, END, fields, False, session=session, bar=bar)
    expected = resample(in_session(minutes, session), int(bar.removesuffix("min")))
    assert_bars_equal(result, expected)
    assert result["regular_session"].to_list() == expected.regular.tolist()
    assert result["window_start"].to_list() == [t.value for t in expected.ts]
    assert result.columns == list(fields)


def test_sixty_minute_bars_are_cut_at_the_open_and_at_the_close(
    built: tuple[Path, Path], minutes: pd.DataFrame
) -> None:
    _, root = built
    result = query(
        root,
        "stocks_minute",
        ["ZOHU"],
        START,
        END,
        ("ts", "regular_session", "bar_count"),
        False,
        bar="60min",
    ).with_columns(pl.col("ts").dt.strftime("%H:%M").alias("hhmm"), pl.col("ts").dt.date().alias("day"))
    regular = result.filter(pl.col("regular_session"))
    extended = result.filter(~pl.col("regular_session"))
    assert set(regular["hhmm"]) <= {f"{h:02d}:30" for h in range(9, 16)}
    assert set(extended["hhmm"]) <= {f"{h:02d}:00" for h in range(4, 20)}
    # 09:00-09:30 and 15:30-16:00 (12:30-13:00 on the early close) are half buckets.
    assert max(extended.filter(pl.col("hhmm") == "09:00")["bar_count"]) <= 30
    assert max(regular.filter(pl.col("hhmm") == "15:30")["bar_count"]) <= 30
    early = regular.filter(pl.col("day") == EARLY_CLOSE)
    assert early["hhmm"].to_list()[-1] == "12:30"
    assert early["bar_count"].to_list()[-1] <= 30
    assert result["bar_count"].sum() == int((minutes.ticker == "ZOHU").sum())


def test_adjusted_bars_use_their_session_s_factor_and_resampling_commutes_with_adjusting(
    built: tuple[Path, Path], minutes: pd.DataFrame
) -> None:
    source, root = built
    splits, _, _ = corporate_actions(source)
    inside = splits[
        splits.ticker.isin(minutes.ticker) & (splits.execution_date > START) & (splits.execution_date <= END)
    ]
    assert len(inside) >= 2  # a forward and a reverse split inside the range (one on the early close)
    symbols = sorted(inside.ticker)
    bars = minutes[minutes.ticker.isin(symbols)]

    one_minute = query(root, "stocks_minute", symbols, START, END, (*BARS, "adj_factor"))
    expected = adjust(bars)
    assert one_minute["ts"].to_list() == expected.ts.tolist()
    for column in ("open", "high", "low", "close", "volume", "adj_factor"):
        np.testing.assert_allclose(one_minute[column], expected[column], rtol=1e-12, err_msg=column)

    result = query(root, "stocks_minute", symbols, START, END, (*RESAMPLED, "adj_factor"), bar="5min")
    adjusted_then_resampled = resample(adjust(bars), 5)
    resampled_then_adjusted = adjust(resample(bars, 5))
    assert_bars_equal(result, adjusted_then_resampled)
    assert_bars_equal(result, resampled_then_adjusted)
    raw = query(root, "stocks_minute", symbols, START, END, RESAMPLED, adjusted=False, bar="5min")
    assert_bars_equal(raw, resample(bars, 5))
    split_only = query(
        root, "stocks_minute", symbols, START, END, (*RESAMPLED, "adj_factor"), bar="5min", adjustment="split"
    )
    assert_bars_equal(split_only, adjust(resample(bars, 5), "split_factor"))
    for split in inside.itertuples():
        # The factor steps at the split by split_from / split_to, and the adjusted price does not jump.
        days = (
            result.filter(pl.col("ticker") == split.ticker)
            .group_by("session_date")
            .agg(pl.col("adj_factor").first(), pl.col("close").last(), pl.col("open").first())
        )
        before = days.filter(pl.col("session_date") < split.execution_date).sort("session_date").row(-1)
        after = days.filter(pl.col("session_date") == split.execution_date).row(0)
        assert before[1] / after[1] == pytest.approx(split.split_from / split.split_to, rel=1e-9)
        assert abs(after[3] / before[2] - 1) < 0.2


def test_the_python_api_and_the_cache_key_on_session_and_bar(built: tuple[Path, Path]) -> None:
    _, root = built
    engine = QueryEngine(root, cache_size=8)
    regular_5 = QuerySpec("stocks_minute", ("PRN",), START, END, session="regular", bar="5min")
    answers = [
        engine.query(regular_5),
        engine.query(dataclasses.replace(regular_5, session="extended")),
        engine.query(dataclasses.replace(regular_5, bar="15min")),
        engine.query(dataclasses.replace(regular_5, bar=None)),
        engine.query(QuerySpec("stocks_minute", ("PRN",), START, END, session="regular", bar="05min")),
    ]
    assert len(engine._cache) == 4  # the last spec is the first one, normalised: a cache hit
    assert answers[4].equals(answers[0])
    assert len({a.height for a in answers[:4]}) == 4
    one_shot = query(root, "stocks_minute", "PRN", START, END, session="regular", bar="5min")
    assert one_shot.equals(answers[0])
    assert one_shot.columns == list(RESAMPLED)


def test_minute_silver_is_read_with_its_features(built: tuple[Path, Path], minutes: pd.DataFrame) -> None:
    """Sessions with a silver partition (bronze columns plus float64 features) are read from it: same
    bars, same resampling; features come back as stored and cannot be resampled."""
    _, root = built
    assert (
        QueryEngine(root).files_for(QuerySpec("stocks_minute", ("ZOHU",), START, END))[0].parts[-4]
        == "silver"
    )

    adjustable = minutes.groupby("ticker").adj_factor.apply(lambda f: f.notna().all())
    symbols = sorted(adjustable[adjustable].index)
    result = query(root, "stocks_minute", symbols, START, END, RESAMPLED, session="regular", bar="5min")
    bars = minutes[minutes.ticker.isin(symbols)]
    assert_bars_equal(result, adjust(resample(in_session(bars, "regular"), 5)))

    features = query(root, "stocks_minute", ["ZOHU"], START, END, ("ts", "ret_1m", "vwap_dist"), False)
    stored = (
        pl.read_parquet(Lake(root).silver_dir("stocks_minute") / "*/*.parquet")
        .filter(pl.col("ticker") == "ZOHU")
        .sort("window_start")
    )
    assert features["ret_1m"].to_list() == stored["ret_1m"].to_list()
    assert features["vwap_dist"].drop_nulls().len() > 0
    with pytest.raises(QueryError, match=r"features \(ret_1m, rv_30m\) are computed on 1-minute bars"):
        QuerySpec("stocks_minute", ("ZOHU",), START, END, ("close", "ret_1m", "rv_30m"), bar="5min")


def test_a_bucket_without_volume_has_no_vwap_and_the_close_splits_buckets(tmp_path: Path) -> None:
    """Bars written by the bronze code itself on 2024-07-03 (13:00 close): 12:58 and 12:59 traded no
    shares, 13:00 is after-hours."""
    session = dt.date(2024, 7, 3)
    starts = [pd.Timestamp(f"2024-07-03 {t}", tz=NY) for t in ("12:58", "12:59", "13:00", "13:04")]
    rows = pl.DataFrame(
        {
            "ticker": ["ZV"] * 4,
            "session_date": [session] * 4,
            "window_start": [t.value for t in starts],
            "open": [10.0, 10.5, 11.0, 12.0],
            "high": [10.5, 11.0, 12.0, 13.0],
            "low": [9.5, 10.0, 10.0, 11.0],
            "close": [10.0, 10.5, 11.5, 12.5],
            "volume": [0.0, 0.0, 30.0, 10.0],
            "transactions": [0, 0, 3, 1],
        }
    )
    path = Lake(tmp_path).bronze_partition(MINUTE, session)
    path.parent.mkdir(parents=True)
    pq.write_table(to_bronze(rows, MINUTE, regular_close=dt.time(13, 0)), path)
    result = query(tmp_path, "stocks_minute", "ZV", session, session, adjusted=False, bar="5min")
    assert [t.strftime("%H:%M") for t in result["ts"].to_list()] == ["12:55", "13:00"]
    assert result["bar_count"].to_list() == [2, 2]
    assert result["volume"].to_list() == [0.0, 40.0]
    assert result["transactions"].to_list() == [0, 4]
    assert result["open"].to_list() == [10.0, 11.0]
    assert result["close"].to_list() == [10.5, 12.5]
    vwap = result["vwap"].to_list()
    assert vwap[0] is None
    assert vwap[1] == pytest.approx(((12 + 10 + 11.5) / 3 * 30 + (13 + 11 + 12.5) / 3 * 10) / 40)


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=True)


def minute_query(root: Path, *args: str) -> Result:
    return run("data", "query", "--data-root", root, "--data-type", "stocks_minute", *args)


def test_cli_regular_five_minute_bars_of_an_early_close_session(
    built: tuple[Path, Path], minutes: pd.DataFrame
) -> None:
    _, root = built
    day = ("--start-date", str(EARLY_CLOSE), "--end-date", str(EARLY_CLOSE))
    csv = minute_query(
        root, "--symbols", "XBBGG", *day, "--session", "regular", "--bar", "5min", "--format", "csv"
    )
    assert csv.exit_code == 0, csv.output
    got = pd.read_csv(io.StringIO(csv.stdout))
    assert list(got.columns) == list(RESAMPLED)
    bars = minutes[(minutes.ticker == "XBBGG") & (minutes.session_date == EARLY_CLOSE) & minutes.regular]
    expected = adjust(resample(bars, 5))
    got["ts"] = pd.to_datetime(got.ts, utc=True).dt.tz_convert(NY)
    assert got.ts.tolist() == expected.ts.tolist()
    assert got.ts.iloc[0].strftime("%H:%M") == "09:30"
    assert got.ts.iloc[-1].strftime("%H:%M") == "12:55"  # the last bar before the 13:00 close
    assert got.bar_count.tolist() == expected.bar_count.tolist()
    for column in ("open", "high", "low", "close", "volume", "vwap"):
        np.testing.assert_allclose(got[column], expected[column], rtol=1e-12, err_msg=column)

    table = minute_query(root, "--symbols", "XBBGG", *day, "--session", "regular", "--bar", "5min")
    assert table.exit_code == 0, table.output
    assert "2025-11-28 12:55:00-05:00" in table.output
    assert "13:00:00" not in table.output
    assert "bar_count" in table.output


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (
            ("--data-type", "stocks_daily", "--session", "regular"),
            1,
            "error: --session regular (session=) filters minute bars by time of day; stocks_daily has one",
        ),
        (("--data-type", "stocks_daily", "--bar", "5min"), 1, "error: --bar (bar=) resamples minute bars"),
        (("--bar", "7min"), 1, "error: bar '7min' is not supported"),
        (("--bar", "5"), 1, "error: bar must be a number of minutes like '5min', got '5'"),
        (("--bar", "5min", "--fields", "close", "ret_1m"), 1, "error: features (ret_1m) are computed"),
        (("--session", "premarket"), 2, "Invalid value for '--session'"),
    ],
)
def test_cli_refuses_bad_minute_options_in_one_line(
    built: tuple[Path, Path], args: tuple[str, ...], code: int, fragment: str
) -> None:
    _, root = built
    result = run(
        "data", "query", "--data-root", root, "--data-type", "stocks_minute", "--symbols", "ZOHU",
        "--start-date", str(START), "--end-date", str(END), *args,
    )  # fmt: skip
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert fragment in result.output
    assert len([line for line in result.output.splitlines() if line.lower().startswith("error:")]) == 1


def test_cli_empty_answer_names_the_time_of_day_filter(built: tuple[Path, Path]) -> None:
    _, root = built
    result = minute_query(
        root, "--symbols", "NOPE", "--start-date", str(START), "--end-date", str(END), "--session", "extended"
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == (
        f"no rows matched: NOPE between {START} and {END} in the extended hours."
    )
