"""Emulators of vendors' REST APIs, acting on the real Distribution registry behind them.

A vendor API (GitHub Packages, Docker Hub) is what lists and deletes where the registry API
v2 cannot; its state must never drift from what the registry serves, so an emulator keeps
none of its own beyond what the registry cannot express (a deleted package hidden, a version
id, an untagged digest it was told about) and reads everything else from the real registry
(:class:`Upstream`) on every request. This module holds what both emulators share: a loopback
HTTP server (:class:`~testbed.servers.BackgroundHTTPServer`), JSON answers, a log of every
call (:class:`Call`), rate-limit headers and a programmable ``429`` with ``Retry-After``.

    with GitHubPackagesEmulator(registry.url, token="t", owners={org: "Organization"}) as gh:
        gh.throttle(1, retry_after="0")  # the next request answers 429
        ... REGISTRY_API_URL=gh.url ...
        assert gh.calls_to("DELETE", r"/orgs/.*/versions/\\d+")
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from testbed.images import ALL_MANIFESTS
from testbed.servers import LoopbackService

__all__ = ["Answer", "Call", "RestEmulator", "Upstream", "json_answer"]


@dataclass
class Answer:
    """What the emulator answers: a status, a JSON-able body (None: no body) and headers."""

    status: int
    body: Any = None
    headers: list[tuple[str, str]] = field(default_factory=list)


def json_answer(status: int, body: Any = None, *headers: tuple[str, str]) -> Answer:
    return Answer(status, body, list(headers))


@dataclass(frozen=True)
class Call:
    """One request the emulator answered (``authorization``: whether the header was sent)."""

    method: str
    path: str
    query: str
    status: int
    authorization: bool


class Upstream:
    """The real registry behind an emulator, read and changed through its v2 API directly
    (never through a personality in front). Every emulator of the package reads it."""

    def __init__(self, url: str) -> None:
        self.client = httpx.Client(base_url=url, timeout=30.0)

    def close(self) -> None:
        self.client.close()

    def catalog(self) -> list[str]:
        names: list[str] = []
        url: str | None = "/v2/_catalog?n=1000"
        while url:
            r = self.client.get(url)
            r.raise_for_status()
            names += r.json().get("repositories") or []
            link = re.search(r'<([^>]*)>\s*;\s*rel="?next"?', r.headers.get("Link", ""))
            url = link.group(1) if link else None
        return names

    def tags(self, repo: str) -> list[str]:
        r = self.client.get(f"/v2/{repo}/tags/list")
        return sorted(r.json().get("tags") or ()) if r.status_code == 200 else []

    def digest(self, repo: str, reference: str) -> str | None:
        """The digest ``reference`` names (HEAD with every manifest type accepted), or None."""
        r = self.client.head(f"/v2/{repo}/manifests/{reference}", headers={"Accept": ALL_MANIFESTS})
        return r.headers.get("Docker-Content-Digest") if r.status_code == 200 else None

    def exists(self, repo: str, digest: str) -> bool:
        return self.digest(repo, digest) is not None

    def tagged(self, repo: str, tags: list[str] | None = None) -> dict[str, list[str]]:
        """``{digest: [tag, ...]}`` for ``tags`` (default: every tag of ``repo``)."""
        out: dict[str, list[str]] = {}
        for tag in self.tags(repo) if tags is None else tags:
            digest = self.digest(repo, tag)
            if digest is not None:
                out.setdefault(digest, []).append(tag)
        return out

    def delete(self, repo: str, digest: str) -> int:
        return self.client.delete(f"/v2/{repo}/manifests/{digest}").status_code

    def delete_all(self, repo: str, untagged: tuple[str, ...] = ()) -> tuple[list[str], list[str]]:
        """Delete every tagged manifest of ``repo``, the children of its indexes and ``untagged``,
        as a vendor deleting a whole repository does: (digests deleted, tags they carried)."""
        tagged = self.tagged(repo)
        children: list[str] = list(untagged)
        for digest in tagged:
            r = self.client.get(f"/v2/{repo}/manifests/{digest}", headers={"Accept": ALL_MANIFESTS})
            if r.status_code == 200:
                entries = r.json().get("manifests")
                children += [e["digest"] for e in entries or () if isinstance(e, dict) and "digest" in e]
        deleted = [d for d in [*tagged, *children] if self.delete(repo, d) == 202]
        return deleted, sorted(t for tags in tagged.values() for t in tags)


Route = tuple[str, re.Pattern[str], Callable[..., Answer]]


class RestEmulator(LoopbackService):
    """Shared machinery; a subclass lists its :attr:`routes` and checks tokens in :meth:`authorize`."""

    service_name = "rest-emulator"
    rate_limit = 5000
    rate_headers_names = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")

    def __init__(self, upstream_url: str) -> None:
        self.upstream = Upstream(upstream_url)
        self.calls: list[Call] = []
        self.lock = threading.RLock()
        self._throttled = 0
        self._retry_after: str | None = "0"
        self._used = 0

    # --- control (start, stop, url: LoopbackService) -----------------------------------------

    def closed(self) -> None:
        self.upstream.close()

    def throttle(self, times: int, retry_after: str | None = "0") -> None:
        """The next ``times`` requests answer ``429`` (with ``Retry-After`` unless None)."""
        with self.lock:
            self._throttled, self._retry_after = times, retry_after

    def calls_to(self, method: str, path: str = ".*") -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.method == method and re.fullmatch(path, c.path)]

    # --- what a subclass provides ------------------------------------------------------------

    @property
    def routes(self) -> list[Route]:
        raise NotImplementedError

    def authorize(self, method: str, path: str, headers: dict[str, str]) -> Answer | None:
        """None when the request may proceed, else the refusal."""
        return None

    def extra_headers(self, headers: dict[str, str]) -> list[tuple[str, str]]:
        return []

    # --- dispatch --------------------------------------------------------------------------------

    def rate_headers(self) -> list[tuple[str, str]]:
        with self.lock:
            self._used += 1
            used = self._used
        limit, remaining, reset = self.rate_headers_names
        return [(limit, str(self.rate_limit)), (remaining, str(max(0, self.rate_limit - used))),
                (reset, str(int(time.time()) + 3600))]

    def dispatch(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Answer:
        url = urlsplit(target)
        with self.lock:
            throttled = self._throttled > 0
            if throttled:
                self._throttled -= 1
        if throttled:
            extra = [("Retry-After", self._retry_after)] if self._retry_after is not None else []
            answer = json_answer(429, {"message": "API rate limit exceeded"}, *extra)
        else:
            answer = self._route(method, url.path, parse_qs(url.query), headers, body)
        answer.headers += self.rate_headers() + self.extra_headers(headers)
        with self.lock:
            self.calls.append(Call(method, url.path, url.query, answer.status,
                                   any(k.lower() == "authorization" for k in headers)))
        return answer

    def _route(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str],
               body: bytes) -> Answer:
        for verb, pattern, handler in self.routes:
            match = pattern.fullmatch(path)
            if match and verb == method:
                refused = self.authorize(method, path, headers)
                if refused is not None:
                    return refused
                try:
                    payload = json.loads(body) if body else None
                except ValueError:
                    return json_answer(400, {"message": "Problems parsing JSON"})
                return handler(*match.groups(), query=query, payload=payload)
        return json_answer(404, {"message": "Not Found"})


def page_of(query: dict[str, list[str]], size_name: str, default: int, maximum: int) -> tuple[int, int]:
    """(page, page size) from a query string, as both APIs read them (page 1-based)."""
    def number(name: str, fallback: int) -> int:
        try:
            return max(1, int(query.get(name, [str(fallback)])[0]))
        except ValueError:
            return fallback
    return number("page", 1), min(maximum, number(size_name, default))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: RestEmulator

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        answer = self.owner.dispatch(self.command, self.path, dict(self.headers.items()), body)
        data = b"" if answer.body is None else json.dumps(answer.body).encode()
        self.send_response(answer.status)
        for k, v in answer.headers:
            self.send_header(k, v)
        if answer.body is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = do_POST = do_DELETE = do_PUT = do_PATCH = _handle


RestEmulator.handler = _Handler  # defined after the emulator it serves
