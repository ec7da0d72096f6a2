"""The machinery every registry personality shares (:mod:`testbed.personalities`).

A personality is a :class:`~testbed.faultproxy.FaultProxy` in front of the real registry;
this module holds what they all need: routing by path, error bodies in the registry's
shape, the set of tags a personality hides (untag-only DELETEs Distribution 2.8 cannot do),
the indexes learned from manifest PUTs, and look-ups of the registry behind.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Self
from urllib.parse import urlsplit

from testbed.faultproxy import FaultProxy
from testbed.images import ALL_MANIFESTS
from testbed.registryfaults import Reply

__all__ = ["HARBOR_REPOSITORIES", "Personality", "error_reply", "immutable_tag", "unsupported"]

_NAME = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
_MANIFEST = re.compile(rf"/v2/(?P<name>{_NAME})/manifests/(?P<reference>[^/]+)")
_TAGS = re.compile(rf"/v2/(?P<name>{_NAME})/tags/list")
_DIGEST = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
HARBOR_REPOSITORIES = re.compile(r"/api/v2\.0/projects/(?P<project>[^/]+)/repositories")


def error_reply(status: int, code: str, message: str, detail: object = None,
                headers: Sequence[tuple[str, str]] = ()) -> Reply:
    """A v2 error answer: ``{"errors":[{"code","message","detail"}]}``, JSON content type."""
    body = json.dumps({"errors": [{"code": code, "message": message, "detail": detail}]}).encode()
    return Reply(status, [("Content-Type", "application/json"), *headers], body)


def unsupported(status: int = 405) -> Reply:
    return error_reply(status, "UNSUPPORTED", "The operation is unsupported.")


def _is_digest(reference: str) -> bool:
    return ":" in reference and bool(_DIGEST.fullmatch(reference))


@dataclass(eq=False)
class Personality(FaultProxy):
    """Shared machinery: routing, hidden tags, learned indexes, upstream look-ups."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self._state = threading.RLock()
        self.hidden: set[tuple[str, str]] = set()  # (repository, tag) untagged here, still upstream
        self._indexes: dict[tuple[str, str], tuple[str, ...]] = {}  # (repo, index digest) -> children

    def __enter__(self) -> Self:
        self.start()
        return self

    # --- routing ---------------------------------------------------------------------

    def forward(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        path = urlsplit(target).path
        if path == "/v2/_catalog" and method in ("GET", "HEAD"):
            refused = self.catalog(headers)
            if refused is not None:
                return refused
        manifest = _MANIFEST.fullmatch(path)
        if manifest:
            repo, ref = manifest["name"], manifest["reference"]
            if method == "DELETE":
                if _is_digest(ref):
                    return self.delete_digest(repo, ref, headers, target, body)
                return self.delete_tag(repo, ref, headers, target, body)
            if method in ("GET", "HEAD") and not _is_digest(ref) and self._is_hidden(repo, ref):
                return error_reply(404, "MANIFEST_UNKNOWN", "manifest unknown", {"Tag": ref})
            if method == "PUT":
                return self._put(repo, ref, headers, target, body)
            if method == "GET":
                return self.get_manifest(repo, ref, headers, target, body)
        tags = _TAGS.fullmatch(path)
        if tags and method == "GET":
            return self._tags_list(tags["name"], headers, target, body)
        return self.pass_on(method, target, headers, body)

    def pass_on(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        """The real registry's answer, untouched."""
        return FaultProxy.forward(self, method, target, headers, body)

    # --- what a personality overrides ---------------------------------------------------

    def catalog(self, headers: dict[str, str]) -> Reply | None:
        """None: forward ``_catalog``; a reply: answer this instead."""
        return None

    def delete_digest(self, repo: str, digest: str, headers: dict[str, str], target: str, body: bytes) -> Reply:
        return self.pass_on("DELETE", target, headers, body)

    def delete_tag(self, repo: str, tag: str, headers: dict[str, str], target: str, body: bytes) -> Reply:
        return self.pass_on("DELETE", target, headers, body)

    def get_manifest(self, repo: str, ref: str, headers: dict[str, str], target: str, body: bytes) -> Reply:
        return self.pass_on("GET", target, headers, body)

    def visible_tags(self, repo: str, upstream_tags: list[str]) -> list[str]:
        return [t for t in upstream_tags if not self._is_hidden(repo, t)]

    # --- shared behaviour -------------------------------------------------------------

    def untag(self, repo: str, tag: str, headers: dict[str, str]) -> Reply:
        """``DELETE manifests/<tag>`` as an untag-only registry answers it (202 / 404)."""
        if self.resolve(repo, tag, headers) is None:
            return error_reply(404, "MANIFEST_UNKNOWN", "manifest unknown", {"Tag": tag})
        with self._state:
            self.hidden.add((repo, tag))
        return Reply(202, [("Content-Length", "0")], b"")

    def _is_hidden(self, repo: str, tag: str) -> bool:
        with self._state:
            return (repo, tag) in self.hidden

    def _put(self, repo: str, ref: str, headers: dict[str, str], target: str, body: bytes) -> Reply:
        reply = self.pass_on("PUT", target, headers, body)
        if reply.status == 201:
            children = _children(body)
            with self._state:
                if children is not None:
                    self._indexes[(repo, "sha256:" + hashlib.sha256(body).hexdigest())] = children
                if not _is_digest(ref):
                    self.hidden.discard((repo, ref))
                    self.on_tag_pushed(repo, ref)
        return reply

    def on_tag_pushed(self, repo: str, tag: str) -> None:
        """A tag was (re)pushed through the proxy."""

    def _tags_list(self, repo: str, headers: dict[str, str], target: str, body: bytes) -> Reply:
        reply = self.pass_on("GET", target, headers, body)
        if reply.status != 200:
            return reply
        try:
            doc = json.loads(reply.body)
        except ValueError:
            return reply
        doc["tags"] = self.visible_tags(repo, list(doc.get("tags") or ())) or None
        reply.body = json.dumps(doc).encode()
        return reply

    # --- upstream look-ups ------------------------------------------------------------

    def _headers(self, headers: dict[str, str]) -> dict[str, str]:
        sent = {"Accept": ALL_MANIFESTS}
        auth = {k.lower(): v for k, v in headers.items()}.get("authorization")
        if auth:
            sent["Authorization"] = auth
        return sent

    def upstream_tags(self, repo: str, headers: dict[str, str]) -> list[str]:
        r = self._client.get(f"/v2/{repo}/tags/list", headers=self._headers(headers))
        return sorted(r.json().get("tags") or ()) if r.status_code == 200 else []

    def resolve(self, repo: str, reference: str, headers: dict[str, str]) -> str | None:
        """The digest ``reference`` names upstream (hidden tags resolve to None)."""
        if not _is_digest(reference) and self._is_hidden(repo, reference):
            return None
        r = self._client.head(f"/v2/{repo}/manifests/{reference}", headers=self._headers(headers))
        return r.headers.get("Docker-Content-Digest") if r.status_code == 200 else None

    def tags_of(self, repo: str, digest: str, headers: dict[str, str]) -> list[str]:
        """The live tags (not hidden) that point at ``digest`` now, sorted."""
        return [t for t in self.visible_tags(repo, self.upstream_tags(repo, headers))
                if self.resolve(repo, t, headers) == digest]

    def parents_of(self, repo: str, digest: str, headers: dict[str, str]) -> list[str]:
        """Existing indexes of ``repo`` that list ``digest`` (learned, or tagged upstream)."""
        found: dict[str, tuple[str, ...]] = {}
        with self._state:
            found.update({d: c for (r, d), c in self._indexes.items() if r == repo})
        for tag in self.upstream_tags(repo, headers):
            r = self._client.get(f"/v2/{repo}/manifests/{tag}", headers=self._headers(headers))
            children = _children(r.content) if r.status_code == 200 else None
            if children is not None:
                found["sha256:" + hashlib.sha256(r.content).hexdigest()] = children
        return sorted(d for d, c in found.items()
                      if digest in c and d != digest and self.resolve(repo, d, headers) == d)


def _children(body: bytes) -> tuple[str, ...] | None:
    """The digests an index lists, or None when ``body`` is not an index."""
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    entries = doc.get("manifests") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        return None
    return tuple(e["digest"] for e in entries if isinstance(e, dict) and isinstance(e.get("digest"), str))


def immutable_tag(patterns: Sequence[str], tags: Sequence[str]) -> str | None:
    return next((t for t in tags for p in patterns if fnmatch.fnmatchcase(t, p)), None)
