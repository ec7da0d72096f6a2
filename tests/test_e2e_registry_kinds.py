"""End to end: ``kitgc`` deletes the right manifests on every kind of registry, and keeps the
rest when the registry refuses.

Each test runs ``kitgc`` for real (``kitgc.cli.main`` through World.run, DRY_RUN=false,
MIN_AGE=0) with ``REGISTRY_ADDRESS`` = a registry personality (testbed.personalities) in
front of the real Distribution registry, and looks at what is LEFT in the registry behind
it, the exit code and the log events. Images are pushed through the personality, as a
build would push to that registry; cluster objects name the personality's address.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from testbed import images, objects
from testbed.faultproxy import FaultProxy
from testbed.personalities import (
    GcrPersonality,
    GhcrPersonality,
    HarborPersonality,
    NexusPersonality,
    QuayPersonality,
    ZotPersonality,
)
from testbed.world import World, events_named

PERSONALITIES: dict[str, type[FaultProxy]] = {
    "distribution": FaultProxy, "gcr": GcrPersonality, "harbor": HarborPersonality, "quay": QuayPersonality,
    "zot": ZotPersonality, "nexus": NexusPersonality,
}


@pytest.fixture
def world(registry, kube, org) -> Iterator[World]:
    w = World(registry, kube, org)
    w.anchor()
    yield w
    w.http.close()


def _push(world: World, proxy: FaultProxy, seed: str, *tags: str) -> tuple[str, str]:
    """A unique kit image pushed through ``proxy`` under ``tags``: (repository, digest)."""
    repo = world.repo(objects.kit_name(f"{world.org}-{seed}"))
    return repo, images.push_image(proxy.url, repo, tags, config=images.image_config(), client=world.http)


def _use(world: World, proxy: FaultProxy, repo: str, digest: str, name: str) -> None:
    """A Deployment runs ``repo@digest``, named at the personality's address."""
    world.add(objects.deployment(f"app-{name}", "shop", images=[f"{proxy.address}/{repo}@{digest}"]))


def _run(world: World, proxy: FaultProxy, kind: str, **env: str) -> tuple[int, list[dict[str, Any]]]:
    return world.run(DRY_RUN="false", REGISTRY_ADDRESS=proxy.address, REGISTRY_KIND=kind,
                     DELETE_EMPTY_REPOSITORIES="false", **env)


def _digest_deletes(proxy: FaultProxy, repo: str) -> list[tuple[str, int]]:
    """(digest, status) of every DELETE by digest in ``repo``, in order."""
    return [(s.path.rsplit("/", 1)[1], s.status)
            for s in proxy.requests("DELETE", rf"/v2/{re.escape(repo)}/manifests/sha256:[0-9a-f]{{64}}")]


# --- every kind: orphans go, referenced images stay -------------------------------------


@pytest.mark.parametrize("kind", list(PERSONALITIES))
def test_orphans_are_deleted_and_used_images_kept_on_every_kind(world: World, kind: str) -> None:
    with PERSONALITIES[kind](world.registry.url) as proxy:
        orphan_repo, orphan = _push(world, proxy, "orphan", "1", "2")
        used_repo, used = _push(world, proxy, "used", "1")
        _use(world, proxy, used_repo, used, "used")
        index_repo, _ = _push(world, proxy, "index-kept", "0")
        index, children = images.push_multiarch(proxy.url, index_repo, ("1",), client=world.http)
        code, events = _run(world, proxy, kind)
        assert code == 0, [e for e in events if e.get("log_level") in ("error", "warning")]
    assert not world.exists(orphan_repo, orphan)
    assert world.exists(used_repo, used) and world.tags(used_repo) == ["1"]
    deleted = {e["digest"] for e in events_named(events, "deleted")}
    assert orphan in deleted and used not in deleted
    if kind != "quay":  # Quay answers 404 for the untagged children: gone for the collector, kept upstream
        assert not [d for d in (index, *children) if world.exists(index_repo, d)]
    assert {index, *children} <= deleted


@pytest.mark.parametrize("kind", ["gcr", "harbor", "zot", "distribution"])
def test_index_children_go_after_their_index(world: World, kind: str) -> None:
    with PERSONALITIES[kind](world.registry.url) as proxy:
        repo, _ = _push(world, proxy, "multi", "0")
        index, children = images.push_multiarch(proxy.url, repo, ("1",), client=world.http)
        code, events = _run(world, proxy, kind)
        order = [d for d, status in _digest_deletes(proxy, repo) if status == 202]
    assert code == 0, events[-3:]
    assert order.index(index) < min(order.index(c) for c in children)
    assert not [d for d in (index, *children) if world.exists(repo, d)]


# --- GCR: tags first, learned from the answer ---------------------------------------------


@pytest.mark.parametrize("kind", ["distribution", "gcr"])
def test_gcr_dangling_tags_are_removed_first_whatever_the_kind_says(world: World, kind: str) -> None:
    with GcrPersonality(world.registry.url) as gcr:
        first_repo, first = _push(world, gcr, "first", "1", "2")
        second_repo, second = _push(world, gcr, "second", "1")
        code, events = _run(world, gcr, kind, CONCURRENCY="1")
        refused = [s for s in gcr.requests("DELETE") if s.status == 400]
    assert code == 0, events[-3:]
    assert not world.exists(first_repo, first) and not world.exists(second_repo, second)
    assert len(refused) == (1 if kind == "distribution" else 0)  # learned once, then tags go first
    assert len(list(events_named(events, "registry_untags_first"))) == (1 if kind == "distribution" else 0)


def test_gcr_untags_only_the_orphans_own_tags(world: World) -> None:
    """An orphan and a used image in one repository: only the orphan's tag is deleted before
    it (the tag that moved after the scan is covered in tests/test_v2delete.py)."""
    with GcrPersonality(world.registry.url) as gcr:
        repo, orphan = _push(world, gcr, "shared", "old")
        used = images.push_image(gcr.url, repo, ("shared",), config=images.image_config(), client=world.http)
        _use(world, gcr, repo, used, "shared")
        code, events = _run(world, gcr, "gcr")
        untagged = [s.path.rsplit("/", 1)[1] for s in gcr.requests("DELETE", r"/v2/.*/manifests/[^:]+")
                    if s.status == 202]
    assert code == 0, events[-3:]
    assert untagged == ["old"]
    assert not world.exists(repo, orphan)
    assert world.exists(repo, used) and world.tags(repo) == ["shared"]


# --- held by an index the scan cannot see: kept, exit 1 -----------------------------------


@pytest.mark.parametrize("kind", ["zot", "harbor", "gcr"])
def test_an_image_an_unseen_index_holds_is_retried_then_kept(world: World, kind: str) -> None:
    with PERSONALITIES[kind](world.registry.url) as proxy:
        repo, image = _push(world, proxy, "held", "1")
        holder = images.push_index(proxy.url, repo, (), children=[image], client=world.http)  # untagged
        code, events = _run(world, proxy, kind)
        attempts = [d for d, _ in _digest_deletes(proxy, repo) if d == image]
    assert code == 1, events[-3:]
    assert world.exists(repo, image) and world.exists(repo, holder)
    assert len(attempts) == 2  # once in its batch, once in a retry round that made no progress
    failed = [e for e in events_named(events, "delete_failed") if e.get("digest") == image]
    assert len(failed) == 1 and "held by another manifest" in failed[0]["error"]
    assert holder[:20] in failed[0]["error"]


# --- immutable tags: kept, not a failure ---------------------------------------------------


@pytest.mark.parametrize("kind", ["quay", "harbor"])
def test_immutable_tags_keep_their_image_and_the_run_succeeds(world: World, kind: str) -> None:
    personality = QuayPersonality if kind == "quay" else HarborPersonality
    with personality(world.registry.url, immutable_tags=["release-*"]) as proxy:
        held_repo, held = _push(world, proxy, "immutable", "release-1")
        orphan_repo, orphan = _push(world, proxy, "mutable", "1")
        code, events = _run(world, proxy, kind)
    assert code == 0, events[-3:]
    assert world.exists(held_repo, held) and world.tags(held_repo) == ["release-1"]
    assert not world.exists(orphan_repo, orphan)
    refused = list(events_named(events, "delete_refused_immutable"))
    assert [e["digest"] for e in refused] == [held]
    assert not list(events_named(events, "delete_failed"))
    (summary,) = events_named(events, "summary")
    assert summary["manifests_immutable"] == 1 and summary["delete_failures"] == 0

    # The next run remembers the refusal (state ConfigMap): kept with its own reason, not asked again.
    with personality(world.registry.url, immutable_tags=["release-*"]) as proxy:
        code, events = _run(world, proxy, kind)
        asked_again = _digest_deletes(proxy, held_repo)
    assert code == 0, events[-3:]
    assert asked_again == [] and world.exists(held_repo, held)
    (summary,) = events_named(events, "summary")
    assert summary["manifests_immutable"] == 1 and summary["manifests_eligible"] == 0


# --- Nexus: tags left behind are reported, and the next run is clean ------------------------


def test_nexus_tags_left_behind_are_reported_and_harmless(world: World) -> None:
    with NexusPersonality(world.registry.url) as nexus:
        repo, orphan = _push(world, nexus, "nexus", "1")
        code, events = _run(world, nexus, "nexus")
        assert code == 0, events[-3:]
        assert [e["tags"] for e in events_named(events, "tags_left_behind")] == [["1"]]
        again, events = _run(world, nexus, "nexus")
    assert again == 0, events[-3:]
    assert not world.exists(repo, orphan)
    assert not list(events_named(events, "deleted"))


# --- GHCR's v2 API refuses every DELETE: the run says what to do ------------------------


def test_ghcr_v2_refusal_stops_the_sweep_with_the_hint(world: World) -> None:
    with GhcrPersonality(world.registry.url) as ghcr:
        repos = [_push(world, ghcr, f"gh{i}", "1") for i in range(3)]
        for repo, digest in repos:  # no catalog on GHCR: unused kits name the repositories (and go first)
            kit = repo.rsplit("/camel-k-", 1)[1]
            world.add(objects.integration_kit(kit, "camel-k", image=f"{ghcr.address}/{repo}@{digest}"))
        code, events = _run(world, ghcr, "distribution", CONCURRENCY="1")
        deletes = ghcr.requests("DELETE")
    assert code == 1, events[-3:]
    disabled = list(events_named(events, "registry_deletion_disabled"))
    assert len(disabled) == 1
    assert "REGISTRY_KIND=ghcr" in disabled[0]["error"] and "storage.delete.enabled" in disabled[0]["error"]
    assert len(deletes) == 1  # the sweep stopped at the first refusal
    assert all(world.exists(repo, digest) for repo, digest in repos)
