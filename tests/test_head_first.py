"""HEAD-first scanning: a tag costs a HEAD, a body is read only where one is needed.

Docker Hub counts every manifest GET as a pull against its rate limit and HEAD not, so a
manifest that stays must cost no GET; what the plan would delete is read (GET by digest,
verified) before it can be deleted, and what its body says (an OCI ``subject``) can change
the plan. Everything here runs against the real Distribution registry behind a FaultProxy,
whose log of forwarded requests is what the assertions count. The scan, the planner and
:mod:`kitgc.bodies` are the real ones; only the cluster picture is built by hand.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from kitgc.bodies import MAX_ROUNDS, read_before_deleting, unread_deletions
from kitgc.identity import ManifestKey
from kitgc.imageref import parse
from kitgc.inventory import scan
from kitgc.model import (
    Action,
    ClusterSnapshot,
    Inventory,
    Manifest,
    ObjectRef,
    Plan,
    Policy,
    Reference,
    State,
)
from kitgc.plan.reasons import ReasonKind
from kitgc.registry import RegistryClient
from kitgc.registry.mediatypes import OCI_INDEX, OCI_MANIFEST
from kitgc.stores.distribution import DistributionStore
from kitgc.sweep.planner import Planner
from testbed import objects
from testbed.attachments import cosign_tag, push_cosign, push_referrer
from testbed.faultproxy import Fault, FaultProxy
from testbed.images import (
    ALL_MANIFESTS,
    digest_of,
    image_config,
    image_manifest,
    push_image,
    push_manifest,
    push_multiarch,
)
from testbed.kube_fixtures import KubeHandle
from testbed.registry_server import RegistryServer
from testbed.world import World

_DIGEST_PATH = re.compile(r".*/manifests/(sha256:[0-9a-f]{64})")


@pytest.fixture
async def store(proxy: FaultProxy) -> AsyncIterator[DistributionStore]:
    async with DistributionStore(RegistryClient(proxy.address, insecure=True, backoff=0.0, retries=2)) as s:
        yield s


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as c:
        yield c


def _repo(org: str, seed: str) -> str:
    return f"{org}/camel-k-{objects.kit_name(f'{org}-{seed}')}"


def _push(registry: RegistryServer, repo: str, *tags: str, http: httpx.Client) -> str:
    """A unique image (its own config) under ``tags``."""
    return push_image(registry.url, repo, tags, config=image_config(), client=http)


def _manifest_requests(proxy: FaultProxy, method: str, repo: str) -> list[str]:
    """The references (tag or digest) of ``repo`` that ``method`` was sent for, in order."""
    prefix = f"/v2/{repo}/manifests/"
    return [s.path[len(prefix):] for s in proxy.requests(method, re.escape(prefix) + ".*")]


def _cluster(registry: RegistryServer, repo: str, *digests: str, tag: str | None = None) -> ClusterSnapshot:
    """A cluster whose Deployment runs ``digests`` (and ``repo:tag`` when given)."""
    images = [f"{registry.address}/{repo}@{d}" for d in digests] + ([f"{registry.address}/{repo}:{tag}"] if tag else [])
    refs = tuple(Reference(parse(i), ObjectRef("Deployment", f"app-{n}", "shop"), "spec.template")
                 for n, i in enumerate(images))
    return ClusterSnapshot(references=refs, kits=(), kit_uses=(), integrations=1)


def _planner(inventory: Inventory, org: str) -> Planner:
    now = datetime.now(UTC)
    policy = Policy(organizations=(org,), min_age=timedelta(0), prune_kits=True, max_deletions=500)
    return Planner(inventory, policy, State(), now, now - timedelta(minutes=1))


def _by_digest(inventory: Inventory) -> dict[str, Manifest]:
    return {m.digest: m for m in inventory.manifests}


def _action(plan: Plan, repo: str, digest: str) -> Action:
    return next(d.action for d in plan.manifests if d.manifest.key == ManifestKey(repo, digest))


# --- the scan ----------------------------------------------------------------------------


async def test_tag_of_a_plain_image_costs_one_head_and_no_get(
    registry: RegistryServer, org: str, proxy: FaultProxy, store: DistributionStore, http: httpx.Client
) -> None:
    repo = _repo(org, "plain")
    digest = _push(registry, repo, "1", "latest", http=http)
    inventory = await scan(store, (org,))
    assert Counter(_manifest_requests(proxy, "HEAD", repo)) == {"1": 1, "latest": 1}
    assert _manifest_requests(proxy, "GET", repo) == []
    [m] = inventory.manifests
    assert (m.digest, m.tags, m.media_type, m.read) == (digest, ("1", "latest"), OCI_MANIFEST, False)
    assert m.blobs == () and m.subject is None and inventory.problems == ()


async def test_index_costs_a_head_and_a_get_and_its_children_a_get_each(
    registry: RegistryServer, org: str, proxy: FaultProxy, store: DistributionStore, http: httpx.Client
) -> None:
    repo = _repo(org, "index")
    index, children = push_multiarch(registry.url, repo, ["1"], client=http)
    inventory = await scan(store, (org,))
    assert _manifest_requests(proxy, "HEAD", repo) == ["1"]
    assert sorted(_manifest_requests(proxy, "GET", repo)) == sorted(["1", *children])
    found = _by_digest(inventory)
    assert found[index].read and found[index].media_type == OCI_INDEX and found[index].children == tuple(children)
    assert all(found[c].read and found[c].blobs for c in children)


async def test_head_without_digest_header_falls_back_to_a_verified_get(
    registry: RegistryServer, org: str, proxy: FaultProxy, store: DistributionStore, http: httpx.Client
) -> None:
    repo = _repo(org, "nodigest")
    digest = _push(registry, repo, "1", http=http)
    proxy.add(Fault("no_digest", "HEAD", rf"/v2/{re.escape(repo)}/manifests/1"))
    inventory = await scan(store, (org,))
    assert proxy.injected["missing_digest_header"] == 1
    assert _manifest_requests(proxy, "HEAD", repo) == ["1"] and _manifest_requests(proxy, "GET", repo) == ["1"]
    [m] = inventory.manifests
    assert m.digest == digest and m.read and m.blobs, m


def _scripted(repo: str, body: bytes, head: httpx.Response, seen: list[tuple[str, str]]) -> RegistryClient:
    """A registry holding ``body`` as ``repo:1`` whose HEAD answers ``head``; requests go to ``seen``."""

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        seen.append((request.method, path))
        if path == "/v2/_catalog":
            return httpx.Response(200, json={"repositories": [repo]})
        if path.endswith("/tags/list"):
            return httpx.Response(200, json={"name": repo, "tags": ["1"]})
        if path.endswith("/manifests/1") and request.method == "HEAD":
            return head
        if path.endswith("/manifests/1"):
            return httpx.Response(200, content=body, headers={"Content-Type": head.headers.get(
                "Content-Type", OCI_MANIFEST), "Docker-Content-Digest": digest_of(body)})
        return httpx.Response(404, json={"errors": [{"code": "NAME_UNKNOWN"}]})  # no referrers API

    return RegistryClient("reg.test", transport=httpx.MockTransport(handler), backoff=0.0, retries=1)


_BODY = image_manifest(image_config(nonce="scripted"), [])


@pytest.mark.parametrize("head", [
    httpx.Response(405, json={"errors": [{"code": "UNSUPPORTED"}]}),
    httpx.Response(200, headers={"Content-Type": "application/json", "Docker-Content-Digest": digest_of(_BODY)}),
    httpx.Response(200, headers={"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": "sha256:not-hex"}),
    httpx.Response(200, headers={"Docker-Content-Digest": digest_of(_BODY)}),
], ids=["head-refused", "unknown-media-type", "malformed-digest", "no-media-type"])
async def test_head_that_cannot_settle_a_tag_is_followed_by_a_get(head: httpx.Response) -> None:
    repo, seen = "o/camel-k-kit-a", []
    async with DistributionStore(_scripted(repo, _BODY, head, seen)) as s:
        inventory = await scan(s, ("o",))
    manifests = [(method, path) for method, path in seen if "/manifests/" in path]
    assert manifests == [("HEAD", f"/v2/{repo}/manifests/1"), ("GET", f"/v2/{repo}/manifests/1")]
    [m] = inventory.manifests
    assert (m.digest, m.read, m.tags, inventory.problems) == (digest_of(_BODY), True, ("1",), ())


# --- reading what the plan would delete ----------------------------------------------------


async def test_manifest_planned_for_deletion_is_read_by_digest_before_it_can_be_deleted(
    registry: RegistryServer, org: str, proxy: FaultProxy, store: DistributionStore, http: httpx.Client
) -> None:
    repo = _repo(org, "read")
    kept, garbage = _push(registry, repo, "1", http=http), _push(registry, repo, "2", http=http)
    planner = _planner(await scan(store, (org,)), org)
    cluster = _cluster(registry, repo, kept)
    first = planner(cluster)
    assert [d.manifest.digest for d in unread_deletions(first)] == [garbage]

    planner, plan = await read_before_deleting(store, planner, cluster, first)

    assert unread_deletions(plan) == []
    [deletion] = plan.manifest_deletions
    assert deletion.manifest.digest == garbage and deletion.manifest.read and deletion.manifest.tags == ("2",)
    assert len(deletion.manifest.blobs) == 2 and deletion.manifest.size > 0  # config + the shared layer
    assert _manifest_requests(proxy, "GET", repo) == [garbage]  # by digest: the client verifies the body
    assert _action(plan, repo, kept) is Action.KEEP
    assert not _by_digest(planner.inventory)[kept].read


async def test_body_that_does_not_match_its_digest_keeps_the_repository(
    registry: RegistryServer, org: str, proxy: FaultProxy, store: DistributionStore, http: httpx.Client
) -> None:
    repo = _repo(org, "mismatch")
    garbage = _push(registry, repo, "1", http=http)
    planner = _planner(await scan(store, (org,)), org)
    cluster = _cluster(registry, repo)
    proxy.add(Fault("wrong_digest", "GET", rf"/v2/{re.escape(repo)}/manifests/{garbage}"))

    planner, plan = await read_before_deleting(store, planner, cluster, planner(cluster))

    assert proxy.injected["mismatched_digest_header"] >= 1
    assert plan.manifest_deletions == ()
    [decision] = plan.manifests
    assert decision.action is Action.KEEP and decision.why[0].kind is ReasonKind.READ_PROBLEM
    assert "digest mismatch" in decision.reason and garbage in decision.reason


async def test_body_revealing_a_subject_of_a_kept_image_keeps_it_after_replanning(
    registry: RegistryServer, org: str, proxy: FaultProxy, store: DistributionStore, http: httpx.Client
) -> None:
    repo = _repo(org, "subject")
    kept = _push(registry, repo, "1", http=http)
    sbom = push_referrer(registry.url, repo, kept, client=http)
    body = http.get(f"{registry.url}/v2/{repo}/manifests/{sbom}", headers={"Accept": ALL_MANIFESTS}).content
    push_manifest(registry.url, repo, "sbom-1", body, OCI_MANIFEST, client=http)  # tagged: HEAD alone resolves it
    planner = _planner(await scan(store, (org,)), org)
    assert not _by_digest(planner.inventory)[sbom].read
    cluster = _cluster(registry, repo, kept)
    first = planner(cluster)
    assert _action(first, repo, sbom) is Action.DELETE  # unread, it looks like an ordinary unreferenced image

    planner, plan = await read_before_deleting(store, planner, cluster, first)

    assert plan.manifest_deletions == ()
    decision = next(d for d in plan.manifests if d.manifest.digest == sbom)
    assert decision.action is Action.KEEP and decision.why[0].kind is ReasonKind.KEPT_WITH_IMAGE
    assert decision.manifest.subject == kept and decision.manifest.tags == ("sbom-1",)
    assert _manifest_requests(proxy, "GET", repo) == [sbom]


def _tagged_referrer(registry: RegistryServer, repo: str, subject: str, tag: str, http: httpx.Client) -> str:
    """An OCI 1.1 SBOM of ``subject`` pushed under ``tag``: only its body says what it is attached to."""
    digest = push_referrer(registry.url, repo, subject, payload=f"sbom {tag}".encode(), client=http)
    body = http.get(f"{registry.url}/v2/{repo}/manifests/{digest}", headers={"Accept": ALL_MANIFESTS}).content
    push_manifest(registry.url, repo, tag, body, OCI_MANIFEST, client=http)
    return digest


async def test_reading_rounds_are_bounded_and_what_is_still_unread_keeps_its_repository(
    registry: RegistryServer, org: str, proxy: FaultProxy, store: DistributionStore, http: httpx.Client
) -> None:
    """MAX_DELETIONS=1 and tagged SBOMs of a kept image: each round reads the one deletion, which
    turns out attached and stays, and frees the slot for the next unread one. After MAX_ROUNDS
    the repository is held whole rather than deleting a manifest nobody read."""
    repo = _repo(org, "rounds")
    kept = _push(registry, repo, "1", http=http)
    sboms = [_tagged_referrer(registry, repo, kept, f"sbom-{i}", http) for i in range(MAX_ROUNDS + 1)]
    planner = replace(_planner(await scan(store, (org,)), org), policy=Policy(
        organizations=(org,), min_age=timedelta(0), prune_kits=True, max_deletions=1))
    cluster = _cluster(registry, repo, kept)

    planner, plan = await read_before_deleting(store, planner, cluster, planner(cluster))

    assert plan.manifest_deletions == () and unread_deletions(plan) == []
    assert len(_manifest_requests(proxy, "GET", repo)) == MAX_ROUNDS
    assert sum(_by_digest(planner.inventory)[d].read for d in sboms) == MAX_ROUNDS
    assert all(d.action is Action.KEEP and ReasonKind.READ_PROBLEM in {r.kind for r in d.why} for d in plan.manifests)
    [unread] = [d for d in plan.manifests if d.manifest.digest in sboms and not d.manifest.read]
    assert f"still unread after {MAX_ROUNDS} rounds" in unread.reason


async def test_manifest_gone_between_head_and_get_is_dropped(
    registry: RegistryServer, org: str, proxy: FaultProxy, store: DistributionStore, http: httpx.Client
) -> None:
    repo = _repo(org, "vanish")
    kept, gone = _push(registry, repo, "1", http=http), _push(registry, repo, "2", http=http)
    planner = _planner(await scan(store, (org,)), org)
    cluster = _cluster(registry, repo, kept)
    first = planner(cluster)
    assert http.delete(f"{registry.url}/v2/{repo}/manifests/{gone}").status_code == 202  # someone else was first

    planner, plan = await read_before_deleting(store, planner, cluster, first)

    assert _manifest_requests(proxy, "GET", repo) == [gone]
    assert [d.manifest.digest for d in plan.manifests] == [kept] and plan.manifest_deletions == ()
    assert planner.inventory.problems == () and gone not in _by_digest(planner.inventory)


async def test_manifests_that_stay_cost_no_get_docker_hub_style(
    registry: RegistryServer, org: str, proxy: FaultProxy, store: DistributionStore, http: httpx.Client
) -> None:
    """Kept images (by digest, by tag), a cosign signature of a kept image (an attachment by
    tag name: HEAD is enough), and garbage with its own signature: GETs only for the garbage."""
    a, b = _repo(org, "hub-a"), _repo(org, "hub-b")
    by_digest = _push(registry, a, "1", http=http)
    by_tag = _push(registry, a, "2", http=http)
    kept_sig = push_cosign(registry.url, a, by_digest, client=http)
    garbage_a = _push(registry, a, "3", "old", http=http)
    garbage_b = _push(registry, b, "1", http=http)
    garbage_sig = push_cosign(registry.url, b, garbage_b, client=http)
    refs = (*_cluster(registry, a, by_digest, tag="2").references,)
    cluster = ClusterSnapshot(references=refs, kits=(), kit_uses=(), integrations=1)
    planner = _planner(await scan(store, (org,)), org)

    planner, plan = await read_before_deleting(store, planner, cluster, planner(cluster))

    deleted = {(d.manifest.repository, d.manifest.digest) for d in plan.manifest_deletions}
    assert deleted == {(a, garbage_a), (b, garbage_b), (b, garbage_sig)}
    for repo, staying in ((a, (by_digest, by_tag, kept_sig)), (b, ())):
        gets = Counter(_manifest_requests(proxy, "GET", repo))
        going = {digest for r, digest in deleted if r == repo}
        assert gets == dict.fromkeys(going, 1), f"{repo}: GETs {dict(gets)}"  # nothing that stays, no tag
        assert not set(gets) & set(staying)
    heads = Counter(s.path for s in proxy.requests("HEAD"))
    tags = {a: ["1", "2", "3", "old", cosign_tag(by_digest)], b: ["1", cosign_tag(garbage_b)]}
    assert heads == {f"/v2/{r}/manifests/{t}": 1 for r, ts in tags.items() for t in ts}


# --- the whole run ---------------------------------------------------------------------


def test_real_run_reads_every_manifest_before_deleting_it_and_keeps_a_tagged_sbom_of_a_used_image(
    registry: RegistryServer, kube: KubeHandle, org: str, proxy: FaultProxy
) -> None:
    world = World(registry, kube, org)
    world.anchor()
    try:
        repo = world.repo(objects.kit_name(f"{org}-e2e"))
        used, garbage = world.push(repo, "1"), world.push(repo, "2")
        world.add(objects.deployment("app", "shop", images=[world.image(repo, used)]))
        sbom = push_referrer(registry.url, repo, used, client=world.http)
        body = world.http.get(f"{registry.url}/v2/{repo}/manifests/{sbom}", headers={"Accept": ALL_MANIFESTS}).content
        push_manifest(registry.url, repo, "sbom-1", body, OCI_MANIFEST, client=world.http)

        code, events = world.run(DRY_RUN="false", REGISTRY_ADDRESS=proxy.address)

        assert code == 0, events[-3:]
        assert world.exists(repo, used) and world.exists(repo, sbom) and not world.exists(repo, garbage)
        log = [(s.method, _DIGEST_PATH.fullmatch(s.path)) for s in proxy.requests(path=rf"/v2/{re.escape(repo)}/.*")]
        gets = Counter(s.path.rsplit("/", 1)[1] for s in proxy.requests("GET", rf"/v2/{re.escape(repo)}/manifests/.*"))
        deletes = [m.group(1) for method, m in log if method == "DELETE" and m]
        # each read once, before the first plan is acted on; the used image once too, as the kept
        # neighbour of a deletion (its layers are not reclaimed): reads are not metered here
        assert deletes == [garbage] and gets == {garbage: 1, sbom: 1, used: 1}, gets
        first_get = next(i for i, (method, m) in enumerate(log) if method == "GET" and m and m.group(1) == garbage)
        first_delete = next(i for i, (method, m) in enumerate(log) if method == "DELETE" and m)
        assert first_get < first_delete
    finally:
        world.http.close()


def test_bytes_are_exact_where_reads_are_free_and_an_upper_bound_where_they_are_metered(
    registry: RegistryServer, kube: KubeHandle, org: str
) -> None:
    """An older build shares the newer one's layers: they are not reclaimed by deleting it.

    Where a GET costs nothing special the kept neighbour is read and its layers are known;
    where every GET is a pull (``metered_reads``) nothing that stays is read and the shared
    layers count, as the README says: an upper bound.
    """
    import asyncio

    from kitgc.model import Policy, State
    from kitgc.present.report import reclaimable_bytes
    from kitgc.stores.base import Capabilities
    from testbed import images
    from testbed import planfactory as pf

    world = World(registry, kube, org)
    try:
        repo = world.repo(objects.kit_name(f"{org}-bytes"))
        old, new = world.push(repo, "1"), world.push(repo, "2")  # both carry images.SHARED_LAYER
        cluster = pf.cluster([pf.ref(f"{registry.address}/{repo}@{new}")])

        async def bytes_with(metered: bool) -> tuple[int, bool]:
            store = DistributionStore(RegistryClient(registry.address, insecure=True))
            if metered:
                store.capabilities = Capabilities(metered_reads=True)  # type: ignore[misc]
            try:
                inventory = await scan(store, (org,))
                planner = Planner(inventory, Policy((org,), pf.DAY * 0, True, 500), State(), pf.NOW, pf.NOW)
                planner, plan = await read_before_deleting(store, planner, cluster, planner(cluster),
                                                           neighbours=True)
            finally:
                await store.aclose()
            (kept,) = [d.manifest for d in plan.manifests if d.manifest.digest == new]
            assert [d.manifest.digest for d in plan.manifest_deletions] == [old]
            return reclaimable_bytes(plan), kept.read

        exact, read_exact = asyncio.run(bytes_with(metered=False))
        upper, read_upper = asyncio.run(bytes_with(metered=True))
        assert read_exact and not read_upper
        shared = len(images.SHARED_LAYER)
        assert upper - exact == shared  # the layer the kept build still uses: counted only when unread
    finally:
        world.http.close()
