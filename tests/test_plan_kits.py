"""One scenario per kit rule: which IntegrationKits the planner deletes, and what stays with them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from kitgc.model import Action, Inventory, Kit, Manifest
from testbed.planfactory import (
    DAY,
    HOUR,
    ORG,
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

A, B, C, D = repo("kit-a"), repo("kit-b"), repo("kit-c"), repo("kit-d")


def _chain() -> tuple[Inventory, list[Kit], list[Manifest]]:
    """kit-a <- kit-b <- kit-c: each built on the previous one's image (incremental builds)."""
    ms = [manifest(A, "a", "1"), manifest(B, "b", "1"), manifest(C, "c", "1")]
    grandparent = kit("kit-a", image=image(A, "a"), root=image("library/eclipse-temurin", tag="17", host="docker.io"))
    parent = kit("kit-b", image=image(B, "b"), base=image(A, "a"), root=image("library/eclipse-temurin", tag="17"))
    child = kit("kit-c", image=image(C, "c"), base=image(B, "b"), root=image(A, "a"))
    return inventory(*ms), [grandparent, parent, child], ms


def test_unused_old_kit_is_deleted_with_a_reason() -> None:
    k = kit("kit-a", age=3 * DAY)
    d = run(inventory(), cluster(kits=[k])).kits[0]
    assert (d.action, d.reason) == (Action.DELETE, "unused for 3d: no Integration uses it, no kit builds on it")


def test_prune_kits_off_keeps_every_kit_and_its_images() -> None:
    inv, kits, ms = _chain()
    p = run(inv, cluster(kits=kits), policy(prune_kits=False))
    assert [(d.action, d.reason) for d in p.kits] == [(Action.KEEP, "PRUNE_KITS is off")] * 3
    assert {action(p, m) for m in ms} == {Action.KEEP}


@pytest.mark.parametrize(
    ("kit_type", "reason"),
    [
        ("external", "external kit"),
        ("synthetic", "synthetic kit"),
        ("", "kit type unknown"),
        ("Platform", "kit type unknown ('Platform')"),
    ],
)
def test_kits_the_operator_did_not_build_are_kept(kit_type: str, reason: str) -> None:
    d = run(inventory(), cluster(kits=[kit(kit_type=kit_type, age=9 * DAY)])).kits[0]
    assert (d.action, d.reason) == (Action.KEEP, reason)


@pytest.mark.parametrize("kit_type", ["platform", "user"])
def test_platform_and_user_kits_are_prunable(kit_type: str) -> None:
    assert run(inventory(), cluster(kits=[kit(kit_type=kit_type)])).kits[0].action is Action.DELETE


@pytest.mark.parametrize(
    ("phase", "shown"),
    [
        ("Build Running", "Build Running"),
        ("Build Submitted", "Build Submitted"),
        ("Waiting For Platform", "Waiting For Platform"),
        ("Initialization", "Initialization"),
        ("", "not set"),
        ("Brand New Phase", "Brand New Phase"),
    ],
)
def test_building_kit_is_kept_unknown_phases_included(phase: str, shown: str) -> None:
    d = run(inventory(), cluster(kits=[kit(phase=phase, age=9 * DAY)])).kits[0]
    assert (d.action, d.reason) == (Action.KEEP, f"still building (phase {shown})")


@pytest.mark.parametrize("phase", ["Ready", "Error", "Cannot Build"])
def test_finished_kit_is_prunable(phase: str) -> None:
    assert run(inventory(), cluster(kits=[kit(phase=phase)])).kits[0].action is Action.DELETE


def test_kit_younger_than_min_age_is_kept() -> None:
    d = run(inventory(), cluster(kits=[kit(age=3 * HOUR)])).kits[0]
    assert (d.action, d.reason) == (Action.KEEP, "younger than MIN_AGE 24h (created 3h ago)")


def test_kit_exactly_min_age_old_is_prunable() -> None:
    assert run(inventory(), cluster(kits=[kit(age=24 * HOUR)])).kits[0].action is Action.DELETE


def test_used_kit_is_kept_and_names_its_users() -> None:
    k = kit()
    uses = [use(k, name=n) for n in ("e", "d", "c", "b", "a")]
    d = run(inventory(), cluster(kits=[k], uses=uses)).kits[0]
    assert d.reason == "used by Integration shop/a, Integration shop/b, Integration shop/c and 2 more"


def test_use_of_a_kit_of_the_same_name_in_another_namespace_does_not_count() -> None:
    k, other = kit("kit-a"), kit("kit-a", namespace="elsewhere", kit_type="external")
    p = run(inventory(), cluster(kits=[k, other], uses=[use(other)]))
    assert kit_decision(p, k).action is Action.DELETE


def test_kit_whose_image_is_referenced_by_digest_is_kept() -> None:
    k = kit(image=image(A, 1))
    snap = cluster([ref(image(A, 1, host="mirror.local"), kind="Pod", name="b", namespace="a")], kits=[k])
    assert run(inventory(manifest(A, 1)), snap).kits[0].reason == "image referenced by Pod a/b"


def test_kit_whose_image_is_referenced_by_a_tag_resolving_to_it_is_kept() -> None:
    k = kit(image=image(A, 1))
    snap = cluster([ref(image(A, tag="5"))], kits=[k])
    assert run(inventory(manifest(A, 1, "5")), snap).kits[0].reason == "image referenced by Deployment shop/orders"


def test_kit_with_a_tag_only_image_is_kept_by_a_reference_to_the_same_tag() -> None:
    k = kit(image=image(A, tag="5"))  # tag gone from the registry: no digest to compare
    snap = cluster([ref(image(A, tag="5", host="other.host"))], kits=[k])
    assert run(inventory(), snap).kits[0].action is Action.KEEP


def test_kit_is_not_kept_by_a_reference_to_another_image_of_its_repository() -> None:
    k = kit(image=image(A, 2))
    snap = cluster([ref(image(A, 1))], kits=[k])
    assert run(inventory(manifest(A, 1), manifest(A, 2)), snap).kits[0].action is Action.DELETE


def test_kit_own_reference_does_not_keep_it() -> None:
    k = kit(image=image(A, 1))
    snap = cluster([ref(image(A, 1), kind="IntegrationKit", name="kit-a", namespace=ORG)], kits=[k])
    assert run(inventory(manifest(A, 1)), snap).kits[0].action is Action.DELETE


def test_kit_with_no_image_can_be_deleted() -> None:
    assert run(inventory(), cluster(kits=[kit(phase="Error")])).kits[0].action is Action.DELETE


# --- base images and the fixed point ------------------------------------------------------


def test_chain_of_unused_kits_goes_together() -> None:
    inv, kits, ms = _chain()
    p = run(inv, cluster(kits=kits))
    assert [d.action for d in p.kits] == [Action.DELETE] * 3
    assert {action(p, m) for m in ms} == {Action.DELETE}


def test_used_kit_keeps_its_whole_ancestry() -> None:
    inv, kits, ms = _chain()
    p = run(inv, cluster(kits=kits, uses=[use(kits[2])]))
    assert [d.reason for d in p.kits] == [
        "root image of IntegrationKit camel-k/kit-c",
        "base image of IntegrationKit camel-k/kit-c",
        "used by Integration shop/orders",
    ]
    assert {action(p, m) for m in ms} == {Action.KEEP}


def test_used_middle_kit_keeps_its_parent_but_not_its_child() -> None:
    inv, kits, ms = _chain()
    p = run(inv, cluster(kits=kits, uses=[use(kits[1])]))
    assert [d.action for d in p.kits] == [Action.KEEP, Action.KEEP, Action.DELETE]
    assert [action(p, m) for m in ms] == [Action.KEEP, Action.KEEP, Action.DELETE]


def test_ancestry_is_kept_through_a_long_chain() -> None:
    names = [f"kit-{i}" for i in range(12)]
    kits = [kit(names[0], image=image(repo(names[0]), 0))]
    for i in range(1, 12):
        kits.append(kit(names[i], image=image(repo(names[i]), i), base=image(repo(names[i - 1]), i - 1)))
    p = run(inventory(), cluster(kits=kits[::-1], uses=[use(kits[-1])]))
    assert {d.action for d in p.kits} == {Action.KEEP}


@pytest.mark.parametrize(
    "keeper",
    [
        {"age": HOUR},  # young
        {"phase": "Build Running"},  # building
        {"kit_type": "external"},  # not ours to prune
    ],
)
def test_any_staying_kit_keeps_the_kit_it_builds_on(keeper: dict[str, Any]) -> None:
    parent = kit("kit-a", image=image(A, 1))
    child = kit("kit-b", base=image(A, 1), **keeper)
    p = run(inventory(manifest(A, 1)), cluster(kits=[parent, child]))
    assert kit_decision(p, parent).reason == "base image of IntegrationKit camel-k/kit-b"


def test_base_image_is_matched_by_digest_under_any_host() -> None:
    parent = kit("kit-a", image=image(A, 1))
    child = kit("kit-b", base=image("elsewhere/camel-k-kit-z", 1, host="mirror.local"))
    p = run(inventory(), cluster(kits=[parent, child], uses=[use(child)]))
    assert kit_decision(p, parent).action is Action.KEEP


def test_base_image_with_another_digest_of_the_same_repository_does_not_keep_the_kit() -> None:
    parent = kit("kit-a", image=image(A, 2))
    child = kit("kit-b", base=image(A, 1))
    p = run(inventory(manifest(A, 1), manifest(A, 2)), cluster(kits=[parent, child], uses=[use(child)]))
    assert kit_decision(p, parent).action is Action.DELETE
    assert action(p, manifest(A, 1)) is Action.KEEP  # the base image itself stays
    assert action(p, manifest(A, 2)) is Action.DELETE


def test_base_image_without_digest_matches_by_repository_name() -> None:
    parent = kit("kit-a", image=image(A, 2))
    child = kit("kit-b", base=image("other/org/camel-k-kit-a", tag="gone", host="mirror.local"))
    p = run(inventory(manifest(A, 2)), cluster(kits=[parent, child], uses=[use(child)]))
    assert kit_decision(p, parent).reason == "base image of IntegrationKit camel-k/kit-b"


def test_base_image_tag_resolving_to_a_kit_image_keeps_the_kit() -> None:
    parent = kit("kit-a", image=image(A, 2))
    child = kit("kit-b", base=image(D, tag="7"))  # another repository, same digest
    p = run(inventory(manifest(D, 2, "7")), cluster(kits=[parent, child], uses=[use(child)]))
    assert kit_decision(p, parent).action is Action.KEEP


def test_kit_whose_image_digest_is_unknown_is_matched_by_repository_name() -> None:
    parent = kit("kit-a", image=image(A, tag="gone"))  # old Kaniko build, tag since overwritten
    child = kit("kit-b", base=image(A, 9))
    p = run(inventory(), cluster(kits=[parent, child], uses=[use(child)]))
    assert kit_decision(p, parent).action is Action.KEEP


def test_kit_sharing_its_parents_image_keeps_the_parent_when_used() -> None:
    """Nothing new added: the child's image IS the parent's image."""
    parent = kit("kit-a", image=image(A, 1))
    child = kit("kit-b", image=image(A, 1), base=image(A, 1))
    p = run(inventory(manifest(A, 1, "3")), cluster(kits=[parent, child], uses=[use(child)]))
    assert kit_decision(p, parent).action is Action.KEEP
    assert action(p, manifest(A, 1, "3")) is Action.KEEP


def test_deleted_kit_does_not_keep_its_base() -> None:
    parent = kit("kit-a", image=image(A, 1))
    child = kit("kit-b", image=image(B, 2), base=image(A, 1))
    p = run(inventory(manifest(A, 1), manifest(B, 2)), cluster(kits=[parent, child]))
    assert [d.action for d in p.kits] == [Action.DELETE, Action.DELETE]


def test_two_kits_building_on_each_other_go_together_when_unused() -> None:
    a = kit("kit-a", image=image(A, 1), base=image(B, 2))
    b = kit("kit-b", image=image(B, 2), base=image(A, 1))
    assert [d.action for d in run(inventory(), cluster(kits=[a, b])).kits] == [Action.DELETE] * 2


# --- shape of the decisions ---------------------------------------------------------------


def test_one_decision_per_kit_sorted_by_namespace_and_name() -> None:
    kits = [kit("kit-b", namespace="z"), kit("kit-a", namespace="z"), kit("kit-c", namespace="a")]
    p = run(inventory(), cluster(kits=[*kits, kits[0]]))
    assert [(d.kit.namespace, d.kit.name) for d in p.kits] == [("a", "kit-c"), ("z", "kit-a"), ("z", "kit-b")]


def test_conflicting_entries_for_one_kit_are_kept() -> None:
    one, other = kit("kit-a", age=3 * DAY), kit("kit-a", age=4 * DAY)
    p = run(inventory(), cluster(kits=[one, other]))
    assert [(d.action, d.reason) for d in p.kits] == [
        (Action.KEEP, "listed more than once in the cluster snapshot")
    ] * 2


def test_min_age_zero_prunes_a_kit_created_now() -> None:
    p = run(inventory(), cluster(kits=[kit(age=timedelta(0))]), policy(min_age=timedelta(0)))
    assert p.kits[0].action is Action.DELETE
