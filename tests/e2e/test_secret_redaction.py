"""Secrets never reach the terminal: a vendor error body echoing the API key, and botocore's ``--debug``
header logs carrying the S3 access key id, run through the CLI against real local servers.

The ``--debug`` runs are subprocesses, so logging is configured by the CLI itself (pytest's log capture
would otherwise own the root logger) and anything the CLI fails to catch would be printed by Python.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from quantmini.cli.main import cli
from quantmini.sample import generate_sample
from tests.support.polygon_server import FakePolygon, Reply, Seen
from tests.support.s3_server import BUCKET, S3Endpoint, start_endpoint, stop_endpoint

API_KEY = "qmEchoedApiKey-9Xw3Lp7Rt2"
S3_KEY_ID = "AKIAQMREDACTIONTEST7"
S3_SECRET = "qmRedaction/Secret+0123456789abcdefghijkl"
NEWS = "/v2/reference/news"
START, END = dt.date(2025, 9, 2), dt.date(2025, 9, 3)


def _received_key(seen: Seen) -> str:
    return seen.headers.get("authorization", "").removeprefix("Bearer ")


def echo_403(seen: Seen) -> Reply:
    """A vendor that quotes the key it received, bare and as a query parameter, in its error body."""
    key = _received_key(seen)
    message = f"Key {key} is not entitled to news; see https://vendor.example/plans?apiKey={key}"
    return Reply(403, {"status": "NOT_AUTHORIZED", "request_id": "r", "message": message})


def echo_status(seen: Seen) -> Reply:
    """HTTP 200 with an error status whose text quotes the key."""
    return Reply(
        200, {"status": "ERROR", "request_id": "r", "error": f"bad request for key {_received_key(seen)}"}
    )


@pytest.fixture
def vendor() -> Iterator[FakePolygon]:
    with FakePolygon(key=API_KEY, lifetime=60) as server:
        yield server


def rest_env(server: FakePolygon) -> dict[str, str]:
    return {
        "POLYGON_API_BASE_URL": server.base_url,
        "POLYGON_API_KEY": API_KEY,
        "QUANTMINI_API_REQUESTS_PER_MINUTE": "6000",
    }


def run_subprocess(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "quantmini", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("handler", "fragment"), [(echo_403, "not entitled (HTTP 403)"), (echo_status, "vendor status 'ERROR'")]
)
def test_an_echoed_api_key_is_not_in_the_error_line(
    vendor: FakePolygon, tmp_path: Path, handler: Callable[[Seen], Reply], fragment: str
) -> None:
    vendor.route(NEWS, handler)
    result = CliRunner().invoke(cli, ["polygon", "news", "--data-root", str(tmp_path)], env=rest_env(vendor))
    assert result.exit_code == 1, result.output
    assert len(vendor.requests_to(NEWS)) == 1  # the server did receive the key and echo it
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    assert fragment in errors[0]
    assert "key ***" in errors[0].lower()
    assert API_KEY not in result.output


@pytest.mark.slow
def test_an_echoed_api_key_is_not_in_the_debug_traceback_or_logs(vendor: FakePolygon, tmp_path: Path) -> None:
    vendor.route(NEWS, echo_403)
    done = run_subprocess(["--debug", "polygon", "news", "--data-root", str(tmp_path)], rest_env(vendor))
    assert done.returncode == 1, done.stderr
    assert len(vendor.requests_to(NEWS)) == 1
    assert "Traceback (most recent call last)" in done.stderr
    assert "NotEntitledError: not entitled (HTTP 403)" in done.stderr
    assert "DEBUG quantmini.io.rest_client: GET" in done.stderr  # debug logging was on
    assert "Key *** is not entitled" in done.stderr
    assert done.stderr.rstrip().splitlines()[-1].startswith("error: not entitled (HTTP 403)")
    assert API_KEY not in done.stdout + done.stderr


def test_an_unexpected_error_is_a_redacted_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    @click.command("boom")
    def boom() -> None:
        raise RuntimeError(f"a library quoted {API_KEY}")

    monkeypatch.setitem(cli.commands, "boom", boom)
    # Nothing loads the settings here: the CLI registers the secret variables when it starts.
    result = CliRunner().invoke(cli, ["boom"], env={"POLYGON_API_KEY": API_KEY})
    assert result.exit_code == 1, result.output
    assert "Traceback (most recent call last)" in result.output
    assert "RuntimeError: a library quoted ***" in result.output
    assert result.output.rstrip().splitlines()[-1] == "error: unexpected RuntimeError: a library quoted ***"
    assert API_KEY not in result.output


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Endpoint]:
    mirror = tmp_path_factory.mktemp("secrets-s3") / "mirror"
    generate_sample(mirror, START, END, tickers=8, seed=11, data_types=("stocks_daily",))
    endpoint = start_endpoint()
    try:
        for path in (mirror / "flatfiles").rglob("*.csv.gz"):
            key = path.relative_to(mirror / "flatfiles").as_posix()
            endpoint.client.put_object(Bucket=BUCKET, Key=key, Body=path.read_bytes())
        yield endpoint
    finally:
        stop_endpoint(endpoint)


@pytest.mark.slow
def test_debug_download_logs_no_s3_credentials(s3: S3Endpoint, tmp_path: Path) -> None:
    env = {
        "POLYGON_S3_ENDPOINT": s3.proxy.url,
        "POLYGON_S3_ACCESS_KEY_ID": S3_KEY_ID,
        "POLYGON_S3_SECRET_ACCESS_KEY": S3_SECRET,
        "DATA_ROOT": str(tmp_path / "lake"),
    }
    args = ["--debug", "data", "download", "--start-date", str(START), "--end-date", str(END)]
    done = run_subprocess(args, env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 landed" in done.stdout
    # The signed requests really went out under this key id, and botocore logged their headers.
    authorizations = [s.headers["authorization"] for s in s3.proxy.seen if "authorization" in s.headers]
    assert authorizations
    assert all(f"Credential={S3_KEY_ID}/" in a for a in authorizations)
    assert "DEBUG botocore.endpoint: Sending http request" in done.stderr
    assert "Credential=***/" in done.stderr
    output = done.stdout + done.stderr
    assert S3_KEY_ID not in output
    assert S3_SECRET not in output
