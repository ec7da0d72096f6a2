"""The recheck after deleting kits plans only the repositories the run deletes from
(Planner.deletions_within). What keeps one of their manifests must still be seen whole:
a kit KEEP_IMAGES keeps through the inventory's tags, a unit reaching another repository,
and what the third read adds. (The random worlds are in test_plan_properties.py.)"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from kitgc.keep import parse_keep_patterns
from kitgc.model import Action
from kitgc.sweep.planner import Planner
from testbed.planfactory import DAY, NOW, cluster, image, inventory, kit, manifest, policy, ref, repo, seen


def _planner(inv, pol=None) -> Planner:  # type: ignore[no-untyped-def]
    pol = pol or policy()
    state = seen(*((m, 9 * DAY) for m in inv.manifests))
    return Planner(inv, pol, state, NOW, NOW + timedelta(days=3650))


def test_a_kit_kept_by_a_tag_pattern_through_the_inventory_keeps_its_base_in_a_rechecked_repository() -> None:
    # kit-a's image is written by digest: only the inventory says it carries tag "1", which
    # KEEP_IMAGES names. Kept, kit-a keeps the kit-b image it builds on. kit-a's repository
    # is not rechecked, kit-b's is: the pattern must still be matched over the whole inventory.
    a_image = manifest(repo("kit-a"), "a", "1")
    base = manifest(repo("kit-b"), "b")
    inv = inventory(a_image, base)
    kits = [kit("kit-a", image=image(repo("kit-a"), "a"), base=image(repo("kit-b"), "b"), age=9 * DAY)]
    pol = replace(policy(), keep=parse_keep_patterns("camel-k/*:1"))
    planner = _planner(inv, pol)
    whole = {d.manifest.key: d.action for d in planner(cluster(kits=kits)).manifests}
    assert whole[base.key] is Action.KEEP  # the premise: the whole plan keeps the base
    assert planner.deletions_within(cluster(kits=kits), frozenset({repo("kit-b")})) == frozenset()


def test_a_unit_reaching_a_repository_not_rechecked_holds_its_member_in_a_rechecked_one() -> None:
    kept = manifest(repo("kit-a"), "a", "1")
    held = manifest(repo("kit-b"), "b")
    inv = replace(inventory(kept, held), units=(("shop/orders", (kept.key, held.key)),))
    snap = cluster([ref(image(repo("kit-a"), "a"))])
    planner = _planner(inv)
    assert {d.manifest.key: d.action for d in planner(snap).manifests}[held.key] is Action.KEEP
    assert planner.deletions_within(snap, frozenset({repo("kit-b")})) == frozenset()


def test_a_recheck_lets_go_only_what_the_third_read_leaves_unreferenced() -> None:
    one, two = manifest(repo("kit-a"), 1, "1"), manifest(repo("kit-a"), 2, "2")
    other = manifest(repo("kit-c"), 3, "3")
    planner = _planner(inventory(one, two, other))
    within = frozenset({repo("kit-a")})
    assert planner.deletions_within(cluster(), within) == {one.key, two.key}  # kit-c is not asked about
    third = cluster([ref(image(repo("kit-a"), tag="2"), kind="Pod", name="new")])  # a pod started meanwhile
    assert planner.deletions_within(third, within) == {one.key}
