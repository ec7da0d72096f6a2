"""SHARDS over an Indexed Job: shards running at once delete what one unsharded run would.

Every shard reads all references (they are global) and scans, plans and deletes only the
repositories whose hash falls in its shard; a kit goes with the shard of its repository;
each shard has its own Lease, state ConfigMap and Pushgateway group (grouping key
``shard``). The runs are real ``python -m kitgc`` processes started together against one
real registry and one emulated cluster.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kitgc.config import load
from kitgc.errors import ConfigError
from kitgc.metrics import JOB
from kitgc.shard import shard_of
from testbed import objects
from testbed.pushgateway import Pushgateway
from testbed.world import _OURS, World

ROOT = Path(__file__).resolve().parents[1]
SHARDS = 3


@pytest.fixture
def world(registry, kube, org) -> Iterator[World]:
    w = World(registry, kube, org)
    w.anchor()
    yield w
    w.http.close()


def _environment(world: World, **env: str) -> dict[str, str]:
    full = {k: v for k, v in os.environ.items() if k not in _OURS}
    full.update({"REGISTRY_ADDRESS": world.registry.address, "REGISTRY_ORGANIZATION": world.org,
                 "REGISTRY_INSECURE": "true", "LOG_FORMAT": "json", "MIN_AGE": "0"})
    full.update(world.env)
    full.update(env)
    full["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "gc"), full.get("PYTHONPATH")]))
    return full


def _run_together(world: World, runs: list[dict[str, str]]) -> list[tuple[int, list[dict[str, Any]]]]:
    """Start every run at once (as an Indexed Job's pods start), wait for all."""
    procs = [subprocess.Popen([sys.executable, "-m", "kitgc"], env=_environment(world, **env), cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for env in runs]
    out = []
    for p in procs:
        stdout, _ = p.communicate(timeout=120)
        out.append((p.returncode, [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]))
    return out


def _kit_in_each_shard(world: World, label: str, count: int) -> list[str]:
    """Kit names spread over every shard (so each shard has work)."""
    names: list[str] = []
    i = 0
    while len(names) < count:
        name = objects.kit_name(f"{world.org}-{label}-{i}")
        i += 1
        if len(names) < SHARDS and shard_of(f"camel-k-{name}", SHARDS) != len(names) % SHARDS:
            continue  # the first SHARDS kits: one per shard
        names.append(name)
    return names


def _scene(world: World) -> dict[str, Any]:
    """Used kits, unused kits, images run by Deployments, garbage, one index: across shards."""
    kept, garbage = set(), set()
    used = _kit_in_each_shard(world, "used", 6)
    unused = _kit_in_each_shard(world, "unused", 6)
    for name in used:
        repo = world.repo(name)
        image = world.push(repo, "2")
        old = world.push(repo, "1")
        world.add(objects.integration_kit(name, "camel-k", image=world.image(repo, image)),
                  objects.integration(f"it-{name[-6:]}", "camel-k", kit=name, image=world.image(repo, image)))
        kept.add((repo, image))
        garbage.add((repo, old))
    for name in unused:
        repo = world.repo(name)
        image = world.push(repo, "1")
        world.add(objects.integration_kit(name, "camel-k", image=world.image(repo, image)))
        garbage.add((repo, image))
    for n in range(6):  # repositories without a kit: run by a Deployment, or garbage
        repo = world.repo(objects.kit_name(f"{world.org}-loose-{n}"))
        image = world.push(repo, "1")
        if n % 2:
            world.add(objects.deployment(f"app-{n}", "shop", images=[world.image(repo, image)]))
            kept.add((repo, image))
        else:
            garbage.add((repo, image))
    return {"kept": kept, "garbage": garbage, "used": used, "unused": unused}


def _deleted(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["repository"], e["digest"]) for e in events if e.get("event") == "deleted"]


def test_shards_running_together_delete_exactly_what_one_run_would(world: World, tmp_path: Path,
                                                                   pushgateway: Pushgateway) -> None:
    scene = _scene(world)
    report = tmp_path / "plan.json"
    code, _ = world.run(DRY_RUN="true", REPORT_FILE=str(report))
    assert code == 0
    planned = json.loads(report.read_text())
    would = {(m["repository"], m["digest"]) for m in planned["manifests"] if m["action"] == "delete"}
    would_kits = {k["name"] for k in planned["kits"] if k["action"] == "delete"}
    assert would == scene["garbage"] and would_kits == set(scene["unused"])  # the scene as described

    runs = _run_together(world, [{"DRY_RUN": "false", "SHARDS": str(SHARDS), "JOB_COMPLETION_INDEX": str(i),
                                  "PUSHGATEWAY_URL": pushgateway.url, "CLUSTER_NAME": "sharded"}
                                 for i in range(SHARDS)])

    assert [code for code, _ in runs] == [0] * SHARDS, [events[-2:] for _, events in runs]
    deleted = [d for _, events in runs for d in _deleted(events)]
    assert len(deleted) == len(set(deleted)), "a manifest was deleted by two shards"
    assert set(deleted) == would
    assert all(len(_deleted(events)) > 0 for _, events in runs), "every shard had work in this scene"
    for repo, digest in scene["kept"]:
        assert world.exists(repo, digest), f"{repo}@{digest} is referenced and was deleted"
    assert set(world.kits()) == set(scene["used"])
    for i, (_, events) in enumerate(runs):
        for repo, _ in _deleted(events):
            assert shard_of(repo, SHARDS) == i, f"shard {i} deleted from {repo}, which is not its own"
        (started,) = [e for e in events if e.get("event") == "run_started"]
        assert started["shard"] == f"shard {i} of {SHARDS}"

    configmaps = world.kube.api.store.resource_for("v1", "ConfigMap")
    names = {o["metadata"]["name"] for o in world.kube.api.store.objects(configmaps)}
    assert {f"camel-k-kit-gc-state-shard-{i}" for i in range(SHARDS)} <= names
    scrape = pushgateway.scrape()
    for i in range(SHARDS):
        assert scrape.value("kitgc_manifests_deleted", job=JOB, instance="sharded", shard=str(i)) == \
            len(_deleted(runs[i][1]))


def test_a_kit_of_another_shard_holds_its_image_until_that_shard_deleted_it(world: World) -> None:
    """Jib: a kit whose build added nothing carries its parent's image as its own."""
    parent = _kit_in_each_shard(world, "parent", 1)[0]
    home = shard_of(f"camel-k-{parent}", SHARDS)
    child = next(objects.kit_name(f"{world.org}-child-{i}") for i in range(1000)
                 if shard_of(f"camel-k-{objects.kit_name(f'{world.org}-child-{i}')}", SHARDS) != home)
    repo = world.repo(parent)
    image = world.push(repo, "1")
    world.add(objects.integration_kit(child, "camel-k", image=world.image(repo, image)))  # unused, owns nothing

    env = {"DRY_RUN": "false", "SHARDS": str(SHARDS)}
    code, events = world.run(SHARD=str(home), **env)
    assert code == 0 and world.exists(repo, image), "the child kit, another shard's, still holds it"
    kept = [e for e in events if e.get("event") == "summary"]
    assert kept and kept[0]["manifests_deleted"] == 0

    code, _ = world.run(SHARD=str(shard_of(f"camel-k-{child}", SHARDS)), **env)
    assert code == 0 and child not in world.kits()

    code, events = world.run(SHARD=str(home), **env)
    assert code == 0 and not world.exists(repo, image)


@pytest.mark.parametrize(("env", "names"), [
    ({"SHARDS": "2"}, "JOB_COMPLETION_INDEX"),
    ({"SHARDS": "2", "JOB_COMPLETION_INDEX": "2"}, "JOB_COMPLETION_INDEX"),
    ({"SHARDS": "2", "SHARD": "5"}, "SHARD"),
    ({"SHARDS": "2", "JOB_COMPLETION_INDEX": "one"}, "JOB_COMPLETION_INDEX"),
    ({"SHARDS": "0"}, "SHARDS"),
    ({"SHARDS": "4", "SHARD": "0", "JOB_COMPLETION_INDEX": "2"}, "SHARD: 0 differs from JOB_COMPLETION_INDEX 2"),
])
def test_a_shard_that_cannot_know_its_index_is_a_configuration_error(env: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigError, match=names):
        load(env)


def test_each_shard_keeps_its_own_state_and_an_indexed_job_sets_the_index() -> None:
    s = load({"SHARDS": "4", "JOB_COMPLETION_INDEX": "3", "POD_NAMESPACE": "gc"})
    assert (s.shard.index, s.shard.count) == (3, 4)
    assert s.state_configmap == ("gc", "camel-k-kit-gc-state-shard-3")
    assert load({"JOB_COMPLETION_INDEX": "7"}).shard.count == 1  # a plain Job's index means nothing unsharded
    assert load({"SHARDS": "4", "SHARD": "2", "JOB_COMPLETION_INDEX": "2"}).shard.index == 2  # agreeing is fine


def test_the_hash_spreads_kit_repositories_and_ignores_the_organization() -> None:
    names = [f"camel-k-kit-{i:020d}" for i in range(3000)]
    counts = [sum(1 for n in names if shard_of(n, 4) == s) for s in range(4)]
    assert min(counts) > 600  # 750 each on average
    assert shard_of("a/camel-k-kit-x", 4) == shard_of("b/c/camel-k-kit-x", 4) == shard_of("camel-k-kit-x", 4)
