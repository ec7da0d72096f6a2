"""Registry credentials, ``WWW-Authenticate`` challenges and the Bearer token cache.

Kept apart from the HTTP client so that the rules that protect secrets live in one place:
credentials come only from a ``.dockerconfigjson`` (a mounted Secret), their ``repr`` hides
the password, and no error message here ever quotes a secret value, only what is wrong and
which variable to fix (``REGISTRY_AUTH_FILE``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from kitgc.errors import ConfigError

AUTH_FILE_VAR = "REGISTRY_AUTH_FILE"


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)


def _host_of(key: str) -> str:
    """``https://host:5000/v1/`` -> ``host:5000`` (lower-case), as Docker matches auths keys."""
    key = key.strip()
    for scheme in ("https://", "http://"):
        if key.lower().startswith(scheme):
            key = key[len(scheme) :]
    return key.split("/", 1)[0].lower()


# Docker Hub answers to several names; `docker login` writes https://index.docker.io/v1/.
DOCKER_HUB_HOSTS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})


def load_docker_config(path: str, host: str) -> Credentials | None:
    """Credentials for ``host`` ([host][:port]) from a ``.dockerconfigjson`` file, or None.

    Entries may be ``{"auth": base64("user:password")}`` or ``{"username", "password"}``;
    keys may carry a scheme or a path (``https://host``, ``http://host/v1/``). A malformed file
    is a configuration error: better to stop than to run anonymously by accident.
    """
    where = f"invalid {AUTH_FILE_VAR} {path!r}"
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read it ({exc.strerror or type(exc).__name__})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not UTF-8 text") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where}: not valid JSON (line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("auths"), dict):
        raise ConfigError(f"{where}: expected an object with an \"auths\" object (a .dockerconfigjson)")
    wanted = _host_of(host)
    aliases = DOCKER_HUB_HOSTS if wanted in DOCKER_HUB_HOSTS else {wanted}
    for key, entry in sorted(doc["auths"].items(), key=lambda kv: _host_of(str(kv[0])) != wanted):
        if _host_of(str(key)) not in aliases:
            continue
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: the entry for {key!r} is not an object")
        return _entry_credentials(entry, f"{where}: the entry for {key!r}")
    return None


def _entry_credentials(entry: dict[str, object], where: str) -> Credentials:
    auth = entry.get("auth")
    if auth:
        if not isinstance(auth, str):
            raise ConfigError(f"{where} has an \"auth\" that is not a string")
        try:
            decoded = base64.b64decode(auth.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise ConfigError(f"{where} has an \"auth\" that is not valid base64 of user:password") from None
        user, sep, password = decoded.partition(":")
        if not sep or not user:
            raise ConfigError(f"{where} has an \"auth\" that does not decode to user:password")
        return Credentials(user, password)
    username, secret = entry.get("username"), entry.get("password")
    if isinstance(username, str) and username and isinstance(secret, str):
        return Credentials(username, secret)
    if entry.get("identitytoken") or entry.get("registrytoken"):
        raise ConfigError(f"{where} holds only an identity/registry token, which is not supported")
    raise ConfigError(f"{where} has neither \"auth\" nor \"username\" and \"password\"")


def basic_header(credentials: Credentials) -> str:
    raw = f"{credentials.username}:{credentials.password}".encode()
    return "Basic " + base64.b64encode(raw).decode()


# --- challenges ----------------------------------------------------------------------

_PARAM = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')


@dataclass(frozen=True)
class Challenge:
    """One parsed ``WWW-Authenticate`` header: scheme (lower-case) and its parameters."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)
    scopes: tuple[str, ...] = ()  # Bearer: the scope parameter, split on spaces

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")

    @property
    def service(self) -> str | None:
        return self.params.get("service")


def parse_challenge(header: str | None) -> Challenge | None:
    """Parse ``Bearer realm="…",service="…",scope="…"`` or ``Basic realm="…"``; None if absent.

    Only the first challenge is read: registries send one, and a Bearer one comes first
    when both are offered.
    """
    if not header or not header.strip():
        return None
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    pos = 0
    while pos < len(rest):
        m = _PARAM.match(rest, pos)
        if not m or m.end() == pos:
            break
        value = m.group(2) if m.group(2) is not None else (m.group(3) or "")
        params[m.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
        pos = m.end()
    scopes = tuple(s for s in params.get("scope", "").split(" ") if s)
    return Challenge(scheme.lower(), params, scopes)


# --- token cache ---------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    value: str = field(repr=False)
    expires_at: float  # time.monotonic() when the registry stops accepting it


Fetch = Callable[[Challenge, tuple[str, ...]], Awaitable[tuple[str, float]]]


class TokenCache:
    """Bearer tokens by scope set, refreshed shortly before they expire.

    One lock per scope set makes concurrent requests for one repository share one token
    request; :meth:`invalidate` drops a token the registry refused (it expired mid-run, or
    was revoked) only if it is still the cached one, so a burst of 401s costs one refresh.
    """

    def __init__(self, fetch: Fetch, clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self._clock = clock
        self._tokens: dict[tuple[str, ...], Token] = {}
        self._locks: dict[tuple[str, ...], asyncio.Lock] = {}

    @staticmethod
    def margin(expires_in: float) -> float:
        """Refresh this long before expiry: a tenth of the lifetime, at most 10 seconds."""
        return min(10.0, max(expires_in, 0.0) / 10)

    def cached(self, key: tuple[str, ...]) -> str | None:
        token = self._tokens.get(key)
        if token is None or self._clock() >= token.expires_at:
            return None
        return token.value

    async def get(
        self, challenge: Challenge, key: tuple[str, ...], scopes: tuple[str, ...]
    ) -> tuple[str, bool]:
        """(token, fetched now) for ``key`` (our scopes); fetched with ``scopes`` if none is cached.

        ``fetched`` tells the caller that a 401 with this token is final: a token just issued
        and refused will not get better by asking again.
        """
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            value = self.cached(key)
            if value is not None:
                return value, False
            value, expires_in = await self._fetch(challenge, scopes)
            self._tokens[key] = Token(value, self._clock() + expires_in - self.margin(expires_in))
            return value, True

    def invalidate(self, key: tuple[str, ...], value: str) -> None:
        token = self._tokens.get(key)
        if token is not None and token.value == value:
            del self._tokens[key]
