"""One raw, retried request to the Kubernetes API.

Everything the collector sends to Kubernetes goes through :class:`KubeHttp`, which talks
raw JSON through the official client's configured transport (authentication, TLS, proxy,
token refresh) but never builds the client's models: tens of thousands of pods would cost
seconds of validation and the models drop fields they do not know (CRDs). What is transient
and how long to wait is :class:`kitgc.retry.RetryPolicy`'s, shared with the registry client.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import kubernetes
import urllib3

from kitgc.retry import RetryPolicy


def one_line(value: object, limit: int = 300) -> str:
    """``value`` as one line of at most ``limit`` characters, for messages a person reads."""
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Response:
    status: int
    reason: str
    headers: Mapping[str, str]
    data: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        """The parsed body; ValueError when it is not JSON."""
        return json.loads(self.data)

    def status_message(self) -> str:
        """``403 Forbidden: <Status.message>``: one line for errors a person reads."""
        detail = ""
        try:
            body = self.json()
            if isinstance(body, dict):
                detail = str(body.get("message") or body.get("reason") or "")
        except ValueError:
            detail = self.data[:200].decode("utf-8", "replace")
        head = f"{self.status} {self.reason}".strip()
        return one_line(f"{head}: {detail}" if detail else head)

    def status_reason(self) -> str:
        """The ``reason`` of a Kubernetes Status body (``Expired``, ``Conflict``…), or ""."""
        try:
            body = self.json()
        except ValueError:
            return ""
        return str(body.get("reason") or "") if isinstance(body, dict) else ""


class TransportError(Exception):
    """No HTTP answer after every retry: connection refused or reset, timeout, TLS."""


class KubeHttp:
    """Raw JSON requests through an ApiClient, retrying transient failures with backoff.

    Returns the final :class:`Response`, error statuses included (callers decide what a
    404 or a 409 means); raises :class:`TransportError` when no answer came at all.
    ``retries`` counts retries after the first try (so ``retries + 1`` attempts), ``backoff``
    is the first delay; ``policy`` replaces both. ``stats["retries"]`` counts every retry.
    """

    def __init__(
        self,
        api_client: kubernetes.client.ApiClient,
        *,
        retries: int = 3,
        backoff: float = 0.5,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.api_client = api_client
        self.policy = policy if policy is not None else RetryPolicy(attempts=retries + 1, backoff=backoff)
        self.timeout = timeout
        self._sleep = sleep
        self._lock = threading.Lock()
        self.stats: dict[str, int] = {"requests": 0, "retries": 0}

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, Any]] = (),
        body: Any = None,
        content_type: str = "application/json",
    ) -> Response:
        attempt = 1
        while True:
            self._count("requests")
            try:
                resp = self._once(method, path, query, body, content_type)
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                if not self.policy.may_retry(attempt):
                    raise TransportError(f"{type(exc).__name__}: {one_line(exc)}") from exc
                delay = self.policy.delay(attempt)
            else:
                if not self.policy.retryable(resp.status) or not self.policy.may_retry(attempt):
                    return resp
                delay = self.policy.delay(attempt, resp.headers.get("Retry-After"))
            attempt += 1
            self._count("retries")
            self._sleep(delay)

    def _once(self, method: str, path: str, query: Sequence[tuple[str, Any]], body: Any,
              content_type: str) -> Response:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        params = self.api_client.param_serialize(
            method=method,
            resource_path=path,
            query_params=list(query) or None,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        raw = self.api_client.call_api(*params, _request_timeout=self.timeout)
        data = raw.read()
        return Response(raw.status, raw.reason or "", raw.headers or {}, data or b"")  # headers: case-insensitive

    def _count(self, key: str) -> None:
        with self._lock:
            self.stats[key] += 1
