"""The ``ghcr`` image store: GitHub Packages, read through the registry API v2, changed through REST.

ghcr.io has no ``_catalog`` and answers every v2 DELETE with ``405 UNSUPPORTED``
(REGISTRIES.md, row "GitHub (ghcr.io)"). What it offers instead is the REST API of
docs.github.com/rest/packages:

* listing: ``GET /orgs/{org}/packages?package_type=container`` (a user's packages under
  ``/users/{user}/…``; an owner that is no organization answers 404 there), paged with
  ``Link``. A package's name is the repository below the owner, and may contain ``/``
  (sent as ``%2F`` in paths): repository = ``{owner}/{package name}``;
* versions: ``GET …/packages/container/{name}/versions``; a version's ``name`` is the
  manifest digest, its tags are ``metadata.container.tags``, its ``id`` is what DELETE takes;
* ``DELETE …/versions/{id}`` removes the manifest and its tags, except the last tagged version
  of a package: ``400 "You cannot delete the last tagged version of a package. You must delete
  the package instead."`` That is :attr:`DeleteOutcome.WITH_REPOSITORY`: the run's repository
  step deletes the package (``DELETE …/packages/container/{name}``, restorable for 30 days)
  when everything in it went, otherwise the version stays and nothing was lost. The children of
  such an index are not deleted alone either (also WITH_REPOSITORY): a kept index must never
  point at a deleted child;
* the token is a classic PAT with ``read:packages`` and ``delete:packages``; GitHub tells its
  scopes in ``x-oauth-scopes`` on every authenticated answer.

Manifests are scanned through v2 (the planner needs bodies, children and referrers, which
REST does not give) and mapped to version ids; a tagged digest that one side shows and the
other does not is a :class:`~kitgc.model.RepositoryProblem`, so the repository is kept whole
rather than acted on from a picture the registry itself disagrees with.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import structlog

from kitgc.config import Settings
from kitgc.errors import DeletionDisabled, RegistryError
from kitgc.imageref import InvalidReference, validate_digest
from kitgc.model import Manifest, RepositoryProblem
from kitgc.scope import Scope
from kitgc.stores.base import Capabilities, DeleteOutcome, KnownRepositories, RepositoryListing, RepositoryScan
from kitgc.stores.distribution import DistributionStore
from kitgc.stores.vendors import close_all, merged_stats
from kitgc.stores.vendors.rest import RestClient, RestReply, api_token, vendor_error

log = structlog.get_logger("kitgc.store")

API = "GitHub Packages API"
DEFAULT_API_URL = "https://api.github.com"
HOSTS = ("ghcr.io",)
LAST_TAGGED = "last tagged version"  # from GitHub's 400 answer, quoted above
SCOPES_HINT = "the token must be a personal access token (classic) with read:packages and delete:packages"
PAGE = 100


@dataclass(frozen=True)
class PackageVersion:
    """One version of a container package: the manifest ``digest`` and its tags now."""

    id: int
    digest: str
    tags: tuple[str, ...]


def _package_version(what: str, item: Any) -> PackageVersion:
    """A version from the API's JSON, or a one-line error saying which field is wrong."""
    if not isinstance(item, dict):
        raise RegistryError(f"{what}: a version is not an object", status=200)
    vid, name = item.get("id"), item.get("name")
    if not isinstance(vid, int) or isinstance(vid, bool):
        raise RegistryError(f"{what}: a version without an integer \"id\"", status=200)
    try:
        digest = validate_digest(name if isinstance(name, str) else "")
    except InvalidReference:
        raise RegistryError(f"{what}: version {vid} has a \"name\" that is not a digest", status=200) from None
    metadata = item.get("metadata")
    container = metadata.get("container") if isinstance(metadata, dict) else None
    tags = container.get("tags") if isinstance(container, dict) else None
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise RegistryError(f"{what}: version {vid} has no metadata.container.tags list", status=200)
    return PackageVersion(vid, digest, tuple(sorted(tags)))


class GhcrStore:
    """An :class:`~kitgc.stores.base.ImageStore` over ghcr.io: v2 to read, REST to list and delete."""

    kind = "ghcr"
    capabilities = Capabilities(lists_repositories=True, deletes_manifests=True, deletes_repositories=True)

    def __init__(self, v2: DistributionStore, api: RestClient) -> None:
        self.v2 = v2
        self.api = api
        self.address = v2.address
        self.concurrency = v2.concurrency
        self._owner_base: dict[str, str] = {}  # owner -> "orgs/<owner>" or "users/<owner>"
        self._versions: dict[str, dict[str, PackageVersion]] = {}  # repository -> digest -> version
        self._deleted: dict[str, set[str]] = defaultdict(set)  # digests whose version went (or was gone)
        self._with_repository: dict[str, dict[str, tuple[str, ...]]] = defaultdict(dict)  # digest -> its tags
        self._parents: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))  # child -> indexes
        self._locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    @property
    def stats(self) -> Mapping[str, int]:
        """The v2 requests, and the API requests as ``api_<kind>``."""
        return merged_stats(self.v2, (self.api,))

    async def aclose(self) -> None:
        await close_all(self.v2, (self.api,))

    # --- paths -----------------------------------------------------------------------------

    async def _base(self, owner: str) -> str:
        if owner not in self._owner_base:
            await self._package_names(owner)
        return self._owner_base[owner]

    async def _package_path(self, repository: str) -> str:
        owner, _, name = repository.partition("/")
        if not name:
            raise RegistryError(f"{repository!r} is not <owner>/<package> as GitHub Packages names repositories")
        return f"{await self._base(owner)}/packages/container/{quote(name, safe='')}"

    # --- listing -----------------------------------------------------------------------------

    async def _package_names(self, owner: str) -> list[str]:
        """The owner's container packages; whether it is an organization or a user is learned here."""
        bases = [self._owner_base[owner]] if owner in self._owner_base else [f"orgs/{owner}", f"users/{owner}"]
        for base in bases:
            what = f"list container packages of {base}"
            try:
                items = await self.api.get_paged("packages", f"{base}/packages", what, paging="link",
                                                 params={"package_type": "container", "per_page": PAGE})
            except RegistryError as exc:
                if exc.status == 404 and base != bases[-1]:
                    continue  # not an organization: a user
                raise self._auth_hint(exc) from None
            self._owner_base[owner] = base
            names = [i.get("name") if isinstance(i, dict) else None for i in items]
            if not all(isinstance(n, str) and n for n in names):
                raise RegistryError(f"{what}: a package without a \"name\"", status=200)
            return [str(n) for n in names]
        raise AssertionError("unreachable")

    async def list_repositories(self, scope: Scope, known: KnownRepositories = ()) -> RepositoryListing:
        """The in-scope packages of every owner the organizations name (their first segment)."""
        owners = sorted({o.split("/", 1)[0] for o in scope.organizations if o})
        seen: set[str] = set()
        for owner in owners:
            seen.update(f"{owner}/{name}" for name in await self._package_names(owner))
        ours = {r for r in seen if r in scope}
        return RepositoryListing(tuple(sorted(ours)), len(seen - ours), source=API)

    async def _read_versions(self, repository: str) -> dict[str, PackageVersion] | None:
        """Every version of the package now (remembered for deletion); None when there is no package."""
        path = await self._package_path(repository)
        what = f"list versions of package {repository}"
        try:
            items = await self.api.get_paged("versions", f"{path}/versions", what, paging="link",
                                             params={"per_page": PAGE})
        except RegistryError as exc:
            if exc.status == 404:
                self._versions[repository] = {}
                return None
            raise self._auth_hint(exc) from None
        versions = {v.digest: v for v in (_package_version(what, i) for i in items)}
        self._versions[repository] = versions
        return versions

    # --- scanning ------------------------------------------------------------------------------

    async def scan_repository(self, repository: str) -> RepositoryScan:
        """The v2 scan, checked against the package's versions (ids remembered for deletion)."""
        scan = await self.v2.scan_repository(repository)
        for m in scan.manifests.values():
            for child in m.children:
                self._parents[repository][child].add(m.digest)
        try:
            versions = await self._read_versions(repository) or {}
        except RegistryError as exc:
            scan.problems.append(RepositoryProblem(repository, str(exc)))
            return scan
        for m in scan.manifests.values():
            version = versions.get(m.digest)
            if m.tags and version is None:
                scan.problems.append(RepositoryProblem(
                    repository, f"{m.digest} (tags {', '.join(m.tags)}) has no version in the {API}", m.tags[0]))
            elif version is not None and m.tags and set(version.tags) != set(m.tags):
                scan.problems.append(RepositoryProblem(
                    repository, f"the registry tags {m.digest} {', '.join(m.tags)}, the {API} "
                    f"{', '.join(version.tags) or 'nothing'}", m.tags[0]))
        for version in versions.values():
            if version.tags and version.digest not in scan.manifests:
                scan.problems.append(RepositoryProblem(
                    repository, f"version {version.id} ({version.digest}, tags {', '.join(version.tags)}) "
                    "is not seen on the registry", version.tags[0]))
        return scan

    async def fetch_manifest(self, repository: str, digest: str) -> Manifest | None:
        return await self.v2.fetch_manifest(repository, digest)

    # --- deleting --------------------------------------------------------------------------------

    def deletion_batches(self, manifests: Sequence[Manifest]) -> list[list[Manifest]]:
        return self.v2.deletion_batches(manifests)

    async def _version_of(self, manifest: Manifest) -> PackageVersion | None:
        """The version of ``manifest``: as scanned, else read afresh; None when GitHub has none."""
        version = self._versions.get(manifest.repository, {}).get(manifest.digest)
        if version is None:
            async with self._locks[manifest.repository]:
                version = self._versions.get(manifest.repository, {}).get(manifest.digest)
                if version is None:
                    version = ((await self._read_versions(manifest.repository)) or {}).get(manifest.digest)
        return version

    async def delete_manifest(self, manifest: Manifest) -> DeleteOutcome:
        """Delete the package version holding ``manifest`` (its tags go with it)."""
        repo, what = manifest.repository, f"DELETE {manifest.key}"
        if self._parents[repo].get(manifest.digest, set()) & set(self._with_repository[repo]):
            # Its index stays until the package goes: deleting the child alone would break it.
            self._with_repository[repo][manifest.digest] = manifest.tags
            log.info("ghcr_with_repository", repository=repo, digest=manifest.digest,
                     note="a child of an index that goes only with its package")
            return DeleteOutcome.WITH_REPOSITORY
        version = await self._version_of(manifest)
        if version is None:
            try:
                await self.v2.client.head_manifest(repo, manifest.digest)
            except RegistryError as exc:
                if exc.status == 404:
                    return DeleteOutcome.ALREADY_GONE
                raise
            raise RegistryError(f"{what}: the registry serves it but the {API} lists no version with this digest")
        path = f"{await self._package_path(repo)}/versions/{version.id}"
        reply = await self.api.delete("delete_version", path, f"{what} (version {version.id})")
        if reply.ok or reply.status == 404:
            self._deleted[repo].add(manifest.digest)
            log.debug("ghcr_version_deleted", repository=repo, digest=manifest.digest, version=version.id,
                      already_gone=reply.status == 404)
            return DeleteOutcome.DELETED if reply.ok else DeleteOutcome.ALREADY_GONE
        error = vendor_error(f"{what} (version {version.id})", reply)
        if reply.status == 400 and LAST_TAGGED in str(error):
            self._with_repository[repo][manifest.digest] = version.tags
            log.info("ghcr_last_tagged_version", repository=repo, digest=manifest.digest, version=version.id,
                     note="GitHub deletes it only with its package")
            return DeleteOutcome.WITH_REPOSITORY
        raise self._refusal(error, reply)

    async def delete_repository(self, repository: str) -> DeleteOutcome:
        """Delete the package, after reading its versions again: refused while any version is
        there that this run neither deleted nor was told goes only with the package (with the
        same tags as then), and refused for a package this run deleted nothing from."""
        what = f"DELETE package {repository}"
        if not self._deleted.get(repository) and not self._with_repository.get(repository):
            raise RegistryError(f"refusing {what}: nothing in it was deleted in this run")
        versions = await self._read_versions(repository)
        if versions is None:
            return DeleteOutcome.ALREADY_GONE
        going = self._with_repository.get(repository, {})
        left = sorted(v.digest for v in versions.values()
                      if v.digest not in going or not set(v.tags) <= set(going[v.digest]))
        if left:
            raise RegistryError(f"refusing {what}: it still holds {len(left)} version(s) this run did not delete "
                                f"(e.g. {left[0]})")
        reply = await self.api.delete("delete_package", await self._package_path(repository), what)
        if reply.status == 404:
            return DeleteOutcome.ALREADY_GONE
        if not reply.ok:
            raise self._refusal(vendor_error(what, reply), reply)
        for digest in going:
            self._deleted[repository].add(digest)
        return DeleteOutcome.DELETED

    def _refusal(self, error: RegistryError, reply: RestReply) -> RegistryError:
        """401, or 403 for a token whose scopes lack delete:packages: every deletion will be refused
        alike (:class:`DeletionDisabled` stops the sweep); any other 403 concerns this one."""
        scopes = reply.headers.get("x-oauth-scopes")
        lacks = scopes is not None and "delete:packages" not in {s.strip() for s in scopes.split(",")}
        if reply.status == 401 or (reply.status == 403 and lacks):
            return DeletionDisabled(f"{error} ({SCOPES_HINT})", status=reply.status)
        return self._auth_hint(error)

    @staticmethod
    def _auth_hint(error: RegistryError) -> RegistryError:
        if error.status in (401, 403):
            return RegistryError(f"{error} ({SCOPES_HINT})", status=error.status)
        return error

    def explain_refusal(self, error: RegistryError) -> str | None:
        if error.status in (401, 403):
            return SCOPES_HINT
        return self.v2.explain_refusal(error)

    # --- doctor ----------------------------------------------------------------------------------

    async def permission_checks(self) -> list[tuple[str, bool | None, str]]:
        """(check, ok, detail) for ``kitgc doctor``, from the scopes GitHub reports; deletes nothing.

        A fine-grained token or a GitHub App reports no ``x-oauth-scopes``: unknown (None).
        """
        reply = await self.api.request("user", "GET", "user", f"GET {API} /user")
        if not reply.ok:
            error = self._auth_hint(vendor_error(f"GET {API} /user", reply))
            return [("github_token", False, str(error))]
        header = reply.headers.get("x-oauth-scopes")
        if header is None:
            return [("github_token", True, "the token works"),
                    ("github_delete_packages", None, "the token reports no scopes (fine-grained token?)")]
        scopes = {s.strip() for s in header.split(",") if s.strip()}
        return [("github_token", True, f"scopes: {', '.join(sorted(scopes)) or 'none'}"),
                ("github_read_packages", "read:packages" in scopes or "write:packages" in scopes,
                 "read:packages lists packages and versions"),
                ("github_delete_packages", "delete:packages" in scopes, "delete:packages deletes versions")]


def open_ghcr(settings: Settings, v2: DistributionStore) -> GhcrStore:
    """The ghcr store over ``v2``; a ConfigError (exit 2) when no token for the API can be found."""
    token = api_token(settings, (v2.address, *HOSTS), API)
    api = RestClient(settings.registry_api_url or DEFAULT_API_URL, name=API, ca_file=settings.registry_ca_file,
                     timeout=settings.registry_timeout.total_seconds(), concurrency=settings.concurrency,
                     headers={"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"})
    api.authorization = f"Bearer {token}"
    return GhcrStore(v2, api)


__all__ = ["GhcrStore", "PackageVersion", "open_ghcr"]
