"""Chunked gzip reading and chunked ingest: line numbers, raw text and conservation across chunk borders;
ordering helpers against pandas; executor modes."""

from __future__ import annotations

import datetime as dt
import gzip
import zlib
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from quantmini import ValidationError
from quantmini.core.ordering import duplicated_keys, is_sorted_by
from quantmini.datasets import get_spec
from quantmini.io import gzip_lines
from quantmini.io.gzip_lines import gzip_chunks, read_lines
from quantmini.io.lake import Lake
from quantmini.io.manifest import write_manifest
from quantmini.pipeline.bronze import ingest_session
from quantmini.pipeline.executor import run_tasks

HEADER = "ticker,volume,open,close,high,low,window_start,transactions"
SESSION = dt.date(2025, 6, 2)
OPEN_NS = 1748871000000000000  # 2025-06-02 09:30 EDT = 13:30Z


def test_chunks_end_on_lines_and_members_concatenate(tmp_path: Path) -> None:
    text = "".join(f"line {i}\n" for i in range(5000))
    path = tmp_path / "f.gz"
    path.write_bytes(gzip.compress(text[:20000].encode()) + gzip.compress(text[20000:].encode()))
    chunks = list(gzip_chunks(path, "f", chunk_bytes=4096))
    assert len(chunks) >= 3
    assert all(c.endswith(b"\n") for c in chunks)
    assert b"".join(chunks).decode() == text
    assert read_lines(path, "f", {1, 4000, 5000}) == {1: "line 0", 4000: "line 3999", 5000: "line 4999"}


@pytest.mark.parametrize("cut", [20, -10])
def test_truncated_or_corrupt_gzip_is_a_validation_error(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "f.gz"
    path.write_bytes(gzip.compress(("x" * 100 + "\n").encode() * 200)[:cut])
    with pytest.raises(ValidationError, match=r"f: corrupt or truncated gzip"):
        list(gzip_chunks(path, "f"))
    path.write_bytes(b"not gzip at all")
    with pytest.raises(ValidationError, match="corrupt"):
        list(gzip_chunks(path, "f"))
    assert isinstance(zlib.error("x"), Exception)


def _minute_rows(n: int) -> list[str]:
    return [f"T{i // 10:04d},10,5,5,6,4,{OPEN_NS + (i % 10) * 60_000_000_000},3" for i in range(n)]


def test_chunked_ingest_keeps_line_numbers_raw_text_and_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = get_spec("stocks_minute")
    rows = _minute_rows(3000)
    bad = {
        17: rows[17].replace(",10,", ",ten,"),  # careful path, first chunk
        1501: rows[1501].replace(",5,5,6,4,", ",5,5,4,6,"),  # ohlc, a middle chunk
        2999: "ZVZZT" + rows[2999][5:],  # test symbol, last chunk
    }
    for index, text in bad.items():
        rows[index] = text
    rows.insert(2500, rows[1000])  # exact duplicate, far from its original
    conflict = rows[2000].replace(",10,", ",11,")
    rows.insert(2700, conflict)  # same key as line 2002, other values
    key = spec.source_key(SESSION)
    lake = Lake(tmp_path)
    target = lake.landing_file(key)
    target.parent.mkdir(parents=True)
    target.write_bytes(gzip.compress(("\n".join([HEADER, *rows]) + "\n").encode()))
    write_manifest(lake.manifest("landing", spec, SESSION), {"key": key, "sha256": "x"})
    monkeypatch.setattr(gzip_lines, "CHUNK_BYTES", 8192)

    outcome = ingest_session(lake, spec, SESSION)
    assert (outcome.rows_in, outcome.rows_bronze, outcome.rows_quarantined, outcome.duplicates) == (
        3002,
        3002 - 5 - 1,
        5,
        1,
    )
    quarantine = pq.read_table(lake.quarantine_partition(spec, SESSION)).to_pandas()
    lines = ["header", *rows]  # lines[n - 1] is line n
    want = [
        (19, "unparseable_number"),
        (1503, "ohlc_inconsistent"),
        (2002, "duplicate_key_conflict"),
        (2702, "duplicate_key_conflict"),
        (3003, "test_symbol"),
    ]
    assert sorted(zip(quarantine["line"], quarantine["reason"], strict=True)) == want
    assert [lines[n - 1] for n in quarantine["line"]] == quarantine["raw"].tolist()
    bronze = pq.read_table(lake.bronze_partition(spec, SESSION)).to_pandas()
    assert bronze["ticker"].is_monotonic_increasing
    assert len(bronze) == outcome.rows_bronze


@given(st.lists(st.tuples(st.sampled_from("ABC"), st.integers(0, 4)), max_size=30), st.booleans())
def test_key_helpers_agree_with_pandas(keys: list[tuple[str, int]], sort: bool) -> None:
    if sort:
        keys = sorted(keys)
    frame = pl.DataFrame(
        {"t": [k[0] for k in keys], "w": [k[1] for k in keys]}, schema={"t": pl.String, "w": pl.Int64}
    )
    df = pd.DataFrame(keys, columns=["t", "w"])
    assert duplicated_keys(frame, ["t", "w"]).to_list() == df.duplicated(keep=False).tolist()
    assert is_sorted_by(frame, ["t", "w"]) == (keys == sorted(keys))


def _square(x: int) -> int:
    if x == 3:
        raise ValueError("three")
    return x * x


@pytest.mark.parametrize(
    ("mode", "workers", "batch"), [("streaming", 1, 1), ("batch", 1, 2), ("parallel", 2, 1)]
)
def test_every_mode_returns_every_result_or_error(mode: str, workers: int, batch: int) -> None:
    results = dict(run_tasks(_square, [1, 2, 3, 4, 5], mode=mode, workers=workers, batch_size=batch))  # type: ignore[arg-type]
    assert {k: v for k, v in results.items() if k != 3} == {1: 1, 2: 4, 4: 16, 5: 25}
    assert isinstance(results[3], ValueError)
