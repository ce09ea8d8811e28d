"""Plausible values and ticker shapes: non-finite and absurd numbers, bad symbols, per market."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from quantmini import ConfigurationError
from quantmini.core.calendar import session_bounds
from quantmini.core.parsing import parse_csv
from quantmini.core.quality import apply_rules, check_rows, row_checks
from quantmini.datasets import DatasetSpec, get_spec

STOCKS = get_spec("stocks_daily")
OPTIONS = get_spec("options_daily")
HEADER = "ticker,volume,open,close,high,low,window_start,transactions"
SESSION = dt.date(2025, 6, 2)
DAY_START = 1748836800000000000  # 2025-06-02 00:00 America/New_York
GOOD = f"OK,10,5,5,6,4,{DAY_START},3"
#: A line the fast reader cannot type ("ten" in volume): its file takes the careful path.
FORCES_CAREFUL = f"ZZ,ten,5,5,6,4,{DAY_START},3"


def _row(
    ticker: str = "X",
    volume: str = "10",
    open_: str = "5",
    close: str = "5",
    high: str = "6",
    low: str = "4",
    transactions: str = "3",
) -> str:
    return f"{ticker},{volume},{open_},{close},{high},{low},{DAY_START},{transactions}"


def _outcome(*rows: str, spec: DatasetSpec = STOCKS) -> dict[int, tuple[str, str]]:
    """Line → (reason, detail) of every quarantined row of a file holding ``rows``; checks conservation."""
    data = ("\n".join([HEADER, *rows]) + "\n").encode()
    parsed = parse_csv(data, spec.csv_columns, "f.csv")
    result = apply_rules(parsed.rows, session=SESSION, spec=spec)
    bad = pl.concat(
        [
            parsed.rejects.select("line", "reason", "detail"),
            result.quarantined.select("line", "reason", "detail"),
        ]
    )
    assert parsed.rows_in == len(rows) == result.kept.height + bad.height + result.duplicates
    return {line: (reason, detail) for line, reason, detail in bad.rows()}


@pytest.mark.parametrize(
    ("row", "reason", "detail"),
    [
        (_row(close="nan", high="nan"), "non_finite", "high=NaN"),
        (_row(close="NaN"), "non_finite", "close=NaN"),
        (_row(open_="inf", high="inf"), "non_finite", "open=inf"),
        (_row(low="-inf"), "non_finite", "low=-inf"),
        (_row(high="Infinity"), "non_finite", "high=inf"),
        (_row(close="-Infinity"), "non_finite", "close=-inf"),
        (_row(high="1e309"), "non_finite", "high=inf"),  # beyond float64: reads as inf
        (_row(volume="nan"), "non_finite", "volume=NaN"),
        (_row(volume="inf"), "non_finite", "volume=inf"),
        (_row(open_="1e39", high="1e39"), "out_of_range", "open=1e+39 outside [1e-06, 1e+07]"),
        (_row(high="1e308"), "out_of_range", "high=1e+308 outside [1e-06, 1e+07]"),
        (_row(high="10000000.5"), "out_of_range", "high=10000000.5 outside [1e-06, 1e+07]"),
        (_row(low="1e-320"), "out_of_range", "low=1e-320 outside [1e-06, 1e+07]"),
        (_row(volume="1e39"), "out_of_range", "volume=1e+39 outside [0, 1e+13]"),
        (_row(volume="2e13"), "out_of_range", "volume=20000000000000.0 outside [0, 1e+13]"),
        (_row(transactions="-1"), "out_of_range", "transactions=-1 outside [0, 1e+09]"),
        (_row(transactions="5000000000"), "out_of_range", "transactions=5000000000 outside [0, 1e+09]"),
        (_row(transactions="nan"), "unparseable_number", "transactions=nan"),
        (_row(transactions="inf"), "unparseable_number", "transactions=inf"),
        (_row(transactions="1e39"), "unparseable_number", "transactions=1e39"),
        (_row(open_=" 5"), "unparseable_number", "open= 5"),
    ],
)
def test_absurd_numbers_are_quarantined_the_same_on_both_parse_paths(
    row: str, reason: str, detail: str
) -> None:
    fast = _outcome(GOOD, row)
    careful = _outcome(GOOD, row, FORCES_CAREFUL)
    assert fast == {3: (reason, detail)}
    assert careful == {3: (reason, detail), 4: ("unparseable_number", "volume=ten")}


def test_bounds_keep_real_extremes() -> None:
    brk_a = _row("BRK.A", volume="312.5", open_="702000.5", close="703100", high="705000", low="700000")
    penny = _row("PENY", volume="9800000000", open_="0.000001", close="0.0002", high="0.0003", low="0.000001")
    edge = _row(
        "EDGE", volume="1e13", open_="1e7", close="1e7", high="1e7", low="1e7", transactions="1000000000"
    )
    idle = _row("IDLE", volume="0", transactions="0")
    assert _outcome(brk_a, penny, edge, idle) == {}


@pytest.mark.parametrize(
    ("ticker", "why"),
    [
        ("A/B", "contains a path separator"),
        ("A\\B", "contains a path separator"),
        ("A B", "contains whitespace"),
        (" A", "contains whitespace"),
        ("A\tB", "contains whitespace"),
        ("..", "contains '..'"),
        (".", "starts or ends with '.' or '-'"),
        ("A.", "starts or ends with '.' or '-'"),
        ("-A", "starts or ends with '.' or '-'"),
        ("A..B", "contains '..'"),
        ('"QUOT"', "contains a quote"),
        ("O'NEIL", "contains a quote"),
        ("alst", "starts with a lower-case letter (roots are upper case)"),
        ("pA", "starts with a lower-case letter (roots are upper case)"),
        ("A_B", "contains '_' (reserved)"),
        ("A\x01", "contains a control character"),
        ("A\x7f", "contains a control character"),
        ("ABCDEFGHIJKLMNOPQ", "is longer than 16 characters"),
        ("AÉ", r"does not match ^[A-Z0-9](?:[A-Za-z0-9]|[.\-][A-Za-z0-9])*$"),
        ("A.-B", r"does not match ^[A-Z0-9](?:[A-Za-z0-9]|[.\-][A-Za-z0-9])*$"),
    ],
)
def test_bad_stock_tickers_are_quarantined_with_why(ticker: str, why: str) -> None:
    assert _outcome(GOOD, _row(ticker)) == {3: ("bad_ticker", f"ticker '{ticker}' {why}")}


def test_real_ticker_shapes_stay_valid() -> None:
    tickers = ["A", "BRK.B", "BApA", "NMCOr", "NE.WS.A", "BF-B", "ABCDEFGHIJKLMNOP", "1234", "ALST"]
    data = ("\n".join([HEADER, *(_row(t) for t in tickers)]) + "\n").encode()
    parsed = parse_csv(data, STOCKS.csv_columns, "f.csv")
    result = apply_rules(parsed.rows, session=SESSION, spec=STOCKS)
    assert result.quarantined.height == 0
    assert sorted(result.kept["ticker"].to_list()) == sorted(tickers)


def test_lower_case_twin_is_quarantined_beside_the_real_ticker() -> None:
    assert _outcome(_row("ALST"), _row("alst")) == {
        3: ("bad_ticker", "ticker 'alst' starts with a lower-case letter (roots are upper case)")
    }


def test_empty_ticker_is_a_null_key_in_a_file_and_a_bad_ticker_in_a_frame() -> None:
    # A file's empty field reads as missing; a stored partition can only hold an empty string.
    assert _outcome(GOOD, _row("")) == {3: ("null_key", "empty value in a required column")}
    frame = pl.DataFrame(
        {
            "ticker": ["", "OK"],
            "volume": [10.0, 10.0],
            "open": [5.0, 5.0],
            "close": [5.0, 5.0],
            "high": [6.0, 6.0],
            "low": [4.0, 4.0],
            "window_start": [DAY_START, DAY_START],
            "transactions": [3, 3],
            "line": [2, 3],
        }
    )
    split = check_rows(frame, bounds=session_bounds(SESSION), spec=STOCKS)
    assert split.bad.rows() == [(2, "bad_ticker", "ticker '' is empty", "")]
    assert split.good["ticker"].to_list() == ["OK"]


@pytest.mark.parametrize(
    ("ticker", "detail"),
    [
        ("O:..241220C00500000", "underlying '..' contains '..'"),
        ("O:.241220C00500000", "underlying '.' starts or ends with '.' or '-'"),
        ("O:A.241220C00500000", "underlying 'A.' starts or ends with '.' or '-'"),
        ("O:.A241220C00500000", "underlying '.A' starts or ends with '.' or '-'"),
        ("O:A..B241220C00500000", "underlying 'A..B' contains '..'"),
        ("O:A/B241220C00500000", "not an OCC option ticker"),
        ("O:A B241220C00500000", "not an OCC option ticker"),
        ("O:spy241220C00500000", "not an OCC option ticker"),
        ("O:A_B241220C00500000", "not an OCC option ticker"),
    ],
)
def test_option_roots_cannot_carry_bad_symbols(ticker: str, detail: str) -> None:
    good = f"O:SPY241220C00500000,10,5,5,6,4,{DAY_START},3"
    assert _outcome(good, _row(ticker), spec=OPTIONS) == {3: ("bad_option_ticker", detail)}


def test_real_option_roots_stay_valid() -> None:
    tickers = [
        "O:SPY241220C00500000",
        "O:TSLA1241220P00100000",
        "O:BRK.B241220C00450000",
        "O:A241220C00100000",
    ]
    assert _outcome(*(_row(t) for t in tickers), spec=OPTIONS) == {}


def test_price_bounds_are_per_market() -> None:
    price = "2000000"
    deep = _row("O:NDX241220C00100000", open_=price, close=price, high=price, low=price)
    assert _outcome(deep, spec=OPTIONS) == {2: ("out_of_range", "open=2000000.0 outside [1e-06, 1e+06]")}
    assert _outcome(_row("NDX", open_=price, close=price, high=price, low=price)) == {}
    assert _outcome(_row("O:SPY241220C00500000", volume="2e10"), spec=OPTIONS) == {
        2: ("out_of_range", "volume=20000000000.0 outside [0, 1e+10]")
    }


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_no_passing_price_or_volume_breaks_a_float32_store(value: float) -> None:
    frame = pl.DataFrame(
        {
            "ticker": ["P", "V"],
            "volume": [10.0, value],
            "open": [value, 5.0],
            "close": [value, 5.0],
            "high": [value, 5.0],
            "low": [value, 5.0],
            "window_start": [DAY_START, DAY_START],
            "transactions": [3, 3],
            "line": [2, 3],
        }
    )
    kept = check_rows(frame, bounds=session_bounds(SESSION), spec=STOCKS).good
    with np.errstate(over="ignore", under="ignore"):
        as_float32 = np.float32(value)
    if "P" in kept["ticker"]:
        assert np.isfinite(as_float32)
        assert as_float32 > 0
    if "V" in kept["ticker"]:
        assert np.isfinite(as_float32)
        assert as_float32 >= 0


def test_a_market_without_rules_is_refused_by_name() -> None:
    crypto = dataclasses.replace(STOCKS, name="crypto_daily", asset="global_crypto")
    with pytest.raises(
        ConfigurationError, match=r"crypto_daily: no row rules for market 'global_crypto'.*MARKET_RULES"
    ):
        row_checks(crypto, session_bounds(SESSION))
