"""End to end against registries that need credentials: Basic over TLS, and Bearer tokens."""

from __future__ import annotations

import pytest

from testbed import objects
from testbed.registry_fixtures import push_client
from testbed.world import World


@pytest.fixture(params=["tls_registry", "token_registry"])
def secured(request, kube, org):
    server = request.getfixturevalue(request.param)
    w = World(server, kube, org, http=push_client(server))
    w.anchor()
    yield w
    w.http.close()


def test_full_pass_with_credentials_from_dockerconfigjson(secured: World, auth_file) -> None:
    repo = secured.repo(objects.kit_name("orphan"))
    kept_repo = secured.repo(objects.kit_name("kept"))
    orphan = secured.push(repo, "1")
    kept = secured.push(kept_repo, "1")
    secured.add(objects.deployment("orders", "shop", images=[secured.image(kept_repo, kept)]))
    env = {"REGISTRY_AUTH_FILE": auth_file(secured.registry), "REGISTRY_INSECURE": str(secured.registry.insecure),
           "LOG_LEVEL": "debug"}
    if secured.registry.ca_file:
        env["REGISTRY_CA_FILE"] = secured.registry.ca_file
    code, events = secured.run(DRY_RUN="false", **env)
    assert code == 0, events[-3:]
    assert not secured.exists(repo, orphan) and secured.exists(kept_repo, kept)
    text = "\n".join(map(str, events))
    assert secured.registry.password and secured.registry.password not in text


def test_tls_without_the_ca_is_refused(tls_registry, kube, org) -> None:
    w = World(tls_registry, kube, org, http=push_client(tls_registry))
    w.anchor()
    repo = w.repo(objects.kit_name("orphan"))
    digest = w.push(repo, "1")
    code, events = w.run(DRY_RUN="false", REGISTRY_INSECURE="false")
    assert code == 1
    assert w.exists(repo, digest)
    failed = next(e for e in events if e.get("event") == "run_failed")
    assert "REGISTRY_CA_FILE" in failed["error"] and failed["deleted_nothing"] is True
    w.http.close()


def test_registry_refusing_the_catalog_is_scanned_through_the_cluster_kits(token_registry, token_issuer, kube, org,
                                                                           auth_file) -> None:
    """Harbor (non-admin), Docker Hub, GHCR refuse the catalog: the kits the cluster knows are scanned instead."""
    w = World(token_registry, kube, org, http=push_client(token_registry))
    w.anchor()
    name = objects.kit_name("known")
    repo = w.repo(name)
    current, old = w.push(repo, "2"), w.push(repo, "1")
    w.add(objects.integration_kit(name, "camel-k", image=w.image(repo, current)))
    token_issuer.deny_catalog = True
    code, events = w.run(DRY_RUN="false", PRUNE_KITS="false", REGISTRY_AUTH_FILE=auth_file(token_registry))
    assert code == 0, events[-3:]
    assert w.exists(repo, current) and not w.exists(repo, old)
    assert any("catalog" in e["event"] for e in events if e.get("level") == "warning")
    w.http.close()
