"""End to end on OpenShift: kit images in ImageStreams, deleted through the Kubernetes API only.

The emulated API serves image.openshift.io (ImageStreams, ImageStreamTags, Images) with the
shapes openshift/api documents and honours ownerReferences on delete, as the garbage
collector of Kubernetes does. Two scenes:

* **S2I** (Camel K <= 2.5, the default publish strategy on OpenShift): each kit owns its
  ImageStream and BuildConfig ``camel-k-<kit>`` in its namespace.
* **Jib** (Camel K >= 2.6): the integrated registry creates the ImageStream ``<org>/camel-k-<kit>``
  on push, owned by nobody; it outlives the kit.

``REGISTRY_ADDRESS`` names the integrated registry's service, where nothing listens: a single
registry request would fail the run.
"""

from __future__ import annotations

import pytest

from testbed import objects, openshift
from testbed.world import World, events_named

REGISTRY = "image-registry.openshift-image-registry.svc:5000"
OLD = "2020-01-01T00:00:00Z"


@pytest.fixture
def world(registry, kube, org) -> World:
    for group in openshift.GROUPS:
        kube.serve(group)
    w = World(registry, kube, org)
    w.anchor()
    return w


def _run(world: World, ns: str, **env: str) -> tuple[int, list[dict]]:
    return world.run(**{"REGISTRY_ADDRESS": REGISTRY, "REGISTRY_ORGANIZATION": ns, "REGISTRY_INSECURE": "false",
                        "DRY_RUN": "false", **env})


def _names(world: World, plural: str, ns: str) -> list[str]:
    res = world.kube.api.store.resource_for(f"{openshift.IMAGE}/v1" if plural != "buildconfigs"
                                            else f"{openshift.OPENSHIFT_BUILD}/v1",
                                            {"imagestreams": "ImageStream", "buildconfigs": "BuildConfig"}[plural])
    return sorted(o["metadata"]["name"] for o in world.kube.api.store.objects(res)
                  if o["metadata"].get("namespace") == ns)


def _tags(world: World, ns: str, stream: str) -> list[str]:
    res = world.kube.api.store.resource_for(f"{openshift.IMAGE}/v1", "ImageStream")
    for o in world.kube.api.store.objects(res):
        if o["metadata"]["namespace"] == ns and o["metadata"]["name"] == stream:
            return sorted(t["tag"] for t in o["status"].get("tags") or [])
    return []


def test_s2i_an_unused_kit_goes_with_its_stream_and_a_used_one_stays(world: World) -> None:
    ns = "shop"
    used = openshift.integration_kit_s2i(objects.kit_name("used"), ns, seed="used", created=OLD)
    unused = openshift.integration_kit_s2i(objects.kit_name("unused"), ns, seed="unused", created=OLD)
    world.add(*used, *unused)
    world.add(objects.integration("orders", ns, kit=used.kit["metadata"]["name"],
                                  image=used.kit["status"]["image"]))

    code, events = _run(world, ns)

    assert code == 0, events[-3:]
    assert world.kits() == [used.kit["metadata"]["name"]]
    assert _names(world, "imagestreams", ns) == [used.stream["metadata"]["name"]]
    assert _names(world, "buildconfigs", ns) == [used.build_config["metadata"]["name"]]
    (summary,) = events_named(events, "summary")
    assert summary["kits_deleted"] == 1 and summary["exit_code"] == 0


def test_jib_unowned_streams_lose_what_nothing_uses_and_keep_the_history_a_tag_needs(world: World) -> None:
    ns = "camel-k"
    d = {n: objects.digest(f"jib-{n}") for n in ("a1", "a0", "b1", "c1", "c0")}
    kit_a, kit_b, kit_c = (objects.kit_name(f"jib-{n}") for n in "abc")
    # a: used, its tag's history holds an older build too; b: unused and old; c: unused, two tags
    world.add(openshift.image_stream(f"camel-k-{kit_a}", ns, tags={"2": [(d["a1"], OLD), (d["a0"], OLD)]}),
              openshift.image_stream(f"camel-k-{kit_b}", ns, tags={"1": [(d["b1"], OLD)]}),
              openshift.image_stream(f"camel-k-{kit_c}", ns, tags={"2": [(d["c1"], OLD)], "1": [(d["c0"], OLD)]}),
              *(openshift.image(x, layers=[(objects.digest(("l", x)), 1000)]) for x in d.values()))
    world.add(objects.integration_kit(kit_a, ns, created=OLD, image=f"{REGISTRY}/{ns}/camel-k-{kit_a}@{d['a1']}"))
    world.add(objects.integration("orders", "shop", kit=kit_a, kit_namespace=ns,
                                  image=f"{REGISTRY}/{ns}/camel-k-{kit_a}@{d['a1']}"))

    code, events = _run(world, ns)

    assert code == 0, events[-3:]
    assert _names(world, "imagestreams", ns) == [f"camel-k-{kit_a}"]  # b's and c's streams went whole
    assert _tags(world, ns, f"camel-k-{kit_a}") == ["2"]  # a's tag kept, with the history it holds


def test_a_stream_referenced_only_by_its_short_name_under_local_lookup_stays(world: World) -> None:
    ns = "shop"
    kit = objects.kit_name("short")
    digest = objects.digest("short")
    world.add(openshift.image_stream(f"camel-k-{kit}", ns, tags={"7": [(digest, OLD)]}, lookup_local=True),
              openshift.image(digest))
    world.add(objects.pod("p", ns, images=[f"camel-k-{kit}:7"]))  # no host, no path: OpenShift resolves it

    code, events = _run(world, ns)

    assert code == 0, events[-3:]
    assert _names(world, "imagestreams", ns) == [f"camel-k-{kit}"]


def test_reclaimable_bytes_come_from_the_image_objects(world: World) -> None:
    ns = "shop"
    gone = openshift.integration_kit_s2i(objects.kit_name("bytes"), ns, seed="bytes", created=OLD,
                                         layers=[(objects.digest("l1"), 1000), (objects.digest("l2"), 234)])
    world.add(*gone)

    code, events = _run(world, ns, DRY_RUN="true")

    assert code == 0, events[-3:]
    (summary,) = events_named(events, "summary")
    assert summary["bytes_reclaimable"] == 1234


def test_a_forbidden_imagestream_list_stops_the_run_and_deletes_nothing(world: World) -> None:
    ns = "shop"
    world.add(*openshift.integration_kit_s2i(objects.kit_name("forbidden"), ns, seed="f", created=OLD))
    world.kube.inject("GET", f"/apis/{openshift.IMAGE}/v1/imagestreams", status=403)

    code, events = _run(world, ns)

    assert code == 3, events[-3:]
    assert world.kube.writes() == []
