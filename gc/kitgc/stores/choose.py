"""Which image store a run talks to: ``REGISTRY_KIND``, or what the registry says it is.

``auto`` decides from the host name (OpenShift's integrated registry, the vendors' own hosts:
:mod:`.kinds`), then, for a host that names nothing, from the registry's answer to an
anonymous ``GET /v2/`` (:func:`answer_kind`), else ``distribution``. The kind and how it was
decided are logged at the start of a run and shown by ``kitgc doctor``.
"""

from __future__ import annotations

import importlib
from typing import Any

from kitgc.config import Settings
from kitgc.errors import RegistryError
from kitgc.registry.adaptive import default_ceiling
from kitgc.registry.auth import Credentials, load_docker_config
from kitgc.registry.client import RegistryClient
from kitgc.stores.base import ImageStore
from kitgc.stores.distribution import DistributionStore
from kitgc.stores.kinds import kind_of_answer, kind_of_host
from kitgc.stores.openshift import OpenShiftStore, names_integrated_registry

# Kinds whose listing or deletion goes (partly) through the vendor's REST API: a factory
# ``open_<kind>(settings, v2)`` in the module named, wrapping the v2 store ``v2``.
VENDOR_STORES = {
    "ghcr": "kitgc.stores.vendors.github",
    "dockerhub": "kitgc.stores.vendors.dockerhub",
    "harbor": "kitgc.stores.vendors.harbor",
    "quay": "kitgc.stores.vendors.quay",
    "acr": "kitgc.stores.vendors.acr",
}
# Kinds served by the v2 API alone; deletion adapts to their refusals (stores.v2delete).
V2_KINDS = frozenset({"distribution", "gcr", "ecr", "zot", "nexus", "artifactory"})


DEFAULT_REASON = "the default: neither the host name nor the registry's answers name another kind"


def choose_kind(setting: str, host: str) -> tuple[str, str]:
    """(kind, how it was decided) for ``REGISTRY_KIND=setting`` and the registry ``host``.

    Decided by ``DEFAULT_REASON`` means the host said nothing: :func:`answer_kind` may tell more.
    """
    if setting != "auto":
        return setting, "REGISTRY_KIND"
    if names_integrated_registry(host):
        return "openshift", f"{host} is OpenShift's integrated registry"
    vendor = kind_of_host(host)
    if vendor is not None:
        return vendor, f"the host name {host}"
    return "distribution", DEFAULT_REASON


async def answer_kind(settings: Settings, host: str, insecure: bool) -> tuple[str, str]:
    """(kind, why) from the registry's answer to an anonymous ``GET /v2/``.

    A registry that cannot be reached here is left to the scan to report (with its real
    error); the kind then stays the default.
    """
    async with registry_client(settings, host, insecure, with_credentials=False) as client:
        try:
            reply = await client.ping()
        except RegistryError as exc:
            return "distribution", f"{DEFAULT_REASON} (GET /v2/ failed: {exc})"
    found = kind_of_answer(reply.headers)
    if found is None:
        return "distribution", DEFAULT_REASON
    return found[0], f"the registry's answer to GET /v2/: {found[1]}"


async def decide_kind(settings: Settings, host: str, insecure: bool) -> tuple[str, str]:
    """``REGISTRY_KIND``, else the host name, else the registry's answer."""
    kind, why = choose_kind(settings.registry_kind, host)
    if why == DEFAULT_REASON:
        kind, why = await answer_kind(settings, host, insecure)
    return kind, why


# Docker Hub's names for itself: images are named docker.io/…, its v2 API answers at
# registry-1.docker.io, and docker login writes https://index.docker.io/v1/ in the auth file.
DOCKER_HUB_V2 = "registry-1.docker.io"
_DOCKER_HUB_NAMES = frozenset({"docker.io", "index.docker.io"})


def v2_host(kind: str, host: str) -> str:
    """Where the registry API v2 of ``host`` answers (Docker Hub's differs from its name)."""
    return DOCKER_HUB_V2 if kind == "dockerhub" and host.lower() in _DOCKER_HUB_NAMES else host


def registry_client(settings: Settings, host: str, insecure: bool, *, with_credentials: bool = True,
                    kind: str = "distribution") -> RegistryClient:
    """The v2 client for ``host`` as the settings configure it (TLS, CA, credentials, limits).

    GitHub's registry takes the API token (a PAT) as the password of any user: when the auth
    file has no entry for it, the token of ``REGISTRY_API_TOKEN_FILE`` is used, so private
    packages can be read.
    """
    target = v2_host(kind, host)
    credentials = (load_docker_config(settings.registry_auth_file, target)
                   if settings.registry_auth_file and with_credentials else None)
    if credentials is None and with_credentials and kind == "ghcr" and settings.registry_api_token_file:
        from kitgc.stores.vendors.rest import api_token

        credentials = Credentials("kitgc", api_token(settings, (host,), "GitHub registry"))
    return RegistryClient(target, insecure=insecure, ca_file=settings.registry_ca_file, credentials=credentials,
                          concurrency=settings.concurrency,
                          concurrency_max=settings.concurrency_max or default_ceiling(settings.concurrency),
                          timeout=settings.registry_timeout.total_seconds())


def open_store(settings: Settings, kind: str, host: str, insecure: bool, api_client: Any) -> ImageStore:
    """The store for ``kind``; ``api_client`` serves the ``openshift`` store."""
    if kind == "openshift":
        return OpenShiftStore(api_client, address=host, concurrency=settings.concurrency,
                              page_size=settings.kube_page_size, timeout=settings.kube_timeout.total_seconds())
    v2 = DistributionStore(registry_client(settings, host, insecure, kind=kind), kind)
    if kind in VENDOR_STORES:
        module = importlib.import_module(VENDOR_STORES[kind])
        factory = getattr(module, f"open_{kind}")
        store: ImageStore = factory(settings, v2)
        return store
    return v2
