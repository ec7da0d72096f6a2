"""End to end: references from other clusters (REFERENCE_KUBECONFIG), scope that follows kits.

Two emulated Kubernetes APIs over real HTTP — ``kube`` (dev, where the collector runs) and
``prod`` — and the real registry both push to. ``kamel promote`` copies dev's kit image by
digest into prod's Integration (``spec.traits.container.image``); when dev lets go of it,
only prod still needs it.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from testbed import objects
from testbed.clusters import write_reference_kubeconfig
from testbed.kubeapi import KubeAPI
from testbed.world import World, events_named

OLD = "2020-01-01T00:00:00Z"


@pytest.fixture
def world(registry, kube, org) -> World:
    w = World(registry, kube, org)
    w.anchor()
    return w


def _promoted(world: World, prod: KubeAPI) -> tuple[str, str, str]:
    """Dev's kit image, promoted to prod; dev's Integration is gone, its kit unused and old."""
    kit = objects.kit_name(f"{world.org}-promoted")
    repo = world.repo(kit)
    digest = world.push(repo, "1")
    world.add(objects.integration_kit(kit, "dev", image=world.image(repo, digest), created=OLD))
    prod.add(objects.integration("orders", "shop", trait_image=world.image(repo, digest),
                                 image=world.image(repo, digest)))
    return kit, repo, digest


def _refs(tmp_path: Path, **clusters: str) -> str:
    return str(write_reference_kubeconfig(tmp_path / "reference-kubeconfig", clusters))


def test_a_promoted_image_stays_while_another_cluster_runs_it(world: World, prod: KubeAPI, tmp_path: Path) -> None:
    kit, repo, digest = _promoted(world, prod)
    orphan = world.push(world.repo(objects.kit_name(f"{world.org}-orphan")), "1")
    report = tmp_path / "report.json"

    code, events = world.run(DRY_RUN="false", REFERENCE_KUBECONFIG=_refs(tmp_path, prod=prod.url),
                             REPORT_FILE=str(report))

    assert code == 0, events[-3:]
    assert world.exists(repo, digest) and world.kits() == [kit]  # kept, and its kit with it
    assert not world.exists(world.repo(objects.kit_name(f"{world.org}-orphan")), orphan)
    entry = next(m for m in json.loads(report.read_text())["manifests"] if m["digest"] == digest)
    subjects = [s for w in entry["why"] for s in w.get("subjects", [])]
    assert {"kind": "Integration", "namespace": "shop", "name": "orders", "cluster": "prod"}.items() <= \
        subjects[0].items(), entry["why"]
    assert "in cluster prod" in entry["reason"]
    assert prod.writes() == []  # the other cluster is only ever read
    (summary,) = events_named(events, "summary")
    assert summary["clusters_read"] == 2


def test_without_the_other_cluster_a_dry_run_warns_that_the_registry_looks_shared(
    world: World, prod: KubeAPI
) -> None:
    _promoted(world, prod)
    for n in range(6):  # what prod's own operator pushed here: no kit of dev's ever owned them
        world.push(world.repo(objects.kit_name(f"{world.org}-prod-{n}")), "1")

    code, events = world.run(DRY_RUN="true")

    assert code == 0
    (warning,) = events_named(events, "registry_looks_shared")
    assert warning["unowned_repositories"] >= 6 and "REFERENCE_KUBECONFIG" in warning["note"]
    (summary,) = events_named(events, "summary")
    assert summary["unowned_repositories"] >= 6


def test_a_kit_of_the_other_cluster_keeps_the_local_kit_it_builds_on(
    world: World, prod: KubeAPI, tmp_path: Path
) -> None:
    base = objects.kit_name(f"{world.org}-base")
    repo = world.repo(base)
    digest = world.push(repo, "1")
    world.add(objects.integration_kit(base, "dev", image=world.image(repo, digest), created=OLD))
    prod.add(objects.integration_kit(objects.kit_name(f"{world.org}-child"), "shop", created=OLD,
                                     base_image=world.image(repo, digest)))

    code, _ = world.run(DRY_RUN="false", REFERENCE_KUBECONFIG=_refs(tmp_path, prod=prod.url))

    assert code == 0
    assert world.kits() == [base] and world.exists(repo, digest)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("fault", ["unreachable", "forbidden", "expired continue"])
def test_another_cluster_that_cannot_be_read_completely_stops_the_run(
    world: World, prod: KubeAPI, tmp_path: Path, fault: str
) -> None:
    kit, repo, digest = _promoted(world, prod)
    server = prod.url
    if fault == "unreachable":
        server = f"http://127.0.0.1:{_free_port()}"
    elif fault == "forbidden":
        prod.inject("GET", "/apis/apps/v1/deployments", status=403)
    else:
        for n in range(3):
            prod.add(objects.pod(f"p{n}", "shop", images=["docker.io/library/busybox:1"]))
        prod.inject("GET", "/api/v1/pods", status=410, only_continue=True)

    code, events = world.run(DRY_RUN="false", REFERENCE_KUBECONFIG=_refs(tmp_path, prod=server), KUBE_PAGE_SIZE="1",
                             KUBE_TIMEOUT="2s")

    assert code == 3, events[-3:]
    failure = next(e for e in events if e.get("event") == "run_aborted")
    assert "reference cluster prod" in failure["error"]
    assert world.exists(repo, digest) and world.kits() == [kit]
    assert world.kube.writes() == []


def test_a_reference_kubeconfig_without_contexts_is_a_configuration_error(world: World, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text(json.dumps({"apiVersion": "v1", "kind": "Config", "contexts": []}))

    code, events = world.run(DRY_RUN="false", REFERENCE_KUBECONFIG=str(empty))

    assert code == 2
    assert any("REFERENCE_KUBECONFIG" in e.get("error", "") for e in events)


def test_a_user_kit_repository_is_collected_and_a_lookalike_without_a_kit_is_not(world: World) -> None:
    user = world.repo("my-kit")  # kamel kit create my-kit
    gone = world.push(user, "1")
    world.add(objects.integration_kit("my-kit", "camel-k", kit_type="user", created=OLD,
                                      image=world.image(user, gone)))
    app = world.repo("my-app")  # looks like a kit's, but no kit was ever seen for it
    app_image = world.push(app, "1")
    ctx = world.push(f"{world.org}/camel-k-ctx-{objects.kit_name('old')[4:]}", "1")  # Camel K 0.x context

    code, events = world.run(DRY_RUN="false")

    assert code == 0, events[-3:]
    assert not world.exists(user, gone) and "my-kit" not in world.kits()
    assert world.exists(app, app_image)
    assert not world.exists(f"{world.org}/camel-k-ctx-{objects.kit_name('old')[4:]}", ctx)
