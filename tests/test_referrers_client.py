"""The referrers API (OCI 1.1) and the ``subject`` of a manifest, as the client reads them."""

from __future__ import annotations

import json

import httpx
import pytest

from kitgc.errors import RegistryError
from kitgc.registry import RegistryClient
from kitgc.registry.mediatypes import OCI_INDEX, OCI_MANIFEST, ManifestFormatError, parse_manifest

SUBJECT = "sha256:" + "5" * 64
R1, R2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64


def _client(handler) -> RegistryClient:  # type: ignore[no-untyped-def]
    return RegistryClient("registry.test", insecure=True, transport=httpx.MockTransport(handler), backoff=0.0)


def _index(*entries: dict[str, object]) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list(entries)}).encode()


def _descriptor(digest: str, artifact: str) -> dict[str, object]:
    return {"mediaType": OCI_MANIFEST, "digest": digest, "size": 10, "artifactType": artifact}


async def test_referrers_follow_link_pages_and_keep_the_artifact_type() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        assert request.headers["Accept"] == OCI_INDEX
        if "page=2" in str(request.url):
            return httpx.Response(200, content=_index(_descriptor(R2, "application/spdx+json")))
        return httpx.Response(200, content=_index(_descriptor(R1, "application/vnd.dev.cosign.artifact.sig.v1+json")),
                              headers={"Link": f'</v2/o/camel-k-kit-a/referrers/{SUBJECT}?page=2>; rel="next"'})

    async with _client(handler) as client:
        found = await client.referrers("o/camel-k-kit-a", SUBJECT)
    assert [(r.digest, r.artifact_type) for r in found or ()] == [
        (R1, "application/vnd.dev.cosign.artifact.sig.v1+json"), (R2, "application/spdx+json")]
    assert len(seen) == 2 and client.stats["referrers"] == 2


@pytest.mark.parametrize("status", [400, 404, 405, 501])
async def test_a_registry_without_the_api_answers_none(status: int) -> None:
    async with _client(lambda r: httpx.Response(status, text="404 page not found")) as client:
        assert await client.referrers("o/camel-k-kit-a", SUBJECT) is None


@pytest.mark.parametrize(("body", "message"), [
    (b"not json", "not valid JSON"),
    (json.dumps({"manifests": "x"}).encode(), "not an image index"),
    (_index({"mediaType": OCI_MANIFEST}), "without a digest"),
    (_index({"digest": "sha256:xyz"}), "invalid digest"),
])
async def test_garbage_referrers_answers_are_one_line_errors(body: bytes, message: str) -> None:
    async with _client(lambda r: httpx.Response(200, content=body)) as client:
        with pytest.raises(RegistryError, match=message) as err:
            await client.referrers("o/camel-k-kit-a", SUBJECT)
    assert "\n" not in str(err.value)


def test_a_manifest_names_its_subject_and_artifact_type() -> None:
    body = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/spdx+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": "sha256:" + "4" * 64, "size": 2},
        "layers": [], "subject": {"mediaType": OCI_MANIFEST, "digest": SUBJECT, "size": 100},
    }).encode()
    parsed = parse_manifest(body, OCI_MANIFEST)
    assert (parsed.subject, parsed.artifact_type) == (SUBJECT, "application/spdx+json")


def test_an_old_style_artifact_is_typed_by_its_config() -> None:
    body = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.cncf.notary.signature", "digest": "sha256:" + "4" * 64, "size": 2},
        "layers": [],
    }).encode()
    assert parse_manifest(body, None).artifact_type == "application/vnd.cncf.notary.signature"


def test_a_malformed_subject_is_refused_not_ignored() -> None:
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "subject": {"digest": "nope"},
                       "config": {"digest": "sha256:" + "4" * 64, "size": 2}, "layers": []}).encode()
    with pytest.raises(ManifestFormatError, match="subject"):
        parse_manifest(body, None)
