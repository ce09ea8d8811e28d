"""An async, paced, retrying client for the vendor's REST API (Polygon.io / Massive).

* The key travels only in the ``Authorization: Bearer`` header: never in a URL, a log line or an error
  message. ``next_url`` links (which omit the key) are followed with the same header; an ``apiKey`` query
  parameter found in one is dropped, and a link to another origin is re-based onto the configured base URL
  so the key is never sent elsewhere.
* The client registers its key for redaction, and every error message (which may quote a vendor body that
  echoes the key) passes through :func:`~quantmini.config.redaction.redact`.
* Request *starts* are spaced by ``60 / requests_per_minute`` seconds across every concurrent call of one
  client (:class:`Pacer`); retries are paced too. Every wait goes through the client's
  :class:`~quantmini.io.clock.Clock` (the system clock unless one is given), so the schedule can be tested
  on virtual time.
* 429 (honouring ``Retry-After``), 5xx, timeouts and connection errors are retried with exponential
  backoff and jitter, within a bounded number of attempts and a bounded total time (:class:`RetryPolicy`).
* Every JSON body's ``status`` is checked: ``OK``/``DELAYED`` (or no status, as in bare arrays) is success;
  anything else is an error even with HTTP 200.

Errors (see :mod:`quantmini._exceptions`): 401 → :class:`ConfigurationError` (the key itself is wrong,
which only the user's configuration can fix — :class:`NotEntitledError` means a *valid* key without the
plan), 403 → :class:`NotEntitledError` quoting the vendor's message, 404 → :class:`NotFoundError`, 429 after
retries → :class:`RateLimitedError`, 5xx/timeouts after retries → :class:`DownloadError`, anything else →
:class:`SourceError`.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from quantmini._exceptions import (
    ConfigurationError,
    DownloadError,
    NotEntitledError,
    NotFoundError,
    RateLimitedError,
    SourceError,
)
from quantmini.config.redaction import redact, register_secret
from quantmini.config.settings import Settings
from quantmini.io.clock import SYSTEM_CLOCK, Clock

logger = logging.getLogger(__name__)

#: Body ``status`` values that mean success.
SUCCESS_STATUSES = frozenset({"OK", "DELAYED"})
#: How to set the key, quoted by every "no key" / "unknown key" error.
KEY_HELP = (
    'set the environment variable POLYGON_API_KEY or put api_key = "..." in credentials.toml '
    "(in $QUANTMINI_CONFIG_DIR or ~/.config/quantmini)"
)

Params = Mapping[str, str | int | float | bool]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounds of the retry loop: attempts per request, backoff and total time."""

    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 60.0
    max_elapsed: float = 300.0

    def backoff(self, attempt: int) -> float:
        """Delay before retry number ``attempt`` (1-based): exponential, capped, with equal jitter."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


class Pacer:
    """Spaces request starts by ``60 / requests_per_minute`` seconds, shared by concurrent callers."""

    def __init__(self, requests_per_minute: float, clock: Clock = SYSTEM_CLOCK) -> None:
        if requests_per_minute <= 0:
            raise ConfigurationError(f"api.requests_per_minute: {requests_per_minute} must be positive")
        self.interval = 60.0 / requests_per_minute
        self.clock = clock
        self._next_start: float | None = None
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        """Return when the next request may start (holding the slot so callers queue in order)."""
        async with self._lock:
            now = self.clock.monotonic()
            if self._next_start is not None and now < self._next_start:
                await self.clock.sleep(self._next_start - now)
                now = self.clock.monotonic()
            self._next_start = now + self.interval


def redact_url(url: str | httpx.URL) -> str:
    """``url`` with any ``apiKey`` query parameter removed (safe to log or show)."""
    parts = urlsplit(str(url))
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() != "apikey"]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _vendor_message(body: Any, fallback: str) -> str:
    if isinstance(body, Mapping):
        for field in ("message", "error"):
            value = body.get(field)
            if isinstance(value, str) and value:
                return value
    return fallback


def _retry_after(response: httpx.Response, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds, or an HTTP date compared with ``now``)."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - now)


class _RetryableError(Exception):
    """Internal: this attempt failed in a way worth retrying."""

    def __init__(self, error: SourceError, wait: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.wait = wait


class RestClient:
    """Async client for the vendor REST API; use as ``async with RestClient(...) as client``.

    ``transport`` swaps the network for tests (``httpx.MockTransport``); ``clock`` swaps the time that
    pacing, backoff and ``Retry-After`` waits read and sleep on; ``on_request`` is called with the
    redacted URL before each request starts (progress displays).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        requests_per_minute: float = 5.0,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        on_request: Callable[[str], None] | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if not api_key:
            raise ConfigurationError(f"no REST API key: {KEY_HELP}")
        register_secret(api_key)
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.clock = clock
        self.pacer = Pacer(requests_per_minute, clock)
        self.requests_sent = 0
        self._on_request = on_request
        self._http = httpx.AsyncClient(
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
            timeout=httpx.Timeout(timeout),
            transport=transport,
            follow_redirects=False,
        )

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> RestClient:
        """A client on ``settings.api`` with ``settings.credentials.api_key``; a readable error without it."""
        secret = settings.credentials.api_key
        if secret is None or not secret.get_secret_value():
            raise ConfigurationError(f"no REST API key: {KEY_HELP}")
        return cls(
            settings.api.base_url,
            secret.get_secret_value(),
            requests_per_minute=settings.api.requests_per_minute,
            **kwargs,
        )

    async def __aenter__(self) -> RestClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    def url_for(self, path: str, params: Params | None = None) -> str:
        """Absolute URL of ``path`` below the base URL, with ``params`` (never the key)."""
        url = f"{self.base_url}/{path.lstrip('/')}"
        if params:
            query = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in params.items()}
            url = f"{url}?{urlencode(query)}"
        return url

    def follow(self, next_url: str) -> str:
        """The URL to request for a vendor ``next_url``: ``apiKey`` dropped, re-based on our origin."""
        link, base = urlsplit(redact_url(next_url)), urlsplit(self.base_url)
        if (link.scheme, link.netloc) == (base.scheme, base.netloc):
            return urlunsplit(link)
        logger.debug("next_url on another origin %s: re-based onto %s", link.netloc, base.netloc)
        return urlunsplit(base._replace(path=base.path.rstrip("/") + link.path, query=link.query))

    async def get_json(self, path: str, params: Params | None = None) -> Any:
        """GET ``path`` (relative to the base URL) and return the checked, decoded JSON body."""
        return await self.get_url(self.url_for(path, params))

    async def pages(self, path: str, params: Params | None = None) -> AsyncIterator[Any]:
        """Every page of a paginated endpoint, following ``next_url`` until it is absent."""
        url: str | None = self.url_for(path, params)
        while url is not None:
            payload = await self.get_url(url)
            yield payload
            link = payload.get("next_url") if isinstance(payload, Mapping) else None
            url = self.follow(link) if isinstance(link, str) and link else None

    async def get_url(self, url: str) -> Any:
        """GET an absolute URL with pacing and retries; return the checked JSON body."""
        started = self.clock.monotonic()
        shown = redact_url(url)
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._attempt(url, shown)
            except _RetryableError as retry:
                delay = retry.wait if retry.wait is not None else self.retry.backoff(attempt)
                elapsed = self.clock.monotonic() - started
                if attempt >= self.retry.max_attempts or elapsed + delay > self.retry.max_elapsed:
                    raise retry.error from retry.error.__cause__
                logger.warning(
                    "%s (attempt %d/%d); retrying in %.1fs", retry, attempt, self.retry.max_attempts, delay
                )
                await self.clock.sleep(delay)

    async def _attempt(self, url: str, shown: str) -> Any:
        await self.pacer.wait()
        self.requests_sent += 1
        if self._on_request is not None:
            self._on_request(shown)
        logger.debug("GET %s", shown)
        try:
            response = await self._http.get(url)
        except httpx.TimeoutException as exc:
            raise _RetryableError(
                _chain(DownloadError(f"GET {shown}: timed out ({type(exc).__name__})"), exc)
            ) from exc
        except httpx.TransportError as exc:
            raise _RetryableError(
                _chain(DownloadError(redact(f"GET {shown}: connection failed ({exc})")), exc)
            ) from exc
        except httpx.HTTPError as exc:
            raise SourceError(redact(f"GET {shown}: {exc}")) from exc
        return self._checked(response, shown)

    def _checked(self, response: httpx.Response, shown: str) -> Any:
        code = response.status_code
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        message = redact(_vendor_message(body, response.reason_phrase or f"HTTP {code}"))
        if code == 429:
            error = RateLimitedError(f"GET {shown}: rate limited (HTTP 429): {message}")
            raise _RetryableError(error, _retry_after(response, self.clock.time()))
        if code >= 500:
            raise _RetryableError(DownloadError(f"GET {shown}: server error HTTP {code}: {message}"))
        if code == 401:
            raise ConfigurationError(f"unknown API key (HTTP 401 from {shown}): {KEY_HELP}")
        if code == 403:
            raise NotEntitledError(f"not entitled (HTTP 403) to {shown}: {message}")
        if code == 404:
            raise NotFoundError(f"not found (HTTP 404): {shown}: {message}")
        if code >= 300:
            raise SourceError(f"GET {shown}: HTTP {code}: {message}")
        if body is None:
            raise SourceError(f"GET {shown}: response is not JSON")
        status = body.get("status") if isinstance(body, Mapping) else None
        if status is not None and status not in SUCCESS_STATUSES:
            text = redact(f"GET {shown}: vendor status {status!r}: {_vendor_message(body, str(status))}")
            if status == "NOT_AUTHORIZED":
                raise NotEntitledError(text)
            if status == "NOT_FOUND":
                raise NotFoundError(text)
            raise SourceError(text)
        return body


def _chain(error: SourceError, cause: BaseException) -> SourceError:
    error.__cause__ = cause
    return error
