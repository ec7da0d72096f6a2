"""Read the body of every manifest the plan would delete, before anything is deleted.

The scan resolves tags HEAD first (:mod:`kitgc.stores.distribution`): an image manifest
that HEAD alone resolved is in the inventory with ``read=False`` — digest, media type and
size known, blobs and OCI ``subject`` not. That is all the planner needs for what stays,
and it keeps Docker Hub's pull rate limit (a manifest GET is a pull, a HEAD is not) for the
images that go. But an unread manifest may carry a ``subject``: it is then an attachment
(an SBOM, a signature) of another image and must follow that image's decision, which the
planner can only know from the body. So the rule is: a manifest with ``read=False`` is
never deleted before its body is read. :func:`read_before_deleting` enforces it by reading
the DELETE decisions' bodies and planning again until every DELETE decision is read;
:func:`unread_deletions` is the guard for whoever executes a plan.

What ``bytes_reclaimable`` means with HEAD-first scanning: every deleted manifest has been
read, so its own size and its blobs are known. The kept manifests of the repositories that
lose something are read too (``neighbours=True``): an older build of a kit shares its
dependency and base layers with the newer one that stays, and those layers must not count
as reclaimed. Where reads are metered (Docker Hub: every GET is a pull), nothing that stays
is read, and a layer shared with a kept image that only a HEAD resolved counts as
reclaimable: the number is then an upper bound, exact when no such layer exists.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol

import structlog

from kitgc.errors import RegistryError
from kitgc.identity import ManifestKey
from kitgc.model import Action, ClusterSnapshot, Inventory, Manifest, ManifestDecision, Plan, RepositoryProblem
from kitgc.stores.base import ManifestFetcher
from kitgc.sweep.planner import Planner

log = structlog.get_logger("kitgc.bodies")

# Reading can change the plan (an attachment found follows its image; a slot under
# MAX_DELETIONS freed goes to a manifest deferred so far, perhaps unread): a few rounds
# settle it in practice; after them, what is still unread holds its repository.
MAX_ROUNDS = 4


class _Fetcher(ManifestFetcher, Protocol):
    """What this module needs of a store: fetch by digest, and how many requests at once."""

    concurrency: int


def _neighbours(store: object, plan: Plan) -> list[Manifest]:
    """The kept, unread manifests of the repositories the plan deletes from, where reads are
    free: an older build shares layers with the newer one that stays, and only their bodies
    say which (bytes). None where reads are metered (Docker Hub: every GET is a pull)."""
    capabilities = getattr(store, "capabilities", None)
    if capabilities is None or capabilities.metered_reads:
        return []
    touched = {d.manifest.repository for d in plan.manifest_deletions}
    return [d.manifest for d in plan.manifests
            if d.manifest.repository in touched and not d.manifest.read and d.action is not Action.DELETE]


def unread_deletions(plan: Plan) -> list[ManifestDecision]:
    """The DELETE decisions whose manifest's body was not read: must be empty before executing."""
    return [d for d in plan.manifest_deletions if not d.manifest.read]


async def read_before_deleting(
    store: _Fetcher, planner: Planner, cluster: ClusterSnapshot, plan: Plan, *, neighbours: bool = False
) -> tuple[Planner, Plan]:
    """``(planner, plan)`` in which every DELETE decision's manifest has been read.

    Each round GETs the unread deletions by digest (the store verifies the body against the
    digest), puts them into the inventory with the tags the scan saw, and plans again with
    ``cluster``. A manifest gone meanwhile (404) leaves the inventory; one that cannot be
    read (any other error, a digest that does not verify) becomes a problem of its
    repository, which the planner then keeps whole. Should deletions still be unread after
    :data:`MAX_ROUNDS`, their repositories are held the same way (fail closed), so the plan
    returned never deletes an unread manifest. With ``neighbours``, the kept neighbours of
    the deletions (:func:`_neighbours`) are read in the same requests' wave, for exact bytes.
    """
    for round_ in range(1, MAX_ROUNDS + 1):
        unread = [d.manifest for d in unread_deletions(plan)]
        wanted = unread + (_neighbours(store, plan) if neighbours else [])
        if not unread and (not wanted or round_ > 1):
            return planner, plan
        inventory, bodies = await _read(store, planner.inventory, wanted)
        planner = replace(planner, inventory=inventory)
        if bodies is not None:  # nothing the planner decides by changed: the same plan, with the bodies
            return planner, replace(plan, manifests=tuple(
                replace(d, manifest=bodies.get(d.manifest.key, d.manifest)) for d in plan.manifests))
        plan = planner(cluster)
        log.debug("bodies_read", round=round_, manifests=len(unread),
                  still_unread=len(unread_deletions(plan)))
    while left := unread_deletions(plan):  # each pass holds at least one more repository: it ends
        repositories = sorted({d.manifest.repository for d in left})
        log.warning("bodies_not_settled", rounds=MAX_ROUNDS, repositories=len(repositories),
                    note="their repositories are kept whole this run")
        held = tuple(RepositoryProblem(r, f"manifests planned for deletion still unread after {MAX_ROUNDS} "
                                          "rounds of reading; kept this run") for r in repositories)
        planner = replace(planner, inventory=replace(planner.inventory,
                                                     problems=(*planner.inventory.problems, *held)))
        plan = planner(cluster)
    return planner, plan


def _same_for_the_planner(before: Manifest, after: Manifest) -> bool:
    """Whether the body tells the planner nothing the HEAD had not: no subject (an artifact
    type matters only with one: :func:`kitgc.attachments.attachment_of`), no children, the
    same media type; then planning again would decide the same."""
    return after.subject is None and not after.children and after.media_type == before.media_type


async def _read(store: _Fetcher, inventory: Inventory, unread: Sequence[Manifest]
                ) -> tuple[Inventory, dict[ManifestKey, Manifest] | None]:
    """``inventory`` with ``unread`` replaced by their bodies, dropped when gone, or held;
    and the bodies by key when every one was read and none changes a decision, else None."""
    limit = asyncio.Semaphore(max(1, store.concurrency))

    async def fetch(m: Manifest) -> Manifest | RegistryError | None:
        async with limit:
            try:
                return await store.fetch_manifest(m.repository, m.digest)
            except RegistryError as exc:
                return exc

    results = await asyncio.gather(*(fetch(m) for m in unread))
    replaced: dict[ManifestKey, Manifest | None] = {}
    problems: list[RepositoryProblem] = []
    for m, got in zip(unread, results, strict=True):
        if isinstance(got, RegistryError):
            problems.append(RepositoryProblem(m.repository, f"reading {m.digest} before deleting it: {got}"))
            continue  # stays unread; its repository is kept whole
        if got is None:
            log.debug("manifest gone before its body was read", repository=m.repository, digest=m.digest)
        elif got.digest != m.digest or got.repository != m.repository:  # the store answered for another
            problems.append(RepositoryProblem(m.repository, f"reading {m.digest} before deleting it: "
                                                            f"the store answered with {got.key}"))
            continue
        replaced[m.key] = None if got is None else replace(got, tags=m.tags, read=True)
    manifests = tuple(got for m in inventory.manifests if (got := replaced.get(m.key, m)) is not None)
    inventory = replace(inventory, manifests=manifests, problems=(*inventory.problems, *problems))
    before = {m.key: m for m in unread}
    settled = not problems and all(
        got is not None and _same_for_the_planner(before[key], got) for key, got in replaced.items())
    bodies = {key: got for key, got in replaced.items() if got is not None}
    return inventory, bodies if settled and len(bodies) == len(unread) else None
