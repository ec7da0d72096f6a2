"""The ``quay`` image store: v2 for listing and content, Quay's REST API for emptied repositories.

Quay's catalog lists what the account can see, and v2 deletes manifests (the v2 store's deleter
reads Quay's 404 on an untagged digest as "gone" and 409 ``TAG_IMMUTABLE`` as a refusal). What
v2 cannot do is remove the repository, which Quay keeps after its last tag expires: ``DELETE
/api/v1/repository/{namespace}/{repository}`` does (204), and needs the ``repo:admin`` scope,
which only an OAuth application token carries — robot credentials, which serve v2 well, cannot.
So the token is ``REGISTRY_API_TOKEN_FILE``, else the password of the registry's entry in
``REGISTRY_AUTH_FILE`` (which works when that password is such a token), and is asked for only
when a repository is to be deleted. Sources: /work/shared/REGISTRIES.md row "Quay"; quay/quay
endpoints/api/repository.py (RepositoryList, Repository.delete), endpoints/exception.py.
"""

from __future__ import annotations

from urllib.parse import quote

from kitgc.config import Settings
from kitgc.errors import ConfigError, RegistryError
from kitgc.stores.base import DeleteOutcome
from kitgc.stores.distribution import DistributionStore
from kitgc.stores.vendors.samehost import (
    TOKEN_FILE_VAR,
    ApiSettings,
    OverV2,
    SameHostApi,
    api_error,
    api_settings,
    check_repository,
    read_token_file,
    registry_credentials,
)

API_PATH = "/api/v1"
SOURCE = "Quay API"
SCOPE_HINT = ("needs an OAuth application token with the repo:admin scope in REGISTRY_API_TOKEN_FILE; "
              "robot credentials cannot delete a repository")
TOKEN_HINT = "Quay did not accept the token (expired or revoked?); " + SCOPE_HINT
NO_TOKEN = (f"the Quay API needs a token to delete emptied repositories: set {TOKEN_FILE_VAR} to a file holding "
            "an OAuth application token with repo:admin (or REGISTRY_AUTH_FILE whose password is one), or "
            "DELETE_EMPTY_REPOSITORIES=false")


def open_quay(settings: Settings, v2: DistributionStore) -> QuayStore:
    """The Quay store over ``v2``; the API at ``REGISTRY_API_URL`` or ``<registry>/api/v1``."""
    return QuayStore(v2, api_settings(settings, v2, API_PATH), settings)


def quay_path(repository: str) -> tuple[str, str]:
    """(namespace, the API path of ``repository``): the namespace is the first segment."""
    namespace, _, name = check_repository(repository).partition("/")
    if not name:
        raise RegistryError(f"refusing to delete {repository}: a Quay repository lives inside a namespace")
    return namespace, f"/repository/{quote(namespace, safe='')}/{quote(name, safe='/')}"


class QuayStore(OverV2):
    """Repository deletion through Quay's API; everything else through v2."""

    def __init__(self, v2: DistributionStore, config: ApiSettings, settings: Settings) -> None:
        super().__init__(v2)
        self._config = config
        self._settings = settings
        self._api: SameHostApi | None = None

    def _token(self) -> str | None:
        if self._settings.registry_api_token_file:
            return read_token_file(self._settings.registry_api_token_file)
        credentials = registry_credentials(self._settings, self.address)
        return credentials.password if credentials is not None and credentials.password else None

    def api(self) -> SameHostApi:
        """The API client, opened on first need; ConfigError naming the variables without a token."""
        if self._api is None:
            token = self._token()
            if token is None:
                raise ConfigError(NO_TOKEN)
            self._api = self._opened(SameHostApi(self._config, name=SOURCE, up_front=f"Bearer {token}"))
        return self._api

    async def delete_repository(self, repository: str) -> DeleteOutcome:
        """``DELETE /repository/{ns}/{repo}`` once v2 shows no tag left; 404 = already gone."""
        _, path = quay_path(repository)
        api = self.api()
        await self.ensure_empty(repository)
        what = f"DELETE repository {repository}"
        reply = await api.request("delete", "DELETE", path, what)
        if 200 <= reply.status < 300:
            return DeleteOutcome.DELETED
        if reply.status == 404:
            return DeleteOutcome.ALREADY_GONE
        hint = {401: TOKEN_HINT, 403: SCOPE_HINT}.get(reply.status)
        raise api_error(f"{SOURCE}: {what}", reply, hint)

    async def permission_checks(self) -> list[tuple[str, bool | None, str]]:
        """The token is there and accepted; ``can_admin`` of a kit repository when one is seen.

        Quay has no call that shows a token's scopes; ``GET /repository/{ns}/{repo}`` answers
        ``can_admin`` for the caller, which is what deleting it needs.
        """
        check = "quay_api_repository_delete"
        try:
            api = self.api()
        except ConfigError as exc:
            return [(check, False, str(exc))]
        namespaces = sorted({o.split("/", 1)[0] for o in self._settings.organizations or () if o})
        if not namespaces:
            return [(check, None, "no organization known yet (REGISTRY_ORGANIZATION)")]
        checks: list[tuple[str, bool | None, str]] = []
        for namespace in namespaces:
            try:
                doc, _ = await api.get_json("get", f"/repository?namespace={quote(namespace, safe='')}",
                                            f"repositories of namespace {namespace}")
                listed = doc.get("repositories") if isinstance(doc, dict) else None
                if not isinstance(listed, list):
                    raise RegistryError(f"{SOURCE}: repositories of namespace {namespace}: no repositories list")
                name = next((r.get("name") for r in listed if isinstance(r, dict) and isinstance(r.get("name"), str)
                             and r["name"].split("/")[-1].startswith("camel-k-")), None)
                if name is None:
                    checks.append((f"{check}:{namespace}", None,
                                   "token accepted; no kit repository to ask about (needs repo:admin)"))
                    continue
                repo, _ = await api.get_json("get", f"/repository/{quote(namespace, safe='')}/{quote(name, safe='/')}",
                                             f"repository {namespace}/{name}")
            except RegistryError as exc:
                checks.append((f"{check}:{namespace}", False, str(exc)))
                continue
            can_admin = repo.get("can_admin") if isinstance(repo, dict) else None
            if not isinstance(can_admin, bool):
                checks.append((f"{check}:{namespace}", None, "the answer does not say can_admin"))
            else:
                checks.append((f"{check}:{namespace}", can_admin, "allowed" if can_admin else SCOPE_HINT))
        return checks
