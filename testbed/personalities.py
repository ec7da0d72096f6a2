"""Registry personalities: proxies in front of the real Distribution registry that answer
DELETE (and listing) the way another registry product does.

Each class is a :class:`~testbed.faultproxy.FaultProxy` (it logs every request and can
inject faults) that forwards to the registry and changes only what the product is
documented to do differently (sources: /work/shared/REGISTRIES.md "Per registry", the row
cited in each class, and FIELD-NOTES.md "Registry quirks"). Error bodies are always
``{"errors":[{"code","message","detail"}]}``, ``Content-Type: application/json``.

State is read from the registry behind, so it cannot drift: the tags of a digest are its
``tags/list`` entries that HEAD to it; the indexes that list a manifest are those learned
from manifest PUTs through the proxy (as ReferrersProxy learns subjects) plus every tagged
manifest, each still existing (an untagged index pushed around the proxy is unknown).
Untag-only DELETEs by tag (GCR, Quay, Zot) cannot be done by Distribution 2.8: the
personality hides the tag (``tags/list`` leaves it out, HEAD/GET answer ``404
MANIFEST_UNKNOWN``) until it is pushed again through the proxy.

    with GcrPersonality(registry.url) as gcr:
        push_image(gcr.url, repo, ["1"])
        httpx.delete(f"{gcr.url}/v2/{repo}/manifests/{digest}")  # 400 GOOGLE_MANIFEST_DANGLING_TAG
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from testbed.personality_base import HARBOR_REPOSITORIES, Personality, error_reply, immutable_tag, unsupported
from testbed.registryfaults import Reply

__all__ = ["DockerHubPersonality", "GcrPersonality", "GhcrPersonality", "HarborPersonality", "NexusPersonality",
           "QuayPersonality", "ZotPersonality", "error_reply"]

@dataclass(eq=False)
class GcrPersonality(Personality):
    """Google Container Registry / Artifact Registry.

    REGISTRIES.md row "Google Artifact Registry / GCR": DELETE by digest while tagged →
    ``400 GOOGLE_MANIFEST_DANGLING_TAG`` "Manifest is still referenced by tag: X"; a manifest
    an existing index lists → ``400 GOOGLE_MANIFEST_DANGLING_PARENT_IMAGE`` ("Manifest <child>
    is referenced by image <parent>", as quoted in GoogleCloudPlatform/gcr-cleaner#130);
    DELETE by tag → 202, untag only. Sources: GoogleCloudPlatform/gcr-cleaner:
    pkg/gcrcleaner/cleaner.go (tags first, parent-image refusals retried), genuinetools/reg#136.
    """

    def delete_tag(self, repo: str, tag: str, headers: dict[str, str], target: str, body: bytes) -> Reply:
        return self.untag(repo, tag, headers)

    def delete_digest(self, repo: str, digest: str, headers: dict[str, str], target: str, body: bytes) -> Reply:
        tags = self.tags_of(repo, digest, headers)
        if tags:
            return error_reply(400, "GOOGLE_MANIFEST_DANGLING_TAG", f"Manifest is still referenced by tag: {tags[0]}")
        parents = self.parents_of(repo, digest, headers)
        if parents:
            return error_reply(400, "GOOGLE_MANIFEST_DANGLING_PARENT_IMAGE",
                               f"Manifest {digest} is referenced by image {parents[0]}")
        return self.pass_on("DELETE", target, headers, body)


@dataclass(eq=False)
class HarborPersonality(Personality):
    """Harbor 2.x.

    REGISTRIES.md row "Harbor": DELETE by digest → 202 (artifact and tags); ``412
    VIOLATE_FOREIGN_KEY_CONSTRAINT`` for an artifact inside an index; ``412 PRECONDITION`` for
    an immutable tag; DELETE by tag → ``400 UNSUPPORTED`` "unsupported digest X: invalid
    checksum digest format"; ``_catalog`` needs system admin (``catalog=True`` plays the
    admin). Its REST API lists a project's repositories (``GET
    /api/v2.0/projects/{p}/repositories``: one page, ``X-Total-Count``), made here from the
    catalog behind. Sources: goharbor/harbor: src/server/registry/manifest.go,
    src/server/registry/catalog.go, api/v2.0/swagger.yaml. Not reproduced: accessories
    (signatures, SBOMs) deleted with their artifact; the API's other endpoints.
    """

    immutable_tags: tuple[str, ...] = ()
    catalog_allowed: bool = False

    def __init__(self, upstream: str, *, immutable_tags: Sequence[str] = (), catalog: bool = False,
                 ca_file: str | None = None) -> None:
        super().__init__(upstream, ca_file)
        self.immutable_tags = tuple(immutable_tags)
        self.catalog_allowed = catalog

    def catalog(self, headers: dict[str, str]) -> Reply | None:
        if self.catalog_allowed:
            return None
        status = 403 if any(k.lower() == "authorization" for k in headers) else 401
        return error_reply(status, "UNAUTHORIZED", "unauthorized to list catalog")

    def forward(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        listing = HARBOR_REPOSITORIES.fullmatch(urlsplit(target).path)
        if listing is None or method != "GET":
            return super().forward(method, target, headers, body)
        names: list[str] = []
        page: str | None = "/v2/_catalog?n=1000"
        while page is not None:  # Distribution serves at most 1000 names a page
            r = self._client.get(page, headers=self._headers(headers))
            if r.status_code != 200:
                return Reply(r.status_code, [("Content-Type", "application/json")], r.content)
            names += [n for n in r.json().get("repositories") or () if n.startswith(listing["project"] + "/")]
            link = re.search(r"<([^>]+)>", r.headers.get("Link", ""))
            page = link.group(1) if link else None
        return Reply(200, [("Content-Type", "application/json"), ("X-Total-Count", str(len(names)))],
                     json.dumps([{"name": n} for n in names]).encode())

    def delete_tag(self, repo: str, tag: str, headers: dict[str, str], target: str, body: bytes) -> Reply:
        return error_reply(400, "UNSUPPORTED", f"unsupported digest {tag}: invalid checksum digest format")

    def delete_digest(self, repo: str, digest: str, headers: dict[str, str], target: str, body: bytes) -> Reply:
        held = immutable_tag(self.immutable_tags, self.tags_of(repo, digest, headers))
        if held is not None:
            return error_reply(412, "PRECONDITION",
                               f"the artifact {repo}:{held} is configured as immutable, cannot be deleted")
        parents = self.parents_of(repo, digest, headers)
        if parents:
            return error_reply(412, "VIOLATE_FOREIGN_KEY_CONSTRAINT",
                               f"the deleting artifact {digest} is referenced by {parents[0]}")
        return self.pass_on("DELETE", target, headers, body)


@dataclass(eq=False)
class QuayPersonality(Personality):
    """Quay (quay.io, Red Hat Quay).

    REGISTRIES.md row "Quay": DELETE by digest → 202, expires all live tags; ``404
    MANIFEST_UNKNOWN`` when it has no live tags (the manifest stays, for the time machine);
    ``409 TAG_IMMUTABLE`` for immutable tags; DELETE by tag → 202, untag only. Sources:
    quay/quay: endpoints/v2/manifest.py. Not reproduced: Quay's Bearer-only v2 auth
    (auth/registry_jwt_auth.py); the proxy forwards whatever auth the registry behind uses.
    """

    immutable_tags: tuple[str, ...] = ()

    def __init__(self, upstream: str, *, immutable_tags: Sequence[str] = (), ca_file: str | None = None) -> None:
        super().__init__(upstream, ca_file)
        self.immutable_tags = tuple(immutable_tags)

    def delete_tag(self, repo: str, tag: str, headers: dict[str, str], target: str, body: bytes) -> Reply:
        if immutable_tag(self.immutable_tags, [tag]):
            return error_reply(409, "TAG_IMMUTABLE", f"tag {tag} is immutable")
        return self.untag(repo, tag, headers)

    def delete_digest(self, repo: str, digest: str, headers: dict[str, str], target: str, body: bytes) -> Reply:
        tags = self.tags_of(repo, digest, headers)
        if not tags:
            return error_reply(404, "MANIFEST_UNKNOWN", "manifest unknown", {"digest": digest})
        held = immutable_tag(self.immutable_tags, tags)
        if held is not None:
            return error_reply(409, "TAG_IMMUTABLE", f"tag {held} is immutable")
        return self.pass_on("DELETE", target, headers, body)


@dataclass(eq=False)
class ZotPersonality(Personality):
    """Zot.

    REGISTRIES.md row "Zot": DELETE by digest → 202, removes its tags; ``405 DENIED`` for a
    child of an index; DELETE by tag → 202, untag only. Sources: project-zot/zot:
    pkg/api/routes.go, pkg/storage. Not reproduced: 409 MANIFEST_INVALID collision detection.
    """

    def delete_tag(self, repo: str, tag: str, headers: dict[str, str], target: str, body: bytes) -> Reply:
        return self.untag(repo, tag, headers)

    def delete_digest(self, repo: str, digest: str, headers: dict[str, str], target: str, body: bytes) -> Reply:
        parents = self.parents_of(repo, digest, headers)
        if parents:
            return error_reply(405, "DENIED", f"manifest {digest} is referenced by image index {parents[0]}")
        return self.pass_on("DELETE", target, headers, body)


@dataclass(eq=False)
class NexusPersonality(Personality):
    """Sonatype Nexus 3.

    REGISTRIES.md row "Nexus 3": DELETE by digest works, but recent versions leave tags
    behind (sonatype/nexus-public#925): they stay in ``tags/list`` and then resolve to 404;
    DELETE by tag is unsupported (``400 UNSUPPORTED``). Source: andrey-pohilko/registry-cli
    README.
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        self.ghosts: set[tuple[str, str]] = set()  # tags still listed after their manifest went

    def delete_tag(self, repo: str, tag: str, headers: dict[str, str], target: str, body: bytes) -> Reply:
        return unsupported(400)

    def delete_digest(self, repo: str, digest: str, headers: dict[str, str], target: str, body: bytes) -> Reply:
        tags = self.tags_of(repo, digest, headers)
        reply = self.pass_on("DELETE", target, headers, body)
        if 200 <= reply.status < 300:
            with self._state:
                self.ghosts.update((repo, t) for t in tags)
        return reply

    def on_tag_pushed(self, repo: str, tag: str) -> None:
        self.ghosts.discard((repo, tag))

    def visible_tags(self, repo: str, upstream_tags: list[str]) -> list[str]:
        with self._state:
            ghosts = {t for r, t in self.ghosts if r == repo}
        return sorted(set(super().visible_tags(repo, upstream_tags)) | ghosts)


@dataclass(eq=False)
class GhcrPersonality(Personality):
    """GitHub Container Registry, v2 side only.

    REGISTRIES.md row "GitHub (ghcr.io)": no ``_catalog`` (404); ``DELETE`` on v2 → ``405
    UNSUPPORTED``: deletion goes through the REST API (docs.github.com/rest/packages), which
    this personality does not serve. Sources: containers/skopeo#1880, werf/werf:
    pkg/docker_registry/github*.
    """

    def catalog(self, headers: dict[str, str]) -> Reply | None:
        return error_reply(404, "NOT_FOUND", "404 page not found")

    def delete_digest(self, repo: str, digest: str, headers: dict[str, str], target: str, body: bytes) -> Reply:
        return unsupported()

    def delete_tag(self, repo: str, tag: str, headers: dict[str, str], target: str, body: bytes) -> Reply:
        return unsupported()


@dataclass(eq=False)
class DockerHubPersonality(Personality):
    """Docker Hub, v2 side only.

    REGISTRIES.md row "Docker Hub": no ``_catalog``; DELETE by digest — sources disagree, so
    both: ``mode="unsupported"`` (405 UNSUPPORTED, docker/hub-feedback#1759, #2360) or
    ``mode="untagged_only"`` (current docs: 202 for an untagged manifest, ``403 DENIED`` while
    a tag points at it); a manifest GET counts as a pull (``pulls``), a HEAD does not, and GETs
    carry ``ratelimit-limit``/``ratelimit-remaining``. Sources: docker/docs registry API
    reference; werf/werf: pkg/docker_registry/dockerhub*.
    """

    mode: str = "unsupported"
    limit: int = 100
    pulls: int = 0

    def __init__(self, upstream: str, *, mode: str = "unsupported", limit: int = 100,
                 ca_file: str | None = None) -> None:
        if mode not in ("unsupported", "untagged_only"):
            raise ValueError(f"DockerHubPersonality mode must be 'unsupported' or 'untagged_only', not {mode!r}")
        super().__init__(upstream, ca_file)
        self.mode, self.limit, self.pulls = mode, limit, 0

    def catalog(self, headers: dict[str, str]) -> Reply | None:
        return unsupported(404)

    def delete_tag(self, repo: str, tag: str, headers: dict[str, str], target: str, body: bytes) -> Reply:
        return unsupported()

    def delete_digest(self, repo: str, digest: str, headers: dict[str, str], target: str, body: bytes) -> Reply:
        if self.mode == "unsupported":
            return unsupported()
        if self.tags_of(repo, digest, headers):
            return error_reply(403, "DENIED", "requested access to the resource is denied")
        return self.pass_on("DELETE", target, headers, body)

    def get_manifest(self, repo: str, ref: str, headers: dict[str, str], target: str, body: bytes) -> Reply:
        with self._state:
            self.pulls += 1
            remaining = max(0, self.limit - self.pulls)
        reply = self.pass_on("GET", target, headers, body)
        reply.headers += [("ratelimit-limit", f"{self.limit};w=21600"),
                          ("ratelimit-remaining", f"{remaining};w=21600")]
        return reply

