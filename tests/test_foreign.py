"""Other clusters' references (pure): what from_cluster makes of a snapshot, and how it plans.

End to end with two emulated API servers: test_e2e_clusters.py.
"""

from __future__ import annotations

import json
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kitgc.cluster.foreign import from_cluster, with_references_from
from kitgc.imageref import parse
from kitgc.kube.connect import reference_contexts
from kitgc.model import Action, ClusterSnapshot, KitUse, ObjectRef, Reference
from kitgc.plan.reasons import ReasonKind
from testbed import planfactory as f
from testbed.clusters import write_reference_kubeconfig
from testbed.planfactory import DAY, HOUR


def test_a_snapshot_from_another_cluster_names_it_and_its_kits_become_foreign() -> None:
    kit = f.kit("kit-p")
    pod, rs = ObjectRef("Pod", "p", "shop"), ObjectRef("ReplicaSet", "r", "shop")
    snap = f.cluster([f.ref(f.image(f.repo("kit-p"), "p1"), "Pod", "p", "shop")], [kit], [f.use(kit)],
                     owners={pod: rs})

    other = from_cluster(snap, "prod")

    assert other.kits == () and other.kit_uses == ()
    assert [k.cluster for k in other.foreign_kits] == ["prod"]
    assert other.references[0].source == ObjectRef("Pod", "p", "shop", "prod")
    assert other.owners == {ObjectRef("Pod", "p", "shop", "prod"): ObjectRef("ReplicaSet", "r", "shop", "prod")}
    assert str(other.references[0].source) == "Pod shop/p in cluster prod"


def test_the_wrong_cluster_guard_still_counts_only_this_clusters_integrations() -> None:
    local = replace(f.cluster(), integrations=0)
    other = from_cluster(replace(f.cluster(), integrations=7), "prod")
    assert with_references_from(local, other).integrations == 0


def test_an_integration_in_another_cluster_keeps_the_image_and_says_where() -> None:
    m = f.manifest(f.repo("kit-a"), "a1", "1")
    prod = from_cluster(f.cluster([f.ref(f.image(m.repository, "a1"), "Integration", "orders", "shop")]), "prod")
    plan = f.run(f.inventory(m), with_references_from(f.cluster(), prod), f.policy(min_age=0 * HOUR))
    d = f.decision(plan, m)
    assert d.action is Action.KEEP and d.reason == "referenced by Integration shop/orders in cluster prod"


def test_a_kit_of_another_cluster_is_never_decided_here_but_keeps_its_images_and_bases() -> None:
    base_m, child_m = f.manifest(f.repo("kit-b"), "b1", "1"), f.manifest(f.repo("kit-c"), "c1", "1")
    local_base = f.kit("kit-b", image=f.image(base_m.repository, "b1"), age=9 * DAY)
    foreign_child = f.kit("kit-c", image=f.image(child_m.repository, "c1"), base=f.image(base_m.repository, "b1"))
    snap = with_references_from(f.cluster(kits=[local_base]), from_cluster(f.cluster(kits=[foreign_child]), "prod"))

    plan = f.run(f.inventory(base_m, child_m), snap, f.policy(min_age=0 * HOUR))

    assert [(d.kit.name, d.action) for d in plan.kits] == [("kit-b", Action.KEEP)]
    assert f.kit_decision(plan, local_base).why.kind is ReasonKind.BASE_OF_KIT
    assert "in cluster prod" in f.kit_decision(plan, local_base).reason
    assert f.action(plan, base_m) is Action.KEEP and f.action(plan, child_m) is Action.KEEP


def test_a_foreign_kit_with_a_local_kits_name_does_not_pass_for_it() -> None:
    """Same namespace and name in two clusters are two objects: the local one is still pruned."""
    m = f.manifest(f.repo("kit-x"), "x1", "1")
    local = f.kit("kit-x", image=f.image(m.repository, "x1"), age=9 * DAY)
    use_there = KitUse(ObjectRef("Integration", "it", "camel-k"), "camel-k", "kit-x")
    other = from_cluster(replace(f.cluster(), kit_uses=(use_there,)), "prod")  # uses *prod's* kit-x
    plan = f.run(f.inventory(m), with_references_from(f.cluster(kits=[local]), other), f.policy(min_age=0 * HOUR))
    assert f.kit_decision(plan, local).action is Action.DELETE


def _images_of(world: f.World) -> list:  # type: ignore[type-arg]
    """References another cluster might hold: tags and digests of the scanned repositories."""
    out = []
    for m in world.inventory.manifests:
        out.append(parse(f"{f.HOST}/{m.repository}@{m.digest}"))
        out += [f.image(m.repository, tag=t) for t in m.tags]
    return out or [f.image(f.repo("kit-a"), tag="1")]


@st.composite
def _second_cluster(draw: st.DrawFn, world: f.World) -> ClusterSnapshot:
    holders = [ObjectRef("Integration", "i", "prod-ns"), ObjectRef("Pod", "p", "prod-ns")]
    refs = draw(st.lists(st.builds(Reference, st.sampled_from(_images_of(world)), st.sampled_from(holders)),
                         max_size=4))
    kits = draw(st.lists(st.sampled_from(world.cluster.kits), max_size=2, unique=True)) if world.cluster.kits else []
    return from_cluster(f.cluster(refs, kits), "prod")


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), world=f.plan_inputs())
def test_adding_another_clusters_references_never_increases_what_is_deleted(data, world) -> None:
    world.policy = replace(world.policy, max_deletions=10_000)  # a bound frees room for others: not the point
    alone = world.plan()
    other = data.draw(_second_cluster(world))
    world.cluster = with_references_from(world.cluster, other)
    together = world.plan()
    assert {d.manifest.key for d in together.manifest_deletions} <= {d.manifest.key for d in alone.manifest_deletions}
    assert {d.kit.key for d in together.kit_deletions} <= {d.kit.key for d in alone.kit_deletions}


def test_a_kubeconfig_minted_by_kubectl_without_a_current_context_lists_its_contexts(tmp_path) -> None:
    path = write_reference_kubeconfig(tmp_path / "k", {"prod": "https://prod.example:6443",
                                                        "stage": "https://stage.example:6443"})
    doc = json.loads(path.read_text())
    doc["current-context"] = ""  # what `kubectl config set-context` alone leaves
    path.write_text(json.dumps(doc))
    assert reference_contexts(str(path)) == ["prod", "stage"]
