"""End to end, one planner rule at a time, against the real registry and the emulated API.

Every test looks at what is LEFT afterwards (registry content, kit objects, the state
ConfigMap, the report file), not only at what was logged.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from testbed import images, objects
from testbed.world import World, events_named

OLD = "2024-01-01T00:00:00Z"


def _recent(hours: float) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def world(registry, kube, org) -> World:
    w = World(registry, kube, org)
    w.anchor()
    yield w
    w.http.close()


def _kit(w: World, seed: str, *, kit_type: str = "platform", phase: str = "Ready", created: str = OLD,
         base: str | None = None, tags: tuple[str, ...] = ("1",)) -> tuple[str, str, str]:
    """Push a kit image and create its IntegrationKit; returns (kit name, repository, digest)."""
    name = objects.kit_name(seed)
    repo = w.repo(name)
    digest = w.push(repo, *tags)
    w.add(objects.integration_kit(name, "camel-k", kit_type=kit_type, phase=phase, created=created,
                                  image=w.image(repo, digest), base_image=base))
    return name, repo, digest


def test_chain_of_unused_kits_goes_with_its_images(world: World) -> None:
    parent, prepo, pdig = _kit(world, "parent")
    child, crepo, cdig = _kit(world, "child", base=world.image(prepo, pdig))
    code, events = world.run(DRY_RUN="false")
    assert code == 0
    assert parent not in world.kits() and child not in world.kits()
    assert not world.exists(prepo, pdig) and not world.exists(crepo, cdig)
    assert {e["kit"] for e in events_named(events, "kit_deleted")} == {f"camel-k/{parent}", f"camel-k/{child}"}


def test_used_kit_keeps_its_base_image_kit(world: World) -> None:
    parent, prepo, pdig = _kit(world, "parent")
    child, crepo, cdig = _kit(world, "child", base=world.image(prepo, pdig))
    world.add(objects.integration("orders", "shop", kit=child, kit_namespace="camel-k", image=world.image(crepo, cdig)))
    code, _ = world.run(DRY_RUN="false")
    assert code == 0
    assert {parent, child} <= set(world.kits())
    assert world.exists(prepo, pdig) and world.exists(crepo, cdig)


def test_old_rebuilt_digest_of_a_live_kit_is_deleted(world: World) -> None:
    name, repo, current = _kit(world, "live", tags=("2",))
    old = world.push(repo, "1")
    world.add(objects.integration("orders", "shop", kit=name, kit_namespace="camel-k",
                                  image=world.image(repo, current)))
    code, _ = world.run(DRY_RUN="false")
    assert code == 0
    assert world.exists(repo, current) and not world.exists(repo, old)
    assert name in world.kits()


def test_building_kit_protects_its_whole_repository(world: World) -> None:
    name = objects.kit_name("building")
    repo = world.repo(name)
    pushed = world.push(repo, "7")
    world.add(objects.integration_kit(name, "camel-k", phase="Build Running", created=OLD))
    code, _ = world.run(DRY_RUN="false")
    assert code == 0
    assert world.exists(repo, pushed) and name in world.kits()


@pytest.mark.parametrize("kit_type", ["external", "synthetic"])
def test_external_and_synthetic_kits_are_never_pruned(world: World, kit_type: str) -> None:
    name, repo, digest = _kit(world, kit_type, kit_type=kit_type)
    code, _ = world.run(DRY_RUN="false")
    assert code == 0
    assert name in world.kits() and world.exists(repo, digest)


def test_young_kit_is_kept_until_min_age(world: World) -> None:
    name, repo, digest = _kit(world, "young", created=_recent(2))
    code, _ = world.run(DRY_RUN="false", MIN_AGE="24h")
    assert code == 0
    assert name in world.kits() and world.exists(repo, digest)
    code, _ = world.run(DRY_RUN="false", MIN_AGE="1h")
    assert code == 0
    assert name not in world.kits() and not world.exists(repo, digest)


def test_orphan_waits_for_min_age_from_first_seen_in_state(world: World) -> None:
    repo = world.repo(objects.kit_name("orphan"))
    digest = world.push(repo, "1")
    code, _ = world.run(DRY_RUN="false", MIN_AGE="1h")
    assert code == 0 and world.exists(repo, digest)
    cm = world.kube.api.store.get(world.kube.api.store.resource_for("v1", "ConfigMap"), "default",
                                  "camel-k-kit-gc-state")
    assert cm["metadata"]["name"] == "camel-k-kit-gc-state"
    code, _ = world.run(DRY_RUN="false", MIN_AGE="0")
    assert code == 0 and not world.exists(repo, digest)


def test_max_deletions_defers_the_rest_oldest_first(world: World) -> None:
    repos = [world.repo(objects.kit_name(f"orphan-{i}")) for i in range(3)]
    digests = [world.push(r, "1") for r in repos]
    code, events = world.run(DRY_RUN="false", MAX_DELETIONS="2")
    assert code == 0
    left = [d for r, d in zip(repos, digests, strict=True) if world.exists(r, d)]
    assert len(left) == 1
    summary = next(events_named(events, "summary"))
    assert summary["manifests_deleted"] == 2 and summary["manifests_deferred"] == 1
    code, _ = world.run(DRY_RUN="false", MAX_DELETIONS="2")
    assert code == 0 and not any(world.exists(r, d) for r, d in zip(repos, digests, strict=True))


def test_prune_kits_off_keeps_kits_and_their_images(world: World) -> None:
    name, repo, digest = _kit(world, "unused")
    code, _ = world.run(DRY_RUN="false", PRUNE_KITS="false")
    assert code == 0
    assert name in world.kits() and world.exists(repo, digest)


def test_repositories_outside_scope_are_never_touched(world: World, registry) -> None:
    app = f"{world.org}/some-app"
    other = f"someone-else/camel-k-{objects.kit_name('x')}"
    nested = f"{world.org}/nested/camel-k-{objects.kit_name('y')}"
    digests = {r: world.push(r, "1") for r in (app, other, nested)}
    code, _ = world.run(DRY_RUN="false")
    assert code == 0
    assert all(world.exists(r, d) for r, d in digests.items())


def test_dry_run_writes_nothing_anywhere(world: World) -> None:
    name, repo, digest = _kit(world, "unused")
    orphan = world.repo(objects.kit_name("orphan"))
    odig = world.push(orphan, "1")
    before = len(world.kube.requests)
    code, events = world.run()  # DRY_RUN defaults to true
    assert code == 0
    assert world.kube.writes() == []
    assert len(world.kube.requests) > before
    assert world.exists(repo, digest) and world.exists(orphan, odig) and name in world.kits()
    would = {e["digest"] for e in events_named(events, "would_delete")}
    assert would == {digest, odig}


def test_unreadable_reference_source_deletes_nothing_and_exits_3(world: World) -> None:
    orphan = world.repo(objects.kit_name("orphan"))
    odig = world.push(orphan, "1")
    world.kube.inject("GET", r"/apis/apps/v1/replicasets", status=403)
    code, events = world.run(DRY_RUN="false")
    assert code == 3
    assert world.exists(orphan, odig)
    assert world.kube.writes() == []
    aborted = next(events_named(events, "run_aborted"))
    assert "replicasets" in aborted["error"]


def test_camel_k_crds_absent_aborts(world: World) -> None:
    world.kube.serve("camel.apache.org", on=False)
    code, events = world.run(DRY_RUN="false")
    assert code == 3
    assert "Camel K" in next(events_named(events, "run_aborted"))["error"]


def test_unparsable_reference_aborts_naming_it(world: World) -> None:
    orphan = world.repo(objects.kit_name("orphan"))
    odig = world.push(orphan, "1")
    world.add(objects.pod("broken", "shop", images=["Registry.Example/UPPER CASE:tag"]))
    code, events = world.run(DRY_RUN="false")
    assert code == 3
    assert world.exists(orphan, odig)
    assert "Pod shop/broken" in next(events_named(events, "run_aborted"))["error"]


def test_report_file_holds_every_decision_with_reasons(world: World, tmp_path) -> None:
    name, repo, digest = _kit(world, "used")
    world.add(objects.integration("orders", "shop", kit=name, kit_namespace="camel-k", image=world.image(repo, digest)))
    orphan = world.repo(objects.kit_name("orphan"))
    odig = world.push(orphan, "1")
    report = tmp_path / "report.json"
    code, _ = world.run(REPORT_FILE=str(report))
    assert code == 0
    data = json.loads(report.read_text())
    by_digest = {m["digest"]: m for m in data["manifests"]}
    kept = by_digest[digest]
    assert kept["action"] == "keep" and kept["referenced"] is True
    assert any(f"IntegrationKit camel-k/{name}" in r or "Integration shop/orders" in r for r in kept["reasons"])
    assert by_digest[odig]["action"] == "delete" and by_digest[odig]["deleted"] is False
    assert data["summary"]["dry_run"] is True and data["summary"]["manifests_eligible"] == 1


def test_registry_discovered_from_the_integration_platform(world: World) -> None:
    world.add(objects.integration_platform("camel-k", "camel-k", address=world.registry.address,
                                           organization=world.org, insecure=True))
    orphan = world.repo(objects.kit_name("orphan"))
    odig = world.push(orphan, "1")
    code, _ = world.run(DRY_RUN="false", REGISTRY_ADDRESS="", REGISTRY_ORGANIZATION="", REGISTRY_INSECURE="")
    assert code == 0
    assert not world.exists(orphan, odig)


def test_docker_schema2_and_manifest_list_are_collected(world: World) -> None:
    repo = world.repo(objects.kit_name("docker"))
    index, children = images.push_multiarch(world.registry.url, repo, ["1"], index_type=images.DOCKER_LIST,
                                            client=world.http)
    code, _ = world.run(DRY_RUN="false")
    assert code == 0
    assert not world.exists(repo, index) and not any(world.exists(repo, c) for c in children)
