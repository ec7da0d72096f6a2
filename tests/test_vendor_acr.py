"""The ACR store: v2 for everything but emptied repositories, which ``DELETE /acr/v1/{name}`` removes.

Against the real Distribution registry behind a :class:`~testbed.faultproxy.FaultProxy` (ACR's
v2 behaves as Distribution's for what the collector does) and the
:class:`~testbed.emulators.acr.AcrAPI` emulator, which challenges like ACR (Bearer realm
``/oauth2/token``) and grants only the actions a user has.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kitgc.config import Settings
from kitgc.errors import RegistryError
from kitgc.registry.auth import Credentials
from kitgc.registry.client import RegistryClient
from kitgc.scope import Scope
from kitgc.stores.base import DeleteOutcome
from kitgc.stores.distribution import DistributionStore
from kitgc.stores.vendors.acr import AcrStore, open_acr
from testbed import images, objects
from testbed.emulators.acr import AcrAPI
from testbed.faultproxy import FaultProxy
from testbed.registry_server import write_docker_config
from testbed.world import World, events_named

USERS = {"admin": ("acr-pw-2b9d", {"pull", "delete", "metadata_read"}),
         "reader": ("acr-pw-6e1f", {"pull", "metadata_read"})}


@pytest.fixture
def acr(registry) -> Iterator[AcrAPI]:
    with AcrAPI(registry.url, USERS) as a:
        yield a


def _auth_file(tmp_path: Path, address: str, user: str) -> str:
    return write_docker_config(tmp_path / f"{user}.json", address, user, USERS[user][0])


def _store(proxy: FaultProxy, acr: AcrAPI, tmp_path: Path, user: str) -> AcrStore:
    settings = Settings(registry_api_url=f"{acr.url}/acr/v1", registry_auth_file=_auth_file(tmp_path, proxy.address,
                                                                                           user))
    client = RegistryClient(proxy.address, insecure=True, credentials=Credentials(user, USERS[user][0]))
    return open_acr(settings, DistributionStore(client, "acr"))


def _emptied(registry, repo: str) -> None:
    digest = images.push_image(registry.url, repo, ["1"])
    assert httpx.delete(f"{registry.url}/v2/{repo}/manifests/{digest}").status_code == 202


async def test_emptied_repository_is_deleted_after_answering_the_token_challenge(registry, org, proxy, acr,
                                                                                tmp_path) -> None:
    repo = f"{org}/team/camel-k-{objects.kit_name(org)}"  # a "/" inside: ACR takes the name as path segments
    _emptied(registry, repo)
    store = _store(proxy, acr, tmp_path, "admin")
    try:
        assert await store.delete_repository(repo) is DeleteOutcome.DELETED
    finally:
        await store.aclose()
    calls = [(c.method, c.raw_path, c.auth, c.status) for c in acr.calls]
    assert calls == [("GET", f"/acr/v1/{repo}", "", 401), ("GET", "/oauth2/token", "basic", 200),
                     ("GET", f"/acr/v1/{repo}", "bearer", 200), ("GET", "/oauth2/token", "basic", 200),
                     ("DELETE", f"/acr/v1/{repo}", "bearer", 202)]
    asked = [c.query for c in acr.requests("GET", "/oauth2/token")]
    scope = f"scope=repository%3A{repo.replace('/', '%2F')}%3A"
    assert [q.split(scope, 1)[1] for q in asked] == ["metadata_read", "delete"]
    assert acr.deleted == {repo}


async def test_credentials_without_delete_are_refused_with_a_hint_and_no_secret(registry, org, proxy, acr,
                                                                                tmp_path) -> None:
    repo = f"{org}/camel-k-{objects.kit_name(org)}"
    _emptied(registry, repo)
    store = _store(proxy, acr, tmp_path, "reader")
    try:
        with pytest.raises(RegistryError) as refused:
            await store.delete_repository(repo)
    finally:
        await store.aclose()
    message = str(refused.value)
    assert refused.value.status == 401 and "UNAUTHORIZED" in message and "AcrDelete" in message
    assert USERS["reader"][0] not in message and "\n" not in message and acr.deleted == set()


async def test_repository_that_still_holds_tags_is_refused_before_any_api_call(registry, org, proxy, acr,
                                                                              tmp_path) -> None:
    repo = f"{org}/camel-k-{objects.kit_name(org)}"
    images.push_image(registry.url, repo, ["1"])
    store = _store(proxy, acr, tmp_path, "admin")
    try:
        with pytest.raises(RegistryError, match=rf"^repository {repo} still holds tags: 1; not deleted$"):
            await store.delete_repository(repo)
    finally:
        await store.aclose()
    assert acr.calls == [] and acr.deleted == set()


async def test_repository_already_gone_is_reported_so(org, proxy, acr, tmp_path) -> None:
    store = _store(proxy, acr, tmp_path, "admin")
    try:
        outcome = await store.delete_repository(f"{org}/camel-k-{objects.kit_name(org)}")
    finally:
        await store.aclose()
    assert outcome is DeleteOutcome.ALREADY_GONE
    assert [c.status for c in acr.requests("GET", r"/acr/v1/.+")] == [401, 404] and acr.requests("DELETE") == []


async def test_repository_holding_an_untagged_manifest_is_refused(registry, org, proxy, acr, tmp_path) -> None:
    """v2 shows no tag, but ACR's manifestCount still counts an untagged manifest."""
    repo = f"{org}/camel-k-{objects.kit_name(org)}"
    _emptied(registry, repo)
    untagged = images.push_image(registry.url, repo, ())
    acr.remember_untagged(repo, untagged)
    store = _store(proxy, acr, tmp_path, "admin")
    try:
        with pytest.raises(RegistryError, match=r"still holds 1 manifest\(s\) by ACR API \(manifestCount"):
            await store.delete_repository(repo)
    finally:
        await store.aclose()
    assert acr.requests("DELETE") == [] and acr.deleted == set()


async def test_credentials_that_cannot_read_the_count_refuse_the_deletion(registry, org, proxy, acr,
                                                                          tmp_path) -> None:
    repo = f"{org}/camel-k-{objects.kit_name(org)}"
    _emptied(registry, repo)
    acr.users["reader"] = (USERS["reader"][0], frozenset({"pull", "delete"}))  # no metadata_read
    store = _store(proxy, acr, tmp_path, "reader")
    try:
        with pytest.raises(RegistryError, match=r"cannot count what it holds before deleting it: HTTP 401.*deleted$"):
            await store.delete_repository(repo)
    finally:
        await store.aclose()
    assert acr.requests("DELETE") == [] and acr.deleted == set()


async def test_permission_check_reads_the_lock_and_leaves_the_permission_unknown(registry, org, proxy, acr,
                                                                               tmp_path) -> None:
    repo = f"{org}/camel-k-{objects.kit_name(org)}"
    images.push_image(registry.url, repo, ["1"])
    store = _store(proxy, acr, tmp_path, "admin")
    try:
        before = await store.permission_checks()
        await store.list_repositories(Scope((org,)))
        after = await store.permission_checks()
    finally:
        await store.aclose()
    assert [ok for _, ok, _ in before] == [None] and "no kit repository listed yet" in before[0][2]
    assert [ok for _, ok, _ in after] == [None] and f"{repo} is not locked" in after[0][2]
    assert acr.requests("GET", f"/acr/v1/{repo}")[-1].status == 200 and acr.requests("DELETE") == []


def test_emulator_catalog_pages_with_link(registry, org, acr) -> None:
    repos = sorted(f"{org}/camel-k-{objects.kit_name(org + str(i))}" for i in range(3))
    for repo in repos:
        images.push_image(registry.url, repo, ["1"])
    seen: list[str] = []
    url: str | None = f"/acr/v1/_catalog?n=2&last={org}"
    with httpx.Client(base_url=acr.url, auth=("reader", USERS["reader"][0])) as http:
        while url:
            r = http.get(url)
            seen += [n for n in r.json()["repositories"] if n.startswith(org + "/")]
            url = r.links.get("next", {}).get("url")
    assert seen == repos


# --- end to end ----------------------------------------------------------------------


@pytest.fixture
def world(registry, kube, org) -> Iterator[World]:
    w = World(registry, kube, org)
    w.anchor()
    yield w
    w.http.close()


def test_full_pass_deletes_orphans_and_their_emptied_repository(world: World, proxy: FaultProxy, acr: AcrAPI,
                                                                tmp_path: Path) -> None:
    orphan_repo = world.repo(objects.kit_name(f"{world.org}-orphan"))
    kept_repo = world.repo(objects.kit_name(f"{world.org}-kept"))
    orphan, kept = world.push(orphan_repo, "1"), world.push(kept_repo, "1")
    world.add(objects.deployment("orders", "shop", images=[f"{proxy.address}/{kept_repo}@{kept}"]))
    code, events = world.run(DRY_RUN="false", REGISTRY_KIND="acr", REGISTRY_ADDRESS=proxy.address,
                             REGISTRY_API_URL=f"{acr.url}/acr/v1",
                             REGISTRY_AUTH_FILE=_auth_file(tmp_path, proxy.address, "admin"))
    assert code == 0, events[-3:]
    assert not world.exists(orphan_repo, orphan) and world.exists(kept_repo, kept)
    assert acr.deleted == {orphan_repo}
    assert [e["repository"] for e in events_named(events, "repository_deleted")] == [orphan_repo]
    (summary,) = events_named(events, "summary")  # what the metrics push
    assert summary["repositories_deleted"] == 1 and summary["exit_code"] == 0
    assert proxy.requests("GET", "/v2/_catalog")  # listed through v2
    assert USERS["admin"][0] not in json.dumps(events)
