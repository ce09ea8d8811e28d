"""How silver tasks are sized from the memory budget (pure arithmetic, hand-worked numbers)."""

from __future__ import annotations

from quantmini.datasets.base import Ref, SilverPart
from quantmini.pipeline.silver import MAX_CHUNK_SESSIONS, _task_size

DAILY = SilverPart(transform=Ref("m:f"), lookback=20, row_bytes=1200)
MINUTE = SilverPart(transform=Ref("m:f"), lookback=20, per_ticker=True, row_bytes=400)


def test_daily_sessions_fit_in_chunks_of_consecutive_sessions() -> None:
    # 10,000 rows × 1,200 B = 12 MB a session; 1.2 GB holds 100 sessions, 20 of them lookback.
    assert _task_size(DAILY, 10_000, 1.2e9) == (80, False)
    assert _task_size(DAILY, 10, 1e12) == (MAX_CHUNK_SESSIONS, False)


def test_a_part_that_is_not_per_ticker_gets_one_session_whatever_the_budget() -> None:
    assert _task_size(DAILY, 1_800_000, 1e9) == (1, False)


def test_minute_windows_are_split_into_ticker_ranges() -> None:
    # 1.8 M rows × 400 B = 720 MB a session: 1.7 GB does not hold a session and its 20-session lookback.
    assert _task_size(MINUTE, 1_800_000, 1.7e9) == (20, True)
    # Enough memory for the window: consecutive sessions, no ranges.
    assert _task_size(MINUTE, 1_800_000, 720e6 * 25) == (5, False)


def test_lookback_rows_can_cost_less_than_output_rows() -> None:
    part = SilverPart(
        transform=Ref("m:f"), lookback=20, per_ticker=True, row_bytes=600, lookback_row_bytes=100
    )
    # 1 M rows: a lookback of 20 × 100 MB = 2 GB, then 600 MB per output session: 3 fit in 4 GB.
    assert _task_size(part, 1_000_000, 4e9) == (3, False)
    assert part.window_bytes(1_000_000, 20, 20) == 1e6 * (20 * 600 + 20 * 100)
