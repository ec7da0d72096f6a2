"""The bench's emulated cluster keeps each big kind's serialised pages until that kind changes:
a write elsewhere (a Lease) costs no regeneration, and a deleted kit is never served from a
stale page."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from bench.kubeserver import CachingKubeAPI, GeneratedStore, build_api

KITS = "/apis/camel.apache.org/v1/integrationkits"
PODS = "/api/v1/pods"


@pytest.fixture(scope="module")
def api() -> Iterator[CachingKubeAPI]:
    built, _count = build_api("1")
    assert isinstance(built, CachingKubeAPI)
    with built:
        yield built


def _call(api: CachingKubeAPI, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(api.url + path, data=data, method=method,
                                 headers={"Authorization": f"Bearer {api.token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        out: dict[str, Any] = json.loads(resp.read())
        return out


def _made(store: GeneratedStore) -> list[str]:
    """Count the objects the scene generates from now on (each page served afresh makes its items)."""
    calls: list[str] = []
    original = store.scene.make

    def counting(kind: str, i: int) -> dict[str, Any]:
        calls.append(kind)
        return original(kind, i)

    store.scene.make = counting  # type: ignore[method-assign]
    return calls


def test_a_write_to_another_kind_serves_the_pods_pages_from_the_cache(api: CachingKubeAPI) -> None:
    store = api.store
    assert isinstance(store, GeneratedStore)
    first = _call(api, "GET", PODS + "?limit=50")
    made = _made(store)
    _call(api, "POST", "/apis/coordination.k8s.io/v1/namespaces/kitgc/leases",
          {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "bench", "namespace": "kitgc"},
           "spec": {"holderIdentity": "bench"}})
    again = _call(api, "GET", PODS + "?limit=50")
    assert [p["metadata"]["name"] for p in again["items"]] == [p["metadata"]["name"] for p in first["items"]]
    assert "Pod" not in made, "the Lease write regenerated the Pods' page"


def test_a_deleted_kit_is_gone_from_the_next_list(api: CachingKubeAPI) -> None:
    before = _call(api, "GET", KITS + "?limit=20")["items"]
    victim = before[0]["metadata"]
    _call(api, "DELETE", f"/apis/camel.apache.org/v1/namespaces/{victim['namespace']}/integrationkits/{victim['name']}")
    after = _call(api, "GET", KITS + "?limit=20")["items"]
    names = [k["metadata"]["name"] for k in after]
    assert victim["name"] not in names
    assert names[:19] == [k["metadata"]["name"] for k in before[1:]]
