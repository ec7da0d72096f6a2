"""End to end: what a real run pushes to the real Pushgateway matches what it really did.

Each case builds a small scene in the real registry and the emulated Kubernetes API, runs
``kitgc`` through its real entry point (in-process ``kitgc.cli.main``, and once as a real
``python -m kitgc`` subprocess), scrapes the Pushgateway's ``/metrics`` and checks every
pushed number against the registry and the cluster afterwards: survivors are counted in the
registry, kits in the emulator, and the reclaimable bytes are worked out from the bytes this
module pushed, not from anything the collector read.

The scene (one organization, four kit repositories):

* repository A, kit A (Ready, used by an Integration): ``a1`` is the kit's image (kept,
  referenced), ``a0`` an older build nobody uses (deleted);
* repository B, kit B (Ready, unused): the kit and its image ``b1`` are deleted;
* repository C, no kit: ``c1`` runs in a Deployment (kept, referenced), ``c2`` is deleted;
* repository D, no kit: an unreferenced two-architecture index, deleted with its children.

Every image shares ``images.SHARED_LAYER``; ``a1`` and ``c1`` stay, so that layer is never
reclaimable: what is reclaimable is each deleted manifest's body plus its own config blob.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kitgc import __version__
from kitgc.metrics import BUILD_INFO_METRIC, GAUGES, JOB, OUTCOME_METRIC, OUTCOMES, SUCCESS_METRIC
from testbed import images, objects
from testbed.pushgateway import GATEWAY_GROUP_METRICS, Pushgateway, Scrape, free_port
from testbed.world import _OURS, World, events_named

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = "e2e-metrics"
COUNTS = (
    "kitgc_repositories_scanned", "kitgc_manifests_scanned", "kitgc_manifests_referenced",
    "kitgc_manifests_eligible", "kitgc_manifests_deferred", "kitgc_manifests_deleted", "kitgc_kits_eligible",
    "kitgc_kits_deleted", "kitgc_delete_failures", "kitgc_registry_errors", "kitgc_bytes_reclaimable",
)


# --- what this module pushed, byte for byte ----------------------------------------------


@dataclass(frozen=True)
class Pushed:
    """One manifest pushed by this module: where, its digest, its body size and its blobs."""

    repo: str
    digest: str
    body_bytes: int
    blobs: dict[str, int] = field(default_factory=dict)  # digest -> size


def push_image(world: World, repo: str, *tags: str, architecture: str = "amd64") -> Pushed:
    """An image of a unique config blob and the shared layer; untagged when no tag is given."""
    layers = (images.SHARED_LAYER,)
    config = images.image_config(architecture, layers=layers)
    body = images.image_manifest(config, layers)
    url = world.registry.url
    for blob in (config, *layers):
        images.push_blob(url, repo, blob, client=world.http)
    for ref in tags or (images.digest_of(body),):
        images.push_manifest(url, repo, ref, body, images.OCI_MANIFEST, client=world.http)
    return Pushed(repo, images.digest_of(body), len(body), {images.digest_of(b): len(b) for b in (config, *layers)})


def push_index(world: World, repo: str, tag: str, children: Sequence[Pushed]) -> Pushed:
    entries = [{"mediaType": images.OCI_MANIFEST, "digest": c.digest, "size": c.body_bytes,
                "platform": {"os": "linux", "architecture": arch}}
               for c, arch in zip(children, images.ARCHITECTURES, strict=False)]
    body = json.dumps({"schemaVersion": 2, "mediaType": images.OCI_INDEX, "manifests": entries}).encode()
    images.push_manifest(world.registry.url, repo, tag, body, images.OCI_INDEX, client=world.http)
    return Pushed(repo, images.digest_of(body), len(body))


@dataclass
class Scene:
    kept: list[Pushed]  # referenced: must survive every run
    garbage: list[Pushed]  # unreferenced: deleted by a real run
    kits: list[str]  # every IntegrationKit created
    unused_kits: list[str]  # those a real run deletes

    @property
    def pushed(self) -> list[Pushed]:
        return self.kept + self.garbage

    @property
    def repositories(self) -> set[str]:
        return {p.repo for p in self.pushed}

    def reclaimable(self) -> int:
        """Bytes only the garbage uses: its bodies, and the blobs no kept manifest shares."""
        shared = {digest for p in self.kept for digest in p.blobs}
        assert images.digest_of(images.SHARED_LAYER) in shared  # the kept images hold the base layer
        own = {digest: size for p in self.garbage for digest, size in p.blobs.items() if digest not in shared}
        return sum(p.body_bytes for p in self.garbage) + sum(own.values())


def build_scene(world: World) -> Scene:
    world.anchor()
    kit_a, kit_b = objects.kit_name(f"{world.org}-a"), objects.kit_name(f"{world.org}-b")
    repo_a, repo_b = world.repo(kit_a), world.repo(kit_b)
    repo_c, repo_d = world.repo(objects.kit_name(f"{world.org}-c")), world.repo(objects.kit_name(f"{world.org}-d"))

    a0, a1 = push_image(world, repo_a, "0"), push_image(world, repo_a, "1")
    b1 = push_image(world, repo_b, "1")
    c1, c2 = push_image(world, repo_c, "1"), push_image(world, repo_c, "2")
    children = [push_image(world, repo_d, architecture=arch) for arch in ("amd64", "arm64")]
    index = push_index(world, repo_d, "1", children)

    world.add(
        objects.integration_kit(kit_a, "camel-k", image=world.image(repo_a, a1.digest)),
        objects.integration("orders", "camel-k", kit=kit_a, image=world.image(repo_a, a1.digest)),
        objects.integration_kit(kit_b, "camel-k", image=world.image(repo_b, b1.digest)),
        objects.deployment("billing", "shop", images=[world.image(repo_c, c1.digest)]),
    )
    return Scene(kept=[a1, c1], garbage=[a0, b1, c2, index, *children], kits=[kit_a, kit_b], unused_kits=[kit_b])


# --- running and reading -----------------------------------------------------------------


@pytest.fixture
def world(registry, kube, org, pushgateway: Pushgateway) -> Iterator[World]:
    w = World(registry, kube, org)
    w.env.update({"PUSHGATEWAY_URL": pushgateway.url, "CLUSTER_NAME": CLUSTER})
    yield w
    w.http.close()


def run_subprocess(world: World, **env: str) -> tuple[int, list[dict[str, Any]]]:
    """``python -m kitgc`` as the CronJob runs it, with World.run's environment."""
    full = {k: v for k, v in os.environ.items() if k not in _OURS}
    full.update({"REGISTRY_ADDRESS": world.registry.address, "REGISTRY_ORGANIZATION": world.org,
                 "REGISTRY_INSECURE": "true", "LOG_FORMAT": "json", "MIN_AGE": "0"})
    full.update(world.env)
    full.update(env)
    full["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "gc"), full.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-m", "kitgc"], env=full, cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return done.returncode, events


RUNNERS = {"in-process": World.run, "subprocess": run_subprocess}


def ours(gw: Pushgateway) -> tuple[Scrape, dict[str, float | None]]:
    """The scrape, and the value of each plain gauge of our group (None when absent)."""
    scrape = gw.scrape()
    return scrape, {name: scrape.value(name, job=JOB, instance=CLUSTER) for name in GAUGES}


def outcomes(scrape: Scrape) -> dict[str, float | None]:
    return {o: scrape.value(OUTCOME_METRIC, job=JOB, instance=CLUSTER, outcome=o) for o in OUTCOMES}


def one_hot(outcome: str) -> dict[str, float]:
    return {o: 1.0 if o == outcome else 0.0 for o in OUTCOMES}


def survivors(world: World, scene: Scene) -> list[Pushed]:
    return [p for p in scene.pushed if world.exists(p.repo, p.digest)]


def assert_plausible_times(values: dict[str, float | None], before: float, after: float) -> None:
    ended, duration = values["kitgc_last_run_timestamp_seconds"], values["kitgc_run_duration_seconds"]
    assert ended is not None and duration is not None
    assert before <= ended <= after
    assert 0 < duration <= after - before
    assert ended - duration >= before - 0.01  # started within the window (duration is rounded to 1 ms)


def assert_pushed_names_are_all_checked(scrape: Scrape) -> None:
    """No metric escapes these tests: our group holds exactly the gauges checked here."""
    names = scrape.names(job=JOB) - GATEWAY_GROUP_METRICS
    assert names == set(GAUGES) | {OUTCOME_METRIC, BUILD_INFO_METRIC}
    assert scrape.value(BUILD_INFO_METRIC, job=JOB, instance=CLUSTER, version=__version__) == 1


# --- the tests ---------------------------------------------------------------------------


@pytest.mark.parametrize("runner", sorted(RUNNERS))
def test_real_pass_pushes_exactly_what_it_did_to_registry_and_cluster(
    world: World, pushgateway: Pushgateway, runner: str
) -> None:
    scene = build_scene(world)
    assert len(world.kits()) == len(scene.kits)

    before = time.time()
    code, events = RUNNERS[runner](world, DRY_RUN="false")
    after = time.time()

    assert code == 0, events[-3:]
    scrape, got = ours(pushgateway)
    assert_pushed_names_are_all_checked(scrape)
    left = survivors(world, scene)
    kits_left = world.kits()
    assert sorted(p.digest for p in left) == sorted(p.digest for p in scene.kept)
    assert kits_left == sorted(set(scene.kits) - set(scene.unused_kits))
    deleted = len(scene.pushed) - len(left)
    assert (len(scene.pushed), deleted, len(scene.kits) - len(kits_left)) == (8, 6, 1)  # the scene as described
    assert {k: got[k] for k in COUNTS} == {
        "kitgc_repositories_scanned": len(scene.repositories),
        "kitgc_manifests_scanned": len(scene.pushed),
        "kitgc_manifests_referenced": len(left),  # every survivor is in use; MIN_AGE=0 keeps nothing else
        "kitgc_manifests_eligible": deleted,
        "kitgc_manifests_deferred": 0,
        "kitgc_manifests_deleted": deleted,
        "kitgc_kits_eligible": len(scene.kits) - len(kits_left),
        "kitgc_kits_deleted": len(scene.kits) - len(kits_left),
        "kitgc_delete_failures": 0,
        "kitgc_registry_errors": 0,
        "kitgc_bytes_reclaimable": scene.reclaimable(),
    }
    assert got["kitgc_dry_run"] == 0
    assert got["kitgc_registry_deletion_disabled"] == 0
    assert outcomes(scrape) == one_hot("success")
    assert_plausible_times(got, before, after)
    assert got[SUCCESS_METRIC] == got["kitgc_last_run_timestamp_seconds"]


def test_dry_run_pushes_what_a_real_run_would_do_and_deletes_nothing(world: World, pushgateway: Pushgateway) -> None:
    scene = build_scene(world)

    before = time.time()
    code, events = world.run(DRY_RUN="true")
    after = time.time()

    assert code == 0, events[-3:]
    scrape, got = ours(pushgateway)
    assert_pushed_names_are_all_checked(scrape)
    assert survivors(world, scene) == scene.pushed
    assert world.kits() == sorted(scene.kits)
    assert {k: got[k] for k in COUNTS} == {
        "kitgc_repositories_scanned": len(scene.repositories),
        "kitgc_manifests_scanned": len(scene.pushed),
        "kitgc_manifests_referenced": len(scene.kept),
        "kitgc_manifests_eligible": len(scene.garbage),  # would be deleted
        "kitgc_manifests_deferred": 0,
        "kitgc_manifests_deleted": 0,
        "kitgc_kits_eligible": len(scene.unused_kits),
        "kitgc_kits_deleted": 0,
        "kitgc_delete_failures": 0,
        "kitgc_registry_errors": 0,
        "kitgc_bytes_reclaimable": scene.reclaimable(),  # what the real run would free
    }
    assert got["kitgc_dry_run"] == 1
    assert got["kitgc_registry_deletion_disabled"] == 0
    assert outcomes(scrape) == one_hot("success")
    assert_plausible_times(got, before, after)
    assert got[SUCCESS_METRIC] == got["kitgc_last_run_timestamp_seconds"]

    # The real run that follows frees exactly what the dry run announced.
    code, events = world.run(DRY_RUN="false")
    assert code == 0, events[-3:]
    _, real = ours(pushgateway)
    assert survivors(world, scene) == scene.kept
    assert real["kitgc_manifests_deleted"] == got["kitgc_manifests_eligible"]
    assert real["kitgc_bytes_reclaimable"] == got["kitgc_bytes_reclaimable"]
    assert real["kitgc_kits_deleted"] == got["kitgc_kits_eligible"]


def test_aborted_run_after_a_success_keeps_the_success_time_and_reports_aborted(
    world: World, pushgateway: Pushgateway
) -> None:
    scene = build_scene(world)
    code, _ = world.run(DRY_RUN="true")
    assert code == 0
    _, first = ours(pushgateway)
    world.kube.inject("GET", r"/apis/apps/v1/deployments", status=403)

    before = time.time()
    code, events = world.run(DRY_RUN="false")
    after = time.time()

    assert code == 3, events[-3:]
    assert list(events_named(events, "run_aborted")), [e.get("event") for e in events]
    scrape, got = ours(pushgateway)
    assert_pushed_names_are_all_checked(scrape)
    assert survivors(world, scene) == scene.pushed  # nothing deleted
    assert world.kits() == sorted(scene.kits)
    assert {k: got[k] for k in COUNTS} == dict.fromkeys(COUNTS, 0)
    assert got["kitgc_dry_run"] == 0
    assert outcomes(scrape) == one_hot("aborted")
    assert_plausible_times(got, before, after)
    assert got[SUCCESS_METRIC] == first[SUCCESS_METRIC]  # left alone: KitGCNotSucceeding watches its age
    assert got["kitgc_last_run_timestamp_seconds"] > first["kitgc_last_run_timestamp_seconds"]


def test_pushgateway_down_changes_nothing_but_logs_metrics_push_failed(world: World) -> None:
    scene = build_scene(world)
    closed = f"http://127.0.0.1:{free_port()}"  # bound then released: nothing listens there

    started = time.monotonic()
    code, events = world.run(DRY_RUN="false", PUSHGATEWAY_URL=closed)

    assert code == 0, events[-3:]
    assert time.monotonic() - started < 30
    failed = list(events_named(events, "metrics_push_failed"))
    assert len(failed) == 1, failed
    assert failed[0]["url"] == closed
    assert failed[0]["level"] == "warning"
    assert survivors(world, scene) == scene.kept  # the pass itself went ahead


@pytest.mark.parametrize("runner", sorted(RUNNERS))
def test_config_error_pushes_config_error_and_keeps_the_success_time(
    world: World, pushgateway: Pushgateway, runner: str
) -> None:
    world.anchor()
    code, _ = world.run(DRY_RUN="true")
    assert code == 0
    _, first = ours(pushgateway)

    before = time.time()
    code, events = RUNNERS[runner](world, DRY_RUN="false", MIN_AGE="soon")
    after = time.time()

    assert code == 2, events[-3:]
    assert list(events_named(events, "config_error"))
    scrape, got = ours(pushgateway)
    assert_pushed_names_are_all_checked(scrape)
    assert outcomes(scrape) == one_hot("config_error")
    assert {k: got[k] for k in COUNTS} == dict.fromkeys(COUNTS, 0)
    assert got["kitgc_dry_run"] == 0  # DRY_RUN=false was readable, though nothing was touched
    assert got[SUCCESS_METRIC] == first[SUCCESS_METRIC]
    ended = got["kitgc_last_run_timestamp_seconds"]
    assert ended is not None and before <= ended <= after
    assert got["kitgc_run_duration_seconds"] == 0
