"""Every declared column is documented, and stored schemas are compared with the declared ones."""

from __future__ import annotations

import pyarrow as pa
import pytest

from quantmini.datasets import DATASETS
from quantmini.datasets.columns import LAYERS, layer_tables, schema_problems


@pytest.mark.parametrize("data_type", sorted(DATASETS))
@pytest.mark.parametrize("layer", LAYERS)
def test_every_column_of_every_table_has_a_doc(data_type: str, layer: str) -> None:
    tables = layer_tables(DATASETS[data_type], layer)  # type: ignore[arg-type]
    undocumented = [f"{t.name}.{f.name}" for t in tables for f in t.schema if not t.doc(f.name).strip()]
    assert undocumented == []


def test_silver_lists_the_main_table_and_every_declared_part() -> None:
    spec = DATASETS["stocks_daily"]
    names = [t.name for t in layer_tables(spec, "silver")]
    assert names[0] == "stocks_daily"
    assert {"corporate_action_checks", "universes", "stocks_daily_alpha158"} <= set(names)
    main = layer_tables(spec, "silver")[0]
    # A feature column's doc is the feature library's description; a bar column's the shared one.
    assert main.doc("ret_1d") == "total return since the previous session"
    assert main.doc("close") == "last trade price of the bar, unadjusted"
    (gold,) = layer_tables(spec, "gold")
    assert gold.schema.names[:4] == ["$open", "$high", "$low", "$close"]
    assert gold.doc("$factor").startswith("adjusted / raw price")


EXPECTED = pa.schema(
    [
        pa.field("ticker", pa.string(), nullable=False),
        pa.field("close", pa.float64(), nullable=False),
        pa.field("ret", pa.float64()),
    ]
)


def test_a_conforming_schema_has_no_problems() -> None:
    assert schema_problems(EXPECTED, EXPECTED) == []
    # Declared not null in the file where the spec allows nulls: still conforming.
    stricter = EXPECTED.set(2, pa.field("ret", pa.float64(), nullable=False))
    assert schema_problems(stricter, EXPECTED) == []


def test_each_difference_is_one_problem() -> None:
    drifted = pa.schema(
        [
            pa.field("ticker", pa.string()),  # nulls allowed, declared not null
            pa.field("close", pa.float32(), nullable=False),  # type change
            pa.field("extra", pa.int64()),  # drift
        ]
    )  # ret missing
    assert schema_problems(drifted, EXPECTED) == [
        "missing column ret (double)",
        "unexpected column extra (int64)",
        "column ticker allows nulls, declared not null",
        "column close is float, expected double",
    ]


def test_order_counts_only_when_nothing_else_differs() -> None:
    reordered = pa.schema([EXPECTED.field(1), EXPECTED.field(0), EXPECTED.field(2)])
    assert schema_problems(reordered, EXPECTED) == ["columns out of order"]
