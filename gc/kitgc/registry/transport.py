"""How the client talks HTTP to a registry: TLS, auth, redirects, retries, limits.

Separated from :mod:`kitgc.registry.client` (what the API answers mean) so the rules that
keep a run safe and polite sit in one place: TLS verification stays on; ``Authorization``
goes only to the origin it belongs to, never across a redirect to another host; at most
``concurrency`` requests are in flight; transient failures (connection errors, timeouts,
and the statuses :mod:`kitgc.retry` calls transient) get a bounded number of attempts with
backoff and jitter, honouring ``Retry-After``; and no header, password or token is ever
logged or put in a message. Which TLS failures are final is :mod:`kitgc.registry.tls`'s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import structlog

from kitgc.errors import RegistryError
from kitgc.registry.adaptive import AdaptiveLimit
from kitgc.registry.answers import Reply, json_document, one_line
from kitgc.registry.auth import Challenge, Credentials, TokenCache, basic_header, parse_challenge
from kitgc.registry.tls import ssl_context, tls_failure
from kitgc.retry import RetryPolicy

log = structlog.get_logger()

MAX_BODY = 32 * 1024 * 1024  # manifests are capped at 4 MiB by Distribution; tag lists can be long
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
OnRequest = Callable[[str, str, str, int | None, float], None]  # kind, method, url, status, seconds
Sleep = Callable[[float], Awaitable[None]]
Origin = tuple[str, str, int | None]


@dataclass(frozen=True)
class TransportOptions:
    """How a :class:`Transport` connects and retries; built once by the client from its arguments.

    ``concurrency`` is the number of requests in flight at most; ``timeout`` bounds a whole
    request, body included; ``transport`` (tests) replaces the network and is shared by all
    connections; ``on_request`` sees every request sent; ``sleep`` replaces ``asyncio.sleep``.
    """

    insecure: bool = False
    ca_file: str | None = None
    credentials: Credentials | None = None
    concurrency: int = 16
    # The most requests in flight that adaptation may reach (kitgc.registry.adaptive); None:
    # ``concurrency``, fixed.
    concurrency_max: int | None = None
    timeout: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    transport: httpx.AsyncBaseTransport | None = None
    on_request: OnRequest | None = None
    sleep: Sleep | None = None
    # A fixed ``Authorization`` sent with every request, a 401 then being final: vendor APIs
    # that never challenge (Harbor's takes Basic up front) or take a static token (Quay's OAuth).
    authorization: str | None = field(default=None, repr=False)


class _Failure(Exception):
    """No usable answer; ``reason`` is safe to show. Only ever raised as one of the two below."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Transient(_Failure):
    """A failure worth retrying (connection error, timeout)."""


class _Fatal(_Failure):
    """A failure that retrying cannot fix (TLS trust, oversized answer).

    A sibling of :class:`_Transient`, not a kind of it: code that retries transient
    failures must not retry this one because an ``except`` clause was written in the wrong order.
    """


class _TooLarge(Exception):
    pass


def origin_of(url: httpx.URL) -> Origin:
    return (url.scheme, url.host, url.port)


class Transport:
    """Authenticated, bounded, retrying requests to one registry origin."""

    def __init__(self, base_url: str, options: TransportOptions, stats: dict[str, int]) -> None:
        self._origin = origin_of(httpx.URL(base_url))
        self._credentials = options.credentials
        self._retry = options.retry
        self._on_request = options.on_request
        self._stats = stats
        self._sleep: Sleep = options.sleep if options.sleep is not None else asyncio.sleep
        self._timeout = options.timeout
        concurrency = max(1, options.concurrency)
        self.limit = AdaptiveLimit(concurrency, options.concurrency_max or concurrency)
        # Clients of one connection each, made as the limit first needs them and handed out
        # by a queue: as with one pool of that size, but httpcore's pool checks every pooled
        # connection's socket on every request, which at 16 connections costs about 40 % of
        # the client's CPU per request. An injected transport is shared by one client.
        self._verify = httpx.create_ssl_context() if options.insecure else ssl_context(options.ca_file)  # one for all
        self._injected = options.transport
        self._clients: list[httpx.AsyncClient] = []
        self._idle: asyncio.Queue[httpx.AsyncClient] = asyncio.Queue()
        self._bearer: Challenge | None = None  # the registry's token realm/service, once seen
        self._basic = False  # the registry asked for Basic: send it up front from now on
        self._tokens = TokenCache(self._fetch_token)
        self._fixed = options.authorization

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()

    def _client(self) -> httpx.AsyncClient:
        """A free connection (the limit already holds a place for it): an idle one, else a new one."""
        if self._injected is not None and self._clients:
            return self._clients[0]
        if not self._idle.empty():
            return self._idle.get_nowait()
        client = httpx.AsyncClient(transport=self._injected, verify=self._verify, timeout=httpx.Timeout(self._timeout),
                                   limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
                                   follow_redirects=False)
        self._clients.append(client)
        return client

    async def request(
        self, kind: str, method: str, url: str, what: str, scopes: tuple[str, ...], accept: str | None = None
    ) -> Reply:
        """Anonymous first, then as the registry's challenge asks; the final reply, any status.

        ``scopes`` are what a Bearer token must grant (the challenge's are added the first
        time). A cached token that is refused (expired mid-run) is dropped and replaced once.
        """
        headers = {"Accept": accept} if accept else {}
        key = tuple(sorted(scopes))

        async def once() -> Reply:
            extra: tuple[str, ...] = ()
            for _ in range(3):  # as is, then with credentials, then once more with a new token
                authorization, fresh = await self._authorization(key, scopes, extra)
                reply = await self._send(kind, method, url, headers, authorization, self._origin)
                if reply.status != 401:
                    return reply
                challenge = parse_challenge(reply.headers.get("WWW-Authenticate"))
                if challenge is None or fresh:
                    return reply
                if challenge.scheme == "basic":
                    if self._credentials is None or (authorization or "").startswith("Basic "):
                        return reply
                    self._basic = True
                elif challenge.scheme == "bearer" and challenge.realm:
                    self._bearer, extra = challenge, challenge.scopes
                    if authorization and authorization.startswith("Bearer "):
                        self._tokens.invalidate(key, authorization[7:])
                else:
                    return reply
            return reply

        return await self._with_retries(what, once)

    async def _authorization(
        self, key: tuple[str, ...], scopes: tuple[str, ...], extra: tuple[str, ...]
    ) -> tuple[str | None, bool]:
        if self._fixed is not None:
            return self._fixed, True  # "fresh": a 401 is final
        if self._bearer is not None:
            wanted = tuple(dict.fromkeys((*scopes, *extra)))
            token, fetched = await self._tokens.get(self._bearer, key, wanted)
            return f"Bearer {token}", fetched
        if self._basic and self._credentials is not None:
            return basic_header(self._credentials), False
        return None, False

    async def anonymous(self, kind: str, method: str, url: str, what: str) -> Reply:
        """One request without credentials (retried like any other): what anyone would see."""

        async def once() -> Reply:
            return await self._send(kind, method, url, {}, None, self._origin)

        return await self._with_retries(what, once)

    async def _fetch_token(self, challenge: Challenge, scopes: tuple[str, ...]) -> tuple[str, float]:
        what = f"token request to {challenge.realm}"
        params: list[tuple[str, str | int | float | bool | None]] = [("scope", s) for s in scopes]
        if challenge.service:
            params.insert(0, ("service", challenge.service))
        try:
            url = httpx.URL(challenge.realm).copy_merge_params(params)
        except (httpx.InvalidURL, TypeError):
            raise RegistryError(f"token request: invalid realm {challenge.realm!r}") from None
        if url.scheme not in ("http", "https"):
            raise RegistryError(f"token request: invalid realm {challenge.realm!r}")
        auth = basic_header(self._credentials) if self._credentials else None

        async def once() -> Reply:
            return await self._send("token", "GET", str(url), {}, auth, origin_of(url))

        doc = json_document(what, await self._with_retries(what, once))
        token = (doc.get("token") or doc.get("access_token")) if isinstance(doc, dict) else None
        if not isinstance(token, str) or not token:
            raise RegistryError(f"{what}: the answer holds no token", status=200)
        expires_in = doc.get("expires_in", 60)
        if isinstance(expires_in, bool) or not isinstance(expires_in, int | float) or expires_in <= 0:
            expires_in = 60
        return token, float(expires_in)

    async def _with_retries(self, what: str, once: Callable[[], Awaitable[Reply]]) -> Reply:
        attempt = 1
        while True:
            try:
                reply = await once()
            except _Fatal as exc:
                raise RegistryError(f"{what}: {exc.reason}") from None
            except _Transient as exc:
                if not self._retry.may_retry(attempt):
                    raise RegistryError(f"{what}: {exc.reason} (after {attempt} attempts)") from None
                delay, reason = self._retry.delay(attempt), exc.reason
            else:
                if not self._retry.retryable(reply.status) or not self._retry.may_retry(attempt):
                    return reply
                delay, reason = self._retry.delay(attempt, reply.headers.get("Retry-After")), f"HTTP {reply.status}"
            self._stats["retry"] += 1
            log.warning("registry request retried", what=what, reason=reason, attempt=attempt,
                        delay=round(delay, 3))
            await self._sleep(delay)
            attempt += 1

    async def _send(
        self, kind: str, method: str, url: str, headers: dict[str, str], authorization: str | None,
        auth_origin: Origin,
    ) -> Reply:
        """One request, following redirects; ``Authorization`` only ever goes to ``auth_origin``."""
        target = httpx.URL(url)
        for _ in range(MAX_REDIRECTS + 1):
            sent = dict(headers)
            if authorization and origin_of(target) == auth_origin:
                sent["Authorization"] = authorization
            self._stats[kind] += 1
            status: int | None = None
            http: httpx.AsyncClient | None = None
            await self.limit.acquire()  # a place among the requests in flight
            started = time.monotonic()  # the request's own time, not its wait for a place
            try:
                http = self._client()
                async with asyncio.timeout(self._timeout):  # whole request, body included
                    request = http.build_request(method, target, headers=sent)
                    response = await http.send(request, stream=True)
                    try:
                        status = response.status_code
                        body = await _read(response)
                    finally:
                        await response.aclose()
            except _TooLarge:
                raise _Fatal(f"the answer is larger than {MAX_BODY} bytes") from None
            except TimeoutError:
                raise _Transient(f"no complete answer within {self._timeout:g} s") from None
            except httpx.HTTPError as exc:
                tls = tls_failure(exc)
                if tls:
                    raise _Fatal(
                        f"TLS with {target.netloc.decode()}: {tls}; set REGISTRY_CA_FILE to the CA of the "
                        "registry's certificate (or REGISTRY_INSECURE=true for a plain-HTTP registry)"
                    ) from None
                detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                raise _Transient(one_line(detail)) from None
            finally:
                elapsed = time.monotonic() - started
                if http is not None and self._injected is None:
                    self._idle.put_nowait(http)
                self.limit.observe(status, elapsed)
                self.limit.release()
                log.debug("registry request", kind=kind, method=method, url=str(target), status=status,
                          ms=round(elapsed * 1000, 1))
                if self._on_request is not None:
                    self._on_request(kind, method, str(target), status, elapsed)
            location = response.headers.get("Location")
            if status in _REDIRECTS and location and method in ("GET", "HEAD"):
                target = target.join(location)
                continue
            return Reply(response.status_code, response.headers, body, target)
        raise RegistryError(f"{method} {url}: more than {MAX_REDIRECTS} redirects")


async def _read(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    total = 0
    async for chunk in response.aiter_bytes():
        total += len(chunk)
        if total > MAX_BODY:
            raise _TooLarge()
        chunks.append(chunk)
    return b"".join(chunks)
