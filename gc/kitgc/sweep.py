"""The safety net of a run that deletes, around the pure planner (used by :mod:`kitgc.run`).

The operator keeps working while a run plans, so what the first read of the cluster showed
is not trusted alone:

* **fresh kits count as building**: a kit created after this run began was building while
  the registry was scanned (the scan may hold images it pushed then), even if the read that
  follows already shows it ``Ready``; for this run its repository is protected;
* **read again** just before deleting, and plan with the union of both reads
  (:func:`kitgc.cluster.merge.merge_snapshots`): whatever either read saw as referenced, in
  use or building stays;
* **recheck** after the kits are deleted: read once more, and delete only the images every
  plan agrees on (an Integration may have adopted a kit between the second read and its
  deletion; the kit object is gone then, but the image it runs stays);
* **remember index children** before deleting their index (:mod:`kitgc.pending`);
* **stop** after the deletions in flight on SIGTERM, or when the sweep Lease is lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from kitgc import guards, pending
from kitgc.cluster.merge import merge_snapshots
from kitgc.cluster.reader import ClusterReader
from kitgc.config import Settings
from kitgc.errors import KitGCError
from kitgc.lease import SweepLease
from kitgc.model import ClusterSnapshot, Inventory, Plan, Policy, State
from kitgc.plan import plan as make_plan
from kitgc.state import StateStore

# creationTimestamp has whole seconds and comes from the API server's clock.
FRESH_MARGIN = timedelta(seconds=2)


def fresh_kits_building(cluster: ClusterSnapshot, since: datetime) -> ClusterSnapshot:
    """The snapshot with every kit created at or after ``since`` counted as building."""
    cutoff = since - FRESH_MARGIN
    kits = tuple(
        replace(k, phase=f"created during this run, now {k.phase or 'without phase'}")
        if k.created >= cutoff and not k.building else k
        for k in cluster.kits
    )
    return replace(cluster, kits=kits) if kits != cluster.kits else cluster


@dataclass(frozen=True)
class Planner:
    """The planner with this run's fixed inputs; only the cluster picture varies."""

    inventory: Inventory
    policy: Policy
    state: State
    now: datetime
    started: datetime  # when the run began (before the registry scan)

    def __call__(self, cluster: ClusterSnapshot) -> Plan:
        return make_plan(self.inventory, fresh_kits_building(cluster, self.started), self.policy, self.state,
                         self.now)


async def plan_again(
    settings: Settings, reader: ClusterReader, planner: Planner, first: ClusterSnapshot, log: Any
) -> tuple[ClusterSnapshot, Plan]:
    """Read the cluster again just before deleting; plan with the union of both reads.

    A second read that fails, or shows an unparsable reference, aborts like the first would.
    """
    merged = merge_snapshots(first, await asyncio.to_thread(reader.snapshot))
    guards.check_references(merged)
    plan = planner(merged)
    guards.check_wrong_cluster(plan, merged, allow=settings.allow_empty_cluster)
    log.info("cluster_read_again", references=len(merged.references), kits=len(merged.kits),
             manifests_to_delete=len(plan.manifest_deletions), kits_to_delete=len(plan.kit_deletions))
    return merged, plan


def recheck(reader: ClusterReader, planner: Planner,
            merged: ClusterSnapshot) -> Callable[[], Awaitable[frozenset[str]]]:
    """For the executor, after kits are deleted: the manifests a third read still lets go."""

    async def again() -> frozenset[str]:
        third = merge_snapshots(merged, await asyncio.to_thread(reader.snapshot))
        guards.check_references(third)
        return frozenset(d.manifest.key for d in planner(third).manifest_deletions)

    return again


async def remember_children(
    store: StateStore, state: State, tracked: pending.Pending, plan: Plan, log: Any
) -> pending.Pending:
    """Write down the children of the indexes about to be deleted, before deleting any.

    If the write fails the sweep goes on: the worst outcome is garbage left for the
    registry's own GC, never a wrong deletion.
    """
    wanted = pending.union(tracked, pending.children_of_deletions(plan))
    if wanted == tracked:
        return tracked
    store.pending = wanted
    try:
        await asyncio.to_thread(store.save, state)
    except KitGCError as exc:
        log.warning("pending_children_not_saved", error=str(exc),
                    note="if this run is interrupted, children of deleted indexes may stay untagged")
    return wanted


class Stop:
    """Stop deleting on SIGTERM or when the sweep Lease is lost; remembers why, for the exit code."""

    def __init__(self, requested: Callable[[], bool], lease: SweepLease) -> None:
        self._requested, self._lease = requested, lease
        self.why = ""

    def __call__(self) -> bool:
        if not self.why:
            if self._requested():
                self.why = "stop requested (SIGTERM)"
            elif self._lease.lost:
                self.why = "the sweep Lease was lost"
        return bool(self.why)
