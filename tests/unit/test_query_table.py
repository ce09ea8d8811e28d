"""The query table as a user reads it in an 80-column terminal: rounded numbers, identifying columns never
cut, columns that do not fit named below the table."""

from __future__ import annotations

import datetime as dt
import io

import polars as pl
from rich.console import Console

from quantmini.cli.query_render import render_table

WIDTH = 80


def render(frame: pl.DataFrame, limit: int = 50) -> list[str]:
    out = io.StringIO()
    render_table(frame, Console(file=out, width=WIDTH, highlight=False, soft_wrap=False), limit)
    return out.getvalue().splitlines()


def bars(n: int = 2) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "ticker": ["BRK.B", "PENNY.WS"][:n],
            "session_date": [dt.date(2026, 5, 28), dt.date(2026, 5, 29)][:n],
            "open": [1234.56789, 0.0123456][:n],
            "close": [456.123456, 0.0456789][:n],
            "volume": [123456789.0, 1250.0][:n],
            "transactions": [98765, 12][:n],
            "ret_1d": [0.0123456, -0.0456789][:n],
        },
        schema_overrides={"transactions": pl.Int64},
    )


def rows_of(lines: list[str]) -> list[list[str]]:
    return [line.split() for line in lines if line.startswith(("BRK.B", "PENNY.WS"))]


def test_numbers_are_rounded_for_reading() -> None:
    lines = render(bars())
    assert lines[0].split() == ["ticker", "session_date", "open", "close", "volume", "transactions", "ret_1d"]
    # Medians: open 617.29 and close 228.08 (>= 1: two decimals), ret_1d 0.029 (< 1: four decimals).
    assert rows_of(lines) == [
        ["BRK.B", "2026-05-28", "1,234.57", "456.12", "123,456,789", "98,765", "0.0123"],
        ["PENNY.WS", "2026-05-29", "0.01", "0.05", "1,250", "12", "-0.0457"],
    ]
    assert all(len(line) <= WIDTH for line in lines)


def test_sub_dollar_prices_get_four_decimals() -> None:
    frame = bars().filter(pl.col("ticker") == "PENNY.WS")
    assert rows_of(render(frame)) == [
        ["PENNY.WS", "2026-05-29", "0.0123", "0.0457", "1,250", "12", "-0.0457"]
    ]


def test_missing_values_are_blank_and_nan_is_named() -> None:
    frame = bars().with_columns(pl.Series("ret_1d", [None, float("nan")], dtype=pl.Float64))
    lines = render(frame)
    assert rows_of(lines)[0][-1] == "98,765"  # blank last cell: nothing after transactions
    assert rows_of(lines)[1][-1] == "NaN"


def test_a_wide_selection_keeps_ticker_and_date_whole_and_names_what_it_left_out() -> None:
    extra = {f"feature_{i}": [1.5 + i, 2.5 + i] for i in range(8)}
    frame = bars().with_columns(**{k: pl.Series(v) for k, v in extra.items()})
    lines = render(frame)
    assert all(len(line) <= WIDTH for line in lines)
    header = lines[0].split()
    assert header[:2] == ["ticker", "session_date"]
    assert [row[:2] for row in rows_of(lines)] == [["BRK.B", "2026-05-28"], ["PENNY.WS", "2026-05-29"]]
    start = next(i for i, line in enumerate(lines) if line.startswith("… "))
    note = " ".join(line.strip() for line in lines[start:])
    assert "not shown at this width" in note
    hidden = note.split("(", 1)[1].split(")", 1)[0].split(", ")
    # The columns left out are the last ones, and together with those shown they are all of them.
    assert header + hidden == frame.columns
    assert hidden[-1] == "feature_7"
    assert "--format csv" in note


def test_rows_beyond_the_limit_are_counted() -> None:
    lines = render(bars(), limit=1)
    assert len(rows_of(lines)) == 1
    assert lines[-1] == "… 1 more rows (use --format csv or --output to see all)"
