"""inventory.scan: what the planner gets to see, from a real registry and from scripted
failures (tags vanishing mid-scan, broken answers, a catalog the registry will not give)."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
import structlog

from kitgc.errors import RegistryError
from kitgc.inventory import scan
from kitgc.model import RepositoryProblem
from kitgc.registry import Credentials, RegistryClient
from kitgc.registry.mediatypes import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST
from kitgc.stores.distribution import DistributionStore
from testbed.images import digest_of, push_image, push_index, push_multiarch
from testbed.registry_fixtures import push_client
from testbed.registry_server import RegistryServer
from testbed.token_issuer import TokenIssuer


async def test_scan_reads_tags_indexes_and_children_of_in_scope_repositories_only(
    registry: RegistryServer, org: str
) -> None:
    url = registry.url
    a, b, c = (f"{org}/camel-k-kit-{x}" for x in "abc")
    shared = push_image(url, a, ["1", "latest", "2"])
    docker = push_image(url, a, ["3"], media_type=DOCKER_MANIFEST)
    index, children = push_multiarch(url, b, ["1"], index_type=DOCKER_LIST)
    tagged_child = push_image(url, b, ["child"])  # also a child of "nested" below
    inner, inner_children = push_multiarch(url, b, [])
    outer = push_index(url, b, ["nested"], children=[inner, tagged_child])
    gone = push_image(url, c, ["1"])
    async with RegistryClient(registry.address, insecure=True) as client:
        await client.delete_manifest(c, gone)
        for out in (f"{org}/other", f"{org}/sub/camel-k-kit-x", f"{org}x/camel-k-kit-y"):
            push_image(url, out, ["1"])
        calls: list[tuple[int, int]] = []
        inventory = await scan(DistributionStore(client), (org,), progress=lambda d, t: calls.append((d, t)))
        catalog = await client.catalog()

    assert inventory.registry == registry.address
    assert inventory.repositories == (a, b, c)
    assert inventory.problems == ()
    assert inventory.out_of_scope == len(catalog) - 3
    assert sorted(calls) == [(1, 3), (2, 3), (3, 3)]
    assert [(m.repository, m.digest) for m in inventory.manifests] == sorted(
        (m.repository, m.digest) for m in inventory.manifests
    )
    by_digest = {m.digest: m for m in inventory.manifests}
    # a: 2 images; b: list + 2 children, tagged child, inner index + 2 children, outer; c: none
    assert len(by_digest) == len(inventory.manifests) == 2 + 3 + 1 + 3 + 1
    assert by_digest[shared].tags == ("1", "2", "latest")
    # HEAD first: tagged images are resolved without their body; indexes and children are read.
    assert not by_digest[shared].read and by_digest[shared].blobs == ()
    assert by_digest[index].read and all(by_digest[c].read for c in children)
    assert by_digest[docker].media_type == DOCKER_MANIFEST and by_digest[docker].tags == ("3",)
    assert by_digest[index].media_type == DOCKER_LIST and by_digest[index].children == tuple(children)
    assert by_digest[index].blobs == () and by_digest[index].is_index
    for child in (*children, *inner_children):
        assert by_digest[child].tags == () and by_digest[child].media_type in (OCI_MANIFEST, DOCKER_MANIFEST)
        assert [b.size for b in by_digest[child].blobs][1:] == [1024]
    assert by_digest[tagged_child].tags == ("child",)
    assert by_digest[outer].children == (inner, tagged_child) and by_digest[outer].tags == ("nested",)
    assert by_digest[inner].media_type == OCI_INDEX and by_digest[inner].tags == ()
    assert all(m.size > 0 for m in inventory.manifests)
    assert not any(hasattr(m, "body") for m in inventory.manifests)


async def test_catalog_denied_falls_back_to_known_repositories_in_scope(
    token_registry: RegistryServer, token_issuer: TokenIssuer, org: str
) -> None:
    repo = f"{org}/camel-k-kit-known"
    with push_client(token_registry) as c:
        digest = push_image(token_registry.url, repo, ["1"], client=c)
    token_issuer.deny_catalog = True
    creds = Credentials(token_registry.username or "", token_registry.password or "")
    async with RegistryClient(token_registry.address, insecure=True, credentials=creds) as client:
        with structlog.testing.capture_logs() as logs:
            inventory = await scan(DistributionStore(client), (org,),
                                   known_repositories=(repo, f"{org}/not-a-kit", repo))
    assert inventory.repositories == (repo,) and inventory.out_of_scope == 0
    assert [(m.digest, m.tags) for m in inventory.manifests] == [(digest, ("1",))]
    assert any(e["log_level"] == "warning" and "catalog" in e["event"] for e in logs)


# --- scripted registry -----------------------------------------------------------------


def image(n: int) -> bytes:
    return json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": "sha256:" + f"{n:064x}", "size": n},
        "layers": [],
    }).encode()


def index_of(*children: bytes) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": digest_of(c), "size": len(c)} for c in children]}).encode()


def fake_registry(
    repos: dict[str, dict[str, bytes]], *, broken: dict[str, httpx.Response] | None = None,
    catalog: httpx.Response | None = None,
) -> Callable[[httpx.Request], httpx.Response]:
    """``repos``: repository -> {tag or digest: manifest body}; ``broken``: path -> answer."""
    broken = broken or {}

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path in broken:
            return broken[path]
        if path == "/v2/_catalog":
            return catalog or httpx.Response(200, json={"repositories": sorted(repos)})
        repo, _, rest = path[len("/v2/"):].rpartition("/manifests/")
        if not repo:
            repo = path[len("/v2/"):].removesuffix("/tags/list")
            if repo not in repos:
                return httpx.Response(404, json={"errors": [{"code": "NAME_UNKNOWN"}]})
            return httpx.Response(200, json={"name": repo, "tags": [t for t in repos[repo] if ":" not in t]})
        body = repos.get(repo, {}).get(rest)
        if body is None:
            return httpx.Response(404, json={"errors": [{"code": "MANIFEST_UNKNOWN"}]})
        return httpx.Response(200, content=body, headers={"Content-Type": json.loads(body)["mediaType"],
                                                          "Docker-Content-Digest": digest_of(body)})

    return handler


def client_for(handler: Callable[[httpx.Request], httpx.Response]) -> RegistryClient:
    return RegistryClient("reg.test", transport=httpx.MockTransport(handler), backoff=0.0, retries=2)


def with_digests(*bodies: bytes, **tagged: bytes) -> dict[str, bytes]:
    return {**{digest_of(b): b for b in (*bodies, *tagged.values())}, **tagged}


async def test_tag_that_vanishes_between_listing_and_reading_is_simply_gone() -> None:
    repo = "o/camel-k-kit-a"
    handler = fake_registry({repo: with_digests(x1=image(1))},
                            broken={f"/v2/{repo}/manifests/x2": httpx.Response(404, json={"errors": [
                                {"code": "MANIFEST_UNKNOWN"}]})})
    inner = handler

    def listing_x2(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/tags/list"):
            return httpx.Response(200, json={"tags": ["x1", "x2"]})
        return inner(request)

    async with client_for(listing_x2) as client:
        inventory = await scan(DistributionStore(client), ("o",))
    assert [m.tags for m in inventory.manifests] == [("x1",)] and inventory.problems == ()


async def test_unreadable_tag_or_child_is_a_problem_and_the_scan_goes_on() -> None:
    a, b = "o/camel-k-kit-a", "o/camel-k-kit-b"
    good, bad_child = image(1), image(2)
    idx = index_of(good, bad_child)
    handler = fake_registry(
        {a: with_digests(ok=image(3), broken=image(4)), b: with_digests(good, bad_child, idx=idx)},
        broken={f"/v2/{a}/manifests/broken": httpx.Response(200, content=b"{truncated",
                                                             headers={"Content-Type": OCI_MANIFEST}),
                f"/v2/{b}/manifests/{digest_of(bad_child)}": httpx.Response(500)},
    )
    async with client_for(handler) as client:
        inventory = await scan(DistributionStore(client), ("o",))
    assert {(m.repository, m.tags) for m in inventory.manifests} == {(a, ("ok",)), (b, ("idx",)), (b, ())}
    assert [(p.repository, p.tag) for p in inventory.problems] == [(a, "broken"), (b, None)]
    assert "not valid JSON" in inventory.problems[0].message
    assert digest_of(bad_child) in inventory.problems[1].message and "HTTP 500" in inventory.problems[1].message


async def test_tags_list_failure_is_a_repository_problem() -> None:
    a, b = "o/camel-k-kit-a", "o/camel-k-kit-b"
    handler = fake_registry({a: with_digests(t=image(1)), b: with_digests(t=image(2))},
                            broken={f"/v2/{a}/tags/list": httpx.Response(403, json={"errors": [{"code": "DENIED"}]})})
    async with client_for(handler) as client:
        inventory = await scan(DistributionStore(client), ("o",))
    assert inventory.repositories == (a, b)
    assert inventory.problems == (RepositoryProblem(a, inventory.problems[0].message, None),)
    assert "DENIED" in inventory.problems[0].message
    assert [m.repository for m in inventory.manifests] == [b]


async def test_child_missing_from_an_index_is_skipped_without_problem() -> None:
    repo = "o/camel-k-kit-a"
    present, missing = image(1), image(2)
    handler = fake_registry({repo: with_digests(present, idx=index_of(present, missing))})
    async with client_for(handler) as client:
        inventory = await scan(DistributionStore(client), ("o",))
    assert {m.digest for m in inventory.manifests} == {digest_of(present), digest_of(index_of(present, missing))}
    assert inventory.problems == ()


@pytest.mark.parametrize(
    "answer",
    [httpx.Response(404), httpx.Response(405, json={"errors": [{"code": "UNSUPPORTED"}]}),
     httpx.Response(401, json={"errors": [{"code": "UNAUTHORIZED"}]}), httpx.Response(403)],
    ids=["404", "405", "401", "403"],
)
async def test_catalog_not_offered_means_known_repositories(answer: httpx.Response) -> None:
    repo = "o/camel-k-kit-a"
    handler = fake_registry({repo: with_digests(t=image(1))}, catalog=answer)
    async with client_for(handler) as client:
        inventory = await scan(DistributionStore(client), ("o",),
                               known_repositories=(repo, "o/camel-k-kit-gone", "p/camel-k-kit-a"))
    assert inventory.repositories == ("o/camel-k-kit-a", "o/camel-k-kit-gone")  # the gone one: empty, no problem
    assert len(inventory.manifests) == 1 and inventory.problems == ()


@pytest.mark.parametrize(
    "answer", [httpx.Response(500), httpx.Response(200, content=b"<html>"), httpx.Response(400)],
    ids=["500", "garbage", "400"],
)
async def test_other_catalog_failures_raise(answer: httpx.Response) -> None:
    async with client_for(fake_registry({}, catalog=answer)) as client:
        with pytest.raises(RegistryError, match=r"^catalog"):
            await scan(DistributionStore(client), ("o",), known_repositories=("o/camel-k-kit-a",))


async def test_refused_catalog_with_nothing_to_fall_back_on_is_an_error() -> None:
    """A run that silently scans nothing would look healthy while collecting nothing."""
    answer = httpx.Response(401, json={"errors": [{"code": "UNAUTHORIZED"}]})
    async with client_for(fake_registry({}, catalog=answer)) as client:
        with pytest.raises(RegistryError, match="REGISTRY_AUTH_FILE"):
            await scan(DistributionStore(client), ("o",))


async def test_known_repositories_are_asked_for_only_when_the_catalog_is_refused() -> None:
    repo = "o/camel-k-kit-a"
    asked: list[int] = []

    async def known() -> tuple[str, ...]:
        asked.append(1)
        return (repo,)

    async with client_for(fake_registry({repo: with_digests(t=image(1))})) as client:
        await scan(DistributionStore(client), ("o",), known_repositories=known)
    assert asked == []
    async with client_for(fake_registry({repo: with_digests(t=image(1))}, catalog=httpx.Response(404))) as client:
        inventory = await scan(DistributionStore(client), ("o",), known_repositories=known)
    assert asked == [1] and inventory.repositories == (repo,)
