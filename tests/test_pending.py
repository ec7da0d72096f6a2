"""Remembered children of deleted indexes: what is written, what is forgotten, what is fetched back.

kitgc.pending is pure; include_remembered is run against a scripted ManifestFetcher (every
branch) and once against a real registry.
"""

from __future__ import annotations

import json

import pytest
from structlog.testing import capture_logs

from kitgc import pending
from kitgc.errors import RegistryError
from kitgc.identity import ManifestKey
from kitgc.inventory import include_remembered
from kitgc.model import Action, Manifest, ManifestDecision, Plan, RepositoryProblem, State
from kitgc.registry import RegistryClient
from kitgc.stores.distribution import DistributionStore
from testbed.images import push_multiarch
from testbed.planfactory import ORG, digest, inventory, manifest, repo
from testbed.registry_server import RegistryServer

A, B = repo("kit-a"), repo("kit-b")
D = [digest(i) for i in range(8)]

# --- decode / encode ---------------------------------------------------------------------


def test_encode_decode_round_trips_and_drops_empty_repositories() -> None:
    remembered = {A: {D[1], D[0]}, B: {D[2]}}
    text = pending.encode({**remembered, "org/camel-k-kit-empty": set()})
    assert json.loads(text) == {A: [D[0], D[1]], B: [D[2]]}  # sorted, empty repository gone
    assert pending.decode(text) == remembered
    assert pending.decode(json.dumps({A: [D[0]], B: []})) == {A: {D[0]}}


@pytest.mark.parametrize("text", [None, ""])
def test_nothing_stored_means_nothing_remembered(text: str | None) -> None:
    assert pending.decode(text) == {}


@pytest.mark.parametrize(
    "text",
    ["{not json", json.dumps([D[0]]), json.dumps({A: D[0]}), json.dumps({A: [1, 2]}),
     json.dumps({A: ["sha256:short"]}), json.dumps({A: [D[0]], B: "oops"})],
    ids=["json", "not-an-object", "string-not-list", "not-strings", "bad-digest", "one-bad-repository"],
)
def test_unreadable_value_is_forgotten_with_a_warning(text: str) -> None:
    with capture_logs() as logs:
        assert pending.decode(text) == {}
    assert [(e["event"], e["log_level"]) for e in logs] == [("pending_children_unreadable", "warning")]


def test_encode_keeps_at_most_max_entries_the_first_in_sorted_order() -> None:
    many = {A: {digest(f"a{i}") for i in range(200)}, B: {digest(f"b{i}") for i in range(200)}}
    with capture_logs() as logs:
        kept = pending.decode(pending.encode(many))
    assert sum(map(len, kept.values())) == pending.MAX_ENTRIES
    assert kept[A] == many[A]  # A sorts before B: all of A, the smallest digests of B
    assert kept[B] == set(sorted(many[B])[: pending.MAX_ENTRIES - 200])
    assert [(e["event"], e["dropped"]) for e in logs] == [("pending_children_truncated", 100)]


def test_encode_at_max_entries_drops_nothing() -> None:
    exact = {A: {digest(i) for i in range(pending.MAX_ENTRIES)}}
    with capture_logs() as logs:
        assert pending.decode(pending.encode(exact)) == exact
    assert logs == []


# --- union, children_of_deletions, remaining ----------------------------------------------


def test_union_merges_per_repository_without_touching_its_inputs() -> None:
    one, two = {A: {D[0]}}, {A: {D[1]}, B: {D[2]}}
    assert pending.union(one, two, {}) == {A: {D[0], D[1]}, B: {D[2]}}
    assert one == {A: {D[0]}} and two == {A: {D[1]}, B: {D[2]}}


def decided(m: Manifest, action: Action) -> ManifestDecision:
    return ManifestDecision(manifest=m, action=action, why=())


def test_children_of_deletions_are_those_of_deleted_indexes_only() -> None:
    deleted = manifest(A, "i1", children=(D[0], D[1]))
    kept = manifest(A, "i2", children=(D[2],))
    deferred = manifest(B, "i3", children=(D[3],))
    plain = manifest(B, "image")
    other = manifest(B, "i4", children=(D[4],))
    plan = Plan(manifests=(decided(deleted, Action.DELETE), decided(kept, Action.KEEP),
                           decided(deferred, Action.DEFER), decided(plain, Action.DELETE),
                           decided(other, Action.DELETE)), kits=(), state=State())
    assert pending.children_of_deletions(plan) == {A: {D[0], D[1]}, B: {D[4]}}


def test_remaining_forgets_deleted_keys_and_children_of_a_staying_index() -> None:
    staying = manifest(A, "stays", children=(D[1],))
    going = manifest(A, "goes", children=(D[2],))
    elsewhere = manifest(B, "other-repo", children=(D[3],))
    tracked = {A: {D[0], D[1], D[2], D[3]}, B: {D[0]}}
    left = pending.remaining(tracked, inventory(staying, going, elsewhere),
                             [ManifestKey(A, D[0]), going.key, ManifestKey(B, D[0])])
    # D[0] deleted in A and B; D[1] reachable through an index that stays; D[2] only through a
    # deleted index; D[3] is listed by an index of another repository, which does not count.
    assert left == {A: {D[2], D[3]}}
    assert tracked[A] == {D[0], D[1], D[2], D[3]}, "the input is not changed"


# --- include_remembered ------------------------------------------------------------------


class Fetcher:
    """A ManifestFetcher answering from a script: a Manifest, None (gone) or a RegistryError."""

    def __init__(self, answers: dict[ManifestKey, Manifest | RegistryError | None]) -> None:
        self.answers = answers
        self.asked: list[ManifestKey] = []

    async def fetch_manifest(self, repository: str, digest: str) -> Manifest | None:
        key = ManifestKey(repository, digest)
        self.asked.append(key)
        answer = self.answers[key]
        if isinstance(answer, RegistryError):
            raise answer
        return answer


def untagged(repository: str, d: str, *children: str) -> Manifest:
    return Manifest(repository, d, "application/vnd.oci.image.manifest.v1+json", children=children)


async def test_remembered_child_is_fetched_and_added_untagged() -> None:
    scanned = manifest(A, "scanned", "1")
    child = untagged(A, D[0])
    store = Fetcher({child.key: child})
    inv, tracked = await include_remembered(store, inventory(scanned), {A: {D[0]}}, (ORG,))
    assert inv.manifests == tuple(sorted((scanned, child), key=lambda m: m.digest))
    assert tracked == {A: {D[0]}}, "a child that exists stays remembered (the planner decides)"
    assert inv.problems == ()


async def test_remembered_child_already_scanned_is_not_fetched() -> None:
    scanned = manifest(A, "scanned", "1")
    store = Fetcher({})
    inv, tracked = await include_remembered(store, inventory(scanned), {A: {scanned.digest}}, (ORG,))
    assert store.asked == [] and inv.manifests == (scanned,) and tracked == {A: {scanned.digest}}


async def test_child_that_is_gone_is_forgotten() -> None:
    store = Fetcher({ManifestKey(A, D[0]): None, ManifestKey(A, D[1]): untagged(A, D[1]), ManifestKey(B, D[0]): None})
    inv, tracked = await include_remembered(store, inventory(), {A: {D[0], D[1]}, B: {D[0]}}, (ORG,))
    assert tracked == {A: {D[1]}}, "B had only a gone child: the repository is dropped"
    assert [m.key for m in inv.manifests] == [ManifestKey(A, D[1])]


async def test_child_that_cannot_be_read_is_a_problem_of_its_repository_and_stays_tracked() -> None:
    store = Fetcher({ManifestKey(A, D[0]): RegistryError("HTTP 500", status=500)})
    with capture_logs() as logs:
        inv, tracked = await include_remembered(store, inventory(), {A: {D[0]}}, (ORG,))
    assert inv.manifests == ()
    assert inv.problems == (RepositoryProblem(A, f"remembered child {D[0]}: HTTP 500"),)
    assert tracked == {A: {D[0]}}
    assert [(e["event"], e["problems"]) for e in logs] == [("pending_children_included", 1)]


async def test_nested_indexes_are_followed_up_to_max_depth() -> None:
    chain = [untagged(A, D[i], D[i + 1]) for i in range(pending.MAX_DEPTH + 2)]
    store = Fetcher({m.key: m for m in chain})
    inv, tracked = await include_remembered(store, inventory(), {A: {D[0]}}, (ORG,))
    assert store.asked == [m.key for m in chain[: pending.MAX_DEPTH]]
    assert [m.digest for m in inv.manifests] == sorted(D[: pending.MAX_DEPTH])
    # the children of the deepest fetched index are remembered for a later run
    assert tracked == {A: set(D[: pending.MAX_DEPTH + 1])}


async def test_child_listed_twice_is_fetched_once() -> None:
    index = untagged(A, D[0], D[2])
    other = untagged(A, D[1], D[2])
    child = untagged(A, D[2])
    store = Fetcher({m.key: m for m in (index, other, child)})
    inv, _ = await include_remembered(store, inventory(), {A: {D[0], D[1]}}, (ORG,))
    assert sorted(store.asked) == [index.key, other.key, child.key]
    assert len(inv.manifests) == 3


async def test_out_of_scope_repositories_are_not_fetched_but_stay_tracked() -> None:
    foreign = {"elsewhere/camel-k-kit-a": {D[0]}, f"{ORG}/tooling": {D[1]}, f"{ORG}/sub/camel-k-kit-b": {D[2]}}
    store = Fetcher({})
    inv, tracked = await include_remembered(store, inventory(), foreign, (ORG,))
    assert store.asked == [] and inv.manifests == ()
    assert tracked == foreign


async def test_children_of_a_deleted_index_are_fetched_back_from_a_real_registry(
    registry: RegistryServer, org: str
) -> None:
    repository = f"{org}/camel-k-kit-multi"
    index, children = push_multiarch(registry.url, repository, ["1"])
    never = digest("never pushed")
    async with RegistryClient(registry.address, insecure=True) as client:
        await client.delete_manifest(repository, index)
        inv, tracked = await include_remembered(
            DistributionStore(client), inventory(), {repository: {*children, never}}, (org,))
    assert sorted(m.digest for m in inv.manifests) == sorted(children)
    for m in inv.manifests:
        assert m.repository == repository and m.tags == () and not m.is_index and m.blobs
    assert tracked == {repository: set(children)}, "the digest the registry never had is forgotten (404)"
    assert inv.problems == ()
