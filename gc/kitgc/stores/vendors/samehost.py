"""The vendor REST API that sits on (or next to) the registry host, and what stores over it share.

Harbor (``/api/v2.0``), Quay (``/api/v1``) and ACR (``/acr/v1``) serve the image content
through the registry API v2 — which the :class:`~kitgc.stores.distribution.DistributionStore`
already reads and deletes from, adapting to each one's refusals — and have a REST API of
their own for the two things v2 cannot do: list a Harbor project's repositories to a user who
is not a system admin, and delete a whole (emptied) repository. This module is the small
client for that API and the base class of the three stores (:class:`OverV2`), so that TLS,
retries, ``Retry-After`` and token handling stay the registry transport's
(:class:`~kitgc.registry.transport.Transport`) and are not written a second time.

Two ways to authenticate exist: the registry's own (ACR answers a Bearer challenge that the
transport follows with the registry's credentials), and "up front" (Harbor's API takes Basic
and sends no challenge; Quay's takes an OAuth application token as ``Bearer``). A token or
password is never logged nor put in a message.

Fail closed: :meth:`OverV2.ensure_empty` re-reads the repository's v2 tags right before a
repository is deleted and refuses when any remains, and :func:`manifests_left` asks the
vendor's own count where it has one (Harbor ``artifact_count``, ACR ``manifestCount``: untagged
manifests included, which v2 cannot list), because a vendor's repository DELETE takes
everything inside with it, including what this run never saw.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import structlog

from kitgc.config import Settings
from kitgc.errors import ConfigError, RegistryError
from kitgc.model import Manifest
from kitgc.registry.answers import Reply, one_line
from kitgc.registry.auth import Credentials, basic_header, load_docker_config
from kitgc.registry.transport import Transport, TransportOptions
from kitgc.retry import RetryPolicy
from kitgc.scope import Scope
from kitgc.stores.base import Capabilities, DeleteOutcome, KnownRepositories, RepositoryListing, RepositoryScan
from kitgc.stores.distribution import DistributionStore
from kitgc.stores.vendors import close_all, merged_stats

log = structlog.get_logger("kitgc.store")

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_LINK_NEXT = re.compile(r'<([^>]*)>\s*;[^,]*\brel="?next"?', re.IGNORECASE)
MAX_PAGES = 10_000
TOKEN_FILE_VAR = "REGISTRY_API_TOKEN_FILE"


def check_repository(repository: str) -> str:
    """``repository`` when it is a valid repository name; a RegistryError before any URL is built."""
    if not isinstance(repository, str) or not _REPOSITORY.fullmatch(repository) or len(repository) > 255:
        raise RegistryError(f"invalid repository name {repository!r}")
    return repository


def next_link(reply: Reply) -> str | None:
    """The ``Link: <…>; rel="next"`` target of ``reply``, absolute, or None."""
    match = _LINK_NEXT.search(reply.headers.get("Link", ""))
    return str(reply.url.join(match.group(1))) if match else None


def api_error(what: str, reply: Reply, hint: str | None = None) -> RegistryError:
    """One line naming the operation, the status and the vendor's own error words.

    Harbor and ACR answer ``{"errors":[{"code","message"}]}``; Quay answers RFC 7807 with
    ``error_type``/``error_message`` (also ``title``/``detail``). Either is read; anything
    else is reduced to the status.
    """
    code, message = _error_words(reply.body)
    text = f"{what}: HTTP {reply.status}" + (f" {code}" if code else "") + (f": {message}" if message else "")
    if hint:
        text += f"; {hint}"
    return RegistryError(one_line(text, 400), status=reply.status, code=code)


def _error_words(body: bytes) -> tuple[str | None, str | None]:
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return None, None
    if not isinstance(doc, dict):
        return None, None
    errors = doc.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        code, message = errors[0].get("code"), errors[0].get("message")
    else:
        code = doc.get("error_type", doc.get("title"))
        message = doc.get("error_message", doc.get("detail"))
    return (code if isinstance(code, str) else None, message if isinstance(message, str) else None)


@dataclass(frozen=True)
class ApiSettings:
    """Where the API is and how to reach it; built from :class:`~kitgc.config.Settings`."""

    base_url: str  # scheme://host[:port]/path, no trailing slash
    ca_file: str | None = None
    insecure: bool = False
    concurrency: int = 4
    timeout: float = 30.0
    retries: int = 4


def api_settings(settings: Settings, v2: DistributionStore, default_path: str) -> ApiSettings:
    """``REGISTRY_API_URL``, else ``<scheme>://<registry><default_path>`` with the v2 client's scheme."""
    insecure = v2.client.base_url.startswith("http://")
    base = settings.registry_api_url or f"{'http' if insecure else 'https'}://{v2.address}{default_path}"
    return ApiSettings(base_url=base.rstrip("/"), ca_file=settings.registry_ca_file,
                       insecure=base.startswith("http://"), concurrency=max(1, min(settings.concurrency, 8)),
                       timeout=settings.registry_timeout.total_seconds())


def registry_credentials(settings: Settings, address: str) -> Credentials | None:
    """The registry's entry of ``REGISTRY_AUTH_FILE``, or None."""
    return load_docker_config(settings.registry_auth_file, address) if settings.registry_auth_file else None


def read_token_file(path: str) -> str:
    """The token in ``REGISTRY_API_TOKEN_FILE`` (surrounding whitespace dropped); ConfigError if unusable."""
    where = f"invalid {TOKEN_FILE_VAR} {path!r}"
    try:
        with open(path, encoding="utf-8") as fh:
            token = fh.read().strip()
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read it ({exc.strerror or type(exc).__name__})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not UTF-8 text") from None
    if not token or any(c.isspace() for c in token):
        raise ConfigError(f"{where}: expected one token, found {'nothing' if not token else 'several words'}")
    return token


class SameHostApi:
    """Requests to one vendor REST API: JSON reads (paged or not) and DELETEs.

    ``up_front`` is the ``Authorization`` to send with every request (Harbor Basic, Quay
    Bearer); without it the registry's challenge decides (ACR), using ``credentials``.
    ``stats`` counts requests by kind (``api_list``, ``api_get``, ``api_delete``, ``token``…).
    """

    def __init__(self, config: ApiSettings, *, name: str, credentials: Credentials | None = None,
                 up_front: str | None = None, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.name = name
        self.base_url = config.base_url
        self.stats: Counter[str] = Counter()
        retry = RetryPolicy(attempts=max(1, config.retries))
        options = TransportOptions(insecure=config.insecure, ca_file=config.ca_file, credentials=credentials,
                                   concurrency=config.concurrency, timeout=config.timeout, retry=retry,
                                   transport=transport, authorization=up_front)
        stats: dict[str, int] = self.stats
        self._transport = Transport(self.base_url, options, stats)

    async def aclose(self) -> None:
        await self._transport.aclose()

    def url(self, path: str) -> str:
        return self.base_url + path

    async def request(self, kind: str, method: str, path_or_url: str, what: str,
                      scopes: Sequence[str] = ()) -> Reply:
        """Any status comes back; transport failures are a one-line RegistryError naming ``what``."""
        url = path_or_url if "://" in path_or_url else self.url(path_or_url)
        return await self._transport.request(kind, method, url, f"{self.name}: {what}", tuple(scopes),
                                             accept="application/json")

    async def get_json(self, kind: str, path_or_url: str, what: str, scopes: Sequence[str] = ()) -> tuple[Any, Reply]:
        """(the JSON body, the reply) of a 200; a one-line RegistryError for anything else."""
        reply = await self.request(kind, "GET", path_or_url, what, scopes)
        if reply.status != 200:
            raise api_error(f"{self.name}: {what}", reply)
        try:
            return json.loads(reply.body), reply
        except (ValueError, RecursionError):
            raise RegistryError(f"{self.name}: {what}: the answer is not valid JSON", status=200) from None

    def same_origin(self, url: str, what: str) -> str:
        """``url`` when it is on the API's origin: a next-page link elsewhere is refused, not followed."""
        mine, theirs = httpx.URL(self.base_url), httpx.URL(url)
        if (mine.scheme, mine.host, mine.port) != (theirs.scheme, theirs.host, theirs.port):
            raise RegistryError(f"{self.name}: {what}: the next page is on another host ({theirs.host}); not followed")
        return url


class OverV2:
    """An :class:`~kitgc.stores.base.ImageStore` that is the v2 store plus a vendor API.

    Scanning, reading, deleting manifests and explaining refusals are the v2 store's (its
    deleter adapts to Harbor's 412s and Quay's 404/409); subclasses add listing or repository
    deletion through :class:`SameHostApi`.
    """

    capabilities = Capabilities(lists_repositories=True, deletes_manifests=True, deletes_repositories=True)

    def __init__(self, v2: DistributionStore) -> None:
        self.v2 = v2
        self.kind = v2.kind
        self.address = v2.address
        self.concurrency = v2.concurrency
        self._apis: list[SameHostApi] = []

    def _opened(self, api: SameHostApi) -> SameHostApi:
        self._apis.append(api)
        return api

    @property
    def stats(self) -> Mapping[str, int]:
        return merged_stats(self.v2, self._apis)

    async def aclose(self) -> None:
        await close_all(self.v2, self._apis)

    async def list_repositories(self, scope: Scope, known: KnownRepositories = ()) -> RepositoryListing:
        return await self.v2.list_repositories(scope, known)

    async def scan_repository(self, repository: str) -> RepositoryScan:
        return await self.v2.scan_repository(repository)

    async def fetch_manifest(self, repository: str, digest: str) -> Manifest | None:
        return await self.v2.fetch_manifest(repository, digest)

    def deletion_batches(self, manifests: Sequence[Manifest]) -> list[list[Manifest]]:
        return self.v2.deletion_batches(manifests)

    async def delete_manifest(self, manifest: Manifest) -> DeleteOutcome:
        return await self.v2.delete_manifest(manifest)

    def explain_refusal(self, error: RegistryError) -> str | None:
        return self.v2.explain_refusal(error)

    async def ensure_empty(self, repository: str) -> None:
        """Refuse (RegistryError) unless the registry's v2 API shows no tag in ``repository`` now.

        A repository DELETE takes everything inside; the sweep only asks for repositories whose
        every scanned manifest went in this run, but a push may have landed since. A repository
        v2 does not know (404) holds nothing to lose.
        """
        check_repository(repository)
        try:
            tags = await self.v2.client.tags(repository)
        except RegistryError as exc:
            if exc.status == 404 and exc.code in (None, "NAME_UNKNOWN"):
                return
            raise RegistryError(f"repository {repository}: cannot re-read its tags before deleting it ({exc}); "
                                "not deleted", status=exc.status, code=exc.code) from None
        if tags:
            shown = ", ".join(sorted(tags)[:5]) + (f" (and {len(tags) - 5} more)" if len(tags) > 5 else "")
            raise RegistryError(f"repository {repository} still holds tags: {shown}; not deleted")


async def manifests_left(api: SameHostApi, path: str, field: str, repository: str,
                         scopes: Sequence[str] = ()) -> int | None:
    """How many manifests the vendor's own record of ``repository`` still counts (``field`` of
    ``GET path``), untagged ones included, which v2 cannot show; None when it is gone (404).

    Any other answer refuses the deletion: without the count nothing says the repository is empty.
    """
    what = f"repository {repository}"
    reply = await api.request("get", "GET", path, what, scopes)
    if reply.status == 404:
        return None
    if reply.status != 200:
        raise api_error(f"{api.name}: {what}: cannot count what it holds before deleting it", reply,
                        "not deleted")
    try:
        doc = json.loads(reply.body)
    except (ValueError, RecursionError):
        raise RegistryError(f"{api.name}: {what}: the answer is not valid JSON; not deleted", status=200) from None
    count = doc.get(field) if isinstance(doc, dict) else None
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise RegistryError(f"{api.name}: {what}: the answer has no {field} count; not deleted", status=200)
    if count:
        raise RegistryError(f"repository {repository} still holds {count} manifest(s) by {api.name} "
                            f"({field}, untagged ones included); not deleted")
    return count


def basic_up_front(credentials: Credentials | None) -> str | None:
    return basic_header(credentials) if credentials is not None else None
