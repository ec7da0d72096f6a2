"""End to end, one reference source at a time: what it references stays, its neighbour goes.

Each case pushes two images into one kit repository of the real registry, makes ONE cluster
object refer to the first (two for a bare name: the pod and the ImageStream it resolves through),
runs ``kitgc`` for real (DRY_RUN=false, MIN_AGE=0, PRUNE_KITS=false) and checks the registry
afterwards: the referenced image is still there, the other is gone.

OpenShift's APIs are served. An ImageStream ``<stream>`` in namespace ``<ns>`` stands for the
repository ``<ns>/<stream>``: here the kit repository ``<org>/camel-k-<kit>`` is the stream
``camel-k-<kit>`` in the namespace named like the organization.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from testbed import objects, openshift
from testbed.world import World

TRAIT_ANNOTATION = "trait.camel.apache.org/container.image"
TRIGGERS_ANNOTATION = "image.openshift.io/triggers"
Ref = Callable[[World, str, str, str], dict[str, Any] | list[dict[str, Any]]]
# (world, image by digest, repository, tag of the referenced image) -> the referencing object(s)


def stream(repo: str) -> str:
    """The ImageStream standing for ``repo`` (``<org>/camel-k-<kit>``), in namespace ``<org>``."""
    return repo.split("/", 1)[1]


def triggered(obj: dict[str, Any], repo: str, tag: str) -> dict[str, Any]:
    """``obj`` in namespace ``<org>`` with an ``image.openshift.io/triggers`` annotation on ``<stream>:<tag>``."""
    obj["metadata"]["annotations"] = {TRIGGERS_ANNOTATION: json.dumps([{
        "from": {"kind": "ImageStreamTag", "name": f"{stream(repo)}:{tag}"},
        "fieldPath": 'spec.template.spec.containers[?(@.name=="c0")].image'}])}
    return obj


def org(repo: str) -> str:
    return repo.split("/", 1)[0]


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
    # OpenShift
    "deploymentconfig pod template": lambda w, img, repo, tag: openshift.deployment_config("dc", "shop", images=[img]),
    "deploymentconfig image change trigger": lambda w, img, repo, tag: openshift.deployment_config(
        "dc", "shop", images=["busybox"], triggers={"c0": f"{stream(repo)}:{tag}"}, trigger_namespace=org(repo)),
    "buildconfig output.to (Camel K S2I)": lambda w, img, repo, tag: openshift.build_config(
        stream(repo), org(repo), output=("ImageStreamTag", f"{stream(repo)}:{tag}")),
    "buildconfig source strategy from an ImageStreamTag": lambda w, img, repo, tag: openshift.build_config(
        "b", org(repo), strategy="Source", base=("ImageStreamTag", f"{stream(repo)}:{tag}")),
    "buildconfig custom strategy from an ImageStreamImage": lambda w, img, repo, tag: openshift.build_config(
        "b", org(repo), strategy="Custom", base=("ImageStreamImage", f"{stream(repo)}@{img.split('@')[1]}")),
    "buildconfig docker strategy from a DockerImage": lambda w, img, repo, tag: openshift.build_config(
        "b", "shop", base=("DockerImage", img)),
    "imagestream spec tag tracking a DockerImage": lambda w, img, repo, tag: openshift.image_stream(
        "mirror", "shop", spec_tags={"t": ("DockerImage", img)}),
    "imagestream spec tag tracking a tag of its stream": lambda w, img, repo, tag: openshift.image_stream(
        stream(repo), org(repo), spec_tags={"prod": ("ImageStreamTag", tag)}),
    "triggers annotation on a deployment": lambda w, img, repo, tag: triggered(
        objects.deployment("d", org(repo), images=["busybox"]), repo, tag),
    "triggers annotation on a statefulset": lambda w, img, repo, tag: triggered(
        objects.statefulset("s", org(repo), images=["busybox"]), repo, tag),
    "triggers annotation on a cronjob": lambda w, img, repo, tag: triggered(
        objects.cronjob("c", org(repo), images=["busybox"]), repo, tag),
    "pod by bare name under lookupPolicy.local": lambda w, img, repo, tag: [
        openshift.image_stream(stream(repo), org(repo), lookup_local=True),
        objects.pod("p", org(repo), images=[f"{stream(repo)}:{tag}"])],
    "deployment by bare name under lookupPolicy.local": lambda w, img, repo, tag: [
        openshift.image_stream(stream(repo), org(repo), lookup_local=True),
        objects.deployment("d", org(repo), images=[f"{stream(repo)}:{tag}"])],
}


@pytest.fixture
def world(registry, kube, org) -> Iterator[World]:
    kube.serve("serving.knative.dev")
    kube.serve("camel.apache.org", "kameletbindings")  # Camel K 1.x's, served here next to Pipes
    for group in openshift.GROUPS:
        kube.serve(group)
    w = World(registry, kube, org)
    w.anchor()
    yield w
    w.http.close()


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_referenced_image_stays_and_unreferenced_neighbour_goes(world: World, source: str) -> None:
    repo = world.repo(objects.kit_name(source))
    kept = world.push(repo, "1")
    gone = world.push(repo, "2")
    made = SOURCES[source](world, world.image(repo, kept), repo, "1")
    world.add(*(made if isinstance(made, list) else [made]))

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


@pytest.mark.parametrize(("namespace", "local"), [("elsewhere", True), (None, False)],
                         ids=["stream-in-another-namespace", "stream-without-local-lookup"])
def test_a_bare_name_protects_nothing_without_a_local_image_stream(world: World, namespace, local) -> None:
    repo = world.repo(objects.kit_name("bare name"))
    img = world.push(repo, "1")
    world.add(openshift.image_stream(stream(repo), org(repo), lookup_local=local),
              objects.pod("p", namespace or org(repo), images=[f"{stream(repo)}:1"]))
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
