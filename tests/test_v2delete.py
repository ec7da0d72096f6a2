"""V2Deleter against each registry personality, with the real RegistryClient.

Every test sends real requests through a personality (testbed.personalities) to the real
Distribution registry, then checks what the deleter answered, which requests it sent (the
proxy's log) and what the registry still holds.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from structlog.testing import capture_logs

from kitgc.errors import DeletionDisabled, HeldByAnother, ManifestImmutable, RegistryError
from kitgc.model import Manifest
from kitgc.registry.client import RegistryClient
from kitgc.stores.base import DeleteOutcome
from kitgc.stores.v2delete import V2Deleter
from testbed.faultproxy import Fault, FaultProxy
from testbed.images import ALL_MANIFESTS, OCI_INDEX, OCI_MANIFEST, push_image, push_multiarch
from testbed.personalities import (
    GcrPersonality,
    GhcrPersonality,
    HarborPersonality,
    NexusPersonality,
    QuayPersonality,
    ZotPersonality,
)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as c:
        yield c


def _client(proxy: FaultProxy) -> RegistryClient:
    return RegistryClient(proxy.address, insecure=True, backoff=0.001)


def _exists(http: httpx.Client, base: str, repo: str, ref: str) -> bool:
    r = http.head(f"{base}/v2/{repo}/manifests/{ref}", headers={"Accept": ALL_MANIFESTS})
    return r.status_code == 200


def _digest_deletes(proxy: FaultProxy, repo: str) -> list[int]:
    return [s.status for s in proxy.requests("DELETE", rf"/v2/{repo}/manifests/sha256:.*")]


def _tag_deletes(proxy: FaultProxy, repo: str) -> list[str]:
    return [s.path.rsplit("/", 1)[1] for s in proxy.requests("DELETE", rf"/v2/{repo}/manifests/[^:]+")]


# --- GCR: dangling tags -------------------------------------------------------------


async def test_dangling_tag_refusal_untags_then_deletes_and_is_remembered(registry, org, http) -> None:
    repo = f"{org}/camel-k-kit-a"
    with GcrPersonality(registry.url) as gcr:
        first = push_image(gcr.url, repo, ["1", "2"], client=http)
        second = push_image(gcr.url, repo, ["3"], client=http)
        async with _client(gcr) as client:
            deleter = V2Deleter(client, "distribution")  # driven by the answer, not by the kind
            assert not deleter.untags_first
            assert await deleter.delete_manifest(Manifest(repo, first, OCI_MANIFEST, ("1", "2"))) \
                is DeleteOutcome.DELETED
            assert deleter.untags_first
            assert await deleter.delete_manifest(Manifest(repo, second, OCI_MANIFEST, ("3",))) \
                is DeleteOutcome.DELETED
        assert _digest_deletes(gcr, repo) == [400, 202, 202]  # one refused request, only the first time
        assert sorted(_tag_deletes(gcr, repo)) == ["1", "2", "3"]
    assert not _exists(http, registry.url, repo, first) and not _exists(http, registry.url, repo, second)


async def test_gcr_kind_untags_first_without_a_refused_request(registry, org, http) -> None:
    repo = f"{org}/camel-k-kit-a"
    with GcrPersonality(registry.url) as gcr:
        digest = push_image(gcr.url, repo, ["1"], client=http)
        async with _client(gcr) as client:
            assert await V2Deleter(client, "gcr").delete_manifest(Manifest(repo, digest, OCI_MANIFEST, ("1",))) \
                is DeleteOutcome.DELETED
        assert _digest_deletes(gcr, repo) == [202]


async def test_a_tag_that_moved_to_another_digest_is_never_deleted(registry, org, http) -> None:
    repo = f"{org}/camel-k-kit-a"
    with GcrPersonality(registry.url) as gcr:
        garbage = push_image(gcr.url, repo, ["old", "shared"], client=http)
        scanned = Manifest(repo, garbage, OCI_MANIFEST, ("old", "shared"))
        kept = push_image(gcr.url, repo, ["shared"], client=http)  # the tag moves after the scan
        async with _client(gcr) as client:
            assert await V2Deleter(client, "gcr").delete_manifest(scanned) is DeleteOutcome.DELETED
        assert _tag_deletes(gcr, repo) == ["old"]
    assert not _exists(http, registry.url, repo, garbage)
    r = http.head(f"{registry.url}/v2/{repo}/manifests/shared", headers={"Accept": ALL_MANIFESTS})
    assert r.headers["Docker-Content-Digest"] == kept


async def test_a_tag_the_run_did_not_see_is_refused_and_nothing_is_untagged(registry, org, http) -> None:
    repo = f"{org}/camel-k-kit-a"
    with GcrPersonality(registry.url) as gcr:
        digest = push_image(gcr.url, repo, ["a-new", "z"], client=http)  # "a-new" came after the scan
        async with _client(gcr) as client:
            with pytest.raises(RegistryError, match=r"tag 'a-new' .* this run did not see; kept") as err:
                await V2Deleter(client).delete_manifest(Manifest(repo, digest, OCI_MANIFEST, ("z",)))
        assert not isinstance(err.value, (DeletionDisabled, HeldByAnother, ManifestImmutable))
        assert _tag_deletes(gcr, repo) == []
        assert sorted(http.get(f"{gcr.url}/v2/{repo}/tags/list").json()["tags"]) == ["a-new", "z"]
    assert _exists(http, registry.url, repo, digest)


async def test_an_unseen_tag_left_after_untagging_keeps_the_manifest(registry, org, http) -> None:
    repo = f"{org}/camel-k-kit-a"
    with GcrPersonality(registry.url) as gcr:
        digest = push_image(gcr.url, repo, ["a-new", "z"], client=http)
        async with _client(gcr) as client:
            with pytest.raises(RegistryError, match="did not see; kept"):
                await V2Deleter(client, "gcr").delete_manifest(Manifest(repo, digest, OCI_MANIFEST, ("z",)))
    assert _exists(http, registry.url, repo, digest)
    assert http.get(f"{registry.url}/v2/{repo}/tags/list").json()["tags"] is not None


async def test_gcr_index_child_is_held_by_its_index(registry, org, http) -> None:
    repo = f"{org}/camel-k-kit-a"
    with GcrPersonality(registry.url) as gcr:
        index, children = push_multiarch(gcr.url, repo, ("1",), client=http)
        async with _client(gcr) as client:
            deleter = V2Deleter(client, "gcr")
            with pytest.raises(HeldByAnother, match=index[:30]):  # one_line() may cut the end
                await deleter.delete_manifest(Manifest(repo, children[0], OCI_MANIFEST))
            assert await deleter.delete_manifest(Manifest(repo, index, OCI_INDEX, ("1",), tuple(children))) \
                is DeleteOutcome.DELETED
            assert await deleter.delete_manifest(Manifest(repo, children[0], OCI_MANIFEST)) is DeleteOutcome.DELETED


# --- Quay ----------------------------------------------------------------------------


async def test_quay_404_for_an_untagged_digest_counts_as_gone(registry, org, http) -> None:
    repo = f"{org}/camel-k-kit-a"
    with QuayPersonality(registry.url) as quay:
        tagged = push_image(quay.url, repo, ["1"], client=http)
        untagged = push_image(quay.url, repo, (), client=http)
        async with _client(quay) as client:
            deleter = V2Deleter(client, "quay")
            assert await deleter.delete_manifest(Manifest(repo, tagged, OCI_MANIFEST, ("1",))) is DeleteOutcome.DELETED
            assert await deleter.delete_manifest(Manifest(repo, untagged, OCI_MANIFEST)) is DeleteOutcome.ALREADY_GONE
    assert not _exists(http, registry.url, repo, tagged)


async def test_quay_immutable_tag_raises_manifest_immutable(registry, org, http) -> None:
    repo = f"{org}/camel-k-kit-a"
    with QuayPersonality(registry.url, immutable_tags=["1"]) as quay:
        digest = push_image(quay.url, repo, ["1"], client=http)
        async with _client(quay) as client:
            deleter = V2Deleter(client, "quay")
            with pytest.raises(ManifestImmutable) as err:
                await deleter.delete_manifest(Manifest(repo, digest, OCI_MANIFEST, ("1",)))
            assert (err.value.status, err.value.code) == (409, "TAG_IMMUTABLE")
            assert "immutable" in (deleter.explain_refusal(err.value) or "")
    assert _exists(http, registry.url, repo, digest)


# --- Harbor --------------------------------------------------------------------------


async def test_harbor_deletes_by_digest_never_by_tag(registry, org, http) -> None:
    repo = f"{org}/camel-k-kit-a"
    with HarborPersonality(registry.url) as harbor:
        digest = push_image(harbor.url, repo, ["1", "2"], client=http)
        async with _client(harbor) as client:
            assert await V2Deleter(client, "harbor").delete_manifest(Manifest(repo, digest, OCI_MANIFEST, ("1", "2"))) \
                is DeleteOutcome.DELETED
        assert _tag_deletes(harbor, repo) == []
    assert not _exists(http, registry.url, repo, digest)


async def test_harbor_412_refusals_are_immutable_or_held(registry, org, http) -> None:
    repo = f"{org}/camel-k-kit-a"
    with HarborPersonality(registry.url, immutable_tags=["prod-*"]) as harbor:
        _, children = push_multiarch(harbor.url, repo, ("multi",), client=http)
        held = push_image(harbor.url, repo, ["prod-1"], client=http)
        async with _client(harbor) as client:
            deleter = V2Deleter(client, "harbor")
            with pytest.raises(ManifestImmutable, match="PRECONDITION"):
                await deleter.delete_manifest(Manifest(repo, held, OCI_MANIFEST, ("prod-1",)))
            with pytest.raises(HeldByAnother, match="VIOLATE_FOREIGN_KEY_CONSTRAINT"):
                await deleter.delete_manifest(Manifest(repo, children[0], OCI_MANIFEST))


# --- Zot -----------------------------------------------------------------------------


async def test_zot_405_denied_is_held_by_another_not_deletion_disabled(registry, org, http) -> None:
    repo = f"{org}/camel-k-kit-a"
    with ZotPersonality(registry.url) as zot:
        index, children = push_multiarch(zot.url, repo, ("1",), client=http)
        async with _client(zot) as client:
            deleter = V2Deleter(client, "zot")
            with pytest.raises(HeldByAnother) as err:
                await deleter.delete_manifest(Manifest(repo, children[1], OCI_MANIFEST))
            assert not isinstance(err.value, DeletionDisabled)
            assert await deleter.delete_manifest(Manifest(repo, index, OCI_INDEX, ("1",), tuple(children))) \
                is DeleteOutcome.DELETED
            assert await deleter.delete_manifest(Manifest(repo, children[1], OCI_MANIFEST)) is DeleteOutcome.DELETED


# --- 405 UNSUPPORTED: deletion disabled, with a hint for the kind --------------------


@pytest.mark.parametrize(("kind", "hint"), [
    ("distribution", "storage.delete.enabled"),
    ("ghcr", "REGISTRY_KIND=ghcr and REGISTRY_API_TOKEN_FILE"),
    ("dockerhub", "REGISTRY_KIND=dockerhub and REGISTRY_API_TOKEN_FILE"),
    ("zot", "enable deletion on the registry"),
])
async def test_405_unsupported_is_deletion_disabled_with_the_kinds_hint(registry, org, http, kind, hint) -> None:
    repo = f"{org}/camel-k-kit-a"
    with GhcrPersonality(registry.url) as ghcr:
        digest = push_image(ghcr.url, repo, ["1"], client=http)
        async with _client(ghcr) as client:
            with pytest.raises(DeletionDisabled) as err:
                await V2Deleter(client, kind).delete_manifest(Manifest(repo, digest, OCI_MANIFEST, ("1",)))
    assert hint in str(err.value)
    assert (err.value.status, err.value.code) == (405, "UNSUPPORTED")
    assert _exists(http, registry.url, repo, digest)


# --- Nexus ---------------------------------------------------------------------------


async def test_nexus_tags_left_behind_are_logged_and_the_deletion_stands(registry, org, http) -> None:
    repo = f"{org}/camel-k-kit-a"
    with NexusPersonality(registry.url) as nexus:
        digest = push_image(nexus.url, repo, ["1"], client=http)
        async with _client(nexus) as client:
            with capture_logs() as logs:
                outcome = await V2Deleter(client, "nexus").delete_manifest(Manifest(repo, digest, OCI_MANIFEST, ("1",)))
    assert outcome is DeleteOutcome.DELETED
    left = [e for e in logs if e["event"] == "tags_left_behind"]
    assert len(left) == 1 and left[0]["tags"] == ["1"] and left[0]["resolves"] is False
    assert left[0]["log_level"] == "warning"


async def test_other_kinds_do_not_re_read_tags_after_a_delete(registry, org, http) -> None:
    repo = f"{org}/camel-k-kit-a"
    with NexusPersonality(registry.url) as nexus:
        digest = push_image(nexus.url, repo, ["1"], client=http)
        async with _client(nexus) as client:
            with capture_logs() as logs:
                await V2Deleter(client, "distribution").delete_manifest(Manifest(repo, digest, OCI_MANIFEST, ("1",)))
        assert nexus.requests("GET", rf"/v2/{repo}/tags/list") == []
    assert not [e for e in logs if e["event"] == "tags_left_behind"]


# --- plain Distribution: the control -------------------------------------------------


async def test_distribution_deletes_by_digest_and_404_is_gone(registry, org, http) -> None:
    repo = f"{org}/camel-k-kit-a"
    with FaultProxy(registry.url) as proxy:
        digest = push_image(proxy.url, repo, ["1"], client=http)
        async with _client(proxy) as client:
            deleter = V2Deleter(client)
            manifest = Manifest(repo, digest, OCI_MANIFEST, ("1",))
            assert await deleter.delete_manifest(manifest) is DeleteOutcome.DELETED
            assert await deleter.delete_manifest(manifest) is DeleteOutcome.ALREADY_GONE
            assert not deleter.untags_first
        assert _tag_deletes(proxy, repo) == []


async def test_untag_refused_by_the_registry_keeps_the_manifest(registry, org, http) -> None:
    """A registry that says "dangling tag" but then refuses the tag DELETE: one clear error,
    the manifest kept."""
    repo = f"{org}/camel-k-kit-a"
    with GcrPersonality(registry.url) as gcr:
        digest = push_image(gcr.url, repo, ["1"], client=http)
        gcr.add(Fault("status", "DELETE", rf"/v2/{repo}/manifests/1", status=400))
        async with _client(gcr) as client:
            with pytest.raises(RegistryError, match=r"cannot untag '1' first: .*HTTP 400") as err:
                await V2Deleter(client, "gcr").delete_manifest(Manifest(repo, digest, OCI_MANIFEST, ("1",)))
        assert _digest_deletes(gcr, repo) == []
    assert "\n" not in str(err.value)
    assert _exists(http, registry.url, repo, digest)
