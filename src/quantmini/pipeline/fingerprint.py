"""Stable fingerprints of stage inputs and outputs, so unchanged work is recognised and skipped."""

from __future__ import annotations

import hashlib

import pyarrow as pa


def table_digest(table: pa.Table) -> str:
    """SHA-256 of a table's Arrow IPC stream: equal digests mean equal content and schema."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()
