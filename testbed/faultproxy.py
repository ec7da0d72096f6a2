"""A fault-injecting HTTP proxy on loopback, in front of a real registry.

The collector talks to the proxy as if it were the registry; the proxy forwards every
request to the real Distribution registry behind it, except when a programmed
:class:`Fault` (:mod:`testbed.registryfaults`) matches (method and path regular expression,
N times or forever). Then it answers 5xx or 429 (with or without ``Retry-After``), resets
the connection (TCP RST, before or after the registry acted), answers slower than the
client's timeout, cuts the body short, replaces it with something that is not JSON, drops
or falsifies ``Docker-Content-Digest``, streams an enormous body, or redirects to another
origin.
Every fault that fires is counted by kind in :attr:`FaultProxy.injected`, and every request
is logged (with whether it carried ``Authorization``), so tests can bound retries and prove
credentials never crossed to another host.

    with FaultProxy(registry.url) as proxy:
        proxy.add(Fault("status", "GET", r"/v2/.*/tags/list", status=503, times=2))
        world.run(REGISTRY_ADDRESS=proxy.address, ...)
        assert proxy.injected["http_503"] == 2
"""

from __future__ import annotations

import hashlib
import re
import socket
import ssl
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from testbed.registryfaults import KINDS, Fault, Forward, Intercept, Reply, Seen, error_body, huge_catalog
from testbed.servers import LoopbackService, QuietHTTPServer

__all__ = ["KINDS", "Fault", "FaultProxy", "Forward", "Intercept", "Reply", "Seen", "error_body", "huge_catalog",
           "proxy"]

_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host",
        "proxy-connection", "te", "upgrade", "accept-encoding"}


@dataclass(eq=False)
class FaultProxy(LoopbackService):
    """Serve on 127.0.0.1 (a free port) and forward to ``upstream`` (a base URL)."""

    service_name = "faultproxy"

    upstream: str
    ca_file: str | None = None
    faults: list[Fault] = field(default_factory=list)
    log: list[Seen] = field(default_factory=list)
    injected: Counter[str] = field(default_factory=Counter)
    intercept: Intercept | None = None  # wraps every forward (the soak checks DELETEs there)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        verify: Any = ssl.create_default_context(cafile=self.ca_file) if self.ca_file else True
        self._client = httpx.Client(base_url=self.upstream, verify=verify, timeout=30.0,
                                    limits=httpx.Limits(max_connections=64))

    # --- control (start, stop, address, url: LoopbackService) ---------------------------------

    def closed(self) -> None:
        self._client.close()

    def add(self, *faults: Fault) -> None:
        with self._lock:
            self.faults.extend(faults)

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()

    def requests(self, method: str | None = None, path: str = ".*") -> list[Seen]:
        with self._lock:
            return [s for s in self.log if method in (None, s.method) and re.fullmatch(path, s.path)]

    # --- internals -----------------------------------------------------------------------

    def _match(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if (fault.times is None or fault.hits < fault.times) and fault.method in ("*", method) \
                        and re.fullmatch(fault.path, path):
                    fault.hits += 1
                    self.injected[fault.label] += 1
                    return fault
        return None

    def _record(self, method: str, path: str, query: str, status: int, auth: bool, fault: Fault | None) -> None:
        with self._lock:
            self.log.append(Seen(method, path, query, status, auth, fault.label if fault else None, time.time()))

    def forward(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        sent = {k: v for k, v in headers.items() if k.lower() not in _HOP}
        sent["Accept-Encoding"] = "identity"
        try:
            r = self._client.request(method, target, headers=sent, content=body or None)
        except httpx.HTTPError as exc:
            return Reply(502, [("Content-Type", "text/plain")], f"proxy: upstream failed: {exc}".encode())
        out = [(k, v) for k, v in r.headers.multi_items() if k.lower() not in _HOP]
        if method == "HEAD" and "content-length" in r.headers:  # a HEAD's length is the GET body's
            out.append(("Content-Length", r.headers["content-length"]))
        return Reply(r.status_code, out, r.content)


class _Server(QuietHTTPServer):
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up (timeouts, a body too large) are the point of these tests


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60
    disable_nagle_algorithm = True
    owner: FaultProxy

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reset(self) -> None:
        """Close with a TCP RST (SO_LINGER 0): the client sees 'connection reset by peer'."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True
        try:
            self.connection.close()
        except OSError:
            pass

    def _send(self, reply: Reply, *, cut: bool = False) -> None:
        self.send_response(reply.status)
        for k, v in reply.headers:
            self.send_header(k, v)
        if not (self.command == "HEAD" and any(k.lower() == "content-length" for k, _ in reply.headers)):
            self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if cut:  # half the body, then hang up: the client must not take it for a whole answer
            self.wfile.write(reply.body[: len(reply.body) // 2])
            self.wfile.flush()
            self._reset()
            return
        self.wfile.write(reply.body)

    def _handle(self) -> None:
        proxy = self.owner
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        auth = self.headers.get("Authorization") is not None
        fault = proxy._match(self.command, url.path)
        headers = {k: v for k, v in self.headers.items()}

        def forward() -> Reply:
            return proxy.forward(self.command, self.path, headers, body)

        def upstream() -> Reply:
            if proxy.intercept is not None:
                return proxy.intercept(self.command, url.path, forward)
            return forward()

        kind = fault.kind if fault else None
        if fault is not None and not fault.after and kind in ("reset", "slow"):
            if kind == "reset":
                proxy._record(self.command, url.path, url.query, 0, auth, fault)
                return self._reset()
            time.sleep(fault.delay)
        if fault is not None and kind == "status":
            extra = [("Retry-After", fault.retry_after)] if fault.retry_after is not None else []
            reply = Reply(fault.status, [("Content-Type", "application/json"), *extra], error_body(fault.status))
            proxy._record(self.command, url.path, url.query, reply.status, auth, fault)
            return self._send(reply)
        if fault is not None and kind == "redirect":
            target = fault.location.rstrip("/") + self.path
            reply = Reply(307, [("Location", target)], b"")
            proxy._record(self.command, url.path, url.query, 307, auth, fault)
            return self._send(reply)
        if fault is not None and kind == "huge":
            size, chunks = huge_catalog(fault.size)
            proxy._record(self.command, url.path, url.query, 200, auth, fault)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            try:
                for chunk in chunks:
                    self.wfile.write(chunk)
            except OSError:
                self.close_connection = True
            return
        reply = upstream()
        if fault is not None and fault.after and kind == "reset":
            proxy._record(self.command, url.path, url.query, 0, auth, fault)
            return self._reset()
        if fault is not None and fault.after and kind == "slow":
            time.sleep(fault.delay)
        if fault is not None and kind == "garbage":
            reply.body = b"<html><body>502 Bad Gateway (not JSON)</body></html>"
        elif fault is not None and kind == "no_digest":
            reply.headers = [(k, v) for k, v in reply.headers if k.lower() != "docker-content-digest"]
        elif fault is not None and kind == "wrong_digest":
            wrong = "sha256:" + hashlib.sha256(reply.body + b"tampered").hexdigest()
            reply.headers = [(k, v) for k, v in reply.headers if k.lower() != "docker-content-digest"]
            reply.headers.append(("Docker-Content-Digest", wrong))
        proxy._record(self.command, url.path, url.query, reply.status, auth, fault)
        try:
            self._send(reply, cut=kind == "truncate")
        except OSError:
            self.close_connection = True

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


FaultProxy.handler, FaultProxy.server_class = _Handler, _Server  # defined after the proxy they serve


@pytest.fixture
def proxy(registry: Any, figures: Any) -> Iterator[FaultProxy]:
    """A fault proxy in front of the session's real registry; its faults go into the figures."""
    with FaultProxy(registry.url) as p:
        yield p
        figures.add_faults(p.injected)

