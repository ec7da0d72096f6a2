"""Pytest fixtures for real Distribution registries (see :mod:`testbed.registry_server`).

Registries are session-scoped (starting one takes well under a second, but there is no need
to pay it per test); tests isolate themselves by pushing under their own organization
(``org`` fixture), never by relying on an empty registry. ``registry_factory`` starts extra
ones with special settings (deletion disabled, …) that are stopped at the end of the session.
"""

from __future__ import annotations

import secrets
import ssl
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from testbed.images import RegistryAuth
from testbed.registry_server import (
    RegistryServer,
    make_tls,
    registry_available,
    start_registry,
    write_docker_config,
)
from testbed.token_issuer import TokenIssuer

TOKEN_USER = "robot"


def push_client(server: RegistryServer) -> httpx.Client:
    """An httpx client that can push to ``server``: trusts its CA, answers its auth challenge."""
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=server.ca_file) if server.ca_file else True
    auth = RegistryAuth(server.username, server.password) if server.username else None
    return httpx.Client(verify=verify, auth=auth, timeout=30.0)


@pytest.fixture(scope="session")
def registry_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., RegistryServer]]:
    """``start(**start_registry options) -> RegistryServer``; all stopped at session end."""
    if not registry_available():
        pytest.skip("docker-registry or htpasswd is not installed (make system-deps)")
    started: list[RegistryServer] = []

    def start(**options: Any) -> RegistryServer:
        server = start_registry(tmp_path_factory.mktemp("registry"), **options)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def registry(registry_factory: Callable[..., RegistryServer]) -> RegistryServer:
    """Plain HTTP, anonymous, deletion enabled."""
    return registry_factory(delete_enabled=True)


@pytest.fixture(scope="session")
def tls_registry(
    registry_factory: Callable[..., RegistryServer], tmp_path_factory: pytest.TempPathFactory
) -> RegistryServer:
    """HTTPS with a self-signed CA (``ca_file``) and htpasswd Basic auth (``username``/``password``)."""
    tls = make_tls(tmp_path_factory.mktemp("tls"))
    return registry_factory(tls=tls, username="kitgc", password="pw-" + secrets.token_hex(12))


@pytest.fixture(scope="session")
def token_issuer_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenIssuer]:
    issuer = TokenIssuer(users={TOKEN_USER: "tok-" + secrets.token_hex(12)})
    issuer.start(tmp_path_factory.mktemp("issuer"))
    yield issuer
    issuer.stop()


@pytest.fixture
def token_issuer(token_issuer_session: TokenIssuer) -> Iterator[TokenIssuer]:
    """The session's issuer with default settings and an empty request log for this test."""
    token_issuer_session.reset()
    yield token_issuer_session
    token_issuer_session.reset()


@pytest.fixture(scope="session")
def token_registry(
    registry_factory: Callable[..., RegistryServer], token_issuer_session: TokenIssuer
) -> RegistryServer:
    """Plain HTTP with ``auth.token`` trusting the session's issuer; ``username``/``password``
    are the issuer's user, which grants whatever it asks for (see ``TokenIssuer``)."""
    server = registry_factory(token=token_issuer_session.token_auth())
    server.username = TOKEN_USER
    server.password = token_issuer_session.users[TOKEN_USER]
    return server


@pytest.fixture
def org() -> str:
    """A fresh organization name, so tests sharing a registry never see each other's images."""
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture
def auth_file(tmp_path: Path) -> Callable[[RegistryServer], str]:
    """``make(server) -> path`` of a .dockerconfigjson holding the server's credentials."""
    def make(server: RegistryServer) -> str:
        assert server.username and server.password is not None
        return write_docker_config(tmp_path / "config.json", server.address, server.username, server.password)

    return make
