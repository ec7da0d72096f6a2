"""The registry personalities answer exactly as /work/shared/REGISTRIES.md documents.

Each personality (testbed.personalities) sits in front of the real Distribution registry;
these tests push through it, send the requests a collector would, and check the status,
the error ``code``, the body shape, and what the registry behind still holds.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from testbed.images import ALL_MANIFESTS, push_image, push_multiarch
from testbed.personalities import (
    DockerHubPersonality,
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


def _error(r: httpx.Response) -> tuple[int, str, str]:
    """(status, code, message) of a v2 error answer, checking its shape on the way."""
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    errors = r.json()["errors"]
    assert set(errors[0]) == {"code", "message", "detail"}, errors
    return r.status_code, errors[0]["code"], errors[0]["message"]


def _exists(http: httpx.Client, base: str, repo: str, ref: str) -> bool:
    r = http.head(f"{base}/v2/{repo}/manifests/{ref}", headers={"Accept": ALL_MANIFESTS})
    assert r.status_code in (200, 404), r.status_code
    return r.status_code == 200


def _tags(http: httpx.Client, base: str, repo: str) -> list[str]:
    r = http.get(f"{base}/v2/{repo}/tags/list")
    r.raise_for_status()
    return sorted(r.json()["tags"] or [])


def _delete(http: httpx.Client, base: str, repo: str, ref: str) -> httpx.Response:
    return http.delete(f"{base}/v2/{repo}/manifests/{ref}")


# --- GCR / Artifact Registry ----------------------------------------------------------


def test_gcr_refuses_a_tagged_digest_naming_the_tag(registry, org, http) -> None:
    repo = f"{org}/camel-k-kit-a"
    with GcrPersonality(registry.url) as gcr:
        digest = push_image(gcr.url, repo, ["7"], client=http)
        status, code, message = _error(_delete(http, gcr.url, repo, digest))
    assert (status, code) == (400, "GOOGLE_MANIFEST_DANGLING_TAG")
    assert message == "Manifest is still referenced by tag: 7"
    assert _exists(http, registry.url, repo, digest)


def test_gcr_delete_by_tag_only_untags_then_the_digest_goes(registry, org, http) -> None:
    repo = f"{org}/camel-k-kit-a"
    with GcrPersonality(registry.url) as gcr:
        digest = push_image(gcr.url, repo, ["7", "8"], client=http)
        assert _delete(http, gcr.url, repo, "7").status_code == 202
        assert _tags(http, gcr.url, repo) == ["8"]
        status, code, _ = _error(http.get(f"{gcr.url}/v2/{repo}/manifests/7", headers={"Accept": ALL_MANIFESTS}))
        assert (status, code) == (404, "MANIFEST_UNKNOWN")
        assert _exists(http, gcr.url, repo, digest)  # untag only
        assert _error(_delete(http, gcr.url, repo, digest))[1] == "GOOGLE_MANIFEST_DANGLING_TAG"
        assert _delete(http, gcr.url, repo, "8").status_code == 202
        assert _delete(http, gcr.url, repo, digest).status_code == 202
    assert not _exists(http, registry.url, repo, digest)


def test_gcr_refuses_a_child_while_its_index_exists(registry, org, http) -> None:
    repo = f"{org}/camel-k-kit-a"
    with GcrPersonality(registry.url) as gcr:
        index, children = push_multiarch(gcr.url, repo, (), client=http)
        status, code, message = _error(_delete(http, gcr.url, repo, children[0]))
        assert (status, code) == (400, "GOOGLE_MANIFEST_DANGLING_PARENT_IMAGE")
        assert message == f"Manifest {children[0]} is referenced by image {index}"
        assert _delete(http, gcr.url, repo, index).status_code == 202
        assert _delete(http, gcr.url, repo, children[0]).status_code == 202


# --- Harbor -------------------------------------------------------------------------


def test_harbor_refuses_delete_by_tag_as_a_bad_digest(registry, org, http) -> None:
    repo = f"{org}/camel-k-kit-a"
    with HarborPersonality(registry.url) as harbor:
        digest = push_image(harbor.url, repo, ["3"], client=http)
        status, code, message = _error(_delete(http, harbor.url, repo, "3"))
        assert (status, code) == (400, "UNSUPPORTED")
        assert message == "unsupported digest 3: invalid checksum digest format"
        assert _tags(http, harbor.url, repo) == ["3"]
        assert _delete(http, harbor.url, repo, digest).status_code == 202  # by digest: artifact and tags
    assert not _exists(http, registry.url, repo, digest)


def test_harbor_refuses_an_index_child_and_an_immutable_tag_with_412(registry, org, http) -> None:
    repo = f"{org}/camel-k-kit-a"
    with HarborPersonality(registry.url, immutable_tags=["release-*"]) as harbor:
        _, children = push_multiarch(harbor.url, repo, ("multi",), client=http)
        held = push_image(harbor.url, repo, ["release-1"], client=http)
        assert _error(_delete(http, harbor.url, repo, children[1]))[:2] == (412, "VIOLATE_FOREIGN_KEY_CONSTRAINT")
        assert _error(_delete(http, harbor.url, repo, held))[:2] == (412, "PRECONDITION")
    assert _exists(http, registry.url, repo, children[1]) and _exists(http, registry.url, repo, held)


def test_harbor_catalog_is_for_admins_only(registry, http) -> None:
    with HarborPersonality(registry.url) as harbor:
        assert _error(http.get(f"{harbor.url}/v2/_catalog"))[:2] == (401, "UNAUTHORIZED")
        assert _error(http.get(f"{harbor.url}/v2/_catalog", headers={"Authorization": "Basic eDp5"}))[:2] \
            == (403, "UNAUTHORIZED")
    with HarborPersonality(registry.url, catalog=True) as admin:
        assert http.get(f"{admin.url}/v2/_catalog").status_code == 200


# --- Quay ---------------------------------------------------------------------------


def test_quay_answers_404_for_an_untagged_digest_and_keeps_it(registry, org, http) -> None:
    repo = f"{org}/camel-k-kit-a"
    with QuayPersonality(registry.url) as quay:
        digest = push_image(quay.url, repo, (), client=http)
        assert _error(_delete(http, quay.url, repo, digest))[:2] == (404, "MANIFEST_UNKNOWN")
    assert _exists(http, registry.url, repo, digest)


def test_quay_deletes_a_tagged_digest_and_untags_by_tag(registry, org, http) -> None:
    repo = f"{org}/camel-k-kit-a"
    with QuayPersonality(registry.url) as quay:
        tagged = push_image(quay.url, repo, ["1"], client=http)
        other = push_image(quay.url, repo, ["2"], client=http)
        assert _delete(http, quay.url, repo, tagged).status_code == 202
        assert _delete(http, quay.url, repo, "2").status_code == 202
        assert _tags(http, quay.url, repo) == []
        assert _error(_delete(http, quay.url, repo, other))[:2] == (404, "MANIFEST_UNKNOWN")
    assert not _exists(http, registry.url, repo, tagged)
    assert _exists(http, registry.url, repo, other)


def test_quay_refuses_immutable_tags_with_409(registry, org, http) -> None:
    repo = f"{org}/camel-k-kit-a"
    with QuayPersonality(registry.url, immutable_tags=["v*"]) as quay:
        digest = push_image(quay.url, repo, ["v1"], client=http)
        assert _error(_delete(http, quay.url, repo, digest))[:2] == (409, "TAG_IMMUTABLE")
        assert _error(_delete(http, quay.url, repo, "v1"))[:2] == (409, "TAG_IMMUTABLE")
        assert _tags(http, quay.url, repo) == ["v1"]


# --- Zot ----------------------------------------------------------------------------


def test_zot_denies_an_index_child_with_405_and_untags_by_tag(registry, org, http) -> None:
    repo = f"{org}/camel-k-kit-a"
    with ZotPersonality(registry.url) as zot:
        index, children = push_multiarch(zot.url, repo, ("1",), client=http)
        assert _error(_delete(http, zot.url, repo, children[0]))[:2] == (405, "DENIED")
        assert _delete(http, zot.url, repo, "1").status_code == 202
        assert _exists(http, zot.url, repo, index)  # untag only: the index stays, so does the refusal
        assert _error(_delete(http, zot.url, repo, children[0]))[:2] == (405, "DENIED")
        assert _delete(http, zot.url, repo, index).status_code == 202
        assert _delete(http, zot.url, repo, children[0]).status_code == 202


# --- Nexus --------------------------------------------------------------------------


def test_nexus_leaves_tags_listed_after_a_digest_delete(registry, org, http) -> None:
    repo = f"{org}/camel-k-kit-a"
    with NexusPersonality(registry.url) as nexus:
        digest = push_image(nexus.url, repo, ["5"], client=http)
        assert _error(_delete(http, nexus.url, repo, "5"))[:2] == (400, "UNSUPPORTED")
        assert _delete(http, nexus.url, repo, digest).status_code == 202
        assert _tags(http, nexus.url, repo) == ["5"]
        assert not _exists(http, nexus.url, repo, "5")
        assert not _exists(http, registry.url, repo, digest)


# --- GHCR and Docker Hub (v2 side) --------------------------------------------------


def test_ghcr_has_no_catalog_and_refuses_every_delete(registry, org, http) -> None:
    repo = f"{org}/camel-k-kit-a"
    with GhcrPersonality(registry.url) as ghcr:
        digest = push_image(ghcr.url, repo, ["1"], client=http)
        assert _error(http.get(f"{ghcr.url}/v2/_catalog"))[0] == 404
        assert _error(_delete(http, ghcr.url, repo, digest))[:2] == (405, "UNSUPPORTED")
        assert _error(_delete(http, ghcr.url, repo, "1"))[:2] == (405, "UNSUPPORTED")
    assert _exists(http, registry.url, repo, digest)


def test_dockerhub_refuses_deletes_by_default(registry, org, http) -> None:
    repo = f"{org}/camel-k-kit-a"
    with DockerHubPersonality(registry.url) as hub:
        digest = push_image(hub.url, repo, (), client=http)
        assert _error(http.get(f"{hub.url}/v2/_catalog"))[:2] == (404, "UNSUPPORTED")
        assert _error(_delete(http, hub.url, repo, digest))[:2] == (405, "UNSUPPORTED")
    assert _exists(http, registry.url, repo, digest)


def test_dockerhub_untagged_only_mode_denies_a_tagged_digest(registry, org, http) -> None:
    repo = f"{org}/camel-k-kit-a"
    with DockerHubPersonality(registry.url, mode="untagged_only") as hub:
        tagged = push_image(hub.url, repo, ["1"], client=http)
        untagged = push_image(hub.url, repo, (), client=http)
        assert _error(_delete(http, hub.url, repo, tagged))[:2] == (403, "DENIED")
        assert _delete(http, hub.url, repo, untagged).status_code == 202
    assert _exists(http, registry.url, repo, tagged)
    assert not _exists(http, registry.url, repo, untagged)


def test_dockerhub_counts_manifest_gets_as_pulls_and_heads_as_free(registry, org, http) -> None:
    repo = f"{org}/camel-k-kit-a"
    with DockerHubPersonality(registry.url, limit=10) as hub:
        push_image(hub.url, repo, ["1"], client=http)
        before = hub.pulls
        assert _exists(http, hub.url, repo, "1")
        assert hub.pulls == before
        r = http.get(f"{hub.url}/v2/{repo}/manifests/1", headers={"Accept": ALL_MANIFESTS})
        assert r.status_code == 200
        assert hub.pulls == before + 1
        assert r.headers["ratelimit-limit"] == "10;w=21600"
        assert r.headers["ratelimit-remaining"] == f"{10 - hub.pulls};w=21600"


def test_dockerhub_mode_must_be_one_of_the_documented_answers(registry) -> None:
    with pytest.raises(ValueError, match="mode"):
        DockerHubPersonality(registry.url, mode="sometimes")
