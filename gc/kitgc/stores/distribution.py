"""The ``distribution`` image store: the registry HTTP API v2 as Distribution serves it.

Listing is the catalog (``/v2/_catalog``); a registry that refuses it (Docker Hub, GHCR,
Harbor for non-admins) is scanned through the repositories the cluster's kits name, which
is all we could ever clean there. Tags are resolved "HEAD first": a HEAD gives the digest
(``Docker-Content-Digest``), the media type and the size, and costs nothing against Docker
Hub's pull rate limit, where every GET of a manifest counts as a pull. Only what needs a
body is fetched by GET (digest verified against the body): indexes (their children must be
known, so a kept index protects them), tags whose HEAD gave no usable digest or an unknown
media type, index children and OCI referrers. An image resolved by HEAD alone is a
:class:`~kitgc.model.Manifest` with ``read=False`` (blobs and ``subject`` unknown); its body
is read before it may be deleted (:mod:`kitgc.bodies`, through :meth:`fetch_manifest`).
Anything that cannot be read becomes a :class:`~kitgc.model.RepositoryProblem` (the planner
keeps that repository whole) instead of stopping the scan.

Deletion is ``DELETE /v2/<name>/manifests/<digest>``, which removes every tag on the
digest; indexes go before their children (a kept index must never point at a deleted
child). What a refusal means is read from its error code by :mod:`.v2delete`: tags first
where a tagged digest is refused, a child held by its parent retried after the rest, an
immutable tag kept, ``405 UNSUPPORTED`` = deletion disabled (with the hint for the kind).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import structlog

from kitgc.errors import RegistryError
from kitgc.model import Manifest, RepositoryProblem
from kitgc.registry.client import FetchedManifest, HeadResult, RegistryClient
from kitgc.registry.mediatypes import IMAGE_TYPES
from kitgc.scope import Scope
from kitgc.stores.base import Capabilities, DeleteOutcome, KnownRepositories, RepositoryListing, RepositoryScan
from kitgc.stores.order import deletion_layers
from kitgc.stores.v2delete import V2Deleter

log = structlog.get_logger("kitgc.store")

# Answers that mean "this registry does not let us list it", as opposed to "it is broken".
_CATALOG_REFUSED_STATUS = frozenset({401, 403, 404, 405})
_CATALOG_REFUSED_CODES = frozenset({"UNSUPPORTED", "DENIED", "UNAUTHORIZED"})
MAX_REFERRER_DEPTH = 4


def _digest(found: FetchedManifest | HeadResult) -> str:
    digest = found.digest
    assert digest is not None  # _resolve returns a HeadResult only with a digest
    return digest


def _manifest(repository: str, fetched: FetchedManifest, tags: tuple[str, ...]) -> Manifest:
    return Manifest(
        repository=repository, digest=fetched.digest, media_type=fetched.media_type, tags=tags,
        children=fetched.children, blobs=fetched.blobs, size=len(fetched.body),
        subject=fetched.subject, artifact_type=fetched.artifact_type,
    )


class DistributionStore:
    """An :class:`~kitgc.stores.base.ImageStore` over one registry's v2 API."""

    capabilities = Capabilities(lists_repositories=True, deletes_manifests=True)

    def __init__(self, client: RegistryClient, kind: str = "distribution") -> None:
        self.kind = kind  # the kind chosen (REGISTRY_KIND or auto); deletion hints follow it
        self.client = client
        self.address = client.address
        # Repositories (and bodies) in flight: enough to keep the adaptive limit busy at its ceiling.
        self.concurrency = client.limit.ceiling
        self.referrers_api: bool | None = None  # unknown until the first answer
        self.deleter = V2Deleter(client, kind)
        self._probe = asyncio.Lock()

    @property
    def stats(self) -> Mapping[str, int]:
        return self.client.stats

    def concurrency_summary(self) -> dict[str, int]:
        """How the requests in flight adapted during the run (logged once the scan is done)."""
        return self.client.limit.summary()

    async def __aenter__(self) -> DistributionStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.client.aclose()

    # --- listing -----------------------------------------------------------------------

    async def list_repositories(self, scope: Scope, known: KnownRepositories = ()) -> RepositoryListing:
        """In-scope repositories from the catalog, or the cluster's kit repositories if refused.

        A refused catalog with nothing to fall back on is an error: a run that silently
        scans nothing would look healthy while collecting nothing (wrong credentials then
        show as unreadable repositories).
        """
        try:
            names = await self.client.catalog()
        except RegistryError as exc:
            if exc.status not in _CATALOG_REFUSED_STATUS and exc.code not in _CATALOG_REFUSED_CODES:
                raise
            names_known = known if isinstance(known, tuple) else await known()
            fallback = tuple(sorted({r for r in names_known if r in scope}))
            if not fallback:
                raise RegistryError(
                    f"the registry does not let us list its repositories ({exc}) and the cluster names no kit "
                    "repository to scan instead (check REGISTRY_AUTH_FILE)", status=exc.status, code=exc.code,
                ) from None
            log.warning("registry catalog unavailable, scanning the repositories the cluster names",
                        error=str(exc), repositories=len(fallback))
            return RepositoryListing(fallback, 0, source="cluster kits")
        ours = {n for n in names if n in scope}
        return RepositoryListing(tuple(sorted(ours)), len(set(names) - ours))

    # --- scanning ----------------------------------------------------------------------

    async def scan_repository(self, repository: str) -> RepositoryScan:
        """All manifests of one repository: tags resolved HEAD first, index children level by level."""
        scan = RepositoryScan(repository)
        try:
            tags = sorted(set(await self.client.tags(repository)))
        except RegistryError as exc:
            if exc.status == 404 and exc.code in (None, "NAME_UNKNOWN"):
                log.debug("repository not found", repository=repository)  # nothing there to clean
            else:
                scan.problems.append(RepositoryProblem(repository, str(exc)))
            return scan
        results = await asyncio.gather(*(self._resolve(scan, tag) for tag in tags))
        by_digest: dict[str, tuple[list[FetchedManifest | HeadResult], list[str]]] = {}
        for tag, found in zip(tags, results, strict=True):
            if found is not None:
                answers, digest_tags = by_digest.setdefault(_digest(found), ([], []))
                answers.append(found)
                digest_tags.append(tag)
        pending: set[str] = set()
        for digest, (answers, digest_tags) in by_digest.items():
            # A body read under any of its tags wins over HEAD answers for the others.
            fetched = next((a for a in answers if isinstance(a, FetchedManifest)), None)
            tags_of = tuple(sorted(digest_tags))
            if fetched is not None:
                scan.manifests[digest] = _manifest(repository, fetched, tags_of)
                pending.update(fetched.children)
            else:
                head = answers[0]
                assert isinstance(head, HeadResult)
                scan.manifests[digest] = Manifest(repository=repository, digest=digest,
                                                  media_type=head.media_type, tags=tags_of,
                                                  size=head.size, read=False)
        del by_digest, results  # bodies are not needed any more
        tried = set(scan.manifests)
        while pending := pending - tried:  # nested indexes: one level per round
            level = sorted(pending)
            tried |= pending
            children = await asyncio.gather(*(self._get(scan, d, None) for d in level))
            pending = set()
            for digest, fetched in zip(level, children, strict=True):
                if fetched is not None:
                    scan.manifests[digest] = _manifest(repository, fetched, ())
                    pending.update(fetched.children)
        await self._add_referrers(scan)
        return scan

    async def _resolve(self, scan: RepositoryScan, tag: str) -> FetchedManifest | HeadResult | None:
        """What ``tag`` names: a HEAD answer when that is enough, else the body (GET).

        HEAD is enough for an image manifest of a known type whose digest came back: the
        planner needs its body only to delete it, and reads it then. An index needs its
        children now; a missing or malformed digest header, or a media type we do not know
        (``application/json``, schema1, nothing), is settled by the GET, which verifies the
        body and refuses what it cannot parse. A HEAD refused for any reason other than 404
        is retried as a GET (some registries and proxies do not serve HEAD), whose answer
        then counts.
        """
        try:
            head = await self.client.head_manifest(scan.repository, tag)
        except RegistryError as exc:
            if exc.status == 404:
                log.debug("manifest gone between listing and reading", repository=scan.repository, reference=tag)
                return None
            log.debug("HEAD refused, reading the body instead", repository=scan.repository, reference=tag,
                      error=str(exc))
            return await self._get(scan, tag, tag)
        if head.digest is not None and head.media_type in IMAGE_TYPES:
            return head
        return await self._get(scan, tag, tag)

    async def _add_referrers(self, scan: RepositoryScan) -> None:
        """Untagged OCI 1.1 referrers, found through the referrers API where the registry has it.

        The first answer decides for the whole registry: a registry without the API (it
        answers 404 for the path, as Distribution 2.8 does) costs one request per run. The
        referrers fallback tag and cosign's tags need nothing here: they are tags.
        """
        todo = sorted(scan.manifests)
        for _ in range(MAX_REFERRER_DEPTH):  # referrers of referrers (a signature of an SBOM)
            if not todo or not await self._has_referrers_api(scan, todo[0]):
                return
            answers = await asyncio.gather(*(self._referrers_of(scan, d) for d in todo))
            found = sorted({r for listed in answers for r in listed} - set(scan.manifests))
            fetched = await asyncio.gather(*(self._get(scan, d, None) for d in found))
            todo = []
            for digest, got in zip(found, fetched, strict=True):
                if got is not None:
                    scan.manifests[digest] = _manifest(scan.repository, got, ())
                    todo.append(digest)

    async def _has_referrers_api(self, scan: RepositoryScan, digest: str) -> bool:
        async with self._probe:
            if self.referrers_api is None:
                try:
                    self.referrers_api = await self.client.referrers(scan.repository, digest) is not None
                except RegistryError as exc:
                    scan.problems.append(RepositoryProblem(scan.repository, str(exc)))
                    return False
                log.info("referrers_api", supported=self.referrers_api, registry=self.address)
        return self.referrers_api

    async def _referrers_of(self, scan: RepositoryScan, digest: str) -> set[str]:
        try:
            listed = await self.client.referrers(scan.repository, digest)
        except RegistryError as exc:
            scan.problems.append(RepositoryProblem(scan.repository, str(exc)))
            return set()
        return {r.digest for r in listed or ()}

    async def _get(self, scan: RepositoryScan, reference: str, tag: str | None) -> FetchedManifest | None:
        """GET one manifest; a 404 means it vanished meanwhile, other failures are problems."""
        try:
            return await self.client.get_manifest(scan.repository, reference)
        except RegistryError as exc:
            if exc.status == 404:
                log.debug("manifest gone between listing and reading", repository=scan.repository,
                          reference=reference)
                return None
            scan.problems.append(RepositoryProblem(scan.repository, str(exc), tag))
            return None

    async def fetch_manifest(self, repository: str, digest: str) -> Manifest | None:
        """The manifest at ``digest``, its body read and its digest verified (``read=True``,
        no tags: the caller knows them); None when it is gone (404)."""
        try:
            fetched = await self.client.get_manifest(repository, digest)
        except RegistryError as exc:
            if exc.status == 404:
                return None
            raise
        return _manifest(repository, fetched, ())

    # --- deleting ----------------------------------------------------------------------

    def deletion_batches(self, manifests: Sequence[Manifest]) -> list[list[Manifest]]:
        """Indexes before what they list, attachments before their image (:mod:`.order`)."""
        return deletion_layers(manifests)

    async def delete_manifest(self, manifest: Manifest) -> DeleteOutcome:
        """Delete by digest, adapting to the registry's refusals (:mod:`.v2delete`)."""
        return await self.deleter.delete_manifest(manifest)

    def explain_refusal(self, error: RegistryError) -> str | None:
        return self.deleter.explain_refusal(error)
