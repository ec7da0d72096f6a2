"""Read the cluster again before deleting, and once more after deleting kits.

An Integration may adopt a kit, or a workload start using an image, while a run plans. So
a deleting run plans again with the union of its first read and a second one taken just
before deleting (:func:`kitgc.cluster.merge.merge_snapshots`: whatever either read saw as
referenced, in use or building stays), and after the kits are gone deletes only the images
a third read still lets go.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from kitgc.cluster.merge import merge_snapshots
from kitgc.cluster.reader import ClusterReader
from kitgc.execute import Recheck
from kitgc.identity import ManifestKey
from kitgc.memory import give_back
from kitgc.model import ClusterSnapshot, Plan
from kitgc.plan import guards
from kitgc.sweep.planner import Planner
from kitgc.sweep.relevance import Relevance


async def plan_again(
    reader: ClusterReader, planner: Planner, first: ClusterSnapshot, log: Any, *, allow_empty_cluster: bool,
    plan: Plan | None = None, release: Callable[[], None] | None = None,
) -> tuple[ClusterSnapshot, Plan]:
    """Read the cluster again just before deleting; plan with the union of both reads.

    A second read that fails, or shows an unparsable reference, aborts like the first would.
    ``release`` is called once what the second read must keep is known and before it
    starts: the caller drops its first plan there (keeping its figures for the summary),
    so that the first plan is held neither through the second read nor beside the second
    plan (together they were most of a deleting run's peak).
    """
    keep = Relevance.of(plan, planner.inventory.manifests) if plan is not None else None  # what can change it
    plan = None
    if release is not None:
        release()
    give_back()  # the first plan
    second = await asyncio.to_thread(reader.snapshot, keep, first)
    merged = merge_snapshots(first, second)
    del second
    guards.check_references(merged)
    give_back()  # the second read's pages
    plan = planner(merged)
    guards.check_wrong_cluster(plan, merged, allow=allow_empty_cluster)
    log.info("cluster_read_again", references=len(merged.references), references_folded=merged.folded,
             kits=len(merged.kits),
             manifests_to_delete=len(plan.manifest_deletions), kits_to_delete=len(plan.kit_deletions))
    return merged, plan


def recheck(reader: ClusterReader, planner: Planner, merged: ClusterSnapshot, plan: Plan | None = None) -> Recheck:
    """For the executor, after kits are deleted: the manifests a third read still lets go."""
    keep = Relevance.of(plan, planner.inventory.manifests) if plan is not None else None
    # Only the repositories the plan deletes from are planned again: the answer is
    # intersected with the plan's deletions, and a whole third plan beside the one being
    # executed was a deleting run's peak (see Planner.deletions_within).
    within = frozenset(d.manifest.repository for d in plan.manifest_deletions) if plan is not None else None

    async def again() -> frozenset[ManifestKey]:
        give_back()  # what deleting kits freed, before the read's threads allocate in their own arena
        third = merge_snapshots(merged, await asyncio.to_thread(reader.snapshot, keep, merged))
        give_back()  # the read's pages
        guards.check_references(third)
        if within is None:
            return frozenset(d.manifest.key for d in planner(third).manifest_deletions)
        return planner.deletions_within(third, within)

    return again
