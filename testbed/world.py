"""A small end-to-end world: a real registry, the emulated API, and ``kitgc`` run for real.

Tests build a scene with these helpers, run the collector through its real entry point
(``kitgc.cli.main``), then look at what is left in the registry and in the cluster.
"""

from __future__ import annotations

import io
import json
import os
import weakref
from collections.abc import Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from typing import Any

import httpx

from kitgc.cli import main
from testbed import images, objects
from testbed.kube_fixtures import KubeHandle
from testbed.registry_server import RegistryServer

# Worlds of the running test, whose registry clients close_worlds() closes after it (a client
# left to the garbage collector warns of its unclosed socket in whichever test comes next).
_OPEN: weakref.WeakSet[World] = weakref.WeakSet()


def close_worlds() -> None:
    for world in list(_OPEN):
        world.http.close()
    _OPEN.clear()


@dataclass(eq=False)
class World:
    registry: RegistryServer
    kube: KubeHandle
    org: str
    env: dict[str, str] = field(default_factory=dict)
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))

    def __post_init__(self) -> None:
        _OPEN.add(self)

    # --- registry ---------------------------------------------------------------------
    def repo(self, kit: str) -> str:
        return f"{self.org}/camel-k-{kit}"

    def push(self, repo: str, *tags: str, media_type: str = images.OCI_MANIFEST) -> str:
        """Push a unique image to ``repo`` under ``tags``; returns its digest."""
        return images.push_image(self.registry.url, repo, tags, media_type=media_type,
                                 config=images.image_config(), client=self.http)

    def image(self, repo: str, digest: str) -> str:
        return f"{self.registry.address}/{repo}@{digest}"

    def tags(self, repo: str) -> list[str]:
        r = self.http.get(f"{self.registry.url}/v2/{repo}/tags/list")
        if r.status_code == 404:
            return []
        r.raise_for_status()
        return sorted(r.json().get("tags") or [])

    def exists(self, repo: str, digest: str) -> bool:
        r = self.http.head(f"{self.registry.url}/v2/{repo}/manifests/{digest}",
                          headers={"Accept": images.ALL_MANIFESTS})
        assert r.status_code in (200, 404), r.status_code
        return r.status_code == 200

    # --- cluster ----------------------------------------------------------------------
    def add(self, *objs: dict[str, Any]) -> None:
        self.kube.add(*objs)

    def kits(self) -> list[str]:
        res = self.kube.api.store.resource_for("camel.apache.org/v1", "IntegrationKit")
        return sorted(o["metadata"]["name"] for o in self.kube.api.store.objects(res))

    def anchor(self) -> None:
        """One running Integration, so the wrong-cluster guard sees a real Camel K cluster."""
        self.add(objects.integration("anchor", "default", image="docker.io/library/busybox:1"))

    # --- running ----------------------------------------------------------------------
    def run(self, *argv: str, **env: str) -> tuple[int, list[dict[str, Any]]]:
        """Run ``kitgc`` in-process; returns (exit code, the JSON log events)."""
        full = {k: v for k, v in os.environ.items() if k not in _OURS}
        full.update({"REGISTRY_ADDRESS": self.registry.address, "REGISTRY_ORGANIZATION": self.org,
                     "REGISTRY_INSECURE": "true", "LOG_FORMAT": "json", "MIN_AGE": "0"})
        full.update(self.env)
        full.update(env)
        out = io.StringIO()
        with redirect_stdout(out):
            code = main(list(argv), full)
        events = [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
        return code, events


_OURS = {"DRY_RUN", "REGISTRY_ADDRESS", "REGISTRY_ORGANIZATION", "REGISTRY_INSECURE", "MIN_AGE", "PRUNE_KITS",
         "MAX_DELETIONS", "PUSHGATEWAY_URL", "REPORT_FILE", "LOG_FORMAT", "LOG_LEVEL", "STATE_CONFIGMAP"}


def events_named(events: list[dict[str, Any]], name: str) -> Iterator[dict[str, Any]]:
    return (e for e in events if e.get("event") == name)
