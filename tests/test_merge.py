"""merge_snapshots: whatever any read of the cluster saw as referenced, used or building stays."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from kitgc.cluster.merge import merge_snapshots
from kitgc.model import Action, ObjectRef, UnparsableReference
from testbed.planfactory import (
    action,
    cluster,
    image,
    inventory,
    kit,
    kit_decision,
    manifest,
    policy,
    ref,
    repo,
    run,
    use,
)

A, B = repo("kit-a"), repo("kit-b")
POD, RS, DEPLOY, OTHER = (ObjectRef("Pod", "p", "shop"), ObjectRef("ReplicaSet", "rs", "shop"),
                          ObjectRef("Deployment", "d", "shop"), ObjectRef("Deployment", "other", "shop"))


def test_single_snapshot_merges_to_an_equal_one() -> None:
    k = kit()
    snap = replace(cluster([ref(image(A, 1))], kits=[k], uses=[use(k)], owners={POD: RS}), integrations=2,
                   objects_read=9)
    assert merge_snapshots(snap) == snap


def test_reference_seen_in_any_read_is_kept_once_in_first_seen_order() -> None:
    r1, r2, r3 = ref(image(A, 1)), ref(image(A, 2), name="b"), ref(image(B, 3), kind="Pod", name="c")
    merged = merge_snapshots(cluster([r1, r2]), cluster([r3, r1]), cluster())
    assert merged.references == (r1, r2, r3)


def test_reference_gone_in_the_later_read_still_protects_its_manifest() -> None:
    m = manifest(A, 1)
    seen_first, gone_later = cluster([ref(image(A, 1))]), cluster()
    now = policy(min_age=timedelta(0))
    assert action(run(inventory(m), gone_later, now), m) is Action.DELETE
    assert action(run(inventory(m), merge_snapshots(seen_first, gone_later), now), m) is Action.KEEP
    assert action(run(inventory(m), merge_snapshots(gone_later, seen_first), now), m) is Action.KEEP


def test_kit_use_seen_in_any_read_is_kept_and_protects_the_kit() -> None:
    k = kit()
    adopted = use(k, name="late")
    merged = merge_snapshots(cluster(kits=[k]), cluster(kits=[k], uses=[adopted]))
    assert merged.kit_uses == (adopted,)
    assert merged.kits == (k,), "the same kit seen twice alike is listed once"
    assert kit_decision(run(inventory(), merged), k).action is Action.KEEP
    assert kit_decision(run(inventory(), cluster(kits=[k])), k).action is Action.DELETE


def test_kit_seen_with_two_phases_is_listed_twice_and_kept() -> None:
    building, ready = kit(phase="Build Running"), kit(phase="Ready")
    merged = merge_snapshots(cluster(kits=[building]), cluster(kits=[ready]))
    assert merged.kits == (building, ready)
    assert [(d.kit.phase, d.action, d.reason) for d in run(inventory(), merged).kits] == [
        ("Build Running", Action.KEEP, "still building (phase Build Running)"),
        ("Ready", Action.KEEP, "listed more than once in the cluster snapshot"),
    ]
    assert kit_decision(run(inventory(), cluster(kits=[ready])), ready).action is Action.DELETE


def test_unparsable_reference_of_any_read_is_kept() -> None:
    bad = UnparsableReference("Bad Image", POD, "spec.containers[a].image", "invalid")
    merged = merge_snapshots(cluster(), cluster(unparsable=(bad,)), cluster(unparsable=(bad,)))
    assert merged.unparsable == (bad,)


def test_integrations_and_objects_read_take_the_largest_count() -> None:
    counts = [(3, 10), (5, 7), (0, 12)]
    snaps = [replace(cluster(), integrations=i, objects_read=o) for i, o in counts]
    merged = merge_snapshots(*snaps)
    assert (merged.integrations, merged.objects_read) == (5, 12)
    assert merge_snapshots(snaps[2], snaps[0]).integrations == 3, "not the last read's count"


def test_owners_are_united_and_the_first_read_that_saw_a_child_names_its_owner() -> None:
    first = cluster(owners={POD: RS})
    second = cluster(owners={POD: OTHER, RS: DEPLOY})  # the Pod re-created under another owner
    third = cluster(owners={ObjectRef("Pod", "q", "shop"): RS})
    merged = merge_snapshots(first, second, third)
    assert dict(merged.owners) == {POD: RS, RS: DEPLOY, ObjectRef("Pod", "q", "shop"): RS}
    assert dict(merge_snapshots(second, first).owners)[POD] == OTHER


def test_merging_leaves_its_inputs_unchanged() -> None:
    first, second = cluster(owners={POD: RS}), cluster(owners={POD: OTHER, RS: DEPLOY})
    merge_snapshots(first, second)
    assert dict(first.owners) == {POD: RS} and dict(second.owners) == {POD: OTHER, RS: DEPLOY}
