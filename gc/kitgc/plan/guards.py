"""Safety guards: conditions under which the pass deletes nothing (exit 3).

They run between planning and executing and look only at plain data, so each is a small
pure function with its own test.
"""

from __future__ import annotations

from kitgc.errors import SafetyAbort
from kitgc.model import ClusterSnapshot, Plan

WRONG_CLUSTER_FRACTION = 0.5


def check_references(cluster: ClusterSnapshot) -> None:
    """A reference we cannot understand could be protecting anything: abort."""
    if not cluster.unparsable:
        return
    first = cluster.unparsable[0]
    more = f" (and {len(cluster.unparsable) - 1} more)" if len(cluster.unparsable) > 1 else ""
    raise SafetyAbort(
        f"cannot understand image reference {first.raw!r} in {first.source} {first.field}: "
        f"{first.error}{more}; deleting nothing"
    )


def check_wrong_cluster(plan: Plan, cluster: ClusterSnapshot, *, allow: bool) -> None:
    """Refuse to delete most of the registry while the cluster shows no Integration at all.

    That picture is what a collector pointed at the wrong cluster (or at an API server that
    answers empty lists) sees. ALLOW_EMPTY_CLUSTER=true overrides, for a real clean-up after
    Camel K has been uninstalled.
    """
    scanned = len(plan.manifests)
    deleting = len(plan.manifest_deletions)
    if allow or scanned == 0 or cluster.integrations > 0:
        return
    if deleting > WRONG_CLUSTER_FRACTION * scanned:
        raise SafetyAbort(
            f"the cluster shows no Integration at all, yet this run would delete {deleting} of "
            f"{scanned} manifests: is KUBECONFIG pointing at the right cluster? Set "
            "ALLOW_EMPTY_CLUSTER=true to allow it; deleting nothing"
        )
