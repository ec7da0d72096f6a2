"""The dockerhub store: Docker Hub listed and untagged through the Hub API, read through v2 HEAD first.

Against the real Distribution registry behind :class:`~testbed.personalities.DockerHubPersonality`
(no catalog; v2 DELETE either refused outright, ``mode="unsupported"``, or allowed only for an
untagged manifest, ``mode="untagged_only"``: sources disagree, so both) and
:class:`~testbed.emulators.dockerhub.DockerHubEmulator` (the Hub API: login, repositories,
tags, tag and repository deletion, acting through the personality on the same registry).
End-to-end runs go through ``kitgc.cli.main`` and look at what v2 clients still see; the
store's own steps are called directly.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from kitgc.config import Settings
from kitgc.errors import DeletionDisabled, RegistryError
from kitgc.registry.client import RegistryClient
from kitgc.scope import Scope
from kitgc.stores.base import DeleteOutcome
from kitgc.stores.distribution import DistributionStore
from kitgc.stores.vendors import dockerhub as dockerhub_store
from kitgc.stores.vendors.dockerhub import DockerHubStore, open_dockerhub
from testbed import images, objects
from testbed.emulators.dockerhub import DockerHubEmulator
from testbed.personalities import DockerHubPersonality
from testbed.registry_server import write_docker_config
from testbed.world import World, events_named

TOKEN = "dckr_pat_" + "q" * 27
MODES = ["unsupported", "untagged_only"]


@pytest.fixture(params=MODES)
def hub_v2(request: Any, registry: Any) -> Iterator[DockerHubPersonality]:
    with DockerHubPersonality(registry.url, mode=request.param) as personality:
        yield personality


@pytest.fixture
def hub(hub_v2: DockerHubPersonality, org: str) -> Iterator[DockerHubEmulator]:
    with DockerHubEmulator(hub_v2, username=org, token=TOKEN) as emulator:
        yield emulator


@pytest.fixture
def token_file(tmp_path: Path) -> str:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    return str(path)


@pytest.fixture
def world(registry: Any, kube: Any, org: str) -> Iterator[World]:
    w = World(registry, kube, org)
    w.anchor()
    yield w
    w.http.close()


def _env(hub_v2: DockerHubPersonality, hub: DockerHubEmulator, token_file: str) -> dict[str, str]:
    return {"REGISTRY_KIND": "dockerhub", "REGISTRY_ADDRESS": hub_v2.address, "REGISTRY_API_URL": hub.url,
            "REGISTRY_API_TOKEN_FILE": token_file, "DRY_RUN": "false"}


def _store(hub_v2: DockerHubPersonality, hub: DockerHubEmulator, token_file: str, **settings: Any) -> DockerHubStore:
    s = Settings(registry_api_url=hub.url, registry_api_token_file=token_file,
                 registry_timeout=timedelta(seconds=10), **settings)
    return open_dockerhub(s, DistributionStore(RegistryClient(hub_v2.address, insecure=True), "dockerhub"))


def _seen_tags(hub_v2: DockerHubPersonality, repo: str) -> list[str]:
    """What a v2 client sees through Docker Hub's v2 side (hidden tags are gone)."""
    r = httpx.get(f"{hub_v2.url}/v2/{repo}/tags/list", timeout=10)
    return sorted(r.json().get("tags") or []) if r.status_code == 200 else []


def _manifest_gets(hub_v2: DockerHubPersonality, repo: str) -> list[str]:
    """References of ``repo`` read by manifest GET (each a pull on Docker Hub)."""
    return [s.path.rsplit("/", 1)[1] for s in hub_v2.requests("GET", rf"/v2/{re.escape(repo)}/manifests/.*")]


# --- end to end -----------------------------------------------------------------------------------


def test_run_untags_orphans_keeps_referenced_images_and_never_pulls_them(world, hub_v2, hub, token_file) -> None:
    used_repo = world.repo(objects.kit_name(f"{world.org}-used"))
    used = world.push(used_repo, "1")
    stale = world.push(used_repo, "2")
    world.add(objects.deployment("app", "shop", images=[f"{hub_v2.address}/{used_repo}:1"]))
    orphan_repo = world.repo(objects.kit_name(f"{world.org}-orphan"))
    orphan = world.push(orphan_repo, "1")

    code, events = world.run(**_env(hub_v2, hub, token_file), LOG_LEVEL="debug")

    assert code == 0, events[-3:]
    assert list(events_named(events, "vendor_api_request")), "debug lines were captured"
    assert TOKEN not in str(events) and not any("jwt-" in str(e) for e in events)
    assert _seen_tags(hub_v2, used_repo) == ["1"] and world.exists(used_repo, used)
    assert _seen_tags(hub_v2, orphan_repo) == []
    assert hub_v2.pulls == len(_manifest_gets(hub_v2, used_repo)) + len(_manifest_gets(hub_v2, orphan_repo))
    assert not {"1", used} & set(_manifest_gets(hub_v2, used_repo)), "a kept manifest was pulled"
    untagged_only = {e["digest"] for e in events_named(events, "dockerhub_untagged_only")}
    if hub_v2.mode == "untagged_only":
        assert not world.exists(used_repo, stale) and untagged_only == set()
    else:
        assert world.exists(used_repo, stale) and untagged_only >= {stale}
    assert not list(events_named(events, "delete_failed"))
    # The orphan repository went whole (the lead's repository step), the used one stays.
    assert [e["repository"] for e in events_named(events, "repository_deleted")] == [orphan_repo]
    assert not world.exists(orphan_repo, orphan)
    (summary,) = events_named(events, "summary")  # what the metrics push
    assert (summary["repositories_deleted"], summary["manifests_deleted"], summary["exit_code"]) == (1, 2, 0)


def test_run_with_a_read_only_token_fails_clearly_and_loses_nothing(world, hub_v2, token_file, org) -> None:
    repo = world.repo(objects.kit_name(f"{org}-orphan"))
    digest = world.push(repo, "1", "2")
    with DockerHubEmulator(hub_v2, username=org, token=TOKEN, can_delete=False) as hub:
        code, events = world.run(**_env(hub_v2, hub, token_file))
        refused = hub.calls_to("DELETE")
    assert code == 1
    assert _seen_tags(hub_v2, repo) == ["1", "2"] and world.exists(repo, digest)
    assert refused and all(c.status == 403 for c in refused)
    errors = [e for e in events if e.get("level") == "error"]
    assert any("Read, Write, Delete" in str(e) for e in errors), errors
    assert TOKEN not in str(events)


# --- the store, step by step ----------------------------------------------------------------------


async def test_delete_repository_after_its_manifests_went(world, hub_v2, hub, token_file) -> None:
    repo = world.repo(objects.kit_name(f"{world.org}-empty"))
    a, b = world.push(repo, "1"), world.push(repo, "2")
    store = _store(hub_v2, hub, token_file)
    try:
        assert (await store.list_repositories(Scope((world.org,)))).repositories == (repo,)
        scan = await store.scan_repository(repo)
        assert [await store.delete_manifest(scan.manifests[d]) for d in (a, b)] == [DeleteOutcome.DELETED] * 2
        assert await store.hub_tags(repo) == {}
        assert await store.delete_repository(repo) is DeleteOutcome.DELETED
        assert (await store.list_repositories(Scope((world.org,)))).repositories == ()
        assert await store.delete_repository(repo) is DeleteOutcome.ALREADY_GONE
    finally:
        await store.aclose()
    assert not world.exists(repo, a) and not world.exists(repo, b)
    assert store.stats["api_delete_repository"] == 1 and store.stats["api_delete_tag"] == 2


async def test_repository_still_holding_a_tag_is_not_deleted(world, hub_v2, hub, token_file) -> None:
    repo = world.repo(objects.kit_name(f"{world.org}-half"))
    gone, kept = world.push(repo, "1"), world.push(repo, "2")
    store = _store(hub_v2, hub, token_file)
    try:
        scan = await store.scan_repository(repo)
        assert await store.delete_manifest(scan.manifests[gone]) is DeleteOutcome.DELETED
        with pytest.raises(RegistryError, match=r"still holds tags \(2\)"):
            await store.delete_repository(repo)
    finally:
        await store.aclose()
    assert _seen_tags(hub_v2, repo) == ["2"] and world.exists(repo, kept)
    assert not hub.calls_to("DELETE", r"/v2/repositories/[^/]+/[^/]+/")


async def test_repository_this_run_took_nothing_from_is_never_deleted(world, hub_v2, hub, token_file) -> None:
    repo = world.repo(objects.kit_name(f"{world.org}-untouched"))
    world.push(repo, "1")
    store = _store(hub_v2, hub, token_file)
    try:
        with pytest.raises(RegistryError, match="nothing in it was deleted in this run"):
            await store.delete_repository(repo)
    finally:
        await store.aclose()
    assert not hub.calls


async def test_a_tag_moved_to_another_image_after_the_scan_is_left_alone(world, hub_v2, hub, token_file) -> None:
    repo = world.repo(objects.kit_name(f"{world.org}-moved"))
    old = world.push(repo, "1")
    store = _store(hub_v2, hub, token_file)
    try:
        scan = await store.scan_repository(repo)
        new = world.push(repo, "1")  # the tag now names another manifest
        outcome = await store.delete_manifest(scan.manifests[old])
    finally:
        await store.aclose()
    assert outcome is DeleteOutcome.DELETED  # the old manifest lost its tag anyway
    assert _seen_tags(hub_v2, repo) == ["1"] and world.exists(repo, new)
    assert not hub.calls_to("DELETE")


async def test_an_expired_jwt_is_replaced_once(world, hub_v2, hub, token_file) -> None:
    repo = world.repo(objects.kit_name(f"{world.org}-jwt"))
    digest = world.push(repo, "1")
    store = _store(hub_v2, hub, token_file)
    try:
        await store.list_repositories(Scope((world.org,)))
        hub.expire_tokens()
        assert await store.hub_tags(repo) == {"1": digest}
    finally:
        await store.aclose()
    assert hub.logins == 2


async def test_a_wrong_token_is_a_one_line_login_error(world, hub_v2, hub, tmp_path) -> None:
    (tmp_path / "bad").write_text("dckr_pat_wrong")
    store = _store(hub_v2, hub, str(tmp_path / "bad"))
    try:
        with pytest.raises(RegistryError) as caught:
            await store.list_repositories(Scope((world.org,)))
        checks = await store.permission_checks()
    finally:
        await store.aclose()
    message = str(caught.value)
    assert "\n" not in message and "HTTP 401" in message and "Read, Write, Delete" in message
    assert "dckr_pat_wrong" not in message
    assert checks[0][:2] == ("dockerhub_login", False)


class _OldHub(DockerHubEmulator):
    """A Hub without ``/v2/auth/token`` (only the deprecated ``/v2/users/login``)."""

    @property
    def routes(self) -> list[Any]:
        return [r for r in super().routes if r[1].pattern != "/v2/auth/token"]


async def test_login_falls_back_to_users_login_and_takes_the_username_from_the_auth_file(
    world, hub_v2, token_file, tmp_path
) -> None:
    repo = world.repo(objects.kit_name(f"{world.org}-old"))
    world.push(repo, "1")
    auth = write_docker_config(tmp_path / "config.json", "https://index.docker.io/v1/", "robot", "unused")
    with _OldHub(hub_v2, username="robot", token=TOKEN) as hub:
        store = _store(hub_v2, hub, token_file, registry_auth_file=auth)
        try:
            assert (await store.list_repositories(Scope((world.org,)))).repositories == (repo,)
            checks = await store.permission_checks()
        finally:
            await store.aclose()
        assert [c.path for c in hub.calls_to("POST")] == ["/v2/auth/token", "/v2/users/login"]
    assert checks[0][:2] == ("dockerhub_login", True) and checks[1][1] is None


async def test_repositories_pages_are_all_read_and_out_of_scope_counted(
    world, hub_v2, hub, token_file, monkeypatch
) -> None:
    names = [world.repo(objects.kit_name(f"{world.org}-{i}")) for i in range(3)]
    for name in names:
        images.push_image(world.registry.url, name, ["1"], client=world.http)
    world.push(f"{world.org}/website", "1")
    monkeypatch.setattr(dockerhub_store, "PAGE", 2)
    store = _store(hub_v2, hub, token_file)
    try:
        listing = await store.list_repositories(Scope((world.org,)))
    finally:
        await store.aclose()
    assert listing.repositories == tuple(sorted(names)) and listing.out_of_scope == 1
    assert store.api.stats["list"] == 2


async def test_a_read_only_token_stops_deletion_at_the_first_refusal(world, hub_v2, token_file, org) -> None:
    repo = world.repo(objects.kit_name(f"{org}-ro"))
    digest = world.push(repo, "1")
    with DockerHubEmulator(hub_v2, username=org, token=TOKEN, can_delete=False) as hub:
        store = _store(hub_v2, hub, token_file)
        try:
            scan = await store.scan_repository(repo)
            with pytest.raises(DeletionDisabled, match="Read, Write, Delete"):
                await store.delete_manifest(scan.manifests[digest])
        finally:
            await store.aclose()
    assert _seen_tags(hub_v2, repo) == ["1"] and world.exists(repo, digest)


@pytest.mark.parametrize(("token", "ok", "exit_code"), [(TOKEN, True, 0), ("dckr_pat_wrong", False, 1)])
def test_doctor_says_whether_the_hub_login_works(world, hub_v2, hub, tmp_path, token, ok, exit_code) -> None:
    world.push(world.repo(objects.kit_name(f"{world.org}-doc")), "1")
    (tmp_path / "t").write_text(token)
    code, events = world.run("doctor", **_env(hub_v2, hub, str(tmp_path / "t")))
    checks = {e["check"]: e for e in events if "check" in e}
    assert checks["dockerhub_login"]["ok"] is ok
    if ok:
        assert checks["dockerhub_delete"]["ok"] is None
    assert code == exit_code, [c for c in checks.values() if c["ok"] is False]
    assert "dckr_pat_wrong" not in str(events)


class _NamelessHub(DockerHubEmulator):
    """A Hub whose repository list lacks ``name`` (an answer that is not what the API says)."""

    def _repositories(self, ns: str, **kw: Any) -> Any:
        answer = super()._repositories(ns, **kw)
        answer.body["results"] = [{"namespace": ns}]
        return answer


async def test_a_repository_list_without_names_is_a_one_line_error(world, hub_v2, token_file) -> None:
    world.push(world.repo(objects.kit_name(f"{world.org}-x")), "1")
    with _NamelessHub(hub_v2, username=world.org, token=TOKEN) as hub:
        store = _store(hub_v2, hub, token_file)
        try:
            with pytest.raises(RegistryError) as caught:
                await store.list_repositories(Scope((world.org,)))
        finally:
            await store.aclose()
    assert str(caught.value) == f'list repositories of {world.org}: a repository without a "name"'
