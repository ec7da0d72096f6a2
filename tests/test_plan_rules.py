"""One scenario per manifest rule of the planner, named after the behaviour it protects.

Kit decisions have their own file (test_plan_kits.py); random worlds are in
test_plan_properties.py.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from kitgc.identity import short_digest
from kitgc.imageref import digest_only
from kitgc.model import Action, Kit, Manifest, ObjectRef, RepositoryProblem, State, UnparsableReference, state_key
from kitgc.plan.text import age_text, min_age_text
from testbed.planfactory import (
    DAY,
    HOUR,
    MINUTE,
    NOW,
    ORG,
    action,
    cluster,
    decision,
    digest,
    image,
    inventory,
    kit,
    manifest,
    policy,
    ref,
    repo,
    run,
    seen,
    use,
)

A, B = repo("kit-a"), repo("kit-b")


def old(*ms: Manifest) -> State:
    """State saying each manifest was first seen unreferenced 3 days ago."""
    return seen(*((m, 3 * DAY) for m in ms))


# --- deletion, age and its evidence ------------------------------------------------------


def test_unreferenced_old_manifest_is_deleted_with_its_age() -> None:
    m = manifest(A, 1, "7")
    d = decision(run(inventory(m), st_=old(m)), m)
    assert (d.action, d.reason, d.referenced) == (Action.DELETE, "unreferenced for 3d", False)
    assert d.evidence_since == NOW - 3 * DAY
    assert d.reasons == ("unreferenced for 3d", f"age from the first-seen state ({(NOW - 3 * DAY).isoformat()})")


def test_manifest_first_seen_this_run_is_kept_and_its_clock_starts_now() -> None:
    m = manifest(A, 1)
    p = run(inventory(m))
    d = decision(p, m)
    assert (d.action, d.reason) == (Action.KEEP, "younger than MIN_AGE 24h (unreferenced for 0s)")
    assert d.evidence_since == NOW
    assert "first seen unreferenced in this run" in d.reasons
    assert p.state.first_seen == {state_key(A, m.digest): NOW}


def test_young_manifest_is_kept_with_min_age_and_its_age() -> None:
    m = manifest(A, 1)
    d = decision(run(inventory(m), st_=seen((m, 2 * HOUR))), m)
    assert (d.action, d.reason) == (Action.KEEP, "younger than MIN_AGE 24h (unreferenced for 2h)")
    assert d.evidence_since == NOW - 2 * HOUR


def test_min_age_zero_deletes_a_manifest_first_seen_now() -> None:
    m = manifest(A, 1)
    assert action(run(inventory(m), pol=policy(min_age=timedelta(0))), m) is Action.DELETE


def test_kit_creation_timestamp_wins_over_first_seen_state() -> None:
    m_a, m_b = manifest(A, 1), manifest(B, 2)
    kits = [kit("kit-a", age=2 * HOUR, phase="Ready"), kit("kit-b", age=5 * DAY, kit_type="external")]
    p = run(inventory(m_a, m_b), cluster(kits=kits), st_=seen((m_a, 9 * DAY), (m_b, timedelta(0))))
    assert decision(p, m_a).reason == "younger than MIN_AGE 24h (unreferenced for 2h)"
    assert decision(p, m_b).action is Action.DELETE
    assert decision(p, m_b).reason == "unreferenced for 5d"
    assert decision(p, m_b).reasons[1].startswith("age from the creationTimestamp of IntegrationKit camel-k/kit-b")


def test_youngest_of_several_kits_sharing_a_repository_is_the_age_evidence() -> None:
    m = manifest(A, 1)
    kits = [kit("kit-a", kit_type="external", age=9 * DAY), kit("kit-a", namespace="x", kit_type="external", age=HOUR)]
    d = decision(run(inventory(m), cluster(kits=kits)), m)
    assert (d.action, d.evidence_since) == (Action.KEEP, NOW - HOUR)


def test_future_evidence_counts_as_young_even_with_min_age_zero() -> None:
    m = manifest(A, 1)
    d = decision(run(inventory(m), pol=policy(min_age=timedelta(0)), st_=seen((m, -HOUR))), m)
    assert d.action is Action.KEEP


# --- references ---------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["registry.example:5000", "10.0.0.7:5000", "mirror.local", "docker.io", "[::1]:5000"])
def test_digest_reference_protects_the_digest_in_every_repository_under_any_host(host: str) -> None:
    m_a, m_b, other = manifest(A, 1), manifest(B, 1), manifest(B, 2)
    snap = cluster([ref(image("somewhere/else", 1, host=host))])
    p = run(inventory(m_a, m_b, other), snap, st_=old(m_a, m_b, other))
    for m in (m_a, m_b):
        d = decision(p, m)
        assert (d.action, d.reason, d.referenced) == (Action.KEEP, "referenced by Deployment shop/orders", True)
    assert action(p, other) is Action.DELETE


@pytest.mark.parametrize("host", ["registry.example:5000", "pull-through.local", "docker.io", "localhost:5000"])
def test_tag_reference_protects_current_digest_under_any_host(host: str) -> None:
    current, older = manifest(A, 1, "3"), manifest(A, 2, "2")
    snap = cluster([ref(image(A, tag="3", host=host), kind="Pod", name="b", namespace="a")])
    p = run(inventory(current, older), snap, st_=old(current, older))
    assert decision(p, current).reason == "tag 3 referenced by Pod a/b"
    assert decision(p, current).referenced
    assert action(p, older) is Action.DELETE


def test_tag_reference_resolves_only_in_the_repository_of_the_same_path() -> None:
    here, there = manifest(A, 1, "3"), manifest(B, 2, "3")
    p = run(inventory(here, there), cluster([ref(image(A, tag="3"))]), st_=old(here, there))
    assert action(p, here) is Action.KEEP
    assert action(p, there) is Action.DELETE


def test_tag_reference_protects_its_digest_in_other_repositories_too() -> None:
    here, copy = manifest(A, 1, "3"), manifest(B, 1)
    p = run(inventory(here, copy), cluster([ref(image(A, tag="3"))]), st_=old(here, copy))
    assert decision(p, copy).reason == "tag 3 referenced by Deployment shop/orders"


def test_reference_without_tag_or_digest_means_latest() -> None:
    latest, other = manifest(A, 1, "latest"), manifest(A, 2, "1")
    p = run(inventory(latest, other), cluster([ref(image(A))]), st_=old(latest, other))
    assert decision(p, latest).reason == "tag latest referenced by Deployment shop/orders"
    assert action(p, other) is Action.DELETE


def test_tag_and_digest_reference_protects_the_digest_not_what_the_tag_points_at() -> None:
    pinned, tagged = manifest(A, 1), manifest(A, 2, "3")
    p = run(inventory(pinned, tagged), cluster([ref(image(A, 1, tag="3"))]), st_=old(pinned, tagged))
    assert decision(p, pinned).reason == "referenced by Deployment shop/orders"
    assert action(p, tagged) is Action.DELETE


def test_bare_digest_reference_protects_the_digest() -> None:
    m = manifest(A, 1)
    p = run(inventory(m), cluster([ref(digest_only(digest(1)), kind="Pod")]), st_=old(m))
    assert decision(p, m).reason == "referenced by Pod shop/orders"


def test_unresolvable_tag_reference_protects_nothing_else() -> None:
    m = manifest(A, 1, "1")
    p = run(inventory(m), cluster([ref(image(A, tag="gone"))]), st_=old(m))
    assert action(p, m) is Action.DELETE


def test_every_reason_that_applies_is_listed_sorted_by_kind() -> None:
    m = manifest(A, 1, "3")
    snap = cluster(
        [ref(image(A, tag="3"), kind="Pod", name="p"), ref(image(B, 1), kind="Deployment", name="d")],
        kits=[kit("kit-a", phase="Build Running", image=image(A, 1))],
    )
    d = decision(run(inventory(m), snap), m)
    assert d.reasons == (
        "referenced by Deployment shop/d",
        "tag 3 referenced by Pod shop/p",
        "image of IntegrationKit camel-k/kit-a",
        "IntegrationKit camel-k/kit-a is still building (phase Build Running)",
    )
    assert d.reason == d.reasons[0]


# --- staying kits' images -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "text"),
    [
        ("image", "image of"),
        ("spec_image", "image of"),
        ("base_image", "base image of"),
        ("root_image", "root image of"),
    ],
)
def test_image_of_a_staying_kit_is_protected(field: str, text: str) -> None:
    m = manifest(B, 1)
    k = dataclasses.replace(kit("kit-a", kit_type="external"), **{field: image(B, 1)})  # type: ignore[arg-type]
    d = decision(run(inventory(m), cluster(kits=[k]), st_=old(m)), m)
    assert (d.action, d.reason, d.referenced) == (Action.KEEP, f"{text} IntegrationKit camel-k/kit-a", True)


def test_tag_only_image_of_a_staying_kit_protects_the_digest_its_tag_points_at() -> None:
    current, older = manifest(A, 1, "12"), manifest(A, 2, "11")
    k = kit("kit-a", image=image(A, tag="12"))
    p = run(inventory(current, older), cluster(kits=[k], uses=[use(k)]))
    assert decision(p, current).reason == "image of IntegrationKit camel-k/kit-a"
    assert action(p, older) is Action.DELETE


def test_status_digest_field_is_never_used() -> None:
    """Kits' ``status.digest`` is a hash of the spec: the model does not even carry it, and
    protection comes from the image's digest as the registry reports it."""
    assert "digest" not in {f.name for f in dataclasses.fields(Kit)}
    m = manifest(A, 1, "5")
    k = kit("kit-a", image=image(A, tag="5"))
    assert action(run(inventory(m), cluster(kits=[k], uses=[use(k)])), m) is Action.KEEP


def test_own_references_of_a_deleted_kit_do_not_keep_its_image() -> None:
    m = manifest(A, 1)
    k = kit("kit-a", image=image(A, 1))
    kit_refs = [ref(image(A, 1), kind="IntegrationKit", name="kit-a", namespace=ORG)]
    p = run(inventory(m), cluster(kit_refs, kits=[k]))
    assert (p.kits[0].action, action(p, m)) == (Action.DELETE, Action.DELETE)


def test_reference_from_a_kit_missing_from_the_snapshot_still_protects() -> None:
    m = manifest(A, 1)
    p = run(inventory(m), cluster([ref(image(A, 1), kind="IntegrationKit", name="kit-x", namespace=ORG)]), st_=old(m))
    assert decision(p, m).reason == "referenced by IntegrationKit camel-k/kit-x"


def test_manifest_of_a_deleted_kit_says_the_kit_is_being_deleted() -> None:
    m = manifest(A, 1)
    p = run(inventory(m), cluster(kits=[kit("kit-a", age=3 * DAY, image=image(A, 1))]))
    assert decision(p, m).reason == "unreferenced for 3d; IntegrationKit camel-k/kit-a is being deleted"


# --- building kits -------------------------------------------------------------------------


@pytest.mark.parametrize("phase", ["Build Running", "Build Submitted", "Initialization", "", "Something New"])
def test_building_kit_protects_whole_repository(phase: str) -> None:
    tagged, untagged, elsewhere = manifest(A, 1, "9"), manifest(A, 2), manifest("team/camel-k/camel-k-kit-a", 3)
    k = kit("kit-a", phase=phase, age=9 * DAY)
    p = run(inventory(tagged, untagged, elsewhere), cluster(kits=[k]), pol=policy(ORG, "team/camel-k"))
    for m in (tagged, untagged, elsewhere):
        d = decision(p, m)
        assert d.action is Action.KEEP and d.referenced
        assert d.reason == f"IntegrationKit camel-k/kit-a is still building (phase {phase or 'not set'})"


def test_finished_kit_does_not_protect_its_repository() -> None:
    m = manifest(A, 1)
    p = run(inventory(m), cluster(kits=[kit("kit-a", phase="Error", kit_type="external")]))
    assert action(p, m) is Action.DELETE


# --- indexes -------------------------------------------------------------------------------


def _tree(repository: str = A) -> tuple[Manifest, Manifest, Manifest]:
    leaf = manifest(repository, "leaf")
    middle = manifest(repository, "middle", children=(leaf.digest,))
    top = manifest(repository, "top", "1", children=(middle.digest,))
    return top, middle, leaf


def test_child_of_referenced_index_is_kept_transitively() -> None:
    top, middle, leaf = _tree()
    p = run(inventory(top, middle, leaf), cluster([ref(image(A, tag="1"))]), st_=old(top, middle, leaf))
    assert decision(p, middle).reason == f"child of kept index {A}@{short_digest(top.digest)}"
    assert decision(p, leaf).reason == f"child of kept index {A}@{short_digest(middle.digest)}"
    assert all(decision(p, m).referenced for m in (top, middle, leaf))


def test_index_children_are_looked_up_in_its_own_repository_only() -> None:
    top, middle, leaf = _tree(A)
    same_digest_elsewhere = manifest(B, "middle")
    p = run(
        inventory(top, middle, leaf, same_digest_elsewhere),
        cluster([ref(image(A, "top"))]),
        st_=old(top, middle, leaf, same_digest_elsewhere),
    )
    assert action(p, same_digest_elsewhere) is Action.DELETE


def test_child_referenced_itself_stays_when_its_index_goes() -> None:
    top, middle, leaf = _tree()
    p = run(inventory(top, middle, leaf), cluster([ref(image(A, "leaf"))]), st_=old(top, middle, leaf))
    assert [action(p, m) for m in (top, middle, leaf)] == [Action.DELETE, Action.DELETE, Action.KEEP]


def test_unreferenced_index_goes_with_its_children() -> None:
    top, middle, leaf = _tree()
    p = run(inventory(top, middle, leaf), st_=old(top, middle, leaf))
    assert {action(p, m) for m in (top, middle, leaf)} == {Action.DELETE}


def test_child_of_young_index_is_kept() -> None:
    top, middle, leaf = _tree()
    p = run(inventory(top, middle, leaf), st_=seen((top, HOUR), (middle, 3 * DAY), (leaf, 3 * DAY)))
    assert action(p, top) is Action.KEEP
    assert decision(p, middle).reason == f"child of kept index {A}@{short_digest(top.digest)}"
    assert decision(p, leaf).reason == f"child of kept index {A}@{short_digest(middle.digest)}"
    assert not decision(p, leaf).referenced
    assert decision(p, leaf).reasons[1] == "unreferenced for 3d"


def test_child_of_deferred_index_is_not_deleted() -> None:
    child = manifest(A, "child")
    parent = manifest(A, "parent", children=(child.digest,))
    # The child is older, so it comes first under MAX_DELETIONS 1; its index is deferred.
    p = run(inventory(parent, child), pol=policy(max_deletions=1), st_=seen((child, 5 * DAY), (parent, 2 * DAY)))
    assert action(p, parent) is Action.DEFER
    d = decision(p, child)
    assert d.action is Action.DEFER
    assert d.reason == f"child of deferred index {A}@{short_digest(parent.digest)}, deferred with it"


def test_child_listed_by_a_deleted_and_a_kept_index_is_kept() -> None:
    child = manifest(A, "child")
    gone = manifest(A, "gone", children=(child.digest,))
    kept = manifest(A, "kept", "1", children=(child.digest,))
    p = run(inventory(gone, kept, child), st_=seen((gone, 3 * DAY), (kept, HOUR), (child, 3 * DAY)))
    assert action(p, gone) is Action.DELETE
    assert decision(p, child).reason == f"child of kept index {A}@{short_digest(kept.digest)}"


# --- MAX_DELETIONS -------------------------------------------------------------------------


def test_max_deletions_deletes_the_oldest_first_and_defers_the_rest() -> None:
    ms = [manifest(A, 1), manifest(A, 2), manifest(B, 3), manifest(A, 4)]
    ages = [3 * DAY, 5 * DAY, 5 * DAY, 2 * DAY]
    p = run(inventory(*ms), pol=policy(max_deletions=2), st_=seen(*zip(ms, ages, strict=True)))
    assert [action(p, m) for m in ms] == [Action.DEFER, Action.DELETE, Action.DELETE, Action.DEFER]
    assert decision(p, ms[0]).reason == "unreferenced for 3d, over MAX_DELETIONS 2, deferred to a later run"


def test_ties_in_age_are_broken_by_repository_then_digest() -> None:
    ms = [manifest(B, 1), manifest(A, 2), manifest(A, 3)]
    p = run(inventory(*ms), pol=policy(max_deletions=1), st_=old(*ms))
    first = min(ms[1:], key=lambda m: m.digest)
    assert [d.manifest for d in p.manifest_deletions] == [first]


def test_max_deletions_zero_defers_everything() -> None:
    m = manifest(A, 1)
    assert action(run(inventory(m), pol=policy(max_deletions=0), st_=old(m)), m) is Action.DEFER


# --- problems, scope, state, totality ---------------------------------------------------------


def test_repository_not_read_completely_keeps_every_manifest() -> None:
    m, referenced = manifest(A, 1), manifest(A, 2)
    problem = RepositoryProblem(A, "HTTP 500 on tags/list")
    p = run(inventory(m, referenced, problems=(problem,)), cluster([ref(image(A, 2))]), st_=old(m))
    d = decision(p, m)
    assert (d.action, d.referenced) == (Action.KEEP, False)
    assert d.reason == "repository not read completely: HTTP 500 on tags/list"
    assert decision(p, referenced).referenced
    assert decision(p, referenced).reasons[-1].startswith("repository not read completely")
    assert state_key(A, m.digest) in p.state.first_seen  # observed unreferenced: its clock keeps running
    assert state_key(A, referenced.digest) not in p.state.first_seen


def test_tag_problem_is_named_in_the_reason() -> None:
    m = manifest(A, 1)
    p = run(inventory(m, problems=(RepositoryProblem(A, "manifest unknown", tag="4"),)))
    assert decision(p, m).reason == "repository not read completely: manifest unknown (tag 4)"


@pytest.mark.parametrize(
    "repository",
    [
        "other/camel-k-kit-a",  # organization not configured
        "camel-k/sub/camel-k-kit-a",  # nested below the organization
        "camel-k/tooling",  # not a kit repository
        "camel-k/camel-k-kit",  # no kit name
        "camel-k/camel-k-operator",
        "camel-k-kit-a",  # no organization at all
    ],
)
def test_manifests_outside_scope_never_appear_in_the_plan(repository: str) -> None:
    out, ours = manifest(repository, 1), manifest(A, 2)
    p = run(inventory(out, ours), pol=policy(min_age=timedelta(0)), st_=State({state_key(repository, out.digest): NOW}))
    assert [d.manifest for d in p.manifests] == [ours]
    assert state_key(repository, out.digest) not in p.state.first_seen


def test_organization_with_a_slash_is_in_scope() -> None:
    m = manifest("team/camel-k/camel-k-kit-a", 1)
    p = run(inventory(m), pol=policy("team/camel-k"), st_=old(m))
    assert action(p, m) is Action.DELETE


def test_state_keeps_exactly_the_unreferenced_manifests() -> None:
    young, deleted, deferred, referenced = manifest(A, 1), manifest(A, 2), manifest(A, 3), manifest(A, 4)
    fresh = manifest(A, 5)
    state = seen((young, HOUR), (deleted, 5 * DAY), (deferred, 4 * DAY), (referenced, 9 * DAY))
    state.first_seen[state_key("camel-k/camel-k-kit-gone", digest(6))] = NOW - DAY
    p = run(
        inventory(young, deleted, deferred, referenced, fresh),
        cluster([ref(image(A, 4))]),
        pol=policy(max_deletions=1),
        st_=state,
    )
    assert [action(p, m) for m in (young, deleted, deferred, fresh)] == [
        Action.KEEP, Action.DELETE, Action.DEFER, Action.KEEP
    ]
    assert p.state.first_seen == {
        state_key(A, young.digest): NOW - HOUR,
        state_key(A, deleted.digest): NOW - 5 * DAY,
        state_key(A, deferred.digest): NOW - 4 * DAY,
        state_key(A, fresh.digest): NOW,
    }


def test_duplicate_manifest_entries_get_one_decision_and_keep_every_child() -> None:
    child = manifest(A, "child")
    first = manifest(A, "index", "1")
    again = manifest(A, "index", children=(child.digest,))
    p = run(inventory(first, again, child), cluster([ref(image(A, tag="1"))]), st_=old(child))
    assert [d.manifest.digest for d in p.manifests].count(first.digest) == 1
    assert decision(p, child).action is Action.KEEP


def test_unparsable_reference_holds_every_deletion() -> None:
    m = manifest(A, 1)
    bad = UnparsableReference("Not An Image", ObjectRef("Pod", "p", "shop"), "spec.containers[app].image", "bad")
    p = run(inventory(m), cluster(kits=[kit("kit-b")], unparsable=(bad,)), st_=old(m))
    assert p.manifest_deletions == () and p.kit_deletions == ()
    assert decision(p, m).action is Action.DEFER
    assert "could not be parsed" in decision(p, m).reason and "Pod shop/p" in decision(p, m).reason
    assert "could not be parsed" in p.kits[0].reason


def test_plan_does_not_depend_on_input_order() -> None:
    ms = [manifest(A, i, str(i)) for i in range(5)]
    kits = [kit("kit-a", image=image(A, 1)), kit("kit-b", base=image(A, 1)), kit("kit-c", base=image(B, tag="x"))]
    refs = [ref(image(A, tag="2")), ref(image(A, 3), kind="Pod")]
    state = old(*ms)
    forward = run(inventory(*ms), cluster(refs, kits, [use(kits[1])]), st_=state)
    backward = run(inventory(*ms[::-1]), cluster(refs[::-1], kits[::-1], [use(kits[1])]), st_=state)
    assert forward == backward
    assert [d.manifest.digest for d in forward.manifests] == sorted(m.digest for m in ms)


# --- reason text -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "text"),
    [
        (3 * DAY + 5 * HOUR, "3d"),
        (5 * HOUR + 59 * MINUTE, "5h"),
        (12 * MINUTE + timedelta(seconds=3), "12m"),
        (timedelta(seconds=40), "40s"),
        (timedelta(0), "0s"),
        (-HOUR, "0s"),
    ],
)
def test_ages_read_in_one_human_unit(age: timedelta, text: str) -> None:
    assert age_text(age) == text


@pytest.mark.parametrize(
    ("min_age", "text"),
    [(24 * HOUR, "24h"), (7 * DAY, "7d"), (36 * HOUR, "36h"), (timedelta(seconds=90), "90s"), (30 * MINUTE, "30m"),
     (timedelta(0), "0")],
)
def test_min_age_reads_as_configured(min_age: timedelta, text: str) -> None:
    assert min_age_text(min_age) == text


def test_deferred_image_of_a_deleted_kit_keeps_its_kit_age_in_state() -> None:
    """MAX_DELETIONS defers an image whose kit goes this run: the next run must not restart its grace period."""
    from datetime import UTC, datetime, timedelta

    from kitgc.imageref import parse
    from kitgc.model import Action, ClusterSnapshot, Inventory, Kit, Manifest, Policy, State, state_key
    from kitgc.plan import plan

    now = datetime(2026, 6, 1, tzinfo=UTC)
    created = now - timedelta(days=10)
    repo = "camel-k/camel-k-kit-old"
    digests = [f"sha256:{i:064x}" for i in (1, 2)]
    manifests = tuple(Manifest(repo, d, "application/vnd.oci.image.manifest.v1+json", tags=(str(i),))
                      for i, d in enumerate(digests))
    kit = Kit("camel-k", "kit-old", "platform", "Ready", created, image=parse(f"r.io/{repo}@{digests[0]}"))
    p = plan(Inventory("r.io", (repo,), manifests), ClusterSnapshot((), (kit,), (), integrations=1),
             Policy(("camel-k",), timedelta(hours=24), True, 1), State(), now)
    assert [d.action for d in p.manifests].count(Action.DEFER) == 1
    assert p.state.first_seen[state_key(repo, digests[1])] == created
