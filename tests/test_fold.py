"""Folding references (a few examples per image) never changes a decision, and drops only what
no decision reads: the extra Pods naming an image, and those Pods' owner links."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kitgc.cluster import sources as S
from kitgc.cluster.extract import Found
from kitgc.cluster.fold import EXAMPLES, LINK_PRUNED_KINDS, NEVER_FOLDED, Folder, examples_of, prune_owner_links
from kitgc.cluster.reader import ClusterReader
from kitgc.imageref import parse
from kitgc.model import ObjectRef, Reference
from testbed import objects as o
from testbed.kube_fixtures import KubeHandle
from testbed.planfactory import World, plan_inputs

IMG = parse("registry.example.com/camel-k/camel-k-kit-a@" + o.digest(1))
OTHER = parse("docker.io/library/nginx:1.27")
RS = ObjectRef("ReplicaSet", "orders-1", "shop")


def pod(i: int) -> ObjectRef:
    return ObjectRef("Pod", f"orders-1-{i}", "shop")


def found(*refs: Reference, owners: dict[ObjectRef, ObjectRef] | None = None) -> Found:
    return Found(references=list(refs), owners=dict(owners or {}))


def test_an_image_keeps_its_first_examples_and_counts_the_rest() -> None:
    fold = Folder()
    batch = found(*(Reference(IMG, pod(i), "spec.containers[app].image") for i in range(10)),
                  Reference(OTHER, pod(0), "spec.containers[side].image"))
    out = fold(batch)
    assert [r.source for r in out.references if r.image == IMG] == [pod(i) for i in range(EXAMPLES)]
    assert [r.image for r in out.references].count(OTHER) == 1
    assert fold.folded == 10 - EXAMPLES


def test_the_tally_runs_across_pages() -> None:
    fold = Folder(examples=2)
    first = fold(found(Reference(IMG, pod(0))))
    second = fold(found(Reference(IMG, pod(1)), Reference(IMG, pod(2))))
    assert len(first.references) == 1 and [r.source for r in second.references] == [pod(1)]
    assert fold.folded == 1


def test_the_kits_own_holders_are_never_folded() -> None:
    fold = Folder(examples=1)
    holders = [ObjectRef("IntegrationKit", "kit-a", "shop"), ObjectRef("BuildConfig.build.openshift.io", "b", "shop"),
               ObjectRef("ImageStream.image.openshift.io", "s", "shop")]
    assert {h.kind for h in holders} == NEVER_FOLDED
    out = fold(found(Reference(IMG, pod(0)), *(Reference(IMG, h) for h in holders for _ in range(2))))
    assert len(out.references) == 1 + 2 * len(holders) and fold.folded == 0


def test_any_other_kind_is_folded() -> None:
    fold = Folder(examples=1)
    others = [ObjectRef(k, "x", "shop") for k in ("Deployment", "Integration", "Build", "CronJob",
                                                   "Service.serving.knative.dev")]
    out = fold(found(*(Reference(IMG, h) for h in others)))
    assert [r.source for r in out.references] == others[:1] and fold.folded == len(others) - 1


def test_a_pod_whose_every_reference_was_folded_loses_its_owner_link_and_nothing_else_does() -> None:
    fold = Folder(examples=1)
    rs2 = ObjectRef("ReplicaSet", "orders-2", "shop")
    owners = {pod(0): RS, pod(1): RS, pod(2): RS, RS: ObjectRef("Deployment", "orders", "shop"),
              rs2: ObjectRef("Deployment", "orders", "shop")}
    out = fold(found(Reference(IMG, pod(0)), Reference(IMG, pod(1)),  # pod 1: folded entirely
                     Reference(IMG, pod(2)), Reference(OTHER, pod(2)),  # pod 2: one kept
                     Reference(OTHER, rs2), Reference(IMG, rs2), owners=owners))  # a ReplicaSet folded
    assert set(out.owners) == {pod(0), pod(2), RS, rs2}


def test_a_pod_with_a_bare_name_keeps_its_owner_link() -> None:
    fold = Folder(examples=1)
    bare = Reference(parse("camel-k-kit-a:1"), pod(1))
    batch = found(Reference(bare.image, pod(0)), bare, owners={pod(1): RS})
    batch.short.append(bare)
    assert set(fold(batch).owners) == {pod(1)}


def test_owner_links_stay_on_the_chains_of_kept_references_and_of_every_other_kind() -> None:
    dep, it = ObjectRef("Deployment", "orders", "shop"), ObjectRef("Integration", "orders", "shop")
    rs2, job = ObjectRef("ReplicaSet", "orders-2", "shop"), ObjectRef("Job", "backup-1", "shop")
    owners = {pod(0): RS, RS: dep, dep: it, rs2: dep, job: ObjectRef("CronJob", "backup", "shop")}
    kept = prune_owner_links(owners, [pod(0)])
    assert kept == {pod(0): RS, RS: dep, dep: it}  # rs2 and the Job: on no kept chain
    assert {rs2.kind, job.kind} <= LINK_PRUNED_KINDS
    assert prune_owner_links(owners, [rs2, job]) == {rs2: dep, dep: it, job: owners[job]}


def _more_pods(world: World, copies: int) -> World:
    """The world's references again from many Pods, some of one ReplicaSet, some of none."""
    extra, owners = [], dict(world.cluster.owners)
    for i, r in enumerate(world.cluster.references):
        for c in range(copies):
            p = ObjectRef("Pod", f"copy-{i}-{c}", "shop")
            extra.append(Reference(r.image, p, "spec.containers[app].image"))
            if c % 2:
                owners[p] = RS
    return replace(world, cluster=replace(world.cluster, references=world.cluster.references + tuple(extra),
                                          owners=owners))


def _actions(world: World) -> tuple[dict[object, object], dict[object, object]]:
    p = world.plan()
    return ({d.manifest.key: d.action for d in p.manifests}, {d.kit.key: (d.kit, d.action) for d in p.kits})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan_inputs(), st.integers(0, 3), st.integers(1, 3))
def test_folding_never_changes_what_is_deleted_or_kept(world: World, copies: int, examples: int) -> None:
    world = _more_pods(world, copies)
    before = _actions(world)
    fold = Folder(examples=examples)
    folded = fold(Found(references=list(world.cluster.references), owners=dict(world.cluster.owners)))
    after = replace(world, cluster=replace(world.cluster, references=tuple(folded.references),
                                           owners=folded.owners))
    assert _actions(after) == before
    assert len(folded.references) + fold.folded == len(world.cluster.references)


def test_the_reader_folds_a_thousand_pods_of_one_image_to_its_examples(kube: KubeHandle) -> None:
    """Over the emulated API, page by page: the snapshot holds the examples, counts the rest,
    keeps the ReplicaSet's owner link, and reads every reference with fold=False."""
    image = f"registry.example.com/camel-k/camel-k-{o.kit_name(1)}@{o.digest(1)}"
    rs = o.replicaset("orders-1", namespace="shop", images={"app": image})
    kube.add(rs)
    for i in range(1000):
        kube.add(o.pod(f"orders-1-{i}", namespace="shop", images={"app": image},
                       owner=("apps/v1", "ReplicaSet", "orders-1")))
    client = kube.client()
    snap = ClusterReader(client, page_size=100, sources=(S.PODS, S.REPLICASETS)).snapshot()
    full = ClusterReader(client, page_size=100, sources=(S.PODS, S.REPLICASETS), fold=False).snapshot()
    # 1,001 references to one image (the ReplicaSet's too, a folded kind): its examples stay
    assert len(snap.references) == EXAMPLES and snap.folded == 1001 - EXAMPLES
    assert len([r for r in full.references if r.source.kind == "Pod"]) == 1000 and full.folded == 0
    assert {r.image for r in snap.references} == {r.image for r in full.references}
    assert len([c for c in snap.owners if c.kind == "Pod"]) == EXAMPLES
    assert all(snap.owners[r.source] == full.owners[r.source] for r in snap.references)
    assert len([c for c in full.owners if c.kind == "Pod"]) == 1000



def test_a_later_read_adds_no_example_of_an_image_an_earlier_read_already_names() -> None:
    """A deleting run's second and third reads are merged with the first: an image the first
    read already names is protected, so the later read keeps only images new to the run (and
    the kits' own holders, never folded)."""
    earlier = [Reference(IMG, pod(0))]
    kit = ObjectRef("IntegrationKit", "kit-a", "shop")
    fold = Folder(examples=3, before=examples_of([*earlier, Reference(OTHER, kit)]))
    out = fold(found(*(Reference(IMG, pod(i)) for i in range(1, 6)), Reference(OTHER, pod(9)),
                     Reference(IMG, kit)))
    kept = [(r.image, r.source) for r in out.references]
    # IMG had one example before: two more fit; OTHER was named only by a kit, which counts for nothing
    assert kept == [(IMG, pod(1)), (IMG, pod(2)), (OTHER, pod(9)), (IMG, kit)]
    assert fold.folded == 3


def test_a_full_earlier_read_leaves_a_later_one_nothing_of_that_image() -> None:
    before = examples_of([Reference(IMG, pod(i)) for i in range(EXAMPLES)])
    fold = Folder(before=before)
    assert fold(found(Reference(IMG, pod(7)))).references == [] and fold.folded == 1
    assert before == {IMG: EXAMPLES}, "the earlier tally is read, never written"


def test_a_pod_keeps_its_owner_link_only_while_it_holds_something_kept() -> None:
    from kitgc.cluster.fold import drop_idle_links
    from kitgc.model import KitUse, UnparsableReference

    integration = ObjectRef("Integration", "orders", "shop")
    batch = found(Reference(IMG, pod(0)), owners={pod(i): RS for i in range(5)} | {RS: integration})
    batch.unparsable.append(UnparsableReference("", pod(1), "spec.containers[app].image", "empty"))
    batch.kit_uses.append(KitUse(pod(2), "shop", "kit-a"))
    bare = Reference(parse("camel-k-kit-a:1"), pod(3))
    batch.short.append(bare)
    drop_idle_links(batch)
    # pod 4 holds nothing; a ReplicaSet's link is never dropped here (a Pod's chain may pass through it)
    assert set(batch.owners) == {pod(0), pod(1), pod(2), pod(3), RS}


def test_a_later_read_drops_the_owner_links_of_pods_its_relevance_filter_let_go(kube: KubeHandle) -> None:
    """A deleting run's second and third reads keep only the references that can change the
    plan; the owner links of the Pods whose references they let go are dropped as each page is
    read, not held until the read ends (with fold=False nothing prunes them at the end)."""
    wanted = f"registry.example.com/camel-k/camel-k-{o.kit_name(1)}@{o.digest(1)}"
    other = f"registry.example.com/camel-k/camel-k-{o.kit_name(2)}@{o.digest(2)}"
    kube.add(o.replicaset("orders-1", namespace="shop", images={"app": other}))
    for i in range(40):
        kube.add(o.pod(f"orders-1-{i}", namespace="shop", images={"app": wanted if i % 10 == 0 else other},
                       owner=("apps/v1", "ReplicaSet", "orders-1")))
    client = kube.client()
    keep = lambda ref: ref.image.digest == o.digest(1)  # noqa: E731
    snap = ClusterReader(client, page_size=7, sources=(S.PODS,), fold=False).snapshot(keep)
    holders = {r.source for r in snap.references}
    assert len(holders) == 4
    assert {c for c in snap.owners if c.kind == "Pod"} == holders
    assert all(snap.owners[h] == ObjectRef("ReplicaSet", "orders-1", "shop") for h in holders)
