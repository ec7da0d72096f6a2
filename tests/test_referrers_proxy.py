"""The attachment push helpers against the real Distribution registry, and the referrers
personality (testbed.referrers_proxy) against the OCI distribution spec 1.1 "Listing Referrers".

Distribution 2.8 is the registry WITHOUT the API: it stores every attachment form as pushed
and answers 404 for referrers. The proxy in front of it is the registry WITH the API.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from testbed import attachments as att
from testbed import images
from testbed.referrers_proxy import ReferrersProxy
from testbed.registry_server import RegistryServer

SIG_TYPE = "application/vnd.dev.cosign.artifact.sig.v1+json"


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as c:
        yield c


def _get(http: httpx.Client, base: str, repo: str, ref: str) -> httpx.Response:
    return http.get(f"{base}/v2/{repo}/manifests/{ref}", headers={"Accept": images.ALL_MANIFESTS})


def _referrers(http: httpx.Client, base: str, repo: str, digest: str, **params: str) -> httpx.Response:
    return http.get(f"{base}/v2/{repo}/referrers/{digest}", params=params)


# --- the real registry: what it accepts -------------------------------------------------


def test_distribution_stores_every_attachment_form_and_has_no_referrers_api(
    registry: RegistryServer, org: str, http: httpx.Client
) -> None:
    repo = f"{org}/camel-k-kit-signed"
    subject = images.push_image(registry.url, repo, ["1"], client=http)
    pushed = att.push_attachment_set(registry.url, repo, subject, client=http)

    tags = set(http.get(f"{registry.url}/v2/{repo}/tags/list").json()["tags"])
    assert tags == {"1", *pushed.tags}
    sbom = _get(http, registry.url, repo, pushed.referrer)
    assert sbom.status_code == 200 and images.digest_of(sbom.content) == pushed.referrer  # byte for byte
    doc = sbom.json()
    assert doc["artifactType"] == att.SPDX_JSON
    assert doc["config"] == {"mediaType": att.EMPTY_MEDIA_TYPE, "digest": att.EMPTY_DIGEST, "size": 2}
    assert doc["subject"] == att.descriptor(registry.url, repo, subject, client=http)
    index = _get(http, registry.url, repo, att.fallback_tag(subject))
    assert index.headers["Content-Type"] == images.OCI_INDEX
    assert index.json()["manifests"] == [att.referrer_descriptor(registry.url, repo, pushed.referrer, client=http)]
    assert index.json()["manifests"][0]["artifactType"] == att.SPDX_JSON
    for kind, media_type in att.COSIGN_LAYERS.items():
        cosign = _get(http, registry.url, repo, att.cosign_tag(subject, kind)).json()
        assert [layer["mediaType"] for layer in cosign["layers"]] == [media_type]
        assert cosign["config"]["mediaType"] == images.OCI_CONFIG
    assert _referrers(http, registry.url, repo, subject).status_code == 404


def test_distribution_accepts_a_subject_that_does_not_exist(
    registry: RegistryServer, org: str, http: httpx.Client
) -> None:
    repo = f"{org}/camel-k-kit-dangling"
    missing = {"mediaType": images.OCI_MANIFEST, "digest": "sha256:" + "0" * 64, "size": 100}
    referrer = att.push_referrer(registry.url, repo, missing, client=http)
    sig = att.push_cosign(registry.url, repo, missing["digest"], client=http)
    assert _get(http, registry.url, repo, referrer).json()["subject"] == missing
    assert _get(http, registry.url, repo, att.cosign_tag(missing["digest"])).status_code == 200
    assert referrer != sig


# --- the personality: Listing Referrers ----------------------------------------------------


def test_referrers_are_listed_as_the_spec_says(referrers_proxy: ReferrersProxy, org: str, http: httpx.Client) -> None:
    base, repo = referrers_proxy.url, f"{org}/camel-k-kit-a"
    subject = images.push_image(base, repo, ["1"], client=http)
    other = images.push_image(base, repo, ["2"], client=http)
    sbom = att.push_referrer(base, repo, subject, client=http)
    sig = att.push_referrer(base, repo, subject, artifact_type=SIG_TYPE, annotations={}, client=http)
    att.push_referrer(base, repo, other, client=http)  # another subject's: not listed

    r = _referrers(http, base, repo, subject)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == images.OCI_INDEX
    assert "OCI-Filters-Applied" not in r.headers and "Link" not in r.headers
    doc = r.json()
    assert doc["schemaVersion"] == 2 and doc["mediaType"] == images.OCI_INDEX
    # exactly what a client computes from the stored manifests (helper used for the fallback index)
    assert doc["manifests"] == [att.referrer_descriptor(base, repo, d, client=http) for d in (sbom, sig)]
    assert doc["manifests"][0]["annotations"] == {"org.opencontainers.image.created": att.CREATED}
    assert "annotations" not in doc["manifests"][1]
    assert [m["artifactType"] for m in doc["manifests"]] == [att.SPDX_JSON, SIG_TYPE]


def test_artifact_type_falls_back_to_the_config_and_is_omitted_for_an_index(
    referrers_proxy: ReferrersProxy, org: str, http: httpx.Client
) -> None:
    base, repo = referrers_proxy.url, f"{org}/camel-k-kit-b"
    subject = images.push_image(base, repo, ["1"], client=http)
    subj = att.descriptor(base, repo, subject, client=http)
    config = images.image_config()
    images.push_blob(base, repo, config, client=http)
    plain = json.loads(images.image_manifest(config, []))
    plain["subject"] = subj
    plain_body = json.dumps(plain).encode()
    plain_digest = images.push_manifest(base, repo, images.digest_of(plain_body), plain_body, images.OCI_MANIFEST,
                                        client=http)
    index_body = json.dumps({"schemaVersion": 2, "mediaType": images.OCI_INDEX, "manifests": [],
                             "subject": subj, "annotations": {"a": "b"}}).encode()
    index_digest = images.push_manifest(base, repo, images.digest_of(index_body), index_body, images.OCI_INDEX,
                                        client=http)
    got = _referrers(http, base, repo, subject).json()["manifests"]
    assert got == [
        {"mediaType": images.OCI_MANIFEST, "digest": plain_digest, "size": len(plain_body),
         "artifactType": images.OCI_CONFIG},
        {"mediaType": images.OCI_INDEX, "digest": index_digest, "size": len(index_body), "annotations": {"a": "b"}},
    ]


def test_no_referrers_is_an_empty_list_and_a_bad_digest_is_400(
    referrers_proxy: ReferrersProxy, org: str, http: httpx.Client
) -> None:
    base, repo = referrers_proxy.url, f"{org}/camel-k-kit-c"
    subject = images.push_image(base, repo, ["1"], client=http)
    for digest in (subject, "sha256:" + "1" * 64):
        r = _referrers(http, base, repo, digest)
        assert (r.status_code, r.json()["manifests"]) == (200, [])
    assert _referrers(http, base, repo, "not-a-digest").status_code == 400


def test_push_with_subject_is_answered_with_oci_subject(
    referrers_proxy: ReferrersProxy, org: str, http: httpx.Client
) -> None:
    base, repo = referrers_proxy.url, f"{org}/camel-k-kit-d"
    subject = images.push_image(base, repo, ["1"], client=http)

    def put(tag: str, doc: dict) -> httpx.Response:
        return http.put(f"{base}/v2/{repo}/manifests/{tag}", content=json.dumps(doc).encode(),
                        headers={"Content-Type": doc["mediaType"]})

    index: dict = {"schemaVersion": 2, "mediaType": images.OCI_INDEX, "manifests": []}
    plain = put("plain", index)
    assert plain.status_code == 201 and "OCI-Subject" not in plain.headers
    attached = put("attached", {**index, "subject": att.descriptor(base, repo, subject, client=http)})
    assert attached.status_code == 201 and attached.headers["OCI-Subject"] == subject


def test_filter_by_artifact_type_says_it_was_applied(
    referrers_proxy: ReferrersProxy, org: str, http: httpx.Client
) -> None:
    base, repo = referrers_proxy.url, f"{org}/camel-k-kit-e"
    subject = images.push_image(base, repo, ["1"], client=http)
    sbom = att.push_referrer(base, repo, subject, client=http)
    att.push_referrer(base, repo, subject, artifact_type=SIG_TYPE, client=http)
    r = _referrers(http, base, repo, subject, artifactType=att.SPDX_JSON)
    assert r.headers["OCI-Filters-Applied"] == "artifactType"
    assert [m["digest"] for m in r.json()["manifests"]] == [sbom]
    referrers_proxy.filtering = False  # a registry without filtering: everything, no header
    r = _referrers(http, base, repo, subject, artifactType=att.SPDX_JSON)
    assert "OCI-Filters-Applied" not in r.headers and len(r.json()["manifests"]) == 2


def test_long_answers_page_with_link(referrers_proxy: ReferrersProxy, org: str, http: httpx.Client) -> None:
    base, repo = referrers_proxy.url, f"{org}/camel-k-kit-f"
    subject = images.push_image(base, repo, ["1"], client=http)
    pushed = [att.push_referrer(base, repo, subject, annotations={"n": str(i)}, client=http) for i in range(5)]
    referrers_proxy.page_size = 2
    seen, url, pages = [], f"{base}/v2/{repo}/referrers/{subject}", 0
    while url:
        r = http.get(url)
        assert r.status_code == 200 and len(r.json()["manifests"]) <= 2
        seen += [m["digest"] for m in r.json()["manifests"]]
        url = str(httpx.URL(base).join(r.links["next"]["url"])) if "next" in r.links else ""
        pages += 1
    assert (seen, pages) == (pushed, 3)


def test_deleted_referrers_are_no_longer_listed(
    referrers_proxy: ReferrersProxy, registry: RegistryServer, org: str, http: httpx.Client
) -> None:
    base, repo = referrers_proxy.url, f"{org}/camel-k-kit-g"
    subject = images.push_image(base, repo, ["1"], client=http)
    one, two = (att.push_referrer(base, repo, subject, annotations={"n": n}, client=http) for n in "12")
    assert http.delete(f"{base}/v2/{repo}/manifests/{one}").status_code == 202  # through the proxy
    assert http.delete(f"{registry.url}/v2/{repo}/manifests/{two}").status_code == 202  # around it
    assert _referrers(http, base, repo, subject).json()["manifests"] == []
    assert [d["digest"] for d in referrers_proxy.known(repo, subject)] == [two]


def test_everything_else_passes_through_unchanged(
    referrers_proxy: ReferrersProxy, registry: RegistryServer, org: str, http: httpx.Client
) -> None:
    repo = f"{org}/camel-k-kit-h"
    subject = images.push_image(registry.url, repo, ["1"], client=http)
    pushed = att.push_attachment_set(referrers_proxy.url, repo, subject, client=http)
    for path in ("/v2/", f"/v2/{repo}/tags/list", f"/v2/{repo}/manifests/1", f"/v2/{repo}/manifests/{pushed.index}",
                 f"/v2/{repo}/manifests/{pushed.referrer}", f"/v2/{repo}/blobs/{att.EMPTY_DIGEST}",
                 f"/v2/{repo}/manifests/sha256:{'2' * 64}"):
        via = http.get(referrers_proxy.url + path, headers={"Accept": images.ALL_MANIFESTS})
        direct = http.get(registry.url + path, headers={"Accept": images.ALL_MANIFESTS})
        assert (via.status_code, via.content) == (direct.status_code, direct.content), path
        for header in ("Content-Type", "Docker-Content-Digest", "Docker-Distribution-Api-Version"):
            assert via.headers.get(header) == direct.headers.get(header), (path, header)
    head = http.head(f"{referrers_proxy.url}/v2/{repo}/manifests/1", headers={"Accept": images.ALL_MANIFESTS})
    assert head.headers["Docker-Content-Digest"] == subject
