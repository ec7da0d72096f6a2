"""``kitgc doctor`` on OpenShift: the ImageStream API a run deletes through, and the ImagePruner.

The emulated API serves OpenShift's groups (image.openshift.io, ...) and, through the store's
generic resources, ``imagepruners.imageregistry.operator.openshift.io`` (cluster-scoped, as
the image registry operator serves it). ``REGISTRY_ADDRESS`` names the integrated registry's
service, where nothing listens: on OpenShift the doctor, like a run, makes no registry request.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kitgc.doctor.openshift import NOT_RECLAIMED, PRUNER_GROUP
from testbed import objects, openshift
from testbed.kube_fixtures import KubeHandle
from testbed.kubeapi import KubeAPI
from testbed.kubestore import RESOURCES, Resource, Store
from testbed.registry_server import RegistryServer
from testbed.world import World
from tests.test_doctor import doctor, failed

REGISTRY = openshift.REGISTRY_HOST
PRUNER = Resource(PRUNER_GROUP, "v1", "imagepruners", "ImagePruner", namespaced=False)
NS = "shop"
IMAGESTREAMS = "cluster_source:imagestreams.image.openshift.io"
NOT_ON_OPENSHIFT = ("registry_tls", "registry_auth", "registry_tags", "registry_manifest_head",
                    "registry_manifest_get", "registry_delete_permission")


def pruner(schedule: str = "0 1 * * *", *, suspend: bool | None = None) -> dict[str, Any]:
    """The ImagePruner ``cluster`` as the image registry operator keeps it."""
    spec: dict[str, Any] = {"schedule": schedule, "keepTagRevisions": 3, "keepYoungerThanDuration": "60m"}
    if suspend is not None:
        spec["suspend"] = suspend
    return {"apiVersion": f"{PRUNER_GROUP}/v1", "kind": "ImagePruner", "metadata": {"name": "cluster"},
            "spec": spec}


@pytest.fixture
def ocp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[KubeHandle]:
    """An OpenShift API (its groups served, ImagePruners known) that the CLI reaches via KUBECONFIG."""
    api = KubeAPI(store=Store((*RESOURCES, PRUNER)), openshift=True).start()
    path = api.write_kubeconfig(tmp_path / "kubeconfig")
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    handle = KubeHandle(api, path)
    try:
        yield handle
    finally:
        handle.close()
        api.stop()


@pytest.fixture
def world(registry: RegistryServer, ocp: KubeHandle, org: str) -> Iterator[World]:
    w = World(registry, ocp, org)
    w.anchor()
    w.add(*openshift.integration_kit_s2i(objects.kit_name("a"), NS, seed="a"))
    yield w
    w.http.close()


def on_openshift(world: World, **env: str) -> tuple[int, dict[str, dict[str, Any]], str]:
    return doctor(world, **{"REGISTRY_ADDRESS": REGISTRY, "REGISTRY_ORGANIZATION": NS, "REGISTRY_INSECURE": "false",
                            **env})


def test_on_openshift_the_imagestream_api_and_a_running_pruner_pass_with_no_registry_request(world: World) -> None:
    world.add(pruner("0 1 * * *", suspend=False))
    store = world.kube.api.store
    before = store.rv, [copy.deepcopy(store.objects(r)) for r in store.resources]

    code, checks, _ = on_openshift(world, DRY_RUN="false")

    assert code == 0, failed(checks)
    assert checks["registry_kind"]["detail"] == f"openshift ({REGISTRY} is OpenShift's integrated registry)"
    assert checks["registry_listing"]["detail"] == "1 in-scope repositories (0 others out of scope) from ImageStreams"
    assert not set(NOT_ON_OPENSHIFT) & set(checks)  # ImageStreams go through the Kubernetes API only
    assert checks["openshift_imagestreams"] == {
        "check": "openshift_imagestreams", "ok": True,
        "detail": "served; list and delete allowed for imagestreams and imagestreamtags cluster-wide"}
    assert checks["openshift_image_pruner"] == {"check": "openshift_image_pruner", "ok": True,
                                                "detail": "runs 0 1 * * *"}
    assert checks[IMAGESTREAMS]["ok"] is True
    assert world.kube.writes() == []
    assert (store.rv, [copy.deepcopy(store.objects(r)) for r in store.resources]) == before


def test_a_pruner_without_a_schedule_runs_on_the_operators_default(world: World) -> None:
    world.add(pruner(""))

    _, checks, _ = on_openshift(world)

    assert checks["openshift_image_pruner"]["detail"] == "runs 0 0 * * *"


@pytest.mark.parametrize("scene", ["absent", "suspended"])
def test_an_absent_or_suspended_pruner_is_unknown_and_does_not_fail(world: World, scene: str) -> None:
    if scene == "suspended":
        world.add(pruner("0 0 * * *", suspend=True))

    code, checks, _ = on_openshift(world)

    assert code == 0, failed(checks)
    check = checks["openshift_image_pruner"]
    assert check["ok"] is None
    assert check["detail"].endswith(NOT_RECLAIMED)
    assert ("is suspended (schedule 0 0 * * *)" if scene == "suspended" else "is absent") in check["detail"]


def test_imagestream_deletes_denied_fail_on_openshift(world: World) -> None:
    world.add(pruner())
    world.kube.api.deny("delete", openshift.IMAGE, "imagestreamtags")

    code, checks, _ = on_openshift(world)

    assert code == 1
    assert failed(checks) == ["openshift_imagestreams"]
    assert checks["openshift_imagestreams"]["detail"] == (
        "served, but RBAC denies delete imagestreamtags cluster-wide: a deleting run would fail")


def test_kind_openshift_without_the_imagestream_api_fails(world: World) -> None:
    world.kube.serve(openshift.IMAGE, on=False)

    code, checks, _ = on_openshift(world, REGISTRY_KIND="openshift")

    assert code == 1
    assert checks["openshift_imagestreams"]["ok"] is False
    assert "REGISTRY_KIND is openshift" in checks["openshift_imagestreams"]["detail"]
    assert checks["registry_listing"]["ok"] is False
    assert checks[IMAGESTREAMS]["ok"] is None  # optional for a run's references, as ever
    assert "openshift_image_pruner" not in checks


def test_a_v2_registry_on_openshift_needs_no_imagestream_deletes(world: World) -> None:
    """Jib to an outside registry: the ImageStream API is only read for references there."""
    world.add(pruner())
    world.kube.api.deny("delete", openshift.IMAGE, "imagestreams")

    code, checks, _ = doctor(world)  # the real Distribution registry of the world

    assert code == 0, failed(checks)
    assert checks["registry_kind"]["detail"].startswith("distribution")
    assert checks["openshift_imagestreams"]["ok"] is True
    assert "delete imagestreams denied, not needed (REGISTRY_KIND is distribution)" in (
        checks["openshift_imagestreams"]["detail"])
    assert checks["openshift_image_pruner"]["ok"] is True
