"""Deterministic generator of realistic vendor-format sample data (flat files and REST responses).

``generate_sample(out, start, end)`` writes ``out/flatfiles/<vendor key>`` aggregates files,
``out/rest/...`` reference responses and ``out/sample.json``, the record of truth tests compare against.
"""

from quantmini.sample.generator import DEFAULT_DATA_TYPES, RECORD_FILE, SampleSummary, generate_sample

__all__ = ["DEFAULT_DATA_TYPES", "RECORD_FILE", "SampleSummary", "generate_sample"]
