"""Write Qlib roots with quantmini and read them back with real pyqlib.

Each qlib read runs in a fresh interpreter: qlib keeps its provider in process-global state, so two
roots in one process would read each other's data. The child writes what qlib returned to files the
test compares against expectations built here with pandas/numpy alone.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest

from quantmini import ValidationError
from quantmini.io.qlib_writer import validate_qlib_root, write_qlib_root
from tests.support.qlib_child import read_with_qlib as read_expressions

EXPRESSIONS = ["$close", "$volume", "Ref($close,1)", "Mean($close,5)"]
COLUMNS = {"$close": "close", "$volume": "volume", "Ref($close,1)": "ref1", "Mean($close,5)": "mean5"}


def read_with_qlib(root: Path, freq: str, workdir: Path) -> tuple[dict[str, Any], pd.DataFrame]:
    """Real qlib's calendar, spans and the four expressions, columns named close/volume/ref1/mean5."""
    meta, features = read_expressions(root, freq, EXPRESSIONS, workdir / "qlib")
    return meta, features.rename(columns=COLUMNS)


def long_table(
    calendar: pd.DatetimeIndex, rows: dict[str, np.ndarray], rng: np.random.Generator
) -> pd.DataFrame:
    """Symbol → calendar positions it has rows at; random close/volume, shuffled row order."""
    parts = []
    for symbol, positions in rows.items():
        parts.append(
            pd.DataFrame(
                {
                    "symbol": symbol,
                    "datetime": calendar[positions],
                    "close": rng.uniform(10, 500, len(positions)),
                    # above 2**24 so the float32 cast visibly rounds
                    "volume": rng.integers(1, 60_000_000, len(positions)).astype(np.float64),
                }
            )
        )
    table = pd.concat(parts, ignore_index=True)
    return table.sample(frac=1.0, random_state=7).reset_index(drop=True)


def expected_features(source: pd.DataFrame, calendar: pd.DatetimeIndex) -> pd.DataFrame:
    """What qlib should return: each symbol over its own span, float32, NaN for missing bars."""
    frames = []
    for symbol, rows in source.groupby("symbol"):
        rows = rows.set_index("datetime").sort_index()
        span = calendar[(calendar >= rows.index[0]) & (calendar <= rows.index[-1])]
        close = rows["close"].reindex(span).astype(np.float32)
        volume = rows["volume"].reindex(span).astype(np.float32)
        frames.append(
            pd.DataFrame(
                {
                    "instrument": symbol,
                    "datetime": span,
                    "close": close.to_numpy(),
                    "volume": volume.to_numpy(),
                    "ref1": close.shift(1).to_numpy(),
                    "mean5": close.astype(np.float64).rolling(5, min_periods=1).mean().to_numpy(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def assert_same_features(got: pd.DataFrame, want: pd.DataFrame) -> None:
    keys = ["instrument", "datetime"]
    got = got.sort_values(keys).reset_index(drop=True)
    want = want.sort_values(keys).reset_index(drop=True)
    assert len(got) == len(want)
    assert got["instrument"].tolist() == want["instrument"].tolist()
    assert (got["datetime"].to_numpy() == want["datetime"].to_numpy()).all()
    for column in ("close", "volume", "ref1", "mean5"):
        g = got[column].to_numpy(dtype=np.float64)
        w = want[column].to_numpy(dtype=np.float64)
        assert np.isnan(g).sum() == np.isnan(w).sum(), column
        assert (np.isnan(g) == np.isnan(w)).all(), column
        assert (~np.isnan(g)).sum() > 0, column
    for column in ("close", "volume", "ref1"):  # stored values: exact float32
        g = got[column].to_numpy(dtype=np.float32)
        w = want[column].to_numpy(dtype=np.float32)
        ok = ~np.isnan(w)
        assert (g[ok] == w[ok]).all(), column
    np.testing.assert_allclose(got["mean5"], want["mean5"], rtol=1e-6, equal_nan=True)


def to_polars(table: pd.DataFrame, freq: str) -> pl.DataFrame:
    frame = pl.from_pandas(table)
    if freq == "day":
        return frame.with_columns(pl.col("datetime").dt.date())
    return frame.with_columns(pl.col("datetime").dt.cast_time_unit("us"))


@pytest.mark.slow
def test_daily_root_reads_back_through_qlib(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    # The caller's calendar, not the data's: 2024-01-15 (MLK day) is absent, a holiday is not a session.
    calendar = pd.bdate_range("2024-01-02", "2024-02-29").drop(pd.Timestamp("2024-01-15"))
    n = len(calendar)
    everything = np.arange(n)
    rows = {
        "AAPL": everything,
        "BRK.B": everything,
        "PRN": everything,  # a Windows device name
        "IPO": everything[12:],  # listed late
        "DLST": everything[:25],  # delisted early
        "GAP": np.setdiff1d(everything, [5, 6, 7, 20, n - 2]),  # halted inside its span
        "None": everything[3:9],  # read as NaN by pandas: must be renamed
    }
    table = long_table(calendar, rows, rng)
    table.loc[(table["symbol"] == "AAPL") & (table["datetime"] == calendar[3]), "close"] = np.nan

    root = tmp_path / "qlib"
    summary = write_qlib_root(
        root,
        to_polars(table, "day"),
        freq="day",
        fields=["close", "volume"],
        calendar=[ts.date() for ts in calendar],
    )
    assert dict(summary.renamed) == {"None": "_NA_NONE"}
    assert summary.symbols == len(rows)
    assert summary.calendar_length == n
    assert (root / "features" / "_qlib_prn" / "close.day.bin").is_file()
    assert (root / "features" / "brk.b" / "volume.day.bin").is_file()
    report = validate_qlib_root(root, "day")
    assert (report.instruments, report.files) == (len(rows), 2 * len(rows))

    meta, got = read_with_qlib(root, "day", tmp_path)

    assert meta["calendar"] == [ts.isoformat() for ts in calendar]
    source = table.replace({"symbol": {"None": "_NA_NONE"}})
    want_spans = {
        symbol: [[calendar[pos[0]].isoformat(), calendar[pos[-1]].isoformat()]]
        for symbol, pos in ((("_NA_NONE" if s == "None" else s), p) for s, p in rows.items())
    }
    assert meta["spans"] == want_spans
    want = expected_features(source, calendar)
    assert len(want) == sum(int(p[-1] - p[0] + 1) for p in rows.values())
    assert_same_features(got, want)
    # The gap is NaN in qlib, not values shifted onto the wrong dates.
    gap = got[got["instrument"] == "GAP"].set_index("datetime")["close"]
    assert gap.loc[calendar[[5, 6, 7, 20]]].isna().all()
    assert gap.notna().sum() == len(rows["GAP"])


@pytest.mark.slow
def test_minute_root_reads_back_through_qlib(tmp_path: Path) -> None:
    rng = np.random.default_rng(12)
    # Three sessions across the 2024 DST switch, regular hours, naive New York bar starts.
    days = ["2024-03-08", "2024-03-11", "2024-03-12"]
    calendar = pd.DatetimeIndex(
        np.concatenate([pd.date_range(f"{d} 09:30", f"{d} 15:59", freq="min") for d in days])
    )
    n = len(calendar)
    assert n == 3 * 390
    everything = np.arange(n)
    rows = {
        "AAPL": everything,
        "BRK.B": np.sort(rng.choice(n, size=int(n * 0.7), replace=False)),  # sparse: many missing bars
        "IPO": everything[390 + 30 :],  # first trade on day two at 10:00
        "DLST": everything[: 390 + 150],  # last trade on day two at 12:00
    }
    table = long_table(calendar, rows, rng)
    root = tmp_path / "qlib"
    summary = write_qlib_root(
        root,
        to_polars(table, "1min"),
        freq="1min",
        fields=["close", "volume"],
        calendar=[ts.to_pydatetime() for ts in calendar],
    )
    assert summary.symbols == len(rows)
    assert summary.renamed == {}
    validate_qlib_root(root, "1min")
    assert (root / "calendars" / "1min.txt").read_text().splitlines()[:2] == [
        "2024-03-08 09:30:00",
        "2024-03-08 09:31:00",
    ]

    meta, got = read_with_qlib(root, "1min", tmp_path)

    assert meta["calendar"] == [ts.isoformat() for ts in calendar]
    assert meta["spans"] == {
        s: [[calendar[p[0]].isoformat(), calendar[p[-1]].isoformat()]] for s, p in rows.items()
    }
    want = expected_features(table, calendar)
    assert len(want) == sum(int(p[-1] - p[0] + 1) for p in rows.values())
    assert_same_features(got, want)


def test_interrupted_write_keeps_the_previous_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calendar = [dt.date(2024, 1, 2), dt.date(2024, 1, 3)]
    good = pl.DataFrame(
        {"symbol": ["A", "A"], "datetime": calendar, "close": [1.0, 2.0]},
    )
    root = tmp_path / "qlib"
    write_qlib_root(root, good, freq="day", fields=["close"], calendar=calendar)
    before = (root / "features" / "a" / "close.day.bin").read_bytes()
    assert before == np.array([0, 1, 2], dtype="<f4").tobytes()

    class BoomError(Exception):
        pass

    bad_column = pl.Series("close", [3.0, 4.0])

    def explode(*_: object) -> None:
        raise BoomError

    monkeypatch.setattr("quantmini.io.qlib_writer.bin_array", explode)
    with pytest.raises(BoomError):
        write_qlib_root(root, good.with_columns(bad_column), freq="day", fields=["close"], calendar=calendar)
    assert (root / "features" / "a" / "close.day.bin").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["qlib"]


DAYS = [dt.date(2024, 1, 2), dt.date(2024, 1, 3), dt.date(2024, 1, 4)]


def _day_frame(symbols: list[str], days: list[dt.date], close: list[float] | None = None) -> pl.DataFrame:
    return pl.DataFrame(
        {"symbol": symbols, "datetime": days, "close": close or [1.0] * len(symbols)},
        schema={"symbol": pl.String, "datetime": pl.Date, "close": pl.Float64},
    )


def test_bins_match_hand_written_bytes(tmp_path: Path) -> None:
    frame = _day_frame(["B", "A", "B"], [DAYS[2], DAYS[1], DAYS[0]], [3.5, 2.0, 1.25])
    summary = write_qlib_root(tmp_path / "q", frame, freq="day", fields=["close"], calendar=DAYS)
    assert (summary.symbols, summary.files, summary.calendar_length) == (2, 4, 3)
    root = tmp_path / "q"
    assert (root / "features" / "a" / "close.day.bin").read_bytes() == np.array([1, 2.0], "<f4").tobytes()
    b = np.array([0, 1.25, np.nan, 3.5], "<f4").tobytes()
    assert (root / "features" / "b" / "close.day.bin").read_bytes() == b
    assert (root / "instruments" / "all.txt").read_text() == (
        "A\t2024-01-03\t2024-01-03\nB\t2024-01-02\t2024-01-04\n"
    )
    assert (root / "calendars" / "day.txt").read_text() == "2024-01-02\n2024-01-03\n2024-01-04\n"


def test_row_off_the_calendar_is_refused_by_name(tmp_path: Path) -> None:
    saturday = dt.date(2024, 1, 6)
    frame = _day_frame(["A", "ZZ"], [DAYS[0], saturday])
    with pytest.raises(ValidationError, match=r"symbol 'ZZ', datetime 2024-01-06\) is not on the day"):
        write_qlib_root(tmp_path / "q", frame, freq="day", fields=["close"], calendar=DAYS)
    assert not (tmp_path / "q").exists()


def test_duplicate_rows_are_refused(tmp_path: Path) -> None:
    frame = _day_frame(["A", "B", "B"], [DAYS[0], DAYS[1], DAYS[1]])
    with pytest.raises(ValidationError, match="duplicate rows for symbol 'B' at 2024-01-03"):
        write_qlib_root(tmp_path / "q", frame, freq="day", fields=["close"], calendar=DAYS)


def test_symbols_qlib_cannot_store_are_skipped_and_the_rest_is_written(tmp_path: Path) -> None:
    root = tmp_path / "q"
    frame = _day_frame(["ABC", "abc", "A/B", "OK", "NA", "na"], [*DAYS[:3], *DAYS[:3]])
    summary = write_qlib_root(root, frame, freq="day", fields=["close"], calendar=DAYS)
    assert set(summary.skipped) == {"A/B", "na"}
    assert "cannot be stored" in summary.skipped["A/B"]
    assert "with 'NA'" in summary.skipped["na"]
    assert dict(summary.renamed) == {"abc": "_A_B_C", "NA": "_NA_NA"}
    spans = (root / "instruments" / "all.txt").read_text().splitlines()
    assert [line.split("\t")[0] for line in spans] == ["ABC", "OK", "_A_B_C", "_NA_NA"]
    assert sorted(p.name for p in (root / "features").iterdir()) == ["_a_b_c", "_na_na", "abc", "ok"]
    assert validate_qlib_root(root, "day").instruments == 4


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (_day_frame(["A"], DAYS[:1], [1e39]), "symbol 'A' at 2024-01-02 is 1e\\+39, beyond float32"),
        (_day_frame(["A"], DAYS[:1]).drop("close"), "lacks column"),
        (_day_frame(["A"], DAYS[:1]).with_columns(pl.col("datetime").cast(pl.Datetime)), "must be pl.Date"),
        (_day_frame(["A"], DAYS[:1]).with_columns(pl.lit("x").alias("close")), "must be numeric"),
    ],
)
def test_bad_frames_are_refused(tmp_path: Path, frame: pl.DataFrame, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        write_qlib_root(tmp_path / "q", frame, freq="day", fields=["close"], calendar=DAYS)


def test_minute_frame_needs_naive_times(tmp_path: Path) -> None:
    bar = dt.datetime(2024, 1, 2, 9, 30)
    frame = pl.DataFrame({"symbol": ["A"], "datetime": [bar], "close": [1.0]}).with_columns(
        pl.col("datetime").dt.replace_time_zone("America/New_York")
    )
    with pytest.raises(ValidationError, match=r"naive pl\.Datetime"):
        write_qlib_root(tmp_path / "q", frame, freq="1min", fields=["close"], calendar=[bar])


def test_validator_names_the_broken_file(tmp_path: Path) -> None:
    root = tmp_path / "q"
    frame = _day_frame(["A", "A", "B"], [DAYS[0], DAYS[2], DAYS[1]])
    write_qlib_root(root, frame, freq="day", fields=["close"], calendar=DAYS)
    assert validate_qlib_root(root, "day").files == 2

    a_bin = root / "features" / "a" / "close.day.bin"
    a_bin.write_bytes(np.array([0, 1, 2], "<f4").tobytes())  # one bar short of the span's end
    with pytest.raises(ValidationError, match=r"a/close.day.bin: covers calendar bars 0..1 but .* 0..2"):
        validate_qlib_root(root, "day")
    a_bin.write_bytes(np.array([1, 1, 2], "<f4").tobytes())  # wrong start
    with pytest.raises(ValidationError, match=r"covers calendar bars 1\.\.2"):
        validate_qlib_root(root, "day")
    a_bin.unlink()
    with pytest.raises(ValidationError, match=r"a/close.day.bin: missing"):
        validate_qlib_root(root, "day")
    (root / "calendars" / "day.txt").write_text("2024-01-03\n2024-01-02\n")
    with pytest.raises(ValidationError, match=r"day.txt:2: '2024-01-02' does not come after"):
        validate_qlib_root(root, "day")
    with pytest.raises(ValidationError, match=r"1min\.txt: missing"):
        validate_qlib_root(root, "1min")


def test_small_write_buckets_give_the_same_bins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    calendar = pd.bdate_range("2024-01-02", periods=40)
    rows = {f"S{i}": np.sort(rng.choice(40, size=int(rng.integers(1, 40)), replace=False)) for i in range(12)}
    table = long_table(calendar, rows, rng)
    monkeypatch.setattr("quantmini.io.qlib_writer._BUCKET_ROWS", 7)  # many buckets, some one symbol
    root = tmp_path / "q"
    write_qlib_root(
        root, to_polars(table, "day"), freq="day", fields=["close", "volume"], calendar=list(calendar.date)
    )
    for symbol, positions in rows.items():
        mine = table[table["symbol"] == symbol].set_index("datetime").sort_index()
        for field in ("close", "volume"):
            dense = np.full(positions[-1] - positions[0] + 1, np.nan)
            dense[positions - positions[0]] = mine[field].to_numpy()
            want = np.concatenate([[positions[0]], dense]).astype("<f4").tobytes()
            assert (root / "features" / symbol.lower() / f"{field}.day.bin").read_bytes() == want
