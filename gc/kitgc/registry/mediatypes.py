"""Manifest media types and the parsing of manifest bodies into what the planner needs.

Only four types are understood; anything else (Docker schema1, unknown artifacts served
under an unknown type) is refused rather than guessed at, because a misread index would
hide children that must stay protected.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kitgc.imageref import InvalidReference, validate_digest
from kitgc.model import Blob

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
SCHEMA1 = frozenset(
    {
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    }
)
IMAGE_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
KNOWN_TYPES = IMAGE_TYPES | INDEX_TYPES

# Every type, lists included: without the list types Distribution answers for a tag with
# the linux/amd64 child instead of the index (and the child's digest).
MANIFEST_ACCEPT = ", ".join((OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST))


class ManifestFormatError(ValueError):
    """The body is not a manifest of a supported type; the message says what is wrong."""


@dataclass(frozen=True)
class ParsedManifest:
    media_type: str
    children: tuple[str, ...]
    blobs: tuple[Blob, ...]
    subject: str | None = None  # OCI 1.1 ``subject.digest``: this manifest is attached to that one
    artifact_type: str = ""  # ``artifactType``, else the config's media type for an image


_IMAGE_CONFIG = "application/vnd.oci.image.config.v1+json"


def bare_type(content_type: str | None) -> str:
    """``application/json; charset=utf-8`` -> ``application/json``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def parse_manifest(body: bytes, content_type: str | None) -> ParsedManifest:
    """Read the media type, index children and image blobs out of a manifest body.

    The body's ``mediaType`` wins; the ``Content-Type`` header is used when the body has
    none (it is optional in OCI). A known header type that contradicts the body is an error.
    """
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        raise ManifestFormatError("body is not valid JSON") from None
    if not isinstance(doc, dict):
        raise ManifestFormatError("body is not a JSON object")
    header_type = bare_type(content_type)
    body_type = doc.get("mediaType")
    if body_type is not None and not isinstance(body_type, str):
        raise ManifestFormatError("mediaType is not a string")
    media_type = body_type or header_type
    if media_type in SCHEMA1 or doc.get("schemaVersion") == 1:
        raise ManifestFormatError("Docker schema1 manifests are not supported")
    if media_type not in KNOWN_TYPES:
        raise ManifestFormatError(f"unsupported media type {media_type or '(none)'!r}")
    if body_type and header_type in KNOWN_TYPES and header_type != body_type:
        raise ManifestFormatError(f"Content-Type {header_type!r} contradicts mediaType {body_type!r}")
    if doc.get("schemaVersion") != 2:
        raise ManifestFormatError(f"schemaVersion is {doc.get('schemaVersion')!r}, expected 2")
    if media_type in INDEX_TYPES:
        entries = doc.get("manifests")
        if entries is None:
            entries = []
        if not isinstance(entries, list):
            raise ManifestFormatError("manifests is not a list")
        children = tuple(dict.fromkeys(_descriptor(e, "manifests[]").digest for e in entries))
        return ParsedManifest(media_type, children, (), _subject(doc), _artifact_type(doc, None))
    layers = doc.get("layers")
    if layers is None:
        layers = []
    if not isinstance(layers, list):
        raise ManifestFormatError("layers is not a list")
    blobs = [_descriptor(doc.get("config"), "config")]
    blobs.extend(_descriptor(layer, "layers[]") for layer in layers)
    return ParsedManifest(media_type, (), tuple(blobs), _subject(doc), _artifact_type(doc, doc.get("config")))


def _subject(doc: dict[str, Any]) -> str | None:
    """The digest an OCI 1.1 manifest names as its ``subject``; a malformed one is an error
    (an attachment misread as an ordinary image would outlive, or lose, its image)."""
    if "subject" not in doc or doc["subject"] is None:
        return None
    return _descriptor(doc["subject"], "subject").digest


def _artifact_type(doc: dict[str, Any], config: Any) -> str:
    value = doc.get("artifactType")
    if isinstance(value, str) and value:
        return value
    config_type = config.get("mediaType") if isinstance(config, dict) else None
    return config_type if isinstance(config_type, str) and config_type != _IMAGE_CONFIG else ""


def _descriptor(value: Any, where: str) -> Blob:
    if not isinstance(value, dict):
        raise ManifestFormatError(f"{where} is not a descriptor object")
    digest, size = value.get("digest"), value.get("size")
    if not isinstance(digest, str):
        raise ManifestFormatError(f"{where} has no digest")
    try:
        validate_digest(digest)
    except InvalidReference as exc:
        raise ManifestFormatError(f"{where}: {exc}") from None
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ManifestFormatError(f"{where} {digest} has no valid size")
    return Blob(digest, size)
