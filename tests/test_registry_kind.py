"""REGISTRY_KIND=auto: the kind comes from the host name, else from the registry's answers.

A wrong kind must not be picked for a registry that names itself otherwise, and a setting
always wins. The answers are those of the real Distribution registry, and of loopback
servers that send the headers Harbor, Quay, OpenShift, Artifactory and Nexus send on
``GET /v2/`` (sources in :mod:`kitgc.stores.kinds`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from kitgc.config import load
from kitgc.stores.choose import DEFAULT_REASON, choose_kind, decide_kind
from kitgc.stores.kinds import kind_of_answer, kind_of_host
from testbed.servers import BackgroundHTTPServer


@pytest.mark.parametrize(("host", "kind"), [
    ("docker.io", "dockerhub"), ("index.docker.io", "dockerhub"), ("registry-1.docker.io", "dockerhub"),
    ("ghcr.io", "ghcr"), ("quay.io", "quay"), ("gcr.io", "gcr"), ("eu.gcr.io", "gcr"),
    ("europe-west1-docker.pkg.dev", "gcr"), ("myacr.azurecr.io", "acr"),
    ("123456789012.dkr.ecr.eu-west-1.amazonaws.com", "ecr"), ("QUAY.IO:443", "quay"),
])
def test_vendor_hosts_name_their_kind(host: str, kind: str) -> None:
    assert kind_of_host(host) == kind
    assert choose_kind("auto", host) == (kind, f"the host name {host}")


@pytest.mark.parametrize("host", ["registry.example.com", "notdocker.io.example.com", "ghcr.io.evil.example",
                                  "127.0.0.1:5000", "quay.example.com", "my-gcr.io.internal"])
def test_hosts_that_only_look_like_a_vendor_name_nothing(host: str) -> None:
    assert kind_of_host(host) is None
    assert choose_kind("auto", host) == ("distribution", DEFAULT_REASON)


def test_a_setting_wins_over_the_host_name() -> None:
    assert choose_kind("distribution", "ghcr.io") == ("distribution", "REGISTRY_KIND")


def test_openshift_service_name_is_openshift() -> None:
    assert choose_kind("auto", "image-registry.openshift-image-registry.svc:5000")[0] == "openshift"


@pytest.mark.parametrize(("headers", "kind"), [
    ({"WWW-Authenticate": 'Bearer realm="https://h.example/service/token",service="harbor-registry"'}, "harbor"),
    ({"WWW-Authenticate": 'Bearer realm="https://quay.example/v2/auth",service="quay.example"'}, "quay"),
    ({"WWW-Authenticate": 'Bearer realm="https://r.example/openshift/token"'}, "openshift"),
    ({"X-JFrog-Version": "Artifactory/7.77.5"}, "artifactory"),
    ({"Server": "Nexus/3.61.0-02 (OSS)"}, "nexus"),
])
def test_answers_name_self_hosted_kinds(headers: dict[str, str], kind: str) -> None:
    found = kind_of_answer(headers)
    assert found is not None and found[0] == kind


def test_plain_distribution_answers_name_nothing() -> None:
    assert kind_of_answer({"Docker-Distribution-Api-Version": "registry/2.0"}) is None
    assert kind_of_answer({"WWW-Authenticate": 'Bearer realm="https://auth.example/token",service="reg"'}) is None
    assert kind_of_answer({"WWW-Authenticate": 'Basic realm="Registry"'}) is None


def _answering(headers: dict[str, str], status: int = 401) -> BackgroundHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    return BackgroundHTTPServer(Handler, name="kind-answer")


@pytest.fixture
def harbor_like() -> Iterator[BackgroundHTTPServer]:
    server = _answering({"WWW-Authenticate": 'Bearer realm="http://127.0.0.1:1/service/token",'
                                             'service="harbor-registry",scope=""'})
    yield server
    server.stop()


def test_auto_asks_a_registry_on_a_custom_host_what_it_is(harbor_like: BackgroundHTTPServer) -> None:
    settings = load({"REGISTRY_ADDRESS": harbor_like.address, "REGISTRY_INSECURE": "true"})
    kind, why = asyncio.run(decide_kind(settings, harbor_like.address, True))
    assert kind == "harbor" and "GET /v2/" in why and "harbor-registry" in why


def test_auto_keeps_distribution_for_the_real_distribution_registry(registry) -> None:
    settings = load({"REGISTRY_ADDRESS": registry.address, "REGISTRY_INSECURE": "true"})
    assert asyncio.run(decide_kind(settings, registry.address, True)) == ("distribution", DEFAULT_REASON)


def test_an_unreachable_registry_stays_distribution_and_says_why() -> None:
    server = _answering({})
    address = server.address
    server.stop()  # nothing listens there any more
    settings = load({"REGISTRY_ADDRESS": address, "REGISTRY_INSECURE": "true", "REGISTRY_TIMEOUT": "2s"})
    kind, why = asyncio.run(decide_kind(settings, address, True))
    assert kind == "distribution" and why.startswith(DEFAULT_REASON) and "GET /v2/ failed" in why


def test_a_setting_skips_the_question(harbor_like: BackgroundHTTPServer) -> None:
    settings = load({"REGISTRY_KIND": "zot"})
    assert asyncio.run(decide_kind(settings, harbor_like.address, True)) == ("zot", "REGISTRY_KIND")


# --- where each kind's v2 API answers, and with which credentials -------------------------


def test_docker_hub_names_reach_its_v2_api_and_the_login_docker_writes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import base64
    import json

    from kitgc.registry.auth import load_docker_config
    from kitgc.stores.choose import registry_client, v2_host

    assert v2_host("dockerhub", "docker.io") == v2_host("dockerhub", "index.docker.io") == "registry-1.docker.io"
    assert v2_host("distribution", "docker.io") == "docker.io"  # only Docker Hub's kind moves it
    auth = tmp_path / "config.json"
    auth.write_text(json.dumps({"auths": {"https://index.docker.io/v1/": {
        "auth": base64.b64encode(b"acme:dckr_pat_x").decode()}}}))
    assert load_docker_config(str(auth), "registry-1.docker.io") == load_docker_config(str(auth), "docker.io")
    assert load_docker_config(str(auth), "registry-1.docker.io").username == "acme"  # type: ignore[union-attr]
    assert load_docker_config(str(auth), "quay.io") is None
    client = registry_client(load({"REGISTRY_AUTH_FILE": str(auth)}), "docker.io", False, kind="dockerhub")
    assert client.address == "registry-1.docker.io"
    asyncio.run(client.aclose())


def test_ghcr_reads_private_packages_with_the_api_token_when_the_auth_file_has_no_entry(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from kitgc.stores.choose import registry_client

    token = tmp_path / "token"
    token.write_text("ghp_secret\n")
    settings = load({"REGISTRY_API_TOKEN_FILE": str(token)})
    client = registry_client(settings, "ghcr.io", False, kind="ghcr")
    assert client._transport._credentials is not None and client._transport._credentials.password == "ghp_secret"
    asyncio.run(client.aclose())
    other = registry_client(settings, "registry.example.com", False, kind="distribution")
    assert other._transport._credentials is None  # the token is GitHub's, given to nobody else
    asyncio.run(other.aclose())
