"""The REST client against a real HTTP server on 127.0.0.1: auth, pagination, pacing, retries, errors."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from quantmini import (
    ConfigurationError,
    DownloadError,
    NotEntitledError,
    NotFoundError,
    RateLimitedError,
    SourceError,
)
from quantmini.config import load_settings
from quantmini.io.rest_client import RestClient, RetryPolicy, redact_url
from tests.support.paths import VENDOR_FIXTURES
from tests.support.polygon_server import KEY, FakePolygon, Reply, arrivals

FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, max_elapsed=10.0)
#: Fast enough for tests (0.01 s between starts) — pacing itself is measured with a slower rate below.
RATE = 6000.0


def fixture(name: str) -> Any:
    return json.loads((VENDOR_FIXTURES / name).read_text())


@pytest.fixture
def server() -> Iterator[FakePolygon]:
    with FakePolygon(lifetime=30) as running:
        yield running


def client(
    server: FakePolygon, *, rate: float = RATE, retry: RetryPolicy = FAST, key: str = KEY, **kw: Any
) -> RestClient:
    return RestClient(server.base_url, key, requests_per_minute=rate, retry=retry, **kw)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def get(c: RestClient, path: str, **params: Any) -> Any:
    async with c:
        return await c.get_json(path, params)


async def all_pages(c: RestClient, path: str, **params: Any) -> list[Any]:
    async with c:
        return [page async for page in c.pages(path, params)]


def test_key_travels_only_in_the_bearer_header(server: FakePolygon) -> None:
    server.route("/v3/reference/splits", fixture("v3_reference_splits.json"))
    body = run(get(client(server), "/v3/reference/splits", limit=10))
    assert body == fixture("v3_reference_splits.json")
    (seen,) = server.seen
    assert seen.headers["authorization"] == f"Bearer {KEY}"
    assert KEY not in seen.raw_target
    assert seen.query == {"limit": "10"}


def test_pagination_follows_next_url_and_never_puts_the_key_in_it(server: FakePolygon) -> None:
    page1, page2 = fixture("v3_reference_tickers_page1.json"), fixture("v3_reference_tickers_page2.json")
    server.paged("/v3/reference/tickers", [page1, page2])
    pages = run(all_pages(client(server), "/v3/reference/tickers", active=True))
    tickers = [r["ticker"] for page in pages for r in page["results"]]
    assert tickers == [r["ticker"] for r in page1["results"] + page2["results"]]
    first, second = server.requests_to("/v3/reference/tickers")
    assert first.query == {"active": "true"}
    assert second.query == {"cursor": "1"}
    assert all(s.headers["authorization"] == f"Bearer {KEY}" for s in (first, second))


def test_next_url_on_the_vendor_origin_is_rebased_and_an_apikey_in_it_is_dropped(server: FakePolygon) -> None:
    # The fixture's next_url points at https://api.massive.com; a stray apiKey must never be sent anywhere.
    page1 = fixture("v3_reference_tickers_page1.json")
    page1["next_url"] += "&apiKey=LEAKED"
    cursor = page1["next_url"].split("cursor=")[1].split("&")[0]
    answers = {None: page1, cursor: fixture("v3_reference_tickers_page2.json")}
    server.route("/v3/reference/tickers", lambda seen: Reply(body=answers[seen.query.get("cursor")]))
    pages = run(all_pages(client(server), "/v3/reference/tickers"))
    assert len(pages) == 2
    second = server.requests_to("/v3/reference/tickers")[1]
    assert second.query == {"cursor": cursor}
    assert "LEAKED" not in second.raw_target
    assert redact_url("https://x/y?a=1&apiKey=s3cret") == "https://x/y?a=1"


def test_pacing_spaces_request_starts_across_concurrent_calls(server: FakePolygon) -> None:
    server.route("/v1/marketstatus/now", {"market": "open", "serverTime": "2024-01-02T10:00:00-05:00"})
    rate = 600.0  # one start every 60 / 600 = 0.1 s
    starts: list[float] = []
    c = client(server, rate=rate, on_request=lambda _url: starts.append(time.monotonic()))

    async def burst() -> None:
        async with c:
            # Warm-up: the first request also opens the connection, which delays its arrival (not pacing).
            await c.get_json("/v1/marketstatus/now")
            await asyncio.gather(*(c.get_json("/v1/marketstatus/now") for _ in range(6)))

    run(burst())
    client_gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    server_gaps = list(arrivals(server.requests_to("/v1/marketstatus/now")))
    assert len(server_gaps) == len(client_gaps) == 6
    assert min(client_gaps) >= 0.1 - 0.001, client_gaps
    # Arrival times carry a few ms of thread-scheduling noise on top of the paced starts.
    assert min(server_gaps) >= 0.1 - 0.01, server_gaps
    assert (
        server.requests_to("/v1/marketstatus/now")[-1].at - server.requests_to("/v1/marketstatus/now")[0].at
        >= 0.6 - 0.01
    )


def test_429_honours_retry_after_then_succeeds(server: FakePolygon) -> None:
    server.route("/v3/reference/dividends", fixture("v3_reference_dividends.json"))
    limited = {
        "status": "ERROR",
        "request_id": "r",
        "error": "You've exceeded the maximum requests per minute",
    }
    server.script("/v3/reference/dividends", Reply(429, limited, {"Retry-After": "1"}))
    body = run(get(client(server), "/v3/reference/dividends"))
    assert body["results"] == fixture("v3_reference_dividends.json")["results"]
    (gap,) = arrivals(server.requests_to("/v3/reference/dividends"))
    assert gap >= 1.0 - 0.01


def test_5xx_then_success(server: FakePolygon) -> None:
    server.route("/v3/reference/splits", fixture("v3_reference_splits.json"))
    server.script("/v3/reference/splits", Reply(503, raw="busy"), Reply(502, {"status": "ERROR"}))
    body = run(get(client(server), "/v3/reference/splits"))
    assert body["status"] == "OK"
    assert len(server.requests_to("/v3/reference/splits")) == 3


def test_timeout_is_retried(server: FakePolygon) -> None:
    server.route("/v3/reference/splits", fixture("v3_reference_splits.json"))
    server.script("/v3/reference/splits", Reply(200, {"status": "OK"}, delay=0.6))
    body = run(get(client(server, timeout=0.2), "/v3/reference/splits"))
    assert len(body["results"]) == len(fixture("v3_reference_splits.json")["results"])
    assert len(server.requests_to("/v3/reference/splits")) == 2


def test_retries_are_bounded(server: FakePolygon) -> None:
    server.script("/x", *[Reply(500, {"status": "ERROR", "error": "boom"})] * 10)
    with pytest.raises(DownloadError, match="HTTP 500"):
        run(get(client(server), "/x"))
    assert len(server.requests_to("/x")) == FAST.max_attempts

    server.script("/y", *[Reply(429, {"status": "ERROR", "error": "slow down"})] * 10)
    with pytest.raises(RateLimitedError, match="slow down"):
        run(get(client(server), "/y"))
    assert len(server.requests_to("/y")) == FAST.max_attempts


def test_a_retry_after_beyond_the_time_budget_gives_up_at_once(server: FakePolygon) -> None:
    server.script("/z", Reply(429, {"status": "ERROR", "error": "later"}, {"Retry-After": "3600"}))
    started = time.monotonic()
    with pytest.raises(RateLimitedError):
        run(get(client(server), "/z"))
    assert time.monotonic() - started < 5
    assert len(server.requests_to("/z")) == 1


def test_connection_errors_become_download_errors_after_retries() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again below: nothing listens there
    c = RestClient(f"http://127.0.0.1:{port}", KEY, requests_per_minute=RATE, retry=FAST)
    with pytest.raises(DownloadError, match="connection failed") as info:
        run(get(c, "/v3/reference/splits"))
    assert info.value.__cause__ is not None


def test_status_error_with_http_200_is_an_error_and_not_retried(server: FakePolygon) -> None:
    server.route("/v3/reference/splits", {"status": "ERROR", "request_id": "r", "error": "internal hiccup"})
    with pytest.raises(SourceError, match="internal hiccup"):
        run(get(client(server), "/v3/reference/splits"))
    assert len(server.requests_to("/v3/reference/splits")) == 1


def test_delayed_status_is_success(server: FakePolygon) -> None:
    server.route("/v2/aggs/grouped/locale/us/market/stocks/2005-04-04", {"status": "DELAYED", "results": []})
    assert run(get(client(server), "/v2/aggs/grouped/locale/us/market/stocks/2005-04-04"))["results"] == []


def test_401_403_404_are_one_readable_line_each(server: FakePolygon) -> None:
    with pytest.raises(ConfigurationError, match="unknown API key") as unknown:
        run(get(client(server, key="wrong-key-xyz"), "/v3/reference/splits"))
    assert "POLYGON_API_KEY" in str(unknown.value)
    assert "wrong-key-xyz" not in str(unknown.value)

    message = "You are not entitled to this data. Please upgrade your plan at https://massive.com/pricing"
    server.route(
        "/stocks/v1/splits", Reply(403, {"status": "NOT_AUTHORIZED", "request_id": "r", "message": message})
    )
    with pytest.raises(NotEntitledError) as denied:
        run(get(client(server), "/stocks/v1/splits"))
    assert message in str(denied.value)

    with pytest.raises(NotFoundError, match="/v3/reference/tickers/NOPE"):
        run(get(client(server), "/v3/reference/tickers/NOPE"))
    for error in (unknown.value, denied.value):
        assert "\n" not in str(error)


def test_the_key_is_never_logged(server: FakePolygon, caplog: pytest.LogCaptureFixture) -> None:
    server.route("/v3/reference/splits", fixture("v3_reference_splits.json"))
    server.script("/v3/reference/splits", Reply(503, {"status": "ERROR"}))
    with caplog.at_level(logging.DEBUG):
        run(get(client(server), "/v3/reference/splits"))
        with pytest.raises(NotFoundError):
            run(get(client(server), "/missing"))
    assert "GET" in caplog.text
    assert KEY not in caplog.text


@pytest.mark.parametrize(
    ("reply", "error_type"),
    [
        (Reply(403, {"status": "NOT_AUTHORIZED", "message": f"key {KEY} not entitled"}), NotEntitledError),
        (Reply(404, {"status": "NOT_FOUND", "message": f"nothing for {KEY}"}), NotFoundError),
        (Reply(400, {"status": "ERROR", "error": f"?apiKey={KEY} is malformed"}), SourceError),
        (Reply(200, {"status": "ERROR", "error": f"bad key {KEY}"}), SourceError),
        (Reply(503, {"status": "ERROR", "message": f"busy, key {KEY}"}), DownloadError),
    ],
)
def test_errors_never_quote_the_key_a_vendor_body_echoes(
    server: FakePolygon, reply: Reply, error_type: type[SourceError]
) -> None:
    # Without any CLI: the client itself keeps its key out of the messages it raises.
    server.route("/v3/reference/splits", reply)
    with pytest.raises(error_type) as raised:
        run(get(client(server), "/v3/reference/splits"))
    assert KEY not in str(raised.value)
    assert "***" in str(raised.value)


def test_missing_key_is_a_configuration_error_saying_how_to_set_it(tmp_path: Any) -> None:
    settings = load_settings(environ={}, config_dir=tmp_path)
    with pytest.raises(ConfigurationError, match="POLYGON_API_KEY"):
        RestClient.from_settings(settings)
    with pytest.raises(ConfigurationError, match="requests_per_minute"):
        RestClient("http://127.0.0.1:1", KEY, requests_per_minute=0)
