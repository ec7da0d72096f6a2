"""The ``openshift`` image store: kit images in ImageStreams, through the Kubernetes API only.

On OpenShift a kit image lives in an ImageStream ``<namespace>/camel-k-kit-<xid>`` (S2I up to
Camel K 2.5: owned by the IntegrationKit; Jib from 2.6: created by the integrated registry on
push, owned by nobody). The integrated registry refuses a manifest DELETE while a stream
points at the digest, and storage comes back only through OpenShift's ImagePruner, which never
prunes what a stream holds. So what must go is the stream's hold on the image: the
ImageStreamTag ``<stream>:<tag>`` (its whole history), or the ImageStream when nothing in it
stays. No registry request is ever made.

Repositories are the streams (``<namespace>/<name>``: on OpenShift an organization is a
namespace); manifests are the items of ``status.tags[].items[]`` (``image`` is the digest,
``items[0]`` the tag's current image, the rest its history). Sizes come from the Image objects
(``dockerImageLayers``) where they can be read, else stay unknown, never guessed.

A tag is the smallest thing that can be deleted, so each tag's history is reported as a unit
(:attr:`~kitgc.stores.base.RepositoryScan.units`): the planner keeps every image of a tag whose
history also holds an image that stays, and OpenShift's ImagePruner trims that history later.
Facts and sources: ../shared/REGISTRIES.md (OpenShift section), openshift/api image/v1/types.go.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from kitgc.cluster import sources as S
from kitgc.cluster.reader import ClusterReader
from kitgc.errors import KitGCError, RegistryError, SourceUnavailable
from kitgc.identity import ManifestKey
from kitgc.kube.http import KubeHttp, TransportError
from kitgc.model import Blob, Manifest, RepositoryProblem
from kitgc.scope import Scope
from kitgc.stores.base import Capabilities, DeleteOutcome, KnownRepositories, RepositoryListing, RepositoryScan

log = structlog.get_logger("kitgc.store")

INTEGRATED_REGISTRY = "image-registry.openshift-image-registry.svc"
ROUTE_PREFIX = "default-route-openshift-image-registry."
MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"  # what the integrated registry serves
_IMAGE_API = f"/apis/{S.OPENSHIFT_IMAGE}/v1"


def names_integrated_registry(host: str) -> bool:
    """Whether ``host`` is OpenShift's integrated registry: its service (any port) or its route."""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name == INTEGRATED_REGISTRY or name.startswith(ROUTE_PREFIX)


class OpenShiftStore:
    """An :class:`~kitgc.stores.base.ImageStore` over ImageStreams (``image.openshift.io/v1``)."""

    kind = "openshift"
    capabilities = Capabilities(lists_repositories=True, deletes_manifests=True, deletes_repositories=True)

    def __init__(self, api_client: Any, *, address: str, concurrency: int = 16, page_size: int = 500,
                 timeout: float = 30.0) -> None:
        self.address = address
        self.concurrency = max(1, concurrency)
        self._reader = ClusterReader(api_client, page_size=page_size, timeout=timeout, sources=(S.IMAGE_STREAMS,))
        self._http = KubeHttp(api_client, timeout=timeout)
        self._streams: dict[str, dict[str, Any]] = {}  # repository -> the ImageStream as listed
        self._gone: set[str] = set()  # ImageStreamTags ("repo:tag") and streams ("repo") deleted
        self._deleted: set[ManifestKey] = set()
        self.stats: Counter[str] = Counter()

    async def __aenter__(self) -> OpenShiftStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        return None  # the Kubernetes client belongs to the run

    # --- listing and scanning ------------------------------------------------------------

    async def list_repositories(self, scope: Scope, known: KnownRepositories = ()) -> RepositoryListing:
        """Every ImageStream in scope; the API unreadable means nothing can be decided: exit 3."""
        try:
            items = await asyncio.to_thread(lambda: list(self._reader.list_raw(S.IMAGE_STREAMS)))
        except KitGCError as exc:
            raise SourceUnavailable(f"cannot list ImageStreams: {exc}") from None
        self.stats["imagestream_lists"] += 1
        streams = {}
        for item in items:  # a list restarted after an expired token may repeat items: the last wins
            meta = item.get("metadata") if isinstance(item, dict) else None
            if isinstance(meta, dict) and meta.get("namespace") and meta.get("name"):
                streams[f"{meta['namespace']}/{meta['name']}"] = item
        ours = {repo: s for repo, s in streams.items() if repo in scope}
        self._streams = ours
        return RepositoryListing(tuple(sorted(ours)), len(streams) - len(ours), source="imagestreams")

    async def scan_repository(self, repository: str) -> RepositoryScan:
        """The stream's tag history as manifests; sizes from the Image objects where readable."""
        scan = RepositoryScan(repository)
        history = tag_history(self._streams.get(repository, {}))
        if history is None:
            scan.problems.append(RepositoryProblem(repository, "ImageStream status.tags is not readable"))
            return scan
        current: dict[str, list[str]] = defaultdict(list)
        digests: list[str] = []
        for tag, items in history.items():
            if items:
                current[items[0]].append(tag)
            digests += [d for d in items if d not in digests]
        sizes = await asyncio.gather(*(self._image_blobs(d) for d in digests))
        for digest, blobs in zip(digests, sizes, strict=True):
            scan.manifests[digest] = Manifest(repository, digest, MEDIA_TYPE, tags=tuple(sorted(current[digest])),
                                              blobs=blobs)
        scan.units = [(f"ImageStreamTag {repository}:{tag}", tuple(items)) for tag, items in sorted(history.items())
                      if len(items) > 1]
        return scan

    async def _image_blobs(self, digest: str) -> tuple[Blob, ...]:
        """Layer sizes of the Image object, or nothing (unknown) when it cannot be read."""
        try:
            resp = await asyncio.to_thread(self._http.request, "GET", f"{_IMAGE_API}/images/{digest}")
        except TransportError:
            return ()
        self.stats["image_gets"] += 1
        if not resp.ok:
            return ()
        try:
            layers = resp.json().get("dockerImageLayers") or []
            return tuple(Blob(str(layer["name"]), int(layer["size"])) for layer in layers)
        except (ValueError, KeyError, TypeError, AttributeError):
            return ()

    async def fetch_manifest(self, repository: str, digest: str) -> Manifest | None:
        return None  # no untagged children to remember: nothing here deletes an index before them

    # --- deleting ------------------------------------------------------------------------

    def deletion_batches(self, manifests: Sequence[Manifest]) -> list[list[Manifest]]:
        return [list(manifests)]

    async def delete_manifest(self, manifest: Manifest) -> DeleteOutcome:
        """Delete the tags holding ``manifest``, or the whole stream once all its images go."""
        repo = manifest.repository
        stream = self._streams.get(repo)
        if stream is None:
            return DeleteOutcome.ALREADY_GONE
        self._deleted.add(manifest.key)
        history = tag_history(stream) or {}
        everything = {ManifestKey(repo, d) for items in history.values() for d in items}
        if everything <= self._deleted:
            return await self._delete_once(repo, _stream_path(repo))
        outcome = DeleteOutcome.ALREADY_GONE
        for tag, items in sorted(history.items()):  # a tag goes once every image of its history goes
            if manifest.digest not in items or not {ManifestKey(repo, d) for d in items} <= self._deleted:
                continue
            if await self._delete_once(f"{repo}:{tag}", _tag_path(repo, tag)) is DeleteOutcome.DELETED:
                outcome = DeleteOutcome.DELETED
        return outcome

    async def delete_repository(self, repository: str) -> DeleteOutcome:
        """The ImageStream, once every image of its history went in this run.

        :meth:`delete_manifest` already deletes the stream with its last image, so this is
        normally ALREADY_GONE; it refuses a stream that still holds an image it did not delete.
        """
        stream = self._streams.get(repository)
        if stream is None:
            return DeleteOutcome.ALREADY_GONE
        history = tag_history(stream) or {}
        left = sorted({d for items in history.values() for d in items} -
                      {k.digest for k in self._deleted if k.repository == repository})
        if left:
            raise RegistryError(f"ImageStream {repository} still holds {len(left)} image(s) (e.g. {left[0]}); "
                                "not deleted")
        return await self._delete_once(repository, _stream_path(repository))

    async def _delete_once(self, what: str, path: str) -> DeleteOutcome:
        if what in self._gone or what.split(":", 1)[0] in self._gone:
            return DeleteOutcome.ALREADY_GONE
        try:
            resp = await asyncio.to_thread(self._http.request, "DELETE", path)
        except TransportError as exc:
            raise RegistryError(f"DELETE {what}: {exc}") from None
        self.stats["deletes"] += 1
        self._gone.add(what)
        if resp.status == 404:  # the kit's deletion took its stream with it (S2I), or someone was first
            return DeleteOutcome.ALREADY_GONE
        if not resp.ok:
            raise RegistryError(f"DELETE {what}: {resp.status_message()}", status=resp.status)
        log.debug("openshift_deleted", what=what)
        return DeleteOutcome.DELETED

    def explain_refusal(self, error: RegistryError) -> str | None:
        if error.status == 403:
            return "the collector may not delete ImageStreams/ImageStreamTags here (see manifests/overlays/openshift)"
        return None


def tag_history(stream: Mapping[str, Any]) -> dict[str, list[str]] | None:
    """``{tag: [digest, ...]}`` (current first) from ``status.tags``; None when unreadable."""
    status = stream.get("status") if isinstance(stream, Mapping) else None
    tags = status.get("tags") if isinstance(status, Mapping) else []
    if tags is None:
        return {}
    if not isinstance(tags, list):
        return None
    out: dict[str, list[str]] = {}
    for entry in tags:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("tag"), str):
            return None
        items = entry.get("items") or []
        if not isinstance(items, list) or not all(isinstance(i, Mapping) and isinstance(i.get("image"), str)
                                                  for i in items):
            return None
        out[entry["tag"]] = list(dict.fromkeys(str(i["image"]) for i in items))
    return out


def _stream_path(repo: str) -> str:
    namespace, _, name = repo.partition("/")
    return f"{_IMAGE_API}/namespaces/{namespace}/imagestreams/{name}"


def _tag_path(repo: str, tag: str) -> str:
    namespace, _, name = repo.partition("/")
    return f"{_IMAGE_API}/namespaces/{namespace}/imagestreamtags/{name}:{tag}"
