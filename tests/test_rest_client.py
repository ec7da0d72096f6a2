"""The vendor REST client (kitgc.stores.vendors.rest) against a scripted loopback server.

Each test programs what the server answers, path by path, and checks what the client made of
it: every page followed (GitHub ``Link``, Docker Hub ``next``), never to another origin nor in
a loop; 429/5xx retried with the server's ``Retry-After`` (the wait is recorded through the
injected ``sleep``, never timed); GitHub's exhausted rate limit waited for only when the reset
is near; bad answers turned into one-line errors that never show the token; and where the
token comes from.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from kitgc.config import Settings
from kitgc.errors import ConfigError, RegistryError
from kitgc.retry import RetryPolicy
from kitgc.stores.vendors.rest import RestClient, api_token
from testbed.registry_server import TLSFiles, make_tls, write_docker_config
from testbed.servers import BackgroundHTTPServer, QuietHTTPServer

TOKEN = "ghp_secret0123456789"
NOW = 1_700_000_000.0
Response = tuple[int, dict[str, str], bytes]


@dataclass
class Script:
    """``path -> list of answers`` (the last one repeats); every request is recorded."""

    answers: dict[str, list[Response]] = field(default_factory=dict)
    seen: list[tuple[str, str, str | None]] = field(default_factory=list)  # method, path?query, Authorization

    def on(self, path: str, *answers: Response) -> None:
        self.answers[path] = list(answers)

    def answer(self, method: str, target: str, auth: str | None) -> Response:
        self.seen.append((method, target, auth))
        queue = self.answers.get(target) or self.answers.get(target.split("?")[0])
        if not queue:
            return 404, {}, b'{"message": "Not Found"}'
        return queue.pop(0) if len(queue) > 1 else queue[0]


def ok(doc: Any, **headers: str) -> Response:
    return 200, headers, json.dumps(doc).encode()


@pytest.fixture
def script() -> Iterator[tuple[Script, str]]:
    s = Script()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            status, headers, body = s.answer(self.command, self.path, self.headers.get("Authorization"))
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k.replace("_", "-"), v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_DELETE = _handle

    with BackgroundHTTPServer(Handler, name="rest-script") as server:
        yield s, server.url


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def make(script: tuple[Script, str], waits: list[float]) -> Callable[..., RestClient]:
    def build(**options: Any) -> RestClient:
        async def sleep(seconds: float) -> None:
            waits.append(seconds)

        options.setdefault("retry", RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.02, retry_after_cap=30))
        client = RestClient(script[1], name="Test API", sleep=sleep, clock=lambda: NOW, **options)
        client.authorization = f"Bearer {TOKEN}"
        return client

    return build


# --- pagination -------------------------------------------------------------------------------


async def test_link_pages_are_all_followed_with_the_token_on_each(script, make) -> None:
    s, url = script
    s.on("/orgs/o/packages?package_type=container&per_page=2",
         ok([{"name": "a"}, {"name": "b"}], Link=f'<{url}/orgs/o/packages?page=2>; rel="next", <x>; rel="last"'))
    s.on("/orgs/o/packages?page=2", ok([{"name": "c"}]))
    client = make()
    items = await client.get_paged("packages", "orgs/o/packages", "list", paging="link",
                                   params={"package_type": "container", "per_page": 2})
    await client.aclose()
    assert [i["name"] for i in items] == ["a", "b", "c"]
    assert [auth for _, _, auth in s.seen] == [f"Bearer {TOKEN}"] * 2
    assert client.stats["packages"] == 2


async def test_next_pages_are_followed_until_null(script, make) -> None:
    s, url = script
    s.on("/v2/namespaces/n/repositories", ok({"count": 3, "next": f"{url}/v2/p2", "results": [1, 2]}))
    s.on("/v2/p2", ok({"count": 3, "next": None, "results": [3]}))
    client = make()
    items = await client.get_paged("list", "v2/namespaces/n/repositories", "list", paging="next")
    await client.aclose()
    assert items == [1, 2, 3]


async def test_a_next_page_on_another_origin_is_refused_and_the_token_stays_home(script, make) -> None:
    s, _ = script
    s.on("/v2/list", ok({"next": "https://elsewhere.example/v2/list?page=2", "results": [1]}))
    client = make()
    with pytest.raises(RegistryError, match=r"refusing to follow https://elsewhere\.example") as caught:
        await client.get_paged("list", "v2/list", "list", paging="next")
    await client.aclose()
    assert len(s.seen) == 1
    assert TOKEN not in str(caught.value)


async def test_pages_that_loop_back_are_an_error_not_a_hang(script, make) -> None:
    s, url = script
    s.on("/loop", ok([1], Link=f'<{url}/loop>; rel="next"'))
    client = make()
    with pytest.raises(RegistryError, match="loop back"):
        await client.get_paged("x", "loop", "list", paging="link")
    await client.aclose()
    assert len(s.seen) == 1


async def test_a_page_of_the_wrong_shape_is_a_one_line_error(script, make) -> None:
    s, _ = script
    s.on("/x", ok({"results": "nope"}))
    client = make()
    with pytest.raises(RegistryError, match='list: the answer has no "results" list') as caught:
        await client.get_paged("x", "x", "list", paging="next")
    await client.aclose()
    assert "\n" not in str(caught.value)


# --- retries and rate limits --------------------------------------------------------------------


async def test_429_is_retried_after_the_servers_retry_after(script, make, waits) -> None:
    s, _ = script
    s.on("/x", (429, {"Retry-After": "2"}, b'{"message": "slow down"}'), ok({"fine": True}))
    client = make()
    assert await client.get_json("x", "x", "get x") == {"fine": True}
    await client.aclose()
    assert waits == [2.0]
    assert client.stats["retry"] == 1 and client.stats["x"] == 2


async def test_5xx_is_retried_a_bounded_number_of_times_then_reported(script, make, waits) -> None:
    s, _ = script
    s.on("/x", (502, {}, b"<html>bad gateway</html>"))
    client = make()
    with pytest.raises(RegistryError, match=r"^get x: HTTP 502$"):
        await client.get_json("x", "x", "get x")
    await client.aclose()
    assert len(s.seen) == 3 and len(waits) == 2


async def test_an_exhausted_github_rate_limit_is_waited_for_when_the_reset_is_near(script, make, waits) -> None:
    s, _ = script
    limited = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 5)}
    s.on("/x", (403, limited, b'{"message": "API rate limit exceeded"}'), ok([]))
    client = make()
    assert await client.get_json("x", "x", "get x") == []
    await client.aclose()
    assert waits == [5.0]


async def test_an_exhausted_rate_limit_resetting_late_fails_at_once(script, make, waits) -> None:
    s, _ = script
    limited = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 3000)}
    s.on("/x", (403, limited, b'{"message": "API rate limit exceeded"}'))
    client = make()
    with pytest.raises(RegistryError, match="rate limit exhausted until 1700003000") as caught:
        await client.get_json("x", "x", "get x")
    await client.aclose()
    assert waits == [] and len(s.seen) == 1
    assert caught.value.status == 403


async def test_a_plain_403_is_not_retried(script, make, waits) -> None:
    s, _ = script
    s.on("/x", (403, {"x-ratelimit-remaining": "4999"}, b'{"message": "Must have admin rights"}'))
    client = make()
    with pytest.raises(RegistryError, match="get x: HTTP 403: Must have admin rights"):
        await client.get_json("x", "x", "get x")
    await client.aclose()
    assert waits == [] and len(s.seen) == 1


# --- bad answers ------------------------------------------------------------------------------------


async def test_garbage_instead_of_json_is_a_one_line_error(script, make) -> None:
    s, _ = script
    s.on("/x", (200, {}, b"<html>\n<body>maintenance</body>\n</html>"))
    client = make()
    with pytest.raises(RegistryError, match=r"^get x: the answer is not valid JSON \(HTTP 200\)$"):
        await client.get_json("x", "x", "get x")
    await client.aclose()


async def test_401_names_the_vendors_message_and_never_the_token(script, make) -> None:
    s, _ = script
    s.on("/x", (401, {}, json.dumps({"message": "Bad credentials",
                                     "documentation_url": "https://docs.github.com/rest"}).encode()))
    client = make()
    with pytest.raises(RegistryError) as caught:
        await client.get_json("x", "x", "get x")
    await client.aclose()
    assert str(caught.value) == "get x: HTTP 401: Bad credentials"
    assert caught.value.status == 401
    assert TOKEN not in str(caught.value)


async def test_delete_hands_back_a_refusal_for_the_store_to_judge(script, make) -> None:
    s, _ = script
    s.on("/v", (400, {}, b'{"message": "You cannot delete the last tagged version of a package."}'))
    client = make()
    reply = await client.delete("delete_version", "v", "DELETE v")
    await client.aclose()
    assert reply.status == 400 and not reply.ok
    assert s.seen == [("DELETE", "/v", f"Bearer {TOKEN}")]


async def test_a_login_post_goes_without_the_authorization_header(script, make) -> None:
    s, _ = script
    s.on("/v2/auth/token", ok({"access_token": "jwt"}))
    client = make()
    assert await client.post_json("login", "v2/auth/token", {"identifier": "u", "secret": "p"}, "login") == \
        {"access_token": "jwt"}
    await client.aclose()
    assert s.seen == [("POST", "/v2/auth/token", None)]


def test_an_api_url_that_is_not_http_is_refused() -> None:
    with pytest.raises(RegistryError, match="invalid API URL"):
        RestClient("ftp://example.com", name="Test API")


# --- TLS -------------------------------------------------------------------------------------------


def _tls_server(tls: TLSFiles) -> BackgroundHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            body = b'{"ok": true}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    class TLSServer(QuietHTTPServer):
        def server_bind(self) -> None:
            super().server_bind()
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls.cert_file, tls.key_file)
            self.socket = context.wrap_socket(self.socket, server_side=True)

        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # the refused handshake is the point

    return BackgroundHTTPServer(Handler, name="rest-tls", server_class=TLSServer)


async def test_tls_is_verified_and_an_untrusted_api_is_refused_without_retries(tmp_path: Path, waits) -> None:
    tls = make_tls(tmp_path / "tls")
    with _tls_server(tls) as server:
        url = f"https://{server.address}"

        async def sleep(seconds: float) -> None:
            waits.append(seconds)

        untrusting = RestClient(url, name="Test API", sleep=sleep)
        with pytest.raises(RegistryError, match=r"certificate verification failed.*REGISTRY_CA_FILE"):
            await untrusting.get_json("x", "x", "get x")
        await untrusting.aclose()
        trusting = RestClient(url, name="Test API", ca_file=tls.ca_file, sleep=sleep)
        assert await trusting.get_json("x", "x", "get x") == {"ok": True}
        await trusting.aclose()
    assert waits == [] and untrusting.stats["x"] == 1


# --- where the token comes from -----------------------------------------------------------------------


def _settings(**values: Any) -> Settings:
    return Settings(registry_timeout=timedelta(seconds=5), **values)


def test_the_token_file_is_read_and_stripped(tmp_path: Path) -> None:
    (tmp_path / "t").write_text(f"  {TOKEN}\n")
    assert api_token(_settings(registry_api_token_file=str(tmp_path / "t")), ("ghcr.io",), "GitHub") == TOKEN


def test_an_empty_token_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "t").write_text("\n")
    with pytest.raises(ConfigError, match=r"REGISTRY_API_TOKEN_FILE .* the file is empty"):
        api_token(_settings(registry_api_token_file=str(tmp_path / "t")), ("ghcr.io",), "GitHub")


def test_without_a_token_file_the_registry_logins_password_is_the_token(tmp_path: Path) -> None:
    path = write_docker_config(tmp_path / "config.json", "https://index.docker.io/v1/", "me", TOKEN)
    assert api_token(_settings(registry_auth_file=path), ("docker.io", "index.docker.io"), "Docker Hub") == TOKEN


def test_no_token_anywhere_names_both_variables(tmp_path: Path) -> None:
    path = write_docker_config(tmp_path / "config.json", "quay.io", "me", "pw")
    with pytest.raises(ConfigError) as caught:
        api_token(_settings(registry_auth_file=path), ("ghcr.io",), "GitHub Packages API")
    assert "REGISTRY_API_TOKEN_FILE" in str(caught.value) and "REGISTRY_AUTH_FILE" in str(caught.value)
    assert "pw" not in str(caught.value)
