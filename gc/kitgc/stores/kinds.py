"""Which kind of registry answers: from its host name, else from its answer to ``GET /v2/``.

``REGISTRY_KIND=auto`` decides here. The host names are the vendors' own (a registry on
them is that vendor's); a self-hosted registry on a custom domain or behind a proxy says
what it is in its ``GET /v2/`` answer: Harbor's token service is ``harbor-registry``,
Quay's realm is ``/v2/auth``, OpenShift's integrated registry's is ``/openshift/token``,
Artifactory sends ``X-JFrog-Version``/``X-Artifactory-Id``, Nexus a ``Server: Nexus/…``
header. Whatever the kind, deletion still adapts to the refusals the registry answers with
(:mod:`kitgc.stores.v2delete`), so a wrong guess costs requests, never safety.

Sources: /work/shared/REGISTRIES.md (auth notes per registry: Harbor realm
``<url>/service/token`` service ``harbor-registry``; Quay ``/v2/auth``; Docker Hub realm
``auth.docker.io/token``); openshift/image-registry pkg/dockerregistry/server/auth.go
(realm ``/openshift/token``); JFrog and Sonatype response headers as their servers send them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from kitgc.registry.auth import parse_challenge

_HOSTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?:^|\.)docker\.io$"), "dockerhub"),  # docker.io, index.docker.io, registry-1.docker.io
    (re.compile(r"^ghcr\.io$"), "ghcr"),
    (re.compile(r"^quay\.io$"), "quay"),
    (re.compile(r"(?:^|\.)gcr\.io$|-docker\.pkg\.dev$"), "gcr"),
    (re.compile(r"\.azurecr\.(?:io|cn|us)$"), "acr"),
    (re.compile(r"\.dkr\.ecr(?:-fips)?\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?$"), "ecr"),
)


def kind_of_host(host: str) -> str | None:
    """The vendor whose host name ``host`` (``host[:port]``) is, or None."""
    name = host.lower().rsplit(":", 1)[0] if not host.startswith("[") else host.lower()
    for pattern, kind in _HOSTS:
        if pattern.search(name):
            return kind
    return None


def kind_of_answer(headers: Mapping[str, str]) -> tuple[str, str] | None:
    """(kind, the evidence) from the headers of a ``GET /v2/`` answer, or None."""
    lowered = {k.lower(): v for k, v in headers.items()}
    if "x-jfrog-version" in lowered or "x-artifactory-id" in lowered:
        return "artifactory", "it sends X-JFrog-Version/X-Artifactory-Id"
    if lowered.get("server", "").lower().startswith("nexus"):
        return "nexus", f"its Server header is {lowered['server']!r}"
    challenge = parse_challenge(lowered.get("www-authenticate"))
    if challenge is None or challenge.scheme != "bearer":
        return None
    realm_path = urlsplit(challenge.realm or "").path.rstrip("/")
    if (challenge.service or "") == "harbor-registry" or realm_path.endswith("/service/token"):
        return "harbor", "its token service is Harbor's (harbor-registry)"
    if realm_path.endswith("/v2/auth"):
        return "quay", "its token realm is Quay's /v2/auth"
    if realm_path.endswith("/openshift/token"):
        return "openshift", "its token realm is OpenShift's /openshift/token"
    return None
