"""Qlib naming and ``.bin`` encoding: hand-worked bytes and properties."""

from __future__ import annotations

import datetime as dt
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from quantmini import ValidationError
from quantmini.core.qlib_encoding import (
    bin_array,
    calendar_line,
    calendar_lines,
    check_fields,
    check_freq,
    decode_bin,
    encode_bin,
    plan_symbols,
    qlib_dir_name,
    stored_symbol,
)

NAN = float("nan")
FLOAT32_MAX = float(np.finfo(np.float32).max)


def test_tiny_bin_matches_hand_written_bytes() -> None:
    got = encode_bin(3, [1.5, NAN, -2.25])
    assert got == np.array([3.0, 1.5, NAN, -2.25], dtype="<f4").tobytes()
    # The same by the byte, little-endian IEEE 754 single precision.
    assert got[:4] == b"\x00\x00\x40\x40"  # 3.0
    assert got[4:8] == b"\x00\x00\xc0\x3f"  # 1.5
    assert got[12:16] == b"\x00\x00\x10\xc0"  # -2.25
    assert struct.unpack("<4f", got)[1:2] == (1.5,)


def test_bin_array_scatters_values_and_pads_nan() -> None:
    got = bin_array(10, 5, np.array([0, 2, 4]), [1.0, 2.0, 3.0])
    want = np.array([10, 1, NAN, 2, NAN, 3], dtype="<f4")
    assert got.dtype == np.dtype("<f4")
    assert got.tobytes() == want.tobytes()


def test_start_index_must_fit_float32() -> None:
    encode_bin(2**24 - 1, [1.0])
    with pytest.raises(ValidationError, match="start index"):
        encode_bin(2**24, [1.0])
    with pytest.raises(ValidationError, match="start index"):
        encode_bin(-1, [1.0])


def test_decode_refuses_partial_floats_and_bad_headers() -> None:
    with pytest.raises(ValidationError, match="whole number"):
        decode_bin(b"\x00\x00\x40")
    with pytest.raises(ValidationError, match="header"):
        decode_bin(np.array([1.5, 1.0], dtype="<f4").tobytes())


@given(
    start=st.integers(min_value=0, max_value=2**24 - 1),
    values=st.lists(
        st.one_of(st.floats(-FLOAT32_MAX, FLOAT32_MAX), st.just(NAN), st.just(np.inf)), max_size=50
    ),
)
def test_decode_inverts_encode_up_to_float32(start: int, values: list[float]) -> None:
    data = encode_bin(start, values)
    assert len(data) == 4 * (len(values) + 1)
    got_start, got = decode_bin(data)
    assert got_start == start
    want = np.array(values, dtype=np.float64)
    nan = np.isnan(want)
    assert (np.isnan(got) == nan).all()
    assert (got[~nan] == want[~nan].astype(np.float32)).all()


def test_values_beyond_float32_are_refused_not_made_infinite() -> None:
    with pytest.raises(ValidationError, match="beyond float32"):
        encode_bin(0, [1.0, 1e39])
    assert decode_bin(encode_bin(0, [-np.inf]))[1][0] == -np.inf


@given(
    length=st.integers(min_value=1, max_value=60),
    data=st.data(),
)
def test_scatter_places_each_value_at_its_offset(length: int, data: st.DataObject) -> None:
    offsets = sorted(data.draw(st.sets(st.integers(0, length - 1), min_size=1)))
    values = data.draw(st.lists(st.floats(-1e6, 1e6), min_size=len(offsets), max_size=len(offsets)))
    _, got = decode_bin(bin_array(0, length, np.array(offsets), values).tobytes())
    dense = [NAN] * length
    for offset, value in zip(offsets, values, strict=True):
        dense[offset] = value
    np.testing.assert_array_equal(got, np.array(dense, dtype=np.float32))


@pytest.mark.parametrize(
    ("symbol", "directory"),
    [
        ("AAPL", "aapl"),
        ("BRK.B", "brk.b"),
        ("O:SPY240119C00470000", "o:spy240119c00470000"),
        ("CON", "_qlib_con"),
        ("prn", "_qlib_prn"),
        ("Aux", "_qlib_aux"),
        ("NUL", "_qlib_nul"),
        ("COM0", "_qlib_com0"),
        ("COM9", "_qlib_com9"),
        ("LPT1", "_qlib_lpt1"),
        ("COM10", "com10"),
        ("CONX", "conx"),
    ],
)
def test_dir_name(symbol: str, directory: str) -> None:
    assert qlib_dir_name(symbol) == directory


@pytest.mark.parametrize(
    ("symbol", "stored"),
    [
        ("NA", "_NA_NA"),
        ("na", "_NA_NA"),
        ("NULL", "_NA_NULL"),
        ("Null", "_NA_NULL"),
        ("N/A", "_NA_N_A"),
        ("n/a", "_NA_N_A"),
        ("None", "_NA_NONE"),
        ("NONE", "_NA_NONE"),
        ("nan", "_NA_NAN"),
        ("NaN", "_NA_NAN"),
        ("NAB", "NAB"),
        ("NAN.A", "NAN.A"),
    ],
)
def test_na_like_symbols_are_renamed(symbol: str, stored: str) -> None:
    assert stored_symbol(symbol) == stored


def test_plan_reports_renames_and_keeps_others() -> None:
    plan = plan_symbols(["AAPL", "N/A", "None", "PRN", "AAPL", "BApA", "NMCOr"])
    assert plan.stored == {
        "AAPL": "AAPL",
        "BApA": "BA_PA",
        "N/A": "_NA_N_A",
        "NMCOr": "NMCO_R",
        "None": "_NA_NONE",
        "PRN": "PRN",
    }
    assert plan.renamed == {"BApA": "BA_PA", "N/A": "_NA_N_A", "NMCOr": "NMCO_R", "None": "_NA_NONE"}
    assert plan.skipped == {}


@pytest.mark.parametrize(
    ("symbol", "stored"),
    [("BApA", "BA_PA"), ("NMCOr", "NMCO_R"), ("abc", "_A_B_C"), ("BRK.b", "BRK._B"), ("BRK.B", "BRK.B")],
)
def test_lower_case_letters_are_escaped_so_case_never_collides(symbol: str, stored: str) -> None:
    assert stored_symbol(symbol) == stored
    assert plan_symbols([symbol, symbol.upper()]).skipped == {}


@pytest.mark.parametrize(
    ("symbols", "kept", "skipped"),
    [
        (["NA", "na"], "NA", "na"),  # both would be stored as _NA_NA
        (["_NA_NONE", "None"], "None", "_NA_NONE"),  # a rename hitting a real name
    ],
)
def test_colliding_symbols_keep_the_first_and_skip_the_other(
    symbols: list[str], kept: str, skipped: str
) -> None:
    plan = plan_symbols(symbols)
    assert list(plan.stored) == [kept]
    assert list(plan.skipped) == [skipped]
    assert f"with {kept!r}" in plan.skipped[skipped]


@pytest.mark.parametrize("symbol", ["A/B", "", "A B", "TAB\tX", 'Q"', "..", "back\\slash"])
def test_unstorable_symbols_are_skipped_by_name(symbol: str) -> None:
    plan = plan_symbols(["OK", symbol])
    assert plan.stored == {"OK": "OK"}
    assert "cannot be stored" in plan.skipped[symbol]
    assert repr(stored_symbol(symbol)) in plan.skipped[symbol]


def test_fields() -> None:
    assert check_fields(["open", "close", "adj_close", "ret5"]) == ("open", "close", "adj_close", "ret5")
    for bad in (["$close"], ["close price"], ["close-1"], ["clôse"], [""]):
        with pytest.raises(ValidationError, match="invalid"):
            check_fields(bad)
    with pytest.raises(ValidationError, match="collide"):
        check_fields(["close", "Close"])
    with pytest.raises(ValidationError, match="at least one"):
        check_fields([])
    with pytest.raises(ValidationError, match="sequence"):
        check_fields("close")


def test_freq() -> None:
    assert check_freq("day") == "day"
    assert check_freq("1min") == "1min"
    for bad in ("1d", "d", "minute", "DAY"):
        with pytest.raises(ValidationError, match="not supported"):
            check_freq(bad)


def test_calendar_lines() -> None:
    assert calendar_line(dt.date(2024, 1, 2), "day") == "2024-01-02"
    assert calendar_line(dt.datetime(2024, 1, 2), "day") == "2024-01-02"
    assert calendar_line(dt.datetime(2024, 1, 2, 9, 30), "1min") == "2024-01-02 09:30:00"
    with pytest.raises(ValidationError, match="time of day"):
        calendar_line(dt.datetime(2024, 1, 2, 9, 30), "day")
    with pytest.raises(ValidationError, match="need a datetime"):
        calendar_line(dt.date(2024, 1, 2), "1min")
    with pytest.raises(ValidationError, match="naive"):
        calendar_line(dt.datetime(2024, 1, 2, 9, 30, tzinfo=dt.UTC), "1min")
    days = [dt.date(2024, 1, 2), dt.date(2024, 1, 3)]
    assert calendar_lines(days, "day") == ["2024-01-02", "2024-01-03"]
    with pytest.raises(ValidationError, match="2024-01-03 is followed by 2024-01-02"):
        calendar_lines(days[::-1], "day")
    with pytest.raises(ValidationError, match="strictly increasing"):
        calendar_lines([days[0], days[0]], "day")
    with pytest.raises(ValidationError, match="empty"):
        calendar_lines([], "day")
