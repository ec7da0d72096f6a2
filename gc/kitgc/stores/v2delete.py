"""Deleting manifests through the registry API v2, adapting to the refusals it answers with.

``DELETE /v2/<name>/manifests/<digest>`` removes the manifest and every tag on it on most
registries. Where a registry refuses, what the refusal means is read from the error
``code`` and message as well as the status, so a registry behind a proxy, on a custom
domain or configured with the wrong ``REGISTRY_KIND`` is handled by what it says, not by its
name (sources: /work/shared/REGISTRIES.md, "Per registry" and "What a collector must do"):

* ``400 GOOGLE_MANIFEST_DANGLING_TAG`` ("still referenced by tag", GCR / Artifact
  Registry): the tags must go first. Each tag this run saw on the digest is HEADed just
  before, and deleted only if it still names exactly this digest: a tag that moved (to a
  manifest that is kept, perhaps) is never deleted. A tag the registry names that this run
  did not see is refused (the manifest is kept). Then the digest is tried once more. After
  one such answer the deleter untags first for the rest of the run (kind ``gcr`` starts so).
* ``404``: already gone. Quay answers it for a digest that has no live tag left, which for
  a collector is the same thing: nothing more to remove through the API.
* Held by another manifest (an index's child while the index exists):
  ``GOOGLE_MANIFEST_DANGLING_PARENT_IMAGE``, Zot ``405 DENIED``, Harbor ``412
  VIOLATE_FOREIGN_KEY_CONSTRAINT`` → :class:`~kitgc.errors.HeldByAnother`, retried by the
  executor once the rest of the plan is done.
* An immutable tag holds it: Quay ``409 TAG_IMMUTABLE``, Harbor ``412 PRECONDITION`` →
  :class:`~kitgc.errors.ManifestImmutable` (kept, not a failure).
* ``405 UNSUPPORTED`` or a bare 405: the registry refuses every deletion →
  :class:`~kitgc.errors.DeletionDisabled`, with a hint for the kind.
* Nexus may leave tags behind after a digest delete (sonatype/nexus-public#925): the
  repository's tags are re-read and leftovers are logged (``tags_left_behind``).
"""

from __future__ import annotations

import re

import structlog

from kitgc.errors import DeletionDisabled, HeldByAnother, ManifestImmutable, RegistryError
from kitgc.model import Manifest
from kitgc.registry.client import RegistryClient
from kitgc.stores.base import DeleteOutcome

log = structlog.get_logger("kitgc.store")

DISABLED_HINT = (
    "deletion is disabled on the registry (Distribution: storage.delete.enabled / "
    "REGISTRY_STORAGE_DELETE_ENABLED=true; ghcr.io and Docker Hub delete only through their REST API: "
    "set REGISTRY_KIND=ghcr or dockerhub and REGISTRY_API_TOKEN_FILE)"
)
_VENDOR_HINT = (
    "{name} does not delete through the registry API v2: its REST API is needed (set REGISTRY_KIND={kind} "
    "and REGISTRY_API_TOKEN_FILE, or registry credentials with delete rights in REGISTRY_AUTH_FILE)"
)
KIND_HINTS = {
    "distribution": DISABLED_HINT,
    "ghcr": _VENDOR_HINT.format(name="ghcr.io", kind="ghcr"),
    "dockerhub": _VENDOR_HINT.format(name="Docker Hub", kind="dockerhub"),
}
GENERIC_HINT = ("the registry refuses every DELETE (405 UNSUPPORTED): enable deletion on the registry, or give "
                "the collector credentials allowed to delete (REGISTRY_AUTH_FILE)")

DANGLING_TAG = "GOOGLE_MANIFEST_DANGLING_TAG"
# (status or None for any, code): the manifest is refused while another manifest lists it.
_HELD = frozenset({(None, "GOOGLE_MANIFEST_DANGLING_PARENT_IMAGE"), (405, "DENIED"),
                   (412, "VIOLATE_FOREIGN_KEY_CONSTRAINT")})
_IMMUTABLE = frozenset({(409, "TAG_IMMUTABLE"), (412, "PRECONDITION")})
_NAMED_TAG = re.compile(r"still referenced by tag:?\s*([\w][\w.-]{0,127})", re.IGNORECASE | re.ASCII)


def _matches(error: RegistryError, table: frozenset[tuple[int | None, str]]) -> bool:
    return error.code is not None and any(code == error.code and status in (None, error.status)
                                          for status, code in table)


def is_dangling_tag(error: RegistryError) -> bool:
    """The registry refuses the digest because a tag still points at it (GCR)."""
    return error.code == DANGLING_TAG or "still referenced by tag" in str(error).lower()


def is_disabled(error: RegistryError) -> bool:
    return error.status == 405 and error.code in (None, "UNSUPPORTED")


class V2Deleter:
    """Deletes one manifest at a time for a v2 store of kind ``kind``.

    ``untags_first`` is learned: once the registry has answered a dangling-tag refusal, the
    tags are removed before the digest for the rest of the run, saving a refused request each.
    """

    def __init__(self, client: RegistryClient, kind: str = "distribution") -> None:
        self.client = client
        self.kind = kind
        self.untags_first = kind == "gcr"

    async def delete_manifest(self, manifest: Manifest) -> DeleteOutcome:
        if self.untags_first and manifest.tags:
            await self._untag(manifest)
        try:
            outcome = await self._delete(manifest)
        except RegistryError as exc:
            if not is_dangling_tag(exc):
                raise self._classify(manifest, exc) from None
            self._learn_untags_first(exc)
            self._refuse_unseen_tag(manifest, exc)
            await self._untag(manifest)
            try:
                outcome = await self._delete(manifest)
            except RegistryError as again:
                if is_dangling_tag(again):
                    self._refuse_unseen_tag(manifest, again)
                    raise RegistryError(f"DELETE {manifest.key}: still tagged after its tags were removed "
                                        f"({again}); kept", status=again.status, code=again.code) from None
                raise self._classify(manifest, again) from None
        if self.kind == "nexus" and outcome is DeleteOutcome.DELETED and manifest.tags:
            await self._check_left_behind(manifest)
        return outcome

    def explain_refusal(self, error: RegistryError) -> str | None:
        """What a refusal means here and what to do about it, or None when it says nothing."""
        if is_disabled(error):
            return KIND_HINTS.get(self.kind, GENERIC_HINT)
        if _matches(error, _IMMUTABLE):
            return "an immutable tag holds it: the registry will not delete it until the tag's rule is lifted"
        if _matches(error, _HELD):
            return "another manifest (an index) still lists it: it can go once that one is deleted"
        if is_dangling_tag(error):
            return "a tag still points at it: its tags must be deleted first"
        return None

    # --- steps -------------------------------------------------------------------------

    async def _delete(self, manifest: Manifest) -> DeleteOutcome:
        gone = await self.client.delete_manifest(manifest.repository, manifest.digest)
        return DeleteOutcome.DELETED if gone else DeleteOutcome.ALREADY_GONE

    def _classify(self, manifest: Manifest, exc: RegistryError) -> RegistryError:
        """The refusal as the exception the executor acts on; unknown ones unchanged."""
        if is_disabled(exc):
            hint = KIND_HINTS.get(self.kind, GENERIC_HINT)
            return DeletionDisabled(f"DELETE {manifest.key}: {hint}", status=exc.status, code=exc.code)
        if _matches(exc, _IMMUTABLE):
            return ManifestImmutable(f"{exc} (an immutable tag holds it)", status=exc.status, code=exc.code)
        if _matches(exc, _HELD):
            return HeldByAnother(f"{exc} (held by an index that lists it)", status=exc.status, code=exc.code)
        return exc

    def _learn_untags_first(self, exc: RegistryError) -> None:
        if not self.untags_first:
            self.untags_first = True
            log.info("registry_untags_first", registry=self.client.address, code=exc.code,
                     detail="the registry refuses a tagged digest: tags are deleted first for the rest of the run")

    @staticmethod
    def _refuse_unseen_tag(manifest: Manifest, exc: RegistryError) -> None:
        """A tag the registry names that this run did not see may be a reference's: keep."""
        named = _NAMED_TAG.search(str(exc))
        if named is not None and named.group(1) not in manifest.tags:
            raise RegistryError(
                f"DELETE {manifest.key}: the registry says tag {named.group(1)!r} still points at it, which this "
                "run did not see; kept", status=exc.status, code=exc.code,
            ) from None

    async def _untag(self, manifest: Manifest) -> None:
        """Delete each tag of this run's scan that still names exactly ``manifest.digest``."""
        for tag in manifest.tags:
            try:
                head = await self.client.head_manifest(manifest.repository, tag)
            except RegistryError as exc:
                if exc.status == 404:
                    continue  # already gone
                raise RegistryError(f"DELETE {manifest.key}: cannot check tag {tag!r} before untagging: {exc}",
                                    status=exc.status, code=exc.code) from None
            if head.digest is None:
                raise RegistryError(f"DELETE {manifest.key}: the registry does not say which digest tag {tag!r} "
                                    "names; not untagging it, kept")
            if head.digest != manifest.digest:
                log.info("tag_moved_kept", repository=manifest.repository, tag=tag, digest=manifest.digest,
                         now=head.digest)
                continue
            try:
                await self.client.delete_tag(manifest.repository, tag)
            except RegistryError as exc:
                raise RegistryError(f"DELETE {manifest.key}: cannot untag {tag!r} first: {exc}", status=exc.status,
                                    code=exc.code) from None
            log.debug("tag_deleted", repository=manifest.repository, tag=tag, digest=manifest.digest)

    async def _check_left_behind(self, manifest: Manifest) -> None:
        """Nexus may keep listing a deleted manifest's tags: say so (the deletion stands)."""
        try:
            left = sorted(set(manifest.tags) & set(await self.client.tags(manifest.repository)))
            if not left:
                return
            try:
                resolves = (await self.client.head_manifest(manifest.repository, left[0])).digest is not None
            except RegistryError as exc:
                if exc.status != 404:
                    raise
                resolves = False
        except RegistryError as exc:
            log.debug("tags_left_behind_unchecked", repository=manifest.repository, error=str(exc))
            return
        log.warning("tags_left_behind", repository=manifest.repository, digest=manifest.digest, tags=left,
                    resolves=resolves,
                    detail="the registry still lists tags of a deleted manifest (sonatype/nexus-public#925)")
