"""Which image store a run talks to: ``REGISTRY_KIND``, or what the registry's host says.

``auto`` picks ``openshift`` when the registry address is OpenShift's integrated registry
(its service or its route) and ``distribution`` otherwise. The kinds of the contract that have
no store of their own yet are served by the registry API v2 as Distribution behaves; the run
says so in its log.
"""

from __future__ import annotations

from typing import Any

import structlog

from kitgc.config import Settings
from kitgc.registry.auth import load_docker_config
from kitgc.registry.client import RegistryClient
from kitgc.stores.base import ImageStore
from kitgc.stores.distribution import DistributionStore
from kitgc.stores.openshift import OpenShiftStore, names_integrated_registry

SPECIALISED = frozenset({"distribution", "openshift"})


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
    if kind not in SPECIALISED:
        structlog.get_logger("kitgc").warning(
            "registry_kind_generic", registry_kind=kind,
            note="served by the registry API v2 as Distribution behaves; this kind's own refusals and vendor API "
                 "are not specialised yet")
    credentials = load_docker_config(settings.registry_auth_file, host) if settings.registry_auth_file else None
    client = RegistryClient(host, insecure=insecure, ca_file=settings.registry_ca_file, credentials=credentials,
                            concurrency=settings.concurrency, timeout=settings.registry_timeout.total_seconds())
    return DistributionStore(client, kind)
