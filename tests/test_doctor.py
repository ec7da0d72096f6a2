"""``kitgc doctor``: every check a deleting run depends on, and never a write.

Each test runs ``kitgc doctor`` for real (``kitgc.cli.main``) against the real Distribution
registry (plain, TLS + Basic, token auth), the emulated Kubernetes API (whose
SelfSubjectAccessReviews answer from the rules a test sets with ``kube.api.deny``), the real
Pushgateway and reference clusters, and reads the JSON lines (or the checklist) it prints.
"""

from __future__ import annotations

import copy
import io
import json
import os
from collections.abc import Callable, Iterator
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from kitgc.cli import main
from kitgc.cluster import sources as S
from kitgc.config import VARIABLES
from kitgc.doctor.access import qualified
from kitgc.lease import LEASE_NAME, micro_time
from kitgc.metrics import JOB
from testbed import objects
from testbed.clusters import write_reference_kubeconfig
from testbed.faultproxy import FaultProxy
from testbed.kubeapi import AUTHORIZATION
from testbed.pushgateway import Pushgateway
from testbed.registry_fixtures import push_client
from testbed.registry_server import RegistryServer, write_docker_config
from testbed.servers import free_port
from testbed.token_issuer import TokenIssuer
from testbed.world import World

REGISTRY_CHECKS = ("registry_target", "registry_kind", "registry_tls", "registry_auth", "registry_listing",
                   "registry_tags", "registry_manifest_head", "registry_manifest_get", "registry_delete_permission")
SOURCE_CHECKS = tuple(f"cluster_source:{qualified(s.group, s.plural)}" for s in S.SOURCES)
WRITE_CHECKS = tuple(f"cluster_write:{verb} {qualified(w.group, w.plural)}" for w in S.WRITES for verb in w.verbs)
EXPECTED = ("cluster_api", *REGISTRY_CHECKS, *SOURCE_CHECKS, *WRITE_CHECKS, "state_configmap", "lease",
            "pushgateway")
KITS = "cluster_write:delete integrationkits.camel.apache.org"


def doctor(world: World, **env: str) -> tuple[int, dict[str, dict[str, Any]], str]:
    """Run ``kitgc doctor``; (exit code, checks by name, stdout). Every stdout line must be a check."""
    full = {k: v for k, v in os.environ.items() if k not in {v.env for v in VARIABLES}}
    full.update({"REGISTRY_ADDRESS": world.registry.address, "REGISTRY_ORGANIZATION": world.org,
                 "REGISTRY_INSECURE": "true", "LOG_FORMAT": "json"})
    full.update(env)
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["doctor"], full)
    text = out.getvalue()
    checks: dict[str, dict[str, Any]] = {}
    if full["LOG_FORMAT"] == "json":
        for line in text.splitlines():
            check = json.loads(line)
            assert set(check) == {"check", "ok", "detail"}, line
            assert check["ok"] in (True, False, None) and check["detail"] and "\n" not in check["detail"]
            assert check["check"] not in checks, f"{check['check']} reported twice"
            checks[check["check"]] = check
    return code, checks, text


def failed(checks: dict[str, dict[str, Any]]) -> list[str]:
    return [name for name, c in checks.items() if c["ok"] is False]


@pytest.fixture
def world(registry: RegistryServer, kube, org: str) -> Iterator[World]:
    w = World(registry, kube, org)
    w.anchor()
    yield w
    w.http.close()


def _kit_image(world: World, seed: str = "a") -> tuple[str, str]:
    """A kit repository with one tagged image and its IntegrationKit; (repository, digest)."""
    kit = objects.kit_name(f"{world.org}-{seed}")
    repo = world.repo(kit)
    digest = world.push(repo, "1")
    world.add(objects.integration_kit(kit, image=world.image(repo, digest)))
    return repo, digest


# --- a healthy setup ---------------------------------------------------------------------


def test_a_healthy_setup_passes_with_every_check_named_and_nothing_false(world: World) -> None:
    repo, digest = _kit_image(world)

    code, checks, _ = doctor(world)

    assert code == 0
    assert list(checks) == list(EXPECTED)
    assert failed(checks) == []
    assert checks["registry_kind"]["detail"].startswith("distribution (")
    assert "(from REGISTRY_ADDRESS)" in checks["registry_target"]["detail"]
    assert checks["registry_listing"]["detail"].startswith("1 in-scope repositories")
    assert checks["registry_tags"] == {"check": "registry_tags", "ok": True, "detail": f"{repo}: 1 tags"}
    assert digest in checks["registry_manifest_head"]["detail"]
    assert f"{digest} verified against its body" in checks["registry_manifest_get"]["detail"]
    # Unknowable or unset, and said so, without failing anything:
    assert checks["registry_tls"]["ok"] is None  # plain HTTP
    assert checks["registry_delete_permission"] == {
        "check": "registry_delete_permission", "ok": None,
        "detail": "unknown until the first deleting run (anonymous registry: it decides at the DELETE)"}
    assert checks["pushgateway"] == {"check": "pushgateway", "ok": None,
                                     "detail": "not set (optional): a run pushes no metrics"}
    assert checks[KITS] == {"check": KITS, "ok": True, "detail": "allowed cluster-wide"}
    assert checks["cluster_write:update leases.coordination.k8s.io"]["detail"] == "allowed in namespace default"
    assert checks["cluster_source:services.serving.knative.dev"]["ok"] is None  # Knative not served: optional
    assert checks["state_configmap"]["ok"] is True and checks["lease"]["ok"] is True


def test_the_registry_is_found_through_the_integration_platform_and_that_is_said(world: World) -> None:
    _kit_image(world)
    world.add(objects.integration_platform(address=world.registry.address, organization=world.org, insecure=True))

    code, checks, _ = doctor(world, REGISTRY_ADDRESS="", REGISTRY_ORGANIZATION="", REGISTRY_INSECURE="")

    assert code == 0, failed(checks)
    detail = checks["registry_target"]["detail"]
    assert detail.startswith(world.registry.address) and "IntegrationPlatform camel-k/camel-k" in detail
    assert f"organizations {world.org} (from the cluster's platforms)" in detail


def test_no_registry_anywhere_is_a_configuration_error(world: World) -> None:
    code, checks, _ = doctor(world, REGISTRY_ADDRESS="", REGISTRY_ORGANIZATION="")

    assert code == 2
    assert checks["registry_target"]["ok"] is False
    assert "set REGISTRY_ADDRESS" in checks["registry_target"]["detail"]
    assert "registry_auth" not in checks  # nothing to check it against
    assert checks[KITS]["ok"] is True  # the cluster is still examined


# --- writes nothing -------------------------------------------------------------------------


def _store_snapshot(world: World) -> tuple[str, list[Any]]:
    store = world.kube.api.store
    return store.rv, [copy.deepcopy(store.objects(r)) for r in store.resources]


def test_doctor_writes_nothing_to_the_registry_the_cluster_or_the_pushgateway(
    world: World, pushgateway: Pushgateway
) -> None:
    _kit_image(world)
    world.add(objects.configmap("camel-k-kit-gc-state", "default"))
    before = _store_snapshot(world)

    with FaultProxy(world.registry.url) as proxy:
        code, checks, _ = doctor(world, REGISTRY_ADDRESS=proxy.address, DRY_RUN="false", MIN_AGE="0",
                                 PUSHGATEWAY_URL=pushgateway.url)
        seen = proxy.requests()

    assert code == 0, failed(checks)
    assert checks["pushgateway"] == {"check": "pushgateway", "ok": True, "detail": f"{pushgateway.url} is ready"}
    assert _store_snapshot(world) == before  # same objects, same resourceVersions
    assert world.kube.writes() == []
    assert {(r.method, r.path) for r in world.kube.requests if r.method != "GET"} == {
        ("POST", f"/apis/{AUTHORIZATION}/v1/selfsubjectaccessreviews")}
    assert {"verb": "delete", "group": S.CAMEL, "resource": "integrationkits"} in world.kube.api.reviews()
    assert seen and {s.method for s in seen} <= {"GET", "HEAD"}
    assert pushgateway.scrape().names(job=JOB) == set()


# --- registry -------------------------------------------------------------------------------


@pytest.fixture
def make_world(kube, org: str) -> Iterator[Callable[[RegistryServer], World]]:
    """``make(server)``: a world on a registry that needs credentials to push (closed after)."""
    made: list[World] = []

    def make(server: RegistryServer) -> World:
        w = World(server, kube, org, http=push_client(server))
        w.anchor()
        made.append(w)
        return w

    yield make
    for w in made:
        w.http.close()


def test_a_tls_registry_with_basic_auth_is_verified_and_deletion_stays_unknown(
    tls_registry: RegistryServer, make_world, auth_file
) -> None:
    world = make_world(tls_registry)
    _kit_image(world)

    code, checks, text = doctor(world, REGISTRY_INSECURE="false", REGISTRY_CA_FILE=tls_registry.ca_file,
                                REGISTRY_AUTH_FILE=auth_file(tls_registry))

    assert code == 0, failed(checks)
    assert checks["registry_tls"]["ok"] is True
    assert checks["registry_tls"]["detail"].startswith("verified TLS") and tls_registry.ca_file in text
    assert checks["registry_auth"]["detail"].startswith(f"GET /v2/ answered 200 as {tls_registry.username}")
    assert checks["registry_delete_permission"]["ok"] is None
    assert "Basic authentication" in checks["registry_delete_permission"]["detail"]
    assert tls_registry.password and tls_registry.password not in text


def test_an_untrusted_certificate_fails_registry_tls_naming_the_cause(
    tls_registry: RegistryServer, make_world, auth_file
) -> None:
    world = make_world(tls_registry)

    code, checks, _ = doctor(world, REGISTRY_INSECURE="false", REGISTRY_AUTH_FILE=auth_file(tls_registry))

    assert code == 1
    assert checks["registry_tls"]["ok"] is False
    assert "certificate verification failed" in checks["registry_tls"]["detail"]
    assert "REGISTRY_CA_FILE" in checks["registry_tls"]["detail"]


def test_wrong_credentials_fail_registry_auth_without_showing_them(
    tls_registry: RegistryServer, make_world, tmp_path: Path
) -> None:
    world = make_world(tls_registry)
    wrong = write_docker_config(tmp_path / "wrong.json", tls_registry.address, "kitgc", "not-the-password")

    code, checks, text = doctor(world, REGISTRY_INSECURE="false", REGISTRY_CA_FILE=tls_registry.ca_file,
                                REGISTRY_AUTH_FILE=wrong)

    assert code == 1
    assert checks["registry_auth"]["ok"] is False
    assert "401" in checks["registry_auth"]["detail"] and "REGISTRY_AUTH_FILE" in checks["registry_auth"]["detail"]
    assert "not-the-password" not in text


def pull_only(subject: str | None, type_: str, name: str, actions: list[str]) -> list[str]:
    """A robot account that may list the catalog and pull, and nothing else."""
    return actions if type_ == "registry" else [a for a in actions if a == "pull"]


def test_a_token_service_granting_pull_only_fails_delete_permission(
    token_registry: RegistryServer, token_issuer: TokenIssuer, make_world, auth_file
) -> None:
    world = make_world(token_registry)
    repo, _ = _kit_image(world)
    token_issuer.grant = pull_only

    code, checks, text = doctor(world, REGISTRY_AUTH_FILE=auth_file(token_registry))

    assert code == 1
    assert failed(checks) == ["registry_delete_permission"]
    assert checks["registry_delete_permission"]["detail"] == (
        f"the token service grants nothing on {repo}, not delete: a deleting run would be refused")
    assert f"repository:{repo}:delete" in token_issuer.scopes_requested()
    assert checks["registry_auth"]["ok"] is True and "Bearer token from" in checks["registry_auth"]["detail"]
    assert token_issuer.issued and not any(token in text for token in token_issuer.issued)


def test_a_token_service_granting_delete_passes_delete_permission(
    token_registry: RegistryServer, token_issuer: TokenIssuer, make_world, auth_file
) -> None:
    world = make_world(token_registry)
    repo, _ = _kit_image(world)

    code, checks, _ = doctor(world, REGISTRY_AUTH_FILE=auth_file(token_registry))

    assert code == 0, failed(checks)
    assert checks["registry_delete_permission"] == {"check": "registry_delete_permission", "ok": True,
                                                    "detail": f"the token service grants delete on {repo}"}


def test_wrong_credentials_at_the_token_service_fail_registry_auth(
    token_registry: RegistryServer, token_issuer: TokenIssuer, make_world, tmp_path: Path
) -> None:
    world = make_world(token_registry)
    wrong = write_docker_config(tmp_path / "wrong.json", token_registry.address, "robot", "wrong-secret")

    code, checks, text = doctor(world, REGISTRY_AUTH_FILE=wrong)

    assert code == 1
    assert checks["registry_auth"]["ok"] is False and "401" in checks["registry_auth"]["detail"]
    assert "wrong-secret" not in text


# --- cluster --------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["rbac", "list only", "review only"])
def test_a_forbidden_source_fails_its_check(world: World, how: str) -> None:
    if how == "rbac":  # RBAC says no, and the list is refused with 403
        world.kube.api.deny("list", "apps", "deployments")
    elif how == "list only":  # the review allows it (a webhook, a proxy...): the real list still shows 403
        world.kube.inject("GET", "/apis/apps/v1/deployments", status=403)
    else:  # the first page answers, but RBAC says list is not allowed cluster-wide
        world.kube.api.deny("list", "apps", "deployments", enforce=False)

    code, checks, _ = doctor(world)

    assert code == 1
    assert failed(checks) == ["cluster_source:deployments.apps"]
    detail = checks["cluster_source:deployments.apps"]["detail"]
    if how == "review only":
        assert detail.startswith("RBAC does not allow list cluster-wide, though a first page answered")
    else:
        assert detail.startswith("list refused: 403 Forbidden")
        assert ("RBAC does not allow" if how == "rbac" else "RBAC allows list cluster-wide") in detail


def test_missing_camel_k_crds_fail_their_sources(world: World) -> None:
    world.kube.serve(S.CAMEL, "builds", on=False)

    code, checks, _ = doctor(world)

    assert code == 1
    assert "are Camel K's CRDs installed?" in checks["cluster_source:builds.camel.apache.org"]["detail"]


def test_delete_of_integrationkits_denied_fails_unless_kits_are_not_pruned(world: World) -> None:
    world.kube.api.deny("delete", S.CAMEL, "integrationkits")

    code, checks, _ = doctor(world)
    assert code == 1
    assert checks[KITS] == {"check": KITS, "ok": False,
                            "detail": "denied cluster-wide: a deleting run would fail there"}

    code, checks, _ = doctor(world, PRUNE_KITS="false")
    assert code == 0, failed(checks)
    assert checks[KITS]["ok"] is None and "not needed with PRUNE_KITS=false" in checks[KITS]["detail"]


def test_state_configmap_absent_and_not_creatable_fails(world: World) -> None:
    world.kube.api.deny("create", "", "configmaps", "kitgc")

    code, checks, _ = doctor(world, STATE_CONFIGMAP="kitgc/gc-state")

    assert code == 1
    assert checks["state_configmap"] == {"check": "state_configmap", "ok": False,
                                         "detail": "ConfigMap kitgc/gc-state is absent and may not be created"}
    assert checks["cluster_write:create configmaps"]["detail"] == (
        "denied in namespace kitgc: a deleting run would fail there")


def test_a_lease_held_by_another_run_is_reported_without_failing(world: World) -> None:
    from datetime import UTC, datetime

    world.add({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
               "metadata": {"name": LEASE_NAME, "namespace": "default"},
               "spec": {"holderIdentity": "gc-pod/1/abc123", "leaseDurationSeconds": 3600,
                        "renewTime": micro_time(datetime.now(UTC))}})

    code, checks, _ = doctor(world)

    assert code == 0, failed(checks)
    assert checks["lease"]["ok"] is None
    assert checks["lease"]["detail"].startswith(f"Lease default/{LEASE_NAME} is held by gc-pod/1/abc123 until ")


def test_without_access_reviews_the_writes_are_unknown_not_failed(world: World) -> None:
    world.kube.serve(AUTHORIZATION, on=False)

    code, checks, _ = doctor(world)

    assert code == 0, failed(checks)
    assert checks[KITS]["ok"] is None
    assert "SelfSubjectAccessReview refused: 404" in checks[KITS]["detail"]
    assert checks["cluster_source:pods"]["ok"] is True  # the real first page still proves the read


# --- Pushgateway and reference clusters --------------------------------------------------


def test_a_pushgateway_that_does_not_answer_fails(world: World) -> None:
    code, checks, _ = doctor(world, PUSHGATEWAY_URL=f"http://127.0.0.1:{free_port()}")

    assert code == 1
    assert failed(checks) == ["pushgateway"]
    assert checks["pushgateway"]["detail"].startswith("no answer from http://127.0.0.1:")


def test_each_reference_cluster_is_checked_and_an_unreachable_one_fails(world: World, prod, tmp_path: Path) -> None:
    gone = f"http://127.0.0.1:{free_port()}"
    path = write_reference_kubeconfig(tmp_path / "refs", {"prod": prod.url, "gone": gone})

    code, checks, _ = doctor(world, REFERENCE_KUBECONFIG=str(path))

    assert code == 1
    assert failed(checks) == ["reference_cluster:gone"]
    assert checks["reference_cluster:prod"]["ok"] is True
    assert "sources readable" in checks["reference_cluster:prod"]["detail"]
    assert checks["reference_cluster:gone"]["detail"].startswith(f"no answer from the reference cluster at {gone}")


def test_a_reference_cluster_forbidding_a_source_fails(world: World, prod, tmp_path: Path) -> None:
    prod.deny("list", S.CAMEL, "integrations")
    path = write_reference_kubeconfig(tmp_path / "refs", {"prod": prod.url})

    code, checks, _ = doctor(world, REFERENCE_KUBECONFIG=str(path))

    assert code == 1
    assert checks["reference_cluster:prod"]["ok"] is False
    assert checks["reference_cluster:prod"]["detail"].startswith(
        "cannot read camel.apache.org/v1 integrations: list refused: 403 Forbidden")


# --- console --------------------------------------------------------------------------------


def test_the_console_checklist_marks_each_check_and_ends_with_the_verdict(world: World) -> None:
    _kit_image(world)

    code, _, text = doctor(world, LOG_FORMAT="console")

    lines = text.splitlines()
    assert code == 0
    marks = [line[0] for line in lines[: len(EXPECTED)]]
    assert set(marks) <= {"✓", "?"} and "✓" in marks and "?" in marks
    assert any(line.startswith("✓ registry_auth ") and "GET /v2/ answered 200 anonymously" in line for line in lines)
    assert any(line.startswith("? pushgateway ") and "not set (optional)" in line for line in lines)
    assert lines[len(EXPECTED)] == ""
    assert lines[-1].startswith("A deleting run would have what it needs.")
    assert not any(line.startswith("{") for line in lines)


def test_the_console_verdict_names_what_fails(world: World) -> None:
    world.kube.api.deny("delete", S.CAMEL, "integrationkits")

    code, _, text = doctor(world, LOG_FORMAT="console")

    assert code == 1
    assert f"✗ {KITS}" in text
    assert text.splitlines()[-1].startswith(f"A deleting run would NOT have what it needs: 1 failed ({KITS}).")


# --- the command and the emulator it relies on ----------------------------------------------


def test_doctor_help_says_it_writes_nothing_and_what_the_exit_codes_mean(capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["doctor", "--help"], {})
    text = " ".join(capsys.readouterr().out.split())
    assert stop.value.code == 0
    assert "writing nothing" in text and "Exit 0 when no check is false, 1 when one is, 2" in text


def test_the_emulators_access_reviews_answer_like_rbac_for_the_official_client(kube) -> None:
    import kubernetes

    kube.api.deny("create", "", "configmaps", "kitgc")
    authz = kubernetes.client.AuthorizationV1Api(kube.client())

    def allowed(namespace: str | None) -> bool:
        attrs = kubernetes.client.V1ResourceAttributes(verb="create", resource="configmaps", namespace=namespace)
        body = kubernetes.client.V1SelfSubjectAccessReview(
            spec=kubernetes.client.V1SelfSubjectAccessReviewSpec(resource_attributes=attrs))
        return bool(authz.create_self_subject_access_review(body).status.allowed)

    assert (allowed("other"), allowed("kitgc"), allowed(None)) == (True, False, False)
    assert kube.writes() == [] and len(kube.api.reviews()) == 3
    core = kubernetes.client.CoreV1Api(kube.client())
    with pytest.raises(kubernetes.client.ApiException) as refused:
        core.create_namespaced_config_map("kitgc", {"metadata": {"name": "x"}})
    assert refused.value.status == 403
    assert 'cannot create resource "configmaps"' in json.loads(refused.value.body)["message"]
    core.create_namespaced_config_map("other", {"metadata": {"name": "x"}})  # allowed elsewhere
    groups = kubernetes.client.ApisApi(kube.client()).get_api_versions().groups
    assert AUTHORIZATION in {g.name for g in groups}


def test_an_unreachable_api_server_fails_cluster_api_and_the_registry_is_still_checked(
    world: World, tmp_path: Path
) -> None:
    _kit_image(world)
    dead = tmp_path / "dead-kubeconfig"
    dead.write_text(world.kube.kubeconfig.read_text().replace(world.kube.api.url, f"http://127.0.0.1:{free_port()}"))

    code, checks, _ = doctor(world, KUBECONFIG=str(dead))

    assert code == 1
    assert failed(checks) == ["cluster_api"]
    assert checks["cluster_api"]["detail"].startswith("no answer from the API server at http://127.0.0.1:")
    assert checks["registry_manifest_get"]["ok"] is True
    assert not any(name.startswith(("cluster_source:", "cluster_write:")) for name in checks)
