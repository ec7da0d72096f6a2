"""Carry out a plan: the only module that deletes anything.

Order matters and is fixed here, not left to chance:
1. IntegrationKit objects first, so the operator never holds a kit whose image is gone;
   when a kit cannot be deleted, its images are left alone too.
2. When kits were deleted, ``recheck`` (the shell re-reads the cluster and plans again)
   says which manifests may still go: an Integration may have adopted a kit between the
   last read and its deletion, and then the kit's image must stay.
3. Then manifests, every image index before any plain manifest, so no index is left
   pointing at a deleted child.
One failure does not stop the rest; a registry that refuses every DELETE (deletion disabled)
stops the sweep at once instead of hammering it. A dry run makes no write call at all.

The deleters are protocols, in the style of OpenShift's image pruner, so the executor is
tested with the real registry and cluster and can be reasoned about without them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import structlog

from kitgc.errors import DeletionDisabled, KitGCError
from kitgc.model import DeletionFailure, ExecutionResult, Kit, ManifestDecision, Plan


class ManifestDeleter(Protocol):
    async def delete_manifest(self, repository: str, digest: str) -> bool: ...


class KitDeleter(Protocol):
    def delete_kit(self, namespace: str, name: str) -> bool: ...


def _owned_by(decision: ManifestDecision, kit: Kit) -> bool:
    """Whether a manifest belongs to ``kit``: its image digest, or a manifest in its repository."""
    m = decision.manifest
    if kit.image is not None and kit.image.digest == m.digest:
        return True
    return m.repository.rpartition("/")[2] == kit.repository_name


async def execute(
    plan: Plan,
    manifests: ManifestDeleter,
    kits: KitDeleter,
    *,
    dry_run: bool,
    concurrency: int = 16,
    should_stop: Callable[[], bool] = lambda: False,
    log: Any = None,
    recheck: Callable[[], Awaitable[frozenset[str]]] | None = None,
) -> ExecutionResult:
    log = log or structlog.get_logger("kitgc")
    deleted_kits: list[str] = []
    deleted: list[str] = []
    failures: list[DeletionFailure] = []
    failed_kits: list[Kit] = []

    for kd in plan.kit_deletions:
        kit = kd.kit
        target = f"{kit.namespace}/{kit.name}"
        if dry_run:
            log.info("would_delete_kit", kit=target, reason=kd.reason)
            continue
        if should_stop():
            failed_kits.append(kit)
            continue
        try:
            gone = await asyncio.to_thread(kits.delete_kit, kit.namespace, kit.name)
        except Exception as exc:  # one failure must not stop the rest
            failed_kits.append(kit)
            failures.append(DeletionFailure(f"IntegrationKit {target}", _message(exc)))
            log.error("kit_delete_failed", kit=target, error=_message(exc))
            continue
        deleted_kits.append(target)
        log.info("kit_deleted", kit=target, reason=kd.reason, already_gone=not gone)

    todo = [
        d for d in plan.manifest_deletions if not any(_owned_by(d, kit) for kit in failed_kits)
    ]
    for d in plan.manifest_deletions:
        if d not in todo:
            log.warning("delete_skipped", repository=d.manifest.repository, digest=d.manifest.digest,
                        reason="its IntegrationKit could not be deleted")
    if recheck is not None and deleted_kits and todo and not dry_run:
        try:
            still = await recheck()
        except Exception as exc:  # the reference picture is in doubt: keep every image
            failures.append(DeletionFailure("re-read of the cluster after deleting kits", _message(exc)))
            log.error("recheck_failed", error=_message(exc), manifests_kept=len(todo))
            still = frozenset()
        for d in todo:
            if d.manifest.key not in still:
                log.warning("delete_skipped", repository=d.manifest.repository, digest=d.manifest.digest,
                            reason="no longer garbage when the cluster was read again after deleting kits")
        todo = [d for d in todo if d.manifest.key in still]
    if dry_run:
        for d in todo:
            m = d.manifest
            log.info("would_delete", repository=m.repository, digest=m.digest, tags=list(m.tags),
                     reason=d.reason)
        return ExecutionResult()

    disabled = asyncio.Event()
    sem = asyncio.Semaphore(max(1, concurrency))

    async def delete_one(d: ManifestDecision) -> None:
        m = d.manifest
        async with sem:
            if disabled.is_set() or should_stop():
                return
            try:
                gone = await manifests.delete_manifest(m.repository, m.digest)
            except DeletionDisabled as exc:
                if not disabled.is_set():
                    disabled.set()
                    failures.append(DeletionFailure(m.key, _message(exc)))
                    log.error("registry_deletion_disabled", repository=m.repository, error=_message(exc))
                return
            except Exception as exc:
                failures.append(DeletionFailure(m.key, _message(exc)))
                log.error("delete_failed", repository=m.repository, digest=m.digest, error=_message(exc))
                return
        deleted.append(m.key)
        log.info("deleted", repository=m.repository, digest=m.digest, tags=list(m.tags), reason=d.reason,
                 already_gone=not gone)

    indexes = [d for d in todo if d.manifest.is_index]
    others = [d for d in todo if not d.manifest.is_index]
    for batch in (indexes, others):
        await asyncio.gather(*(delete_one(d) for d in batch))
    return ExecutionResult(
        manifests_deleted=tuple(deleted),
        kits_deleted=tuple(deleted_kits),
        failures=tuple(failures),
        deletion_disabled=disabled.is_set(),
    )


def _message(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    if not isinstance(exc, KitGCError):
        text = f"{type(exc).__name__}: {text}"
    return text.splitlines()[0]
