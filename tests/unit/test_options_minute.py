"""OCC ticker parsing (property-based round trip + edge cases) and minute-bar session rules."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from quantmini.core.bronze import to_bronze
from quantmini.core.options import contract_columns
from quantmini.core.parsing import parse_csv
from quantmini.core.quality import apply_rules
from quantmini.datasets import get_spec

roots = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.", min_size=1, max_size=6).filter(
    lambda r: r[0].isalpha()
)


@given(
    root=roots,
    expiration=st.dates(dt.date(2000, 1, 1), dt.date(2068, 12, 31)),
    kind=st.sampled_from(["C", "P"]),
    strike_thousandths=st.integers(0, 99_999_999),
)
def test_occ_round_trip(root: str, expiration: dt.date, kind: str, strike_thousandths: int) -> None:
    ticker = f"O:{root}{expiration:%y%m%d}{kind}{strike_thousandths:08d}"
    row = pl.DataFrame({"ticker": [ticker]}).with_columns(contract_columns()).row(0, named=True)
    assert row["underlying"] == root
    assert row["expiration"] == expiration
    assert row["option_type"] == {"C": "call", "P": "put"}[kind]
    assert row["strike"] == pytest.approx(strike_thousandths / 1000)


@pytest.mark.parametrize(
    "ticker",
    [
        "SPY",  # a stock ticker in an options file
        "O:SPY241320C00500000",  # month 13
        "O:SPY240230C00500000",  # 30 February
        "O:SPY241220X00500000",  # neither call nor put
        "O:SPY241220C0050000",  # 7-digit strike
        "O:TOOLONGX241220C00500000",  # root longer than 6
        "O:spy241220C00500000",  # lower case
        "O:241220C00500000",  # no root
    ],
)
def test_unparseable_tickers_are_null_not_mislabelled(ticker: str) -> None:
    row = pl.DataFrame({"ticker": [ticker]}).with_columns(contract_columns()).row(0, named=True)
    assert row == {
        "ticker": ticker,
        "underlying": None,
        "expiration": None,
        "option_type": None,
        "strike": None,
    }


def _ns(local: str) -> int:
    """Exchange-local wall time → UTC ns (January: EST = UTC-5)."""
    naive = dt.datetime.fromisoformat(local)
    return int((naive + dt.timedelta(hours=5)).replace(tzinfo=dt.UTC).timestamp()) * 10**9


HEADER = "ticker,volume,open,close,high,low,window_start,transactions"


def _minute_file(*rows: tuple[str, str]) -> bytes:
    lines = [HEADER] + [f"{t},10,1,1,1,1,{_ns(ts)},1" for t, ts in rows]
    return ("\n".join(lines) + "\n").encode()


def test_minute_rules_and_regular_session_flag() -> None:
    spec = get_spec("options_minute")
    data = _minute_file(
        ("O:SPY240119C00450000", "2024-01-08 04:00:00"),
        ("O:SPY240119C00450000", "2024-01-08 09:29:00"),
        ("O:SPY240119C00450000", "2024-01-08 09:30:00"),
        ("O:SPY240119C00450000", "2024-01-08 15:59:00"),
        ("O:SPY240119C00450000", "2024-01-08 16:00:00"),
        ("O:SPY240119C00450000", "2024-01-08 19:59:00"),  # 00:59Z on the 9th: still the 8th's session
        ("O:SPY240119C00450000", "2024-01-08 03:59:00"),  # before extended hours
        ("BADTICKER", "2024-01-08 10:00:00"),
    )
    parsed = parse_csv(data, spec.csv_columns, "m.csv")
    result = apply_rules(parsed.rows, session=dt.date(2024, 1, 8), spec=spec)
    assert result.quarantined.select("line", "reason").rows() == [
        (8, "outside_session"),
        (9, "bad_option_ticker"),
    ]
    table = to_bronze(result.kept, spec)
    assert table.column("regular_session").to_pylist() == [False, False, True, True, False, False]
    assert set(table.column("session_date").to_pylist()) == {dt.date(2024, 1, 8)}
    assert table.column("underlying").to_pylist() == ["SPY"] * 6
    assert table.column("strike").to_pylist() == [450.0] * 6


def test_early_close_ends_the_regular_session() -> None:
    spec = get_spec("stocks_minute")
    data = _minute_file(("AAPL", "2024-11-29 12:59:00"), ("AAPL", "2024-11-29 13:00:00"))
    parsed = parse_csv(data, spec.csv_columns, "m.csv")
    result = apply_rules(parsed.rows, session=dt.date(2024, 11, 29), spec=spec)
    table = to_bronze(result.kept, spec, regular_close=dt.time(13, 0))
    assert table.column("regular_session").to_pylist() == [True, False]
