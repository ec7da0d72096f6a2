"""A deleting run's second and third reads keep only the references that can change its plan,
and planning with those gives exactly the plan that keeping every reference gives."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kitgc.cluster import sources as S
from kitgc.cluster.merge import merge_snapshots
from kitgc.cluster.reader import ClusterReader
from kitgc.imageref import digest_only, parse
from kitgc.model import Action, ClusterSnapshot, ObjectRef, Reference
from kitgc.sweep.relevance import Relevance
from testbed import objects as o
from testbed.kube_fixtures import KubeHandle
from testbed.planfactory import HOST, World, cluster, image, inventory, kit, manifest, plan_inputs, policy, repo, run


@st.composite
def worlds_and_second_reads(draw: st.DrawFn) -> tuple[World, tuple[Reference, ...]]:
    """A world, and what a second read adds: references to its manifests (by digest, bare
    digest, tag, on the registry's host or another) and to images it does not hold."""
    world = draw(plan_inputs())
    manifests = list(world.inventory.manifests)
    images = [parse("docker.io/library/nginx:1.27"), digest_only("sha256:" + "f" * 64),
              parse(f"{HOST}/other/camel-k-kit-a:latest")]  # a tag outside the scope: a digest in it
    for m in manifests:
        images += [parse(f"{HOST}/{m.repository}@{m.digest}"), parse(f"mirror.example.com/{m.repository}@{m.digest}"),
                   digest_only(m.digest), *(parse(f"{HOST}/{m.repository}:{t}") for t in m.tags)]
    images += [k.image for k in world.cluster.kits if k.image is not None]
    source = st.sampled_from([ObjectRef("Pod", f"new-{i}", "shop") for i in range(3)]
                             + [ObjectRef("IntegrationKit", k.name, k.namespace) for k in world.cluster.kits[:2]])
    second = draw(st.lists(st.builds(Reference, st.sampled_from(images), source), max_size=8))
    return world, tuple(second)


def _deletions(world: World, cluster: ClusterSnapshot) -> tuple[frozenset[object], frozenset[object]]:
    p = replace(world, cluster=cluster).plan()
    return (frozenset(d.manifest.key for d in p.manifest_deletions), frozenset(d.kit.key for d in p.kit_deletions))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds_and_second_reads())
def test_a_second_read_filtered_by_relevance_plans_exactly_like_the_whole_second_read(case) -> None:
    world, second = case
    first = world.plan()
    keep = Relevance.of(first, world.inventory.manifests)
    read = replace(world.cluster, references=second)
    whole = merge_snapshots(world.cluster, read)
    filtered = merge_snapshots(world.cluster, replace(read, references=tuple(r for r in second if keep(r))))
    assert _deletions(world, filtered) == _deletions(world, whole)


def test_a_bare_digest_of_the_image_a_deleted_kit_names_by_tag_is_relevant() -> None:
    """Found by the property above: a kit whose status names its image by tag is in use when a
    Pod's imageID names the digest that tag points at (a bare digest, no repository). The
    filter matched only the kit's repository and its digest when written, and let that
    reference go, so the filtered read deleted a kit the whole read kept."""
    m = manifest(repo("kit-a"), 1, "latest")
    k = kit(image=image(repo("kit-a"), tag="latest"))
    building = kit(namespace="other-ns", phase="Build Running")  # keeps the repository's images
    first = run(inventory(m), cluster(kits=[k, building]), policy(min_age=timedelta(0)))
    assert [d.kit for d in first.kit_deletions] == [k]
    assert [(d.action, d.referenced) for d in first.manifests] == [(Action.KEEP, True)]
    keep = Relevance.of(first, [m])
    assert keep(Reference(digest_only(m.digest), ObjectRef("Pod", "new-0", "shop")))
    assert not keep(Reference(digest_only("sha256:" + "f" * 64), ObjectRef("Pod", "new-0", "shop")))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan_inputs())
def test_relevance_holds_every_manifest_the_plan_could_still_delete_and_no_referenced_one(world: World) -> None:
    p = world.plan()
    keep = Relevance.of(p, world.inventory.manifests)
    for d in p.manifests:
        if d.action is not Action.KEEP or not d.referenced:
            assert d.manifest.digest in keep.digests and d.manifest.repository in keep.repositories
    for k in p.kit_deletions:
        if k.kit.image is not None:
            assert k.kit.image.repository in keep.repositories


def test_a_reference_matters_by_digest_on_any_host_or_by_its_repository_path() -> None:
    keep = Relevance(frozenset({"sha256:" + "a" * 64}), frozenset({"camel-k/camel-k-kit-a"}))
    pod = ObjectRef("Pod", "p", "shop")
    assert keep(Reference(digest_only("sha256:" + "a" * 64), pod))
    assert keep(Reference(parse("mirror.io/x/y@sha256:" + "a" * 64), pod))
    assert keep(Reference(parse("other.io/camel-k/camel-k-kit-a:7"), pod))
    assert not keep(Reference(parse("r.io/camel-k/camel-k-kit-b:7"), pod))
    assert not keep(Reference(parse("r.io/camel-k/camel-k-kit-b@sha256:" + "b" * 64), pod))


def test_the_reader_drops_what_keep_refuses_but_never_kits_or_bare_names(kube: KubeHandle) -> None:
    kept_image = f"registry.example.com/camel-k/camel-k-{o.kit_name(1)}@{o.digest(1)}"
    kube.add(o.pod("a", "shop", images={"app": kept_image}),
             o.pod("b", "shop", images={"app": "docker.io/library/nginx:1.27"}),
             o.pod("c", "shop", images={"app": "camel-k-kit-x"}),  # a bare name: may resolve later
             o.integration_kit(o.kit_name(2), "shop", image=f"registry.example.com/camel-k/k@{o.digest(2)}"))
    keep = Relevance(frozenset({o.digest(1)}), frozenset())
    snap = ClusterReader(kube.client(), sources=(S.PODS, S.INTEGRATION_KITS)).snapshot(keep)
    assert {r.source.name for r in snap.references} == {"a", "c"}
    assert [k.name for k in snap.kits] == [o.kit_name(2)]
