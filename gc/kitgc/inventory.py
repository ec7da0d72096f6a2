"""Scan an image store into an :class:`~kitgc.model.Inventory` of in-scope manifests.

Only the kit repositories of the configured organizations are read; whatever else the
store lists is counted and never touched. How a store lists and reads a repository is its
own business (:mod:`kitgc.stores`); this module bounds how many repositories are in flight
(memory), reports progress, and adds the index children earlier runs remembered
(:mod:`kitgc.pending`), which no listing can show any more.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace

import structlog

from kitgc import pending
from kitgc.errors import RegistryError
from kitgc.identity import ManifestKey
from kitgc.model import Inventory, Manifest, RepositoryProblem
from kitgc.scope import Scope
from kitgc.stores.base import ImageStore, KnownRepositories, ManifestFetcher
from kitgc.workers import in_turn

log = structlog.get_logger("kitgc.inventory")

Progress = Callable[[int, int], None]


async def scan(
    store: ImageStore,
    scope: Scope | tuple[str, ...],
    *,
    known_repositories: KnownRepositories = (),
    progress: Progress | None = None,
) -> Inventory:
    """Read every in-scope repository (concurrently; the store bounds the requests)."""
    listing = await store.list_repositories(Scope.of(scope), known_repositories)
    repositories = listing.repositories
    total, done = len(repositories), 0
    manifests_found: list[Manifest] = []
    problems_found: list[RepositoryProblem] = []
    units_found: list[tuple[str, tuple[ManifestKey, ...]]] = []

    async def one(repository: str) -> None:
        nonlocal done
        s = await store.scan_repository(repository)
        manifests_found.extend(s.manifests.values())
        problems_found.extend(s.problems)
        units_found.extend((name, tuple(ManifestKey(s.repository, d) for d in digests)) for name, digests in s.units)
        done += 1
        if progress is not None:
            progress(done, total)

    await in_turn(repositories, min(total, store.concurrency), one)  # repositories in flight: bounds memory
    manifests = sorted(manifests_found, key=lambda m: (m.repository, m.digest))
    problems = sorted(problems_found, key=lambda p: (p.repository, p.tag or "", p.message))
    units = tuple(units_found)
    log.debug("registry scanned", repositories=total, manifests=len(manifests), problems=len(problems),
              out_of_scope=listing.out_of_scope, listed_from=listing.source)
    return Inventory(
        registry=store.address, repositories=tuple(repositories), manifests=tuple(manifests),
        problems=tuple(problems), out_of_scope=listing.out_of_scope, units=units,
    )


async def include_remembered(
    store: ManifestFetcher, inventory: Inventory, remembered: pending.Pending, scope: Scope | tuple[str, ...]
) -> tuple[Inventory, pending.Pending]:
    """Add the remembered children the scan cannot see; (inventory, what is still tracked).

    A child that is gone is forgotten; one that cannot be read is a problem of its
    repository (which then keeps everything, as for any read problem) and stays tracked.
    """
    known = {m.key for m in inventory.manifests}
    scope = Scope.of(scope)
    tracked: pending.Pending = {r: set(ds) for r, ds in remembered.items()}
    level = sorted(ManifestKey(r, d) for r, ds in remembered.items() for d in ds
                   if r in scope and ManifestKey(r, d) not in known)
    added: list[Manifest] = []
    problems: list[RepositoryProblem] = []
    for _ in range(pending.MAX_DEPTH):
        if not level:
            break
        results = await asyncio.gather(*(_fetch(store, key) for key in level))
        known.update(level)
        following: list[ManifestKey] = []
        for key, got in zip(level, results, strict=True):
            if got is None:
                tracked.get(key.repository, set()).discard(key.digest)
            elif isinstance(got, RegistryError):
                problems.append(RepositoryProblem(key.repository, f"remembered child {key.digest}: {got}"))
            else:
                added.append(got)
                following += [key.child(c) for c in got.children if key.child(c) not in known]
                tracked.setdefault(key.repository, set()).update(got.children)
        level = sorted(set(following))
    tracked = {r: ds for r, ds in tracked.items() if ds}
    if added or problems:
        log.info("pending_children_included", manifests=len(added), problems=len(problems))
    manifests = sorted((*inventory.manifests, *added), key=lambda m: (m.repository, m.digest))
    return replace(inventory, manifests=tuple(manifests), problems=(*inventory.problems, *problems)), tracked


async def _fetch(store: ManifestFetcher, key: ManifestKey) -> Manifest | RegistryError | None:
    try:
        return await store.fetch_manifest(key.repository, key.digest)
    except RegistryError as exc:
        return exc
