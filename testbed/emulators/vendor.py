"""What the Harbor, Quay and ACR emulators share: a vendor API served on loopback over the
real registry (:class:`~testbed.emulators.Upstream`), answers, a log of calls, Basic users.

They are apart from :class:`testbed.emulators.RestEmulator` (GitHub, Docker Hub) because these
APIs decide per route from the request's headers (a Harbor role, a Quay token's scopes, an ACR
token's grants) and log the authorization scheme, which that base does not hand to a route.
Both bases share their serving (:class:`~testbed.servers.LoopbackService`) and their upstream.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from testbed.emulators import Upstream
from testbed.servers import LoopbackService


@dataclass(frozen=True)
class ApiAnswer:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


def json_answer(status: int, doc: Any, *headers: tuple[str, str]) -> ApiAnswer:
    return ApiAnswer(status, json.dumps(doc).encode(), (("Content-Type", "application/json"), *headers))


@dataclass(frozen=True)
class ApiCall:
    """One request the emulator received: raw path (as sent, still encoded), no credentials."""

    method: str
    raw_path: str
    query: str
    auth: str  # "basic", "bearer" or "" (the scheme only)
    status: int


class VendorApiEmulator(LoopbackService):
    """A vendor REST API on a free loopback port over :class:`~testbed.emulators.Upstream`; subclasses route.

    ``deleted`` holds the repositories deleted through the API: they disappear from the
    emulator's listings until something is pushed there again.
    """

    service_name = "vendor-api"

    def __init__(self, upstream_url: str) -> None:
        self.upstream = Upstream(upstream_url)
        self.deleted: set[str] = set()
        # Untagged manifests a test pushed and told about: Distribution cannot list them, the
        # vendor's own database can (Harbor artifacts, ACR manifests).
        self.untagged: dict[str, set[str]] = {}
        self.calls: list[ApiCall] = []
        self._lock = threading.Lock()

    def closed(self) -> None:
        self.upstream.close()

    def requests(self, method: str | None = None, path: str = ".*") -> list[ApiCall]:
        with self._lock:
            return [c for c in self.calls if method in (None, c.method) and re.fullmatch(path, c.raw_path)]

    def visible(self, prefix: str) -> list[str]:
        """Upstream repositories under ``prefix``, minus deleted ones that stayed empty."""
        names = [n for n in self.upstream.catalog() if n.startswith(prefix)]
        return sorted(n for n in names if n not in self.deleted or self.upstream.tags(n))

    def remember_untagged(self, repo: str, digest: str) -> None:
        with self._lock:
            self.untagged.setdefault(repo, set()).add(digest)

    def manifest_count(self, repo: str) -> int:
        """Distinct manifests of ``repo``: those its tags name, and remembered untagged ones still there."""
        digests = set(self.upstream.tagged(repo))
        with self._lock:
            extra = set(self.untagged.get(repo, ())) - digests
        return len(digests) + sum(1 for d in extra if self.upstream.exists(repo, d))

    def remove(self, repo: str) -> tuple[list[str], list[str]]:
        """Delete ``repo`` as the vendor does: everything in it, then the repository."""
        gone = self.upstream.delete_all(repo, tuple(sorted(self.untagged.get(repo, ()))))
        with self._lock:
            self.deleted.add(repo)
        return gone

    def handle(self, method: str, raw_path: str, query: dict[str, list[str]], headers: Mapping[str, str]) -> ApiAnswer:
        raise NotImplementedError

    def _record(self, call: ApiCall) -> None:
        with self._lock:
            self.calls.append(call)


def basic_user(headers: Mapping[str, str]) -> tuple[str, str] | None:
    """(user, password) of a Basic ``Authorization``, or None."""
    value = headers.get("authorization", "")
    if not value.lower().startswith("basic "):
        return None
    try:
        user, sep, password = base64.b64decode(value[6:].strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: VendorApiEmulator

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        split = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            answer = self.owner.handle(self.command, split.path, parse_qs(split.query), headers)
        except Exception as exc:  # an emulator bug must show as a 500, not a hung client
            answer = json_answer(500, {"errors": [{"code": "UNKNOWN", "message": f"emulator: {exc!r}"}]})
        scheme = headers.get("authorization", "").split(" ", 1)[0].lower()
        self.owner._record(ApiCall(self.command, split.path, split.query, scheme, answer.status))
        self.send_response(answer.status)
        for k, v in answer.headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)

    do_GET = do_HEAD = do_DELETE = do_POST = do_PUT = _serve


VendorApiEmulator.handler = _Handler  # defined after the emulator it serves

__all__ = ["ApiAnswer", "ApiCall", "VendorApiEmulator", "basic_user", "json_answer"]
