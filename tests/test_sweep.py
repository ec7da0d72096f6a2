"""The safety net around the planner in a deleting run (kitgc.sweep): fresh kits, stopping,
remembering index children, and reading the cluster again before and after deleting kits."""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from structlog.testing import capture_logs

from kitgc import pending
from kitgc.errors import KubernetesError, SafetyAbort
from kitgc.identity import ManifestKey
from kitgc.model import (
    Action,
    ClusterSnapshot,
    ManifestDecision,
    ObjectRef,
    Plan,
    Reference,
    State,
    UnparsableReference,
)
from kitgc.sweep.children import remember_children
from kitgc.sweep.planner import FRESH_MARGIN, Planner, fresh_kits_building
from kitgc.sweep.reread import plan_again, recheck
from kitgc.sweep.stop import Stop, StopRequest
from testbed.planfactory import NOW, cluster, decision, digest, image, inventory, kit, manifest, policy, ref, repo, use

A = repo("kit-a")
BAD = UnparsableReference("Bad Image!", ObjectRef("Pod", "p", "shop"), "spec.containers[a].image", "invalid")


class Log:
    """Stands in for the run's logger: records (level, event, fields)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    def info(self, event: str, **kw: Any) -> None:
        self.events.append(("info", event, kw))

    def warning(self, event: str, **kw: Any) -> None:
        self.events.append(("warning", event, kw))


# --- fresh kits and the planner -----------------------------------------------------------


def test_kit_created_at_or_after_the_run_start_minus_the_margin_counts_as_building() -> None:
    since = NOW - timedelta(minutes=5)
    at_cutoff = kit("kit-a", age=timedelta(minutes=5) + FRESH_MARGIN)
    after = kit("kit-b", age=timedelta(minutes=1), phase="Error")
    snap = fresh_kits_building(cluster(kits=[at_cutoff, after]), since)
    assert [(k.name, k.phase, k.building) for k in snap.kits] == [
        ("kit-a", "created during this run, now Ready", True),
        ("kit-b", "created during this run, now Error", True),
    ]


def test_older_and_already_building_kits_are_left_as_they_are() -> None:
    since = NOW - timedelta(minutes=5)
    older = kit("kit-a", age=timedelta(minutes=5) + FRESH_MARGIN + timedelta(seconds=1))
    building = kit("kit-b", age=timedelta(0), phase="Build Running")
    snap = cluster(kits=[older, building])
    assert fresh_kits_building(snap, since) is snap


def test_planner_keeps_a_kit_created_during_the_run_and_its_image() -> None:
    k = kit(age=timedelta(seconds=30), image=image(A, 1))
    m = manifest(A, 1)
    snap = cluster(kits=[k])
    during = Planner(inventory(m), policy(min_age=timedelta(0)), State(), NOW, NOW - timedelta(minutes=1))(snap)
    assert (during.kits[0].action, during.kits[0].reason) == (
        Action.KEEP, "still building (phase created during this run, now Ready)")
    assert decision(during, m).action is Action.KEEP
    before = Planner(inventory(m), policy(min_age=timedelta(0)), State(), NOW, NOW)(snap)
    assert before.kits[0].action is Action.DELETE and decision(before, m).action is Action.DELETE


# --- stopping -------------------------------------------------------------------------------


def test_stop_request_turns_true_on_sigterm_and_says_so() -> None:
    request = StopRequest()
    assert request() is False
    with capture_logs() as logs:
        request.handle(signal.SIGTERM, None)
    assert request() is True
    assert [(e["event"], e["signal"]) for e in logs] == [("stop_requested", "SIGTERM")]


def test_stop_is_false_while_nothing_happened() -> None:
    stop = Stop(lambda: False, SimpleNamespace(lost=False))  # type: ignore[arg-type]
    assert stop() is False and stop.why == ""


@pytest.mark.parametrize(
    ("first", "why"),
    [("sigterm", "stop requested (SIGTERM)"), ("lease", "the sweep Lease was lost")],
)
def test_stop_remembers_the_first_reason(first: str, why: str) -> None:
    requested, lease = [False], SimpleNamespace(lost=False)
    stop = Stop(lambda: requested[0], lease)  # type: ignore[arg-type]
    if first == "sigterm":
        requested[0] = True
    else:
        lease.lost = True
    assert stop() is True and stop.why == why
    requested[0], lease.lost = True, True  # the other reason arrives too
    assert stop() is True and stop.why == why
    requested[0], lease.lost = False, False
    assert stop() is True, "once stopped, stays stopped"


# --- remembering children -------------------------------------------------------------------


class StateStore:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.saved: list[tuple[State, pending.Pending]] = []

    def save(self, state: State, remembered: pending.Pending) -> None:
        if self.fail:
            raise KubernetesError("cannot update ConfigMap kitgc/kitgc-state: 403 Forbidden", status=403)
        self.saved.append((state, {r: set(d) for r, d in remembered.items()}))


def deleting(*manifests: Any) -> Plan:
    return Plan(tuple(ManifestDecision(m, Action.DELETE, ()) for m in manifests), (), State())


async def test_children_of_indexes_about_to_go_are_saved_with_the_state() -> None:
    store, state, log = StateStore(), State({"k": NOW}), Log()
    index = manifest(A, "index", children=(digest(1), digest(2)))
    wanted = await remember_children(store, state, {A: {digest(0)}}, deleting(index, manifest(A, 3)), log)
    assert wanted == {A: {digest(0), digest(1), digest(2)}}
    assert store.saved == [(state, wanted)]
    assert log.events == []


async def test_nothing_is_saved_when_every_child_is_remembered_already() -> None:
    store = StateStore()
    tracked = {A: {digest(1), digest(2)}}
    index = manifest(A, "index", children=(digest(1),))
    assert await remember_children(store, State(), tracked, deleting(index), Log()) is tracked
    assert await remember_children(store, State(), tracked, deleting(manifest(A, 3)), Log()) is tracked
    assert store.saved == []


async def test_failed_save_is_a_warning_and_the_sweep_goes_on() -> None:
    log = Log()
    index = manifest(A, "index", children=(digest(1),))
    wanted = await remember_children(StateStore(fail=True), State(), {}, deleting(index), log)
    assert wanted == {A: {digest(1)}}
    assert [(level, event) for level, event, _ in log.events] == [("warning", "pending_children_not_saved")]
    assert "403 Forbidden" in log.events[0][2]["error"]


# --- reading again ---------------------------------------------------------------------------


class Reader:
    """Returns prepared snapshots, one per read."""

    def __init__(self, *snapshots: ClusterSnapshot) -> None:
        self.snapshots = list(snapshots)

    def snapshot(self, keep: Callable[[Reference], bool] | None = None,
                 before: ClusterSnapshot | None = None) -> ClusterSnapshot:
        """The next one, with only the references ``keep`` accepts, as ClusterReader does."""
        snap = self.snapshots.pop(0)
        return snap if keep is None else replace(snap, references=tuple(r for r in snap.references if keep(r)))


M1, M2, M3 = manifest(A, 1), manifest(A, 2), manifest(A, 3)


def planner(*manifests: Any) -> Planner:
    return Planner(inventory(*manifests), policy(min_age=timedelta(0)), State(), NOW, NOW)


def with_integration(snap: ClusterSnapshot) -> ClusterSnapshot:
    return replace(snap, integrations=1)


async def test_plan_again_keeps_only_the_new_references_that_can_change_the_plan() -> None:
    first = with_integration(cluster())
    p = planner(M1, M2)
    first_plan = p(first)
    assert {d.manifest.key for d in first_plan.manifest_deletions} == {M1.key, M2.key}
    newly = ref(image(A, 2), kind="Pod", name="new")
    unrelated = ref("docker.io/library/nginx:1.27", kind="Pod", name="web")
    second = with_integration(cluster(references=[newly, unrelated]))
    merged, plan = await plan_again(Reader(second), p, first, Log(), allow_empty_cluster=False, plan=first_plan)
    assert merged.references == (newly,)  # the other one can protect nothing this plan deletes
    assert [d.manifest.key for d in plan.manifest_deletions] == [M1.key]


async def test_plan_again_keeps_what_the_second_read_newly_uses() -> None:
    k = kit(image=image(A, 1))
    first = with_integration(cluster(kits=[k]))
    second = with_integration(cluster(kits=[k], uses=[use(k, name="adopter")]))
    log = Log()
    merged, plan = await plan_again(Reader(second), planner(M1, M2), first, log, allow_empty_cluster=False)
    assert merged.kit_uses == second.kit_uses and merged.kits == (k,)
    assert plan.kits[0].action is Action.KEEP
    assert [d.manifest.key for d in plan.manifest_deletions] == [M2.key]
    assert planner(M1, M2)(first).kits[0].action is Action.DELETE, "the first read alone would delete it"
    assert [(e, f["kits_to_delete"], f["manifests_to_delete"]) for _, e, f in log.events] == [
        ("cluster_read_again", 0, 1)]


async def test_plan_again_lets_go_of_the_first_plan_before_the_second_read() -> None:
    """The first plan beside the second read, and beside the second plan, was most of a
    deleting run's peak: the caller drops it once what the read must keep is known."""
    events: list[str] = []

    class Planning(Planner):
        def __call__(self, cluster: ClusterSnapshot) -> Plan:
            events.append("planned")
            return super().__call__(cluster)

    class Reading(Reader):
        def snapshot(self, keep: Callable[[Reference], bool] | None = None,
                     before: ClusterSnapshot | None = None) -> ClusterSnapshot:
            events.append("read")
            return super().snapshot(keep, before)

    p = Planning(inventory(M1, M2), policy(min_age=timedelta(0)), State(), NOW, NOW)
    first = with_integration(cluster())
    await plan_again(Reading(first), p, first, Log(), allow_empty_cluster=False, plan=p(first),
                     release=lambda: events.append("released"))
    assert events == ["planned", "released", "read", "planned"]


async def test_unparsable_reference_in_the_second_read_aborts() -> None:
    second = with_integration(cluster(unparsable=(BAD,)))
    with pytest.raises(SafetyAbort, match="Bad Image!"):
        await plan_again(Reader(second), planner(M1), with_integration(cluster()), Log(), allow_empty_cluster=True)


async def test_plan_again_applies_the_wrong_cluster_guard() -> None:
    with pytest.raises(SafetyAbort, match="no Integration"):
        await plan_again(Reader(cluster()), planner(M1, M2), cluster(), Log(), allow_empty_cluster=False)
    _, plan = await plan_again(Reader(cluster()), planner(M1, M2), cluster(), Log(), allow_empty_cluster=True)
    assert len(plan.manifest_deletions) == 2


async def test_recheck_returns_what_a_third_read_still_lets_go() -> None:
    merged = with_integration(cluster([ref(image(A, 3))]))
    third = with_integration(cluster([ref(image(A, 1), kind="Pod", name="new")]))
    again = recheck(Reader(third, cluster()), planner(M1, M2, M3), merged)
    assert await again() == frozenset({M2.key})
    # each call reads anew, merged with the reads before deleting (not with the previous recheck)
    assert await again() == frozenset({ManifestKey(A, M1.digest), M2.key})


async def test_recheck_aborts_on_an_unparsable_reference_in_the_third_read() -> None:
    again = recheck(Reader(cluster(unparsable=(BAD,))), planner(M1), with_integration(cluster()))
    with pytest.raises(SafetyAbort):
        await again()
