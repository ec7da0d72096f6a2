"""A deleting run's later reads drop, page by page, what the merge with the earlier snapshot
would drop: the merged snapshot, and so every decision, is the same as if they had kept it all."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kitgc.cluster import sources as S
from kitgc.cluster.fold import LINK_PRUNED_KINDS
from kitgc.cluster.found import Found
from kitgc.cluster.later import Earlier
from kitgc.cluster.merge import merge_snapshots
from kitgc.cluster.reader import ClusterReader
from kitgc.imageref import parse
from kitgc.model import ClusterSnapshot, Kit, ObjectRef, Reference
from kitgc.plan import plan
from kitgc.sweep.relevance import Relevance
from testbed import objects as o
from testbed.kube_fixtures import KubeHandle
from testbed.planfactory import World, cluster, kit, plan_inputs, use

IMG = parse("registry.example.com/camel-k/camel-k-kit-a@" + o.digest(1))
RS, DEP = ObjectRef("ReplicaSet", "orders-1", "shop"), ObjectRef("Deployment", "orders", "shop")


def pod(i: int) -> ObjectRef:
    return ObjectRef("Pod", f"orders-1-{i}", "shop")


def snap(found: Found) -> ClusterSnapshot:
    return ClusterSnapshot(tuple(found.references), tuple(found.kits), tuple(found.kit_uses),
                           tuple(found.unparsable), owners=dict(found.owners))


def copy(found: Found) -> Found:
    return Found(list(found.references), list(found.kits), list(found.kit_uses), list(found.unparsable),
                 dict(found.owners), list(found.short), set(found.local_streams))


def test_a_later_page_drops_kits_uses_and_links_the_earlier_read_holds_and_keeps_what_is_new() -> None:
    ready, building = kit("kit-a"), kit("kit-b", phase="Build Running")
    earlier = Earlier.of(cluster(kits=[ready, building], uses=[use(ready)], owners={RS: DEP, pod(0): RS}))
    now_ready = replace(building, phase="Ready")  # changed since: the merge lists it twice
    adopted = use(now_ready, name="late")
    rs2 = ObjectRef("ReplicaSet", "orders-2", "shop")
    page = Found(references=[Reference(IMG, pod(1))], kits=[ready, now_ready], kit_uses=[use(ready), adopted],
                 owners={RS: ObjectRef("Deployment", "adopter", "shop"), pod(0): RS, pod(1): rs2,
                         pod(2): rs2, rs2: DEP})
    earlier.drop_known(page)
    assert page.kits == [now_ready] and page.kit_uses == [adopted]
    # RS and pod 0: linked before (the merge keeps that link); pod 2 and rs2 hold nothing kept
    assert page.owners == {pod(1): rs2}


def test_a_later_page_drops_a_kits_own_reference_read_again_unchanged() -> None:
    """Every other kind's references are folded against the earlier read's examples; a kit's
    own are never folded, so one read again equal is dropped here (the union would)."""
    kit_ref = ObjectRef("IntegrationKit", "kit-a", "camel-k")
    same, moved = Reference(IMG, kit_ref, "status.image"), Reference(IMG, kit_ref, "status.baseImage")
    bare = Reference(parse("camel-k-kit-a:1"), kit_ref, "status.image")
    earlier = Earlier.of(cluster([same, bare]))
    page = Found(references=[same, moved, bare], short=[bare])
    earlier.drop_known(page)
    assert page.references == [moved, bare]


def test_a_later_read_keeps_the_link_of_a_replicaset_that_holds_a_kept_reference() -> None:
    earlier = Earlier.of(cluster())
    page = Found(references=[Reference(IMG, RS)], owners={RS: DEP, ObjectRef("Job", "j", "shop"): DEP})
    earlier.drop_known(page)
    assert page.owners == {RS: DEP}


KINDS = ("Pod", "ReplicaSet", "Job", "Deployment", "Integration", "BuildConfig.build.openshift.io")


@st.composite
def _objects(draw: st.DrawFn, kits: tuple[Kit, ...]) -> ObjectRef:
    if kits and draw(st.integers(0, 4)) == 0:
        k = draw(st.sampled_from(kits))
        return ObjectRef("IntegrationKit", k.name, k.namespace)
    return ObjectRef(draw(st.sampled_from(KINDS)), draw(st.sampled_from(("a", "b", "c"))), "shop")


def _decisions(world: World, snapshot: ClusterSnapshot) -> tuple[object, object]:
    p = plan(world.inventory, snapshot, world.policy, world.state, world.now)
    return ({d.manifest.key: d.action for d in p.manifests}, {d.kit.key: (d.kit, d.action) for d in p.kits})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan_inputs(), plan_inputs(), st.data())
def test_dropping_what_the_merge_would_drop_changes_neither_the_merge_nor_a_decision(
        world: World, later_world: World, data: st.DataObject) -> None:
    kits = (*world.cluster.kits, *later_world.cluster.kits)
    objects = _objects(kits)
    links = st.dictionaries(objects, objects, max_size=8)
    earlier = replace(world.cluster, owners=data.draw(links))
    # The later read: what changed (another world's picture) and much read again unchanged.
    again = st.lists(st.sampled_from(world.cluster.kits), unique=True) if world.cluster.kits else st.just([])
    uses_again = (st.lists(st.sampled_from(world.cluster.kit_uses), unique=True) if world.cluster.kit_uses
                  else st.just([]))
    extra = data.draw(st.lists(st.builds(Reference, st.sampled_from([r.image for r in later_world.cluster.references]
                                                                    or [IMG]), objects), max_size=4))
    refs_again = (st.lists(st.sampled_from(world.cluster.references), unique=True) if world.cluster.references
                  else st.just([]))
    later = Found(references=[*data.draw(refs_again), *later_world.cluster.references, *extra],
                  kits=[*data.draw(again), *later_world.cluster.kits],
                  kit_uses=[*data.draw(uses_again), *later_world.cluster.kit_uses],
                  owners=data.draw(links))
    lean = copy(later)
    Earlier.of(earlier).drop_known(lean)
    full, dropped = merge_snapshots(earlier, snap(later)), merge_snapshots(earlier, snap(lean))
    assert (dropped.references, dropped.kits, dropped.kit_uses) == (full.references, full.kits, full.kit_uses)
    assert dropped.owners.items() <= full.owners.items()
    holders = {r.source for r in later.references} | {u.user for u in later.kit_uses}
    for child in full.owners.keys() - dropped.owners.keys():
        assert child.kind in LINK_PRUNED_KINDS and child not in holders, child
    assert _decisions(world, dropped) == _decisions(world, full)


def test_a_later_read_over_the_api_holds_only_what_is_new_to_the_run(kube: KubeHandle) -> None:
    """The emulated API, page by page, four reading threads: a later read with the earlier
    snapshot holds the kit that changed, the new kit use and the new workload's links, and
    merged with the earlier read it equals the merge of a later read that kept everything
    (but the links of ReplicaSets and Pods that hold nothing it keeps)."""
    wanted = f"registry.example.com/camel-k/camel-k-{o.kit_name(1)}@{o.digest(1)}"
    for i in range(30):
        name, image = o.kit_name(100 + i), f"registry.example.com/camel-k/camel-k-{o.kit_name(100 + i)}@{o.digest(i)}"
        kube.add(o.integration_kit(name, "shop", image=image), o.integration(f"it-{i}", "shop", kit=name),
                 o.deployment(f"it-{i}", "shop", images={"app": image}, owner=("camel.apache.org/v1", "Integration",
                                                                              f"it-{i}")),
                 o.replicaset(f"it-{i}-1", "shop", images={"app": image},
                              owner=("apps/v1", "Deployment", f"it-{i}")))
        for p in range(5):
            kube.add(o.pod(f"it-{i}-1-{p}", "shop", images={"app": image},
                           owner=("apps/v1", "ReplicaSet", f"it-{i}-1")))
    kube.add(o.integration_kit(o.kit_name(1), "shop", phase="Build Running"))
    client = kube.client()
    sources = (S.INTEGRATION_KITS, S.INTEGRATIONS, S.DEPLOYMENTS, S.REPLICASETS, S.PODS)
    first = ClusterReader(client, page_size=7, sources=sources).snapshot()
    # Meanwhile: the building kit is Ready and adopted, and a new rollout runs its image.
    kits = kube.api.store.resource_for("camel.apache.org/v1", "IntegrationKit")
    kube.api.store.update(kits, "shop", o.kit_name(1), o.integration_kit(o.kit_name(1), "shop", image=wanted))
    kube.add(o.integration("late", "shop", kit=o.kit_name(1)),
             o.deployment("late", "shop", images={"app": wanted}, owner=("camel.apache.org/v1", "Integration", "late")),
             o.replicaset("late-1", "shop", images={"app": wanted}, owner=("apps/v1", "Deployment", "late")),
             o.pod("late-1-0", "shop", images={"app": wanted}, owner=("apps/v1", "ReplicaSet", "late-1")))
    keep = Relevance(frozenset({o.digest(1)}), frozenset({f"camel-k/camel-k-{o.kit_name(1)}"}))
    later = ClusterReader(client, page_size=7, sources=sources).snapshot(keep, first)
    whole = ClusterReader(client, page_size=7, sources=sources).snapshot(keep)
    assert [(k.name, k.phase) for k in later.kits] == [(o.kit_name(1), "Ready")]
    assert [u.user.name for u in later.kit_uses] == ["late"]
    late = {ObjectRef(k, n, "shop") for k, n in (("Deployment", "late"), ("ReplicaSet", "late-1"),
                                                  ("Pod", "late-1-0"))}
    holders = {r.source for r in later.references}
    assert holders & late, "the new rollout's image has its example"
    # no link the earlier read holds, none of a ReplicaSet or Pod holding nothing kept
    assert holders & late <= set(later.owners) <= late
    assert len([c for c in whole.owners if c.kind == "Deployment"]) == 31, "without it, every Deployment's"
    a, b = merge_snapshots(first, later), merge_snapshots(first, whole)
    assert (a.references, a.kits, a.kit_uses) == (b.references, b.kits, b.kit_uses)
    assert a.owners == b.owners


def test_a_merge_that_adds_nothing_hands_back_the_first_snapshots_own_containers() -> None:
    k = kit()
    first = cluster([Reference(IMG, pod(0))], kits=[k], uses=[use(k)], owners={pod(0): RS, RS: DEP})
    same = merge_snapshots(first, cluster([Reference(IMG, pod(0))], kits=[k], owners={RS: DEP}))
    assert same.references is first.references and same.kits is first.kits and same.owners is first.owners
    grown = merge_snapshots(first, cluster(owners={pod(1): RS, RS: ObjectRef("Deployment", "x", "shop")}))
    assert grown.owners == {pod(0): RS, RS: DEP, pod(1): RS}
    assert first.owners == {pod(0): RS, RS: DEP}, "the first snapshot's map is never written"


def test_a_later_read_lists_two_sources_at_a_time(kube: KubeHandle) -> None:
    """A later read holds its pages beside the plan being carried out, where a deleting run
    peaks: it reads two sources at once, where the first read reads four."""
    import threading
    import time

    lock, now, most = threading.Lock(), [0], [0]

    def slow(method: str, path: str, query: dict[str, str]) -> None:
        if method != "GET" or "limit" not in query:
            return
        with lock:
            now[0] += 1
            most[0] = max(most[0], now[0])
        time.sleep(0.2)
        with lock:
            now[0] -= 1

    kube.api.on_request(slow)
    sources = (S.PODS, S.DEPLOYMENTS, S.REPLICASETS, S.INTEGRATIONS, S.INTEGRATION_KITS)
    reader = ClusterReader(kube.client(), sources=sources)
    first = reader.snapshot()
    assert most[0] > 2, "the first read lists more at once (four readers)"
    most[0] = 0
    reader.snapshot(Relevance(frozenset(), frozenset()), first)
    assert most[0] == 2
