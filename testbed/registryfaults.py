"""The faults the registry fault proxy (:mod:`testbed.faultproxy`) can inject, and its log.

Kept apart from the proxy so that what a failure test programs (:class:`Fault`), what it reads
back (:class:`Seen`) and the bodies it is answered with are in one short place; the label of
each kind is the name it carries in the reliability figures.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

KINDS = ("status", "reset", "slow", "truncate", "garbage", "no_digest", "wrong_digest", "huge", "redirect")


@dataclass
class Fault:
    """One programmed fault. ``path`` is matched (fullmatch) against the path without query.

    ``after`` applies ``reset``/``slow`` after the registry has answered (a DELETE that was
    carried out but whose answer is lost or late); otherwise the registry never sees it.
    """

    kind: str
    method: str = "*"
    path: str = r"/v2/.*"
    status: int = 503
    retry_after: str | None = None
    delay: float = 0.0
    times: int | None = None
    after: bool = False
    size: int = 40 * 1024 * 1024  # huge: bytes of body
    location: str = ""  # redirect: base URL of the other origin
    hits: int = 0

    def __post_init__(self) -> None:
        assert self.kind in KINDS, self.kind

    @property
    def label(self) -> str:
        if self.kind == "status":
            if self.status == 429:
                return "http_429_retry_after" if self.retry_after is not None else "http_429_no_retry_after"
            return f"http_{self.status}"
        return {"reset": "connection_reset", "slow": "slower_than_timeout", "truncate": "truncated_body",
                "garbage": "not_json_body", "no_digest": "missing_digest_header",
                "wrong_digest": "mismatched_digest_header", "huge": "enormous_body",
                "redirect": "redirect_to_other_host"}[self.kind]


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    query: str
    status: int  # 0: no answer (reset)
    authorization: bool
    fault: str | None
    time: float


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


Forward = Callable[[], Reply]
Intercept = Callable[[str, str, Forward], Reply]


def error_body(status: int) -> bytes:
    """An error body in Distribution's own format, so the client reads it as the registry's."""
    code = {429: "TOOMANYREQUESTS", 500: "UNKNOWN", 502: "UNAVAILABLE", 503: "UNAVAILABLE"}.get(status, "UNKNOWN")
    return json.dumps({"errors": [{"code": code, "message": f"injected {status}", "detail": None}]}).encode()


def huge_catalog(size: int, chunk: int = 64 * 1024) -> tuple[int, Iterator[bytes]]:
    """(length, chunks) of a catalog answer of about ``size`` bytes, generated lazily."""
    entry = b'"zz-not-ours/filler-%012d",'
    one = len(entry % 0)
    count = max(1, size // one)
    head, tail = b'{"repositories":[', b'"zz-end"]}'
    length = len(head) + count * one + len(tail)

    def chunks() -> Iterator[bytes]:
        yield head
        buf = bytearray()
        for i in range(count):
            buf += entry % i
            if len(buf) >= chunk:
                yield bytes(buf)
                buf.clear()
        yield bytes(buf) + tail

    return length, chunks()
