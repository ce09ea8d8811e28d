"""A real S3 endpoint on 127.0.0.1 (moto in server mode) behind a small fault-injecting HTTP proxy.

The proxy forwards every request to moto and records it; scripted rules replace a matching request's
answer with an error status (e.g. 503, 429 with Retry-After, 403), cut the connection after some body
bytes, or stall after some body bytes until the test releases the connection (so a test can kill a client
mid-download at a known byte, however fast or slow the machine). Everything listens on loopback only and
stops when the test session ends.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

BUCKET = "flatfiles"
ACCESS_KEY = "test-access-key"
SECRET_KEY = "test-secret-key"
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-connection",
}


@dataclass
class Rule:
    """Replace the answer of the next ``times`` requests whose method and path match."""

    method: str
    path_contains: str
    action: str  # "status" | "drop" | "stall"
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1
    after_bytes: int = 0  # drop / stall: body bytes sent before the connection is cut / held
    stall_limit: float = 60.0  # stall: seconds to hold at most when nobody releases the connection

    def matches(self, method: str, path: str) -> bool:
        return self.times > 0 and method == self.method and self.path_contains in path


@dataclass(frozen=True)
class Seen:
    """A request the proxy received."""

    method: str
    path: str
    headers: dict[str, str]


class FaultProxy:
    """The proxy: ``rules`` are consulted in order; ``seen`` records every request."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.rules: list[Rule] = []
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _handle(self) -> None:
                proxy._serve(self)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _handle  # noqa: N815

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        """Forget rules and requests, and let stalled connections end."""
        with self._lock:
            self.rules.clear()
            self.seen.clear()
        self._release.set()
        self._release = threading.Event()

    def object_gets(self) -> list[Seen]:
        """GET requests for objects (not listings)."""
        return [s for s in self.seen if s.method == "GET" and "list-type" not in s.path]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _take_rule(self, method: str, path: str) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.matches(method, path):
                    rule.times -= 1
                    return rule
        return None

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        method, path = handler.command, handler.path
        headers = dict(handler.headers.items())
        length = int(headers.get("Content-Length", 0) or 0)
        body = handler.rfile.read(length) if length else b""
        with self._lock:
            self.seen.append(Seen(method, path, {k.lower(): v for k, v in headers.items()}))
        rule = self._take_rule(method, path)
        if rule is not None and rule.action == "status":
            self._send_error(handler, rule)
            return
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=30)
        try:
            forward = {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP}
            conn.request(method, path, body=body, headers=forward)
            answer = conn.getresponse()
            payload = answer.read()
            handler.send_response(answer.status, answer.reason)
            for key, value in answer.getheaders():
                if key.lower() not in _HOP_BY_HOP and key.lower() != "content-length":
                    handler.send_header(key, value)
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
        finally:
            conn.close()
        if method == "HEAD":
            return
        if rule is not None and rule.action in ("drop", "stall"):
            handler.wfile.write(payload[: rule.after_bytes])
            handler.wfile.flush()
            if rule.action == "stall":
                self._release.wait(rule.stall_limit)
            handler.close_connection = True
            with contextlib.suppress(OSError):
                handler.connection.shutdown(socket.SHUT_RDWR)
            return
        handler.wfile.write(payload)

    @staticmethod
    def _send_error(handler: BaseHTTPRequestHandler, rule: Rule) -> None:
        codes = {403: "AccessDenied", 429: "SlowDown", 500: "InternalError", 503: "ServiceUnavailable"}
        code = codes.get(rule.status, "Error")
        payload = (
            f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
            f"<Message>injected {rule.status}</Message></Error>"
        ).encode()
        handler.send_response(rule.status)
        for key, value in rule.headers.items():
            handler.send_header(key, value)
        handler.send_header("Content-Type", "application/xml")
        handler.send_header("Content-Length", "0" if handler.command == "HEAD" else str(len(payload)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(payload)


@dataclass
class S3Endpoint:
    """moto + proxy, and a boto3 client talking to moto directly (for seeding and checks)."""

    moto: ThreadedMotoServer
    proxy: FaultProxy
    client: Any


def start_endpoint() -> S3Endpoint:
    """Start moto on a free loopback port, create the bucket, put the proxy in front."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    client = boto3.client(
        "s3",
        endpoint_url=f"http://{host}:{port}",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=BUCKET)
    return S3Endpoint(moto=moto, proxy=FaultProxy(port), client=client)


def stop_endpoint(endpoint: S3Endpoint) -> None:
    """Stop proxy and moto."""
    endpoint.proxy.stop()
    endpoint.moto.stop()
