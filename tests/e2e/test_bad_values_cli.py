"""Non-finite, absurd and badly named rows through ``quantmini pipeline run``: each is quarantined with its
reason and raw text, rows are conserved, and the lake is otherwise what the clean files give."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re
import shutil
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
from click.testing import CliRunner, Result

from quantmini.cli.main import cli
from quantmini.datasets import get_spec
from quantmini.io.lake import Lake
from quantmini.sample import generate_sample

SPEC = get_spec("stocks_daily")
START, END = dt.date(2025, 6, 2), dt.date(2025, 6, 6)
SESSIONS = [START + dt.timedelta(days=i) for i in range(5)]
FIELDS = SPEC.csv_columns


def run_pipeline(source: Path, root: Path) -> Result:
    args = ["pipeline", "run", "--data-type", "stocks_daily", "--start-date", str(START)]
    args += ["--end-date", str(END), "--source", str(source), "--data-root", str(root)]
    return CliRunner().invoke(cli, args, catch_exceptions=True)


def variant(line: str, **fields: str) -> str:
    """``line`` with the named CSV fields replaced."""
    values = dict(zip(FIELDS, line.split(","), strict=True))
    values.update(fields)
    return ",".join(values[name] for name in FIELDS)


def bad_rows(good: str, ticker: str, careful: bool) -> list[tuple[str, str, str]]:
    """(line text, reason, detail) of the rows injected into a file, built from one of its good lines.

    ``careful`` adds a ``nan`` transaction count, which the fast reader cannot type: that file takes
    the careful parse path, and every other bad row must fare exactly as in the fast-path file.
    """
    rows = [
        (variant(good, ticker="A/B"), "bad_ticker", "ticker 'A/B' contains a path separator"),
        (variant(good, ticker="A B"), "bad_ticker", "ticker 'A B' contains whitespace"),
        (variant(good, ticker=".."), "bad_ticker", "ticker '..' contains '..'"),
        (variant(good, ticker='"QUOT"'), "bad_ticker", "ticker '\"QUOT\"' contains a quote"),
        (
            variant(good, ticker=ticker.lower()),
            "bad_ticker",
            f"ticker '{ticker.lower()}' starts with a lower-case letter (roots are upper case)",
        ),
        (variant(good, close="NaN"), "non_finite", "close=NaN"),
        (variant(good, high="inf"), "non_finite", "high=inf"),
        (variant(good, low="-Infinity"), "non_finite", "low=-inf"),
        (variant(good, open="1e39", high="1e39"), "out_of_range", "open=1e+39 outside [1e-06, 1e+07]"),
        (variant(good, volume="1e308"), "out_of_range", "volume=1e+308 outside [0, 1e+13]"),
        (variant(good, transactions="-5"), "out_of_range", "transactions=-5 outside [0, 1e+09]"),
    ]
    if careful:
        rows.append((variant(good, transactions="nan"), "unparseable_number", "transactions=nan"))
    return rows


def test_bad_values_are_quarantined_and_change_nothing_else(tmp_path: Path) -> None:
    clean = tmp_path / "clean"
    generate_sample(clean, START, END, tickers=8, data_types=("stocks_daily",))
    dirty = tmp_path / "dirty"
    shutil.copytree(clean, dirty)
    defect_sessions = {d["session"] for d in json.loads((clean / "sample.json").read_text())["defects"]}
    fast, careful = [s for s in SESSIONS if s.isoformat() not in defect_sessions][:2]

    # Bad rows go among the good ones (after line 3), copying an alphabetic ticker's line.
    expected: dict[dt.date, list[tuple[int, str, str, str]]] = {}
    for session in (fast, careful):
        path = dirty / "flatfiles" / SPEC.source_key(session)
        lines = gzip.decompress(path.read_bytes()).decode().splitlines()
        good = next(line for line in lines[1:] if line.split(",")[0].isalpha())
        injected = bad_rows(good, good.split(",")[0], careful=session == careful)
        lines[3:3] = [text for text, _, _ in injected]
        path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
        expected[session] = [
            (4 + i, reason, detail, text) for i, (text, reason, detail) in enumerate(injected)
        ]

    baseline = run_pipeline(clean, tmp_path / "clean_lake")
    assert baseline.exit_code == 0, baseline.output
    result = run_pipeline(dirty, tmp_path / "lake")
    assert result.exit_code == 0, result.output
    lake, clean_lake = Lake(tmp_path / "lake"), Lake(tmp_path / "clean_lake")

    # Every bad row is in quarantine with its reason, detail and exact raw text; nothing else is.
    for session, rows in expected.items():
        table = pq.read_table(lake.quarantine_partition(SPEC, session)).to_pylist()
        got = [(r["line"], r["reason"], r["detail"], r["raw"]) for r in table]
        assert got == rows
        assert {r["source_file"] for r in table} == {f"landing/{SPEC.source_key(session)}"}
    fast_outcome = [(reason, detail) for _, reason, detail, _ in expected[fast]]
    careful_outcome = [(reason, detail) for _, reason, detail, _ in expected[careful]]
    assert careful_outcome[: len(fast_outcome)] == fast_outcome  # same rows, either parse path

    # Rows are conserved per file, counted from the files themselves.
    for session in SESSIONS:
        manifest = json.loads(lake.manifest("bronze", SPEC, session).read_text())
        path = dirty / "flatfiles" / SPEC.source_key(session)
        rows_in = len(gzip.decompress(path.read_bytes()).decode().splitlines()) - 1
        assert manifest["rows_in"] == rows_in
        assert rows_in == manifest["rows_bronze"] + manifest["rows_quarantined"] + manifest["duplicates"]
        if session in expected:
            reasons = Counter(reason for _, reason, _, _ in expected[session])
            assert {k: v for k, v in manifest["quality"]["reasons"].items() if v} == dict(reasons)

    # Good rows of the same files and every other file are exactly what the clean files give.
    for session in SESSIONS:
        assert pq.read_table(lake.bronze_partition(SPEC, session)).equals(
            pq.read_table(clean_lake.bronze_partition(SPEC, session))
        )
        if session not in expected:
            dirty_q = lake.quarantine_partition(SPEC, session)
            clean_q = clean_lake.quarantine_partition(SPEC, session)
            assert dirty_q.exists() == clean_q.exists()
            if clean_q.exists():
                assert pq.read_table(dirty_q).equals(pq.read_table(clean_q))
    instruments = lake.qlib_root("stocks_daily", "day") / "instruments" / "all.txt"
    assert (
        instruments.read_text()
        == (clean_lake.qlib_root("stocks_daily", "day") / "instruments" / "all.txt").read_text()
    )

    # The summary prints the reasons table with every injected count.
    assert "quarantined rows by reason" in result.output
    totals = Counter(reason for rows in expected.values() for _, reason, _, _ in rows)
    for reason, count in totals.items():
        assert re.search(rf"│ {reason}\s+│\s+{count} │", result.output), (reason, result.output)
    assert totals == {"bad_ticker": 10, "non_finite": 6, "out_of_range": 6, "unparseable_number": 1}

    validate = CliRunner().invoke(
        cli, ["validate", "bronze", "--data-type", "stocks_daily", "--data-root", str(lake.root)]
    )
    assert validate.exit_code == 0, validate.output
