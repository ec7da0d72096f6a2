"""Security: secrets never in any output, no credentials across a redirect, TLS never silently off.

Runs are real ``python -m kitgc`` processes at LOG_LEVEL=debug with a report file, against
registries that need credentials (Basic over TLS, Bearer tokens), successful and failing;
every line on stdout and stderr and the whole report are searched for the password, its
base64 form, every token the issuer handed out, the Kubernetes bearer token and the
Pushgateway password.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed import objects
from testbed.faultproxy import Fault, FaultProxy
from testbed.figures import Figures
from testbed.registry_fixtures import push_client
from testbed.registry_server import RegistryServer, free_port, write_docker_config
from testbed.world import World, events_named

PUSH_PASSWORD = "pgw-secret-9f1c2e"


def run_process(world: World, env: dict[str, str], timeout: float = 120) -> tuple[int, str, list[dict]]:
    """(exit code, everything written on stdout and stderr, the JSON events)."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "PUSHGATEWAY_"))}
    full.update({"REGISTRY_ADDRESS": world.registry.address, "REGISTRY_ORGANIZATION": world.org,
                 "LOG_FORMAT": "json", "MIN_AGE": "0", "DRY_RUN": "false", **env})
    proc = subprocess.run([sys.executable, "-m", "kitgc"], env=full, capture_output=True, text=True, timeout=timeout)
    text = proc.stdout + proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return proc.returncode, text, events


def _scene(w: World) -> tuple[str, str, str]:
    w.anchor()
    repo = w.repo(objects.kit_name("secure"))
    kept, gone = w.push(repo, "1"), w.push(repo, "2")
    w.add(objects.deployment("orders", "shop", images=[w.image(repo, kept)]))
    return repo, kept, gone


@pytest.fixture(params=["tls_registry", "token_registry"])
def secured(request, kube, org) -> Iterator[World]:
    server: RegistryServer = request.getfixturevalue(request.param)
    w = World(server, kube, org, http=push_client(server))
    yield w
    w.http.close()


def _needles(server: RegistryServer, *extra: str) -> set[str]:
    assert server.username and server.password
    basic = base64.b64encode(f"{server.username}:{server.password}".encode()).decode()
    return {server.password, basic, PUSH_PASSWORD, *extra}


def test_secrets_never_appear_in_logs_or_reports_at_debug_level(
    secured: World, tmp_path: Path, request: pytest.FixtureRequest, figures: Figures
) -> None:
    server = secured.registry
    repo, kept, gone = _scene(secured)
    report = tmp_path / "report.json"
    good = write_docker_config(tmp_path / "good.json", server.address, server.username or "", server.password or "")
    bad = write_docker_config(tmp_path / "bad.json", server.address, server.username or "", "wrong-Pa55-word-x")
    common = {"LOG_LEVEL": "debug", "REPORT_FILE": str(report), "REGISTRY_INSECURE": str(server.insecure).lower(),
              "PUSHGATEWAY_URL": f"http://127.0.0.1:{free_port()}", "PUSHGATEWAY_USERNAME": "kitgc",
              "PUSHGATEWAY_PASSWORD": PUSH_PASSWORD}
    if server.ca_file:
        common["REGISTRY_CA_FILE"] = server.ca_file
    outputs = []
    for auth in (good, bad):
        code, text, events = run_process(secured, {**common, "REGISTRY_AUTH_FILE": auth})
        figures.run(wrongful=0 if secured.exists(repo, kept) else 1)
        outputs.append(text + report.read_text())
        assert any(e.get("level") == "debug" for e in events), "debug lines were written"
        if auth == good:
            assert code == 0, text[-2000:]
    assert not secured.exists(repo, gone) and secured.exists(repo, kept)
    tokens: list[str] = []
    if "token" in request.node.callspec.params["secured"]:
        tokens = list(request.getfixturevalue("token_issuer_session").issued)
        assert tokens, "the run used Bearer tokens"
    needles = _needles(server, "wrong-Pa55-word-x", secured.kube.api.token, *tokens)
    for needle in needles:
        for output in outputs:
            assert needle not in output, "a secret reached the output"
    assert not re.search(r"(?i)authorization[\"']?\s*[:=]\s*[\"']?(basic|bearer) ", "\n".join(outputs))


@pytest.fixture
def two_origins(tls_registry: RegistryServer, figures: Figures) -> Iterator[tuple[FaultProxy, FaultProxy]]:
    with FaultProxy(tls_registry.url, ca_file=tls_registry.ca_file) as a, \
            FaultProxy(tls_registry.url, ca_file=tls_registry.ca_file) as b:
        yield a, b
        figures.add_faults(a.injected)


def test_authorization_is_not_sent_to_another_host_on_redirect(
    tls_registry: RegistryServer, kube, org, tmp_path: Path, two_origins: tuple[FaultProxy, FaultProxy],
    figures: Figures,
) -> None:
    a, b = two_origins
    w = World(tls_registry, kube, org, http=push_client(tls_registry))
    repo, kept, gone = _scene(w)
    a.add(Fault("redirect", "GET", rf"/v2/{repo}/manifests/.*", location=b.url))
    auth = write_docker_config(tmp_path / "a.json", a.address, tls_registry.username or "",
                               tls_registry.password or "")
    code, _, _ = run_process(w, {"REGISTRY_ADDRESS": a.address, "REGISTRY_INSECURE": "true",
                                    "REGISTRY_AUTH_FILE": auth, "LOG_LEVEL": "debug"})
    figures.run(wrongful=0 if w.exists(repo, kept) else 1)
    assert b.requests(), "the redirect was followed"
    assert not any(s.authorization for s in b.requests()), "credentials crossed to another host"
    assert any(s.authorization for s in a.requests()), "the registry itself did get them"
    assert code == 1 and w.exists(repo, kept) and w.exists(repo, gone), "unreadable repository kept whole"
    w.http.close()


@pytest.mark.parametrize("disable", [
    {"PYTHONHTTPSVERIFY": "0"},
    {"CURL_CA_BUNDLE": "", "REQUESTS_CA_BUNDLE": "", "SSL_CERT_FILE": "/dev/null"},
])
def test_tls_verification_cannot_be_switched_off_from_outside(
    tls_registry: RegistryServer, kube, org, tmp_path: Path, disable: dict[str, str], figures: Figures
) -> None:
    w = World(tls_registry, kube, org, http=push_client(tls_registry))
    repo, kept, gone = _scene(w)
    auth = write_docker_config(tmp_path / "c.json", tls_registry.address, tls_registry.username or "",
                               tls_registry.password or "")
    code, _, events = run_process(w, {"REGISTRY_AUTH_FILE": auth, "REGISTRY_INSECURE": "false", **disable})
    figures.run(wrongful=0 if w.exists(repo, kept) else 1)
    assert code == 1
    failed = next(events_named(events, "run_failed"))
    assert "certificate verification failed" in failed["error"] and "REGISTRY_CA_FILE" in failed["error"]
    assert w.exists(repo, gone), "nothing deleted from a registry whose identity is unproven"
    w.http.close()


def test_source_has_no_way_to_switch_tls_verification_off() -> None:
    root = Path(__file__).resolve().parent.parent / "gc" / "kitgc"
    forbidden = re.compile(r"verify\s*=\s*False|CERT_NONE|check_hostname\s*=\s*False|_create_unverified_context|"
                           r"verify_ssl\s*=\s*False")
    hits = [f"{p.name}: {m.group(0)}" for p in root.rglob("*.py") for m in forbidden.finditer(p.read_text())]
    assert hits == []


def test_kubeconfig_that_skips_tls_verification_is_said_out_loud(world_kube_insecure: tuple[World, Path]) -> None:
    w, cfg = world_kube_insecure
    code, events = w.run(KUBECONFIG=str(cfg), DRY_RUN="true")
    assert code == 3  # nothing answers there; the point is the warning before it
    warning = next(events_named(events, "kubernetes_tls_verification_off"))
    assert warning["level"] == "warning"


@pytest.fixture
def world_kube_insecure(registry, kube, org, tmp_path: Path) -> Iterator[tuple[World, Path]]:
    doc = json.loads(kube.kubeconfig.read_text())
    doc["clusters"][0]["cluster"] = {"server": f"https://127.0.0.1:{free_port()}", "insecure-skip-tls-verify": True}
    cfg = tmp_path / "insecure-kubeconfig"
    cfg.write_text(json.dumps(doc))
    w = World(registry, kube, org)
    yield w, cfg
    w.http.close()
