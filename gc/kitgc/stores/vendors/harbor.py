"""The ``harbor`` image store: v2 for content, Harbor's REST API for listing and emptied repositories.

Harbor serves ``/v2/_catalog`` to system admins only, so a collector running as a project
member (the usual robot account) cannot list through v2. Its API can: ``GET
/api/v2.0/projects/{project}/repositories`` (paged with ``page``/``page_size``, ``X-Total-Count``
and ``Link``) returns ``project/repo…`` names. Harbor keeps a repository after its last artifact
is deleted (goharbor/harbor#18313); ``DELETE /api/v2.0/projects/{project}/repositories/{repo}``
removes it, with a ``/`` inside the repository name encoded twice (``%252F``): Harbor's router
decodes once before matching. The API takes Basic with the registry's credentials and sends no
challenge, so they go up front.

Where the API refuses to list (401/403: the account is not allowed to read the project), the
v2 store's listing is used instead (the catalog, then the cluster's kit repositories) and the
log says why. Sources: /work/shared/REGISTRIES.md row "Harbor"; goharbor/harbor
api/v2.0/swagger.yaml (listRepositories, deleteRepository, getCurrentUserPermissions).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import structlog

from kitgc.config import Settings
from kitgc.errors import RegistryError
from kitgc.scope import Scope
from kitgc.stores.base import DeleteOutcome, KnownRepositories, RepositoryListing
from kitgc.stores.distribution import DistributionStore
from kitgc.stores.vendors.samehost import (
    MAX_PAGES,
    OverV2,
    SameHostApi,
    api_error,
    api_settings,
    basic_up_front,
    check_repository,
    manifests_left,
    next_link,
    registry_credentials,
)

log = structlog.get_logger("kitgc.store")

API_PATH = "/api/v2.0"
PAGE_SIZE = 100  # the largest page Harbor serves
SOURCE = "Harbor API"
_REFUSED = frozenset({401, 403})
PERMISSION_HINT = ("the Harbor account needs the Project Admin or Maintainer role (or a robot account with "
                   "repository delete) in that project")
CREDENTIALS_HINT = "Harbor did not accept the credentials of REGISTRY_AUTH_FILE for this registry"


def open_harbor(settings: Settings, v2: DistributionStore) -> HarborStore:
    """The Harbor store over ``v2``; the API at ``REGISTRY_API_URL`` or ``<registry>/api/v2.0``."""
    credentials = registry_credentials(settings, v2.address)
    api = SameHostApi(api_settings(settings, v2, API_PATH), name=SOURCE, up_front=basic_up_front(credentials))
    return HarborStore(v2, api, organizations=settings.organizations or ())


def encode_repository(name: str) -> str:
    """A repository name inside its project as Harbor's path wants it: ``a/b`` -> ``a%252Fb``."""
    return quote(quote(name, safe=""), safe="")


class HarborStore(OverV2):
    """Listing and repository deletion through Harbor's API; everything else through v2."""

    def __init__(self, v2: DistributionStore, api: SameHostApi, organizations: tuple[str, ...] = ()) -> None:
        super().__init__(v2)
        self.api = self._opened(api)
        self._organizations = organizations  # for doctor, until a listing names the real ones

    # --- listing -----------------------------------------------------------------------

    async def list_repositories(self, scope: Scope, known: KnownRepositories = ()) -> RepositoryListing:
        """In-scope repositories of each organization's project, or the v2 listing if refused."""
        self._organizations = scope.organizations
        names: set[str] = set()
        try:
            for project in projects_of(scope.organizations):
                names.update(await self.project_repositories(project))
        except RegistryError as exc:
            if exc.status not in _REFUSED:
                raise
            log.warning("harbor_api_listing_refused", error=str(exc),
                        fallback="the registry catalog, else the repositories the cluster's kits name",
                        hint="give the account at least the Guest role in the project to list through the API")
            return await self.v2.list_repositories(scope, known)
        ours = {n for n in names if n in scope}
        return RepositoryListing(tuple(sorted(ours)), len(names - ours), source=SOURCE)

    async def project_repositories(self, project: str) -> list[str]:
        """Every repository name (``project/…``) of ``project``, page by page.

        Follows ``Link rel="next"``; an answer without one, whose ``X-Total-Count`` says more
        remain, is followed by page number. A project Harbor does not know has no repository
        (logged: a wrong organization otherwise looks like a clean registry).
        """
        what = f"repositories of project {project}"
        first = f"/projects/{quote(project, safe='')}/repositories?page=1&page_size={PAGE_SIZE}"
        url: str | None = self.api.url(first)
        names: list[str] = []
        seen: set[str] = set()
        page = 1
        while url is not None:
            if url in seen or len(seen) >= MAX_PAGES:
                raise RegistryError(f"{SOURCE}: {what}: the pages do not end (at {url}); refusing to read on")
            seen.add(url)
            reply = await self.api.request("list", "GET", url, what)
            if reply.status == 404 and page == 1:
                log.warning("harbor_project_not_found", project=project)
                return []
            if reply.status != 200:
                raise api_error(f"{SOURCE}: {what}", reply)
            items = _repository_names(what, project, reply.body)
            names.extend(items)
            url = next_link(reply)
            if url is not None:
                url = self.api.same_origin(url, what)
            elif items and len(names) < _total(reply.headers.get("X-Total-Count"), what):
                url = self.api.url(f"/projects/{quote(project, safe='')}/repositories?page={page + 1}"
                                   f"&page_size={PAGE_SIZE}")
            page += 1
        return names

    # --- deleting ----------------------------------------------------------------------

    async def delete_repository(self, repository: str) -> DeleteOutcome:
        """``DELETE /projects/{p}/repositories/{r}`` once v2 shows no tag and Harbor counts no
        artifact left (untagged ones are artifacts too); 404 = already gone."""
        project, _, inside = check_repository(repository).partition("/")
        if not inside:
            raise RegistryError(f"refusing to delete {repository}: a Harbor repository lives inside a project")
        await self.ensure_empty(repository)
        path = f"/projects/{quote(project, safe='')}/repositories/{encode_repository(inside)}"
        if await manifests_left(self.api, path, "artifact_count", repository) is None:
            return DeleteOutcome.ALREADY_GONE
        what = f"DELETE repository {repository}"
        reply = await self.api.request("delete", "DELETE", path, what)
        if 200 <= reply.status < 300:
            return DeleteOutcome.DELETED
        if reply.status == 404:
            return DeleteOutcome.ALREADY_GONE
        hint = {401: CREDENTIALS_HINT, 403: PERMISSION_HINT}.get(reply.status)
        raise api_error(f"{SOURCE}: {what}", reply, hint)

    # --- doctor ------------------------------------------------------------------------

    async def permission_checks(self) -> list[tuple[str, bool | None, str]]:
        """Per project: may the account list, and delete repositories? Asked, never tried.

        ``GET /users/current/permissions?scope=/project/{id}&relative=true`` lists what the
        account may do in the project (``{"resource": "repository", "action": "delete"}``).
        """
        projects = projects_of(self._organizations)
        if not projects:
            return [("harbor_api_repository_delete", None, "no organization known yet (REGISTRY_ORGANIZATION)")]
        checks: list[tuple[str, bool | None, str]] = []
        for project in projects:
            checks.append(await self._list_check(project))
            checks.append(await self._delete_check(project))
        return checks

    async def _list_check(self, project: str) -> tuple[str, bool | None, str]:
        check = f"harbor_api_listing:{project}"
        try:
            names = await self.project_repositories(project)
        except RegistryError as exc:
            return check, False, str(exc)
        return check, True, f"{len(names)} repositories"

    async def _delete_check(self, project: str) -> tuple[str, bool | None, str]:
        check = f"harbor_api_repository_delete:{project}"
        try:
            doc, _ = await self.api.get_json("get", f"/projects/{quote(project, safe='')}", f"project {project}")
            project_id = doc.get("project_id") if isinstance(doc, dict) else None
            if isinstance(project_id, bool) or not isinstance(project_id, int):
                return check, None, f"project {project}: the answer has no project_id"
            perms, _ = await self.api.get_json(
                "get", f"/users/current/permissions?scope=/project/{project_id}&relative=true",
                f"permissions in project {project}")
        except RegistryError as exc:
            return check, None, str(exc)
        if not isinstance(perms, list):
            return check, None, "the permissions answer is not a list"
        allowed = any(isinstance(p, dict) and p.get("resource") == "repository" and p.get("action") in ("delete", "*")
                      for p in perms)
        return check, allowed, "allowed" if allowed else PERMISSION_HINT


def projects_of(organizations: tuple[str, ...]) -> list[str]:
    """Harbor projects holding ``organizations``: each one's first path segment."""
    return sorted({org.split("/", 1)[0] for org in organizations if org})


def _repository_names(what: str, project: str, body: bytes) -> list[str]:
    try:
        doc: Any = json.loads(body)
    except (ValueError, RecursionError):
        raise RegistryError(f"{SOURCE}: {what}: the answer is not valid JSON", status=200) from None
    if not isinstance(doc, list):
        raise RegistryError(f"{SOURCE}: {what}: the answer is not a list of repositories", status=200)
    names: list[str] = []
    for item in doc:
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name.startswith(project + "/"):
            raise RegistryError(f"{SOURCE}: {what}: a repository named {name!r}, not inside {project}/",
                                status=200)
        names.append(check_repository(name))
    return names


def _total(header: str | None, what: str) -> int:
    """``X-Total-Count`` as a number (0 when absent); RegistryError when it is not one."""
    if header is None:
        return 0
    try:
        total = int(header.strip())
    except ValueError:
        raise RegistryError(f"{SOURCE}: {what}: X-Total-Count {header[:40]!r} is not a number", status=200) from None
    if total < 0:
        raise RegistryError(f"{SOURCE}: {what}: negative X-Total-Count {total}", status=200)
    return total
