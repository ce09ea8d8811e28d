"""The REST client against a real HTTP server on 127.0.0.1: auth, pagination, pacing, retries, errors.

Clients run on a :class:`VirtualClock`: pacing and retry tests assert the schedule of waits the client
asked for, never wall-clock gaps.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import socket
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
from tests.support.clock import WALL_START, VirtualClock
from tests.support.paths import rest_fixture
from tests.support.polygon_server import KEY, FakePolygon, Reply

FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, max_elapsed=10.0)
#: 0.0001 s between starts, below the smallest backoff (0.005 s): the pacer never adds a wait to a retry.
#: Pacing itself is checked with a slower rate below.
RATE = 600_000.0

fixture = rest_fixture


@pytest.fixture
def server() -> Iterator[FakePolygon]:
    with FakePolygon(lifetime=30) as running:
        yield running


def client(
    server: FakePolygon,
    *,
    rate: float = RATE,
    retry: RetryPolicy = FAST,
    key: str = KEY,
    clock: VirtualClock | None = None,
    **kw: Any,
) -> RestClient:
    return RestClient(
        server.base_url, key, requests_per_minute=rate, retry=retry, clock=clock or VirtualClock(), **kw
    )


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
    clock = VirtualClock()
    starts: list[float] = []
    c = client(server, rate=rate, clock=clock, on_request=lambda _url: starts.append(clock.elapsed()))

    async def burst() -> None:
        async with c:
            await c.get_json("/v1/marketstatus/now")
            await asyncio.gather(*(c.get_json("/v1/marketstatus/now") for _ in range(6)))

    run(burst())
    # Round trips take no virtual time: the first request starts at once, each of the six concurrent ones
    # waits a full interval after the one before it, so starts are 0, 0.1, …, 0.6 s.
    assert clock.sleeps == pytest.approx([0.1] * 6)
    assert starts == pytest.approx([0.1 * i for i in range(7)])
    assert len(server.requests_to("/v1/marketstatus/now")) == 7


def test_429_honours_retry_after_then_succeeds(server: FakePolygon) -> None:
    server.route("/v3/reference/dividends", fixture("v3_reference_dividends.json"))
    limited = {
        "status": "ERROR",
        "request_id": "r",
        "error": "You've exceeded the maximum requests per minute",
    }
    server.script("/v3/reference/dividends", Reply(429, limited, {"Retry-After": "1"}))
    clock = VirtualClock()
    body = run(get(client(server, clock=clock), "/v3/reference/dividends"))
    assert body["results"] == fixture("v3_reference_dividends.json")["results"]
    assert len(server.requests_to("/v3/reference/dividends")) == 2
    # Retry-After (1 s) replaces the backoff; the pacing interval has long passed by then.
    assert clock.sleeps == [1.0]


def test_429_with_an_http_date_waits_until_that_date(server: FakePolygon) -> None:
    server.route("/v3/reference/splits", fixture("v3_reference_splits.json"))
    later = email.utils.formatdate(WALL_START + 3, usegmt=True)  # three seconds after the clock's "now"
    limited = {"status": "ERROR", "error": "You've exceeded the maximum requests per minute"}
    server.script("/v3/reference/splits", Reply(429, limited, {"Retry-After": later}))
    clock = VirtualClock()
    body = run(get(client(server, clock=clock), "/v3/reference/splits"))
    assert body["status"] == "OK"
    assert clock.sleeps == [3.0]


def test_an_unreadable_retry_after_falls_back_to_the_backoff(server: FakePolygon) -> None:
    server.route("/v3/reference/splits", fixture("v3_reference_splits.json"))
    limited = {"status": "ERROR", "error": "slow down"}
    server.script("/v3/reference/splits", Reply(429, limited, {"Retry-After": "soon"}))
    clock = VirtualClock()
    run(get(client(server, clock=clock), "/v3/reference/splits"))
    (wait,) = clock.sleeps
    assert FAST.base_delay / 2 <= wait <= FAST.base_delay  # first retry: ceiling = base_delay


def test_5xx_then_success(server: FakePolygon) -> None:
    server.route("/v3/reference/splits", fixture("v3_reference_splits.json"))
    server.script("/v3/reference/splits", Reply(503, raw="busy"), Reply(502, {"status": "ERROR"}))
    clock = VirtualClock()
    body = run(get(client(server, clock=clock), "/v3/reference/splits"))
    assert body["status"] == "OK"
    assert len(server.requests_to("/v3/reference/splits")) == 3
    # Equal-jitter backoff: retry n waits within [c/2, c] for c = 0.01 * 2 ** (n - 1).
    first, second = clock.sleeps
    assert 0.005 <= first <= 0.01
    assert 0.01 <= second <= 0.02


def test_timeout_is_retried(server: FakePolygon) -> None:
    # The timeout is the HTTP client's own (real) timer: the slow answer is far beyond it, and the timeout
    # leaves a loaded machine ample time for the second, prompt answer.
    server.route("/v3/reference/splits", fixture("v3_reference_splits.json"))
    server.script("/v3/reference/splits", Reply(200, {"status": "OK"}, delay=5.0))
    body = run(get(client(server, timeout=1.0), "/v3/reference/splits"))
    assert len(body["results"]) == len(fixture("v3_reference_splits.json")["results"])
    assert len(server.requests_to("/v3/reference/splits")) == 2


def test_retries_are_bounded(server: FakePolygon) -> None:
    server.script("/x", *[Reply(500, {"status": "ERROR", "error": "boom"})] * 10)
    clock = VirtualClock()
    with pytest.raises(DownloadError, match="HTTP 500"):
        run(get(client(server, clock=clock), "/x"))
    assert len(server.requests_to("/x")) == FAST.max_attempts
    assert len(clock.sleeps) == FAST.max_attempts - 1  # no wait after the last attempt

    server.script("/y", *[Reply(429, {"status": "ERROR", "error": "slow down"})] * 10)
    with pytest.raises(RateLimitedError, match="slow down"):
        run(get(client(server), "/y"))
    assert len(server.requests_to("/y")) == FAST.max_attempts


def test_a_retry_after_beyond_the_time_budget_gives_up_at_once(server: FakePolygon) -> None:
    server.script("/z", Reply(429, {"status": "ERROR", "error": "later"}, {"Retry-After": "3600"}))
    clock = VirtualClock()
    with pytest.raises(RateLimitedError):
        run(get(client(server, clock=clock), "/z"))
    assert clock.sleeps == []
    assert len(server.requests_to("/z")) == 1


def test_the_time_budget_counts_the_waits_already_spent(server: FakePolygon) -> None:
    # Budget 10 s, Retry-After 4 s: waits at 0 and 4 s are taken; a third would end at 12 s > 10 s.
    busy = Reply(429, {"status": "ERROR", "error": "later"}, {"Retry-After": "4"})
    server.script("/w", *[busy] * 10)
    clock = VirtualClock()
    with pytest.raises(RateLimitedError):
        run(get(client(server, clock=clock), "/w"))
    assert clock.sleeps == [4.0, 4.0]
    assert len(server.requests_to("/w")) == 3


def test_connection_errors_become_download_errors_after_retries() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again below: nothing listens there
    clock = VirtualClock()
    c = RestClient(f"http://127.0.0.1:{port}", KEY, requests_per_minute=RATE, retry=FAST, clock=clock)
    with pytest.raises(DownloadError, match="connection failed") as info:
        run(get(c, "/v3/reference/splits"))
    assert info.value.__cause__ is not None
    assert len(clock.sleeps) == FAST.max_attempts - 1


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
