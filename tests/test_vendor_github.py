"""The ghcr store: GitHub Packages listed and cleaned through the REST API, read through v2.

Against the real Distribution registry behind :class:`~testbed.personalities.GhcrPersonality`
(no catalog, v2 DELETE refused) and :class:`~testbed.emulators.github.GitHubPackagesEmulator`
(the REST API, acting on the same registry). End-to-end runs go through ``kitgc.cli.main``
and look at what is LEFT in the registry; the store's own steps (the repository step the lead
wires into the run, the owner kinds, odd package names, bad answers) are called directly.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from kitgc.config import Settings
from kitgc.errors import ConfigError, DeletionDisabled, RegistryError
from kitgc.registry.client import RegistryClient
from kitgc.scope import Scope
from kitgc.stores.base import DeleteOutcome
from kitgc.stores.distribution import DistributionStore
from kitgc.stores.vendors import github as github_store
from kitgc.stores.vendors.github import GhcrStore, open_ghcr
from testbed import images, objects
from testbed.emulators.github import LAST_TAGGED, GitHubPackagesEmulator
from testbed.personalities import GhcrPersonality
from testbed.world import World, events_named

TOKEN = "ghp_" + "k" * 36


@pytest.fixture
def ghcr(registry: Any) -> Iterator[GhcrPersonality]:
    with GhcrPersonality(registry.url) as personality:
        yield personality


@pytest.fixture
def token_file(tmp_path: Path) -> str:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    return str(path)


def _emulator(registry: Any, owner: str, kind: str = "Organization", **options: Any) -> GitHubPackagesEmulator:
    return GitHubPackagesEmulator(registry.url, token=TOKEN, owners={owner: kind}, **options).start()


@pytest.fixture
def github(registry: Any, org: str) -> Iterator[GitHubPackagesEmulator]:
    emulator = _emulator(registry, org)
    yield emulator
    emulator.stop()


@pytest.fixture
def world(registry: Any, kube: Any, org: str) -> Iterator[World]:
    w = World(registry, kube, org)
    w.anchor()
    yield w
    w.http.close()


def _env(ghcr: GhcrPersonality, github: GitHubPackagesEmulator, token_file: str) -> dict[str, str]:
    return {"REGISTRY_KIND": "ghcr", "REGISTRY_ADDRESS": ghcr.address, "REGISTRY_API_URL": github.url,
            "REGISTRY_API_TOKEN_FILE": token_file, "DRY_RUN": "false"}


def _use(world: World, ghcr: GhcrPersonality, repo: str, digest: str, name: str) -> None:
    world.add(objects.deployment(name, "shop", images=[f"{ghcr.address}/{repo}@{digest}"]))


def _store(ghcr: GhcrPersonality, github: GitHubPackagesEmulator, token_file: str) -> GhcrStore:
    settings = Settings(registry_api_url=github.url, registry_api_token_file=token_file,
                        registry_timeout=timedelta(seconds=10))
    return open_ghcr(settings, DistributionStore(RegistryClient(ghcr.address, insecure=True), "ghcr"))


def _version_deletes(github: GitHubPackagesEmulator, status: int | None = None) -> list[Any]:
    return [c for c in github.calls_to("DELETE", r"/(orgs|users)/.*/versions/\d+")
            if status is None or c.status == status]


# --- end to end -----------------------------------------------------------------------------------


def test_run_deletes_orphan_versions_and_keeps_what_is_referenced(world, ghcr, github, token_file) -> None:
    used_repo = world.repo(objects.kit_name(f"{world.org}-used"))
    used = world.push(used_repo, "1")
    stale = world.push(used_repo, "2")
    _use(world, ghcr, used_repo, used, "app")
    orphan_repo = world.repo(objects.kit_name(f"{world.org}-orphan"))
    orphans = [world.push(orphan_repo, "1"), world.push(orphan_repo, "2")]

    code, events = world.run(**_env(ghcr, github, token_file), LOG_LEVEL="debug")

    assert code == 0, events[-3:]
    assert list(events_named(events, "vendor_api_request")), "debug lines were captured"
    assert TOKEN not in str(events)
    assert world.exists(used_repo, used) and world.tags(used_repo) == ["1"]
    assert not world.exists(used_repo, stale)
    # Of the orphan package one version goes alone; the other is its last tagged version, which
    # GitHub deletes only with the package: not a failure, and the package goes whole.
    assert [world.exists(orphan_repo, d) for d in orphans] == [False, False]
    assert len(_version_deletes(github, 400)) == 1
    package_deletes = github.calls_to("DELETE", r"/orgs/.*/packages/container/[^/]+")
    assert [c.path.rsplit("/", 1)[1] for c in package_deletes] == [orphan_repo.split("/", 1)[1]]
    assert [e["repository"] for e in events_named(events, "repository_deleted")] == [orphan_repo]
    assert not list(events_named(events, "delete_failed"))
    assert not ghcr.requests("DELETE"), "nothing may be deleted through v2 on ghcr"
    (summary,) = events_named(events, "summary")  # what the metrics push: the version that went with its package counts
    assert (summary["repositories_deleted"], summary["manifests_deleted"], summary["exit_code"]) == (1, 3, 0)


def test_run_with_a_token_lacking_delete_scope_fails_clearly_and_loses_nothing(
    world, ghcr, registry, org, token_file
) -> None:
    repo = world.repo(objects.kit_name(f"{org}-orphan"))
    digests = [world.push(repo, "1"), world.push(repo, "2")]
    with GitHubPackagesEmulator(registry.url, token=TOKEN, owners={org: "Organization"},
                                scopes=("read:packages",)) as github:
        code, events = world.run(**_env(ghcr, github, token_file))
        refused = _version_deletes(github)

    assert code == 1
    assert all(world.exists(repo, d) for d in digests) and world.tags(repo) == ["1", "2"]
    assert refused and all(c.status == 403 for c in refused)
    errors = [e for e in events if e.get("level") == "error"]
    assert errors and any("delete:packages" in str(e) for e in errors), errors
    assert TOKEN not in str(events)


def test_run_with_a_bad_token_deletes_nothing_and_does_not_exit_0(world, ghcr, github, tmp_path) -> None:
    repo = world.repo(objects.kit_name(f"{world.org}-orphan"))
    digest = world.push(repo, "1")
    wrong = tmp_path / "wrong"
    wrong.write_text("ghp_wrong")
    code, events = world.run(**_env(ghcr, github, str(wrong)))
    assert code != 0
    assert world.exists(repo, digest)
    assert "Bad credentials" in str(events) and "read:packages" in str(events)


def test_run_without_any_token_is_a_configuration_error(world, ghcr, github) -> None:
    env = _env(ghcr, github, "")
    del env["REGISTRY_API_TOKEN_FILE"]
    code, events = world.run(**env)
    assert code == 2
    assert "REGISTRY_API_TOKEN_FILE" in str(events) and "REGISTRY_AUTH_FILE" in str(events)
    assert not github.calls


# --- the store, step by step ----------------------------------------------------------------------


async def test_emptied_package_is_deleted_whole_after_its_last_tagged_version(world, ghcr, github, token_file):
    repo = world.repo(objects.kit_name(f"{world.org}-gone"))
    first, last = world.push(repo, "1"), world.push(repo, "2")
    store = _store(ghcr, github, token_file)
    try:
        listing = await store.list_repositories(Scope((world.org,)))
        assert listing.repositories == (repo,) and listing.source == "GitHub Packages API"
        scan = await store.scan_repository(repo)
        assert not scan.problems and set(scan.manifests) == {first, last}
        outcomes = [await store.delete_manifest(scan.manifests[d]) for d in (first, last)]
        assert outcomes == [DeleteOutcome.DELETED, DeleteOutcome.WITH_REPOSITORY]
        assert world.exists(repo, last)
        assert await store.delete_repository(repo) is DeleteOutcome.DELETED
        assert (await store.list_repositories(Scope((world.org,)))).repositories == ()
        assert await store.delete_repository(repo) is DeleteOutcome.ALREADY_GONE
    finally:
        await store.aclose()
    assert not world.exists(repo, last)
    assert store.stats["api_delete_package"] == 1 and store.stats["manifest_head"] >= 2


async def test_package_holding_a_version_this_run_did_not_delete_is_refused(world, ghcr, github, token_file):
    repo = world.repo(objects.kit_name(f"{world.org}-half"))
    gone, kept = world.push(repo, "1"), world.push(repo, "2")
    store = _store(ghcr, github, token_file)
    try:
        scan = await store.scan_repository(repo)
        assert await store.delete_manifest(scan.manifests[gone]) is DeleteOutcome.DELETED
        with pytest.raises(RegistryError, match=r"still holds 1 version\(s\) this run did not delete"):
            await store.delete_repository(repo)
    finally:
        await store.aclose()
    assert world.exists(repo, kept) and world.tags(repo) == ["2"]
    assert not github.calls_to("DELETE", r".*/packages/container/[^/]+")


async def test_package_this_run_took_nothing_from_is_never_deleted(world, ghcr, github, token_file):
    repo = world.repo(objects.kit_name(f"{world.org}-untouched"))
    digest = world.push(repo, "1")
    store = _store(ghcr, github, token_file)
    try:
        with pytest.raises(RegistryError, match="nothing in it was deleted in this run"):
            await store.delete_repository(repo)
    finally:
        await store.aclose()
    assert world.exists(repo, digest)


async def test_a_tag_added_to_the_last_version_after_the_refusal_keeps_the_package(
    world, ghcr, github, token_file
) -> None:
    repo = world.repo(objects.kit_name(f"{world.org}-retagged"))
    first, last = world.push(repo, "1"), world.push(repo, "2")
    store = _store(ghcr, github, token_file)
    try:
        scan = await store.scan_repository(repo)
        await store.delete_manifest(scan.manifests[first])
        assert await store.delete_manifest(scan.manifests[last]) is DeleteOutcome.WITH_REPOSITORY
        body = world.http.get(f"{world.registry.url}/v2/{repo}/manifests/{last}",
                              headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
        world.http.put(f"{world.registry.url}/v2/{repo}/manifests/release", content=body.content,
                       headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"}).raise_for_status()
        with pytest.raises(RegistryError, match="still holds 1 version"):
            await store.delete_repository(repo)
    finally:
        await store.aclose()
    assert world.tags(repo) == ["2", "release"]


async def test_package_names_with_a_slash_travel_encoded(registry, ghcr, org, token_file, world) -> None:
    repo = f"{org}/team/{'camel-k-' + objects.kit_name(f'{org}-deep')}"
    first, second = world.push(repo, "1"), world.push(repo, "2")
    github = _emulator(registry, org)
    store = _store(ghcr, github, token_file)
    try:
        listing = await store.list_repositories(Scope((f"{org}/team",)))
        assert listing.repositories == (repo,)
        scan = await store.scan_repository(repo)
        assert await store.delete_manifest(scan.manifests[first]) is DeleteOutcome.DELETED
    finally:
        await store.aclose()
        github.stop()
    assert not world.exists(repo, first) and world.exists(repo, second)
    assert any("%2F" in c.path for c in github.calls_to("DELETE"))


async def test_a_users_packages_are_found_under_users(registry, ghcr, org, token_file, world) -> None:
    repo = world.repo(objects.kit_name(f"{org}-mine"))
    world.push(repo, "1")
    github = _emulator(registry, org, kind="User")
    store = _store(ghcr, github, token_file)
    try:
        assert (await store.list_repositories(Scope((org,)))).repositories == (repo,)
    finally:
        await store.aclose()
        github.stop()
    paths = [c.path for c in github.calls_to("GET")]
    assert paths == [f"/orgs/{org}/packages", f"/users/{org}/packages"]


async def test_out_of_scope_packages_are_counted_not_listed(world, ghcr, github, token_file) -> None:
    world.push(f"{world.org}/website", "1")
    world.push(world.repo(objects.kit_name(f"{world.org}-k")), "1")
    store = _store(ghcr, github, token_file)
    try:
        listing = await store.list_repositories(Scope((world.org,)))
    finally:
        await store.aclose()
    assert listing.repositories == (world.repo(objects.kit_name(f"{world.org}-k")),)
    assert listing.out_of_scope == 1


async def test_a_429_from_the_api_is_waited_out(world, ghcr, github, token_file) -> None:
    repo = world.repo(objects.kit_name(f"{world.org}-slow"))
    world.push(repo, "1")
    github.throttle(1, retry_after="0")
    store = _store(ghcr, github, token_file)
    try:
        assert (await store.list_repositories(Scope((world.org,)))).repositories == (repo,)
    finally:
        await store.aclose()
    assert store.stats["api_retry"] == 1
    assert [c.status for c in github.calls][:2] == [429, 200]


async def test_versions_pages_are_all_read(world, ghcr, github, token_file, monkeypatch) -> None:
    repo = world.repo(objects.kit_name(f"{world.org}-many"))
    digests = {world.push(repo, str(i)) for i in range(3)}
    monkeypatch.setattr(github_store, "PAGE", 2)  # the emulator pages like GitHub: 2 + 1
    store = _store(ghcr, github, token_file)
    store.api.stats.clear()
    try:
        scan = await store.scan_repository(repo)
    finally:
        await store.aclose()
    assert set(scan.manifests) == digests and not scan.problems
    assert store.api.stats["versions"] == 2


class _VersionsWithoutTags(GitHubPackagesEmulator):
    """GitHub answering versions without ``metadata.container.tags`` (a broken answer)."""

    def versions(self, repository: str) -> list[dict[str, Any]]:
        return [{**v, "metadata": {"package_type": "container"}} for v in super().versions(repository)]


async def test_a_broken_versions_answer_keeps_the_repository(registry, ghcr, org, token_file, world) -> None:
    repo = world.repo(objects.kit_name(f"{org}-broken"))
    world.push(repo, "1")
    github = _VersionsWithoutTags(registry.url, token=TOKEN, owners={org: "Organization"}).start()
    store = _store(ghcr, github, token_file)
    try:
        scan = await store.scan_repository(repo)
    finally:
        await store.aclose()
        github.stop()
    assert [p.message for p in scan.problems] == [
        f"list versions of package {repo}: version {github.version_id(repo, next(iter(scan.manifests)))} "
        "has no metadata.container.tags list"]


async def test_a_tagged_digest_without_a_version_is_a_problem(registry, ghcr, org, token_file, world) -> None:
    repo = world.repo(objects.kit_name(f"{org}-unlisted"))
    digest = world.push(repo, "1")

    class Hidden(GitHubPackagesEmulator):
        def versions(self, repository: str) -> list[dict[str, Any]]:
            return [v for v in super().versions(repository) if v["name"] != digest] or [
                {"id": 1, "name": "sha256:" + "0" * 64, "metadata": {"container": {"tags": []}}}]

    github = Hidden(registry.url, token=TOKEN, owners={org: "Organization"}).start()
    store = _store(ghcr, github, token_file)
    try:
        scan = await store.scan_repository(repo)
    finally:
        await store.aclose()
        github.stop()
    assert len(scan.problems) == 1 and re.search(r"has no version in the GitHub Packages API", scan.problems[0].message)


async def test_delete_refused_for_scope_stops_every_deletion(registry, ghcr, org, token_file, world) -> None:
    repo = world.repo(objects.kit_name(f"{org}-ro"))
    a, _ = world.push(repo, "1"), world.push(repo, "2")
    github = _emulator(registry, org, scopes=("read:packages",))
    store = _store(ghcr, github, token_file)
    try:
        scan = await store.scan_repository(repo)
        with pytest.raises(DeletionDisabled, match="delete:packages"):
            await store.delete_manifest(scan.manifests[a])
        checks = await store.permission_checks()
    finally:
        await store.aclose()
        github.stop()
    assert world.exists(repo, a)
    assert ("github_delete_packages", False, "delete:packages deletes versions") in checks
    assert ("github_read_packages", True, "read:packages lists packages and versions") in checks


def test_last_tagged_message_is_the_one_github_sends() -> None:
    assert LAST_TAGGED == ("You cannot delete the last tagged version of a package. "
                           "You must delete the package instead.")


def test_no_token_is_a_config_error_naming_both_variables(ghcr) -> None:
    v2 = DistributionStore(RegistryClient(ghcr.address, insecure=True), "ghcr")
    with pytest.raises(ConfigError, match=r"REGISTRY_API_TOKEN_FILE.*REGISTRY_AUTH_FILE"):
        open_ghcr(Settings(registry_timeout=timedelta(seconds=5)), v2)


def test_dry_run_lists_and_reads_but_deletes_nothing(world, ghcr, github, token_file) -> None:
    repo = world.repo(objects.kit_name(f"{world.org}-dry"))
    digest = world.push(repo, "1")
    code, events = world.run(**{**_env(ghcr, github, token_file), "DRY_RUN": "true"})
    assert code == 0, events[-3:]
    assert world.exists(repo, digest)
    assert github.calls_to("GET") and not github.calls_to("DELETE")


async def test_children_of_an_index_that_goes_with_its_package_are_not_deleted_alone(
    world, ghcr, github, token_file
) -> None:
    repo = world.repo(objects.kit_name(f"{world.org}-multi"))
    index, children = images.push_multiarch(world.registry.url, repo, ["1"], client=world.http)
    for child in children:
        github.add_untagged(repo, child)  # GHCR lists an index's children as untagged versions
    store = _store(ghcr, github, token_file)
    try:
        scan = await store.scan_repository(repo)
        assert not scan.problems and set(scan.manifests) == {index, *children}
        outcomes = {}
        for batch in store.deletion_batches(list(scan.manifests.values())):
            for m in batch:
                outcomes[m.digest] = await store.delete_manifest(m)
        assert set(outcomes.values()) == {DeleteOutcome.WITH_REPOSITORY}
        assert all(world.exists(repo, d) for d in (index, *children)), "the kept index must stay whole"
        assert await store.delete_repository(repo) is DeleteOutcome.DELETED
    finally:
        await store.aclose()
    assert not any(world.exists(repo, d) for d in (index, *children))
    assert len(_version_deletes(github)) == 1  # only the index was tried: refused as the last tagged


def test_doctor_reports_a_token_without_delete_scope(world, ghcr, registry, org, token_file) -> None:
    with GitHubPackagesEmulator(registry.url, token=TOKEN, owners={org: "Organization"},
                                scopes=("read:packages",)) as github:
        code, events = world.run("doctor", **_env(ghcr, github, token_file))
    checks = {e["check"]: e for e in events if "check" in e}
    assert checks["github_delete_packages"]["ok"] is False
    assert checks["github_read_packages"]["ok"] is True
    assert code == 1
