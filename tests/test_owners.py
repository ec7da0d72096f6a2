"""Every object's controlling owner is read from ``metadata.ownerReferences``, not guessed from names.

Pod -> ReplicaSet -> Deployment -> Integration; Job -> CronJob -> Integration; Revision ->
Configuration (Knative); Knative Service -> Integration. Kinds are named as ``ObjectRef``
names the objects themselves, so that a chain can be followed key to key.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from kitgc.cluster import sources as S
from kitgc.cluster.extract import Found, extract
from kitgc.cluster.merge import merge_snapshots
from kitgc.cluster.objects import kind_name, source_kind
from kitgc.cluster.projection import decode_page
from kitgc.cluster.reader import ClusterReader
from kitgc.model import ClusterSnapshot, ObjectRef
from testbed import objects as o

NOW = datetime(2025, 6, 1, tzinfo=UTC)
IT = (o.INTEGRATION_API, "Integration")
KNATIVE = "serving.knative.dev/v1"


def owners(source: S.Source, obj: dict[str, Any]) -> dict[ObjectRef, ObjectRef]:
    return extract(source, obj, NOW).owners


def with_owner_refs(obj: dict[str, Any], *entries: Any) -> dict[str, Any]:
    obj["metadata"]["ownerReferences"] = list(entries)
    return obj


# --- naming --------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "group", "expected"), [
    ("Pod", "", "Pod"), ("ReplicaSet", "apps", "ReplicaSet"), ("CronJob", "batch", "CronJob"),
    ("Integration", "camel.apache.org", "Integration"),
    ("Service", "serving.knative.dev", "Service.serving.knative.dev"),
    ("Configuration", "serving.knative.dev", "Configuration.serving.knative.dev"),
    ("Rollout", "argoproj.io", "Rollout.argoproj.io"),
])
def test_kind_names_follow_the_group(kind, group, expected):
    assert kind_name(kind, group) == expected


def test_every_source_names_its_objects_as_owners_are_named():
    for source in S.SOURCES:
        obj = {"metadata": {"name": "x", "namespace": "ns"}, "spec": {}, "status": {}}
        found = extract(source, obj, NOW)
        refs = {r.source for r in found.references} | {k.ref for k in found.kits} | {u.user for u in found.kit_uses}
        assert all(r.kind == source_kind(source) for r in refs)
    assert source_kind(S.KNATIVE_REVISIONS) == "Revision.serving.knative.dev"
    assert source_kind(S.DEPLOYMENTS) == "Deployment"


# --- extraction ----------------------------------------------------------------------------


@pytest.mark.parametrize("source", S.SOURCES, ids=str)
def test_every_source_records_its_owner(source):
    obj = {"metadata": {"name": "child", "namespace": "shop",
                        "ownerReferences": [o.owner_reference("example.io/v1", "Thing", "parent")]}}
    assert owners(source, obj) == {ObjectRef(source_kind(source), "child", "shop"):
                                   ObjectRef("Thing.example.io", "parent", "shop")}


def test_the_controller_is_preferred_to_the_first_entry():
    pod = with_owner_refs(o.pod("p", "shop", images=["x"]),
                          o.owner_reference("v1", "Node", "worker-1", controller=False),
                          o.owner_reference("apps/v1", "ReplicaSet", "web-7d9f"))
    assert owners(S.PODS, pod) == {ObjectRef("Pod", "p", "shop"): ObjectRef("ReplicaSet", "web-7d9f", "shop")}


def test_without_a_controller_the_first_entry_is_the_owner():
    pod = with_owner_refs(o.pod("p", "shop", images=["x"]),
                          {"apiVersion": "v1", "kind": "ConfigMap", "name": "first", "controller": False},
                          {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "second", "controller": "true"})
    assert owners(S.PODS, pod) == {ObjectRef("Pod", "p", "shop"): ObjectRef("ConfigMap", "first", "shop")}


@pytest.mark.parametrize("garbage", [
    None, 3, "ReplicaSet/web", [], {}, {"kind": "ReplicaSet"}, {"name": "web"},
    {"kind": "", "name": "web", "controller": True}, {"kind": "ReplicaSet", "name": "", "controller": True},
    {"kind": 7, "name": "web", "controller": True}, {"kind": "ReplicaSet", "name": ["web"], "controller": True},
])
def test_entries_without_kind_or_name_are_ignored(garbage):
    real = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9f"}  # not the controller
    pod = with_owner_refs(o.pod("p", "shop", images=["x"]), garbage, real)
    assert owners(S.PODS, pod) == {ObjectRef("Pod", "p", "shop"): ObjectRef("ReplicaSet", "web-7d9f", "shop")}
    assert owners(S.PODS, with_owner_refs(o.pod("p", "shop"), garbage)) == {}


@pytest.mark.parametrize("refs", [..., None, "x", {}, []])
def test_no_owner_references_no_owner(refs):
    pod = o.pod("p", "shop", images=["x"])
    if refs is not ...:
        pod["metadata"]["ownerReferences"] = refs
    assert owners(S.PODS, pod) == {}


def test_a_missing_api_version_reads_as_the_core_group():
    pod = with_owner_refs(o.pod("p", "shop"), {"kind": "ReplicaSet", "name": "web", "controller": True})
    assert owners(S.PODS, pod) == {ObjectRef("Pod", "p", "shop"): ObjectRef("ReplicaSet", "web", "shop")}


def test_knative_kinds_are_named_with_their_group():
    svc = o.knative_service("orders", "shop", image="x", owner=(*IT, "orders"))
    rev = o.knative_revision("orders-00001", "shop", image="x", owner=(KNATIVE, "Configuration", "orders"))
    assert owners(S.KNATIVE_SERVICES, svc) == {
        ObjectRef("Service.serving.knative.dev", "orders", "shop"): ObjectRef("Integration", "orders", "shop")}
    assert owners(S.KNATIVE_REVISIONS, rev) == {
        ObjectRef("Revision.serving.knative.dev", "orders-00001", "shop"):
            ObjectRef("Configuration.serving.knative.dev", "orders", "shop")}


def test_pods_of_one_replicaset_share_one_owner_object():
    a, b = (owners(S.PODS, o.pod(f"web-7d9f-{i}", "shop", owner=("apps/v1", "ReplicaSet", "web-7d9f")))
            for i in range(2))
    (owner_a,), (owner_b,) = a.values(), b.values()
    assert owner_a is owner_b


def test_extend_keeps_the_first_owner_of_a_child():
    child = ObjectRef("Pod", "p", "shop")
    first, later = ObjectRef("ReplicaSet", "a", "shop"), ObjectRef("ReplicaSet", "b", "shop")
    found = Found(owners={child: first})
    found.extend(Found(owners={child: later, later: ObjectRef("Deployment", "d", "shop")}))
    assert found.owners == {child: first, later: ObjectRef("Deployment", "d", "shop")}


# --- projection ----------------------------------------------------------------------------


def test_projection_keeps_owner_references_and_drops_the_rest():
    pod = o.pod("web-7d9f-x", "shop", images=["x"], owner=("apps/v1", "ReplicaSet", "web-7d9f"))
    page = json.dumps({"metadata": {}, "items": [pod]}).encode()
    fast = decode_page(S.PODS, page)
    assert fast is not None
    (item,), _ = fast
    assert item["metadata"]["ownerReferences"] == [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9f", "controller": True}]  # no uid
    assert extract(S.PODS, item, NOW) == extract(S.PODS, pod, NOW)


def test_a_page_with_a_malformed_owner_entry_is_decoded_in_full():
    pod = with_owner_refs(o.pod("p", "shop", images=["x"]), "garbage",
                          o.owner_reference("apps/v1", "ReplicaSet", "web"))
    assert decode_page(S.PODS, json.dumps({"items": [pod]}).encode()) is None
    assert owners(S.PODS, pod) == {ObjectRef("Pod", "p", "shop"): ObjectRef("ReplicaSet", "web", "shop")}


# --- through the reader --------------------------------------------------------------------


def chained() -> list[dict[str, Any]]:
    """Objects as Camel K, the Deployment, CronJob and Knative controllers create them.

    The ReplicaSet is deliberately not named after its Deployment: only its ownerReferences link them.
    """
    dep, rs, cron, job = ("apps/v1", "Deployment"), ("apps/v1", "ReplicaSet"), ("batch/v1", "CronJob"), ("batch/v1",
                                                                                                         "Job")
    return [
        o.integration("orders", "shop", image="quay.io/shop/orders:1"),
        o.integration("nightly", "shop"),
        o.integration("events", "shop"),
        o.deployment("orders", "shop", images=["quay.io/shop/orders:1"], owner=(*IT, "orders")),
        o.replicaset("web-7d9f", "shop", images=["quay.io/shop/orders:1"], owner=(*dep, "orders")),
        o.pod("web-7d9f-abcde", "shop", images=["quay.io/shop/orders:1"], owner=(*rs, "web-7d9f")),
        o.cronjob("nightly", "shop", images=["quay.io/shop/batch:1"], owner=(*IT, "nightly")),
        o.job("nightly-28999", "shop", images=["quay.io/shop/batch:1"], owner=(*cron, "nightly")),
        o.pod("nightly-28999-x", "shop", images=["quay.io/shop/batch:1"], owner=(*job, "nightly-28999")),
        o.knative_service("events", "shop", image="quay.io/shop/events:1", owner=(*IT, "events")),
        o.knative_revision("events-00001", "shop", image="quay.io/shop/events:1",
                           owner=(KNATIVE, "Configuration", "events")),
    ]


def chain(owners: Any, ref: ObjectRef) -> list[str]:
    out = [str(ref)]
    while ref in owners:
        ref = owners[ref]
        out.append(str(ref))
    return out


def test_the_reader_links_chains_by_owner_references(kube):
    kube.serve("serving.knative.dev")
    kube.add(*chained())
    # Every reference and link kept (fold=False): this is about reading links, not folding them.
    snap = ClusterReader(kube.client(), page_size=2, backoff=0.001, timeout=2.0, fold=False).snapshot()
    assert chain(snap.owners, ObjectRef("Pod", "web-7d9f-abcde", "shop")) == [
        "Pod shop/web-7d9f-abcde", "ReplicaSet shop/web-7d9f", "Deployment shop/orders", "Integration shop/orders"]
    assert chain(snap.owners, ObjectRef("Pod", "nightly-28999-x", "shop")) == [
        "Pod shop/nightly-28999-x", "Job shop/nightly-28999", "CronJob shop/nightly", "Integration shop/nightly"]
    assert chain(snap.owners, ObjectRef("Revision.serving.knative.dev", "events-00001", "shop")) == [
        "Revision.serving.knative.dev shop/events-00001", "Configuration.serving.knative.dev shop/events"]
    assert snap.owners[ObjectRef("Service.serving.knative.dev", "events", "shop")] == ObjectRef(
        "Integration", "events", "shop")
    assert len(snap.owners) == 8  # Integrations have no owner

    # an owner that was read itself is the very ObjectRef its own references name
    sources = {r.source: r.source for r in snap.references}
    rs = ObjectRef("ReplicaSet", "web-7d9f", "shop")
    assert snap.owners[ObjectRef("Pod", "web-7d9f-abcde", "shop")] is sources[rs]
    assert snap.owners[ObjectRef("Deployment", "orders", "shop")] is sources[ObjectRef("Integration", "orders", "shop")]


def test_merged_reads_keep_every_child_and_its_first_owner():
    def read(*objs: dict[str, Any]) -> ClusterSnapshot:
        found = Found()
        for obj in objs:
            found.extend(extract(S.PODS if obj["kind"] == "Pod" else S.REPLICASETS, obj, NOW))
        return ClusterSnapshot(tuple(found.references), (), (), owners=found.owners)

    first = read(o.pod("p", "shop", images=["x"], owner=("apps/v1", "ReplicaSet", "old")))
    later = read(o.pod("p", "shop", images=["x"], owner=("apps/v1", "ReplicaSet", "new")),  # recreated
                 o.replicaset("new", "shop", images=["x"], owner=("apps/v1", "Deployment", "d")))
    assert merge_snapshots(first, later).owners == {
        ObjectRef("Pod", "p", "shop"): ObjectRef("ReplicaSet", "old", "shop"),
        ObjectRef("ReplicaSet", "new", "shop"): ObjectRef("Deployment", "d", "shop")}
    assert merge_snapshots(later, first).owners[ObjectRef("Pod", "p", "shop")] == ObjectRef("ReplicaSet", "new", "shop")
