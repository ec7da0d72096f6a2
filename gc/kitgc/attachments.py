"""Signatures, attestations, SBOMs and other referrers: what is attached to an image.

Shops that enforce signatures (Kyverno ``verifyImages``, Sigstore's policy-controller,
Notation) attach artifacts to every image, kit images included, and nothing in a cluster
names them. They belong to their image: kept with it, deleted with it. Three forms exist:

* **cosign's tag scheme**: the tag ``sha256-<hex>.sig`` (``.att`` attestations, ``.sbom``
  SBOMs) on a manifest in the image's repository, ``<hex>`` being the image's digest;
* **OCI 1.1 referrers**: a manifest whose ``subject`` descriptor names the image, found
  through ``GET /v2/<name>/referrers/<digest>`` where the registry has that API;
* **the referrers fallback tag** ``sha256-<hex>``: an image index listing the referrers,
  kept up to date by clients on registries without the API.

This module only recognises them (pure); the planner decides (:mod:`kitgc.plan.attached`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from kitgc.identity import ManifestKey
from kitgc.model import Manifest

T = TypeVar("T")


class AttachmentKind(StrEnum):
    SIGNATURE = "signature"
    ATTESTATION = "attestation"
    SBOM = "sbom"
    REFERRERS_INDEX = "referrers_index"  # the fallback tag's index
    REFERRER = "referrer"  # any other artifact with a subject


_COSIGN_TAG = re.compile(r"(sha256)-([0-9a-f]{64})\.(sig|att|sbom)")
_FALLBACK_TAG = re.compile(r"(sha256)-([0-9a-f]{64})")
_COSIGN_SUFFIX = {"sig": AttachmentKind.SIGNATURE, "att": AttachmentKind.ATTESTATION, "sbom": AttachmentKind.SBOM}

# artifactType (or, for older clients, the config media type) -> what the artifact is.
_ARTIFACT_TYPES = {
    "application/vnd.dev.cosign.artifact.sig.v1+json": AttachmentKind.SIGNATURE,
    "application/vnd.dev.cosign.simplesigning.v1+json": AttachmentKind.SIGNATURE,
    "application/vnd.cncf.notary.signature": AttachmentKind.SIGNATURE,
    "application/vnd.dev.sigstore.bundle.v0.3+json": AttachmentKind.SIGNATURE,
    "application/vnd.dev.sigstore.bundle+json;version=0.3": AttachmentKind.SIGNATURE,
    "application/vnd.in-toto+json": AttachmentKind.ATTESTATION,
    "application/vnd.dsse.envelope.v1+json": AttachmentKind.ATTESTATION,
    "application/vnd.dev.cosign.artifact.att.v1+json": AttachmentKind.ATTESTATION,
    "application/spdx+json": AttachmentKind.SBOM,
    "text/spdx": AttachmentKind.SBOM,
    "text/spdx+json": AttachmentKind.SBOM,
    "application/vnd.cyclonedx+json": AttachmentKind.SBOM,
    "application/vnd.cyclonedx+xml": AttachmentKind.SBOM,
    "application/vnd.dev.cosign.artifact.sbom.v1+json": AttachmentKind.SBOM,
}


@dataclass(frozen=True)
class Attachment:
    """``manifest`` is attached to the image ``subject`` (a digest in the same repository)."""

    kind: AttachmentKind
    subject: str
    via: str  # "subject", "cosign tag" or "fallback tag": how it was recognised


def kind_of_artifact(artifact_type: str) -> AttachmentKind:
    """What an artifact type says the artifact is; anything unknown is a plain referrer."""
    exact = _ARTIFACT_TYPES.get(artifact_type)
    if exact is not None:
        return exact
    return _ARTIFACT_TYPES.get(artifact_type.split(";", 1)[0].strip().lower(), AttachmentKind.REFERRER)


def attachment_of(m: Manifest) -> Attachment | None:
    """What ``m`` is attached to, or None for an ordinary image.

    A ``subject`` in the body is the most explicit statement and wins; then cosign's tag
    scheme; then the fallback tag, which only an index can carry.
    """
    if m.subject:
        return Attachment(kind_of_artifact(m.artifact_type), m.subject, "subject")
    for tag in m.tags:
        match = _COSIGN_TAG.fullmatch(tag)
        if match:
            return Attachment(_COSIGN_SUFFIX[match.group(3)], f"{match.group(1)}:{match.group(2)}", "cosign tag")
    if m.is_index:
        for tag in m.tags:
            match = _FALLBACK_TAG.fullmatch(tag)
            if match:
                return Attachment(AttachmentKind.REFERRERS_INDEX, f"{match.group(1)}:{match.group(2)}",
                                  "fallback tag")
    return None


def attached_to(manifests: Sequence[Manifest]) -> dict[ManifestKey, list[Manifest]]:
    """Each image's attachments present in its repository (subject key -> attachments)."""
    keys = {m.key for m in manifests}
    found: dict[ManifestKey, list[Manifest]] = {}
    for m in manifests:
        attachment = attachment_of(m)
        if attachment is not None:
            subject = m.key.child(attachment.subject)
            if subject in keys and subject != m.key:
                found.setdefault(subject, []).append(m)
    return found


def under_their_images(items: Sequence[T], manifest: Callable[[T], Manifest]) -> list[tuple[T, int]]:
    """``items`` sorted by repository and digest, each attachment right under its image.

    Returns (item, depth): 0 for an image, 1 for its signature, 2 for a signature of that
    signature… so a table or a listing shows what travels together, together.
    """
    by_key = {manifest(i).key: i for i in items}
    children = attached_to([manifest(i) for i in items])
    attached = {m.key for ms in children.values() for m in ms}
    out: list[tuple[T, int]] = []
    seen: set[ManifestKey] = set()

    def visit(item: T, depth: int) -> None:
        key = manifest(item).key
        if key in seen:
            return
        seen.add(key)
        out.append((item, depth))
        for child in sorted(children.get(key, ()), key=lambda m: m.digest):
            visit(by_key[child.key], depth + 1)

    for item in sorted(items, key=lambda i: manifest(i).key):
        if manifest(item).key not in attached:
            visit(item, 0)
    for item in sorted(items, key=lambda i: manifest(i).key):  # a cycle no registry should hold
        visit(item, 0)
    return out
