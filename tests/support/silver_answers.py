"""Committed silver answers: the window a declared part reads from its fixture directory, and the check.

``tests/fixtures/silver/<type>/`` holds, for the parts of that data type:

* ``bars.csv``: the type's bronze rows (cast to the bronze types; ``ts`` derived from ``window_start``);
* ``inputs_<source>.csv``: the bronze rows of each :class:`~quantmini.datasets.base.SilverInput` of layer
  ``bronze``; a silver input reads the committed ``expected_<table>.csv`` of the type that declares that
  table, so answers chain as the tables do;
* ``reference_<name>.csv``: an optional reference table, when the fixture has one;
* ``settings.json``: the values of the parts' settings keys (dotted keys, every key a part reads);
* ``multipliers.csv``: corporate-action multipliers, for parts that use factors;
* ``windows.json``: optional, per silver table, how its window differs from the default one (every
  session of ``bars.csv``, each an output): ``bars`` and ``multipliers`` name other files beside (a table
  that needs a longer history than the others reads its own rows), ``outputs`` lists the output sessions
  (the others are the lookback, as in a pipeline run);
* ``expected_<table>.csv``: the answers, written by the plain-pandas ``make_answers.py`` beside them.

Every CSV is parsed to the types its table declares, so a date, a boolean or an integer column compares
as such.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from quantmini.core.reference import OPTIONS_CONTRACTS_SCHEMA, TICKERS_SCHEMA
from quantmini.core.window import FactorContext, SessionWindow
from quantmini.datasets import DATASETS, DatasetSpec, get_spec
from quantmini.datasets.base import SilverInput, SilverPart

FIXTURES = Path(__file__).parent.parent / "fixtures"
ANSWERS = FIXTURES / "silver"
#: Column types of the reference tables a fixture may commit.
REFERENCE_TYPES: dict[str, Mapping[str, pl.DataType]] = {
    "options_contracts": OPTIONS_CONTRACTS_SCHEMA,
    "tickers": TICKERS_SCHEMA,
}
#: rtol, atol of a float column unless the data type says otherwise (atol: a ratio minus 1 near 0, such as
#: vwap_dist, keeps the ratio's rounding, ~1e-16 absolute).
DEFAULT_TOLERANCE = (1e-12, 1e-14)

#: The solver stops within 1e-7 of the implied vol (the answers' brentq roots are exact to double
#: precision); the greeks move with it: by up to ~1e-7 × vanna for delta and, relatively, ~1e-7 × (their
#: derivative in vol / themselves) ≲ 1e-5 for the others, deep out of the money. Aggregates read the
#: committed per-contract answers, so they keep the default tolerance.
OPTION_TOLERANCES: dict[str, tuple[float, float]] = {
    "iv": (0.0, 1e-7),
    "delta": (0.0, 1e-6),
    "gamma": (1e-5, 0.0),
    "vega": (1e-5, 0.0),
    "theta": (1e-5, 1e-9),  # theta crosses zero (deep in-the-money puts)
}


def polars_types(schema: pa.Schema) -> dict[str, pl.DataType]:
    """The polars type of each field of ``schema``."""
    return dict(pl.DataFrame(schema.empty_table()).schema)


def read_typed_csv(path: Path, types: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """``path`` with each column that ``types`` names parsed as that type (the others inferred)."""
    header = pl.read_csv(path, n_rows=0).columns
    overrides = {name: types[name] for name in header if name in types}
    return pl.read_csv(path, schema_overrides=overrides, infer_schema_length=None, try_parse_dates=True)


def bronze_rows(path: Path, spec: DatasetSpec) -> pl.DataFrame:
    """Committed bars as bronze holds them: the columns cast to the bronze types, and ``ts`` derived
    from the vendor's ``window_start`` (ns since the epoch, UTC) when the file has no ``ts``."""
    bars = read_typed_csv(path, polars_types(spec.bronze_schema))
    if "window_start" in bars.columns and "ts" not in bars.columns:
        utc = pl.from_epoch("window_start", time_unit="ns").dt.replace_time_zone("UTC")
        bars = bars.with_columns(utc.dt.convert_time_zone(spec.bronze_schema.field("ts").type.tz).alias("ts"))
    return bars


def expected_rows(table: str) -> pl.DataFrame:
    """The committed answers of silver ``table``, parsed to the table's declared types."""
    spec, part = DATASETS.silver_table(table)
    path = ANSWERS / spec.name / f"expected_{table}.csv"
    assert path.exists(), f"{spec.name} declares silver {table} but commits no {path}"
    return read_typed_csv(path, polars_types(part.output_schema(spec.bronze_schema)))


def _input_rows(directory: Path, source: SilverInput, sessions: tuple[Any, ...]) -> pl.DataFrame:
    if source.layer == "bronze":
        rows = bronze_rows(directory / f"inputs_{source.source}.csv", get_spec(source.source))
    else:
        rows = expected_rows(source.source)
    if source.columns:
        rows = rows.select(source.columns)
    return rows.filter(pl.col("session_date").is_in(list(sessions)))


def fixture_settings(directory: Path) -> dict[str, Any]:
    """``settings.json`` of a fixture (empty without one); every key must be read by some part."""
    path = directory / "settings.json"
    if not path.exists():
        return {}
    values: dict[str, Any] = json.loads(path.read_text())
    spec = get_spec(directory.name)
    read = {key for part in spec.silver for key in part.settings}
    assert set(values) <= read, f"{path}: keys no part of {spec.name} reads: {sorted(set(values) - read)}"
    return values


def window_layout(directory: Path, table: str) -> dict[str, Any]:
    """The ``windows.json`` entry of ``table`` (empty: the default window)."""
    path = directory / "windows.json"
    if not path.exists():
        return {}
    layouts: dict[str, dict[str, Any]] = json.loads(path.read_text())
    layout = layouts.get(table, {})
    unknown = set(layout) - {"bars", "multipliers", "outputs"}
    assert not unknown, f"{path}: {table} has unknown keys {sorted(unknown)}"
    return layout


def answers_window(
    spec: DatasetSpec, part: SilverPart, settings: Mapping[str, Any] | None = None
) -> SessionWindow:
    """The window ``part`` reads from its fixture directory (``settings`` overrides ``settings.json``)."""
    directory = ANSWERS / spec.name
    layout = window_layout(directory, part.table(spec.name))
    bars = bronze_rows(directory / layout.get("bars", "bars.csv"), spec)
    sessions = tuple(bars["session_date"].unique().sort().to_list())
    outputs = sessions
    if "outputs" in layout:
        outputs = tuple(dt.date.fromisoformat(day) for day in layout["outputs"])
        assert set(outputs) <= set(sessions), f"{directory / 'windows.json'}: outputs outside the bars"
    values = fixture_settings(directory) | dict(settings or {})
    missing = [key for key in part.settings if key not in values]
    assert not missing, f"{directory / 'settings.json'} lacks {missing}, which {part.table(spec.name)} reads"
    references = {}
    for name in part.optional_references:
        path = directory / f"reference_{name}.csv"
        if path.exists():
            references[name] = read_typed_csv(path, REFERENCE_TYPES.get(name, {}))
    factors = None
    if part.factors != "none":
        multipliers = pl.read_csv(
            directory / layout.get("multipliers", "multipliers.csv"), try_parse_dates=True
        )
        if "entity" not in multipliers.columns:  # no renames in the fixture: each ticker is its company
            multipliers = multipliers.with_columns(pl.col("ticker").alias("entity"))
        factors = FactorContext(multipliers, pl.DataFrame(), pl.DataFrame())
    return SessionWindow(
        bars=bars,
        sessions=sessions,
        outputs=outputs,
        references=references,
        factors=factors,
        # As the pipeline reads them: an input's partitions of the output sessions, or of the whole
        # window for a ``window`` input.
        inputs={
            source.source: _input_rows(directory, source, sessions if source.window else outputs)
            for source in part.inputs
        },
        settings={key: values[key] for key in part.settings},
    )


def assert_matches_answers(
    got: pl.DataFrame,
    expected: pl.DataFrame,
    table: str,
    tolerances: Mapping[str, tuple[float, float]] | None = None,
) -> None:
    """``got`` has ``expected``'s rows, and in each of its columns the same type and values: floats
    close (``tolerances``: column → rtol, atol; else :data:`DEFAULT_TOLERANCE`) with NaN/null in the
    same places, anything else equal."""
    assert got.height == expected.height, f"{table}: {got.height} rows, expected {expected.height}"
    if not expected.height:
        return
    order = [
        "ticker",
        "session_date",
        *(["window_start"] if "window_start" in expected.columns else []),
    ]
    got = got.select(expected.columns).sort(order)
    expected = expected.sort(order)
    for column in expected.columns:
        assert got.schema[column] == expected.schema[column], (
            f"{table}.{column}: {got.schema[column]}, expected {expected.schema[column]}"
        )
        if expected.schema[column].is_float():
            a, b = got[column].to_numpy(), expected[column].to_numpy()
            np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=f"{table}.{column}")
            rtol, atol = (tolerances or {}).get(column, DEFAULT_TOLERANCE)
            np.testing.assert_allclose(
                a[~np.isnan(a)], b[~np.isnan(b)], rtol=rtol, atol=atol, err_msg=f"{table}.{column}"
            )
        else:
            assert got[column].to_list() == expected[column].to_list(), f"{table}.{column}"
