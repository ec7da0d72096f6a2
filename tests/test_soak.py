"""Soak: ``kitgc`` runs again and again (MIN_AGE=0) while a simulated operator races it.

Short mode (``make test``): 30 runs. Long mode (``make soak``, KITGC_SLOW=1): 200 runs;
KITGC_SOAK_RUNS overrides either.
During each run the simulator (:mod:`testbed.operator_sim`) keeps creating kits
(``Build Running``), pushing their images, marking them ``Ready`` and pointing Integrations
and Deployments at them; an adversary adopts Ready, unused kits right after the collector's
first read of Integrations, the moment a collector without the second read gets wrong.
Between runs old apps are retired and building kits finish.

Checked after every run: no DELETE reached the registry while the image was referenced, the
image of an existing kit, or in a building kit's repository (judged atomically at the DELETE),
nor deleted an image the simulator's history shows referenced or building at any moment of
the run; no Ready kit is left without its image. At the end a clean run leaves no garbage,
and one more run deletes nothing.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings

import kitgc.run
import kitgc.sweep.planner
from kitgc.cluster.merge import merge_snapshots
from kitgc.model import Action
from kitgc.plan import plan as make_plan
from testbed.faultproxy import FaultProxy
from testbed.figures import Figures
from testbed.kubeapi import KubeAPI
from testbed.operator_sim import OperatorSim, garbage, registry_contents, wait_for
from testbed.planfactory import plan_inputs
from testbed.world import World, events_named

SLOW = os.environ.get("KITGC_SLOW") == "1"
RUNS = int(os.environ.get("KITGC_SOAK_RUNS") or (200 if SLOW else 30))
INTEGRATIONS = "/apis/camel.apache.org/v1/integrations"
FRESH = kitgc.sweep.planner.FRESH_MARGIN.total_seconds() + 1.0


@dataclass
class Adversary:
    """Adopt Ready, unused kits right after the run's first list of Integrations was answered."""

    api: KubeAPI
    sim: OperatorSim
    adopted: int = 0
    armed: bool = False
    threads: list[threading.Thread] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.api.on_request(self._hook)

    def arm(self) -> None:
        self.armed = True

    def _hook(self, method: str, path: str, query: dict[str, str]) -> None:
        if self.armed and method == "GET" and path == INTEGRATIONS and not query.get("continue"):
            self.armed = False
            t = threading.Thread(target=self._after, args=(time.time(),), daemon=True)
            self.threads.append(t)
            t.start()

    def _after(self, asked: float) -> None:
        wait_for(lambda: any(r.path == INTEGRATIONS and r.time >= asked for r in self.api.log[-50:]))
        self.adopted += self.sim.adopt(limit=2)

    def join(self) -> None:
        for t in self.threads:
            t.join(timeout=10)
        self.threads.clear()


@dataclass
class Soak:
    world: World
    sim: OperatorSim
    proxy: FaultProxy
    adversary: Adversary
    figures: Figures
    seconds: list[float] = field(default_factory=list)
    repositories: int = 0

    def run(self) -> tuple[int, list[dict], float]:
        started = time.monotonic()
        code, events = self.world.run()
        return code, events, time.monotonic() - started

    def check_consistent(self) -> None:
        """No Ready kit whose image is gone (the kit-first order must guarantee it)."""
        with self.sim.store.lock:
            kits = self.sim.store.objects(self.sim._kit_res)
        for kit in kits:
            image = (kit.get("status") or {}).get("image")
            if image and (kit.get("status") or {}).get("phase") == "Ready":
                repo, _, digest = image.split("/", 1)[1].partition("@")
                assert self.world.exists(repo, digest), f"kit {kit['metadata']['name']} lost its image"


@pytest.fixture
def soak(registry, kube, org, figures: Figures) -> Iterator[Soak]:
    with FaultProxy(registry.url) as proxy:
        sim = OperatorSim(kube.api, registry.url, registry.address, org, seed=7)
        proxy.intercept = sim.intercept
        sim.watch_kit_deletions()
        world = World(registry, kube, org)
        world.env.update(REGISTRY_ADDRESS=proxy.address, DRY_RUN="false", MIN_AGE="0")
        for _ in range(4):
            sim.new_app()
        for _ in range(3):
            sim.orphan_kit()
        sim.settle(retire=0)
        try:
            yield Soak(world, sim, proxy, Adversary(kube.api, sim), figures)
        finally:
            sim.close()
            world.http.close()


def _soak(s: Soak, runs: int, *, record: bool = True, gap: float = 0.0) -> tuple[list[str], list[str]]:
    """``runs`` racing runs, ``gap`` seconds apart; returns (judge's wrongful deletions, history violations)."""
    wrong: list[str] = []
    history: list[str] = []
    for i in range(runs):
        time.sleep(gap)
        since = s.sim.rv()
        s.adversary.arm()
        s.sim.start()
        code, events, seconds = s.run()
        s.sim.pause()
        s.adversary.join()
        assert s.sim.errors == [], s.sim.errors
        judged = [f"run {i}: {v.repo}@{v.digest}: {'; '.join(v.reasons)}"
                  for v in s.sim.deletions if v.rv >= since and v.reasons]
        wrong += judged
        history += [f"run {i}: {h}" for h in s.sim.history_violations(since)]
        if record:
            s.seconds.append(seconds)
            s.repositories = next(events_named(events, "summary")).get("repositories_scanned", 0)
            s.figures.soak_run(seconds)
            s.figures.run(wrongful=len(judged))
            assert code == 0, [e for e in events if e.get("level") in ("error", "warning")][:5]
            s.check_consistent()
        s.sim.settle()
    return wrong, history


@pytest.mark.timeout(3600 if SLOW else 300)
def test_no_wrongful_deletion_while_the_operator_races_the_collector(soak: Soak) -> None:
    wrong, history = _soak(soak, RUNS)
    assert wrong == [] and history == []
    assert soak.adversary.adopted > 0 and len(soak.sim.deletions) > 0, "the soak must race and delete"

    # A clean follow-up run (no operator activity) converges, and the next one has nothing to do.
    time.sleep(FRESH)  # kits created in the last moments of the soak count as building a little longer
    code, _, _ = soak.run()
    assert code == 0
    left = garbage(soak.sim, registry_contents(soak.world.http, soak.world.registry.url, soak.world.org))
    soak.figures.converged(len(left))
    assert left == []
    code, events, _ = soak.run()
    assert code == 0 and list(events_named(events, "deleted")) == []
    soak.check_consistent()
    soak.figures.notes.update({
        "soak_mode": "long" if SLOW else "short",
        "soak_operator_steps": dict(sorted(soak.sim.steps.items())),
        "soak_adoptions_racing_a_run": soak.adversary.adopted,
        "soak_deletions": len(soak.sim.deletions),
        "soak_kits_deleted_while_in_use": len(soak.sim.kits_deleted_in_use),
        "soak_run_seconds_median": round(sorted(soak.seconds)[len(soak.seconds) // 2], 3),
        "soak_repositories_scanned_last_run": soak.repositories,
    })


def test_without_the_second_read_the_soak_catches_wrongful_deletions(
    soak: Soak, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The soak is not vacuous: remove the re-reads and it sees the operator's adoptions lost."""

    async def first_read_only(reader, planner, first, log, **_):  # type: ignore[no-untyped-def]
        return first, planner(first)

    monkeypatch.setattr(kitgc.run, "plan_again", first_read_only)
    monkeypatch.setattr(kitgc.run, "recheck", lambda *a: None)
    wrong: list[str] = []
    for _ in range(3):  # a handful of runs is enough for the adversary to win one
        found, _history = _soak(soak, 3, record=False, gap=FRESH)  # kits old enough to be prunable
        wrong += found
        if wrong:
            break
    soak.figures.notes["soak_wrongful_deletions_without_the_fix"] = len(wrong)
    assert wrong, "the adversary's adoptions should have been lost without the second read"


def test_adoption_racing_the_kit_deletion_itself_keeps_the_image(soak: Soak) -> None:
    """The narrowest window: an Integration adopts a kit after the second read, as the collector
    deletes kits. The kit object may go (no API can make that atomic), but the read after
    deleting kits sees the adoption, so the image it runs stays."""
    fired: list[int] = []

    def at_first_kit_delete(method: str, path: str, query: dict[str, str]) -> None:
        if method == "DELETE" and "/integrationkits/" in path and not fired:
            fired.append(soak.sim.adopt(limit=10))

    soak.world.kube.api.on_request(at_first_kit_delete)
    time.sleep(FRESH)  # the fixture's kits were just created: let them stop counting as building
    since = soak.sim.rv()
    code, _, _ = soak.run()
    soak.figures.run(wrongful=sum(1 for v in soak.sim.deletions if v.rv >= since and v.reasons))
    assert code == 0 and fired and fired[0] > 0
    assert [v for v in soak.sim.deletions if v.rv >= since and v.reasons] == []
    assert soak.sim.history_violations(since) == []
    for app, kit in soak.sim.apps.items():
        k = soak.sim.kits[kit]
        assert soak.world.exists(k.repo, k.digest or ""), f"{app} runs an image that is gone"
    soak.figures.notes["kit_deleted_while_adopted_but_image_kept"] = len(soak.sim.kits_deleted_in_use)


# --- the union of reads, as a property ------------------------------------------------------


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan_inputs(), plan_inputs())
def test_what_either_read_protects_the_union_never_deletes(first, other) -> None:  # type: ignore[no-untyped-def]
    """Planning on the union of two reads deletes nothing either read alone protects."""
    second = other.cluster
    merged = merge_snapshots(first.cluster, second)
    union = make_plan(first.inventory, merged, first.policy, first.state, first.now)
    deleted = {d.manifest.key for d in union.manifests if d.action is Action.DELETE}
    for snap in (first.cluster, second):
        alone = make_plan(first.inventory, snap, first.policy, first.state, first.now)
        protected = {d.manifest.key for d in alone.manifests if d.referenced}
        assert not deleted & protected
        staying = {(d.kit.namespace, d.kit.name) for d in alone.kits if d.action is not Action.DELETE}
        gone = {(d.kit.namespace, d.kit.name) for d in union.kits if d.action is Action.DELETE}
        assert not gone & staying
    assert merge_snapshots(merged, first.cluster, second) == merged, "idempotent"
