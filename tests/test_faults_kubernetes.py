"""Kubernetes API faults in the emulated API server, during real runs.

Whenever the reference picture could be incomplete (a source forbidden, failing for good,
timing out, answering garbage, or the API server unreachable), the run must fail closed:
exit 3, not one DELETE anywhere. Transient trouble (500 bursts, an expired continue token,
one slow answer) is retried and the run completes. The second read just before the sweep
and the read after deleting kits fail closed the same way.

The cases are tables, one row per fault, its id the behaviour that row protects; each table
drives one test whose name is the promise every row of it keeps. A new fault is a new row.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from testbed import objects
from testbed import scene as scenes
from testbed.figures import Figures
from testbed.kubeapi import Fault
from testbed.registry_server import free_port
from testbed.world import World, events_named

SOURCES = {
    "pods": "/api/v1/pods",
    "deployments": "/apis/apps/v1/deployments",
    "integrations": "/apis/camel.apache.org/v1/integrations",
    "integrationkits": "/apis/camel.apache.org/v1/integrationkits",
    "builds": "/apis/camel.apache.org/v1/builds",
}
KIT_DELETE = r"/apis/camel.apache.org/v1/namespaces/[^/]+/integrationkits/[^/]+"
LEASE = r"/apis/coordination.k8s.io/v1/namespaces/default/leases/camel-k-kit-gc"
EMPTY_INTEGRATION_LIST = b'{"kind":"IntegrationList","apiVersion":"camel.apache.org/v1","metadata":{},"items":[]}'

# Sets a case up before the run: injects its faults (returned, to count them once they have
# fired; a hook may add to the list during the run) or, returning None, is the fault itself.
Arrange = Callable[[World, Path], list[Fault] | None]


@pytest.fixture
def world(registry, kube, org) -> Iterator[World]:
    w = World(registry, kube, org)
    w.env.update(DRY_RUN="false")
    yield w
    w.http.close()


def _count(figures: Figures, label: str, faults: list[Fault] | None) -> None:
    if faults is None:
        figures.fault(label)
    else:
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


def _get(*sources: str, env: dict[str, str] | None = None, **fault: Any) -> Arrange:
    """Inject ``fault`` on every GET of each of ``sources`` (names in SOURCES, or paths), with ``env`` set."""

    def arrange(world: World, tmp_path: Path) -> list[Fault]:
        world.env.update(env or {})
        return [world.kube.inject("GET", SOURCES.get(s, s), **fault) for s in sources]

    return arrange


# --- the reference picture could be incomplete: exit 3, nothing deleted -------------------

def _unreachable(world: World, tmp_path: Path) -> None:
    cfg = tmp_path / "unreachable"
    cfg.write_text(world.kube.kubeconfig.read_text().replace(world.kube.api.url, f"http://127.0.0.1:{free_port()}"))
    world.env["KUBECONFIG"] = str(cfg)


def _forbidden_after_the_lease(world: World, tmp_path: Path) -> list[Fault]:
    """The first read is fine; the one just before deleting (after taking the Lease) is refused."""
    faults: list[Fault] = []

    def after_lease(method: str, path: str, query: dict[str, str]) -> None:
        if method in ("POST", "PUT") and "/leases" in path and not faults:
            faults.append(world.kube.inject("GET", SOURCES["deployments"], status=403))

    world.kube.api.on_request(after_lease)
    return faults


def _second_read_failed_and_the_lease_was_released(faults: list[Fault], events: list[dict]) -> None:
    assert faults and faults[0].hits >= 1
    assert next(events_named(events, "lease_released"))
    # The first plan was let go before the second read; its figures still make the summary.
    summary = next(events_named(events, "summary"))
    assert summary["manifests_scanned"] > 0 and summary["manifests_eligible"] > 0, summary
    assert summary["manifests_deleted"] == 0 and summary["outcome"] == "aborted"


@dataclass(frozen=True)
class FailsClosed:
    arrange: Arrange
    label: str  # the fault's name in the reliability figures
    names: str | None  # what the run's one-line error must name
    writes_nothing: bool = True  # aborted before taking the Lease: no write at all
    check: Callable[[list[Fault], list[dict]], None] | None = None


FAILS_CLOSED = [
    *(pytest.param(FailsClosed(_get(source, status=403), "k8s_403", source),
                   id=f"forbidden_{source}_named_in_the_error") for source in sorted(SOURCES)),
    pytest.param(FailsClosed(_get("integrationkits", status=500), "k8s_500", "integrationkits"),
                 id="source_500_forever"),
    pytest.param(FailsClosed(_get("integrationkits", status=200, body=b"<html>proxy error</html>"), "k8s_not_json",
                             "integrationkits"), id="source_answering_not_json"),
    pytest.param(FailsClosed(_get("integrationkits", env={"KUBE_PAGE_SIZE": "1"}, status=410, only_continue=True),
                             "k8s_410_continue", "integrationkits"), id="source_410_on_every_continue"),
    pytest.param(FailsClosed(_get("integrationkits", env={"KUBE_TIMEOUT": "1s"}, delay=1.5), "k8s_timeout",
                             "integrationkits"), id="source_slower_than_kube_timeout"),
    pytest.param(FailsClosed(_unreachable, "k8s_unreachable", "Connection refused"),
                 id="unreachable_api_server"),
    pytest.param(FailsClosed(_get(LEASE, status=403), "k8s_403", "Lease"), id="lease_that_cannot_be_taken"),
    pytest.param(FailsClosed(_forbidden_after_the_lease, "k8s_403", None, writes_nothing=False,
                             check=_second_read_failed_and_the_lease_was_released),
                 id="second_read_before_the_sweep_failing"),
]


@pytest.mark.parametrize("case", FAILS_CLOSED)
def test_incomplete_reference_picture_fails_closed(
    world: World, figures: Figures, tmp_path: Path, case: FailsClosed
) -> None:
    scene = scenes.build(world)
    faults = case.arrange(world, tmp_path)
    code, events = world.run()
    figures.run(wrongful=len(scene.wrongful()))
    _count(figures, case.label, faults)
    assert code == 3, events[-3:]
    _nothing_deleted(world, scene)
    if case.names is not None:
        assert case.names in _aborted(events)["error"]
    if case.writes_nothing:
        assert world.kube.writes() == [], "an aborted run takes no Lease and saves no state"
    if case.check is not None:
        case.check(faults or [], events)


# --- transient trouble: retried, the run completes ---------------------------------------

RETRIED = [
    pytest.param(_get("pods", "integrations", status=500, times=2), "k8s_500", id="500_burst"),
    pytest.param(_get("integrationkits", env={"KUBE_PAGE_SIZE": "1"}, status=410, only_continue=True, times=1),
                 "k8s_410_continue", id="410_on_a_continue"),
    pytest.param(_get("deployments", env={"KUBE_TIMEOUT": "1s"}, delay=1.5, times=1), "k8s_timeout",
                 id="one_answer_slower_than_kube_timeout"),
]


@pytest.mark.parametrize(("arrange", "label"), RETRIED)
def test_transient_api_trouble_is_retried_and_the_run_completes(
    world: World, figures: Figures, tmp_path: Path, arrange: Arrange, label: str
) -> None:
    scene = scenes.build(world)
    faults = arrange(world, tmp_path) or []
    code, events = world.run()
    figures.run(wrongful=len(scene.wrongful()))
    _count(figures, label, faults)
    assert all(f.hits == f.times for f in faults)
    assert code == 0, events[-3:]
    assert scene.wrongful() == [] and scene.garbage_left() == [] and scene.kits_without_image() == []


# --- the read after deleting kits ----------------------------------------------------------

def test_read_after_deleting_kits_that_fails_keeps_every_image(world: World, figures: Figures) -> None:
    scene = scenes.build(world)
    faults: list[Fault] = []

    def after_kit_delete(method: str, path: str, query: dict[str, str]) -> None:
        if method == "DELETE" and re.fullmatch(KIT_DELETE, path) and not faults:
            faults.append(world.kube.inject("GET", SOURCES["builds"], status=500))

    world.kube.api.on_request(after_kit_delete)
    code, events = world.run()
    figures.run(wrongful=len(scene.wrongful()))
    _count(figures, "k8s_500", faults)
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
    world.add(objects.deployment("web", "shop", images=[world.image(*scene.keep["k"])]))
    return scene


def _integrations_hidden(world: World) -> list[Fault]:
    """There IS an Integration, but the API server answers an empty list."""
    world.anchor()
    return [world.kube.inject("GET", SOURCES["integrations"], status=200, body=EMPTY_INTEGRATION_LIST)]


@dataclass(frozen=True)
class Guarded:
    code: int  # 3: the guard stopped the run; 0: it let it through
    arrange: Callable[[World], list[Fault]] | None = None
    label: str | None = None  # the injected fault's name in the reliability figures
    env: dict[str, str] = field(default_factory=dict)


GUARDED = [
    pytest.param(Guarded(3), id="guard_stops_a_mass_deletion_with_exit_3"),
    pytest.param(Guarded(3, _integrations_hidden, "k8s_empty_list"),
                 id="api_server_answering_empty_integration_lists_trips_the_guard"),
    pytest.param(Guarded(0, env={"ALLOW_EMPTY_CLUSTER": "true"}), id="guard_can_be_overridden_explicitly"),
]


@pytest.mark.parametrize("case", GUARDED)
def test_wrong_cluster_guard(world: World, figures: Figures, case: Guarded) -> None:
    scene = _no_camel_k_workloads(world)
    faults = case.arrange(world) if case.arrange else []
    code, events = world.run(**case.env)
    figures.run(wrongful=len(scene.wrongful()))
    if case.label is not None:
        _count(figures, case.label, faults)
    assert code == case.code
    if case.code == 3:
        assert set(scene.garbage_left()) == set(scene.garbage)
        assert "ALLOW_EMPTY_CLUSTER" in _aborted(events)["error"]
        assert world.kube.writes() == []
    else:
        assert scene.garbage_left() == [] and scene.wrongful() == []
