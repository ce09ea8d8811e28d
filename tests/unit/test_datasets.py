"""Contract tests: every registered data type honours the same spec contract (one subclass per type)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from quantmini import ConfigurationError
from quantmini.core.qlib_encoding import check_fields
from quantmini.core.quality import market_rules
from quantmini.core.window import FactorContext, SessionWindow
from quantmini.datasets import DATASETS, DatasetRegistry, DatasetSpec, get_spec

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


def _bronze_bars(path: Path, spec: DatasetSpec) -> pl.DataFrame:
    """Committed bars as bronze holds them: the columns cast to the bronze types, and ``ts`` derived
    from the vendor's ``window_start`` (ns since the epoch, UTC) when the file has no ``ts``."""
    bars = pl.read_csv(path, try_parse_dates=True, infer_schema_length=None)
    types = pl.DataFrame(spec.bronze_schema.empty_table()).schema
    if "window_start" in bars.columns and "ts" not in bars.columns:
        utc = pl.from_epoch("window_start", time_unit="ns").dt.replace_time_zone("UTC")
        bars = bars.with_columns(utc.dt.convert_time_zone(spec.bronze_schema.field("ts").type.tz).alias("ts"))
    return bars.cast({name: dtype for name, dtype in types.items() if name in bars.columns})


class SilverAnswers:
    """Declared silver parts run on committed inputs must give the committed answers.

    ``tests/fixtures/silver/<type>/`` holds ``bars.csv`` (raw bars), ``multipliers.csv`` (corporate-action
    multipliers per ticker and session) and one ``expected_<table>.csv`` per declared part, written by the
    plain-pandas script beside them. A data type that declares a silver part must commit its answers.
    """

    name: str

    def test_every_declared_part_has_answers_and_matches_them(self) -> None:
        spec = get_spec(self.name)
        directory = FIXTURES / "silver" / spec.name
        for part in spec.silver:
            table = part.table(spec.name)
            if part.references:  # parts reading reference tables have their own tests (statements)
                continue
            answers = directory / f"expected_{table}.csv"
            assert answers.exists(), f"{spec.name} declares silver {table} but commits no {answers}"
            bars = _bronze_bars(directory / "bars.csv", spec)
            multipliers = pl.read_csv(directory / "multipliers.csv", try_parse_dates=True)
            sessions = tuple(bars["session_date"].unique().sort().to_list())
            window = SessionWindow(
                bars=bars,
                sessions=sessions,
                outputs=sessions,
                factors=FactorContext(multipliers, pl.DataFrame(), pl.DataFrame()),
            )
            got = part.transform(window)
            expected = pl.read_csv(answers, try_parse_dates=True, infer_schema_length=None)
            assert got.height == expected.height, table
            if not expected.height:
                continue
            order = [
                "ticker",
                "session_date",
                *(["window_start"] if "window_start" in expected.columns else []),
            ]
            got = got.select(expected.columns).sort(order)
            expected = expected.sort(order)
            for column in expected.columns:
                if expected.schema[column].is_float():
                    a, b = got[column].to_numpy(), expected[column].cast(pl.Float64).to_numpy()
                    np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=f"{table}.{column}")
                    # atol: a ratio minus 1 near 0 (vwap_dist) keeps the ratio's rounding, ~1e-16 absolute.
                    np.testing.assert_allclose(
                        a[~np.isnan(a)], b[~np.isnan(b)], rtol=1e-12, atol=1e-14, err_msg=column
                    )
                else:
                    assert got[column].to_list() == expected[column].to_list(), f"{table}.{column}"

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


class TestStocksDailySilver(SilverAnswers):
    name = "stocks_daily"


class TestStocksMinuteSilver(SilverAnswers):
    name = "stocks_minute"


def test_every_type_with_silver_or_gold_has_an_answers_subclass() -> None:
    covered = {cls.name for cls in SilverAnswers.__subclasses__()}
    assert covered == {name for name, spec in DATASETS.items() if spec.silver or spec.gold}
