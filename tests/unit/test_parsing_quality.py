"""CSV parsing and row quality rules: every rule, both parse paths, and row conservation."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from quantmini import ValidationError
from quantmini.core.parsing import parse_csv
from quantmini.core.quality import Reason, apply_rules
from quantmini.datasets import get_spec

SPEC = get_spec("stocks_daily")
HEADER = "ticker,volume,open,close,high,low,window_start,transactions"
SESSION = dt.date(2025, 6, 2)
# 2025-06-02 00:00 America/New_York (EDT, UTC-4) = 04:00Z.
DAY_START = 1748836800000000000
NEXT_DAY_START = DAY_START + 86_400 * 10**9


def _csv(*rows: str) -> bytes:
    return ("\n".join([HEADER, *rows]) + "\n").encode()


def _run(data: bytes) -> tuple[int, pl.DataFrame, pl.DataFrame, int]:
    parsed = parse_csv(data, SPEC.csv_columns, "f.csv")
    result = apply_rules(parsed.rows, session=SESSION, spec=SPEC)
    quarantined = pl.concat(
        [parsed.rejects.select("line", "reason"), result.quarantined.select("line", "reason")]
    )
    return parsed.rows_in, result.kept, quarantined.sort("line"), result.duplicates


def test_clean_file_types_and_fractional_volume() -> None:
    rows_in, kept, quarantined, dups = _run(
        _csv(
            f"A,2036584.149027,115.030000,114.960000,116.360000,113.675000,{DAY_START},34455",
            f"BRK.B,1200,410.5,411,412.25,409.75,{DAY_START},77",
        )
    )
    assert (rows_in, kept.height, quarantined.height, dups) == (2, 2, 0, 0)
    assert kept["volume"].to_list() == [2036584.149027, 1200.0]
    assert kept.schema["window_start"] == pl.Int64
    assert kept.schema["transactions"] == pl.Int64
    assert kept["session_date"].to_list() == [SESSION, SESSION]
    assert kept["line"].to_list() == [2, 3]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (f"X,10,1,1,1,1,{DAY_START}", Reason.COLUMN_COUNT),
        (f"X,10,1,1,1,1,{DAY_START},3,9", Reason.COLUMN_COUNT),
        (f"X,ten,1,1,1,1,{DAY_START},3", Reason.UNPARSEABLE_NUMBER),
        (f"X,10,1,1,1,1,{DAY_START},3.5", Reason.UNPARSEABLE_NUMBER),
        (f",10,1,1,1,1,{DAY_START},3", Reason.NULL_KEY),
        (f"X,10,,1,1,1,{DAY_START},3", Reason.NULL_KEY),
        (f"ZVZZT,10,1,1,1,1,{DAY_START},3", Reason.TEST_SYMBOL),
        (f"X,10,0,1,1,0,{DAY_START},3", Reason.NON_POSITIVE_PRICE),
        (f"X,10,5,5,4,6,{DAY_START},3", Reason.OHLC_INCONSISTENT),
        (f"X,10,5,7,6,4,{DAY_START},3", Reason.OHLC_INCONSISTENT),
        (f"X,10,3,5,6,4,{DAY_START},3", Reason.OHLC_INCONSISTENT),
        (f"X,-10,5,5,6,4,{DAY_START},3", Reason.NEGATIVE_VOLUME),
        (f"X,10,5,5,6,4,{NEXT_DAY_START},3", Reason.OUTSIDE_SESSION),
    ],
)
def test_each_rule_quarantines_with_its_reason(row: str, reason: Reason) -> None:
    good = f"OK,10,5,5,6,4,{DAY_START},3"
    rows_in, kept, quarantined, dups = _run(_csv(good, row))
    assert rows_in == 2
    assert kept["ticker"].to_list() == ["OK"]
    assert quarantined.rows() == [(3, reason.value)]
    assert rows_in == kept.height + quarantined.height + dups


def test_exact_duplicates_removed_and_key_conflicts_quarantined() -> None:
    a = f"A,10,5,5,6,4,{DAY_START},3"
    rows_in, kept, quarantined, dups = _run(
        _csv(a, a, a, f"B,10,5,5,6,4,{DAY_START},3", f"B,11,5,5,6,4,{DAY_START},3")
    )
    assert dups == 2
    assert kept["ticker"].to_list() == ["A"]
    assert quarantined.rows() == [(5, "duplicate_key_conflict"), (6, "duplicate_key_conflict")]
    assert rows_in == 5 == kept.height + quarantined.height + dups


def test_careful_path_keeps_good_rows_and_line_numbers() -> None:
    rows = [f"T{i},10,5,5,6,4,{DAY_START},3" for i in range(5)]
    rows[2] = f"T2,1e,5,5,6,4,{DAY_START},3"
    rows_in, kept, quarantined, _ = _run(_csv(*rows))
    assert rows_in == 5
    assert kept["ticker"].to_list() == ["T0", "T1", "T3", "T4"]
    assert kept["line"].to_list() == [2, 3, 5, 6]
    assert quarantined.rows() == [(4, "unparseable_number")]


def test_crlf_and_no_trailing_newline() -> None:
    data = (HEADER + "\r\n" + f"A,10,5,5,6,4,{DAY_START},3\r\n" + f"B,10,5,5,6,4,{DAY_START},3").encode()
    rows_in, kept, quarantined, _ = _run(data)
    assert (rows_in, kept.height, quarantined.height) == (2, 2, 0)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"ticker,volume,open,high,low,close,window_start,transactions\n", "wrong header"),
        (b"<html>denied</html>", "wrong header"),
    ],
)
def test_file_level_errors_name_the_file(data: bytes, message: str) -> None:
    with pytest.raises(ValidationError, match=rf"f\.csv: .*{message}"):
        parse_csv(data, SPEC.csv_columns, "f.csv")
