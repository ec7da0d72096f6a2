"""The connection to the Kubernetes API: client set-up and one raw, retried request.

Everything the collector sends to Kubernetes goes through :class:`KubeHttp`, which talks
raw JSON through the official client's configured transport (authentication, TLS, proxy,
token refresh) but never builds the client's models: tens of thousands of pods would cost
seconds of validation and the models drop fields they do not know (CRDs). Retrying lives
here too, so that the reader and the state store agree on what is transient.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import kubernetes
import structlog
import urllib3

from kitgc.errors import ConfigError

# 5xx that a later attempt may cure, and 429 (priority and fairness, with Retry-After).
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
_MAX_RETRY_AFTER = 30.0


def make_api_client(env: Mapping[str, str] | None = None) -> kubernetes.client.ApiClient:
    """An ApiClient: in-cluster when ``KUBERNETES_SERVICE_HOST`` is set, else kubeconfig.

    urllib3's own retries are switched off: :class:`KubeHttp` retries with backoff and
    counts what it does, and hidden retries would multiply timeouts.
    """
    env = os.environ if env is None else env
    cfg = kubernetes.client.Configuration()
    if env.get("KUBERNETES_SERVICE_HOST"):
        try:
            kubernetes.config.load_incluster_config(client_configuration=cfg)
        except Exception as exc:
            raise ConfigError(f"cannot load the in-cluster Kubernetes configuration: {_one_line(exc)}") from None
    else:
        path = env.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
        try:
            kubernetes.config.load_kube_config(config_file=path, client_configuration=cfg)
        except Exception as exc:
            raise ConfigError(
                f"cannot load Kubernetes configuration from KUBECONFIG={path}: {_one_line(exc)}"
            ) from None
    cfg.retries = False
    if cfg.host.startswith("https") and not cfg.verify_ssl:
        # The kubeconfig asked for it (insecure-skip-tls-verify); never silently.
        structlog.get_logger("kitgc.cluster").warning(
            "kubernetes_tls_verification_off", server=cfg.host,
            note="the kubeconfig sets insecure-skip-tls-verify: the API server's identity is not checked")
    return kubernetes.client.ApiClient(cfg)


def _one_line(value: object, limit: int = 300) -> str:
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
        return _one_line(f"{head}: {detail}" if detail else head)

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
    ``stats["retries"]`` counts every retry.
    """

    def __init__(
        self,
        api_client: kubernetes.client.ApiClient,
        *,
        retries: int = 3,
        backoff: float = 0.5,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.api_client = api_client
        self.retries = retries
        self.backoff = backoff
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
        attempt = 0
        while True:
            self._count("requests")
            try:
                resp = self._once(method, path, query, body, content_type)
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                if attempt >= self.retries:
                    raise TransportError(f"{type(exc).__name__}: {_one_line(exc)}") from exc
                delay = self._delay(attempt, None)
            else:
                if resp.status not in TRANSIENT_STATUSES or attempt >= self.retries:
                    return resp
                delay = self._delay(attempt, resp.headers.get("Retry-After"))
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

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(max(float(retry_after), 0.0), _MAX_RETRY_AFTER)
            except ValueError:
                pass
        return self.backoff * (2**attempt) * (0.5 + random.random() / 2)

    def _count(self, key: str) -> None:
        with self._lock:
            self.stats[key] += 1
