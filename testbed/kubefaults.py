"""The faults the Kubernetes API emulator (:mod:`testbed.kubeapi`) can inject, and its request log.

Kept apart from the server so that what a failure test programs (:class:`Fault`) and what it
reads back (:class:`Request`) are in one short place, with the exact error bodies a real API
server sends for them (:func:`fault_error`): the collector's messages quote those words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from testbed.kubestore import EXPIRED, ApiError

REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
           409: "Conflict", 410: "Expired", 415: "UnsupportedMediaType", 422: "Invalid", 429: "TooManyRequests",
           500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}
_VERB = {"GET": "list", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


@dataclass
class Fault:
    """What to do instead of (or before) answering a matching request.

    ``path`` is a regular expression matched against the whole path (no query). ``times``
    None means forever. With no ``status``, ``body`` or ``close``, only ``delay`` applies.
    """

    method: str
    path: str
    status: int | None = None
    times: int | None = None
    delay: float = 0.0
    retry_after: int | None = None
    close: bool = False
    only_continue: bool = False
    body: bytes | None = None
    message: str | None = None
    hits: int = 0

    def matches(self, method: str, path: str, query: dict[str, str]) -> bool:
        return (
            (self.times is None or self.hits < self.times)
            and self.method in ("*", method)
            and re.fullmatch(self.path, path) is not None
            and (not self.only_continue or bool(query.get("continue")))
        )


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    time: float
    status: int  # 0: the connection was dropped


def fault_error(code: int, method: str, path: str) -> ApiError:
    """The error an injected ``code`` stands for, in the API server's words."""
    if code == 403:
        parts = [p for p in path.split("/") if p]
        group = parts[1] if parts[:1] == ["apis"] and len(parts) > 1 else ""
        plural = parts[-1] if parts else ""
        qualified = f"{plural}.{group}" if group else plural
        return ApiError(403, "Forbidden", f'{qualified} is forbidden: User "system:serviceaccount:kitgc:'
                       f'camel-k-kit-gc" cannot {_VERB.get(method, method.lower())} resource "{plural}" in API '
                       f'group "{group}" at the cluster scope', {"group": group, "kind": plural})
    if code == 410:
        return ApiError(410, "Expired", EXPIRED)
    return ApiError(code, REASONS.get(code, "Unknown"), f"injected {code}")
