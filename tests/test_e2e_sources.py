"""End to end, one reference source at a time: what it references stays, its neighbour goes.

Each case pushes two images into one kit repository of the real registry, makes ONE cluster
object refer to the first, runs ``kitgc`` for real (DRY_RUN=false, MIN_AGE=0, PRUNE_KITS=false)
and checks the registry afterwards: the referenced image is still there, the other is gone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from testbed import objects
from testbed.world import World

TRAIT_ANNOTATION = "trait.camel.apache.org/container.image"
Ref = Callable[[World, str, str, str], dict[str, Any]]
# (world, image by digest, repository, tag of the referenced image) -> the referencing object

SOURCES: dict[str, Ref] = {
    "pod container": lambda w, img, repo, tag: objects.pod("p", "shop", images=[img]),
    "pod init container": lambda w, img, repo, tag: objects.pod("p", "shop", images=["busybox"], init=[img]),
    "pod ephemeral container": lambda w, img, repo, tag: objects.pod("p", "shop", images=["busybox"],
                                                                     ephemeral=[img]),
    "pod imageID of a tag reference": lambda w, img, repo, tag: objects.pod(
        "p", "shop", images={"app": "elsewhere.example/x/y:latest"},
        image_ids={"app": "docker-pullable://" + img}),
    "deployment": lambda w, img, repo, tag: objects.deployment("orders", "shop", images=[img]),
    "replicaset": lambda w, img, repo, tag: objects.replicaset("orders-5d4f", "shop", images=[img]),
    "statefulset": lambda w, img, repo, tag: objects.statefulset("db", "shop", images=[img]),
    "daemonset": lambda w, img, repo, tag: objects.daemonset("agent", "shop", images=[img]),
    "job": lambda w, img, repo, tag: objects.job("batch-1", "shop", images=[img]),
    "cronjob": lambda w, img, repo, tag: objects.cronjob("nightly", "shop", images=[img]),
    "knative service": lambda w, img, repo, tag: objects.knative_service("ks", "shop", image=img),
    "knative revision scaled to zero": lambda w, img, repo, tag: objects.knative_revision(
        "ks-00001", "shop", image=f"{w.registry.address}/{repo}:{tag}", image_digest=img),
    "integration status.image": lambda w, img, repo, tag: objects.integration("it", "shop", image=img),
    "integration container trait": lambda w, img, repo, tag: objects.integration("it", "shop", trait_image=img),
    "unfinished build": lambda w, img, repo, tag: objects.build("kit-build-1", "camel-k", phase="Running",
                                                               image=img),
    "replication controller": lambda w, img, repo, tag: objects.replication_controller("rc", "shop", images=[img]),
    "knative configuration": lambda w, img, repo, tag: objects.knative_configuration("ks", "shop", image=img),
    "integration trait annotation": lambda w, img, repo, tag: {
        **objects.integration("it", "shop"),
        "metadata": {"name": "it", "namespace": "shop", "annotations": {TRAIT_ANNOTATION: img}}},
    "pipe trait annotation": lambda w, img, repo, tag: objects.pipe("p", "shop", annotation=img),
    "pipe trait annotation, array notation": lambda w, img, repo, tag: objects.pipe(
        "p", "shop", annotation=f'["docker.io/library/busybox:1", "{img}"]'),
    "pipe spec.traits": lambda w, img, repo, tag: objects.pipe("p", "shop", trait_image=img),
    "pipe spec.integration.traits": lambda w, img, repo, tag: objects.pipe("p", "shop", integration_trait_image=img),
    "kameletbinding trait annotation": lambda w, img, repo, tag: objects.kamelet_binding("kb", "shop", annotation=img),
    "kameletbinding spec.integration.traits": lambda w, img, repo, tag: objects.kamelet_binding(
        "kb", "shop", integration_trait_image=img),
    "integration platform build.baseImage": lambda w, img, repo, tag: objects.integration_platform(
        "camel-k", "camel-k", base_image=img),
    "integration profile build.baseImage": lambda w, img, repo, tag: objects.integration_profile(
        "p", "shop", base_image=img),
    "pod by tag": lambda w, img, repo, tag: objects.pod("p", "shop", images=[f"{w.registry.address}/{repo}:{tag}"]),
    "pod by tag under another host name": lambda w, img, repo, tag: objects.pod(
        "p", "shop", images=[f"registry.internal.example:5000/{repo}:{tag}"]),
}


@pytest.fixture
def world(registry, kube, org) -> Iterator[World]:
    kube.serve("serving.knative.dev")
    kube.serve("camel.apache.org", "kameletbindings")  # Camel K 1.x's, served here next to Pipes
    w = World(registry, kube, org)
    w.anchor()
    yield w
    w.http.close()


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_referenced_image_stays_and_unreferenced_neighbour_goes(world: World, source: str) -> None:
    repo = world.repo(objects.kit_name(source))
    kept = world.push(repo, "1")
    gone = world.push(repo, "2")
    world.add(SOURCES[source](world, world.image(repo, kept), repo, "1"))

    code, events = world.run(DRY_RUN="false", PRUNE_KITS="false")

    assert code == 0, events[-3:]
    assert world.exists(repo, kept), f"{source}: referenced image was deleted"
    assert not world.exists(repo, gone), f"{source}: unreferenced image was not deleted"
    assert world.tags(repo) == ["1"]


def test_finished_build_does_not_protect_its_image(world: World) -> None:
    repo = world.repo(objects.kit_name("finished build"))
    img = world.push(repo, "1")
    world.add(objects.build("kit-build-2", "camel-k", phase="Succeeded", image=world.image(repo, img)))
    code, _ = world.run(DRY_RUN="false", PRUNE_KITS="false")
    assert code == 0
    assert not world.exists(repo, img)


def test_index_referenced_by_digest_keeps_its_children(world: World) -> None:
    from testbed import images

    repo = world.repo(objects.kit_name("multiarch"))
    index, children = images.push_multiarch(world.registry.url, repo, ["1"], client=world.http)
    stray = world.push(repo, "2")
    world.add(objects.deployment("orders", "shop", images=[world.image(repo, index)]))
    code, _ = world.run(DRY_RUN="false", PRUNE_KITS="false")
    assert code == 0
    assert world.exists(repo, index)
    assert all(world.exists(repo, c) for c in children)
    assert not world.exists(repo, stray)
