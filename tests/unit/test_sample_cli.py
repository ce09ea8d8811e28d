"""Sample generator: determinism, argument checks, public surface and the ``sample generate`` command."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import quantmini.sample
from quantmini import ConfigurationError
from quantmini.cli.sample_cmd import sample
from quantmini.sample import SampleSummary, generate_sample

START, END = dt.date(2025, 6, 2), dt.date(2025, 6, 13)


def digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def small(out: Path, seed: int) -> SampleSummary:
    return generate_sample(out, START, END, tickers=8, seed=seed, minute_tickers=3, option_underlyings=2)


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    first, second = small(tmp_path / "a", 1), small(tmp_path / "b", 1)
    assert first.files == second.files
    assert first.rows == second.rows
    a, b = digests(tmp_path / "a"), digests(tmp_path / "b")
    assert a == b
    assert sum(1 for name in a if name.startswith("flatfiles/")) == 4 * 10  # 4 data types, 10 sessions


def test_other_seed_gives_other_data(tmp_path: Path) -> None:
    small(tmp_path / "a", 1)
    small(tmp_path / "b", 2)
    a, b = digests(tmp_path / "a"), digests(tmp_path / "b")
    daily = [k for k in a if "day_aggs_v1" in k and k.startswith("flatfiles/us_stocks")]
    assert daily
    assert all(a[k] != b.get(k) for k in daily)


def test_small_universe_still_carries_every_required_action(tmp_path: Path) -> None:
    summary = small(tmp_path, 0)
    record = json.loads((tmp_path / "sample.json").read_text())
    splits = record["corporate_actions"]["splits"]
    assert {(s["split_from"], s["split_to"]) for s in splits} == {(1, 10), (10, 1)}
    assert record["corporate_actions"]["ticker_changes"]
    assert len(record["corporate_actions"]["dividends"]) >= 3
    assert summary.defects == 3
    assert summary.sessions == 10
    assert {"parameters", "sessions", "files", "corporate_actions", "tickers", "defects"} <= set(record)


def test_only_requested_data_types_are_written(tmp_path: Path) -> None:
    summary = generate_sample(tmp_path, START, END, tickers=8, data_types=("options_daily",))
    assert set(summary.files) == {"options_daily"}
    assert not (tmp_path / "flatfiles/us_stocks_sip").exists()
    assert (tmp_path / "rest/v3/reference/tickers.json").is_file()


@pytest.mark.parametrize(
    "kwargs",
    [{"tickers": 3}, {"data_types": ("stocks_hourly",)}, {"minute_tickers": -1}],
)
def test_bad_arguments_are_configuration_errors(tmp_path: Path, kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        generate_sample(tmp_path, START, END, **kwargs)  # type: ignore[arg-type]


def test_a_range_without_sessions_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no XNYS session"):
        generate_sample(tmp_path, dt.date(2025, 12, 25), dt.date(2025, 12, 25))


def test_public_names_are_sorted_and_exported() -> None:
    assert quantmini.sample.__all__ == sorted(quantmini.sample.__all__)
    assert all(hasattr(quantmini.sample, name) for name in quantmini.sample.__all__)


def test_cli_generate_writes_and_summarises(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        sample,
        [
            "generate",
            "--out",
            str(tmp_path),
            "--start-date",
            "2025-06-02",
            "--end-date",
            "2025-06-06",
            "--tickers",
            "8",
            "--seed",
            "4",
            "--data-type",
            "stocks_daily",
            "--data-type",
            "stocks_minute",
            "--minute-tickers",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "stocks_daily" in result.output
    assert "stocks_minute" in result.output
    assert "defects injected: 3" in result.output
    files = sorted(p.name for p in (tmp_path / "flatfiles/us_stocks_sip/day_aggs_v1").rglob("*.csv.gz"))
    assert files == [f"2025-06-0{d}.csv.gz" for d in range(2, 7)]
    record = json.loads((tmp_path / "sample.json").read_text())
    assert record["parameters"]["seed"] == 4
    assert record["parameters"]["minute_tickers"] == 2


def test_cli_rejects_bad_dates_and_data_types(tmp_path: Path) -> None:
    runner = CliRunner()
    bad_date = runner.invoke(
        sample, ["generate", "--out", str(tmp_path), "--start-date", "2025-13-01", "--end-date", "2025-12-31"]
    )
    assert isinstance(bad_date.exception, ConfigurationError)
    assert "--start-date" in str(bad_date.exception)
    bad_type = runner.invoke(
        sample,
        [
            "generate",
            "--out",
            str(tmp_path),
            "--start-date",
            "2025-06-02",
            "--end-date",
            "2025-06-03",
            "--data-type",
            "stocks_hourly",
        ],
    )
    assert bad_type.exit_code == 2
