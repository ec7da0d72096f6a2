"""Scan the registry into an :class:`~kitgc.model.Inventory` of in-scope manifests.

Only ``<organization>/camel-k-kit-*`` repositories are read; everything else in the catalog
is counted and never touched. Every tag is resolved by a GET whose digest is verified
against the body (a HEAD would trust the registry's word for the digest and would not give
the children or blob sizes); every index child is fetched too, so a protected index can
protect its children. Anything that cannot be read becomes a :class:`RepositoryProblem`
instead of an exception: the planner then keeps the whole repository, and the rest of the
registry is still scanned. Manifest bodies are dropped as soon as they are parsed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from kitgc.errors import RegistryError
from kitgc.model import Inventory, Manifest, RepositoryProblem
from kitgc.registry.client import FetchedManifest, RegistryClient
from kitgc.scope import in_scope

log = structlog.get_logger()

Progress = Callable[[int, int], None]

# Answers that mean "this registry does not let us list it", as opposed to "it is broken".
_CATALOG_REFUSED_STATUS = frozenset({401, 403, 404, 405})
_CATALOG_REFUSED_CODES = frozenset({"UNSUPPORTED", "DENIED", "UNAUTHORIZED"})


@dataclass
class _RepoScan:
    repository: str
    manifests: dict[str, Manifest] = field(default_factory=dict)
    problems: list[RepositoryProblem] = field(default_factory=list)


def _gone(exc: RegistryError) -> bool:
    return exc.status == 404


Known = tuple[str, ...] | Callable[[], Awaitable[tuple[str, ...]]]


async def list_repositories(
    client: RegistryClient, organizations: tuple[str, ...], known_repositories: Known = ()
) -> tuple[list[str], int]:
    """(sorted in-scope repositories, number of catalog entries out of scope).

    Registries that do not offer the catalog to us (Docker Hub, GHCR, Harbor for non-admins)
    fall back to the repositories the cluster names (``known_repositories``, a tuple or an
    async callable asked only then); that is all we could ever clean there. A refused catalog
    with nothing to fall back on is an error: a run that silently scans nothing would look
    healthy while collecting nothing (wrong credentials then show as unreadable repositories).
    """
    try:
        names = await client.catalog()
    except RegistryError as exc:
        if exc.status not in _CATALOG_REFUSED_STATUS and exc.code not in _CATALOG_REFUSED_CODES:
            raise
        known = known_repositories if isinstance(known_repositories, tuple) else await known_repositories()
        fallback = sorted({r for r in known if in_scope(r, organizations)})
        if not fallback:
            raise RegistryError(
                f"the registry does not let us list its repositories ({exc}) and the cluster names no kit "
                "repository to scan instead (check REGISTRY_AUTH_FILE)", status=exc.status, code=exc.code,
            ) from None
        log.warning(
            "registry catalog unavailable, scanning the repositories the cluster names",
            error=str(exc), repositories=len(fallback),
        )
        return fallback, 0
    ours = {n for n in names if in_scope(n, organizations)}
    return sorted(ours), len(set(names) - ours)


async def _fetch(
    client: RegistryClient, scan: _RepoScan, reference: str, tag: str | None
) -> FetchedManifest | None:
    """GET one manifest; a 404 means it vanished meanwhile, other failures are problems."""
    try:
        return await client.get_manifest(scan.repository, reference)
    except RegistryError as exc:
        if _gone(exc):
            log.debug("manifest gone between listing and reading", repository=scan.repository,
                      reference=reference)
            return None
        scan.problems.append(RepositoryProblem(scan.repository, str(exc), tag))
        return None


def _manifest(repository: str, fetched: FetchedManifest, tags: tuple[str, ...]) -> Manifest:
    return Manifest(
        repository=repository, digest=fetched.digest, media_type=fetched.media_type, tags=tags,
        children=fetched.children, blobs=fetched.blobs, size=len(fetched.body),
    )


async def scan_repository(client: RegistryClient, repository: str) -> _RepoScan:
    """All manifests of one repository: tagged ones, then index children level by level."""
    scan = _RepoScan(repository)
    try:
        tags = sorted(set(await client.tags(repository)))
    except RegistryError as exc:
        if exc.status == 404 and exc.code in (None, "NAME_UNKNOWN"):
            log.debug("repository not found", repository=repository)  # nothing there to clean
        else:
            scan.problems.append(RepositoryProblem(repository, str(exc)))
        return scan
    results = await asyncio.gather(*(_fetch(client, scan, tag, tag) for tag in tags))
    by_digest: dict[str, tuple[FetchedManifest, list[str]]] = {}
    for tag, fetched in zip(tags, results, strict=True):
        if fetched is not None:
            by_digest.setdefault(fetched.digest, (fetched, []))[1].append(tag)
    pending: set[str] = set()
    for digest, (fetched, digest_tags) in by_digest.items():
        scan.manifests[digest] = _manifest(repository, fetched, tuple(sorted(digest_tags)))
        pending.update(fetched.children)
    del by_digest, results  # bodies are not needed any more
    tried = set(scan.manifests)
    while pending := pending - tried:  # nested indexes: one level per round
        level = sorted(pending)
        tried |= pending
        children = await asyncio.gather(*(_fetch(client, scan, d, None) for d in level))
        pending = set()
        for digest, fetched in zip(level, children, strict=True):
            if fetched is not None:
                scan.manifests[digest] = _manifest(repository, fetched, ())
                pending.update(fetched.children)
    return scan


async def scan(
    client: RegistryClient,
    organizations: tuple[str, ...],
    *,
    known_repositories: Known = (),
    progress: Progress | None = None,
) -> Inventory:
    """Read every in-scope repository (concurrently; the client bounds the requests)."""
    repositories, out_of_scope = await list_repositories(client, organizations, known_repositories)
    total, done = len(repositories), 0
    limit = asyncio.Semaphore(max(1, client.concurrency))  # repositories in flight: bounds memory

    async def one(repository: str) -> _RepoScan:
        nonlocal done
        async with limit:
            result = await scan_repository(client, repository)
        done += 1
        if progress is not None:
            progress(done, total)
        return result

    scans = await asyncio.gather(*(one(r) for r in repositories))
    manifests = sorted((m for s in scans for m in s.manifests.values()), key=lambda m: (m.repository, m.digest))
    problems = sorted(
        (p for s in scans for p in s.problems), key=lambda p: (p.repository, p.tag or "", p.message)
    )
    log.debug("registry scanned", repositories=total, manifests=len(manifests), problems=len(problems),
             out_of_scope=out_of_scope)
    return Inventory(
        registry=client.address, repositories=tuple(repositories), manifests=tuple(manifests),
        problems=tuple(problems), out_of_scope=out_of_scope,
    )
