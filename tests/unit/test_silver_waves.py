"""Silver parts that read other silver tables of their own type run in later waves; cycles are refused;
settings keys resolve to JSON-compatible values."""

from __future__ import annotations

import dataclasses

import pytest

from quantmini._exceptions import ConfigurationError
from quantmini.config.settings import OptionsSettings, Settings
from quantmini.datasets import DATASETS, get_spec
from quantmini.datasets.base import Ref, SilverInput, SilverPart
from quantmini.pipeline.silver import setting_value, silver_waves

NOOP = Ref("builtins:len")


def _part(name: str | None, *reads: str) -> SilverPart:
    return SilverPart(NOOP, 0, name=name, inputs=tuple(SilverInput(t, layer="silver") for t in reads))


def test_parts_reading_their_own_tables_come_after_them() -> None:
    spec = dataclasses.replace(
        get_spec("options_daily"),
        silver=(
            _part("summary", "options_daily", "detail"),
            _part(None),
            _part("detail", "options_daily"),
            _part("other", "stocks_minute_rollups"),  # another type's table: already there, wave 0
        ),
    )
    assert silver_waves(spec) == [[1, 3], [2], [0]]


def test_a_cycle_is_a_configuration_error() -> None:
    spec = dataclasses.replace(get_spec("options_daily"), silver=(_part("a", "b"), _part("b", "a")))
    with pytest.raises(ConfigurationError, match="cycle"):
        silver_waves(spec)


def test_the_declared_types_build_options_aggregates_after_the_contracts() -> None:
    assert silver_waves(get_spec("options_daily")) == [[0], [1]]
    assert silver_waves(get_spec("stocks_daily")) == [[0, 1, 2, 3, 4, 5, 6]]


def test_setting_values_are_plain_data() -> None:
    settings = Settings(options=OptionsSettings(risk_free_rate=0.05, dividend_yields={"SPX": 0.013}))
    assert setting_value(settings, "options.risk_free_rate") == 0.05
    assert setting_value(settings, "options.dividend_yields") == {"SPX": 0.013}
    assert setting_value(settings, "options") == {
        "risk_free_rate": 0.05,
        "dividend_yield": 0.0,
        "dividend_yields": {"SPX": 0.013},
        "minute_iv": False,
    }


def test_a_silver_table_is_found_by_name_across_data_types() -> None:
    spec, part = DATASETS.silver_table("stocks_minute_rollups")
    assert (spec.name, part.name) == ("stocks_minute", "stocks_minute_rollups")
    assert DATASETS.silver_table("options_daily")[1] is get_spec("options_daily").main_silver
    with pytest.raises(ConfigurationError, match="no data type declares the silver table 'nope'"):
        DATASETS.silver_table("nope")
