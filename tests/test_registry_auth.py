"""Credentials, Basic auth over TLS and the Bearer token flow, against real servers; and the
rules that keep secrets secret (no logs, no messages, no Authorization across hosts)."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import structlog

from kitgc.errors import ConfigError, RegistryError
from kitgc.registry import Credentials, RegistryClient, load_docker_config
from kitgc.registry.auth import TokenCache, parse_challenge
from testbed.images import digest_of, push_image
from testbed.registry_fixtures import push_client
from testbed.registry_server import RegistryServer
from testbed.token_issuer import REGISTRY_LEEWAY, TokenIssuer

# --- .dockerconfigjson -----------------------------------------------------------------


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("key", "host"),
    [("reg.example:5000", "reg.example:5000"), ("https://reg.example:5000", "reg.example:5000"),
     ("http://reg.example/v1/", "reg.example"), ("REG.example", "reg.example")],
)
def test_docker_config_matches_host_with_scheme_or_path(tmp_path: Path, key: str, host: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"auths": {"other:1": {"auth": b64("x:y")}, key: {"auth": b64("u:p:w")}}}))
    assert load_docker_config(str(path), host) == Credentials("u", "p:w")


def test_docker_config_username_password_form_and_no_match(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"auths": {"reg.example": {"username": "u", "password": "p"}}}))
    assert load_docker_config(str(path), "reg.example") == Credentials("u", "p")
    assert load_docker_config(str(path), "reg.example:5000") is None


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", "not valid JSON"), ('{"auths": []}', '"auths"'),
     (json.dumps({"auths": {"reg": {"auth": "s3cr3t-not-base64!"}}}), "not valid base64"),
     (json.dumps({"auths": {"reg": {"auth": b64("s3cr3t-no-colon")}}}), "user:password"),
     (json.dumps({"auths": {"reg": {"password": "s3cr3t"}}}), 'neither "auth"'),
     (json.dumps({"auths": {"reg": "s3cr3t"}}), "not an object")],
    ids=["json", "shape", "base64", "colon", "fields", "entry"],
)
def test_bad_docker_config_is_one_line_config_error_without_secrets(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "config.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message) as err:
        load_docker_config(str(path), "reg")
    text = str(err.value)
    assert text.startswith("invalid REGISTRY_AUTH_FILE") and "\n" not in text
    assert "s3cr3t" not in text and b64("s3cr3t-no-colon") not in text


def test_missing_docker_config_is_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"REGISTRY_AUTH_FILE.*cannot read"):
        load_docker_config(str(tmp_path / "nope.json"), "reg")


def test_credentials_repr_hides_the_password() -> None:
    assert "hunter2" not in repr(Credentials("me", "hunter2"))


def test_challenge_parsing_keeps_quoted_commas_and_repeated_scopes() -> None:
    ch = parse_challenge('Bearer realm="https://auth.example/token",service="reg",'
                         'scope="repository:a/b:pull,push repository:c:pull"')
    assert ch is not None and ch.scheme == "bearer" and ch.realm == "https://auth.example/token"
    assert ch.service == "reg" and ch.scopes == ("repository:a/b:pull,push", "repository:c:pull")
    assert parse_challenge('Basic realm="x"') == parse_challenge('basic realm=x')


async def test_token_cache_refreshes_shortly_before_expiry() -> None:
    now = [0.0]
    fetched: list[tuple[str, ...]] = []

    async def fetch(challenge: object, scopes: tuple[str, ...]) -> tuple[str, float]:
        fetched.append(scopes)
        return f"t{len(fetched)}", 60.0

    cache = TokenCache(fetch, clock=lambda: now[0])  # type: ignore[arg-type]
    ch = parse_challenge('Bearer realm="http://x/t"')
    assert ch is not None
    assert await cache.get(ch, ("s",), ("s",)) == ("t1", True)
    now[0] = 53.0
    assert await cache.get(ch, ("s",), ("s",)) == ("t1", False)
    now[0] = 54.5  # within the 6 s margin of a 60 s token
    assert await cache.get(ch, ("s",), ("s",)) == ("t2", True)


# --- Basic over TLS --------------------------------------------------------------------


async def test_basic_auth_over_tls_with_ca_and_docker_config(
    tls_registry: RegistryServer, auth_file: Callable[[RegistryServer], str], org: str
) -> None:
    repo = f"{org}/camel-k-kit-tls"
    with push_client(tls_registry) as c:
        digest = push_image(tls_registry.url, repo, ["1"], client=c)
    creds = load_docker_config(auth_file(tls_registry), tls_registry.address)
    assert creds is not None
    async with RegistryClient(tls_registry.address, ca_file=tls_registry.ca_file, credentials=creds) as client:
        assert repo in await client.catalog()
        assert (await client.get_manifest(repo, "1")).digest == digest
        assert await client.delete_manifest(repo, digest) is True
        # one anonymous probe answered by the Basic challenge, then credentials up front
        assert client.stats["catalog"] == 2 and client.stats["manifest_get"] == 1


async def test_wrong_password_is_a_401_error_that_does_not_quote_it(tls_registry: RegistryServer) -> None:
    creds = Credentials("kitgc", "definitely-wrong-pw")
    async with RegistryClient(tls_registry.address, ca_file=tls_registry.ca_file, credentials=creds) as client:
        with pytest.raises(RegistryError) as err:
            await client.catalog()
    assert err.value.status == 401 and "definitely-wrong-pw" not in str(err.value)


# --- Bearer tokens ---------------------------------------------------------------------


def token_client(server: RegistryServer, **kw: object) -> RegistryClient:
    creds = Credentials(server.username or "", server.password or "")
    return RegistryClient(server.address, insecure=True, credentials=creds, backoff=0.001, **kw)  # type: ignore[arg-type]


async def test_bearer_flow_asks_catalog_pull_and_delete_scopes_and_caches_tokens(
    token_registry: RegistryServer, token_issuer: TokenIssuer, org: str
) -> None:
    repo = f"{org}/camel-k-kit-tok"
    with push_client(token_registry) as c:
        digest = push_image(token_registry.url, repo, ["1", "2", "3"], client=c)
    token_issuer.requests.clear()
    async with token_client(token_registry) as client:
        assert repo in await client.catalog()
        for tag in ("1", "2", "3"):
            assert (await client.get_manifest(repo, tag)).digest == digest
        assert sorted(await client.tags(repo)) == ["1", "2", "3"]
        assert await client.delete_manifest(repo, digest) is True
        assert client.stats["token"] == 3  # catalog, pull, delete: each fetched once
    scopes = token_issuer.scopes_requested()
    assert "registry:catalog:*" in scopes
    assert f"repository:{repo}:pull" in scopes and f"repository:{repo}:delete" in scopes
    assert all(r.subject == token_registry.username for r in token_issuer.requests)


async def test_token_expiring_mid_run_is_replaced_once(
    token_registry: RegistryServer, token_issuer: TokenIssuer, org: str
) -> None:
    repo = f"{org}/camel-k-kit-exp"
    with push_client(token_registry) as c:
        digest = push_image(token_registry.url, repo, ["1"], client=c)
    token_issuer.issued.clear()
    # the answer promises 300 s, but the registry will refuse the JWT after ~1-2 s
    token_issuer.lifetime = 2 - REGISTRY_LEEWAY
    async with token_client(token_registry) as client:
        assert (await client.get_manifest(repo, "1")).digest == digest
        time.sleep(2.5)
        assert (await client.get_manifest(repo, "1")).digest == digest
        # anonymous probe + first token; refused expired token + replacement
        assert client.stats["token"] == 2 and client.stats["manifest_get"] == 4
    assert len(set(token_issuer.issued)) == 2


async def test_token_refused_right_after_issue_is_not_fetched_again(
    token_registry: RegistryServer, token_issuer: TokenIssuer, org: str
) -> None:
    token_issuer.grant = lambda subject, type_, name, actions: []  # valid token, no access
    async with token_client(token_registry) as client:
        with pytest.raises(RegistryError) as err:
            await client.tags(f"{org}/camel-k-kit-none")
        assert err.value.status == 401 and client.stats["token"] == 1


async def test_token_answer_with_access_token_and_default_expiry() -> None:
    token_requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.test":
            token_requests.append(request)
            return httpx.Response(200, json={"access_token": "opaque-token-value"})
        if request.headers.get("Authorization") != "Bearer opaque-token-value":
            return httpx.Response(401, headers={"WWW-Authenticate":
                                  'Bearer realm="https://auth.test/token",service="reg.test",scope="x"'})
        return httpx.Response(200, json={"tags": ["1"]})

    async with RegistryClient("reg.test", transport=httpx.MockTransport(handler)) as client:
        assert await client.tags("o/camel-k-kit-a") == ["1"]
        assert await client.tags("o/camel-k-kit-a") == ["1"]
    assert len(token_requests) == 1 and "Authorization" not in token_requests[0].headers
    assert token_requests[0].url.params.get_list("scope") == ["repository:o/camel-k-kit-a:pull", "x"]
    assert token_requests[0].url.params["service"] == "reg.test"


async def test_credentials_are_not_sent_before_the_registry_asks() -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Authorization"))
        return httpx.Response(200, json={"repositories": []})

    async with RegistryClient("reg.test", credentials=Credentials("u", "p"),
                              transport=httpx.MockTransport(handler)) as client:
        await client.catalog()
    assert seen == [None]


# --- secrets ---------------------------------------------------------------------------


async def test_credentials_and_tokens_never_appear_in_logs(
    tls_registry: RegistryServer, token_registry: RegistryServer, token_issuer: TokenIssuer, org: str
) -> None:
    secrets = {tls_registry.password, token_registry.password}
    with structlog.testing.capture_logs() as events:
        async with RegistryClient(tls_registry.address, ca_file=tls_registry.ca_file,
                                  credentials=Credentials(tls_registry.username or "", tls_registry.password or ""),
                                  ) as client:
            await client.catalog()
        async with token_client(token_registry) as client:
            await client.catalog()
            with pytest.raises(RegistryError, match="NAME_UNKNOWN"):
                await client.tags(f"{org}/camel-k-kit-none")
        async with RegistryClient(tls_registry.address, ca_file=tls_registry.ca_file,
                                  credentials=Credentials("kitgc", "wrong-secret-pw")) as client:
            with pytest.raises(RegistryError) as err:
                await client.catalog()
    assert events and any(e.get("log_level") == "debug" for e in events)
    text = repr(events) + str(err.value)
    needles = {s for s in secrets if s} | {"wrong-secret-pw"} | set(token_issuer.issued)
    needles |= {base64.b64encode(f"{u}:{p}".encode()).decode() for u, p in
                [(tls_registry.username, tls_registry.password), (token_registry.username, token_registry.password)]}
    assert token_issuer.issued
    for needle in needles:
        assert needle not in text
    assert "Authorization" not in text


# --- redirects -------------------------------------------------------------------------


@pytest.fixture
def two_origins() -> Iterator[tuple[str, str, list[tuple[str, str | None]]]]:
    """Registry A (Basic auth) redirects manifest GETs to B, another origin on loopback."""
    seen: list[tuple[str, str | None]] = []
    body = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                       "manifests": []}).encode()
    servers: list[ThreadingHTTPServer] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            name = "A" if self.server is servers[0] else "B"
            auth = self.headers.get("Authorization")
            seen.append((name + self.path, auth))
            status, headers, payload = 200, {}, b""
            if name == "A" and not auth:
                status, headers = 401, {"WWW-Authenticate": 'Basic realm="a"'}
            elif name == "A" and self.path.endswith("/same"):
                status, headers = 307, {"Location": self.path.replace("/same", "/final")}
            elif name == "A" and not self.path.endswith("/final"):
                status = 307
                headers = {"Location": f"http://127.0.0.1:{servers[1].server_address[1]}{self.path}"}
            else:
                payload = body
                headers = {"Content-Type": "application/vnd.oci.image.index.v1+json",
                           "Docker-Content-Digest": digest_of(body)}
            self.send_response(status)
            for key, value in {**headers, "Content-Length": str(len(payload))}.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    for _ in range(2):
        srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        servers.append(srv)
        threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True).start()
    yield f"127.0.0.1:{servers[0].server_address[1]}", f"127.0.0.1:{servers[1].server_address[1]}", seen
    for srv in servers:
        srv.shutdown()
        srv.server_close()


async def test_authorization_is_never_forwarded_to_another_host_on_redirect(
    two_origins: tuple[str, str, list[tuple[str, str | None]]],
) -> None:
    a, _, seen = two_origins
    async with RegistryClient(a, insecure=True, credentials=Credentials("u", "p")) as client:
        fetched = await client.get_manifest("o/camel-k-kit-a", "1")
        same = await client.get_manifest("o/camel-k-kit-a", "same")
    assert fetched.media_type == same.media_type == "application/vnd.oci.image.index.v1+json"
    on_b = [auth for path, auth in seen if path.startswith("B")]
    on_a = [auth for path, auth in seen if path.startswith("A")]
    assert on_b == [None]  # followed to B, without credentials
    assert on_a[0] is None and all(a == "Basic " + b64("u:p") for a in on_a[1:])  # same origin keeps them
