"""Registry faults, injected by a proxy in front of the real registry, during real runs.

Each case programs one fault, runs ``kitgc`` (DRY_RUN=false, MIN_AGE=0) against the proxy,
and then checks what is LEFT: nothing referenced is gone, the exit code is the contract's,
retries were bounded. Then the faults are cleared and a clean run must converge: it deletes
exactly the garbage that is left, and a kit object never outlives its image.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import pytest

from kitgc.errors import RegistryError
from kitgc.registry.client import RegistryClient
from tests.support import scene as scenes
from tests.support.faultproxy import Fault, FaultProxy
from tests.support.figures import Figures
from tests.support.world import World, events_named

MANIFESTS = r"/v2/.*/manifests/.*"
TAGS = r"/v2/.*/tags/list"
MAX_ATTEMPTS = 4  # RegistryClient's default: one try and three retries


@pytest.fixture
def world(registry, kube, org, proxy: FaultProxy) -> Iterator[World]:
    w = World(registry, kube, org)
    w.env.update(REGISTRY_ADDRESS=proxy.address, DRY_RUN="false", REGISTRY_TIMEOUT="1s")
    yield w
    w.http.close()


def _summary(events: list[dict]) -> dict:
    return next(events_named(events, "summary"))


def _max_attempts(proxy: FaultProxy) -> int:
    """The most times any one request (method, path, query) reached the proxy."""
    counts = Counter((s.method, s.path, s.query) for s in proxy.requests())
    return max(counts.values(), default=0)


def _converge(world: World, scene: scenes.Scene, proxy: FaultProxy, figures: Figures) -> None:
    """Clear the faults; one clean run deletes exactly what garbage is left, and nothing else."""
    proxy.clear()
    left = set(scene.garbage_left())
    code, events = world.run()
    figures.run(wrongful=len(scene.wrongful()))
    deleted = {(e["repository"], e["digest"]) for e in events_named(events, "deleted")}
    assert code == 0, events[-3:]
    assert deleted == {scene.garbage[label] for label in left}
    assert scene.wrongful() == [] and scene.kits_without_image() == []
    figures.converged(len(scene.garbage_left()))
    assert scene.garbage_left() == []


# --- transient faults: retried within bounds, the run ends as if nothing happened --------

TRANSIENT = {
    "500 on tag lists": Fault("status", "GET", TAGS, status=500, times=2),
    "502 on manifest GETs": Fault("status", "GET", MANIFESTS, status=502, times=3),
    "503 on DELETEs": Fault("status", "DELETE", MANIFESTS, status=503, times=2),
    "429 without Retry-After": Fault("status", "GET", MANIFESTS, status=429, times=2),
    "connection reset before the answer": Fault("reset", "GET", MANIFESTS, times=2),
    "DELETE done but its answer lost to a reset": Fault("reset", "DELETE", MANIFESTS, times=1, after=True),
    "answer slower than the timeout": Fault("slow", "GET", TAGS, delay=1.6, times=1),
    "DELETE done but answered after the timeout": Fault("slow", "DELETE", MANIFESTS, delay=1.6, times=1,
                                                        after=True),
    "body cut short": Fault("truncate", "GET", MANIFESTS, times=2),
}


@pytest.mark.parametrize("name", sorted(TRANSIENT))
def test_transient_fault_is_retried_and_the_run_completes(
    world: World, proxy: FaultProxy, figures: Figures, name: str
) -> None:
    scene = scenes.build(world)
    fault = TRANSIENT[name]
    proxy.add(fault)
    code, events = world.run()
    figures.run(wrongful=len(scene.wrongful()))
    assert fault.hits == fault.times, "the fault must actually have fired"
    assert code == 0, events[-3:]
    assert scene.wrongful() == [] and scene.garbage_left() == [] and scene.kits_without_image() == []
    assert _max_attempts(proxy) <= MAX_ATTEMPTS
    assert _summary(events)["registry_errors"] == 0


def test_429_retry_after_is_honoured(world: World, proxy: FaultProxy, figures: Figures) -> None:
    scene = scenes.build(world)
    proxy.add(Fault("status", "GET", r"/v2/_catalog", status=429, retry_after="1", times=1))
    code, _ = world.run()
    figures.run(wrongful=len(scene.wrongful()))
    first, second = proxy.requests("GET", r"/v2/_catalog")[:2]
    assert code == 0 and scene.garbage_left() == []
    assert second.time - first.time >= 0.9, "Retry-After: 1 means wait a second"


# --- persistent faults on one repository: it is kept whole, the run exits 1 --------------

def _persistent(scene: scenes.Scene, label: str, kind: str, method: str, what: str, **kw) -> Fault:
    repo = scene.repos[label]
    path = {"tags": rf"/v2/{repo}/tags/list", "manifests": rf"/v2/{repo}/manifests/.*"}[what]
    return Fault(kind, method, path, **kw)


PERSISTENT = {
    # name: (repository label, fault kind, method, what, options)
    "503 forever on manifests": ("plain", "status", "GET", "manifests", {"status": 503}),
    "429 forever on a tag list": ("used", "status", "GET", "tags", {"status": 429}),
    "resets forever on manifests": ("multi-index", "reset", "GET", "manifests", {}),
    "tag list slower than the timeout": ("plain", "slow", "GET", "tags", {"delay": 1.5}),
    "manifest bodies always cut short": ("used", "truncate", "GET", "manifests", {}),
    "tag list that is not JSON": ("plain", "garbage", "GET", "tags", {}),
    "manifest body that is not JSON": ("used", "garbage", "GET", "manifests", {}),
    "digest header that does not match the body": ("multi-index", "wrong_digest", "GET", "manifests", {}),
}


@pytest.mark.parametrize("name", sorted(PERSISTENT))
def test_repository_that_cannot_be_read_is_kept_whole_and_the_run_exits_1(
    world: World, proxy: FaultProxy, figures: Figures, name: str
) -> None:
    scene = scenes.build(world)
    label, kind, method, what, options = PERSISTENT[name]
    proxy.add(_persistent(scene, label, kind, method, what, **options))
    repo = scene.repos[label]
    started = time.monotonic()
    code, events = world.run()
    figures.run(wrongful=len(scene.wrongful()))
    assert code == 1, events[-3:]
    assert scene.wrongful() == []
    in_doubt = [lb for lb, (r, _) in scene.garbage.items() if r == repo]
    assert in_doubt and set(in_doubt) <= set(scene.garbage_left()), "a repository in doubt keeps everything"
    others = [lb for lb, (r, _) in scene.garbage.items() if r != repo]
    assert not set(others) & set(scene.garbage_left()), "the rest of the registry is still cleaned"
    assert _summary(events)["registry_errors"] >= 1
    assert _max_attempts(proxy) <= MAX_ATTEMPTS
    assert time.monotonic() - started < 30
    _converge(world, scene, proxy, figures)


def test_manifest_get_without_digest_header_is_identified_by_its_body(
    world: World, proxy: FaultProxy, figures: Figures
) -> None:
    scene = scenes.build(world)
    proxy.add(Fault("no_digest", "GET", MANIFESTS))
    code, events = world.run()
    figures.run(wrongful=len(scene.wrongful()))
    assert code == 0, events[-3:]
    assert scene.wrongful() == [] and scene.garbage_left() == []


async def test_head_without_digest_header_is_an_error_not_a_guess(registry, org, proxy: FaultProxy) -> None:
    from tests.support import images

    repo = f"{org}/camel-k-kit-head"
    images.push_image(registry.url, repo, ["1"])
    proxy.add(Fault("no_digest", "HEAD", MANIFESTS))
    async with RegistryClient(proxy.address, insecure=True) as client:
        with pytest.raises(RegistryError, match="no Docker-Content-Digest"):
            await client.head_manifest(repo, "1")
    assert proxy.injected["missing_digest_header"] == 1


# --- failures of the sweep itself ----------------------------------------------------------

def test_delete_that_keeps_failing_is_reported_and_the_rest_goes_on(
    world: World, proxy: FaultProxy, figures: Figures
) -> None:
    scene = scenes.build(world)
    repo, digest = scene.garbage["plain-stray"]
    proxy.add(Fault("status", "DELETE", rf"/v2/{repo}/manifests/{digest}", status=500))
    code, events = world.run()
    figures.run(wrongful=len(scene.wrongful()))
    assert code == 1
    assert scene.garbage_left() == ["plain-stray"] and scene.wrongful() == []
    assert len(proxy.requests("DELETE", rf"/v2/{repo}/manifests/{digest}")) == MAX_ATTEMPTS
    assert _summary(events)["delete_failures"] == 1
    _converge(world, scene, proxy, figures)


def test_kit_image_that_cannot_be_deleted_leaves_no_kit_without_its_image(
    world: World, proxy: FaultProxy, figures: Figures
) -> None:
    scene = scenes.build(world)
    repo, digest = scene.garbage["unused"]
    proxy.add(Fault("status", "DELETE", rf"/v2/{repo}/manifests/{digest}", status=503))
    code, _ = world.run()
    figures.run(wrongful=len(scene.wrongful()))
    assert code == 1
    assert scene.kits["unused"] not in world.kits(), "the kit goes first"
    assert scene.garbage_left() == ["unused"] and scene.kits_without_image() == []
    _converge(world, scene, proxy, figures)


@pytest.mark.parametrize("kind", ["status", "garbage"])
def test_catalog_that_cannot_be_read_deletes_nothing_and_exits_1_in_one_line(
    world: World, proxy: FaultProxy, figures: Figures, kind: str
) -> None:
    scene = scenes.build(world)
    proxy.add(Fault(kind, "GET", r"/v2/_catalog", status=503))
    code, events = world.run()
    figures.run(wrongful=len(scene.wrongful()))
    assert code == 1
    assert proxy.requests("DELETE") == [] and world.kube.api.store.objects(
        world.kube.api.store.resource_for("camel.apache.org/v1", "IntegrationKit"))
    failed = next(events_named(events, "run_failed"))
    assert "catalog" in failed["error"] and "\n" not in failed["error"]
    _converge(world, scene, proxy, figures)


def test_child_left_behind_by_its_deleted_index_is_found_and_deleted_later(
    world: World, proxy: FaultProxy, figures: Figures
) -> None:
    """Untagged children are found only through their index: once it is gone, the state remembers them."""
    scene = scenes.build(world)
    repo, child = scene.garbage["multi-child0"]
    proxy.add(Fault("status", "DELETE", rf"/v2/{repo}/manifests/{child}", status=500))
    code, _ = world.run()
    figures.run(wrongful=len(scene.wrongful()))
    assert code == 1
    assert scene.garbage_left() == ["multi-child0"], "the index went first, this child is now untagged"
    _converge(world, scene, proxy, figures)
