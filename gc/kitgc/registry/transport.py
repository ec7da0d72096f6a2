"""How the client talks HTTP to a registry: TLS, auth, redirects, retries, limits.

Separated from :mod:`kitgc.registry.client` (what the API answers mean) so the rules that
keep a run safe and polite sit in one place: TLS verification stays on; ``Authorization``
goes only to the origin it belongs to, never across a redirect to another host; at most
``concurrency`` requests are in flight; transient failures (connection errors, timeouts,
5xx, 429 with ``Retry-After``) get a bounded number of attempts with backoff and jitter;
and no header, password or token is ever logged or put in a message.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import structlog

from kitgc.errors import ConfigError, RegistryError
from kitgc.registry.auth import Challenge, Credentials, TokenCache, basic_header, parse_challenge

log = structlog.get_logger()

MAX_BODY = 32 * 1024 * 1024  # manifests are capped at 4 MiB by Distribution; tag lists can be long
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
OnRequest = Callable[[str, str, str, int | None, float], None]  # kind, method, url, status, seconds
Sleep = Callable[[float], Awaitable[None]]
Origin = tuple[str, str, int | None]


@dataclass(frozen=True)
class Reply:
    """A complete answer (body read, connection released)."""

    status: int
    headers: httpx.Headers
    body: bytes
    url: httpx.URL


class _Transient(Exception):
    """A failure worth retrying; ``reason`` is safe to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Fatal(_Transient):
    """A transport failure that retrying cannot fix (TLS trust, oversized answer)."""


class _TooLarge(Exception):
    pass


def one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def origin_of(url: httpx.URL) -> Origin:
    return (url.scheme, url.host, url.port)


def ssl_context(ca_file: str | None) -> ssl.SSLContext:
    """System trust, plus ``ca_file`` when given (as Docker adds certs.d CAs to the system pool)."""
    ctx = ssl.create_default_context()
    if ca_file:
        try:
            ctx.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or type(exc).__name__
            raise ConfigError(
                f"invalid REGISTRY_CA_FILE {ca_file!r}: not a readable PEM bundle ({reason})"
            ) from None
    return ctx


def _tls_failure(exc: BaseException) -> str | None:
    """The reason when ``exc`` is a TLS failure (not worth retrying), else None."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLEOFError | ssl.SSLZeroReturnError | ssl.SSLSyscallError):
            return None  # the peer hung up mid-handshake: may well work next time
        if isinstance(seen, ssl.SSLCertVerificationError):
            return f"certificate verification failed ({seen.verify_message or seen.reason})"
        if isinstance(seen, ssl.SSLError):
            return f"TLS handshake failed ({seen.reason or type(seen).__name__})"
        seen = seen.__cause__ or seen.__context__
    return "certificate verification failed" if "CERTIFICATE_VERIFY_FAILED" in str(exc) else None


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds from ``Retry-After`` (delta-seconds or an HTTP date), or None if unusable."""
    if not value:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_code(body: bytes) -> tuple[str | None, str | None]:
    """(code, message) of the first entry of ``{"errors": [...]}``, when the body has one."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return None, None
    errors = doc.get("errors") if isinstance(doc, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        code, message = errors[0].get("code"), errors[0].get("message")
        return (code if isinstance(code, str) else None, message if isinstance(message, str) else None)
    return None, None


def json_document(what: str, reply: Reply) -> Any:
    """The JSON body of a 200 answer, or a one-line :class:`RegistryError` naming ``what``."""
    if reply.status != 200:
        raise registry_error(what, reply)
    try:
        return json.loads(reply.body)
    except (ValueError, RecursionError):
        raise RegistryError(f"{what}: the answer is not valid JSON", status=200) from None


def registry_error(what: str, reply: Reply) -> RegistryError:
    """A one-line error naming the operation, the status and the registry's error code."""
    code, message = error_code(reply.body)
    text = f"{what}: HTTP {reply.status}" + (f" {code}" if code else "") + (f": {message}" if message else "")
    return RegistryError(one_line(text), status=reply.status, code=code)


class Transport:
    """Authenticated, bounded, retrying requests to one registry origin."""

    def __init__(
        self, base_url: str, *, insecure: bool, ca_file: str | None, credentials: Credentials | None,
        concurrency: int, timeout: float, retries: int, transport: httpx.AsyncBaseTransport | None,
        on_request: OnRequest | None, backoff: float, max_backoff: float, retry_after_cap: float,
        stats: dict[str, int], sleep: Sleep | None = None,
    ) -> None:
        self._origin = origin_of(httpx.URL(base_url))
        self._credentials = credentials
        self._retries = max(1, retries)
        self._backoff, self._max_backoff, self._retry_after_cap = backoff, max_backoff, retry_after_cap
        self._on_request = on_request
        self._stats = stats
        self._sleep: Sleep = sleep if sleep is not None else asyncio.sleep
        self._timeout = timeout
        # ``concurrency`` clients of one connection each, handed out by a queue: at most that
        # many requests in flight, as with one pool of that size, but httpcore's pool checks
        # every pooled connection's socket on every request, which at 16 connections costs
        # about 40 % of the client's CPU per request. An injected transport is shared.
        verify = httpx.create_ssl_context() if insecure else ssl_context(ca_file)  # one context for all
        clients = [
            httpx.AsyncClient(transport=transport, verify=verify, timeout=httpx.Timeout(timeout),
                              limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
                              follow_redirects=False)
            for _ in range(1 if transport is not None else concurrency)
        ]
        self._clients = clients
        self._idle: asyncio.Queue[httpx.AsyncClient] = asyncio.Queue()
        for i in range(concurrency):
            self._idle.put_nowait(clients[i % len(clients)])
        self._bearer: Challenge | None = None  # the registry's token realm/service, once seen
        self._basic = False  # the registry asked for Basic: send it up front from now on
        self._tokens = TokenCache(self._fetch_token)

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()

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
        if self._bearer is not None:
            wanted = tuple(dict.fromkeys((*scopes, *extra)))
            token, fetched = await self._tokens.get(self._bearer, key, wanted)
            return f"Bearer {token}", fetched
        if self._basic and self._credentials is not None:
            return basic_header(self._credentials), False
        return None, False

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
                if attempt >= self._retries:
                    raise RegistryError(f"{what}: {exc.reason} (after {attempt} attempts)") from None
                delay, reason = self._delay(attempt, None), exc.reason
            else:
                status = reply.status
                retryable = status == 429 or (status >= 500 and status not in (501, 505))
                if not retryable or attempt >= self._retries:
                    return reply
                delay, reason = self._delay(attempt, reply.headers.get("Retry-After")), f"HTTP {status}"
            self._stats["retry"] += 1
            log.warning("registry request retried", what=what, reason=reason, attempt=attempt,
                        delay=round(delay, 3))
            await self._sleep(delay)
            attempt += 1

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        told = retry_after_seconds(retry_after)
        if told is not None:
            return min(told, self._retry_after_cap)
        delay = min(self._max_backoff, self._backoff * 2 ** (attempt - 1))
        return delay * random.uniform(0.5, 1.0)

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
            started = time.monotonic()
            status: int | None = None
            http: httpx.AsyncClient | None = None
            try:
                http = await self._idle.get()  # a free connection
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
                tls = _tls_failure(exc)
                if tls:
                    raise _Fatal(
                        f"TLS with {target.netloc.decode()}: {tls}; set REGISTRY_CA_FILE to the CA of the "
                        "registry's certificate (or REGISTRY_INSECURE=true for a plain-HTTP registry)"
                    ) from None
                detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                raise _Transient(one_line(detail)) from None
            finally:
                if http is not None:
                    self._idle.put_nowait(http)
                elapsed = time.monotonic() - started
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
