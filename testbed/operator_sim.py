"""A simulated Camel K operator that races the collector, and the judge of every DELETE.

The simulator works on the emulated API server's store directly, each step atomically under
the store's lock (as the API server orders writes), and pushes real images to the real
registry. What it does follows the operator:

* ``new_app``: an Integration is created using a new kit (``status.integrationKit``), the
  kit is created ``Build Running``, its image pushed, the kit marked ``Ready``, and the
  Integration and a Deployment pointed at the image (by digest);
* ``orphan_kit``: a kit built ahead of need (``kamel kit create``), left building;
* ``adopt``: an Integration and a Deployment start using an existing ``Ready`` kit nothing
  used, as the operator reuses a matching kit; the kit must still exist at that instant;
* ``leftover``: an extra image pushed into an existing kit's repository (garbage);
* between runs, ``settle``: building orphans become ``Ready``, some old apps are retired
  (Integration and Deployment deleted, sometimes the kit too).

So while a run is in flight references are only added and kits only move from building to
ready; removals happen between runs. Hence "referenced at any moment of the run" is exactly
"referenced when the DELETE reached the registry", which :meth:`OperatorSim.judge` checks
atomically (it holds the store's lock while the registry executes the DELETE), and the
history (logical time = the store's resourceVersion) gives the second, independent check.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from testbed import images, objects
from testbed.faultproxy import Forward, Reply
from testbed.kubeapi import KubeAPI

NS = "camel-k"
APPS_NS = "shop"
BUILDING = ("Build Running",)
NOT_REFERENCES = frozenset({"ConfigMap", "Secret", "Lease", "Namespace"})  # hold no image references


@dataclass
class Interval:
    start: int
    end: int | None = None

    def overlaps(self, lo: int, hi: int) -> bool:
        return self.start <= hi and (self.end is None or self.end > lo)


@dataclass
class SimKit:
    name: str
    repo: str
    digest: str | None = None
    orphan: bool = False


@dataclass
class Verdict:
    repo: str
    digest: str
    rv: int
    reasons: list[str]


@dataclass
class OperatorSim:
    api: KubeAPI
    registry_url: str
    registry_address: str
    org: str
    seed: int = 0
    rng: random.Random = field(init=False)
    kits: dict[str, SimKit] = field(default_factory=dict)
    apps: dict[str, str] = field(default_factory=dict)  # app name -> kit name
    references: dict[str, list[Interval]] = field(default_factory=dict)  # digest -> intervals
    building: dict[str, list[Interval]] = field(default_factory=dict)  # repository -> intervals
    deletions: list[Verdict] = field(default_factory=list)
    steps: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.store = self.api.store
        self.http = httpx.Client(timeout=30)
        self._n = itertools.count(1)  # next() is atomic: the sim thread and the adversary share it
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._settling = False
        self.kits_deleted_in_use: list[str] = []
        self._kit_res = self.store.resource_for("camel.apache.org/v1", "IntegrationKit")
        self._it_res = self.store.resource_for("camel.apache.org/v1", "Integration")
        self._dep_res = self.store.resource_for("apps/v1", "Deployment")

    # --- helpers -------------------------------------------------------------------------

    def rv(self) -> int:
        return int(self.store.rv)

    def _name(self, prefix: str) -> str:
        return f"{prefix}{self.seed}x{next(self._n)}"

    def _image(self, kit: SimKit) -> str:
        return f"{self.registry_address}/{kit.repo}@{kit.digest}"

    def _count(self, step: str) -> None:
        self.steps[step] = self.steps.get(step, 0) + 1

    def _now(self) -> str:
        return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _push(self, repo: str) -> str:
        return images.push_image(self.registry_url, repo, [f"t{self._name('')}"], client=self.http)

    def _new_kit(self, orphan: bool) -> SimKit:
        name = objects.kit_name(self._name("sim"))
        kit = SimKit(name, f"{self.org}/camel-k-{name}", orphan=orphan)
        self.kits[name] = kit
        self.store.add(objects.integration_kit(name, NS, phase=BUILDING[0], created=self._now()))
        self.building.setdefault(kit.repo, []).append(Interval(self.rv()))
        return kit

    def _ready(self, kit: SimKit) -> None:
        obj = self.store.get(self._kit_res, NS, kit.name)
        status = {**obj.get("status", {}), "phase": "Ready", "image": self._image(kit)}
        self.store.update(self._kit_res, NS, kit.name, {**obj, "status": status})
        self.building[kit.repo][-1].end = self.rv()

    def _use(self, app: str, kit: SimKit, *, integration: bool = True) -> None:
        """An Integration and a Deployment running ``kit``'s image (under the store lock)."""
        image = self._image(kit)
        if integration:
            self.store.add(objects.integration(app, APPS_NS, kit=kit.name, kit_namespace=NS, image=image))
        else:
            self.store.patch(self._it_res, APPS_NS, app, {"status": {"phase": "Running", "image": image}})
        self.store.add(objects.deployment(app, APPS_NS, images=[image],
                                          labels={objects.INTEGRATION_LABEL: app}))
        self.apps[app] = kit.name
        assert kit.digest
        self.references.setdefault(kit.digest, []).append(Interval(self.rv()))

    # --- steps while a run is in flight (additive only) ----------------------------------

    def new_app(self) -> None:
        app = self._name("app")
        with self.store.lock:
            kit = self._new_kit(orphan=False)
            self.store.add(objects.integration(app, APPS_NS, kit=kit.name, kit_namespace=NS, phase="Building Kit"))
        kit.digest = self._push(kit.repo)
        with self.store.lock:
            self._ready(kit)
            self._use(app, kit, integration=False)
        self._count("new_app")

    def orphan_kit(self) -> None:
        with self.store.lock:
            kit = self._new_kit(orphan=True)
        kit.digest = self._push(kit.repo)
        self._count("orphan_kit")

    def adopt(self, limit: int = 1) -> int:
        """Point new apps at Ready kits nothing uses, if they still exist at that instant."""
        done = 0
        with self.store.lock:
            ready = [k for k in self.kits.values() if k.orphan and k.digest and not self._is_building(k)]
            self.rng.shuffle(ready)
            for kit in ready[:limit]:
                try:
                    self.store.get(self._kit_res, NS, kit.name)
                except Exception:
                    kit.orphan = False  # deleted by the collector: gone for good
                    continue
                kit.orphan = False
                self._use(self._name("adopter"), kit)
                done += 1
        if done:
            self._count("adopt")
        return done

    def leftover(self) -> None:
        with self.store.lock:
            candidates = [k for k in self.kits.values() if k.digest and self._exists(k)]
        if candidates:
            self._push(self.rng.choice(candidates).repo)
            self._count("leftover")

    def _is_building(self, kit: SimKit) -> bool:
        spans = self.building.get(kit.repo) or []
        return bool(spans) and spans[-1].end is None

    def _exists(self, kit: SimKit) -> bool:
        try:
            self.store.get(self._kit_res, NS, kit.name)
            return True
        except Exception:
            return False

    def step(self) -> None:
        roll = self.rng.random()
        if roll < 0.3:
            self.new_app()
        elif roll < 0.55:
            self.orphan_kit()
        elif roll < 0.8:
            self.adopt()
        else:
            self.leftover()

    # --- between runs ----------------------------------------------------------------------

    def settle(self, retire: int = 2, keep_apps: int = 40) -> None:
        """Building orphans become Ready; old apps are retired (sometimes with their kit): at
        least ``retire``, and as many as it takes to keep at most ``keep_apps``."""
        retire = max(retire, len(self.apps) - keep_apps)
        with self.store.lock:
            self._settling = True
            for kit in self.kits.values():
                if kit.orphan and self._is_building(kit) and self._exists(kit):
                    self._ready(kit)
            for app in sorted(self.apps)[:retire]:
                kit = self.kits[self.apps.pop(app)]
                self.store.delete(self._it_res, APPS_NS, app)
                self.store.delete(self._dep_res, APPS_NS, app)
                assert kit.digest
                for span in self.references.get(kit.digest, []):
                    if span.end is None:
                        span.end = self.rv()
                        break
                if self.rng.random() < 0.5 and self._exists(kit) and kit.digest not in self._in_use():
                    self.store.delete(self._kit_res, NS, kit.name)
            self._settling = False
        self._count("settle")

    def _in_use(self) -> set[str]:
        return {d for d, spans in self.references.items() if any(s.end is None for s in spans)}

    # --- background thread -------------------------------------------------------------------

    def start(self, every: tuple[float, float] = (0.02, 0.06), max_steps: int = 12) -> None:
        """Step every ``every`` seconds, at most ``max_steps`` times (the scene must not outgrow
        the runs: longer runs would mean more steps, a bigger scene, longer runs…)."""
        self._stop.clear()

        def loop() -> None:
            for _ in range(max_steps):
                if self._stop.wait(self.rng.uniform(*every)):
                    return
                try:
                    self.step()
                except Exception as exc:  # surfaced by the test, never swallowed
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                    return

        self._thread = threading.Thread(target=loop, name="operator-sim", daemon=True)
        self._thread.start()

    def pause(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    # --- the judge ---------------------------------------------------------------------------

    def referenced_now(self, repo: str, digest: str) -> list[str]:
        """Why deleting ``repo@digest`` now would be wrong (call with the store lock held)."""
        reasons = []
        for res in self.store.resources:
            if res.kind in NOT_REFERENCES:
                continue
            for obj in self.store.objects(res):
                meta = obj.get("metadata", {})
                if res.kind == "IntegrationKit":
                    phase = (obj.get("status") or {}).get("phase", "")
                    if f"camel-k-{meta.get('name')}" == repo.rpartition("/")[2] and phase not in ("Ready", "Error"):
                        reasons.append(f"kit {meta.get('name')} is building ({phase})")
                    if digest in json.dumps(obj.get("status") or {}):
                        reasons.append(f"image of existing kit {meta.get('name')}")
                elif digest in json.dumps(obj):
                    reasons.append(f"referenced by {res.kind} {meta.get('namespace')}/{meta.get('name')}")
        return reasons

    def intercept(self, method: str, path: str, forward: Forward) -> Reply:
        """FaultProxy hook: judge every registry DELETE at the instant the registry executes it."""
        if method != "DELETE" or "/manifests/" not in path:
            return forward()
        repo, _, digest = path[len("/v2/"):].partition("/manifests/")
        with self.store.lock:
            reasons = self.referenced_now(repo, digest)
            reply = forward()
            if 200 <= reply.status < 300:
                self.deletions.append(Verdict(repo, digest, self.rv(), reasons))
        return reply

    def history_violations(self, since: int) -> list[str]:
        """Deletions after logical time ``since`` of images referenced, or of building kits,
        at any logical moment between ``since`` and the deletion (the sim's own records)."""
        out = []
        for v in self.deletions:
            if v.rv < since:
                continue
            if any(s.overlaps(since, v.rv) for s in self.references.get(v.digest, [])):
                out.append(f"{v.repo}@{v.digest}: referenced during the run")
            if any(s.overlaps(since, v.rv) for s in self.building.get(v.repo, [])):
                out.append(f"{v.repo}@{v.digest}: its kit was building during the run")
        return out

    def watch_kit_deletions(self) -> None:
        """Count kits deleted (by anyone but :meth:`settle`) while an Integration used them."""
        original = self.store.delete

        def delete(res: Any, ns: str | None, name: str) -> dict[str, Any]:
            with self.store.lock:
                if res.kind == "IntegrationKit" and not self._settling:
                    users = [it["metadata"]["name"] for it in self.store.objects(self._it_res)
                             if ((it.get("status") or {}).get("integrationKit") or {}).get("name") == name]
                    if users:
                        self.kits_deleted_in_use.append(f"{name} (used by {', '.join(users)})")
                return original(res, ns, name)

        self.store.delete = delete  # type: ignore[method-assign]

    def close(self) -> None:
        self.pause()
        self.http.close()


def registry_contents(http: httpx.Client, url: str, org: str) -> dict[str, set[str]]:
    """repository -> digests of its tags, straight from the registry (not through kitgc)."""
    out: dict[str, set[str]] = {}
    repos = http.get(f"{url}/v2/_catalog", params={"n": 100000}).json().get("repositories") or []
    for repo in repos:
        if not repo.startswith(f"{org}/"):
            continue
        tags = http.get(f"{url}/v2/{repo}/tags/list").json().get("tags") or []
        for tag in tags:
            r = http.head(f"{url}/v2/{repo}/manifests/{tag}", headers={"Accept": images.ALL_MANIFESTS})
            if r.status_code == 200:
                out.setdefault(repo, set()).add(r.headers["Docker-Content-Digest"])
    return out


def garbage(sim: OperatorSim, contents: dict[str, set[str]]) -> list[str]:
    """Manifests nothing justifies keeping: not referenced by a workload or Integration, not
    in a building kit's repository, not the image of a kit an Integration uses."""
    left = []
    with sim.store.lock:
        used_kits = {(it.get("status") or {}).get("integrationKit", {}).get("name")
                     for it in sim.store.objects(sim._it_res)}
        for repo, digests in contents.items():
            for digest in digests:
                reasons = sim.referenced_now(repo, digest)
                kit_reasons = [r for r in reasons if r.startswith("image of existing kit ")]
                other = [r for r in reasons if r not in kit_reasons]
                if other or any(r.rpartition(" ")[2] in used_kits for r in kit_reasons):
                    continue
                left.append(f"{repo}@{digest}")
    return left


def wait_for(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.001)
    return False
