"""The planner with one run's fixed inputs, and kits created during the run counted as building."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cached_property

from kitgc.identity import ManifestKey
from kitgc.model import ClusterSnapshot, Inventory, Plan, Policy, State
from kitgc.plan import plan as make_plan
from kitgc.plan.planner import in_scope_manifests
from kitgc.plan.protect import Keeper, TagResolver

# creationTimestamp has whole seconds and comes from the API server's clock.
FRESH_MARGIN = timedelta(seconds=2)


def fresh_kits_building(cluster: ClusterSnapshot, since: datetime) -> ClusterSnapshot:
    """The snapshot with every kit created at or after ``since`` counted as building.

    Such a kit was building while the registry was scanned (the scan may hold images it
    pushed then), even if the read that follows already shows it ``Ready``; for this run its
    repository is protected.
    """
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
    remember: bool = True  # False: plans carry no first-seen times (a dry run saves no state)

    @cached_property
    def resolver(self) -> TagResolver:
        """The inventory's tag index, built once: a deleting run plans this inventory up to
        four times, and at 100,000 tags the index is some 14 MB and a second of CPU each time."""
        return TagResolver(self.inventory.manifests)

    @cached_property
    def keeper(self) -> Keeper:
        """KEEP_IMAGES over the whole in-scope inventory, built once (and whole, for
        :meth:`deletions_within`: a kit kept by a pattern keeps its base images elsewhere)."""
        return Keeper(self.policy.keep, self.inventory.registry,
                      in_scope_manifests(self.inventory, self.policy) if self.policy.keep else ())

    def __call__(self, cluster: ClusterSnapshot) -> Plan:
        return self._plan(cluster, remember=self.remember)

    def deletions_within(self, cluster: ClusterSnapshot, repositories: frozenset[str]) -> frozenset[ManifestKey]:
        """The manifests of ``repositories`` that ``cluster`` would let go: a recheck's answer.

        Planned over those repositories alone, with the whole inventory's tag index and
        KEEP_IMAGES: what protects one of their manifests is decided as in a whole plan, at
        a fraction of its memory. MAX_DELETIONS' room is not (the other repositories'
        manifests take none of it), so the answer is only ever intersected with a whole
        plan's deletions, never executed or saved on its own; hence keys, not a plan.
        """
        partial = self._plan(cluster, within=repositories, remember=False)
        return frozenset(d.manifest.key for d in partial.manifest_deletions)

    def _plan(self, cluster: ClusterSnapshot, *, remember: bool, within: frozenset[str] | None = None) -> Plan:
        return make_plan(self.inventory, fresh_kits_building(cluster, self.started), self.policy, self.state,
                         self.now, resolver=self.resolver, keeper=self.keeper, within=within, remember=remember)
