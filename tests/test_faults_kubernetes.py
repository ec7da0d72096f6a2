"""Kubernetes API faults in the emulated API server, during real runs.

Whenever the reference picture could be incomplete (a source forbidden, failing for good,
timing out, answering garbage, or the API server unreachable), the run must fail closed:
exit 3, not one DELETE anywhere. Transient trouble (500 bursts, an expired continue token,
one slow answer) is retried and the run completes. The second read just before the sweep
and the read after deleting kits fail closed the same way.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import scene as scenes
from tests.support.figures import Figures
from tests.support.kubeapi import Fault
from tests.support.world import World, events_named

SOURCES = {
    "pods": "/api/v1/pods",
    "deployments": "/apis/apps/v1/deployments",
    "integrations": "/apis/camel.apache.org/v1/integrations",
    "integrationkits": "/apis/camel.apache.org/v1/integrationkits",
    "builds": "/apis/camel.apache.org/v1/builds",
}
KIT_DELETE = r"/apis/camel.apache.org/v1/namespaces/[^/]+/integrationkits/[^/]+"


@pytest.fixture
def world(registry, kube, org) -> Iterator[World]:
    w = World(registry, kube, org)
    w.env.update(DRY_RUN="false")
    yield w
    w.http.close()


def _count(figures: Figures, label: str, *faults: Fault) -> None:
    figures.fault(label, sum(f.hits for f in faults))


def _nothing_deleted(world: World, scene: scenes.Scene) -> None:
    assert set(scene.garbage_left()) == set(scene.garbage)
    assert scene.wrongful() == []
    assert set(scene.kits.values()) <= set(world.kits())
    assert [r for r in world.kube.requests if r.method == "DELETE"] == []


def _aborted(events: list[dict]) -> dict:
    aborted = next(events_named(events, "run_aborted"))
    assert "\n" not in aborted["error"]
    return aborted


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_forbidden_source_fails_closed_naming_it(world: World, figures: Figures, source: str) -> None:
    scene = scenes.build(world)
    fault = world.kube.inject("GET", SOURCES[source], status=403)
    code, events = world.run()
    figures.run(wrongful=len(scene.wrongful()))
    _count(figures, "k8s_403", fault)
    assert code == 3
    _nothing_deleted(world, scene)
    assert source in _aborted(events)["error"]
    assert world.kube.writes() == [], "an aborted run takes no Lease and saves no state"


@pytest.mark.parametrize("how", ["500 forever", "not JSON", "410 on every continue", "slower than KUBE_TIMEOUT"])
def test_source_that_never_answers_properly_fails_closed(world: World, figures: Figures, how: str) -> None:
    scene = scenes.build(world)
    path = SOURCES["integrationkits"]
    if how == "500 forever":
        fault, label = world.kube.inject("GET", path, status=500), "k8s_500"
    elif how == "not JSON":
        fault, label = world.kube.inject("GET", path, status=200, body=b"<html>proxy error</html>"), "k8s_not_json"
    elif how == "410 on every continue":
        fault, label = world.kube.inject("GET", path, status=410, only_continue=True), "k8s_410_continue"
        world.env["KUBE_PAGE_SIZE"] = "1"
    else:
        fault, label = world.kube.inject("GET", path, delay=1.5), "k8s_timeout"
        world.env["KUBE_TIMEOUT"] = "1s"
    code, events = world.run()
    figures.run(wrongful=len(scene.wrongful()))
    _count(figures, label, fault)
    assert code == 3, events[-3:]
    _nothing_deleted(world, scene)
    assert "integrationkits" in _aborted(events)["error"]


@pytest.mark.parametrize("how", ["500 burst", "410 on a continue", "one answer slower than KUBE_TIMEOUT"])
def test_transient_api_trouble_is_retried_and_the_run_completes(world: World, figures: Figures, how: str) -> None:
    scene = scenes.build(world)
    if how == "500 burst":
        faults = [world.kube.inject("GET", SOURCES[s], status=500, times=2) for s in ("pods", "integrations")]
        label = "k8s_500"
    elif how == "410 on a continue":
        world.env["KUBE_PAGE_SIZE"] = "1"
        faults = [world.kube.inject("GET", SOURCES["integrationkits"], status=410, only_continue=True, times=1)]
        label = "k8s_410_continue"
    else:
        world.env["KUBE_TIMEOUT"] = "1s"
        faults = [world.kube.inject("GET", SOURCES["deployments"], delay=1.5, times=1)]
        label = "k8s_timeout"
    code, events = world.run()
    figures.run(wrongful=len(scene.wrongful()))
    _count(figures, label, *faults)
    assert all(f.hits == f.times for f in faults)
    assert code == 0, events[-3:]
    assert scene.wrongful() == [] and scene.garbage_left() == [] and scene.kits_without_image() == []


def test_unreachable_api_server_fails_closed(world: World, figures: Figures, tmp_path) -> None:
    scene = scenes.build(world)
    from tests.support.registry_server import free_port

    cfg = tmp_path / "unreachable"
    cfg.write_text(world.kube.kubeconfig.read_text().replace(world.kube.api.url, f"http://127.0.0.1:{free_port()}"))
    code, events = world.run(KUBECONFIG=str(cfg))
    figures.run(wrongful=len(scene.wrongful()))
    figures.fault("k8s_unreachable")
    assert code == 3
    _nothing_deleted(world, scene)
    assert "Connection refused" in _aborted(events)["error"]


def test_second_read_before_the_sweep_fails_closed(world: World, figures: Figures) -> None:
    """The first read is fine; the one just before deleting fails: still nothing is deleted."""
    scene = scenes.build(world)
    faults: list[Fault] = []

    def after_lease(method: str, path: str, query: dict[str, str]) -> None:
        if method in ("POST", "PUT") and "/leases" in path and not faults:
            faults.append(world.kube.inject("GET", SOURCES["deployments"], status=403))

    world.kube.api.on_request(after_lease)
    code, events = world.run()
    figures.run(wrongful=len(scene.wrongful()))
    _count(figures, "k8s_403", *faults)
    assert code == 3 and faults and faults[0].hits >= 1
    _nothing_deleted(world, scene)
    assert next(events_named(events, "lease_released"))


def test_read_after_deleting_kits_that_fails_keeps_every_image(world: World, figures: Figures) -> None:
    scene = scenes.build(world)
    faults: list[Fault] = []

    def after_kit_delete(method: str, path: str, query: dict[str, str]) -> None:
        import re

        if method == "DELETE" and re.fullmatch(KIT_DELETE, path) and not faults:
            faults.append(world.kube.inject("GET", SOURCES["builds"], status=500))

    world.kube.api.on_request(after_kit_delete)
    code, events = world.run()
    figures.run(wrongful=len(scene.wrongful()))
    _count(figures, "k8s_500", *faults)
    assert code == 1
    assert scene.kits["unused"] not in world.kits()
    assert set(scene.garbage_left()) == set(scene.garbage), "no image is deleted on an incomplete picture"
    assert scene.kits_without_image() == [] and next(events_named(events, "recheck_failed"))
    world.kube.api.clear_faults()
    code, _ = world.run()
    assert code == 0 and scene.garbage_left() == [] and scene.wrongful() == []
    figures.converged(len(scene.garbage_left()))


# --- the wrong-cluster guard, end to end ------------------------------------------------

def _no_camel_k_workloads(world: World) -> scenes.Scene:
    """A registry full of kits and a cluster that shows no Integration at all."""
    scene = scenes.Scene(world)
    for i in range(4):
        repo = world.repo(f"kit-wrongcluster{i:016d}")
        scene.garbage[f"g{i}"] = (repo, world.push(repo, "1"))
    repo = world.repo("kit-wrongclusterkeep0000")
    scene.keep["k"] = (repo, world.push(repo, "1"))
    from tests.support import objects

    world.add(objects.deployment("web", "shop", images=[world.image(*scene.keep["k"])]))
    return scene


def test_wrong_cluster_guard_stops_a_mass_deletion_with_exit_3(world: World, figures: Figures) -> None:
    scene = _no_camel_k_workloads(world)
    code, events = world.run()
    figures.run(wrongful=len(scene.wrongful()))
    assert code == 3
    assert set(scene.garbage_left()) == set(scene.garbage)
    assert "ALLOW_EMPTY_CLUSTER" in _aborted(events)["error"]
    assert world.kube.writes() == []


def test_api_server_answering_empty_integration_lists_trips_the_guard(world: World, figures: Figures) -> None:
    scene = _no_camel_k_workloads(world)
    world.anchor()  # there IS an Integration, but the API server answers an empty list
    fault = world.kube.inject("GET", SOURCES["integrations"], status=200,
                              body=b'{"kind":"IntegrationList","apiVersion":"camel.apache.org/v1",'
                                   b'"metadata":{},"items":[]}')
    code, _ = world.run()
    figures.run(wrongful=len(scene.wrongful()))
    _count(figures, "k8s_empty_list", fault)
    assert code == 3 and set(scene.garbage_left()) == set(scene.garbage)


def test_wrong_cluster_guard_can_be_overridden_explicitly(world: World, figures: Figures) -> None:
    scene = _no_camel_k_workloads(world)
    code, _ = world.run(ALLOW_EMPTY_CLUSTER="true")
    figures.run(wrongful=len(scene.wrongful()))
    assert code == 0
    assert scene.garbage_left() == [] and scene.wrongful() == []


def test_lease_that_cannot_be_taken_fails_closed(world: World, figures: Figures) -> None:
    """RBAC without the Lease (or an API server refusing it): no sweep without it."""
    scene = scenes.build(world)
    fault = world.kube.inject("GET", r"/apis/coordination.k8s.io/v1/namespaces/default/leases/camel-k-kit-gc",
                              status=403)
    code, events = world.run()
    figures.run(wrongful=len(scene.wrongful()))
    _count(figures, "k8s_403", fault)
    assert code == 3
    _nothing_deleted(world, scene)
    assert "Lease" in _aborted(events)["error"]
