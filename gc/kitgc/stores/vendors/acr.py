"""The ``acr`` image store: v2 for listing and content, ACR's ``/acr/v1`` API for emptied repositories.

Azure Container Registry serves the catalog and deletes manifests by digest through v2 (the
image, its tags and unique layers go). It keeps a repository whose manifests are all gone;
``DELETE /acr/v1/{name}`` removes it and answers 202 with what it deleted. The API
authenticates like the registry: a 401 with ``WWW-Authenticate: Bearer realm=…/oauth2/token,
service=…,scope=repository:{name}:delete``, answered with a token fetched with the registry's
credentials (admin user, repository-scoped token or service principal), or Basic; the
transport follows the challenge. Sources: /work/shared/REGISTRIES.md row "Azure (ACR)";
Azure/azure-rest-api-specs containerregistry.json (Repository_Delete, Repository_GetList,
Repository_GetAttributes).
"""

from __future__ import annotations

from urllib.parse import quote

from kitgc.config import Settings
from kitgc.errors import RegistryError
from kitgc.scope import Scope
from kitgc.stores.base import DeleteOutcome, KnownRepositories, RepositoryListing
from kitgc.stores.distribution import DistributionStore
from kitgc.stores.vendors.samehost import (
    OverV2,
    SameHostApi,
    api_error,
    api_settings,
    check_repository,
    manifests_left,
    registry_credentials,
)

API_PATH = "/acr/v1"
SOURCE = "ACR API"
PERMISSION_HINT = ("the credentials need delete permission on the repository (the AcrDelete role, or a "
                   "repository-scoped token with content/delete), and the repository deleteEnabled")


def open_acr(settings: Settings, v2: DistributionStore) -> AcrStore:
    """The ACR store over ``v2``; the API at ``REGISTRY_API_URL`` or ``<registry>/acr/v1``."""
    api = SameHostApi(api_settings(settings, v2, API_PATH), name=SOURCE,
                      credentials=registry_credentials(settings, v2.address))
    return AcrStore(v2, api)


class AcrStore(OverV2):
    """Repository deletion through ``/acr/v1``; everything else through v2."""

    def __init__(self, v2: DistributionStore, api: SameHostApi) -> None:
        super().__init__(v2)
        self.api = self._opened(api)
        self._seen: tuple[str, ...] = ()  # kit repositories of the last listing, for doctor

    async def list_repositories(self, scope: Scope, known: KnownRepositories = ()) -> RepositoryListing:
        listing = await self.v2.list_repositories(scope, known)
        self._seen = listing.repositories
        return listing

    async def delete_repository(self, repository: str) -> DeleteOutcome:
        """``DELETE /acr/v1/{name}`` once v2 shows no tag and ACR counts no manifest left
        (untagged ones count); 404 = already gone."""
        name = check_repository(repository)
        await self.ensure_empty(repository)
        path = f"/{quote(name, safe='/')}"
        if await manifests_left(self.api, path, "manifestCount", name, (f"repository:{name}:metadata_read",)) is None:
            return DeleteOutcome.ALREADY_GONE
        what = f"DELETE repository {name}"
        reply = await self.api.request("delete", "DELETE", path, what, (f"repository:{name}:delete",))
        if 200 <= reply.status < 300:
            return DeleteOutcome.DELETED
        if reply.status == 404:
            return DeleteOutcome.ALREADY_GONE
        raise api_error(f"{SOURCE}: {what}", reply, PERMISSION_HINT if reply.status in (401, 403) else None)

    async def permission_checks(self) -> list[tuple[str, bool | None, str]]:
        """Whether a kit repository may be deleted, from its ``changeableAttributes.deleteEnabled``.

        The attribute says whether the repository is locked against deletion; whether these
        credentials carry the delete permission cannot be known without deleting (None).
        """
        check = "acr_api_repository_delete"
        if not self._seen:
            return [(check, None, "no kit repository listed yet; " + PERMISSION_HINT)]
        name = self._seen[0]
        try:
            doc, _ = await self.api.get_json("get", f"/{quote(name, safe='/')}", f"attributes of {name}",
                                             (f"repository:{name}:metadata_read",))
        except RegistryError as exc:
            return [(check, False, str(exc))]
        attributes = doc.get("changeableAttributes") if isinstance(doc, dict) else None
        enabled = attributes.get("deleteEnabled") if isinstance(attributes, dict) else None
        if enabled is False:
            return [(check, False, f"{name} has deleteEnabled=false (locked)")]
        return [(check, None, f"{name} is not locked; " + PERMISSION_HINT + " (cannot be known without deleting)")]
