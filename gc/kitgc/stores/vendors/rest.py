"""A small async client for vendors' REST APIs (GitHub Packages, Docker Hub, and later others).

The registry API v2 has :mod:`kitgc.registry.transport`; a vendor API is simpler (one origin,
one token, JSON both ways) but has rules of its own, kept here once so that every vendor
store follows them alike:

* **Pages.** GitHub pages with ``Link: <…>; rel="next"`` and answers a JSON array; Docker Hub
  answers ``{"count", "next", "previous", "results"}``. Both are followed until the end, but
  only to the API's own origin (the token must never travel to another host), never in a
  loop and never beyond :data:`MAX_PAGES`.
* **Politeness.** 5xx and 429 are retried as :class:`~kitgc.retry.RetryPolicy` says,
  honouring ``Retry-After``. GitHub's primary rate limit answers 403 (or 429) with
  ``x-ratelimit-remaining: 0`` and ``x-ratelimit-reset`` (epoch seconds): the client waits
  for the reset when that is within the policy's ``retry_after_cap``, and otherwise fails at
  once with the time of the reset (waiting an hour would hold the run's Lease for nothing).
  A 403 or 429 with ``Retry-After`` (GitHub's secondary rate limits) is retried too.
* **Trust.** TLS verification is always on (``ca_file`` adds a CA, as ``REGISTRY_CA_FILE``
  does for the registry); redirects are not followed.
* **Errors.** Every failure is one line naming the operation and the status, with the
  vendor's ``message`` (or ``detail``) when it sent one: :class:`~kitgc.errors.RegistryError`
  with ``status`` set, so stores can decide on the status. The token is never logged nor put
  in a message.

* **Tokens.** :func:`api_token` reads ``REGISTRY_API_TOKEN_FILE``, else the password of the
  registry's entry in ``REGISTRY_AUTH_FILE``; none is a ConfigError naming both (exit 2).

Interface: :class:`RestClient` (``get_json``, ``get_paged``, ``post_json``, ``delete``,
``request``, ``authorization``, ``stats``, ``aclose``), :func:`vendor_error`,
:func:`api_token` and :func:`registry_login`.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import structlog

from kitgc.config import Settings
from kitgc.errors import ConfigError, RegistryError
from kitgc.registry.answers import one_line
from kitgc.registry.auth import Credentials, load_docker_config
from kitgc.registry.tls import ssl_context, tls_failure
from kitgc.retry import RetryPolicy

log = structlog.get_logger("kitgc.vendor")

MAX_PAGES = 10_000
MAX_BODY = 32 * 1024 * 1024
_LINK_NEXT = re.compile(r'<([^>]*)>\s*;[^,]*\brel="?next"?', re.IGNORECASE)
Sleep = Callable[[float], Awaitable[None]]
Paging = Literal["link", "next"]


@dataclass(frozen=True)
class RestReply:
    """A complete answer: status, headers, body (read), and the URL it came from."""

    status: int
    headers: httpx.Headers
    body: bytes
    url: httpx.URL

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self, what: str) -> Any:
        """The JSON body, or a one-line :class:`RegistryError` naming ``what``."""
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):
            raise RegistryError(f"{what}: the answer is not valid JSON (HTTP {self.status})",
                                status=self.status) from None


def vendor_message(body: bytes) -> str | None:
    """The human part of a vendor's error body: GitHub ``message``, Docker Hub ``message``/``detail``."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict):
        return None
    for key in ("message", "detail", "error"):
        value = doc.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return None


def vendor_error(what: str, reply: RestReply, hint: str | None = None) -> RegistryError:
    """A one-line error: operation, status, the vendor's message, and ``hint`` when given."""
    message = vendor_message(reply.body)
    text = f"{what}: HTTP {reply.status}" + (f": {message}" if message else "") + (f" ({hint})" if hint else "")
    return RegistryError(one_line(text), status=reply.status)


class RestClient:
    """JSON over HTTPS to one API origin (``base_url``), with one ``Authorization`` value.

    ``kind`` arguments name the request in :attr:`stats` (``Counter`` of requests sent by
    kind, plus ``retry``); a path is joined to ``base_url``, an absolute URL must be on its
    origin. ``headers`` go with every request (an API version, a media type); ``transport``,
    ``sleep`` and ``clock`` (epoch seconds, for ``x-ratelimit-reset``) are for tests.
    """

    def __init__(
        self,
        base_url: str,
        *,
        name: str,
        ca_file: str | None = None,
        timeout: float = 30.0,
        concurrency: int = 8,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.base_url = httpx.URL(base_url.rstrip("/") + "/")
        if self.base_url.scheme not in ("http", "https") or not self.base_url.host:
            raise RegistryError(f"{name}: invalid API URL {base_url!r}")
        self.name = name  # "GitHub Packages API", … (for messages)
        self.authorization: str | None = None  # "Bearer …": set by the store, never logged
        self.stats: Counter[str] = Counter()
        self._retry = retry or RetryPolicy()
        self._sleep: Sleep = sleep or asyncio.sleep
        self._clock = clock
        self._timeout = timeout
        self._limit = asyncio.Semaphore(max(1, concurrency))
        self._http = httpx.AsyncClient(transport=transport, verify=ssl_context(ca_file),
                                       timeout=httpx.Timeout(timeout), follow_redirects=False,
                                       headers={"Accept": "application/json", "User-Agent": "camel-k-kit-gc",
                                                **(headers or {})})

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- requests ------------------------------------------------------------------------

    def url(self, path_or_url: str) -> httpx.URL:
        """``path_or_url`` on this API's origin; another origin is refused (the token goes along)."""
        url = self.base_url.join(path_or_url.lstrip("/")) if "://" not in path_or_url else httpx.URL(path_or_url)
        if (url.scheme, url.host, url.port) != (self.base_url.scheme, self.base_url.host, self.base_url.port):
            raise RegistryError(f"{self.name}: refusing to follow {url.scheme}://{url.netloc.decode()} "
                                f"(not the API's origin {self.base_url.netloc.decode()})")
        return url

    async def request(self, kind: str, method: str, path: str, what: str, *,
                      params: Mapping[str, str | int] | None = None, payload: Any = None,
                      authorized: bool = True) -> RestReply:
        """One request, retried as the module docstring says; the final answer, any status."""
        url = self.url(path)
        if params:
            url = url.copy_merge_params(dict(params))
        headers = {}
        if authorized and self.authorization:
            headers["Authorization"] = self.authorization
        content = None
        if payload is not None:
            headers["Content-Type"] = "application/json"
            content = json.dumps(payload).encode()
        attempt = 1
        while True:
            try:
                reply = await self._send(kind, method, url, headers, content)
            except _Transient as exc:
                if not self._retry.may_retry(attempt):
                    raise RegistryError(f"{what}: {exc} (after {attempt} attempts)") from None
                delay, reason = self._retry.delay(attempt), str(exc)
            else:
                delay_or_none = self._retry_delay(what, reply, attempt)
                if delay_or_none is None:
                    return reply
                delay, reason = delay_or_none, f"HTTP {reply.status}"
            self.stats["retry"] += 1
            log.warning("vendor_api_retried", api=self.name, what=what, reason=reason, attempt=attempt,
                        delay=round(delay, 3))
            await self._sleep(delay)
            attempt += 1

    def _retry_delay(self, what: str, reply: RestReply, attempt: int) -> float | None:
        """Seconds to wait before retrying ``reply``, or None to return it as it is."""
        retry_after = reply.headers.get("Retry-After")
        exhausted = reply.headers.get("x-ratelimit-remaining", "").strip() == "0"
        if reply.status in (403, 429) and exhausted and not retry_after:
            wait = self._until_reset(reply.headers.get("x-ratelimit-reset"))
            if wait is None or wait > self._retry.retry_after_cap:
                when = reply.headers.get("x-ratelimit-reset", "?")
                raise RegistryError(f"{what}: {self.name} rate limit exhausted until {when} (epoch seconds); "
                                    "try again later", status=reply.status)
            retry_after = f"{wait:.3f}"
        elif not (self._retry.retryable(reply.status) or (reply.status == 403 and retry_after)):
            return None
        if not self._retry.may_retry(attempt):
            return None
        return self._retry.delay(attempt, retry_after)

    def _until_reset(self, value: str | None) -> float | None:
        try:
            reset = float(value or "")
        except ValueError:
            return None
        return max(0.0, reset - self._clock())

    async def _send(self, kind: str, method: str, url: httpx.URL, headers: dict[str, str],
                    content: bytes | None) -> RestReply:
        self.stats[kind] += 1
        started = time.monotonic()
        status: int | None = None
        try:
            async with self._limit, asyncio.timeout(self._timeout):
                request = self._http.build_request(method, url, headers=headers, content=content)
                response = await self._http.send(request, stream=True)
                try:
                    status = response.status_code
                    body = await _read(response)
                finally:
                    await response.aclose()
        except TimeoutError:
            raise _Transient(f"no complete answer within {self._timeout:g} s") from None
        except httpx.HTTPError as exc:
            tls = tls_failure(exc)
            if tls:
                raise RegistryError(f"{self.name}: TLS with {url.netloc.decode()}: {tls}; set REGISTRY_CA_FILE "
                                    "to the CA of its certificate") from None
            raise _Transient(one_line(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)) from None
        finally:
            log.debug("vendor_api_request", api=self.name, kind=kind, method=method, url=str(url), status=status,
                      ms=round((time.monotonic() - started) * 1000, 1))
        return RestReply(response.status_code, response.headers, body, url)

    # --- conveniences ----------------------------------------------------------------------

    async def get_json(self, kind: str, path: str, what: str, *,
                       params: Mapping[str, str | int] | None = None) -> Any:
        """The JSON body of a 200 answer; anything else is a :class:`RegistryError`."""
        reply = await self.request(kind, "GET", path, what, params=params)
        if reply.status != 200:
            raise vendor_error(what, reply)
        return reply.json(what)

    async def post_json(self, kind: str, path: str, payload: Any, what: str, *, authorized: bool = False) -> Any:
        """POST ``payload`` as JSON (logins: not authorized by default); the JSON of a 2xx answer."""
        reply = await self.request(kind, "POST", path, what, payload=payload, authorized=authorized)
        if not reply.ok:
            raise vendor_error(what, reply)
        return reply.json(what)

    async def delete(self, kind: str, path: str, what: str) -> RestReply:
        """DELETE ``path``; the answer whatever its status (what a refusal means is the store's)."""
        return await self.request(kind, "DELETE", path, what)

    async def get_paged(self, kind: str, path: str, what: str, *, paging: Paging,
                        params: Mapping[str, str | int] | None = None) -> list[Any]:
        """Every item of a paged list.

        ``paging="link"`` (GitHub): each page is a JSON array, the next page is the ``Link``
        header's ``rel="next"``. ``paging="next"`` (Docker Hub): each page is an object whose
        ``results`` is an array and whose ``next`` is the next page's URL (null at the end).
        """
        items: list[Any] = []
        seen: set[str] = set()
        url: httpx.URL | None = self.url(path).copy_merge_params(dict(params or {}))
        while url is not None:
            if str(url) in seen:
                raise RegistryError(f"{what}: the pages loop back to {url}")
            if len(seen) >= MAX_PAGES:
                raise RegistryError(f"{what}: more than {MAX_PAGES} pages; refusing to read on")
            seen.add(str(url))
            reply = await self.request(kind, "GET", str(url), what)
            if reply.status != 200:
                raise vendor_error(what, reply)
            doc = reply.json(what)
            if paging == "link":
                if not isinstance(doc, list):
                    raise RegistryError(f"{what}: the answer is not a JSON array", status=200)
                items.extend(doc)
                match = _LINK_NEXT.search(reply.headers.get("Link", ""))
                url = self.url(str(reply.url.join(match.group(1)))) if match else None
            else:
                results = doc.get("results") if isinstance(doc, dict) else None
                if not isinstance(results, list):
                    raise RegistryError(f"{what}: the answer has no \"results\" list", status=200)
                items.extend(results)
                following = doc.get("next")
                if following is not None and not isinstance(following, str):
                    raise RegistryError(f"{what}: \"next\" is not a URL", status=200)
                url = self.url(str(reply.url.join(following))) if following else None
        return items


# --- tokens ---------------------------------------------------------------------------


def registry_login(settings: Settings, hosts: Sequence[str]) -> Credentials | None:
    """The first entry of ``REGISTRY_AUTH_FILE`` for any of ``hosts``, or None."""
    if not settings.registry_auth_file:
        return None
    for host in hosts:
        found = load_docker_config(settings.registry_auth_file, host)
        if found is not None:
            return found
    return None


def api_token(settings: Settings, hosts: Sequence[str], api: str) -> str:
    """The token for ``api``: the stripped content of ``REGISTRY_API_TOKEN_FILE``, else the
    password of ``REGISTRY_AUTH_FILE``'s entry for one of ``hosts``."""
    path = settings.registry_api_token_file
    if path:
        try:
            with open(path, encoding="utf-8") as fh:
                token = fh.read().strip()
        except OSError as exc:
            raise ConfigError(f"invalid REGISTRY_API_TOKEN_FILE {path!r}: cannot read it "
                              f"({exc.strerror or type(exc).__name__})") from None
        except UnicodeDecodeError:
            raise ConfigError(f"invalid REGISTRY_API_TOKEN_FILE {path!r}: not UTF-8 text") from None
        if not token:
            raise ConfigError(f"invalid REGISTRY_API_TOKEN_FILE {path!r}: the file is empty")
        if any(c.isspace() for c in token):
            raise ConfigError(f"invalid REGISTRY_API_TOKEN_FILE {path!r}: a token is one word")
        return token
    login = registry_login(settings, hosts)
    if login is not None and login.password:
        return login.password
    raise ConfigError(f"the {api} needs a token: set REGISTRY_API_TOKEN_FILE, or give REGISTRY_AUTH_FILE an "
                      f"entry for {hosts[-1] if hosts else 'the registry'} with the token as its password")


class _Transient(Exception):
    """No answer (connection error, timeout): worth another attempt."""


async def _read(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    total = 0
    async for chunk in response.aiter_bytes():
        total += len(chunk)
        if total > MAX_BODY:
            raise RegistryError(f"the answer from {response.url.host} is larger than {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
