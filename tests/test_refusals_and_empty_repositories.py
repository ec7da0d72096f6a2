"""What a run remembers of registry refusals, and which emptied repositories may go whole.

* A manifest the registry refused for good (an immutable tag) is kept by later runs with a
  reason of its own, without asking again, until ``REFUSAL_RETRY`` has passed; the state
  ConfigMap carries that memory.
* An emptied kit repository goes whole only when every manifest of it went in this run,
  its read had no problem, and its kit is gone or going (here or in a reference cluster).
"""

from __future__ import annotations

from dataclasses import replace

from kitgc.identity import KitKey
from kitgc.model import Action, ExecutionResult, RepositoryProblem, State, state_key
from kitgc.plan.planner import REFUSAL_RETRY
from kitgc.plan.reasons import ReasonKind
from kitgc.run import with_refusals
from kitgc.state import decode, encode
from kitgc.sweep.repositories import emptied_repositories
from testbed.planfactory import DAY, NOW, cluster, image, inventory, kit, manifest, policy, repo, run

# --- refusals remembered ----------------------------------------------------------------


def _refused(m, when) -> State:  # type: ignore[no-untyped-def]
    return State(refused={state_key(m.repository, m.digest): (when, "immutable tag")})


def test_a_recently_refused_manifest_is_kept_with_its_own_reason() -> None:
    m = manifest(repo("kit-a"), "a", "1")
    p = run(inventory(m), pol=policy(min_age=0 * DAY), st_=_refused(m, NOW - DAY))
    (d,) = p.manifests
    assert d.action is Action.KEEP
    assert [r.kind for r in d.why] == [ReasonKind.REGISTRY_REFUSES]
    assert "refuses to delete it (immutable tag)" in d.reason
    assert not d.referenced  # nothing in the cluster refers to it
    assert p.state.refused == {state_key(m.repository, m.digest): (NOW - DAY, "immutable tag")}


def test_a_refusal_is_asked_again_after_the_retry_period() -> None:
    m = manifest(repo("kit-a"), "a", "1")
    p = run(inventory(m), pol=policy(min_age=0 * DAY), st_=_refused(m, NOW - REFUSAL_RETRY))
    assert p.manifests[0].action is Action.DELETE
    assert p.state.refused == {}


def test_a_refusal_is_forgotten_when_the_manifest_is_gone() -> None:
    gone, here = manifest(repo("kit-a"), "a", "1"), manifest(repo("kit-b"), "b", "1")
    p = run(inventory(here), pol=policy(min_age=0 * DAY), st_=_refused(gone, NOW - DAY))
    assert p.state.refused == {}


def test_a_refused_manifest_still_counts_as_referenced_when_something_uses_it() -> None:
    from testbed.planfactory import ref

    m = manifest(repo("kit-a"), "a", "1")
    p = run(inventory(m), cluster([ref(image(m.repository, "a"))]), st_=_refused(m, NOW - DAY))
    assert p.manifests[0].referenced and p.manifests[0].action is Action.KEEP


def test_the_state_configmap_carries_refusals_across_runs() -> None:
    m = manifest(repo("kit-a"), "a", "1")
    state = State(first_seen={state_key(m.repository, m.digest): NOW - DAY}, refused=_refused(m, NOW - DAY).refused)
    assert decode(encode(state)) == state


def test_a_run_records_the_refusals_it_met() -> None:
    m = manifest(repo("kit-a"), "a", "1")
    saved = with_refusals(State(), ExecutionResult(immutable=(m.key,)))
    (when, text) = saved.refused[state_key(m.repository, m.digest)]
    assert text == "immutable tag" and when.tzinfo is not None
    earlier = _refused(m, NOW - DAY)
    assert with_refusals(earlier, ExecutionResult(immutable=(m.key,))).refused == earlier.refused  # first time stays


# --- emptied repositories ---------------------------------------------------------------


def test_a_repository_whose_every_manifest_went_and_whose_kit_is_gone_is_emptied() -> None:
    a1, a2 = manifest(repo("kit-a"), "a1", "1"), manifest(repo("kit-a"), "a2")
    b = manifest(repo("kit-b"), "b", "1")
    result = ExecutionResult(manifests_deleted=(a1.key, a2.key))
    assert emptied_repositories(inventory(a1, a2, b), cluster(), result) == [repo("kit-a")]


def test_a_repository_with_a_manifest_left_is_not_emptied() -> None:
    a1, a2 = manifest(repo("kit-a"), "a1", "1"), manifest(repo("kit-a"), "a2", "2")
    result = ExecutionResult(manifests_deleted=(a1.key,))
    assert emptied_repositories(inventory(a1, a2), cluster(), result) == []


def test_a_repository_whose_kit_stays_is_not_emptied() -> None:
    a = manifest(repo("kit-a"), "a", "1")
    result = ExecutionResult(manifests_deleted=(a.key,))
    assert emptied_repositories(inventory(a), cluster(kits=[kit("kit-a")]), result) == []


def test_a_repository_whose_kit_went_in_this_run_is_emptied() -> None:
    a = manifest(repo("kit-a"), "a", "1")
    result = ExecutionResult(manifests_deleted=(a.key,), kits_deleted=(KitKey("camel-k", "kit-a"),))
    assert emptied_repositories(inventory(a), cluster(kits=[kit("kit-a")]), result) == [repo("kit-a")]


def test_a_repository_whose_kit_lives_in_a_reference_cluster_is_not_emptied() -> None:
    a = manifest(repo("kit-a"), "a", "1")
    snap = replace(cluster(), foreign_kits=(kit("kit-a"),))
    assert emptied_repositories(inventory(a), snap, ExecutionResult(manifests_deleted=(a.key,))) == []


def test_a_repository_read_with_a_problem_is_not_emptied() -> None:
    a = manifest(repo("kit-a"), "a", "1")
    inv = inventory(a, problems=(RepositoryProblem(repo("kit-a"), "HTTP 500", "2"),))
    assert emptied_repositories(inv, cluster(), ExecutionResult(manifests_deleted=(a.key,))) == []


def test_a_manifest_that_goes_only_with_its_repository_counts_as_going() -> None:
    a1, a2 = manifest(repo("kit-a"), "a1", "1"), manifest(repo("kit-a"), "a2")
    result = ExecutionResult(manifests_deleted=(a2.key,), with_repository=(a1.key,))
    assert emptied_repositories(inventory(a1, a2), cluster(), result) == [repo("kit-a")]


def test_nothing_deleted_empties_nothing() -> None:
    a = manifest(repo("kit-a"), "a", "1")
    assert emptied_repositories(inventory(a), cluster(), ExecutionResult()) == []
