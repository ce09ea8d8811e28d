"""The gzip inflater: ISA-L and the zlib fallback give the same bytes and the same errors, in bronze's
chunked reader and in landing's verification; without ISA-L the fallback is used."""

from __future__ import annotations

import gzip
import hashlib
import random
import subprocess
import sys
from pathlib import Path

import pytest

from quantmini import ValidationError
from quantmini.io import inflate
from quantmini.io.gzip_lines import gzip_chunks
from quantmini.io.inflate import ZLIB, Inflater
from quantmini.pipeline.landing import verify_gzip

assert inflate.ISAL is not None, "isal is a dependency: its wheel must import here"
INFLATERS = [pytest.param(ZLIB, id="zlib"), pytest.param(inflate.ISAL, id="isal")]


def _csv_text(rows: int, seed: int) -> bytes:
    rng = random.Random(seed)
    return "".join(
        f"T{rng.randrange(10**6)},{rng.randrange(1000)},{rng.random():.4f},{1748871000000000000 + i}\n"
        for i in range(rows)
    ).encode()


def test_isal_is_preferred() -> None:
    assert inflate.FASTEST is inflate.ISAL


@pytest.mark.parametrize("inflater", INFLATERS)
def test_chunks_are_the_decompressed_members(inflater: Inflater, tmp_path: Path) -> None:
    parts = [_csv_text(30_000, 1), b"", _csv_text(5, 2), _csv_text(20_000, 3)]
    path = tmp_path / "f.gz"
    path.write_bytes(b"".join(gzip.compress(p, level) for p, level in zip(parts, (1, 9, 6, 6), strict=True)))
    chunks = list(gzip_chunks(path, "f", chunk_bytes=64 << 10, inflater=inflater))
    assert len(chunks) > 10
    assert all(c.endswith(b"\n") for c in chunks)
    assert b"".join(chunks) == b"".join(parts)


@pytest.mark.parametrize("inflater", INFLATERS)
@pytest.mark.parametrize(
    ("data", "message"),
    [
        (gzip.compress(b"a,b\n" * 5000)[:-10], r"^f: corrupt or truncated gzip"),
        (gzip.compress(b"a,b\n" * 5000)[:20], r"^f: corrupt or truncated gzip"),
        (b"ticker,volume\n", r"^f: corrupt or truncated gzip"),
        (gzip.compress(b"a,b\n" * 5000)[:-6] + b"\0\0\0\0\0\0", r"^f: corrupt or truncated gzip"),  # CRC
    ],
    ids=["truncated_trailer", "truncated_header", "not_gzip", "bad_crc"],
)
def test_chunk_reader_errors(inflater: Inflater, data: bytes, message: str, tmp_path: Path) -> None:
    path = tmp_path / "f.gz"
    path.write_bytes(data)
    with pytest.raises(ValidationError, match=message):
        list(gzip_chunks(path, "f", inflater=inflater))


@pytest.mark.parametrize("inflater", INFLATERS)
@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", r"^f: empty file \(0 bytes\), not gzip data$"),
        (b"ticker,volume\n", r"^f: corrupt gzip data"),
        (gzip.compress(b"a,b\n" * 5000)[:-9], r"^f: truncated gzip data"),
        (gzip.compress(b"a,b\n" * 5000)[:-6] + b"\0\0\0\0\0\0", r"^f: corrupt gzip data"),
    ],
    ids=["zero_bytes", "not_gzip", "truncated", "bad_crc"],
)
def test_verify_errors(inflater: Inflater, data: bytes, message: str, tmp_path: Path) -> None:
    path = tmp_path / "f.gz"
    path.write_bytes(data)
    with pytest.raises(ValidationError, match=message):
        verify_gzip(path, "f", inflater=inflater)


@pytest.mark.parametrize("inflater", INFLATERS)
def test_verify_member_ending_after_the_output_cap(inflater: Inflater, tmp_path: Path) -> None:
    # The first member inflates to more than one read's output cap and ends inside the first read; the
    # second continues into the next read. Its start must be fed once, not twice.
    first = b"AAPL,100,1.5,1.5,1.5,1.5,1748871000000000000,3\n" * 80_000
    second = _csv_text(150_000, 4)
    data = gzip.compress(first) + gzip.compress(second)
    assert len(gzip.compress(first)) < 1 << 20 < len(data)
    path = tmp_path / "f.gz"
    path.write_bytes(data)
    assert verify_gzip(path, "f", inflater=inflater) == hashlib.sha256(data).hexdigest()


_FALLBACK = """
import sys
from pathlib import Path
from quantmini.io import inflate
from quantmini.io.gzip_lines import gzip_chunks
from quantmini.pipeline.landing import verify_gzip
assert inflate.ISAL is None and inflate.FASTEST is inflate.ZLIB, inflate.FASTEST
path = Path(sys.argv[1])
sys.stdout.buffer.write(b"".join(gzip_chunks(path, "f", chunk_bytes=4096)))
sys.stderr.write(verify_gzip(path, "f"))
"""


def test_without_isal_zlib_is_used(tmp_path: Path) -> None:
    hidden = tmp_path / "hide" / "isal"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('no isal on this platform')\n")
    text = _csv_text(2_000, 5)
    data = gzip.compress(text[:10_000]) + gzip.compress(text[10_000:])
    path = tmp_path / "f.gz"
    path.write_bytes(data)
    done = subprocess.run(
        [sys.executable, "-c", _FALLBACK, str(path)],
        capture_output=True,
        env={"PYTHONPATH": str(hidden.parent), "PATH": ""},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == text
    assert done.stderr.decode() == hashlib.sha256(data).hexdigest()
