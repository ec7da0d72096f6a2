"""Other clusters for ``REFERENCE_KUBECONFIG``: more Kubernetes API emulators and one kubeconfig.

A promotion estate is a dev cluster (the ``kube`` fixture, where the collector runs) and a
production cluster that runs dev's kit images; the ``prod`` fixture is that second cluster,
another :class:`~testbed.kubeapi.KubeAPI` on loopback, and :func:`write_reference_kubeconfig`
names each such cluster as one context, the way an operator mints it from a reader token.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from testbed.kubeapi import KubeAPI


def write_reference_kubeconfig(path: Path, clusters: Mapping[str, str], token: str = KubeAPI.token) -> Path:
    """A kubeconfig with one context per ``name -> server URL`` (JSON is valid YAML)."""
    cfg = {
        "apiVersion": "v1", "kind": "Config", "current-context": next(iter(clusters), ""),
        "clusters": [{"name": n, "cluster": {"server": url}} for n, url in clusters.items()],
        "users": [{"name": "reader", "user": {"token": token}}],
        "contexts": [{"name": n, "context": {"cluster": n, "user": "reader"}} for n in clusters],
    }
    path.write_text(json.dumps(cfg, indent=1))
    return path


@pytest.fixture
def prod() -> Iterator[KubeAPI]:
    """A second cluster (production), empty; add objects with ``prod.add(...)``."""
    api = KubeAPI().start()
    try:
        yield api
    finally:
        api.stop()
