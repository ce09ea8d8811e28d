"""docs/features.md states every feature's definition as the library declares it (the tables are the
library's, written out once; this keeps them from drifting)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from quantmini.features.library import feature_set

DOC = Path(__file__).parents[2] / "docs" / "features.md"


def table_rows() -> dict[str, list[str]]:
    """Per table row, keyed by its first code span: every code span of the row."""
    rows = {}
    for line in DOC.read_text().splitlines():
        spans = re.findall(r"`([^`]+)`", line) if line.startswith("|") else []
        if spans:
            rows[spans[0]] = spans
    return rows


@pytest.mark.parametrize("name", ["ta", "alpha158", "alpha360"])
def test_the_doc_gives_every_features_expression(name: str) -> None:
    rows = table_rows()
    for feature in feature_set("stocks_daily", name).features:
        assert feature.expression is not None
        match = re.fullmatch(r"([A-Z_0-9]*?[A-Z_])(\d*)", feature.name)
        assert match is not None
        family, number = match.groups()
        # Its own row, else its family's: Alpha158's `ROC{d}`, Alpha360's `CLOSE59` … `CLOSE0` row.
        spans = rows.get(feature.name) or rows.get(f"{family}{{d}}") or rows.get(f"{family}59") or []
        written = {span.format(d=number, i=number) for span in spans}
        assert feature.expression in written, f"{feature.name}: {feature.expression} is not in {DOC.name}"
