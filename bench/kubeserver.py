"""The emulated Kubernetes API of the scene, in its own process.

Its own process so that serving 130 MB of JSON per cluster read does not share a GIL with
the latency proxy or the measuring loop. Started by :mod:`bench.__main__`; prints one line
``READY <url> <objects>`` when it serves, and stops by itself when its standard input
closes (the benchmark ended, however) or after ``--max-seconds``.

The scene's big kinds (Pods, ReplicaSets, Deployments, Integrations, IntegrationKits) are
not stored: :class:`GeneratedStore` makes each page from :class:`bench.cluster.Scene` when
it is asked for, with deterministic ``continue`` tokens so that the emulator's read cache
(serialised answers, kept while nothing is written) holds every page after the first read.
Holding 300,000 objects as dicts would take several GB; the serialised pages take about
what they weigh on the wire, and the dicts only live while their page is serialised.

    python -m bench.kubeserver --kubeconfig /tmp/kubeconfig [--scale 1|4|16|large] [--max-seconds 3600]
"""

from __future__ import annotations

import argparse
import base64
import json
import resource
import select
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench.cluster import ClusterSpec, Scene
from bench.scene import SCALES, SceneSpec, plan_kits
from testbed.kubeapi import KubeAPI
from testbed.kubestore import EXPIRED, ApiError, Resource, Store, field_selector, label_selector

GENERATED = ("Pod", "ReplicaSet", "Deployment", "Integration", "IntegrationKit")


class GeneratedStore(Store):
    """A :class:`~testbed.kubestore.Store` whose big kinds come from a :class:`Scene`, by index.

    Writes still work: a generated object that is updated moves into the ordinary store
    (and its index is marked gone), a deleted one is marked gone. Lists page through the
    generated indices first, then whatever is stored for the kind. ``objects()`` (inherited)
    returns only stored objects (the owner index of the emulator scans it at start; generating
    300,000 objects for that would defeat the point), so a DELETE does not cascade to
    generated dependents, which no benchmark run needs.
    """

    def __init__(self, scene: Scene) -> None:
        super().__init__()
        self.scene = scene
        self.kinds = {self.resource_for("camel.apache.org/v1" if k.startswith("Integration") else
                                        "apps/v1" if k in ("ReplicaSet", "Deployment") else "v1", k): k
                      for k in GENERATED}
        self.gone: dict[Resource, set[int]] = {r: set() for r in self.kinds}
        # The cluster-wide list path of each generated kind, and how often that kind changed:
        # CachingKubeAPI keeps their pages per kind (see there).
        self.list_paths = {(f"/apis/{r.group}/{r.version}/{r.plural}" if r.group else f"/api/{r.version}/{r.plural}"): r
                           for r in self.kinds}
        self.versions: dict[Resource, int] = {r: 0 for r in self.kinds}
        self.watchers.append(self._bump)
        self._names: dict[Resource, dict[tuple[str, str], int]] = {}
        self._selected: dict[tuple[Resource, str, str, str | None, int], list[int]] = {}

    def _bump(self, res: Resource, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        if res in self.versions:
            self.versions[res] += 1

    def _index(self, res: Resource) -> dict[tuple[str, str], int]:
        """(namespace, name) -> index; built on the first lookup of that kind by name."""
        if res not in self._names:
            kind = self.kinds[res]
            names = {}
            for i in range(self.scene.counts[kind]):
                meta = self.scene.make(kind, i)["metadata"]
                names[(meta.get("namespace", ""), meta["name"])] = i
            self._names[res] = names
        return self._names[res]

    def _generated(self, res: Resource, ns: str | None, name: str) -> tuple[int, dict[str, Any]] | None:
        i = self._index(res).get((ns or "", name))
        if i is None or i in self.gone[res]:
            return None
        return i, self.scene.make(self.kinds[res], i)

    def get(self, res: Resource, ns: str | None, name: str) -> dict[str, Any]:
        if res in self.kinds:
            with self.lock:
                if (ns or "", name) not in self._objects[res] and (found := self._generated(res, ns, name)):
                    return found[1]
        return super().get(res, ns, name)

    def update(self, res: Resource, ns: str | None, name: str, obj: dict[str, Any]) -> dict[str, Any]:
        if res in self.kinds:
            with self.lock:
                if (ns or "", name) not in self._objects[res] and (found := self._generated(res, ns, name)):
                    self.gone[res].add(found[0])
                    self._objects[res][(ns or "", name)] = found[1]  # now stored; the update replaces it
        return super().update(res, ns, name, obj)

    def delete(self, res: Resource, ns: str | None, name: str) -> dict[str, Any]:
        if res in self.kinds:
            with self.lock:
                if (ns or "", name) not in self._objects[res] and (found := self._generated(res, ns, name)):
                    self.gone[res].add(found[0])
                    self.rv = str(next(self._rv))
                    self._changed(res, found[1], None)
                    return found[1]
        return super().delete(res, ns, name)

    def list(self, res: Resource, ns: str | None, query: dict[str, str]) -> dict[str, Any]:
        if res not in self.kinds:
            return super().list(res, ns, query)
        limit = int(query.get("limit") or 0)
        offset = 0
        if token := query.get("continue"):
            try:
                offset = int(json.loads(base64.urlsafe_b64decode(token.encode()))[1])
            except (ValueError, TypeError, IndexError):
                raise ApiError(410, "Expired", EXPIRED) from None
        with self.lock:
            order = self._order(res, ns, query)
            stored = [o for o in super().objects(res) if self._matches(o, ns, query)]
            rv = self.rv
        total = len(order) + len(stored)
        end = min(total, offset + limit) if limit else total
        kind = self.kinds[res]
        page = [self.scene.make(kind, order[j]) if j < len(order) else stored[j - len(order)]
                for j in range(offset, end)]
        meta: dict[str, Any] = {"resourceVersion": rv}
        if end < total:  # deterministic: the same page has the same token, so answers can be cached
            meta["continue"] = base64.urlsafe_b64encode(json.dumps([kind, end]).encode()).decode()
            meta["remainingItemCount"] = total - end
        return {"kind": f"{res.kind}List", "apiVersion": res.api_version, "metadata": meta, "items": page}

    def _order(self, res: Resource, ns: str | None, query: dict[str, str]) -> Sequence[int]:
        """The generated indices a list returns (selectors: found once per state, then cached)."""
        labels, fields = query.get("labelSelector", ""), query.get("fieldSelector", "")
        gone, count = self.gone[res], self.scene.counts[self.kinds[res]]
        if not labels and not fields and ns is None and not gone:
            return range(count)
        key = (res, labels, fields, ns, len(gone))
        if key not in self._selected:
            kind = self.kinds[res]
            self._selected[key] = [i for i in range(count) if i not in gone and (
                not (labels or fields or ns) or self._matches(self.scene.make(kind, i), ns, query))]
        return self._selected[key]

    @staticmethod
    def _matches(obj: dict[str, Any], ns: str | None, query: dict[str, str]) -> bool:
        meta = obj["metadata"]
        return ((ns is None or meta.get("namespace") == ns)
                and label_selector(query.get("labelSelector", ""))(meta.get("labels") or {})
                and field_selector(query.get("fieldSelector", ""))(obj))


class CachingKubeAPI(KubeAPI):
    """:class:`KubeAPI` whose read cache keys on the parsed query, not its spelling, and keeps
    the pages of each big kind until that kind changes.

    The client and the floor encode the same ``continue`` token differently (``=`` or
    ``%3D``); keyed on the raw query, kitgc's pages would miss the cache the floor filled
    and be generated again, on the emulator's CPU, during the measured run.

    :class:`KubeAPI`'s own cache starts afresh at any write. A deleting run writes its Lease
    (and renews it while it reads) and deletes kits, so its second and third reads of 300,000
    Pods were generated and serialised again by this Python process, on the cores kitgc
    was being measured on. A real API server serves lists from its watch cache whatever else
    is written; so here the pages of a generated kind are kept while that kind does not
    change (a kit deletion regenerates the IntegrationKit pages only). Their
    ``metadata.resourceVersion`` is the one they were first served with, which nothing reads.
    """

    def cache_version(self, path: str) -> tuple[str, object]:
        store = self.store
        if isinstance(store, GeneratedStore) and (res := store.list_paths.get(path)) is not None:
            return res.plural, store.versions[res]
        return super().cache_version(path)

    def _serialised(self, method: str, path: str, raw_query: str, query: dict[str, str],
                    raw: bytes) -> tuple[int, bytes]:
        return super()._serialised(method, path, urlencode(sorted(query.items())), query, raw)


def build_api(scale: str) -> tuple[KubeAPI, int]:
    """The emulator of the scene at ``scale`` and how many objects it serves."""
    spec = SceneSpec.for_scale(scale)
    scene = Scene(spec, plan_kits(spec), ClusterSpec.for_scale(scale))
    store = GeneratedStore(scene)
    store.add(scene.make("IntegrationPlatform", 0))
    return CachingKubeAPI(store=store, cache_reads=True), scene.total


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def serve(kubeconfig: Path, max_seconds: float, scale: str = "1") -> None:
    api, count = build_api(scale)
    api.start()
    api.write_kubeconfig(kubeconfig)
    print(f"READY {api.url} {count}", flush=True)
    deadline = time.monotonic() + max_seconds
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([sys.stdin], [], [], 1.0)
            if ready and not sys.stdin.buffer.read1(4096):  # type: ignore[union-attr]  # EOF: the benchmark is gone
                break
            api.log.clear()  # the request log is for tests; here it would only grow
    finally:
        api.stop()
        print(f"kubeserver peak RSS {peak_rss_mb():.0f} MB", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.kubeserver")
    parser.add_argument("--kubeconfig", required=True, type=Path)
    parser.add_argument("--max-seconds", type=float, default=3600.0)
    parser.add_argument("--scale", choices=SCALES, default="1")
    args = parser.parse_args()
    serve(args.kubeconfig, args.max_seconds, args.scale)


if __name__ == "__main__":
    main()
