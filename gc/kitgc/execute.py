"""Carry out a plan: the only module that deletes anything.

Order matters and is fixed here, not left to chance:
1. IntegrationKit objects first, so the operator never holds a kit whose image is gone;
   when a kit cannot be deleted, the manifests the planner tied to it stay too.
2. When kits were deleted, ``recheck`` (the shell re-reads the cluster and plans again)
   says which manifests may still go: an Integration may have adopted a kit between the
   last read and its deletion, and then the kit's image must stay.
3. Then manifests, in the batches the image store orders (indexes before children on a
   registry), so no index is left pointing at a deleted child.
4. Manifests the registry refused only because another manifest still lists them
   (:class:`~kitgc.errors.HeldByAnother`: an index the plan had not reached, or one another
   batch deletes) are retried after all batches, in rounds while a round makes progress (at
   most :data:`RETRY_ROUNDS`), as gcr-cleaner retries parent-image refusals; still refused,
   they are failures naming what holds them.
One failure does not stop the rest; a store that refuses every deletion (deletion
disabled) stops the sweep at once instead of hammering it. A manifest an immutable tag
holds (:class:`~kitgc.errors.ManifestImmutable`) is kept and recorded, not a failure: the
registry's owner chose to keep it. A manifest the store can delete only with its whole
repository (``DeleteOutcome.WITH_REPOSITORY``) is recorded apart, neither deleted nor failed.

A dry run never comes here: :func:`announce` logs what a real run would do and writes
nothing. The deleters are one-method protocols, in the style of OpenShift's image pruner.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from kitgc.errors import DeletionDisabled, HeldByAnother, KitGCError, ManifestImmutable
from kitgc.identity import KitKey, ManifestKey
from kitgc.model import DeletionFailure, ExecutionResult, KitDecision, Manifest, ManifestDecision, Plan
from kitgc.stores.base import DeleteOutcome, ManifestDeleter
from kitgc.workers import in_turn

Recheck = Callable[[], Awaitable[frozenset[ManifestKey]]]
RETRY_ROUNDS = 3  # rounds of retries for manifests held by another one


class KitDeleter(Protocol):
    def delete_kit(self, namespace: str, name: str) -> bool: ...


class DeletionOrder(Protocol):
    def deletion_batches(self, manifests: Sequence[Manifest]) -> list[list[Manifest]]: ...


@dataclass
class _Progress:
    deleted: list[ManifestKey] = field(default_factory=list)
    kits: list[KitKey] = field(default_factory=list)
    failed_kits: set[KitKey] = field(default_factory=set)
    failures: list[DeletionFailure] = field(default_factory=list)
    disabled: bool = False
    immutable: list[ManifestKey] = field(default_factory=list)
    with_repository: list[ManifestKey] = field(default_factory=list)
    held: dict[ManifestKey, str] = field(default_factory=dict)  # refused while another holds it: why


def announce(plan: Plan, log: Any = None) -> ExecutionResult:
    """A dry run: say what a real run would delete, and delete nothing."""
    log = log or structlog.get_logger("kitgc")
    for kd in plan.kit_deletions:
        log.info("would_delete_kit", kit=str(kd.kit.key), reason=kd.reason)
    for d in plan.manifest_deletions:
        m = d.manifest
        log.info("would_delete", repository=m.repository, digest=m.digest, tags=list(m.tags), reason=d.reason)
    return ExecutionResult()


async def execute(
    plan: Plan,
    manifests: ManifestDeleter,
    kits: KitDeleter,
    order: DeletionOrder,
    *,
    concurrency: int = 16,
    should_stop: Callable[[], bool] = lambda: False,
    log: Any = None,
    recheck: Recheck | None = None,
) -> ExecutionResult:
    log = log or structlog.get_logger("kitgc")
    done = _Progress()
    await _delete_kits(plan, kits, done, should_stop, log)
    todo = [d for d in plan.manifest_deletions if not done.failed_kits.intersection(d.kits)]
    for d in plan.manifest_deletions:
        if done.failed_kits.intersection(d.kits):
            log.warning("delete_skipped", repository=d.manifest.repository, digest=d.manifest.digest,
                        reason="its IntegrationKit could not be deleted")
    if recheck is not None and done.kits and todo:
        todo = await _still_garbage(todo, recheck, done, log)
    by_key = {d.manifest.key: d for d in todo}
    sem = asyncio.Semaphore(max(1, concurrency))
    batches = order.deletion_batches([d.manifest for d in todo])
    for batch in batches:
        await asyncio.gather(*(_delete_one(by_key[m.key], manifests, sem, done, should_stop, log) for m in batch))
    await _retry_held([m.key for batch in batches for m in batch], by_key, manifests, sem, done, should_stop, log)
    return ExecutionResult(
        manifests_deleted=tuple(done.deleted),
        kits_deleted=tuple(done.kits),
        failures=tuple(done.failures),
        deletion_disabled=done.disabled,
        immutable=tuple(done.immutable),
        with_repository=tuple(done.with_repository),
    )


async def _retry_held(planned: list[ManifestKey], by_key: dict[ManifestKey, ManifestDecision],
                      manifests: ManifestDeleter, sem: asyncio.Semaphore, done: _Progress,
                      should_stop: Callable[[], bool], log: Any) -> None:
    """Retry what another manifest held, in the plan's order, while a round makes progress."""
    for round_ in range(1, RETRY_ROUNDS + 1):
        waiting = [k for k in planned if k in done.held]
        if not waiting or done.disabled or should_stop():
            break
        log.info("delete_retry_round", round=round_, manifests=len(waiting))
        for key in waiting:
            del done.held[key]
        await asyncio.gather(*(_delete_one(by_key[k], manifests, sem, done, should_stop, log) for k in waiting))
        if len([k for k in waiting if k in done.held]) == len(waiting):
            break  # nothing moved: another round would be refused the same way
    for key in [k for k in planned if k in done.held]:
        why = done.held.pop(key)
        done.failures.append(DeletionFailure(str(key), f"still held by another manifest: {why}"))
        log.error("delete_failed", repository=key.repository, digest=key.digest, held_by=why,
                  error=f"still held by another manifest: {why}")


# Kit deletions in flight at once: a few, so that thousands of kits (a large estate's first
# run) do not take one API round trip each in turn, and few enough to stay a polite client
# of an API server that other controllers share (API Priority and Fairness answers 429 past that).
KIT_DELETE_CONCURRENCY = 4


async def _delete_kits(plan: Plan, kits: KitDeleter, done: _Progress, should_stop: Callable[[], bool],
                       log: Any) -> None:
    """Delete the plan's kits, a few at a time; the outcome is recorded in the plan's order."""
    outcomes: dict[KitKey, tuple[str, bool | Exception]] = {}

    async def one(kd: KitDecision) -> None:
        key = kd.kit.key
        if should_stop():  # asked before each deletion, as when they went one by one
            outcomes[key] = ("stopped", False)
            return
        try:
            outcomes[key] = ("done", await asyncio.to_thread(kits.delete_kit, key.namespace, key.name))
        except Exception as exc:  # one failure must not stop the rest
            outcomes[key] = ("failed", exc)

    await in_turn(plan.kit_deletions, KIT_DELETE_CONCURRENCY, one)
    for kd in plan.kit_deletions:
        key = kd.kit.key
        outcome, value = outcomes[key]
        if outcome == "stopped":
            done.failed_kits.add(key)
        elif isinstance(value, Exception):
            done.failed_kits.add(key)
            done.failures.append(DeletionFailure(f"IntegrationKit {key}", _message(value)))
            log.error("kit_delete_failed", kit=str(key), error=_message(value))
        else:
            done.kits.append(key)
            log.info("kit_deleted", kit=str(key), reason=kd.reason, already_gone=not value)


async def _still_garbage(todo: list[ManifestDecision], recheck: Recheck, done: _Progress,
                         log: Any) -> list[ManifestDecision]:
    """The manifests a fresh read of the cluster still lets go; none if it cannot be read."""
    try:
        still = await recheck()
    except Exception as exc:  # the reference picture is in doubt: keep every image
        done.failures.append(DeletionFailure("re-read of the cluster after deleting kits", _message(exc)))
        log.error("recheck_failed", error=_message(exc), manifests_kept=len(todo))
        still = frozenset()
    for d in todo:
        if d.manifest.key not in still:
            log.warning("delete_skipped", repository=d.manifest.repository, digest=d.manifest.digest,
                        reason="no longer garbage when the cluster was read again after deleting kits")
    return [d for d in todo if d.manifest.key in still]


async def _delete_one(d: ManifestDecision, manifests: ManifestDeleter, sem: asyncio.Semaphore, done: _Progress,
                      should_stop: Callable[[], bool], log: Any) -> None:
    m = d.manifest
    async with sem:
        if done.disabled or should_stop():
            return
        try:
            outcome = await manifests.delete_manifest(m)
        except DeletionDisabled as exc:
            if not done.disabled:
                done.disabled = True
                done.failures.append(DeletionFailure(str(m.key), _message(exc)))
                log.error("registry_deletion_disabled", repository=m.repository, error=_message(exc))
            return
        except ManifestImmutable as exc:
            done.immutable.append(m.key)
            log.warning("delete_refused_immutable", repository=m.repository, digest=m.digest, tags=list(m.tags),
                        error=_message(exc))
            return
        except HeldByAnother as exc:
            done.held[m.key] = _message(exc)
            log.info("delete_deferred", repository=m.repository, digest=m.digest, error=_message(exc))
            return
        except Exception as exc:
            done.failures.append(DeletionFailure(str(m.key), _message(exc)))
            log.error("delete_failed", repository=m.repository, digest=m.digest, error=_message(exc))
            return
    if outcome is DeleteOutcome.WITH_REPOSITORY:
        done.with_repository.append(m.key)
        log.info("delete_with_repository", repository=m.repository, digest=m.digest, tags=list(m.tags),
                 reason="the registry deletes it only with its whole repository")
        return
    done.deleted.append(m.key)
    log.info("deleted", repository=m.repository, digest=m.digest, tags=list(m.tags), reason=d.reason,
             already_gone=outcome is DeleteOutcome.ALREADY_GONE)


def _message(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    if not isinstance(exc, KitGCError):
        text = f"{type(exc).__name__}: {text}"
    return text.splitlines()[0]
