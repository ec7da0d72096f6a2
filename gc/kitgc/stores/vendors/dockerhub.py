"""The ``dockerhub`` image store: Docker Hub, read through v2, tags and repositories deleted through the Hub API.

Docker Hub has no ``_catalog`` and, depending on the source, answers a v2 DELETE by digest
with ``405 UNSUPPORTED`` (docker/hub-feedback#1759, #2360) or accepts it only for an
untagged manifest (``403 DENIED`` while tagged; current docs). Both are handled
(REGISTRIES.md, row "Docker Hub", and "What a collector must do"):

* listing: ``GET /v2/namespaces/{ns}/repositories`` of hub.docker.com, paged by ``next``;
  repository = ``{ns}/{name}``;
* authentication: ``POST /v2/auth/token`` (``identifier`` + ``secret``: the user name and a
  personal access token) gives a JWT used as ``Bearer`` on the Hub API; the deprecated
  ``POST /v2/users/login`` is the fallback where that route is missing. A JWT refused
  mid-run is replaced once;
* scanning is v2's, HEAD first: every manifest GET counts against the pull rate limit, so
  only what must be read (indexes, and what is about to be deleted) is fetched;
* deleting one manifest: each of its tags that a HEAD, just before, shows still naming this
  digest is deleted with ``DELETE /v2/repositories/{ns}/{repo}/tags/{tag}/`` (a tag moved
  meanwhile to another manifest is left alone); then the untagged manifest is deleted on v2
  by digest. Where v2 refuses (``405 UNSUPPORTED``, ``403 DENIED``) and the Hub shows no tag
  naming the digest any more, the outcome is DELETED, logged as ``dockerhub_untagged_only``:
  the manifest is untagged, so no client can find it by name, nothing this collector could
  do removes it, and it goes when its repository is deleted. A tag that still names it
  (pushed meanwhile) is a failure for that manifest instead;
* deleting a repository: ``DELETE /v2/repositories/{ns}/{repo}/``, only after the Hub's tag
  list of it is read again and found empty.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from urllib.parse import quote

import structlog

from kitgc.config import Settings
from kitgc.errors import DeletionDisabled, RegistryError
from kitgc.model import Manifest
from kitgc.scope import Scope
from kitgc.stores.base import Capabilities, DeleteOutcome, KnownRepositories, RepositoryListing, RepositoryScan
from kitgc.stores.distribution import DistributionStore
from kitgc.stores.vendors import close_all, merged_stats
from kitgc.stores.vendors.rest import RestClient, RestReply, api_token, registry_login, vendor_error

log = structlog.get_logger("kitgc.store")

API = "Docker Hub API"
DEFAULT_API_URL = "https://hub.docker.com"
HOSTS = ("docker.io", "index.docker.io", "registry-1.docker.io")
TOKEN_HINT = "the Docker Hub personal access token needs the Read, Write, Delete scope"
PAGE = 100
_V2_REFUSALS = frozenset({(405, None), (405, "UNSUPPORTED"), (403, "DENIED"), (403, None)})


def _split(repository: str) -> tuple[str, str]:
    namespace, _, name = repository.partition("/")
    if not namespace or not name or "/" in name:
        raise RegistryError(f"{repository!r} is not <namespace>/<repository> as Docker Hub names repositories")
    return namespace, name


class DockerHubStore:
    """An :class:`~kitgc.stores.base.ImageStore` over Docker Hub: v2 to read, the Hub API to change."""

    kind = "dockerhub"
    capabilities = Capabilities(lists_repositories=True, deletes_manifests=True, deletes_repositories=True,
                                untags_first=True, metered_reads=True)

    def __init__(self, v2: DistributionStore, api: RestClient, *, token: str, username: str | None = None) -> None:
        self.v2 = v2
        self.api = api
        self.address = v2.address
        self.concurrency = v2.concurrency
        self._token = token  # the PAT; only ever sent in the login body
        self._username = username
        self._login_lock = asyncio.Lock()
        self._touched: set[str] = set()  # repositories this run deleted something in

    @property
    def stats(self) -> Mapping[str, int]:
        """The v2 requests, and the API requests as ``api_<kind>``."""
        return merged_stats(self.v2, (self.api,))

    async def aclose(self) -> None:
        await close_all(self.v2, (self.api,))

    # --- authentication --------------------------------------------------------------------

    async def _login(self, namespace: str, refused: str | None = None) -> None:
        """Get a JWT (once; again when ``refused``, the JWT that was just refused, is still current)."""
        async with self._login_lock:
            if self.api.authorization is not None and self.api.authorization != refused:
                return
            username = self._username or namespace
            what = f"{API} login as {username}"
            try:
                doc = await self.api.post_json("login", "v2/auth/token",
                                               {"identifier": username, "secret": self._token}, what)
                key = "access_token"
            except RegistryError as exc:
                if exc.status not in (404, 405):
                    raise RegistryError(f"{exc} ({TOKEN_HINT}; the user name comes from REGISTRY_AUTH_FILE, "
                                        "else the namespace)", status=exc.status) from None
                doc = await self.api.post_json("login", "v2/users/login",
                                               {"username": username, "password": self._token}, what)
                key = "token"
            jwt = doc.get(key) if isinstance(doc, dict) else None
            if not isinstance(jwt, str) or not jwt or any(c.isspace() for c in jwt):
                raise RegistryError(f"{what}: the answer has no {key!r}", status=200)
            self.api.authorization = f"Bearer {jwt}"

    async def _authorized(self, namespace: str, call: Callable[[], Awaitable[RestReply]]) -> RestReply:
        """``call()`` with a JWT; a 401 (the JWT expired mid-run) gets one new JWT and one more try."""
        await self._login(namespace)
        used = self.api.authorization
        reply = await call()
        if reply.status == 401:
            await self._login(namespace, refused=used)
            reply = await call()
        return reply

    async def _pages(self, namespace: str, path: str, what: str) -> list[object] | None:
        """Every ``results`` item of a paged Hub list; None when the list is not there (404)."""
        await self._login(namespace)
        used = self.api.authorization
        for attempt in (1, 2):
            try:
                return await self.api.get_paged("list", path, what, paging="next", params={"page_size": PAGE})
            except RegistryError as exc:
                if exc.status == 404:
                    return None
                if exc.status != 401 or attempt == 2:
                    raise self._hinted(exc) from None
                await self._login(namespace, refused=used)
        raise AssertionError("unreachable")

    # --- listing and scanning -----------------------------------------------------------------

    async def list_repositories(self, scope: Scope, known: KnownRepositories = ()) -> RepositoryListing:
        """The in-scope repositories of every namespace the organizations name (first segment)."""
        seen: set[str] = set()
        for ns in sorted({o.split("/", 1)[0] for o in scope.organizations if o}):
            what = f"list repositories of {ns}"
            items = await self._pages(ns, f"v2/namespaces/{quote(ns, safe='')}/repositories", what)
            if items is None:
                raise RegistryError(f"{what}: HTTP 404: no such Docker Hub namespace", status=404)
            for item in items:
                name = item.get("name") if isinstance(item, dict) else None
                if not isinstance(name, str) or not name:
                    raise RegistryError(f"{what}: a repository without a \"name\"", status=200)
                seen.add(f"{ns}/{name}")
        ours = {r for r in seen if r in scope}
        return RepositoryListing(tuple(sorted(ours)), len(seen - ours), source=API)

    async def scan_repository(self, repository: str) -> RepositoryScan:
        return await self.v2.scan_repository(repository)

    async def fetch_manifest(self, repository: str, digest: str) -> Manifest | None:
        return await self.v2.fetch_manifest(repository, digest)

    async def hub_tags(self, repository: str) -> dict[str, str] | None:
        """``{tag: digest}`` as the Hub lists them now; None when the repository is not there."""
        ns, name = _split(repository)
        what = f"list tags of {repository}"
        items = await self._pages(ns, f"v2/namespaces/{quote(ns, safe='')}/repositories/{quote(name, safe='')}"
                                      "/tags", what)
        if items is None:
            return None
        tags: dict[str, str] = {}
        for item in items:
            tag = item.get("name") if isinstance(item, dict) else None
            digest = item.get("digest") if isinstance(item, dict) else None
            if not isinstance(tag, str) or not tag:
                raise RegistryError(f"{what}: a tag without a \"name\"", status=200)
            tags[tag] = digest if isinstance(digest, str) else ""  # no digest: counts as naming anything
        return tags

    # --- deleting -------------------------------------------------------------------------------

    def deletion_batches(self, manifests: Sequence[Manifest]) -> list[list[Manifest]]:
        return self.v2.deletion_batches(manifests)

    async def _untag(self, manifest: Manifest) -> list[str]:
        """Delete the tags of ``manifest`` that still name it (HEAD just before); the tags that went."""
        repo = manifest.repository
        ns, name = _split(repo)
        went: list[str] = []
        for tag in manifest.tags:
            try:
                head = await self.v2.client.head_manifest(repo, tag)
            except RegistryError as exc:
                if exc.status == 404:
                    continue  # already gone
                raise
            if head.digest != manifest.digest:
                if head.digest is None:
                    raise RegistryError(f"DELETE {repo}:{tag}: the registry does not say which digest it names; "
                                        "not deleted")
                log.warning("tag_moved", repository=repo, tag=tag, digest=manifest.digest, now=head.digest,
                            reason="the tag names another manifest now: left alone")
                continue
            what = f"DELETE {repo}:{tag}"
            path = f"v2/repositories/{quote(ns, safe='')}/{quote(name, safe='')}/tags/{quote(tag, safe='')}/"
            reply = await self._authorized(ns, functools.partial(self.api.delete, "delete_tag", path, what))
            if not (reply.ok or reply.status == 404):
                raise self._refusal(vendor_error(what, reply), reply)
            self._touched.add(repo)
            went.append(tag)
        return went

    async def delete_manifest(self, manifest: Manifest) -> DeleteOutcome:
        """Untag through the Hub API, then delete by digest on v2 where Docker Hub allows it."""
        untagged = await self._untag(manifest)
        try:
            gone = await self.v2.client.delete_manifest(manifest.repository, manifest.digest)
        except RegistryError as exc:
            if (exc.status, exc.code) not in _V2_REFUSALS:
                raise
            holders = await self.hub_tags(manifest.repository)
            naming = sorted(t for t, d in (holders or {}).items() if d in (manifest.digest, ""))
            if naming:
                raise RegistryError(f"DELETE {manifest.key}: still tagged {', '.join(naming[:3])} by tags this run "
                                    "did not decide on; not deleted", status=exc.status, code=exc.code) from None
            self._touched.add(manifest.repository)
            log.info("dockerhub_untagged_only", repository=manifest.repository, digest=manifest.digest,
                     tags_deleted=untagged, note="untagged; Docker Hub removes it with its repository")
            return DeleteOutcome.DELETED
        if gone:
            self._touched.add(manifest.repository)
        return DeleteOutcome.DELETED if gone or untagged else DeleteOutcome.ALREADY_GONE

    async def delete_repository(self, repository: str) -> DeleteOutcome:
        """Delete the repository once the Hub lists no tag in it; never one this run took nothing from."""
        what = f"DELETE repository {repository}"
        if repository not in self._touched:
            raise RegistryError(f"refusing {what}: nothing in it was deleted in this run")
        ns, name = _split(repository)
        tags = await self.hub_tags(repository)
        if tags is None:
            return DeleteOutcome.ALREADY_GONE
        if tags:
            raise RegistryError(f"refusing {what}: it still holds tags ({', '.join(sorted(tags)[:3])})")
        path = f"v2/repositories/{quote(ns, safe='')}/{quote(name, safe='')}/"
        reply = await self._authorized(ns, lambda: self.api.delete("delete_repository", path, what))
        if reply.status == 404:
            return DeleteOutcome.ALREADY_GONE
        if not reply.ok:
            raise self._refusal(vendor_error(what, reply), reply)
        return DeleteOutcome.DELETED

    def _refusal(self, error: RegistryError, reply: RestReply) -> RegistryError:
        """401/403 on a Hub delete: the token may not delete, and no other deletion will fare better."""
        if reply.status in (401, 403):
            return DeletionDisabled(f"{error} ({TOKEN_HINT})", status=reply.status)
        return error

    @staticmethod
    def _hinted(error: RegistryError) -> RegistryError:
        if error.status in (401, 403):
            return RegistryError(f"{error} ({TOKEN_HINT})", status=error.status)
        return error

    def explain_refusal(self, error: RegistryError) -> str | None:
        if error.status in (401, 403):
            return TOKEN_HINT
        return None  # v2 refusals are handled in delete_manifest, never "deletion disabled"

    # --- doctor ----------------------------------------------------------------------------------

    async def permission_checks(self) -> list[tuple[str, bool | None, str]]:
        """(check, ok, detail) for ``kitgc doctor``: the login works; deletion cannot be known without deleting."""
        try:
            await self._login(self._username or "")
        except RegistryError as exc:
            return [("dockerhub_login", False, str(exc))]
        return [("dockerhub_login", True, f"{API} login works"),
                ("dockerhub_delete", None, "whether the token may delete cannot be known without deleting; "
                 + TOKEN_HINT)]


def open_dockerhub(settings: Settings, v2: DistributionStore) -> DockerHubStore:
    """The dockerhub store over ``v2``; a ConfigError (exit 2) when no token for the API can be found."""
    hosts = (v2.address, *HOSTS)
    token = api_token(settings, hosts, API)
    login = registry_login(settings, hosts)
    api = RestClient(settings.registry_api_url or DEFAULT_API_URL, name=API, ca_file=settings.registry_ca_file,
                     timeout=settings.registry_timeout.total_seconds(), concurrency=settings.concurrency)
    return DockerHubStore(v2, api, token=token, username=login.username if login else None)


__all__ = ["DockerHubStore", "open_dockerhub"]
