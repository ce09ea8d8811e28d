"""Market spans: membership rows → ``SYMBOL first last`` spans, instrument names, and pieces that join.

Expected spans are worked by hand; the property test compares spans built piece by piece with spans built
at once from the same rows.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantmini._exceptions import ValidationError
from quantmini.core.market_spans import join_spans, market_text, name_instruments, spans_before, spans_of

#: Sessions of the lake: 2025-03-05 is missing (a hole), so 03-04 and 03-06 are adjacent.
SESSIONS = [dt.date(2025, 3, d) for d in (3, 4, 6, 7, 10, 11, 12)]


def _rows(members: list[tuple[str, str, int]]) -> pl.DataFrame:
    """(universe, instrument, index into SESSIONS) → membership rows."""
    return pl.DataFrame(
        {
            "universe": [u for u, _, _ in members],
            "instrument": [i for _, i, _ in members],
            "session_date": [SESSIONS[k] for _, _, k in members],
        },
        schema={"universe": pl.String(), "instrument": pl.String(), "session_date": pl.Date()},
    )


def _spans(frame: pl.DataFrame) -> list[tuple[str, str, str, str]]:
    return [(u, i, a.isoformat(), b.isoformat()) for u, i, a, b in frame.iter_rows()]


def test_runs_of_lake_sessions_become_spans_and_a_hole_breaks_none() -> None:
    rows = _rows(
        [
            ("top2", "AAA", 0), ("top2", "AAA", 1), ("top2", "AAA", 2),  # across the 03-05 hole
            ("top2", "AAA", 4), ("top2", "AAA", 5),  # out on 03-07, back on 03-10
            ("top2", "BBB", 6),
            ("etf", "AAA", 3),
        ]
    )  # fmt: skip
    assert _spans(spans_of(rows, SESSIONS)) == [
        ("etf", "AAA", "2025-03-07", "2025-03-07"),
        ("top2", "AAA", "2025-03-03", "2025-03-06"),
        ("top2", "AAA", "2025-03-10", "2025-03-11"),
        ("top2", "BBB", "2025-03-12", "2025-03-12"),
    ]


def test_a_span_is_cut_back_to_the_session_before_a_rewind() -> None:
    spans = spans_of(_rows([("top2", "AAA", k) for k in range(7)] + [("top2", "BBB", 5)]), SESSIONS)
    assert _spans(spans_before(spans, SESSIONS[4], SESSIONS[3])) == [
        ("top2", "AAA", "2025-03-03", "2025-03-07")
    ]
    assert spans_before(spans, SESSIONS[0], None).is_empty()


def test_market_text_lists_every_span_sorted_by_symbol_then_start() -> None:
    spans = spans_of(_rows([("top2", "BBB", 0), ("top2", "AAA", 4), ("top2", "AAA", 0)]), SESSIONS)
    assert market_text(spans) == (
        "AAA\t2025-03-03\t2025-03-03\nAAA\t2025-03-10\t2025-03-10\nBBB\t2025-03-03\t2025-03-03\n"
    )


@settings(max_examples=60, deadline=None)
@given(
    member=st.lists(
        st.lists(st.booleans(), min_size=len(SESSIONS), max_size=len(SESSIONS)), min_size=1, max_size=4
    ),
    cut=st.integers(min_value=1, max_value=len(SESSIONS) - 1),
)
def test_spans_joined_from_two_pieces_equal_spans_of_the_whole(member: list[list[bool]], cut: int) -> None:
    rows = _rows(
        [("top2", f"T{t}", k) for t, days in enumerate(member) for k, inside in enumerate(days) if inside]
    )
    whole = spans_of(rows, SESSIONS)
    early = rows.filter(pl.col("session_date") < SESSIONS[cut])
    late = rows.filter(pl.col("session_date") >= SESSIONS[cut])
    pieces = join_spans(pl.concat([spans_of(early, SESSIONS), spans_of(late, SESSIONS)]), SESSIONS)
    assert pieces.equals(whole)
    # Rewinding to the cut and extending again gives the same spans.
    again = join_spans(
        pl.concat([spans_before(whole, SESSIONS[cut], SESSIONS[cut - 1]), spans_of(late, SESSIONS)]), SESSIONS
    )
    assert again.equals(whole)


def _named(
    tickers: list[tuple[str, dt.date]], instruments: pl.DataFrame | None
) -> tuple[list[str], set[str]]:
    rows = pl.DataFrame(
        {"ticker": [t for t, _ in tickers], "session_date": [d for _, d in tickers]},
        schema={"ticker": pl.String(), "session_date": pl.Date()},
    )
    named, skipped = name_instruments(rows, instruments)
    return named["instrument"].to_list(), skipped


def test_instruments_are_tickers_stored_as_the_root_stores_symbols() -> None:
    day = dt.date(2025, 3, 3)
    names, skipped = _named([("AAPL", day), ("BApA", day), ("NA", day), ("A B", day)], None)
    assert names == ["AAPL", "BA_PA", "_NA_NA"]
    assert skipped == {"A B"}


def test_the_names_frame_maps_a_ticker_over_its_span_only() -> None:
    d = [dt.date(2025, 3, k) for k in (3, 4, 5, 6)]
    instruments = pl.DataFrame(
        {
            "ticker": ["OLD", "ABC", "ABC"],
            "valid_from": [None, None, d[2]],
            "valid_to": [d[2], d[2], None],  # exclusive
            "instrument": ["NEW", "ABC_20250304", ""],
        },
        schema={
            "ticker": pl.String(),
            "valid_from": pl.Date(),
            "valid_to": pl.Date(),
            "instrument": pl.String(),
        },
    )
    names, _ = _named(
        [("OLD", d[0]), ("OLD", d[1]), ("OLD", d[2]), ("ABC", d[1]), ("ABC", d[2])], instruments
    )
    # A renamed company's old ticker is its latest one; a reused ticker's earlier company is its own name.
    assert names == ["NEW", "NEW", "OLD", "ABC_20250304", "ABC"]


def test_a_names_frame_without_its_columns_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"lacks column\(s\) \['valid_from', 'valid_to'\]"):
        _named([("X", dt.date(2025, 3, 3))], pl.DataFrame({"ticker": ["X"], "instrument": ["Y"]}))
