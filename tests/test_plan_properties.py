"""Properties of the planner over random worlds (see testbed/planfactory.plan_inputs).

The safety properties are checked against a small oracle written here with plain sets,
independently of the planner's code: what the cluster references, what staying kits name,
what building kits push to, and the children of all of those.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kitgc.identity import ManifestKey
from kitgc.imageref import ImageRef
from kitgc.keep import parse_keep_patterns
from kitgc.model import Action, Inventory, Kit, Manifest, Plan, state_key
from kitgc.scope import KIT_PREFIX, in_scope
from kitgc.sweep.planner import Planner
from testbed.planfactory import World, index_worlds, plan_inputs

T = TypeVar("T")
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _scoped(world: World) -> dict[ManifestKey, Manifest]:
    return {m.key: m for m in world.inventory.manifests if in_scope(m.repository, world.policy.organizations)}


def _resolve(inv: Inventory, img: ImageRef) -> set[str]:
    if img.digest:
        return {img.digest}
    tag = img.tag or "latest"
    return {m.digest for m in inv.manifests if m.repository == img.repository and tag in m.tags}


def _with_children(manifests: dict[ManifestKey, Manifest], keys: set[ManifestKey]) -> set[ManifestKey]:
    out, todo = set(), list(keys)
    while todo:
        key = todo.pop()
        if key in out or key not in manifests:
            continue
        out.add(key)
        m = manifests[key]
        todo.extend(m.key.child(c) for c in m.children)
    return out


def _kit_images(k: Kit) -> list[ImageRef]:
    return [i for i in (k.image, k.spec_image, k.base_image, k.root_image) if i is not None]


def _staying(p: Plan) -> list[Kit]:
    return [d.kit for d in p.kits if d.action is not Action.DELETE]


def _referenced(world: World, p: Plan) -> set[ManifestKey]:
    """Oracle: keys that something refers to, children of those included."""
    known = {(k.namespace, k.name) for k in world.cluster.kits}
    digests: set[str] = set()
    for r in world.cluster.references:
        if not (r.source.kind == "IntegrationKit" and (r.source.namespace, r.source.name) in known):
            digests |= _resolve(world.inventory, r.image)
    for k in _staying(p):
        for img in _kit_images(k):
            digests |= _resolve(world.inventory, img)
    building = {k.repository_name for k in world.cluster.kits if k.building}
    scoped = _scoped(world)
    direct = {
        key for key, m in scoped.items() if m.digest in digests or m.repository.rpartition("/")[2] in building
    }
    return _with_children(scoped, direct)


def _evidence(world: World, m: Manifest) -> datetime:
    name = m.repository.rpartition("/")[2]
    created = [k.created for k in world.cluster.kits if k.repository_name == name]
    if created:
        return max(created)
    return world.state.first_seen.get(state_key(m.repository, m.digest), world.now)


@PROPERTY
@given(plan_inputs())
def test_nothing_referenced_and_no_child_of_a_referenced_index_is_deleted(world: World) -> None:
    p = world.plan()
    referenced = _referenced(world, p)
    for d in p.manifests:
        if d.manifest.key in referenced:
            assert d.action is Action.KEEP, d
        assert d.referenced == (d.manifest.key in referenced), d


@PROPERTY
@given(plan_inputs() | index_worlds())
def test_no_child_is_deleted_while_an_index_listing_it_stays(world: World) -> None:
    p = world.plan()
    actions = {d.manifest.key: d.action for d in p.manifests}
    for d in p.manifests:
        if d.action is Action.DELETE:
            continue
        for child in d.manifest.children:
            assert actions.get(d.manifest.key.child(child)) is not Action.DELETE, d


@PROPERTY
@given(plan_inputs() | index_worlds())
def test_within_max_deletions_every_unprotected_old_manifest_is_deleted(world: World) -> None:
    p = world.plan()
    scoped = _scoped(world)
    problem_repos = {pr.repository for pr in world.inventory.problems}
    referenced = _referenced(world, p)
    unprotected = {k for k, m in scoped.items() if k not in referenced and m.repository not in problem_repos}
    old = {k for k in unprotected if world.now - _evidence(world, scoped[k]) >= world.policy.min_age}
    if len(old) > world.policy.max_deletions:
        return
    # Children of anything kept (referenced, young, in a problem repository) stay with it.
    kept = _with_children(scoped, set(scoped) - old)
    expected = old - kept
    deleted = {d.manifest.key for d in p.manifest_deletions}
    assert deleted == expected
    assert not [d for d in p.manifests if d.action is Action.DEFER]


@PROPERTY
@given(plan_inputs())
def test_second_pass_over_the_result_deletes_nothing(world: World) -> None:
    world.policy = replace(world.policy, max_deletions=10_000)
    first = world.plan()
    gone = {d.manifest.key for d in first.manifest_deletions}
    gone_kits = {(d.kit.namespace, d.kit.name) for d in first.kit_deletions}
    inv = world.inventory
    world.inventory = replace(inv, manifests=tuple(m for m in inv.manifests if m.key not in gone))
    world.cluster = replace(
        world.cluster,
        kits=tuple(k for k in world.cluster.kits if (k.namespace, k.name) not in gone_kits),
        references=tuple(
            r
            for r in world.cluster.references
            if not (r.source.kind == "IntegrationKit" and (r.source.namespace, r.source.name) in gone_kits)
        ),
    )
    world.state = first.state
    second = world.plan()
    assert second.manifest_deletions == ()
    assert second.kit_deletions == ()
    gone_state = {state_key(*key) for key in gone}
    assert second.state.first_seen == {k: v for k, v in first.state.first_seen.items() if k not in gone_state}


@PROPERTY
@given(plan_inputs())
def test_exactly_the_in_scope_manifests_are_decided_once(world: World) -> None:
    p = world.plan()
    keys = [d.manifest.key for d in p.manifests]
    assert len(keys) == len(set(keys))
    assert set(keys) == set(_scoped(world))
    for d in p.manifests:
        assert in_scope(d.manifest.repository, world.policy.organizations)
        assert d.manifest.repository.rpartition("/")[2].startswith(KIT_PREFIX)
        assert d.manifest.repository.rpartition("/")[0] in world.policy.organizations
    assert len(p.kits) == len({(k.namespace, k.name) for k in world.cluster.kits})


@PROPERTY
@given(plan_inputs())
def test_no_kit_that_a_staying_kit_builds_on_is_deleted(world: World) -> None:
    p = world.plan()
    staying = _staying(p)
    used = {(u.kit_namespace, u.kit_name) for u in world.cluster.kit_uses}
    for d in p.kit_deletions:
        k = d.kit
        assert world.policy.prune_kits
        assert k.kit_type in ("platform", "user")
        assert not k.building
        assert k.created <= world.now - world.policy.min_age
        assert (k.namespace, k.name) not in used
        own = set().union(*(_resolve(world.inventory, i) for i in (k.image, k.spec_image) if i))
        for s in staying:
            for base in (s.base_image, s.root_image):
                if base is None:
                    continue
                if base.digest:
                    assert base.digest not in own, (d, s)
                else:
                    assert base.repository.rpartition("/")[2] != k.repository_name, (d, s)


@PROPERTY
@given(plan_inputs())
def test_plan_is_deterministic_and_independent_of_input_order(world: World) -> None:
    p = world.plan()
    assert world.plan() == p
    rng = random.Random(0)

    def shuffled(items: tuple[T, ...]) -> tuple[T, ...]:
        out = list(items)
        rng.shuffle(out)
        return tuple(out)

    world.inventory = replace(world.inventory, manifests=shuffled(world.inventory.manifests))
    world.cluster = replace(
        world.cluster,
        references=shuffled(world.cluster.references),
        kits=shuffled(world.cluster.kits),
        kit_uses=shuffled(world.cluster.kit_uses),
    )
    assert world.plan() == p


@given(plan_inputs())
def test_a_planner_planning_its_inventory_again_plans_as_a_fresh_one(world: World) -> None:
    """The sweep's Planner keeps the inventory's tag index between plans (kitgc.sweep.planner)."""
    # Started long after every kit was created: no kit counts as created during the run.
    planner = Planner(world.inventory, world.policy, world.state, world.now, world.now + timedelta(days=3650))
    expected = world.plan()  # plan() building its own index
    assert planner(world.cluster) == expected
    assert planner(world.cluster) == expected  # the second time with the index kept from the first


@PROPERTY
@given(plan_inputs(with_unparsable=True) | index_worlds())
def test_deletions_are_bounded_by_max_deletions_and_held_by_unparsable_references(world: World) -> None:
    p = world.plan()
    assert len(p.manifest_deletions) <= world.policy.max_deletions
    if world.cluster.unparsable:
        assert p.manifest_deletions == ()
        assert p.kit_deletions == ()


@PROPERTY
@given(plan_inputs())
def test_reasons_evidence_and_state_are_consistent(world: World) -> None:
    p = world.plan()
    problem_repos = {pr.repository for pr in world.inventory.problems}
    unreferenced = set()
    for d in p.manifests:
        assert d.reason and d.reasons and d.reasons[0] == d.reason
        assert len(d.reasons) == len(set(d.reasons))
        if d.referenced:
            assert d.action is Action.KEEP and d.evidence_since is None
        else:
            unreferenced.add(state_key(d.manifest.repository, d.manifest.digest))
            if d.manifest.repository not in problem_repos:
                assert d.evidence_since == _evidence(world, d.manifest)
    assert set(p.state.first_seen) == unreferenced
    by_key = {state_key(d.manifest.repository, d.manifest.digest): d.manifest for d in p.manifests}
    for key, when in p.state.first_seen.items():
        # the best evidence is carried into the state, never a later time than before
        assert when == min(world.state.first_seen.get(key, world.now), _evidence(world, by_key[key]))
    for kd in p.kits:
        assert kd.reason


def _recheck_world(world: World, data: st.DataObject) -> tuple[Planner, frozenset[str]]:
    """A planner (KEEP_IMAGES sometimes set: a kit it keeps holds images elsewhere) and a drawn
    set of repositories to recheck."""
    pattern = data.draw(st.sampled_from(("", "camel-k/camel-k-kit-a", "camel-k/*:1", "team/camel-k/camel-k-kit-b")))
    world.policy = replace(world.policy, keep=parse_keep_patterns(pattern) if pattern else ())
    repositories = sorted({m.repository for m in world.inventory.manifests})
    within = frozenset(data.draw(st.lists(st.sampled_from(repositories), unique=True)) if repositories else ())
    return Planner(world.inventory, world.policy, world.state, world.now, world.now + timedelta(days=3650)), within


@PROPERTY
@given(plan_inputs() | index_worlds(), st.data())
def test_a_recheck_within_some_repositories_never_lets_go_what_the_whole_plan_keeps(
        world: World, data: st.DataObject) -> None:
    """Planner.deletions_within (the recheck after deleting kits) plans a few repositories alone:
    it may only differ from a whole plan in MAX_DELETIONS' room, never in what is protected."""
    planner, within = _recheck_world(world, data)
    whole = {d.manifest.key: d.action for d in planner(world.cluster).manifests}
    let_go = planner.deletions_within(world.cluster, within)
    assert {k.repository for k in let_go} <= within
    assert not [k for k in let_go if whole[k] is Action.KEEP]


@PROPERTY
@given(plan_inputs() | index_worlds(), st.data())
def test_a_recheck_within_some_repositories_deletes_as_the_whole_plan_when_room_is_ample(
        world: World, data: st.DataObject) -> None:
    world.policy = replace(world.policy, max_deletions=10_000)
    planner, within = _recheck_world(world, data)
    whole = {d.manifest.key for d in planner(world.cluster).manifest_deletions}
    assert planner.deletions_within(world.cluster, within) == {k for k in whole if k.repository in within}


@PROPERTY
@given(plan_inputs() | index_worlds())
def test_a_plan_that_remembers_nothing_decides_as_one_that_does(world: World) -> None:
    """A dry run's planner (remember=False) builds no first-seen times, which only a deleting
    run saves; its decisions are the ones the deleting run would make."""
    late = world.now + timedelta(days=3650)
    remembering = Planner(world.inventory, world.policy, world.state, world.now, late)(world.cluster)
    forgetting = Planner(world.inventory, world.policy, world.state, world.now, late, remember=False)(world.cluster)
    assert (forgetting.manifests, forgetting.kits) == (remembering.manifests, remembering.kits)
    assert forgetting.state.first_seen == {}
