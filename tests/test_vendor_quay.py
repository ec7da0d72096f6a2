"""The Quay store: v2 for everything but emptied repositories, which Quay's API deletes.

Against the real Distribution registry behind :class:`~testbed.personalities.QuayPersonality`
(v2 as Quay answers it) and the :class:`~testbed.emulators.quay.QuayAPI` emulator for
``/api/v1``, whose OAuth tokens carry scopes: only ``repo:admin`` may delete a repository.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kitgc.config import Settings
from kitgc.errors import ConfigError, RegistryError
from kitgc.registry.client import RegistryClient
from kitgc.scope import Scope
from kitgc.stores.base import DeleteOutcome
from kitgc.stores.distribution import DistributionStore
from kitgc.stores.vendors.quay import QuayStore, open_quay
from testbed import images, objects
from testbed.emulators.quay import QuayAPI
from testbed.personalities import QuayPersonality
from testbed.registry_server import write_docker_config
from testbed.world import World, events_named

ADMIN, READER = "oauth-admin-5d1c9e", "oauth-reader-8a7b3f"
TOKENS = {ADMIN: {"repo:read", "repo:write", "repo:admin"}, READER: {"repo:read", "repo:write"}}


@pytest.fixture
def personality(registry) -> Iterator[QuayPersonality]:
    with QuayPersonality(registry.url) as p:
        yield p


@pytest.fixture
def quay(registry) -> Iterator[QuayAPI]:
    with QuayAPI(registry.url, TOKENS, page_size=2) as q:
        yield q


def _token_file(tmp_path: Path, token: str, name: str = "token") -> str:
    path = tmp_path / name
    path.write_text(token + "\n")
    return str(path)


def _store(personality: QuayPersonality, quay: QuayAPI, organizations: tuple[str, ...] = (), *,
           token_file: str | None = None, auth_file: str | None = None) -> QuayStore:
    settings = Settings(registry_api_url=f"{quay.url}/api/v1", registry_api_token_file=token_file,
                        registry_auth_file=auth_file, organizations=organizations)
    return open_quay(settings, DistributionStore(RegistryClient(personality.address, insecure=True), "quay"))


def _kit_repo(org: str, seed: str = "") -> str:
    return f"{org}/camel-k-{objects.kit_name(org + seed)}"


def _emptied(registry, repo: str) -> None:
    digest = images.push_image(registry.url, repo, ["1"])
    assert httpx.delete(f"{registry.url}/v2/{repo}/manifests/{digest}").status_code == 202


async def test_emptied_repository_is_deleted_with_an_oauth_token(registry, org, personality, quay,
                                                                 tmp_path) -> None:
    repo = _kit_repo(org)
    _emptied(registry, repo)
    store = _store(personality, quay, token_file=_token_file(tmp_path, ADMIN))
    try:
        outcome = await store.delete_repository(repo)
        again = await store.delete_repository(repo)
    finally:
        await store.aclose()
    assert (outcome, again) == (DeleteOutcome.DELETED, DeleteOutcome.ALREADY_GONE)
    assert [(c.raw_path, c.auth, c.status) for c in quay.requests("DELETE")] == [
        (f"/api/v1/repository/{repo}", "bearer", 204), (f"/api/v1/repository/{repo}", "bearer", 404)]
    assert quay.deleted == {repo}
    assert store.stats["api_delete"] == 2 and store.stats["tags"] == 2


async def test_token_is_the_auth_file_password_without_a_token_file(registry, org, personality, quay,
                                                                    tmp_path) -> None:
    repo = _kit_repo(org)
    _emptied(registry, repo)
    auth = write_docker_config(tmp_path / "config.json", personality.address, "$oauthtoken", ADMIN)
    store = _store(personality, quay, auth_file=auth)
    try:
        assert await store.delete_repository(repo) is DeleteOutcome.DELETED
    finally:
        await store.aclose()


async def test_token_without_repo_admin_is_refused_with_the_scope_hint(registry, org, personality, quay,
                                                                      tmp_path) -> None:
    repo = _kit_repo(org)
    _emptied(registry, repo)
    store = _store(personality, quay, token_file=_token_file(tmp_path, READER))
    try:
        with pytest.raises(RegistryError) as refused:
            await store.delete_repository(repo)
    finally:
        await store.aclose()
    message = str(refused.value)
    assert refused.value.status == 403 and "insufficient_scope" in message
    assert "repo:admin" in message and "robot credentials cannot" in message
    assert READER not in message and "\n" not in message and quay.deleted == set()


async def test_repository_that_still_holds_tags_is_refused_before_any_api_call(registry, org, personality, quay,
                                                                              tmp_path) -> None:
    repo = _kit_repo(org)
    digest = images.push_image(registry.url, repo, ["7"])
    store = _store(personality, quay, token_file=_token_file(tmp_path, ADMIN))
    try:
        with pytest.raises(RegistryError, match=rf"^repository {repo} still holds tags: 7; not deleted$"):
            await store.delete_repository(repo)
    finally:
        await store.aclose()
    assert quay.requests("DELETE") == []
    r = httpx.head(f"{registry.url}/v2/{repo}/manifests/{digest}", headers={"Accept": images.ALL_MANIFESTS})
    assert r.status_code == 200


async def test_no_token_is_a_config_error_only_when_a_repository_is_to_go(registry, org, personality,
                                                                         quay) -> None:
    store = _store(personality, quay, (org,))  # opening it needs no token
    try:
        assert (await store.list_repositories(Scope((org,)))).source == "catalog"
        with pytest.raises(ConfigError, match=r"REGISTRY_API_TOKEN_FILE.*REGISTRY_AUTH_FILE"):
            await store.delete_repository(_kit_repo(org))
    finally:
        await store.aclose()
    assert quay.calls == []


@pytest.mark.parametrize(("content", "expected"), [("", "found nothing"), ("two words", "found several words")])
async def test_unusable_token_file_is_a_config_error_naming_it(personality, quay, tmp_path, org, content: str,
                                                               expected: str) -> None:
    path = tmp_path / "token"
    path.write_text(content)
    store = _store(personality, quay, token_file=str(path))
    try:
        with pytest.raises(ConfigError, match=f"invalid REGISTRY_API_TOKEN_FILE .*{expected}"):
            await store.delete_repository(_kit_repo(org))
    finally:
        await store.aclose()


async def test_permission_checks_read_can_admin_without_deleting(registry, org, personality, quay,
                                                                tmp_path) -> None:
    images.push_image(registry.url, _kit_repo(org), ["1"])
    found = {}
    for label, token in (("admin", ADMIN), ("reader", READER), ("none", None)):
        store = _store(personality, quay, (org,), token_file=_token_file(tmp_path, token) if token else None)
        try:
            found[label] = [ok for _, ok, _ in await store.permission_checks()]
        finally:
            await store.aclose()
    assert found == {"admin": [True], "reader": [False], "none": [False]}
    assert quay.requests("DELETE") == []


def test_emulator_lists_a_namespace_in_pages_with_next_page_tokens(registry, org, quay) -> None:
    repos = sorted(_kit_repo(org, str(i)) for i in range(3))
    for repo in repos:
        images.push_image(registry.url, repo, ["1"])
    seen, params = [], {"namespace": org}
    with httpx.Client(base_url=quay.url, headers={"Authorization": f"Bearer {READER}"}) as http:
        while True:
            doc = http.get("/api/v1/repository", params=params).json()
            seen.append([f"{r['namespace']}/{r['name']}" for r in doc["repositories"]])
            if "next_page" not in doc:
                break
            params = {"namespace": org, "next_page": doc["next_page"]}
        refused = http.delete(f"/api/v1/repository/{repos[0]}")
    assert seen == [repos[:2], repos[2:]]
    assert refused.status_code == 403 and refused.json()["error_type"] == "insufficient_scope"


# --- end to end ----------------------------------------------------------------------


@pytest.fixture
def world(registry, kube, org) -> Iterator[World]:
    w = World(registry, kube, org)
    w.anchor()
    yield w
    w.http.close()


def _scene(world: World, personality: QuayPersonality) -> tuple[tuple[str, str], tuple[str, str]]:
    orphan_repo = world.repo(objects.kit_name(f"{world.org}-orphan"))
    kept_repo = world.repo(objects.kit_name(f"{world.org}-kept"))
    orphan, kept = world.push(orphan_repo, "1"), world.push(kept_repo, "1")
    world.add(objects.deployment("orders", "shop", images=[f"{personality.address}/{kept_repo}@{kept}"]))
    return (orphan_repo, orphan), (kept_repo, kept)


def _run(world: World, personality: QuayPersonality, quay: QuayAPI, token_file: str):
    return world.run(DRY_RUN="false", REGISTRY_KIND="quay", REGISTRY_ADDRESS=personality.address,
                     REGISTRY_API_URL=f"{quay.url}/api/v1", REGISTRY_API_TOKEN_FILE=token_file)


def test_full_pass_deletes_orphans_and_their_emptied_repository(world: World, personality: QuayPersonality,
                                                                quay: QuayAPI, tmp_path: Path) -> None:
    (orphan_repo, orphan), (kept_repo, kept) = _scene(world, personality)
    code, events = _run(world, personality, quay, _token_file(tmp_path, ADMIN))
    assert code == 0, events[-3:]
    assert not world.exists(orphan_repo, orphan) and world.exists(kept_repo, kept)
    assert quay.deleted == {orphan_repo}
    assert [e["repository"] for e in events_named(events, "repository_deleted")] == [orphan_repo]
    (summary,) = events_named(events, "summary")  # what the metrics push
    assert summary["repositories_deleted"] == 1 and summary["exit_code"] == 0
    assert ADMIN not in json.dumps(events)


def test_full_pass_with_a_token_lacking_repo_admin_keeps_the_repository_and_says_why(
    world: World, personality: QuayPersonality, quay: QuayAPI, tmp_path: Path
) -> None:
    (orphan_repo, orphan), (kept_repo, kept) = _scene(world, personality)
    code, events = _run(world, personality, quay, _token_file(tmp_path, READER))
    assert code == 1, events[-3:]
    assert not world.exists(orphan_repo, orphan) and world.exists(kept_repo, kept)
    failed = [e for e in events_named(events, "repository_delete_failed")]
    assert [e["repository"] for e in failed] == [orphan_repo]
    assert "repo:admin" in failed[0]["error"] and quay.deleted == set()
    assert READER not in json.dumps(events)
