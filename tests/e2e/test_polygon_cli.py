"""``quantmini polygon ...`` and ``quantmini api ...`` as a user runs them, against a local vendor server."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner, Result

from quantmini.cli.main import cli
from quantmini.sample import generate_sample
from tests.support.paths import rest_fixture
from tests.support.polygon_server import KEY, FakePolygon, Reply, serve_sample

AGGS = "/v2/aggs/ticker/GADG/range/1/day/2005-04-01/2005-04-04"


@pytest.fixture(scope="module")
def vendor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakePolygon]:
    sample = tmp_path_factory.mktemp("cli-rest")
    generate_sample(
        sample, dt.date(2025, 1, 2), dt.date(2025, 3, 31), tickers=8, seed=3, data_types=["stocks_daily"]
    )
    with FakePolygon(lifetime=60) as server:
        serve_sample(server, sample)
        server.route(AGGS, rest_fixture("v2_aggs_GADG_1day_2005-04-01_2005-04-04.json"))
        server.route("/v3/reference/tickers/GADG", rest_fixture("v3_reference_tickers_GADG.json"))
        yield server


def env(server: FakePolygon, key: str | None = KEY) -> dict[str, str | None]:
    return {
        "POLYGON_API_BASE_URL": server.base_url,
        "POLYGON_API_KEY": key,
        "QUANTMINI_API_REQUESTS_PER_MINUTE": "6000",
    }


def run(server: FakePolygon, *args: str | Path, key: str | None = KEY) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], env=env(server, key), catch_exceptions=True)


def one_error_line(result: Result, fragment: str) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.output
    assert fragment in lines[0]
    return lines[0]


def test_missing_key_says_how_to_set_it(vendor: FakePolygon, tmp_path: Path) -> None:
    result = run(vendor, "polygon", "corporate-actions", "--data-root", tmp_path, key=None)
    line = one_error_line(result, "POLYGON_API_KEY")
    assert "credentials.toml" in line
    assert vendor.requests_to("/v3/reference/splits") == [] or all(
        s.headers.get("authorization") == f"Bearer {KEY}" for s in vendor.requests_to("/v3/reference/splits")
    )


def test_unknown_key_is_one_line_without_the_key(vendor: FakePolygon, tmp_path: Path) -> None:
    result = run(vendor, "polygon", "corporate-actions", "--data-root", tmp_path, key="not-a-real-key-123")
    one_error_line(result, "unknown API key")
    assert "not-a-real-key-123" not in result.output


def test_not_entitled_quotes_the_vendor(vendor: FakePolygon, tmp_path: Path) -> None:
    message = "You are not entitled to this data. Please upgrade your plan at https://massive.com/pricing"
    vendor.script(
        "/v2/reference/news", Reply(403, {"status": "NOT_AUTHORIZED", "request_id": "r", "message": message})
    )
    one_error_line(run(vendor, "polygon", "news", "--data-root", tmp_path), message)


def test_corporate_actions_and_tickers_land_in_the_lake(vendor: FakePolygon, tmp_path: Path) -> None:
    first = run(vendor, "polygon", "corporate-actions", "--data-root", tmp_path)
    assert first.exit_code == 0, first.output
    assert "/v3/reference/splits" in first.output
    splits = pl.read_parquet(tmp_path / "bronze/reference/splits.parquet")
    assert splits.height > 0
    assert "fetched_at" in splits.columns
    again = run(vendor, "polygon", "corporate-actions", "--data-root", tmp_path)
    assert again.exit_code == 0, again.output
    assert pl.read_parquet(tmp_path / "bronze/reference/splits.parquet").height == splits.height

    tickers = run(vendor, "polygon", "tickers", "--data-root", tmp_path, "--ticker", "GADG")
    assert tickers.exit_code == 0, tickers.output
    details = pl.read_parquet(tmp_path / "bronze/reference/ticker_details.parquet")
    assert details["ticker"].to_list() == ["GADG"]


def test_bars_into_the_lake_and_api_bars_into_a_file(vendor: FakePolygon, tmp_path: Path) -> None:
    stored = run(
        vendor,
        "polygon",
        "bars",
        "--data-root",
        tmp_path,
        "--ticker",
        "GADG",
        "--from",
        "2005-04-01",
        "--to",
        "2005-04-04",
    )
    assert stored.exit_code == 0, stored.output
    assert pl.read_parquet(tmp_path / "bronze/reference/bars.parquet").height == 2

    out = tmp_path / "gadg.csv"
    result = run(
        vendor,
        "api",
        "bars",
        "--ticker",
        "GADG",
        "--from",
        "2005-04-01",
        "--to",
        "2005-04-04",
        "--timespan",
        "day",
        "--adjusted",
        "--output",
        out,
    )
    assert result.exit_code == 0, result.output
    frame = pl.read_csv(out)
    assert frame["close"].to_list() == [12.34, 12.5]
    assert vendor.requests_to(AGGS)[-1].query["adjusted"] == "true"


def test_bad_bar_options_are_one_line(vendor: FakePolygon, tmp_path: Path) -> None:
    one_error_line(
        run(vendor, "api", "bars", "--from", "2005-04-01", "--output", tmp_path / "x.csv"), "--grouped"
    )
    one_error_line(
        run(
            vendor,
            "api",
            "bars",
            "--ticker",
            "A",
            "--from",
            "2005-04-04",
            "--to",
            "2005-04-01",
            "--output",
            tmp_path / "x.csv",
        ),
        "before --from",
    )
    one_error_line(
        run(vendor, "api", "bars", "--ticker", "A", "--from", "2005-04-04", "--output", tmp_path / "x.txt"),
        ".parquet",
    )
