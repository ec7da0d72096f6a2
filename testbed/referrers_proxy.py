"""A registry personality that has the OCI 1.1 referrers API: a proxy in front of Distribution.

The testbed's Distribution 2.8.2 has no referrers API (``GET /v2/<name>/referrers/<digest>``
answers 404), which is the case the fallback tag ``sha256-<hex>`` exists for. Registries
that implement OCI distribution spec 1.1 answer it; this proxy is that personality. It
forwards every request to the real registry unchanged (it is a :class:`FaultProxy`, so it
logs every request and can inject faults too), except:

* ``GET /v2/<name>/referrers/<digest>``, answered here as the spec's "Listing Referrers"
  section says: ``200``, ``Content-Type: application/vnd.oci.image.index.v1+json``, an image
  index whose ``manifests`` are the descriptors (``mediaType``, ``digest``, ``size``,
  ``artifactType`` — the manifest's, else an image manifest's config media type, else
  omitted for an index — and the manifest's ``annotations``) of every manifest of
  ``<name>`` whose ``subject.digest`` is ``<digest>`` and that still exists upstream; an
  empty ``manifests`` list when there are none, never 404; ``400`` for a malformed digest.
  ``?artifactType=`` filters, answered with ``OCI-Filters-Applied: artifactType`` (unless
  :attr:`filtering` is off: the spec makes filtering a SHOULD). With :attr:`page_size` set,
  long answers come in pages linked by ``Link: <…>; rel="next"``, as the spec allows;
* a manifest PUT that carries a ``subject`` and that the registry accepted gets the header
  ``OCI-Subject: <subject digest>``, which the spec ("Pushing Manifests with Subject")
  requires of a registry with the API, so clients know not to maintain the fallback tag.

The proxy learns subjects by reading the manifest PUTs that pass through it; a manifest
pushed straight to the registry, around the proxy, is unknown to it.

Sources: OCI Distribution Specification v1.1, "Listing Referrers", "Pushing Manifests with
Subject" and "Unavailable Referrers API" / "Referrers Tag Schema"
(github.com/opencontainers/distribution-spec, spec.md). /work/shared/FIELD-NOTES.md
("Referrers (signatures, SBOMs): ``GET /v2/<name>/referrers/<digest>``; on 404 the fallback
is the tag ``sha256-<hex>``. Deleting a subject leaves its referrers orphaned unless they are
deleted too.") and /work/shared/REGISTRIES.md, which records that Harbor deletes an
artifact's accessories (signatures, SBOMs) with it and that regclient cleans the
``sha256-<hex>`` fallback tag, but does NOT say which registries implement the referrers API:
this personality stands for "a registry with the API", not for any named product.

    with ReferrersProxy(registry.url) as proxy:
        push_referrer(proxy.url, repo, image_digest)
        httpx.get(f"{proxy.url}/v2/{repo}/referrers/{image_digest}").json()["manifests"]
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx

from testbed.faultproxy import FaultProxy
from testbed.images import ALL_MANIFESTS, OCI_INDEX, OCI_MANIFEST
from testbed.registryfaults import Reply

__all__ = ["ReferrersProxy"]

_NAME = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
_REFERRERS = re.compile(rf"/v2/(?P<name>{_NAME})/referrers/(?P<digest>[^/]+)")
_MANIFEST = re.compile(rf"/v2/(?P<name>{_NAME})/manifests/(?P<reference>[^/]+)")
_DIGEST = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_INDEX_TYPES = {OCI_INDEX, "application/vnd.docker.distribution.manifest.list.v2+json"}


def _error(status: int, code: str, message: str) -> Reply:
    body = json.dumps({"errors": [{"code": code, "message": message, "detail": None}]}).encode()
    return Reply(status, [("Content-Type", "application/json")], body)


@dataclass(eq=False)
class ReferrersProxy(FaultProxy):
    """Serve on 127.0.0.1 (a free port), forward to ``upstream``, answer the referrers API."""

    page_size: int | None = None  # None: every referrer in one answer
    filtering: bool = True  # False: ignore ?artifactType= (no OCI-Filters-Applied header)

    def __post_init__(self) -> None:
        super().__post_init__()
        self._known_lock = threading.Lock()
        # (repository, subject digest) -> referrer digest -> its descriptor, in push order
        self._known: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}

    def __enter__(self) -> ReferrersProxy:
        self.start()
        return self

    def known(self, repo: str, subject: str) -> list[dict[str, Any]]:
        """The descriptors recorded for ``subject`` (whether or not they still exist upstream)."""
        with self._known_lock:
            return [dict(d) for d in self._known.get((repo, subject), {}).values()]

    # --- forwarding ----------------------------------------------------------------------

    def forward(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        url = urlsplit(target)
        asked = _REFERRERS.fullmatch(url.path)
        if asked and method == "GET":
            return self._referrers(asked["name"], asked["digest"], parse_qs(url.query), headers)
        reply = super().forward(method, target, headers, body)
        manifest = _MANIFEST.fullmatch(url.path)
        if manifest and method == "PUT" and reply.status == 201:
            subject = self._learn(manifest["name"], body, headers)
            if subject is not None:
                reply.headers.append(("OCI-Subject", subject))
        elif manifest and method == "DELETE" and reply.status == 202:
            with self._known_lock:
                for (repo, _), referrers in self._known.items():
                    if repo == manifest["name"]:
                        referrers.pop(manifest["reference"], None)
        return reply

    def _learn(self, repo: str, body: bytes, headers: dict[str, str]) -> str | None:
        """Record the manifest's descriptor under its subject; returns the subject digest."""
        try:
            doc = json.loads(body)
        except ValueError:
            return None
        subject = doc.get("subject") if isinstance(doc, dict) else None
        if not isinstance(subject, dict) or not isinstance(subject.get("digest"), str):
            return None
        content_type = {k.lower(): v for k, v in headers.items()}.get("content-type", "").split(";")[0].strip()
        media_type = doc.get("mediaType") or content_type or OCI_MANIFEST
        entry: dict[str, Any] = {"mediaType": media_type, "digest": "sha256:" + hashlib.sha256(body).hexdigest(),
                                 "size": len(body)}
        artifact_type = doc.get("artifactType")
        if not artifact_type and media_type not in _INDEX_TYPES:
            artifact_type = (doc.get("config") or {}).get("mediaType")
        if artifact_type:
            entry["artifactType"] = artifact_type
        if doc.get("annotations"):
            entry["annotations"] = doc["annotations"]
        with self._known_lock:
            self._known.setdefault((repo, subject["digest"]), {})[entry["digest"]] = entry
        return str(subject["digest"])

    # --- the referrers API ---------------------------------------------------------------

    def _exists(self, repo: str, digest: str, headers: dict[str, str]) -> bool:
        sent = {"Accept": ALL_MANIFESTS}
        auth = {k.lower(): v for k, v in headers.items()}.get("authorization")
        if auth:
            sent["Authorization"] = auth
        try:
            return self._client.head(f"/v2/{repo}/manifests/{digest}", headers=sent).status_code == 200
        except httpx.HTTPError:  # unknown: list it, as a registry that cannot tell would
            return True

    def _referrers(self, repo: str, digest: str, query: dict[str, list[str]], headers: dict[str, str]) -> Reply:
        if not _DIGEST.fullmatch(digest):
            return _error(400, "DIGEST_INVALID", f"invalid digest {digest!r}")
        found = [d for d in self.known(repo, digest) if self._exists(repo, d["digest"], headers)]
        reply_headers = [("Content-Type", OCI_INDEX)]
        wanted = query.get("artifactType")
        if wanted and self.filtering:
            found = [d for d in found if d.get("artifactType") in wanted]
            reply_headers.append(("OCI-Filters-Applied", "artifactType"))
        last = (query.get("last") or [""])[0]
        if last:
            digests = [d["digest"] for d in found]
            found = found[digests.index(last) + 1:] if last in digests else []
        if self.page_size is not None and len(found) > self.page_size:
            found = found[: self.page_size]
            params = "".join(f"&artifactType={quote(t, safe='')}" for t in (wanted or [])) if self.filtering else ""
            reply_headers.append(("Link", f'</v2/{repo}/referrers/{digest}?last={found[-1]["digest"]}{params}>; '
                                          'rel="next"'))
        body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": found}).encode()
        return Reply(200, reply_headers, body)
