"""The Harbor store: listing through Harbor's API, emptied repositories deleted through it.

Against the real Distribution registry, with :class:`~testbed.personalities.HarborPersonality`
in front of it for v2 (catalog refused to non-admins, Harbor's DELETE refusals) and the
:class:`~testbed.emulators.harbor.HarborAPI` emulator for ``/api/v2.0``. The store is built
the way ``kitgc`` builds it (``open_harbor``); the end-to-end tests run ``kitgc`` itself.
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
from kitgc.stores.vendors.harbor import HarborStore, open_harbor
from kitgc.stores.vendors.samehost import ApiSettings, SameHostApi
from testbed import images, objects
from testbed.emulators.harbor import HarborAPI
from testbed.personalities import HarborPersonality
from testbed.registry_server import write_docker_config
from testbed.world import World, events_named

USERS = {"admin": ("pw-admin-7f3", "admin"), "dev": ("pw-dev-9k2", "developer"),
         "outsider": ("pw-out-4q8", "none")}


@pytest.fixture
def personality(registry) -> Iterator[HarborPersonality]:
    with HarborPersonality(registry.url) as p:
        yield p


@pytest.fixture
def harbor(registry) -> Iterator[HarborAPI]:
    with HarborAPI(registry.url, USERS, max_page_size=2) as h:
        yield h


def _auth_file(tmp_path: Path, address: str, user: str) -> str:
    return write_docker_config(tmp_path / f"{user}.json", address, user, USERS[user][0])


def _store(personality: HarborPersonality, harbor: HarborAPI, tmp_path: Path, user: str,
           organizations: tuple[str, ...]) -> HarborStore:
    auth = _auth_file(tmp_path, personality.address, user)
    settings = Settings(registry_api_url=f"{harbor.url}/api/v2.0", registry_auth_file=auth,
                        organizations=organizations, concurrency=4)
    client = RegistryClient(personality.address, insecure=True, credentials=Credentials(user, USERS[user][0]))
    return open_harbor(settings, DistributionStore(client, "harbor"))


def _push(registry, repo: str, *tags: str) -> str:
    return images.push_image(registry.url, repo, tags)


def _exists(registry, repo: str, digest: str) -> bool:
    r = httpx.head(f"{registry.url}/v2/{repo}/manifests/{digest}", headers={"Accept": images.ALL_MANIFESTS})
    return r.status_code == 200


def _empty(registry, repo: str, digest: str) -> None:
    assert httpx.delete(f"{registry.url}/v2/{repo}/manifests/{digest}").status_code == 202


# --- listing -------------------------------------------------------------------------


async def test_listing_reads_the_project_through_the_api_page_by_page(registry, org, personality, harbor,
                                                                      tmp_path) -> None:
    kits = sorted(f"{org}/camel-k-{objects.kit_name(f'{org}-{i}')}" for i in range(3))
    for repo in [*kits, f"{org}/not-a-kit"]:
        _push(registry, repo, "1")
    store = _store(personality, harbor, tmp_path, "dev", (org,))
    try:
        listing = await store.list_repositories(Scope((org,)))
    finally:
        await store.aclose()
    assert (listing.repositories, listing.out_of_scope, listing.source) == (tuple(kits), 1, "Harbor API")
    pages = harbor.requests("GET", rf"/api/v2\.0/projects/{org}/repositories")
    assert len(pages) == 2 and {c.auth for c in pages} == {"basic"}, pages
    assert personality.requests("GET", "/v2/_catalog") == []


async def test_listing_refused_by_the_api_falls_back_to_the_kits_the_cluster_names(
    registry, org, personality, harbor, tmp_path
) -> None:
    known = f"{org}/camel-k-{objects.kit_name(org)}"
    _push(registry, known, "1")
    _push(registry, f"{org}/camel-k-{objects.kit_name(org + 'x')}", "1")  # unknown to the cluster: unseen
    store = _store(personality, harbor, tmp_path, "outsider", (org,))
    try:
        listing = await store.list_repositories(Scope((org,)), (known,))
    finally:
        await store.aclose()
    assert (listing.repositories, listing.source) == ((known,), "cluster kits")
    assert [c.status for c in harbor.requests("GET", rf"/api/v2\.0/projects/{org}/repositories")] == [403]
    assert [s.status for s in personality.requests("GET", "/v2/_catalog")] == [401]


# --- deleting repositories -----------------------------------------------------------


async def test_emptied_nested_repository_is_deleted_with_its_name_double_encoded(
    registry, org, personality, harbor, tmp_path
) -> None:
    team = f"{org}/team"
    repo = f"{team}/camel-k-{objects.kit_name(org)}"
    _empty(registry, repo, _push(registry, repo, "1"))
    store = _store(personality, harbor, tmp_path, "admin", (team,))
    try:
        outcome = await store.delete_repository(repo)
        listing = await store.list_repositories(Scope((team,)))
    finally:
        await store.aclose()
    assert outcome is DeleteOutcome.DELETED
    deletes = harbor.requests("DELETE")
    assert [(c.raw_path, c.status) for c in deletes] == [
        (f"/api/v2.0/projects/{org}/repositories/team%252Fcamel-k-{objects.kit_name(org)}", 200)]
    assert harbor.deleted == {repo} and listing.repositories == ()


async def test_repository_that_still_holds_tags_is_refused_before_any_api_call(
    registry, org, personality, harbor, tmp_path
) -> None:
    repo = f"{org}/camel-k-{objects.kit_name(org)}"
    digest = _push(registry, repo, "1", "latest")
    store = _store(personality, harbor, tmp_path, "admin", (org,))
    try:
        with pytest.raises(RegistryError) as refused:
            await store.delete_repository(repo)
    finally:
        await store.aclose()
    assert str(refused.value) == f"repository {repo} still holds tags: 1, latest; not deleted"
    assert harbor.requests("DELETE") == [] and _exists(registry, repo, digest)


async def test_repository_already_gone_is_reported_so(registry, org, personality, harbor, tmp_path) -> None:
    store = _store(personality, harbor, tmp_path, "admin", (org,))
    try:
        outcome = await store.delete_repository(f"{org}/camel-k-{objects.kit_name(org)}")
    finally:
        await store.aclose()
    assert outcome is DeleteOutcome.ALREADY_GONE
    assert [c.status for c in harbor.requests("GET", rf"/api/v2\.0/projects/{org}/repositories/.+")] == [404]
    assert harbor.requests("DELETE") == []


async def test_repository_holding_an_untagged_artifact_is_refused(registry, org, personality, harbor,
                                                                  tmp_path) -> None:
    """v2 shows no tag, but Harbor still counts an artifact (an untagged child another cluster pushed)."""
    repo = f"{org}/camel-k-{objects.kit_name(org)}"
    _empty(registry, repo, _push(registry, repo, "1"))
    untagged = _push(registry, repo)  # by digest: no tag
    harbor.remember_untagged(repo, untagged)
    store = _store(personality, harbor, tmp_path, "admin", (org,))
    try:
        with pytest.raises(RegistryError) as refused:
            await store.delete_repository(repo)
    finally:
        await store.aclose()
    assert str(refused.value) == (f"repository {repo} still holds 1 manifest(s) by Harbor API (artifact_count, "
                                  "untagged ones included); not deleted")
    assert harbor.requests("DELETE") == [] and _exists(registry, repo, untagged)


async def test_account_without_delete_role_is_refused_with_a_hint_and_no_secret(
    registry, org, personality, harbor, tmp_path
) -> None:
    repo = f"{org}/camel-k-{objects.kit_name(org)}"
    _empty(registry, repo, _push(registry, repo, "1"))
    store = _store(personality, harbor, tmp_path, "dev", (org,))
    try:
        with pytest.raises(RegistryError) as refused:
            await store.delete_repository(repo)
    finally:
        await store.aclose()
    message = str(refused.value)
    assert "HTTP 403 FORBIDDEN" in message and "Maintainer" in message and "\n" not in message
    assert USERS["dev"][0] not in message and harbor.deleted == set()


async def test_permission_checks_ask_harbor_and_never_delete(registry, org, personality, harbor, tmp_path) -> None:
    _push(registry, f"{org}/camel-k-{objects.kit_name(org)}", "1")
    results = {}
    for user in ("admin", "dev", "outsider"):
        store = _store(personality, harbor, tmp_path, user, (org,))
        try:
            results[user] = [(name, ok) for name, ok, _ in await store.permission_checks()]
        finally:
            await store.aclose()
    listing, deleting = f"harbor_api_listing:{org}", f"harbor_api_repository_delete:{org}"
    assert results == {"admin": [(listing, True), (deleting, True)], "dev": [(listing, True), (deleting, False)],
                       "outsider": [(listing, False), (deleting, False)]}
    assert harbor.requests("DELETE") == []


def test_emulator_does_not_route_a_single_encoded_name(registry, org, harbor) -> None:
    r = httpx.delete(f"{harbor.url}/api/v2.0/projects/{org}/repositories/team%2Fcamel-k-kit-x",
                     auth=("admin", USERS["admin"][0]))
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "NOT_FOUND"


# --- answers that are not what the API promises ------------------------------------


@pytest.mark.parametrize(("body", "headers", "expected"), [
    (b"<html>", {}, "not valid JSON"),
    (b'{"name": "p/camel-k-kit-a"}', {}, "not a list of repositories"),
    (b'[{"name": "other/camel-k-kit-a"}]', {}, "not inside p/"),
    (b'[{"name": "p/camel-k-kit-a"}]', {"X-Total-Count": "many"}, "is not a number"),
    (b'[{"name": "p/camel-k-kit-a"}]', {"Link": '<http://elsewhere.example/x?page=2>; rel="next"'},
     "on another host"),
    (b'[{"name": "p/camel-k-kit-a"}]', {"Link": '</api/v2.0/projects/p/repositories?page=1&page_size=100>; '
                                                'rel="next"'}, "do not end"),
])
async def test_bad_listing_answers_are_one_line_errors(body: bytes, headers: dict[str, str], expected: str) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers=headers)

    api = SameHostApi(ApiSettings("http://harbor.test/api/v2.0"), name="Harbor API",
                      transport=httpx.MockTransport(answer))
    store = HarborStore(DistributionStore(RegistryClient("harbor.test", insecure=True)), api, ("p",))
    try:
        with pytest.raises(RegistryError) as bad:
            await store.list_repositories(Scope(("p",)))
    finally:
        await store.aclose()
    assert expected in str(bad.value) and "\n" not in str(bad.value)


def _mock_store(answer) -> HarborStore:
    api = SameHostApi(ApiSettings("http://harbor.test/api/v2.0"), name="Harbor API",
                      transport=httpx.MockTransport(answer))
    return HarborStore(DistributionStore(RegistryClient("harbor.test", insecure=True)), api, ("p",))


async def test_pages_without_link_are_followed_by_their_total_count() -> None:
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.params["page"])
        page = int(request.url.params["page"])
        return httpx.Response(200, json=[{"name": f"p/camel-k-kit-{page}"}] if page <= 2 else [],
                              headers={"X-Total-Count": "2"})

    store = _mock_store(answer)
    try:
        listing = await store.list_repositories(Scope(("p",)))
    finally:
        await store.aclose()
    assert listing.repositories == ("p/camel-k-kit-1", "p/camel-k-kit-2") and asked == ["1", "2"]


async def test_a_project_harbor_does_not_know_lists_nothing() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"errors": [{"code": "NOT_FOUND", "message": "project p not found"}]})

    store = _mock_store(answer)
    try:
        listing = await store.list_repositories(Scope(("p",)))
    finally:
        await store.aclose()
    assert (listing.repositories, listing.source) == ((), "Harbor API")


async def test_a_busy_api_is_asked_again_after_retry_after() -> None:
    answers = iter([httpx.Response(429, headers={"Retry-After": "0"}),
                    httpx.Response(200, json=[{"name": "p/camel-k-kit-a"}], headers={"X-Total-Count": "1"})])

    store = _mock_store(lambda request: next(answers))
    try:
        listing = await store.list_repositories(Scope(("p",)))
    finally:
        await store.aclose()
    assert listing.repositories == ("p/camel-k-kit-a",)
    assert (store.stats["api_list"], store.stats["api_retry"]) == (2, 1)


async def test_a_server_error_while_listing_is_not_taken_for_a_refusal() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(501, json={"errors": [{"code": "UNKNOWN", "message": "boom"}]})

    store = _mock_store(answer)
    try:
        with pytest.raises(RegistryError, match=r"^Harbor API: repositories of project p: HTTP 501 UNKNOWN: boom$"):
            await store.list_repositories(Scope(("p",)), ("p/camel-k-kit-a",))
    finally:
        await store.aclose()


# --- end to end ----------------------------------------------------------------------


@pytest.fixture
def world(registry, kube, org) -> Iterator[World]:
    w = World(registry, kube, org)
    w.anchor()
    yield w
    w.http.close()


def _run(world: World, personality: HarborPersonality, harbor: HarborAPI, tmp_path: Path, user: str):
    return world.run(DRY_RUN="false", REGISTRY_KIND="harbor", REGISTRY_ADDRESS=personality.address,
                     REGISTRY_API_URL=f"{harbor.url}/api/v2.0",
                     REGISTRY_AUTH_FILE=_auth_file(tmp_path, personality.address, user))


def test_full_pass_lists_through_the_api_while_the_catalog_is_refused(
    world: World, personality: HarborPersonality, harbor: HarborAPI, tmp_path: Path
) -> None:
    orphan_repo = world.repo(objects.kit_name(f"{world.org}-orphan"))
    kept_repo = world.repo(objects.kit_name(f"{world.org}-kept"))
    orphan = world.push(orphan_repo, "1")
    kept, stale = world.push(kept_repo, "2"), world.push(kept_repo, "1")
    world.add(objects.deployment("orders", "shop", images=[f"{personality.address}/{kept_repo}@{kept}"]))
    code, events = _run(world, personality, harbor, tmp_path, "admin")
    assert code == 0, events[-3:]
    assert not world.exists(orphan_repo, orphan) and not world.exists(kept_repo, stale)
    assert world.exists(kept_repo, kept) and world.tags(kept_repo) == ["2"]
    assert harbor.requests("GET", rf"/api/v2\.0/projects/{world.org}/repositories")
    assert personality.requests("GET", "/v2/_catalog") == []
    assert harbor.deleted == {orphan_repo}
    assert [e["repository"] for e in events_named(events, "repository_deleted")] == [orphan_repo]
    (summary,) = events_named(events, "summary")  # what the metrics push
    assert summary["repositories_deleted"] == 1 and summary["exit_code"] == 0
    assert USERS["admin"][0] not in json.dumps(events)


def test_full_pass_falls_back_to_the_cluster_kits_when_the_api_refuses(
    world: World, personality: HarborPersonality, harbor: HarborAPI, tmp_path: Path
) -> None:
    name = objects.kit_name(f"{world.org}-known")
    known_repo, unknown_repo = world.repo(name), world.repo(objects.kit_name(f"{world.org}-unknown"))
    current, old = world.push(known_repo, "2"), world.push(known_repo, "1")
    unseen = world.push(unknown_repo, "1")
    image = f"{personality.address}/{known_repo}@{current}"
    world.add(objects.integration_kit(name, "camel-k", image=image),
              objects.integration("orders", "shop", kit=name, kit_namespace="camel-k", image=image))
    code, events = _run(world, personality, harbor, tmp_path, "outsider")
    assert code == 0, events[-3:]
    assert world.exists(known_repo, current) and not world.exists(known_repo, old)
    assert world.exists(unknown_repo, unseen)  # nothing lists it: never touched
    refused = next(events_named(events, "harbor_api_listing_refused"))
    assert "HTTP 403" in refused["error"] and refused["level"] == "warning"
    assert harbor.requests("DELETE") == []


def test_dry_run_deletes_nothing_through_either_api(
    world: World, personality: HarborPersonality, harbor: HarborAPI, tmp_path: Path
) -> None:
    repo = world.repo(objects.kit_name(f"{world.org}-orphan"))
    orphan = world.push(repo, "1")
    code, events = world.run(DRY_RUN="true", REGISTRY_KIND="harbor", REGISTRY_ADDRESS=personality.address,
                             REGISTRY_API_URL=f"{harbor.url}/api/v2.0",
                             REGISTRY_AUTH_FILE=_auth_file(tmp_path, personality.address, "admin"))
    assert code == 0, events[-3:]
    assert [e["digest"] for e in events_named(events, "would_delete")] == [orphan]
    assert world.exists(repo, orphan) and harbor.requests("DELETE") == []
    assert personality.requests("DELETE") == []


def test_doctor_reports_what_harbor_says_the_account_may_do(
    world: World, personality: HarborPersonality, harbor: HarborAPI, tmp_path: Path
) -> None:
    world.push(world.repo(objects.kit_name(f"{world.org}-x")), "1")
    checks = {}
    for user in ("admin", "dev"):
        _, lines = world.run("doctor", REGISTRY_KIND="harbor", REGISTRY_ADDRESS=personality.address,
                             REGISTRY_API_URL=f"{harbor.url}/api/v2.0",
                             REGISTRY_AUTH_FILE=_auth_file(tmp_path, personality.address, user))
        found = {c["check"]: c["ok"] for c in lines if "check" in c}
        checks[user] = (found.get(f"harbor_api_listing:{world.org}"),
                        found.get(f"harbor_api_repository_delete:{world.org}"))
    assert checks == {"admin": (True, True), "dev": (True, False)}
    assert harbor.requests("DELETE") == [] and personality.requests("DELETE") == []
