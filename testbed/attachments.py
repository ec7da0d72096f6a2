"""Push what signing tools attach to an image, the way they write it, to a real registry.

* cosign's tag scheme: an OCI image manifest tagged ``sha256-<hex>.sig`` (``.att``, ``.sbom``),
  ``<hex>`` the subject's digest, its config a small image config, one layer of
  ``application/vnd.dev.cosign.simplesigning.v1+json`` (``.att``: a DSSE envelope, ``.sbom``:
  SPDX JSON) — :func:`push_cosign`;
* an OCI 1.1 referrer: an image manifest with ``artifactType``, the empty config ``{}``, one
  layer and a ``subject`` descriptor of the image, pushed by digest (untagged) —
  :func:`push_referrer`;
* the referrers fallback index: an OCI index tagged ``sha256-<hex>`` listing the referrers'
  descriptors with their ``artifactType`` (OCI distribution spec 1.1, "Referrers Tag Schema")
  — :func:`push_fallback_index`.

Every helper returns the digest it pushed. Checked against the real Distribution 2.8.2 of
the testbed: it accepts all of these (``subject``, ``artifactType``, the empty config),
stores them byte for byte and does not check that a subject exists. It refuses, with 400
``MANIFEST_BLOB_UNKNOWN``, a manifest whose blobs (the empty config included) were not
uploaded first, and an index listing a manifest the repository does not hold: referrers are
pushed before their fallback index. It has no referrers API (``GET /v2/<name>/referrers/…``
answers 404 ``404 page not found``, plain text); :mod:`testbed.referrers_proxy` adds one.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from testbed.images import (
    ALL_MANIFESTS,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    client_or_own,
    digest_of,
    push_blob,
    push_manifest,
)

COSIGN_LAYERS = {
    "sig": "application/vnd.dev.cosign.simplesigning.v1+json",
    "att": "application/vnd.dsse.envelope.v1+json",
    "sbom": "text/spdx+json",
}
EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_BLOB = b"{}"
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
SPDX_JSON = "application/spdx+json"
CREATED = "2024-01-01T00:00:00Z"
assert digest_of(EMPTY_BLOB) == EMPTY_DIGEST


def cosign_tag(subject: str, kind: str = "sig") -> str:
    """``sha256-<hex>.sig`` (``.att``, ``.sbom``) for the subject digest ``sha256:<hex>``."""
    assert kind in COSIGN_LAYERS, kind
    return f"{fallback_tag(subject)}.{kind}"


def fallback_tag(subject: str) -> str:
    """The referrers tag of a digest: ``<algorithm>-<hex>``."""
    algorithm, _, encoded = subject.partition(":")
    return f"{algorithm}-{encoded}"


def descriptor(base_url: str, repo: str, digest: str, *, client: httpx.Client | None = None) -> dict[str, Any]:
    """``{mediaType, digest, size}`` of a manifest already in ``repo`` (read with HEAD)."""
    with client_or_own(client) as c:
        r = c.head(f"{base_url}/v2/{repo}/manifests/{digest}", headers={"Accept": ALL_MANIFESTS})
    if r.status_code != 200:
        raise RuntimeError(f"head {repo}@{digest}: HTTP {r.status_code}")
    return {"mediaType": r.headers["Content-Type"].split(";")[0], "digest": digest,
            "size": int(r.headers["Content-Length"])}


def _payload(kind: str, repo: str, subject: str) -> bytes:
    """What cosign puts in the layer: a simple-signing payload, a DSSE envelope or an SPDX SBOM."""
    if kind == "sig":
        doc: dict[str, Any] = {"critical": {"identity": {"docker-reference": repo},
                                            "image": {"docker-manifest-digest": subject},
                                            "type": "cosign container image signature"}, "optional": None}
    elif kind == "att":
        statement = {"_type": "https://in-toto.io/Statement/v0.1", "predicateType": "https://slsa.dev/provenance/v0.2",
                     "subject": [{"name": repo, "digest": {"sha256": subject.partition(":")[2]}}], "predicate": {}}
        doc = {"payloadType": "application/vnd.in-toto+json",
               "payload": base64.b64encode(json.dumps(statement).encode()).decode(),
               "signatures": [{"keyid": "", "sig": "MEUCIQ=="}]}
    else:
        doc = {"spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT", "name": f"{repo}@{subject}",
               "dataLicense": "CC0-1.0", "packages": []}
    return json.dumps(doc, sort_keys=True).encode()


def push_cosign(base_url: str, repo: str, subject: str, kind: str = "sig", *,
                client: httpx.Client | None = None) -> str:
    """A cosign signature (``kind`` ``sig``), attestation (``att``) or SBOM (``sbom``) of ``subject``,
    tagged ``sha256-<hex>.<kind>`` in ``repo``; ``subject`` need not exist. Returns its digest."""
    layer = _payload(kind, repo, subject)
    config = json.dumps({"architecture": "", "os": "", "created": "0001-01-01T00:00:00Z", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [digest_of(layer)]}}, sort_keys=True).encode()
    annotations = {"dev.cosignproject.cosign/signature": "MEUCIQ=="} if kind == "sig" else {}
    body = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": digest_of(config), "size": len(config)},
        "layers": [{"mediaType": COSIGN_LAYERS[kind], "digest": digest_of(layer), "size": len(layer),
                    **({"annotations": annotations} if annotations else {})}],
    }).encode()
    with client_or_own(client) as c:
        for blob in (config, layer):
            push_blob(base_url, repo, blob, client=c)
        return push_manifest(base_url, repo, cosign_tag(subject, kind), body, OCI_MANIFEST, client=c)


def push_referrer(
    base_url: str, repo: str, subject: str | dict[str, Any], *, artifact_type: str = SPDX_JSON,
    annotations: dict[str, str] | None = None, payload: bytes | None = None, client: httpx.Client | None = None,
) -> str:
    """An OCI 1.1 artifact whose ``subject`` is ``subject`` (a digest in ``repo``, read with HEAD,
    or a ready descriptor for one that does not exist), pushed by digest. Returns its digest."""
    with client_or_own(client) as c:
        subj = subject if isinstance(subject, dict) else descriptor(base_url, repo, subject, client=c)
        layer = payload if payload is not None else json.dumps(
            {"spdxVersion": "SPDX-2.3", "name": f"{repo}@{subj['digest']}", "artifactType": artifact_type}).encode()
        doc: dict[str, Any] = {
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
            "config": {"mediaType": EMPTY_MEDIA_TYPE, "digest": EMPTY_DIGEST, "size": len(EMPTY_BLOB)},
            "layers": [{"mediaType": artifact_type, "digest": digest_of(layer), "size": len(layer)}],
            "subject": {k: subj[k] for k in ("mediaType", "digest", "size")},
            "annotations": {"org.opencontainers.image.created": CREATED} if annotations is None else annotations,
        }
        if not doc["annotations"]:
            del doc["annotations"]
        body = json.dumps(doc).encode()
        for blob in (EMPTY_BLOB, layer):
            push_blob(base_url, repo, blob, client=c)
        return push_manifest(base_url, repo, digest_of(body), body, OCI_MANIFEST, client=c)


def referrer_descriptor(base_url: str, repo: str, digest: str, *, client: httpx.Client | None = None) -> dict[str, Any]:
    """The descriptor of a referrer as the spec lists it: ``artifactType`` (an image manifest
    without one: its config's media type) and the manifest's annotations, if any."""
    with client_or_own(client) as c:
        r = c.get(f"{base_url}/v2/{repo}/manifests/{digest}", headers={"Accept": ALL_MANIFESTS})
    if r.status_code != 200:
        raise RuntimeError(f"get {repo}@{digest}: HTTP {r.status_code}")
    doc = r.json()
    media_type = r.headers["Content-Type"].split(";")[0]
    out: dict[str, Any] = {"mediaType": media_type, "digest": digest, "size": len(r.content)}
    artifact_type = doc.get("artifactType") or (doc.get("config") or {}).get("mediaType")
    if artifact_type:
        out["artifactType"] = artifact_type
    if doc.get("annotations"):
        out["annotations"] = doc["annotations"]
    return out


def push_fallback_index(base_url: str, repo: str, subject: str, referrers: Sequence[str], *,
                        client: httpx.Client | None = None) -> str:
    """The referrers fallback index of ``subject``, tagged ``sha256-<hex>``, listing ``referrers``
    (digests already in ``repo``). Returns its digest."""
    with client_or_own(client) as c:
        entries = [referrer_descriptor(base_url, repo, d, client=c) for d in referrers]
        body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
        return push_manifest(base_url, repo, fallback_tag(subject), body, OCI_INDEX, client=c)


@dataclass(frozen=True)
class AttachmentSet:
    """One image and everything attached to it by :func:`push_attachment_set`."""

    repo: str
    subject: str
    signature: str  # cosign .sig
    attestation: str  # cosign .att
    sbom: str  # cosign .sbom
    referrer: str  # OCI 1.1 SBOM referrer (untagged)
    index: str | None  # the fallback index listing ``referrer``, when pushed

    @property
    def attachments(self) -> tuple[str, ...]:
        found = (self.signature, self.attestation, self.sbom, self.referrer, self.index)
        return tuple(d for d in found if d is not None)

    @property
    def all(self) -> tuple[str, ...]:
        return (self.subject, *self.attachments)

    @property
    def tags(self) -> tuple[str, ...]:
        """The attachments' tags (the subject's own tags not included)."""
        cosign = tuple(cosign_tag(self.subject, k) for k in COSIGN_LAYERS)
        return (*cosign, fallback_tag(self.subject)) if self.index else cosign


def push_attachment_set(base_url: str, repo: str, subject: str, *, fallback_index: bool = True,
                        client: httpx.Client | None = None) -> AttachmentSet:
    """A cosign ``.sig``, ``.att`` and ``.sbom`` of ``subject``, an OCI 1.1 SBOM referrer and
    (unless ``fallback_index`` is false) the fallback index that lists the referrer."""
    with client_or_own(client) as c:
        sig, att, sbom = (push_cosign(base_url, repo, subject, kind, client=c) for kind in COSIGN_LAYERS)
        referrer = push_referrer(base_url, repo, subject, client=c)
        index = push_fallback_index(base_url, repo, subject, [referrer], client=c) if fallback_index else None
    return AttachmentSet(repo, subject, sig, att, sbom, referrer, index)
