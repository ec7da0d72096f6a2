"""Concurrent runs, SIGKILL and SIGTERM, with real ``python -m kitgc`` processes.

* Two runs started at once: exactly one sweeps; the other logs ``lease_held``, exits 3 and
  sends no DELETE.
* A run killed with SIGKILL in the middle of its sweep: the next run finds the Lease held and
  deletes nothing; once the Lease expires (LEASE_DURATION) a run takes it over and converges;
  at no point is there a kit object whose image is gone.
* SIGTERM (what Kubernetes sends): the deletion in flight completes, nothing more is
  deleted, the Lease is released, the run exits 1 and says why.

The fault proxy holds DELETEs at chosen moments, so the interleavings are forced, not hoped for.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from testbed import scene as scenes
from testbed.faultproxy import FaultProxy, Forward, Reply
from testbed.figures import Figures
from testbed.world import World, events_named

LEASE_PATH = "/apis/coordination.k8s.io/v1/namespaces/default/leases/camel-k-kit-gc"


@dataclass
class Proc:
    popen: subprocess.Popen[str]

    def finish(self, timeout: float = 60) -> tuple[int, list[dict]]:
        out, _ = self.popen.communicate(timeout=timeout)
        events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        return self.popen.returncode, events


@pytest.fixture
def world(registry, kube, org, proxy: FaultProxy) -> Iterator[World]:
    w = World(registry, kube, org)
    w.env.update(REGISTRY_ADDRESS=proxy.address, DRY_RUN="false", CONCURRENCY="1")
    yield w
    w.http.close()


def spawn(world: World, **extra: str) -> Proc:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "DRY_RUN", "MIN_AGE"))}
    env.update({"REGISTRY_ADDRESS": world.registry.address, "REGISTRY_ORGANIZATION": world.org,
                "REGISTRY_INSECURE": "true", "LOG_FORMAT": "json", "MIN_AGE": "0", **world.env, **extra})
    popen = subprocess.Popen([sys.executable, "-m", "kitgc"], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    return Proc(popen)


def _held_deletes(proxy: FaultProxy, release: threading.Event, first_done: threading.Event | None = None,
                  hold_after_first: float = 0.0) -> None:
    """Hold every registry DELETE until ``release``; optionally signal after the first one."""
    count = [0]

    def intercept(method: str, path: str, forward: Forward) -> Reply:
        if method != "DELETE":
            return forward()
        release.wait(timeout=60)
        reply = forward()
        count[0] += 1
        if first_done is not None and count[0] == 1:
            first_done.set()
            time.sleep(hold_after_first)
        return reply

    proxy.intercept = intercept


def test_two_runs_started_at_once_do_not_both_sweep(world: World, proxy: FaultProxy, figures: Figures) -> None:
    scene = scenes.build(world)
    release = threading.Event()
    _held_deletes(proxy, release)
    procs = [spawn(world), spawn(world)]
    # Whoever took the Lease is now held in its first DELETE; the other must give up on its own.
    deadline = time.monotonic() + 60
    while all(p.popen.poll() is None for p in procs) and time.monotonic() < deadline:
        time.sleep(0.05)
    release.set()
    results = [p.finish() for p in procs]
    for _ in results:
        figures.run(wrongful=len(scene.wrongful()))
    codes = sorted(code for code, _ in results)
    assert codes == [0, 3], [e for _, ev in results for e in ev if e.get("level") == "error"]
    loser = next(ev for code, ev in results if code == 3)
    assert next(events_named(loser, "lease_held"))
    assert list(events_named(loser, "deleted")) == [] and list(events_named(loser, "kit_deleted")) == []
    deletes = [(s.path) for s in proxy.requests("DELETE")]
    assert len(deletes) == len(set(deletes)) == len(scene.garbage), "each garbage manifest deleted once"
    assert scene.wrongful() == [] and scene.garbage_left() == [] and scene.kits_without_image() == []


def test_run_killed_mid_sweep_leaves_a_consistent_state_and_its_lease_expires(
    world: World, proxy: FaultProxy, figures: Figures
) -> None:
    scene = scenes.build(world)
    release, first_done = threading.Event(), threading.Event()
    release.set()
    _held_deletes(proxy, release, first_done, hold_after_first=30)
    victim = spawn(world, LEASE_DURATION="2s")
    assert first_done.wait(timeout=60), "the run never reached its sweep"
    victim.popen.send_signal(signal.SIGKILL)
    victim.finish()
    figures.fault("sigkill_mid_sweep")
    proxy.intercept = None
    kits_before = world.kits()
    assert scene.kits_without_image() == [], "kits go first: a kill can leave images, never a kit without one"
    assert scene.wrongful() == [] and scene.garbage_left(), "killed mid-sweep, some garbage is left"

    deletes_before = len(proxy.requests("DELETE"))
    code, events = world.run(LEASE_DURATION="2s")  # at once: the dead run's Lease has not expired
    figures.run(wrongful=len(scene.wrongful()))
    assert code == 3 and next(events_named(events, "lease_held"))
    assert len(proxy.requests("DELETE")) == deletes_before and world.kits() == kits_before

    time.sleep(2.2)
    code, events = world.run(LEASE_DURATION="2s")
    figures.run(wrongful=len(scene.wrongful()))
    assert code == 0, events[-3:]
    assert next(events_named(events, "lease_taken_over"))
    assert len(proxy.requests("DELETE")) > deletes_before
    assert scene.wrongful() == [] and scene.kits_without_image() == []
    figures.converged(len(scene.garbage_left()))
    assert scene.garbage_left() == []
    lease = world.kube.api.store.get(world.kube.api.store.resource_for("coordination.k8s.io/v1", "Lease"),
                                     "default", "camel-k-kit-gc")
    assert not lease["spec"].get("holderIdentity"), "released at the end"
    assert lease["spec"]["leaseTransitions"] >= 1


def test_sigterm_stops_after_the_deletion_in_flight(world: World, proxy: FaultProxy, figures: Figures) -> None:
    scene = scenes.build(world)
    first_sent = threading.Event()
    proc: list[Proc] = []

    def intercept(method: str, path: str, forward: Forward) -> Reply:
        if method != "DELETE":
            return forward()
        if not first_sent.is_set():
            first_sent.set()
            proc[0].popen.send_signal(signal.SIGTERM)  # arrives while this DELETE is in flight
            time.sleep(0.5)
        return forward()

    proxy.intercept = intercept
    proc.append(spawn(world))
    code, events = proc[0].finish()
    figures.run(wrongful=len(scene.wrongful()))
    figures.fault("sigterm_mid_sweep")
    assert code == 1, [e for e in events if e.get("level") in ("warning", "error")]
    assert next(events_named(events, "stop_requested"))["signal"] == "SIGTERM"
    sent = proxy.requests("DELETE")
    logged = list(events_named(events, "deleted"))
    assert len(sent) == 1 and len(logged) == 1, "the one in flight completes, no other starts"
    assert "SIGTERM" in next(events_named(events, "summary"))["message"]
    assert next(events_named(events, "lease_released"))
    assert scene.wrongful() == [] and scene.kits_without_image() == []

    proxy.intercept = None
    code, _ = world.run()  # the next run picks up where it stopped
    figures.run(wrongful=len(scene.wrongful()))
    assert code == 0
    figures.converged(len(scene.garbage_left()))
    assert scene.garbage_left() == [] and scene.wrongful() == []


def test_run_that_loses_its_lease_stops_deleting(world: World, proxy: FaultProxy, figures: Figures) -> None:
    """Someone else took the Lease (say, after a long pause of this process): stop sweeping."""
    scene = scenes.build(world)
    store = world.kube.api.store
    leases = store.resource_for("coordination.k8s.io/v1", "Lease")
    stolen = threading.Event()

    def intercept(method: str, path: str, forward: Forward) -> Reply:
        if method == "DELETE" and not stolen.is_set():
            lease = store.get(leases, "default", "camel-k-kit-gc")
            store.update(leases, "default", "camel-k-kit-gc",
                         {**lease, "spec": {**lease["spec"], "holderIdentity": "someone-else"}})
            stolen.set()
            time.sleep(1.0)  # the renewal (every 1/3 s) now meets a 409
        return forward()

    proxy.intercept = intercept
    code, events = world.run(LEASE_DURATION="1s")
    figures.run(wrongful=len(scene.wrongful()))
    figures.fault("lease_stolen_mid_sweep")
    assert code == 1
    assert next(events_named(events, "lease_lost"))
    assert "Lease was lost" in next(events_named(events, "summary"))["message"]
    assert len(proxy.requests("DELETE")) == 1, "nothing after the deletion in flight"
    assert scene.wrongful() == [] and scene.kits_without_image() == []
    lease = store.get(leases, "default", "camel-k-kit-gc")
    assert lease["spec"]["holderIdentity"] == "someone-else", "a lost Lease is not released over its new holder"
