"""Async client for the registry HTTP API: catalog, tags, manifests, delete.

Every answer is checked before it is believed: a manifest's digest is recomputed from its
body (identity in doubt means no decision can be made about it), error bodies are read for
their ``code`` (the status alone does not tell "deletion disabled" from "denied"), and any
body that is not what the API promises becomes a one-line :class:`RegistryError` naming the
repository and reference, never a traceback. How requests travel (TLS, auth, retries,
limits) is :mod:`kitgc.registry.transport`'s concern.
"""

from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import dataclass

import httpx

from kitgc.errors import ConfigError, RegistryError
from kitgc.identity import ManifestKey, is_digest
from kitgc.imageref import InvalidReference, split_address, validate_digest
from kitgc.model import Blob
from kitgc.registry.adaptive import AdaptiveLimit
from kitgc.registry.answers import Reply, json_document, registry_error
from kitgc.registry.auth import Credentials
from kitgc.registry.mediatypes import MANIFEST_ACCEPT, OCI_INDEX, ManifestFormatError, parse_manifest
from kitgc.registry.transport import OnRequest, Sleep, Transport, TransportOptions
from kitgc.retry import RetryPolicy

__all__ = ["MANIFEST_ACCEPT", "FetchedManifest", "HeadResult", "RegistryClient"]

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
# Applied with fullmatch ("$" also matches before a trailing newline); ASCII like Go's \w.
_REPOSITORY = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_LINK_NEXT = re.compile(r'<([^>]*)>\s*;[^,]*\brel="?next"?', re.IGNORECASE)
# A registry whose Link pages never end (each a new URL) must not hold a run forever nor
# fill its memory: a million names is far beyond any registry that offers the catalog.
MAX_NAMES = 1_000_000
MAX_PAGES = 10_000


@dataclass(frozen=True)
class FetchedManifest:
    digest: str
    media_type: str
    body: bytes
    children: tuple[str, ...]
    blobs: tuple[Blob, ...]
    subject: str | None = None
    artifact_type: str = ""


@dataclass(frozen=True)
class HeadResult:
    """What a HEAD on a manifest tells without its body.

    ``digest`` is None when the registry sent no (valid) ``Docker-Content-Digest`` for a
    tag: then only a GET can say which manifest the tag names. ``size`` is the body's
    ``Content-Length`` (0 when absent).
    """

    digest: str | None
    media_type: str
    size: int


@dataclass(frozen=True)
class Referrer:
    """One descriptor of an OCI 1.1 referrers answer."""

    digest: str
    artifact_type: str


class RegistryClient:
    """One registry at ``address`` (``host[:port]``); an async context manager.

    ``stats`` counts requests sent, by kind (``catalog``, ``tags``, ``manifest_get``,
    ``manifest_head``, ``delete``, ``token``; an auth challenge answered makes two), and
    retries (``retry``). ``on_request`` is called after every request with
    ``(kind, method, url, status or None, seconds)``. ``backoff`` is the first retry delay
    (doubled each time, with jitter, up to ``max_backoff``); ``Retry-After`` is honoured up
    to ``retry_after_cap`` seconds; ``sleep`` replaces ``asyncio.sleep`` (tests).
    """

    def __init__(
        self,
        address: str,
        *,
        insecure: bool = False,
        ca_file: str | None = None,
        credentials: Credentials | None = None,
        concurrency: int = 16,
        concurrency_max: int | None = None,
        timeout: float = 30.0,
        retries: int = 4,
        transport: httpx.AsyncBaseTransport | None = None,
        on_request: OnRequest | None = None,
        backoff: float = 0.5,
        max_backoff: float = 10.0,
        retry_after_cap: float = 30.0,
        sleep: Sleep | None = None,
    ) -> None:
        try:
            host, prefix = split_address(address)
        except InvalidReference as exc:
            raise ConfigError(f"invalid REGISTRY_ADDRESS: {exc}") from None
        if prefix:
            raise ConfigError(f"invalid registry address {address!r}: the client takes host[:port] only")
        self.address = host
        self.concurrency = max(1, concurrency)
        self.base_url = f"{'http' if insecure else 'https'}://{host}"
        self.stats: dict[str, int] = dict.fromkeys(
            ("ping", "catalog", "tags", "manifest_get", "manifest_head", "referrers", "delete", "delete_tag", "token",
             "retry"), 0
        )
        retry = RetryPolicy(attempts=max(1, retries), backoff=backoff, max_backoff=max_backoff,
                            retry_after_cap=retry_after_cap)
        options = TransportOptions(
            insecure=insecure, ca_file=ca_file, credentials=credentials, concurrency=self.concurrency,
            concurrency_max=concurrency_max, timeout=timeout, retry=retry, transport=transport,
            on_request=on_request, sleep=sleep,
        )
        self._transport = Transport(self.base_url, options, self.stats)

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._transport.aclose()

    @property
    def limit(self) -> AdaptiveLimit:
        """The requests in flight: where the limit started, peaked and ended (kitgc.registry.adaptive)."""
        return self._transport.limit

    # --- API ---------------------------------------------------------------------------

    async def ping(self) -> Reply:
        """``GET /v2/`` without credentials: the API version check, whose headers
        (``WWW-Authenticate``'s realm and service, ``Server``, vendor headers) tell which
        registry answers. Any status is returned; only transport failures raise."""
        return await self._transport.anonymous("ping", "GET", f"{self.base_url}/v2/", "GET /v2/")

    async def catalog(self, page_size: int = 1000) -> list[str]:
        """Every repository name, following ``Link: <…>; rel="next"`` until it is absent."""
        return await self._paged(
            "catalog", f"{self.base_url}/v2/_catalog?n={page_size}", "repositories", "catalog",
            ("registry:catalog:*",),
        )

    async def tags(self, repository: str) -> list[str]:
        """Tags of ``repository`` (``null`` means none left), following ``Link`` pages."""
        repo = self._repository(repository)
        return await self._paged(
            "tags", f"{self.base_url}/v2/{repo}/tags/list", "tags", f"tags of {repo}",
            (f"repository:{repo}:pull",),
        )

    async def _manifest_request(
        self, kind: str, method: str, repository: str, reference: str
    ) -> tuple[Reply, bool, str]:
        """(a 200 answer, whether ``reference`` is a digest, what to call it in errors)."""
        repo, by_digest, what = self._manifest_target(repository, reference)
        reply = await self._transport.request(
            kind, method, f"{self.base_url}/v2/{repo}/manifests/{reference}", what,
            (f"repository:{repo}:pull",), accept=MANIFEST_ACCEPT,
        )
        if reply.status != 200:
            raise registry_error(what, reply)
        return reply, by_digest, what

    async def get_manifest(self, repository: str, reference: str) -> FetchedManifest:
        """The manifest at ``reference`` (tag or digest), its digest verified against the body."""
        reply, by_digest, what = await self._manifest_request("manifest_get", "GET", repository, reference)
        header = reply.headers.get("Docker-Content-Digest")
        expected = reference if by_digest else header
        digest = _sha256(reply.body)
        if expected is not None:
            try:
                computed = _digest_of(reply.body, expected)
            except (InvalidReference, ValueError) as exc:
                raise RegistryError(f"{what}: bad Docker-Content-Digest: {exc}", status=200) from None
            if header is not None and header != computed:
                raise RegistryError(f"{what}: digest mismatch: header {header}, body {computed}", status=200)
            if by_digest and computed != reference:
                raise RegistryError(f"{what}: digest mismatch: requested {reference}, body {computed}",
                                    status=200)
            digest = computed
        try:
            parsed = parse_manifest(reply.body, reply.headers.get("Content-Type"))
        except ManifestFormatError as exc:
            raise RegistryError(f"{what}: {exc}", status=200) from None
        return FetchedManifest(digest, sys.intern(parsed.media_type), reply.body, parsed.children,
                               parsed.blobs, parsed.subject, parsed.artifact_type)

    async def head_manifest(self, repository: str, reference: str) -> HeadResult:
        """HEAD the manifest at ``reference``: digest, media type and size, no body.

        Docker Hub counts a GET against the pull rate limit and a HEAD not, and every
        registry answers a HEAD faster; what needs a body (an index's children, blobs for
        sizes, an artifact's subject) is fetched by GET afterwards, by digest.
        """
        reply, by_digest, what = await self._manifest_request("manifest_head", "HEAD", repository, reference)
        header = reply.headers.get("Docker-Content-Digest")
        digest: str | None = None
        if header is not None:
            try:
                digest = validate_digest(header.strip())
            except InvalidReference:
                digest = None  # a GET will tell (and verify)
        if by_digest:
            if digest is not None and digest != reference:
                raise RegistryError(f"{what}: digest mismatch: requested {reference}, header {digest}", status=200)
            digest = reference
        media_type = (reply.headers.get("Content-Type") or "").split(";")[0].strip()
        try:
            size = max(0, int(reply.headers.get("Content-Length") or 0))
        except ValueError:
            size = 0
        return HeadResult(digest, sys.intern(media_type), size)  # a handful of types, 100,000 manifests

    async def referrers(self, repository: str, digest: str) -> list[Referrer] | None:
        """What names ``digest`` as its subject (OCI 1.1 ``/referrers/``), or None when the
        registry has no referrers API (it answers 404, 405, 400 or 501 for the path).

        Pages are followed through ``Link`` like the catalog's; ``OCI-Filters-Applied`` does
        not matter since no filter is asked for.
        """
        repo = self._repository(repository)
        try:
            validate_digest(digest)
        except InvalidReference as exc:
            raise RegistryError(f"referrers of {ManifestKey(repo, digest)}: {exc}") from None
        what = f"referrers of {ManifestKey(repo, digest)}"
        found: list[Referrer] = []
        next_url: str | None = f"{self.base_url}/v2/{repo}/referrers/{digest}"
        for _ in range(MAX_PAGES):
            if next_url is None:
                return found
            reply = await self._transport.request("referrers", "GET", next_url, what, (f"repository:{repo}:pull",),
                                                  accept=OCI_INDEX)
            if reply.status in (400, 404, 405, 501):
                return None
            doc = json_document(what, reply)
            entries = doc.get("manifests") if isinstance(doc, dict) else None
            if not isinstance(entries, list):
                raise RegistryError(f"{what}: the answer is not an image index", status=200)
            for entry in entries:
                found.append(_referrer(what, entry))
            match = _LINK_NEXT.search(reply.headers.get("Link", ""))
            next_url = str(reply.url.join(match.group(1))) if match else None
        raise RegistryError(f"{what}: more than {MAX_PAGES} pages; refusing to read on")

    async def delete_manifest(self, repository: str, digest: str) -> bool:
        """Delete by digest (which removes every tag on it): True, or False if already gone.

        Any other answer is a :class:`RegistryError` with the status and the registry's error
        code; the image store decides what it means (deletion disabled, tag immutable, …).
        """
        repo = self._repository(repository)
        what = f"DELETE {ManifestKey(repo, digest)}"
        try:
            validate_digest(digest)
        except InvalidReference as exc:
            raise RegistryError(f"refusing {what}: {exc}") from None
        reply = await self._transport.request(
            "delete", "DELETE", f"{self.base_url}/v2/{repo}/manifests/{digest}", what,
            (f"repository:{repo}:delete", f"repository:{repo}:pull"),
        )
        if 200 <= reply.status < 300:
            return True
        if reply.status == 404:
            return False
        raise registry_error(what, reply)  # what a refusal means is the store's to say

    async def delete_tag(self, repository: str, tag: str) -> bool:
        """``DELETE /v2/<name>/manifests/<tag>``: untag only (GCR, Distribution 3, Quay, Zot).

        True when the tag went, False when it was already gone; other answers raise
        :class:`RegistryError` (Distribution 2.8 ``400 DIGEST_INVALID``, Harbor ``400
        UNSUPPORTED``). Callers delete a tag only after checking it still names the digest
        they are deleting.
        """
        repo = self._repository(repository)
        if not _TAG.fullmatch(tag):
            raise RegistryError(f"refusing DELETE {repo}:{tag}: not a valid tag")
        what = f"DELETE {repo}:{tag}"
        reply = await self._transport.request(
            "delete_tag", "DELETE", f"{self.base_url}/v2/{repo}/manifests/{tag}", what,
            (f"repository:{repo}:delete", f"repository:{repo}:pull"),
        )
        if 200 <= reply.status < 300:
            return True
        if reply.status == 404:
            return False
        raise registry_error(what, reply)

    # --- helpers -----------------------------------------------------------------------

    def _repository(self, repository: str) -> str:
        if not _REPOSITORY.fullmatch(repository) or len(repository) > 255:
            raise RegistryError(f"invalid repository name {repository!r}")
        return repository

    def _manifest_target(self, repository: str, reference: str) -> tuple[str, bool, str]:
        """(repository, whether ``reference`` is a digest, what to call it in errors).

        A reference is a tag when it matches the tag grammar (which has no ``:``), a digest
        when it matches the digest grammar; anything else is refused before any request.
        """
        repo = self._repository(repository)
        if _TAG.fullmatch(reference):
            return repo, False, f"manifest {repo}:{reference}"
        if not is_digest(reference):
            raise RegistryError(f"manifest {ManifestKey(repo, reference)}: neither a valid tag nor a digest "
                                "(invalid tag)")
        try:
            validate_digest(reference)
        except InvalidReference as exc:
            raise RegistryError(f"manifest {ManifestKey(repo, reference)}: {exc}") from None
        return repo, True, f"manifest {ManifestKey(repo, reference)}"

    async def _paged(self, kind: str, url: str, field: str, what: str, scopes: tuple[str, ...]) -> list[str]:
        out: list[str] = []
        seen: set[str] = set()
        next_url: str | None = url
        while next_url is not None:
            if next_url in seen:
                raise RegistryError(f"{what}: the registry's Link pages loop back to {next_url}")
            if len(seen) >= MAX_PAGES or len(out) > MAX_NAMES:
                raise RegistryError(f"{what}: more than {MAX_PAGES} pages or {MAX_NAMES} names; refusing to read on")
            seen.add(next_url)
            reply = await self._transport.request(kind, "GET", next_url, what, scopes)
            doc = json_document(what, reply)
            items = doc.get(field) if isinstance(doc, dict) else ()
            if not isinstance(doc, dict) or field not in doc or not (items is None or isinstance(items, list)):
                raise RegistryError(f"{what}: the answer has no {field!r} list", status=200)
            if items and not all(isinstance(i, str) for i in items):
                raise RegistryError(f"{what}: {field!r} holds something other than names", status=200)
            out.extend(items or ())
            match = _LINK_NEXT.search(reply.headers.get("Link", ""))
            next_url = str(reply.url.join(match.group(1))) if match else None
        return out


def _referrer(what: str, entry: object) -> Referrer:
    if not isinstance(entry, dict) or not isinstance(entry.get("digest"), str):
        raise RegistryError(f"{what}: a descriptor without a digest", status=200)
    try:
        digest = validate_digest(entry["digest"])
    except InvalidReference as exc:
        raise RegistryError(f"{what}: {exc}", status=200) from None
    artifact_type = entry.get("artifactType")
    return Referrer(digest, artifact_type if isinstance(artifact_type, str) else "")


def _sha256(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _digest_of(body: bytes, like: str) -> str:
    """Digest of ``body`` with the algorithm of ``like`` (sha256 or sha512)."""
    algorithm = validate_digest(like).split(":", 1)[0]
    if algorithm not in ("sha256", "sha512"):
        raise ValueError(f"unsupported digest algorithm {algorithm!r}")
    return f"{algorithm}:{hashlib.new(algorithm, body).hexdigest()}"
