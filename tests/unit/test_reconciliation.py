"""Split records against price moves: unmatched splits and unexplained split-sized jumps."""

from __future__ import annotations

import datetime as dt

import polars as pl

from quantmini.core.reconciliation import reconcile_splits

D = [dt.date(2025, 3, d) for d in (3, 4, 5, 6, 7)]


def _closes(rows: dict[str, list[float]]) -> pl.DataFrame:
    return pl.DataFrame(
        [(t, D[i], c) for t, closes in rows.items() for i, c in enumerate(closes)],
        schema={"ticker": pl.String, "session_date": pl.Date, "close": pl.Float64},
        orient="row",
    )


def _splits(rows: list[tuple[str, dt.date, float, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={
            "ticker": pl.String,
            "execution_date": pl.Date,
            "split_from": pl.Float64,
            "split_to": pl.Float64,
        },
        orient="row",
    )


def test_matched_splits_and_normal_moves_give_no_findings() -> None:
    closes = _closes(
        {
            "FWD": [100, 101, 25.4, 25.0, 25.3],  # 4:1 on D[2]
            "REV": [1.0, 1.02, 10.5, 10.4, 10.6],  # 1:10 on D[2]
            "CALM": [50, 51, 49, 52, 50],
        }
    )
    splits = _splits([("FWD", D[2], 1, 4), ("REV", D[2], 10, 1)])
    assert reconcile_splits(closes, splits).is_empty()


def test_split_with_no_jump_and_jump_with_no_split_are_both_reported() -> None:
    closes = _closes(
        {
            "GHOST": [80, 81, 80.5, 81, 82],  # a 2:1 split record, but prices never halved
            "MISSED": [30, 30.2, 10.1, 10.0, 10.2],  # a 3:1 move on D[2] with no split record
            "HALT": [20, 20, 20, 20, 20],
        }
    )
    splits = _splits([("GHOST", D[2], 1, 2)])
    findings = reconcile_splits(closes, splits)
    assert findings.select("ticker", "session_date", "check").rows() == [
        ("GHOST", D[2], "split without price jump"),
        ("MISSED", D[2], "price jump without split"),
    ]
    ghost = findings.row(0, named=True)
    assert ghost["expected_ratio"] == 2.0
    assert abs(ghost["observed_ratio"] - 81 / 80.5) < 1e-12


def test_split_executed_on_a_day_without_a_bar_is_compared_with_the_next_bar() -> None:
    closes = _closes({"GAP": [40, 40.5, 20.1, 20.3, 20.0]}).filter(pl.col("session_date") != D[1])
    # Execution on D[1] (no bar that day): the next bar D[2] is compared with D[0].
    assert reconcile_splits(closes, _splits([("GAP", D[1], 1, 2)])).is_empty()
