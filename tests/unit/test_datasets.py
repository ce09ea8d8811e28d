"""Contract tests: every registered data type honours the same spec contract (one subclass per type)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

import polars as pl
import pyarrow as pa
import pytest

from quantmini import ConfigurationError
from quantmini.core.qlib_encoding import check_fields
from quantmini.core.quality import market_rules
from quantmini.datasets import DATASETS, DatasetRegistry, DatasetSpec, get_spec
from quantmini.features.library import feature_set
from tests.support.silver_answers import (
    OPTION_TOLERANCES,
    answers_window,
    assert_matches_answers,
    expected_rows,
)

FIXTURES = Path(__file__).parent.parent / "fixtures"

VENDOR_AGG_HEADER = "ticker,volume,open,close,high,low,window_start,transactions"


class DatasetContract:
    """Subclasses set ``name`` and the facts from the vendor's documentation."""

    name: str
    prefix: str
    frequency: str
    is_option: bool

    @pytest.fixture
    def spec(self) -> DatasetSpec:
        return get_spec(self.name)

    def test_registered_under_its_name(self, spec: DatasetSpec) -> None:
        assert spec.name == self.name
        assert DATASETS[self.name] is spec

    def test_source_key_follows_vendor_layout(self, spec: DatasetSpec) -> None:
        assert spec.prefix == self.prefix
        key = spec.source_key(dt.date(2024, 3, 8))
        assert key == f"{self.prefix}/2024/03/2024-03-08.csv.gz"
        assert spec.session_from_key(key) == dt.date(2024, 3, 8)
        assert spec.session_from_key(f"{self.prefix}/2024/04/2024-03-08.csv.gz") is None
        assert spec.session_from_key("other/day_aggs_v1/2024/03/2024-03-08.csv.gz") is None

    def test_csv_header_is_the_vendor_header(self, spec: DatasetSpec) -> None:
        assert ",".join(spec.csv_columns) == VENDOR_AGG_HEADER

    def test_bronze_schema_types(self, spec: DatasetSpec) -> None:
        schema = spec.bronze_schema
        for price in ("open", "high", "low", "close", "volume"):
            assert schema.field(price).type == pa.float64()
        assert schema.field("window_start").type == pa.int64()
        assert schema.field("transactions").type == pa.int64()
        assert schema.field("ts").type == pa.timestamp("ns", tz="America/New_York")
        assert schema.field("session_date").type == pa.date32()
        assert set(spec.key_columns) <= set(schema.names)
        assert set(spec.sort_columns) <= set(schema.names)
        assert spec.sort_columns[0] == "ticker"

    def test_frequency_and_options(self, spec: DatasetSpec) -> None:
        assert spec.frequency == self.frequency
        assert spec.is_option == self.is_option
        option_cols = {"underlying", "expiration", "option_type", "strike"}
        assert (
            option_cols <= set(spec.bronze_schema.names)
            if self.is_option
            else not option_cols & set(spec.bronze_schema.names)
        )
        assert ("regular_session" in spec.bronze_schema.names) == (self.frequency == "1min")

    def test_row_rules_are_declared_for_its_market(self, spec: DatasetSpec) -> None:
        rules = market_rules(spec)
        assert rules.symbol_column == ("underlying" if self.is_option else "ticker")
        assert rules.symbol_column in spec.bronze_schema.names
        assert 0 < rules.min_price < rules.max_price < 3.4e38  # float32's largest value
        assert 0 < rules.max_volume < 3.4e38


class TestStocksDaily(DatasetContract):
    name, prefix, frequency, is_option = "stocks_daily", "us_stocks_sip/day_aggs_v1", "day", False


class TestStocksMinute(DatasetContract):
    name, prefix, frequency, is_option = "stocks_minute", "us_stocks_sip/minute_aggs_v1", "1min", False


class TestOptionsDaily(DatasetContract):
    name, prefix, frequency, is_option = "options_daily", "us_options_opra/day_aggs_v1", "day", True


class TestOptionsMinute(DatasetContract):
    name, prefix, frequency, is_option = "options_minute", "us_options_opra/minute_aggs_v1", "1min", True


def test_every_registered_type_has_a_contract_subclass() -> None:
    covered = {cls.name for cls in DatasetContract.__subclasses__()}
    assert covered == set(DATASETS)


def test_registry_refuses_duplicates_and_names_choices() -> None:
    registry = DatasetRegistry((get_spec("stocks_daily"),))
    with pytest.raises(ConfigurationError, match="already registered"):
        registry.register(get_spec("stocks_daily"))
    with pytest.raises(
        ConfigurationError, match=re.escape("unknown data type 'crypto' (choose one of: stocks_daily)")
    ):
        registry.get_spec("crypto")


class SilverAnswers:
    """Declared silver parts run on committed inputs must give the committed answers.

    ``tests/fixtures/silver/<type>/`` holds the part's inputs and one ``expected_<table>.csv`` per declared
    part, written by the plain-pandas script beside them (layout: :mod:`tests.support.silver_answers`). A
    data type that declares a silver part must commit its answers; parts that need a reference table
    (not an optional one) have their own tests.
    """

    name: str
    #: Float columns compared with another (rtol, atol) than the default.
    tolerances: ClassVar[dict[str, tuple[float, float]]] = {}

    def test_every_declared_part_has_answers_and_matches_them(self) -> None:
        spec = get_spec(self.name)
        for part in spec.silver:
            if part.references:
                continue
            table = part.table(spec.name)
            got = part.transform(answers_window(spec, part))
            expected = expected_rows(table)
            if part.feature_set is not None:  # a feature table answers every feature
                assert set(expected.columns) == set(part.output_schema(spec.bronze_schema).names), table
            assert_matches_answers(got, expected, table, self.tolerances)

    def test_declarations_are_well_formed(self) -> None:
        spec = get_spec(self.name)
        assert len({part.table(spec.name) for part in spec.silver}) == len(spec.silver)
        for part in spec.silver:
            assert callable(part.transform.resolve())
            assert part.lookback >= 0
            assert {"ticker", "session_date"} <= set(part.output_schema(spec.bronze_schema).names)
        for target in spec.gold:
            assert callable(target.frame.resolve())
            assert target.columns[:2] == ("ticker", "session_date")
            assert set(target.columns) <= set(spec.silver_schema.names)
            assert check_fields(target.fields) == target.fields


#: Alpha sets are stored as float32: the result and the answer are each the float64 value rounded to
#: float32, apart by up to a step of it (2^-23 relative) when the float64 values straddle a rounding edge;
#: where the exact value is 0 (a flat window's deviation), the kernels' running sums leave a residue of a
#: few 1e-9, as pandas' do.
FLOAT32_TOLERANCE = (2.0**-22, 1e-7)
#: ``ta`` (float64): the answers' two-pass sums against the kernels' one-pass ones; MACD's EMAs differ
#: by a few 1e-15 of the price where their difference nears 0 (flat prices).
TA_TOLERANCE = (1e-9, 1e-12)


class TestStocksDailySilver(SilverAnswers):
    name = "stocks_daily"
    tolerances: ClassVar[dict[str, tuple[float, float]]] = {
        **dict.fromkeys(feature_set("stocks_daily", "alpha158").names, FLOAT32_TOLERANCE),
        **dict.fromkeys(feature_set("stocks_daily", "alpha360").names, FLOAT32_TOLERANCE),
        **dict.fromkeys(feature_set("stocks_daily", "ta").names, TA_TOLERANCE),
    }


def test_a_minute_vwap_on_a_session_without_a_daily_bar_changes_no_alpha360_value() -> None:
    spec = get_spec("stocks_daily")
    part = next(p for p in spec.silver if p.feature_set == "alpha360")
    window = answers_window(spec, part)
    # BBB's halt in the answers fixture: sessions of the last 60 without a BBB bar.
    traded = set(window.bars.filter(pl.col("ticker") == "BBB")["session_date"].to_list())
    halted = [day for day in window.sessions[-60:] if day not in traded]
    assert halted
    rollups = window.inputs["stocks_minute_rollups"]
    extra = pl.DataFrame({"ticker": "BBB", "session_date": halted, "vwap": 80.0}, schema=rollups.schema)
    got = part.transform(replace(window, inputs={"stocks_minute_rollups": pl.concat([rollups, extra])}))
    table = part.table(spec.name)
    assert_matches_answers(got, expected_rows(table), table, TestStocksDailySilver.tolerances)


class TestStocksMinuteSilver(SilverAnswers):
    name = "stocks_minute"


class TestOptionsDailySilver(SilverAnswers):
    name = "options_daily"
    tolerances = OPTION_TOLERANCES


class TestOptionsMinuteSilver(SilverAnswers):
    name = "options_minute"
    tolerances = OPTION_TOLERANCES


def test_every_type_with_silver_or_gold_has_an_answers_subclass() -> None:
    covered = {cls.name for cls in SilverAnswers.__subclasses__()}
    assert covered == {name for name, spec in DATASETS.items() if spec.silver or spec.gold}
