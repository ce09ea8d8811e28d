"""Contract tests: every registered data type honours the same spec contract (one subclass per type)."""

from __future__ import annotations

import datetime as dt
import re

import pyarrow as pa
import pytest

from quantmini import ConfigurationError
from quantmini.core.quality import market_rules
from quantmini.datasets import DATASETS, DatasetRegistry, DatasetSpec, get_spec

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
