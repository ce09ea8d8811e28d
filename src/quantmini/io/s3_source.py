"""The vendor's S3-compatible flat-file endpoint as a :class:`~quantmini.io.source.Source`.

One aiobotocore client with a bounded connection pool serves a whole batch of downloads. Each object
streams to a caller-chosen partial file in 1 MiB chunks (constant memory). Transfers resume where they
stopped — within a run after a dropped connection, and across runs after a kill — with a ranged GET
guarded by ``If-Match`` on the ETag the partial bytes came from. Timeouts, connection errors, 5xx and
429 are retried with exponential backoff and full jitter (``Retry-After`` honoured); 403 stops at once.
Retry waits go through a :class:`~quantmini.io.clock.Clock` (the system clock unless one is given).
The endpoint sends no checksums and none are required. The credentials are registered for redaction and
every error message passes through :func:`~quantmini.config.redaction.redact` (a server's error text may
echo the access key id).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import botocore.exceptions
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from quantmini._exceptions import (
    ConfigurationError,
    DownloadError,
    NotEntitledError,
    NotFoundError,
    SourceError,
    StorageError,
)
from quantmini.config.redaction import redact, register_secret
from quantmini.config.settings import Settings
from quantmini.io.clock import SYSTEM_CLOCK, Clock
from quantmini.io.source import FetchJob, FetchResult, SourceObject

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
_TRANSIENT_NETWORK: tuple[type[BaseException], ...] = (
    aiohttp.ClientError,
    asyncio.TimeoutError,
    ConnectionError,
    botocore.exceptions.ConnectionError,
    botocore.exceptions.HTTPClientError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ResponseStreamingError,
    botocore.exceptions.IncompleteReadError,
)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter; ``Retry-After`` wins when the server sends it."""

    attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), 4 * self.max_delay)
        return random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


class _RetryableError(Exception):
    """A transient failure: try again after ``delay`` seconds."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class S3Source:
    """Flat files from an S3-compatible endpoint (path-style by default, as the vendor requires)."""

    def __init__(
        self,
        *,
        endpoint: str,
        bucket: str,
        region: str,
        access_key_id: str,
        secret_access_key: str,
        path_style: bool = True,
        concurrency: int = 4,
        retry: RetryPolicy | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._endpoint = endpoint
        self._clock = clock
        self._bucket = bucket
        self._region = region
        self._credentials = (access_key_id, secret_access_key)
        register_secret(access_key_id)
        register_secret(secret_access_key)
        self._concurrency = concurrency
        self._retry = retry or RetryPolicy()
        self._config = AioConfig(
            region_name=region,
            signature_version="s3v4",
            s3={"addressing_style": "path" if path_style else "virtual"},
            retries={"total_max_attempts": 1},  # retries are ours: we resume, honour Retry-After, stop on 403
            max_pool_connections=concurrency,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Source:
        """Build from settings; missing credentials are a configuration error saying how to set them."""
        creds = settings.credentials
        if creds.s3_access_key_id is None or creds.s3_secret_access_key is None:
            raise ConfigurationError(
                "no S3 credentials: set POLYGON_S3_ACCESS_KEY_ID and POLYGON_S3_SECRET_ACCESS_KEY "
                "(or s3_access_key_id / s3_secret_access_key in credentials.toml), "
                "or pass --source DIR to read a local mirror"
            )
        return cls(
            endpoint=settings.s3.endpoint,
            bucket=settings.s3.bucket,
            region=settings.s3.region,
            access_key_id=creds.s3_access_key_id.get_secret_value(),
            secret_access_key=creds.s3_secret_access_key.get_secret_value(),
            path_style=settings.s3.path_style,
            concurrency=settings.s3.concurrency,
        )

    @property
    def description(self) -> str:
        """Endpoint and bucket (never the credentials)."""
        return f"S3 {self._endpoint} bucket {self._bucket}"

    def _client(self) -> Any:
        return get_session().create_client(
            "s3",
            endpoint_url=self._endpoint,
            region_name=self._region,
            aws_access_key_id=self._credentials[0],
            aws_secret_access_key=self._credentials[1],
            config=self._config,
        )

    # -- listing ---------------------------------------------------------------------------------------

    def list_prefix(self, prefix: str) -> list[SourceObject]:
        """Every object under ``prefix``."""
        return self.list_many([prefix])

    def list_many(self, prefixes: Sequence[str]) -> list[SourceObject]:
        """Every object under any of ``prefixes`` (listed concurrently with one client), sorted by key."""
        return asyncio.run(self._list_many(prefixes))

    async def _list_many(self, prefixes: Sequence[str]) -> list[SourceObject]:
        async with self._client() as client:
            groups = await asyncio.gather(
                *(self._with_retries(f"LIST {p}", self._list, client, p) for p in prefixes)
            )
        return sorted((obj for group in groups for obj in group), key=lambda o: o.key)

    async def _list(self, client: Any, prefix: str) -> list[SourceObject]:
        found: list[SourceObject] = []
        paginator = client.get_paginator("list_objects_v2")
        try:
            async for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    found.append(
                        SourceObject(
                            key=item["Key"],
                            size=int(item["Size"]),
                            etag=str(item.get("ETag", "")) or None,
                            last_modified=item.get("LastModified"),
                        )
                    )
        except botocore.exceptions.ClientError as exc:
            self._raise_for(exc, f"listing {prefix}")
        return found

    def stat(self, key: str) -> SourceObject:
        """HEAD one object."""
        return asyncio.run(self._stat(key))

    async def _stat(self, key: str) -> SourceObject:
        async with self._client() as client:
            obj: SourceObject = await self._with_retries(f"HEAD {key}", self._head, client, key)
            return obj

    async def _head(self, client: Any, key: str) -> SourceObject:
        try:
            head = await client.head_object(Bucket=self._bucket, Key=key)
        except botocore.exceptions.ClientError as exc:
            self._raise_for(exc, key)
        modified = head.get("LastModified")
        return SourceObject(key, int(head["ContentLength"]), head.get("ETag"), modified)

    # -- downloads -------------------------------------------------------------------------------------

    def fetch(self, key: str, dest: Path) -> SourceObject:
        """Download one object to ``dest`` (resuming a partial ``dest`` of the same ETag)."""
        result = self.fetch_many([FetchJob(key, dest, self.stat(key))])[0]
        if isinstance(result.outcome, BaseException):
            raise result.outcome
        return result.outcome

    def fetch_many(
        self,
        jobs: Sequence[FetchJob],
        on_bytes: Callable[[int], None] | None = None,
        on_done: Callable[[FetchResult], None] | None = None,
    ) -> list[FetchResult]:
        """Download every job with bounded concurrency and one client; a failure never stops the others.

        A :class:`NotEntitledError` (403) cancels the jobs not yet started: every other file would fail
        the same way.
        """
        return asyncio.run(self._fetch_many(jobs, on_bytes or (lambda n: None), on_done or (lambda r: None)))

    async def _fetch_many(
        self,
        jobs: Sequence[FetchJob],
        on_bytes: Callable[[int], None],
        on_done: Callable[[FetchResult], None],
    ) -> list[FetchResult]:
        gate = asyncio.Semaphore(self._concurrency)
        stop = asyncio.Event()

        async def one(client: Any, job: FetchJob) -> FetchResult:
            result = await attempt(client, job)
            on_done(result)
            return result

        async def attempt(client: Any, job: FetchJob) -> FetchResult:
            async with gate:
                if stop.is_set():
                    return FetchResult(job, NotEntitledError(f"skipped {job.key}: credentials not entitled"))
                try:
                    obj: SourceObject = await self._with_retries(
                        f"GET {job.key}", self._download, client, job, on_bytes
                    )
                except NotEntitledError as exc:
                    stop.set()
                    return FetchResult(job, exc)
                except (SourceError, StorageError) as exc:
                    return FetchResult(job, exc)
                return FetchResult(job, obj)

        async with self._client() as client:
            return list(await asyncio.gather(*(one(client, job) for job in jobs)))

    async def _download(self, client: Any, job: FetchJob, on_bytes: Callable[[int], None]) -> SourceObject:
        """One attempt: continue ``job.dest`` from its current length when it holds bytes of this ETag."""
        expected = job.expected
        offset = _resume_offset(job.dest, expected)
        if offset == expected.size:
            return expected
        kwargs: dict[str, Any] = {}
        if offset and expected.etag:
            kwargs = {"Range": f"bytes={offset}-", "IfMatch": expected.etag}
        try:
            response = await client.get_object(Bucket=self._bucket, Key=job.key, **kwargs)
        except botocore.exceptions.ClientError as exc:
            if _status(exc) == 412:
                # The object changed since the partial bytes were fetched: start over on the new version.
                _reset_partial(job.dest, None)
                raise _RetryableError(f"{job.key} changed upstream during the download") from exc
            self._raise_for(exc, job.key)
        if offset and response["ResponseMetadata"]["HTTPStatusCode"] != 206:
            offset = 0  # the server ignored the range: rewrite from the start
        total = _total_size(response, offset)
        etag = response.get("ETag") or expected.etag
        if offset == 0:
            _reset_partial(job.dest, etag)
        try:
            with job.dest.open("r+b" if offset else "wb") as fh:
                fh.seek(offset)
                async with response["Body"] as body:
                    while chunk := await body.read(CHUNK_BYTES):
                        fh.write(chunk)
                        on_bytes(len(chunk))
                size = fh.tell()
        except OSError as exc:
            raise StorageError(f"cannot write {job.dest}: {exc.strerror or exc}") from exc
        if size != total:
            raise _RetryableError(f"{job.key}: connection ended at byte {size} of {total}")
        return SourceObject(job.key, size, etag, response.get("LastModified") or expected.last_modified)

    # -- retries and error mapping ---------------------------------------------------------------------

    async def _with_retries(self, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        last = ""
        for attempt in range(1, self._retry.attempts + 1):
            retry_after: float | None = None
            try:
                return await fn(*args)
            except _RetryableError as exc:
                last, retry_after = redact(str(exc)), exc.retry_after
            except _TRANSIENT_NETWORK as exc:
                last = redact(f"{type(exc).__name__}: {exc}")
            if attempt < self._retry.attempts:
                wait = self._retry.delay(attempt, retry_after)
                log.info("%s failed (%s); retry %d in %.1fs", what, last, attempt, wait)
                await self._clock.sleep(wait)
        raise DownloadError(f"{what} failed after {self._retry.attempts} attempts: {last}")

    def _raise_for(self, exc: botocore.exceptions.ClientError, what: str) -> Any:
        status = _status(exc)
        code = exc.response.get("Error", {}).get("Code", "")
        if status == 403:
            raise NotEntitledError(
                redact(
                    f"{what}: the S3 credentials are not entitled to this dataset (HTTP 403 {code} from "
                    f"{self._endpoint}); check that your plan includes flat-file access"
                )
            ) from exc
        if status == 404:
            raise NotFoundError(
                redact(f"{what}: not found at {self._endpoint} ({code or 'HTTP 404'})")
            ) from exc
        if status == 429 or status >= 500:
            raise _RetryableError(f"HTTP {status} {code}", _retry_after(exc, self._clock.time())) from exc
        raise DownloadError(redact(f"{what}: HTTP {status} {code}: {exc}")) from exc


def _status(exc: botocore.exceptions.ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def _retry_after(exc: botocore.exceptions.ClientError, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds, or an HTTP date compared with ``now``)."""
    headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        with contextlib.suppress(TypeError, ValueError):
            when = dt.datetime.strptime(value, "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=dt.UTC)
            return max(0.0, when.timestamp() - now)
    return None


def _total_size(response: dict[str, Any], offset: int) -> int:
    """Full object size: from ``Content-Range`` of a ranged answer, else offset + ``Content-Length``."""
    content_range = str(response.get("ContentRange") or "")
    if "/" in content_range and not content_range.endswith("/*"):
        return int(content_range.rsplit("/", 1)[1])
    return offset + int(response.get("ContentLength", 0))


def _state_path(partial: Path) -> Path:
    return partial.with_name(partial.name + ".json")


def _resume_offset(partial: Path, expected: SourceObject) -> int:
    """Bytes already held for this exact object version (0 when unknown or for another ETag)."""
    try:
        state = json.loads(_state_path(partial).read_text())
        size = partial.stat().st_size
    except (OSError, ValueError):
        return 0
    if not expected.etag or state.get("etag") != expected.etag or size > expected.size:
        return 0
    return size


def _reset_partial(partial: Path, etag: str | None) -> None:
    """Start a partial file afresh for ``etag`` (the sidecar records which version its bytes belong to)."""
    try:
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(b"")
        _state_path(partial).write_text(json.dumps({"etag": etag}))
    except OSError as exc:
        raise StorageError(f"cannot write {partial}: {exc.strerror or exc}") from exc
