"""Registry faults, injected by a proxy in front of the real registry, during real runs.

Each case programs one fault, runs ``kitgc`` (DRY_RUN=false, MIN_AGE=0) against the proxy,
and then checks what is LEFT: nothing referenced is gone, the exit code is the contract's,
retries were bounded. Then the faults are cleared and a clean run must converge: it deletes
exactly the garbage that is left, and a kit object never outlives its image.

The cases are tables, one row per fault, its id the behaviour that row protects; each table
drives one test whose name is the promise every row of it keeps. A new fault is a new row.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from kitgc.registry.client import RegistryClient
from testbed import images
from testbed import scene as scenes
from testbed.faultproxy import Fault, FaultProxy
from testbed.figures import Figures
from testbed.world import World, events_named

MANIFESTS = r"/v2/.*/manifests/.*"
TAGS = r"/v2/.*/tags/list"
CATALOG = r"/v2/_catalog"
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


# --- faults the run gets over: it ends as if nothing had happened -------------------------

@dataclass(frozen=True)
class GotOver:
    """``retried``: a transient fault, which must fire exactly ``times`` times, each request
    reaching the registry at most MAX_ATTEMPTS times, and leave no registry error behind."""

    fault: Fault
    retried: bool = True
    check: Callable[[FaultProxy], None] | None = None


def _waited_as_retry_after_said(proxy: FaultProxy) -> None:
    first, second = proxy.requests("GET", CATALOG)[:2]
    assert second.time - first.time >= 0.9, "Retry-After: 1 means wait a second"


GOT_OVER = [
    pytest.param(GotOver(Fault("status", "GET", TAGS, status=500, times=2)), id="tag_list_500_is_retried"),
    pytest.param(GotOver(Fault("status", "GET", MANIFESTS, status=502, times=3)), id="manifest_get_502_is_retried"),
    pytest.param(GotOver(Fault("status", "DELETE", MANIFESTS, status=503, times=2)), id="delete_503_is_retried"),
    pytest.param(GotOver(Fault("status", "GET", MANIFESTS, status=429, times=2)),
                 id="429_without_retry_after_is_retried"),
    pytest.param(GotOver(Fault("reset", "GET", MANIFESTS, times=2)), id="reset_before_the_answer_is_retried"),
    pytest.param(GotOver(Fault("reset", "DELETE", MANIFESTS, times=1, after=True)),
                 id="delete_done_but_its_answer_lost_to_a_reset_counts_as_done"),
    pytest.param(GotOver(Fault("slow", "GET", TAGS, delay=1.6, times=1)),
                 id="answer_slower_than_the_timeout_is_retried"),
    pytest.param(GotOver(Fault("slow", "DELETE", MANIFESTS, delay=1.6, times=1, after=True)),
                 id="delete_done_but_answered_after_the_timeout_counts_as_done"),
    pytest.param(GotOver(Fault("truncate", "GET", MANIFESTS, times=2)), id="body_cut_short_is_retried"),
    pytest.param(GotOver(Fault("status", "GET", CATALOG, status=429, retry_after="1", times=1), retried=False,
                         check=_waited_as_retry_after_said), id="429_retry_after_is_honoured"),
    pytest.param(GotOver(Fault("no_digest", "GET", MANIFESTS), retried=False),
                 id="manifest_get_without_digest_header_is_identified_by_its_body"),
]


@pytest.mark.parametrize("case", GOT_OVER)
def test_run_gets_over_the_fault_and_completes(
    world: World, proxy: FaultProxy, figures: Figures, case: GotOver
) -> None:
    scene = scenes.build(world)
    fault = replace(case.fault, hits=0)  # a counter of its own for this run
    proxy.add(fault)
    code, events = world.run()
    figures.run(wrongful=len(scene.wrongful()))
    if case.retried:
        assert fault.hits == fault.times, "the fault must actually have fired"
    assert code == 0, events[-3:]
    assert scene.wrongful() == [] and scene.garbage_left() == [] and scene.kits_without_image() == []
    if case.retried:
        assert _max_attempts(proxy) <= MAX_ATTEMPTS
        assert _summary(events)["registry_errors"] == 0
    if case.check is not None:
        case.check(proxy)


# --- persistent faults on one repository: it is kept whole, the run exits 1 --------------

@dataclass(frozen=True)
class Unreadable:
    """A fault, forever, on reading one repository of the scene (its tag list or its manifests)."""

    label: str  # the scene's repository
    kind: str
    what: str  # "tags" or "manifests"
    options: dict[str, Any] = field(default_factory=dict)

    def fault(self, scene: scenes.Scene) -> Fault:
        repo = scene.repos[self.label]
        path = {"tags": rf"/v2/{repo}/tags/list", "manifests": rf"/v2/{repo}/manifests/.*"}[self.what]
        return Fault(self.kind, "GET", path, **self.options)


UNREADABLE = [
    pytest.param(Unreadable("plain", "status", "manifests", {"status": 503}), id="manifests_503_forever"),
    pytest.param(Unreadable("used", "status", "tags", {"status": 429}), id="tag_list_429_forever"),
    pytest.param(Unreadable("multi-index", "reset", "manifests"), id="manifests_reset_forever"),
    pytest.param(Unreadable("plain", "slow", "tags", {"delay": 1.5}), id="tag_list_slower_than_the_timeout"),
    pytest.param(Unreadable("used", "truncate", "manifests"), id="manifest_bodies_always_cut_short"),
    pytest.param(Unreadable("plain", "garbage", "tags"), id="tag_list_not_json"),
    pytest.param(Unreadable("used", "garbage", "manifests"), id="manifest_body_not_json"),
    pytest.param(Unreadable("multi-index", "wrong_digest", "manifests"), id="digest_header_not_matching_the_body"),
]


@pytest.mark.parametrize("case", UNREADABLE)
def test_repository_that_cannot_be_read_is_kept_whole_and_the_run_exits_1(
    world: World, proxy: FaultProxy, figures: Figures, case: Unreadable
) -> None:
    scene = scenes.build(world)
    proxy.add(case.fault(scene))
    repo = scene.repos[case.label]
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


# --- a DELETE that keeps failing: only that image stays, the run exits 1 -----------------

@dataclass(frozen=True)
class Undeletable:
    """Every DELETE of the scene's garbage image ``label`` fails with ``status``."""

    label: str
    status: int
    why: str  # what the image staying behind shows
    check: Callable[[World, scenes.Scene, FaultProxy, list[dict], str], None] | None = None


def _failure_reported_after_bounded_attempts(world: World, scene: scenes.Scene, proxy: FaultProxy,
                                             events: list[dict], path: str) -> None:
    assert len(proxy.requests("DELETE", path)) == MAX_ATTEMPTS
    assert _summary(events)["delete_failures"] == 1


def _kit_deleted_first(world: World, scene: scenes.Scene, proxy: FaultProxy, events: list[dict], path: str) -> None:
    assert scene.kits["unused"] not in world.kits(), "the kit goes first"


UNDELETABLE = [
    pytest.param(Undeletable("plain-stray", 500, "the rest goes on", _failure_reported_after_bounded_attempts),
                 id="delete_that_keeps_failing_is_reported_and_the_rest_goes_on"),
    pytest.param(Undeletable("unused", 503, "the kit went first, its image stays", _kit_deleted_first),
                 id="kit_image_that_cannot_be_deleted_leaves_no_kit_without_its_image"),
    pytest.param(Undeletable("multi-child0", 500, "the index went first, this child is now untagged"),
                 id="child_left_behind_by_its_deleted_index_is_found_and_deleted_later"),
]


@pytest.mark.parametrize("case", UNDELETABLE)
def test_image_that_cannot_be_deleted_stays_alone_and_a_clean_run_deletes_it_later(
    world: World, proxy: FaultProxy, figures: Figures, case: Undeletable
) -> None:
    """Only that image stays, and no kit without its image; the clean run afterwards deletes it,
    even an untagged child (found only through its index: once that is gone, the state remembers it)."""
    scene = scenes.build(world)
    repo, digest = scene.garbage[case.label]
    path = rf"/v2/{repo}/manifests/{digest}"
    proxy.add(Fault("status", "DELETE", path, status=case.status))
    code, events = world.run()
    figures.run(wrongful=len(scene.wrongful()))
    assert code == 1
    assert scene.garbage_left() == [case.label], case.why
    assert scene.wrongful() == [] and scene.kits_without_image() == []
    if case.check is not None:
        case.check(world, scene, proxy, events, path)
    _converge(world, scene, proxy, figures)


# --- the catalog itself ------------------------------------------------------------------

@pytest.mark.parametrize("kind", [pytest.param("status", id="catalog_503"),
                                  pytest.param("garbage", id="catalog_not_json")])
def test_catalog_that_cannot_be_read_deletes_nothing_and_exits_1_in_one_line(
    world: World, proxy: FaultProxy, figures: Figures, kind: str
) -> None:
    scene = scenes.build(world)
    proxy.add(Fault(kind, "GET", CATALOG, status=503))
    code, events = world.run()
    figures.run(wrongful=len(scene.wrongful()))
    assert code == 1
    assert proxy.requests("DELETE") == [] and world.kube.api.store.objects(
        world.kube.api.store.resource_for("camel.apache.org/v1", "IntegrationKit"))
    failed = next(events_named(events, "run_failed"))
    assert "catalog" in failed["error"] and "\n" not in failed["error"]
    _converge(world, scene, proxy, figures)


# --- the client alone --------------------------------------------------------------------

async def test_get_without_digest_header_is_checked_against_the_body_not_trusted(
    registry, org, proxy: FaultProxy
) -> None:
    repo = f"{org}/camel-k-kit-head"
    digest = images.push_image(registry.url, repo, ["1"])
    proxy.add(Fault("no_digest", "GET", MANIFESTS, times=2))
    async with RegistryClient(proxy.address, insecure=True) as client:
        assert (await client.get_manifest(repo, "1")).digest == digest  # computed from the body
        assert (await client.get_manifest(repo, digest)).digest == digest  # and checked against the request
    assert proxy.injected["missing_digest_header"] == 2
