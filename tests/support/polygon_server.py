"""A real HTTP server on 127.0.0.1 that answers like the vendor's REST API, with scripted faults.

Routes map a path to a JSON body (served as is) or to a handler ``(Seen) -> Reply``; ``script`` queues
replies (429, 5xx, slow answers …) served before the route. Every request is recorded with its arrival
time. The server runs in a daemon thread, refuses to run longer than ``lifetime`` seconds, and binds to
127.0.0.1 only: nothing leaves the machine.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

KEY = "test-key-5f0c1d"


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    at: float
    path: str
    query: dict[str, str]
    raw_target: str
    headers: dict[str, str]


@dataclass(frozen=True)
class Reply:
    """A scripted answer: status, JSON body (or raw text), headers and an optional delay."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    raw: str | None = None


Handler = Callable[[Seen], Reply]


class FakePolygon:
    """The local vendor; use as a context manager. ``base_url`` is where it listens."""

    def __init__(self, *, key: str | None = KEY, lifetime: float = 60.0) -> None:
        self.key = key
        self.lifetime = lifetime
        self.routes: dict[str, Handler] = {}
        self.faults: dict[str, deque[Reply]] = defaultdict(deque)
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.daemon = True
        self._stopper = threading.Timer(lifetime, self._server.shutdown)
        self._stopper.daemon = True

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakePolygon:
        self._thread.start()
        self._stopper.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopper.cancel()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # -- configuration -------------------------------------------------------------------------------
    def route(self, path: str, answer: Any) -> None:
        """Serve ``answer`` at ``path``: a handler, a :class:`Reply` or a JSON body."""
        if callable(answer):
            self.routes[path] = answer
        elif isinstance(answer, Reply):
            self.routes[path] = lambda _seen: answer
        else:
            self.routes[path] = lambda _seen: Reply(body=answer)

    def script(self, path: str, *replies: Reply) -> None:
        """Serve ``replies`` (in order) at ``path`` before its route answers again."""
        self.faults[path].extend(replies)

    def paged(self, path: str, pages: list[dict[str, Any]]) -> None:
        """Serve ``pages`` at ``path``, linked by ``next_url`` with a ``cursor`` back to this server."""

        def answer(seen: Seen) -> Reply:
            index = int(seen.query.get("cursor", "0"))
            body = dict(pages[index])
            body.pop("next_url", None)
            if index + 1 < len(pages):
                body["next_url"] = f"{self.base_url}{path}?cursor={index + 1}"
            return Reply(body=body)

        self.routes[path] = answer

    def requests_to(self, path: str) -> list[Seen]:
        """Requests received for ``path``, in arrival order."""
        with self._lock:
            return [s for s in self.seen if s.path == path]

    # -- serving -------------------------------------------------------------------------------------
    def _answer(self, seen: Seen) -> Reply:
        with self._lock:
            self.seen.append(seen)
            queued = self.faults[seen.path].popleft() if self.faults[seen.path] else None
        if queued is not None:
            return queued
        if self.key is not None and seen.headers.get("authorization") != f"Bearer {self.key}":
            return Reply(401, {"status": "ERROR", "request_id": "r", "error": "Unknown API Key"})
        handler = self.routes.get(seen.path)
        if handler is None:
            return Reply(404, {"status": "NOT_FOUND", "request_id": "r", "message": "Not found."})
        return handler(seen)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class _Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                seen = Seen(
                    at=time.monotonic(),
                    path=parts.path,
                    query=dict(parse_qsl(parts.query)),
                    raw_target=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                )
                reply = owner._answer(seen)
                if reply.delay:
                    time.sleep(reply.delay)
                data = (reply.raw if reply.raw is not None else json.dumps(reply.body)).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: tests read ``owner.seen`` instead."""

        return _Handler


def serve_sample(server: FakePolygon, sample: Path) -> None:
    """Serve the sample generator's ``rest/`` responses at their REST paths (legacy endpoints only).

    ``/v3/reference/tickers`` honours ``active=true|false`` like the vendor; the new ``/stocks/v1/*``
    endpoints are not served (404), so pulls fall back to the legacy ones.
    """
    rest = sample / "rest"
    for name in ("splits", "dividends"):
        server.route(f"/v3/reference/{name}", json.loads((rest / f"v3/reference/{name}.json").read_text()))
    tickers = json.loads((rest / "v3/reference/tickers.json").read_text())

    def ticker_list(seen: Seen) -> Reply:
        wanted = seen.query.get("active", "true") == "true"
        results = [r for r in tickers["results"] if r["active"] is wanted]
        return Reply(body={**tickers, "results": results, "count": len(results)})

    server.route("/v3/reference/tickers", ticker_list)
    for events in (rest / "vX/reference/tickers").glob("*/events.json"):
        server.route(f"/vX/reference/tickers/{events.parent.name}/events", json.loads(events.read_text()))


def arrivals(seen: list[Seen]) -> Iterator[float]:
    """Gaps between consecutive arrivals."""
    for earlier, later in itertools.pairwise(seen):
        yield later.at - earlier.at
