"""Emptied kit repositories: which may go whole, and removing them where the store can.

Registries keep a repository after its last manifest goes (Distribution lists it in the
catalog with no tags; Docker Hub, GitHub, Harbor, Quay and ACR keep the repository or
package). Where the store has an API for it (``capabilities.deletes_repositories``), a
kit repository goes whole when all of these hold:

* every manifest this run scanned in it was deleted in this run (or can only go with it:
  GitHub's last tagged version), and its read had no problem;
* its kit is gone or going: no IntegrationKit of this cluster or of a reference cluster
  that stays names it (a kit still building pushes there next);
* ``DELETE_EMPTY_REPOSITORIES`` is on and the sweep was not stopped.

A repository that was already empty when scanned is left alone: nothing this run did
emptied it, and an empty repository may be a push in progress from a cluster we do not see.
The store re-reads the repository before deleting it and refuses if anything is there.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from kitgc.errors import KitGCError
from kitgc.identity import ManifestKey, last_segment
from kitgc.model import ClusterSnapshot, DeletionFailure, ExecutionResult, Inventory
from kitgc.stores.base import DeleteOutcome, RepositoryDeleter


def emptied_repositories(inventory: Inventory, cluster: ClusterSnapshot, result: ExecutionResult) -> list[str]:
    """Kit repositories this run emptied and whose kit is gone or going (pure)."""
    gone = set(result.manifests_deleted) | set(result.with_repository)
    if not gone:
        return []
    by_repository: dict[str, list[ManifestKey]] = defaultdict(list)
    for m in inventory.manifests:
        by_repository[m.repository].append(m.key)
    troubled = {p.repository for p in inventory.problems}
    deleted_kits = set(result.kits_deleted)
    staying = {k.repository_name for k in cluster.kits if k.key not in deleted_kits}
    staying |= {k.repository_name for k in cluster.foreign_kits}
    return sorted(
        repo for repo, keys in by_repository.items()
        if repo not in troubled and last_segment(repo) not in staying and all(k in gone for k in keys)
    )


async def delete_emptied(
    store: Any, inventory: Inventory, cluster: ClusterSnapshot, result: ExecutionResult, *, enabled: bool,
    should_stop: Callable[[], bool], log: Any,
) -> ExecutionResult:
    """Delete the emptied repositories where the store can; the result with what happened.

    Manifests that could only go with their repository count as deleted once it is gone;
    where it stays they are kept (logged, not failures: nothing was lost).
    """
    candidates = emptied_repositories(inventory, cluster, result)
    can = bool(getattr(store.capabilities, "deletes_repositories", False))
    if candidates and not (enabled and can):
        log.info("empty_repositories_kept", repositories=len(candidates), examples=candidates[:3],
                 reason="DELETE_EMPTY_REPOSITORIES is off" if not enabled else
                 f"the {store.kind} store has no API to delete a repository")
        candidates = []
    deleter: RepositoryDeleter = store
    deleted: list[str] = []
    failures = list(result.failures)
    for repo in candidates:
        if should_stop():
            break
        try:
            outcome = await deleter.delete_repository(repo)
        except KitGCError as exc:
            failures.append(DeletionFailure(f"repository {repo}", str(exc).splitlines()[0]))
            log.error("repository_delete_failed", repository=repo, error=str(exc).splitlines()[0])
            continue
        deleted.append(repo)
        log.info("repository_deleted", repository=repo, already_gone=outcome is DeleteOutcome.ALREADY_GONE)
    went = set(deleted)
    with_repo = [k for k in result.with_repository if k.repository in went]
    for key in result.with_repository:
        if key.repository not in went:
            log.warning("kept_with_repository", repository=key.repository, digest=key.digest,
                        reason="the registry deletes it only with its whole repository, which stays")
    return replace(result, failures=tuple(failures), repositories_deleted=tuple(deleted),
                   manifests_deleted=result.manifests_deleted + tuple(with_repo))
