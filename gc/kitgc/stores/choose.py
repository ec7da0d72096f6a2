"""Which image store a run talks to: ``REGISTRY_KIND``, or what the registry's host says.

``auto`` picks ``openshift`` when the registry address is OpenShift's integrated registry
(its service or its route) and ``distribution`` otherwise. The kinds of the contract that have
no store of their own yet are served by the registry API v2 as Distribution behaves; the run
says so in its log.
"""

from __future__ import annotations

import importlib
from typing import Any

from kitgc.config import Settings
from kitgc.registry.auth import load_docker_config
from kitgc.registry.client import RegistryClient
from kitgc.stores.base import ImageStore
from kitgc.stores.distribution import DistributionStore
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


def choose_kind(setting: str, host: str) -> tuple[str, str]:
    """(kind, how it was decided) for ``REGISTRY_KIND=setting`` and the registry ``host``."""
    if setting != "auto":
        return setting, "REGISTRY_KIND"
    if names_integrated_registry(host):
        return "openshift", f"{host} is OpenShift's integrated registry"
    return "distribution", "the default for a host that names no known registry"


def open_store(settings: Settings, kind: str, host: str, insecure: bool, api_client: Any) -> ImageStore:
    """The store for ``kind``; ``api_client`` serves the ``openshift`` store."""
    if kind == "openshift":
        return OpenShiftStore(api_client, address=host, concurrency=settings.concurrency,
                              page_size=settings.kube_page_size, timeout=settings.kube_timeout.total_seconds())
    credentials = load_docker_config(settings.registry_auth_file, host) if settings.registry_auth_file else None
    client = RegistryClient(host, insecure=insecure, ca_file=settings.registry_ca_file, credentials=credentials,
                            concurrency=settings.concurrency, timeout=settings.registry_timeout.total_seconds())
    v2 = DistributionStore(client, kind)
    if kind in VENDOR_STORES:
        module = importlib.import_module(VENDOR_STORES[kind])
        factory = getattr(module, f"open_{kind}")
        store: ImageStore = factory(settings, v2)
        return store
    return v2
