"""Which manifests something refers to: the part of planning that must never be wrong.

A digest that a workload or a staying kit names is protected in every in-scope repository,
whatever host the reference was written with: pods may pull through a mirror, a proxy or a
second address of the same registry, so a host or path mismatch must never unprotect an
image. A tag is resolved to the digest it points at *now* in the inventory. A building
kit protects its whole repository (its image is being pushed and nothing names it yet),
and a kept index keeps its children, because deleting a child breaks the index. A manifest
matching a KEEP_IMAGES pattern stays too (:class:`Keeper`), but only what the cluster refers
to counts as referenced (:func:`referenced_keys`).
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable, Mapping, Sequence

from kitgc.identity import ManifestKey, last_segment
from kitgc.imageref import ImageRef
from kitgc.keep import KeepPattern, first_match
from kitgc.model import Kit, Manifest, ObjectRef, Reference
from kitgc.plan.reasons import MAX_CHAIN, PROTECTING, Reason, ReasonKind, Subject, sort_reasons


class TagResolver:
    """Digests a reference stands for, looked up in the inventory.

    The repository is matched by path alone (host ignored). Should the inventory ever list
    one tag on two digests of a repository, both count: the safe reading.

    Indexed by tag first: a tag is nearly always one build's own (one repository, one
    digest), so its entry is the manifest itself, with nothing allocated for it; a tag several
    repositories share (``latest``) gets a map by repository. Keyed by (repository, tag)
    pairs, the index cost a tuple per tag (5 MB at 100,000 tags), held for the whole run
    (a deleting run's recheck plans with it).
    """

    def __init__(self, manifests: Iterable[Manifest]) -> None:
        self._tags: dict[str, Manifest | dict[str, str | tuple[str, ...]]] = {}
        for m in manifests:
            for tag in m.tags:
                seen = self._tags.get(tag)
                if seen is None:
                    self._tags[tag] = m
                    continue
                if isinstance(seen, Manifest):
                    if seen.repository == m.repository and seen.digest == m.digest:
                        continue
                    seen = self._tags[tag] = {seen.repository: seen.digest}
                _add(seen, m.repository, m.digest)

    def digests(self, ref: ImageRef) -> tuple[str, ...]:
        """The reference's own digest, or those its tag points at now (possibly none)."""
        if ref.digest is not None:
            return (ref.digest,)
        seen = self._tags.get(ref.effective_tag)
        if seen is None:
            return ()
        if isinstance(seen, Manifest):
            return (seen.digest,) if seen.repository == ref.repository else ()
        found = seen.get(ref.repository, ())
        return (found,) if isinstance(found, str) else found


def _add(by_repository: dict[str, str | tuple[str, ...]], repository: str, digest: str) -> None:
    """One more digest a tag points at in ``repository``: a bare digest, a sorted tuple when several."""
    known = by_repository.get(repository)
    if known is None:
        by_repository[repository] = digest
        return
    both = (known,) if isinstance(known, str) else known
    if digest not in both:
        by_repository[repository] = tuple(sorted((*both, digest)))


class Subjects:
    """Subjects with their owner chains, each chain followed once however often it is used."""

    def __init__(self, owners: Mapping[ObjectRef, ObjectRef]) -> None:
        self._owners = owners
        self._chains: dict[ObjectRef, tuple[ObjectRef, ...]] = {}

    def of(self, ref: ObjectRef, field: str = "") -> Subject:
        return Subject(ref, field, self.chain(ref))

    def chain(self, ref: ObjectRef) -> tuple[ObjectRef, ...]:
        """The owners above ``ref``, nearest first, stopping at a loop or after MAX_CHAIN.

        Chains that end at a real root are remembered for every object on them, so the
        thousands of pods of one ReplicaSet follow its chain once.
        """
        cached = self._chains.get(ref)
        if cached is not None:
            return cached
        path: list[ObjectRef] = []
        seen = {ref}
        current = self._owners.get(ref)
        rooted = True
        while current is not None:
            if current in seen or len(path) >= MAX_CHAIN:
                rooted = False
                break
            known = self._chains.get(current)
            if known is not None:  # the rest is known: take it up to a loop back to what we passed
                path.append(current)
                for above in known:
                    if above in seen or len(path) >= MAX_CHAIN:
                        rooted = False
                        break
                    path.append(above)
                break
            path.append(current)
            seen.add(current)
            current = self._owners.get(current)
        chain = tuple(path)
        self._chains[ref] = chain
        if rooted:
            for i, owner in enumerate(path):
                self._chains.setdefault(owner, chain[i + 1:])
        return chain


def reference_reason(ref: Reference, subjects: Subjects) -> Reason:
    """``referenced by Deployment shop/orders`` or ``tag 3 referenced by Pod a/b``, as data."""
    tag = None if ref.image.by_digest else ref.image.effective_tag
    return Reason(ReasonKind.REFERENCED, (subjects.of(ref.source, ref.field),), tag=tag)


_KIT_FIELDS = (
    (ReasonKind.KIT_IMAGE, "image", "status.image"),
    (ReasonKind.KIT_IMAGE, "spec_image", "spec.image"),
    (ReasonKind.BASE_IMAGE, "base_image", "status.baseImage"),
    (ReasonKind.ROOT_IMAGE, "root_image", "status.rootImage"),
)


def kit_images(kit: Kit) -> list[tuple[ReasonKind, str, ImageRef]]:
    """The images a kit names: (what the image is to the kit, the field, the reference)."""
    return [(kind, path, ref) for kind, attr, path in _KIT_FIELDS if (ref := getattr(kit, attr)) is not None]


class Keeper:
    """KEEP_IMAGES over one inventory: the manifests and the kits the operator keeps.

    Patterns with a host compare it with ``registry``, the host the inventory was read from.
    """

    def __init__(self, patterns: Sequence[KeepPattern], registry: str, manifests: Iterable[Manifest]) -> None:
        self._patterns = tuple(patterns)
        self._registry = registry
        self._manifests = {m.key: m for m in manifests} if self._patterns else {}

    def manifest(self, m: Manifest) -> Reason | None:
        """``kept by KEEP_IMAGES (pattern …)`` when ``m`` matches a pattern."""
        return self._reason(self._registry, m.repository, m.tags, m.digest)

    def kit(self, kit: Kit, resolver: TagResolver) -> Reason | None:
        """The same reason for a kit whose own image (status.image, spec.image) matches.

        The image matches as written, or as the inventory's manifest it names (on the
        inventory's host, with that manifest's tags and digest), whichever host it was
        written with.
        """
        for ref in (kit.image, kit.spec_image) if self._patterns else ():
            if ref is None:
                continue
            tags = (ref.tag,) if ref.tag else () if ref.digest else (ref.effective_tag,)
            reason = self._reason(ref.registry, ref.repository, tags, ref.digest or "")
            for digest in resolver.digests(ref):
                m = self._manifests.get(ManifestKey(ref.repository, digest))
                if reason is None and m is not None:
                    reason = self.manifest(m)
            if reason is not None:
                return reason
        return None

    def _reason(self, host: str, repository: str, tags: Iterable[str], digest: str) -> Reason | None:
        if not self._patterns:
            return None
        found = first_match(self._patterns, host, repository, tags, digest)
        return Reason(ReasonKind.KEPT_BY_USER, message=found.text) if found is not None else None


def protect(
    manifests: Sequence[Manifest],
    references: Sequence[Reference],
    staying: Sequence[Kit],
    resolver: TagResolver,
    owners: Mapping[ObjectRef, ObjectRef] | None = None,
    keeper: Keeper | None = None,
) -> dict[ManifestKey, list[Reason]]:
    """Reasons each protected manifest must stay, headline first; unprotected ones are absent.

    ``manifests`` are the in-scope manifests, ``references`` the cluster's references
    (without the kits' own, which ``staying`` carries once kit decisions are made);
    ``keeper`` adds KEEP_IMAGES.
    """
    # Reasons are collected by identity, not hashed: each is built once (one per holder, field
    # and tag), and tens of thousands of them would otherwise be hashed field by field.
    subjects = Subjects(owners or {})
    present = {m.digest for m in manifests}  # a reason is built only for what it can protect here
    by_digest: dict[str, dict[int, Reason]] = defaultdict(dict)
    made: dict[tuple[ObjectRef, str, bool, str], Reason] = {}
    for ref in references:
        digests = [d for d in resolver.digests(ref.image) if d in present]
        if digests:
            key = (ref.source, ref.field, ref.image.by_digest, ref.image.effective_tag)
            reason = made.get(key)
            if reason is None:
                reason = made[key] = reference_reason(ref, subjects)
            for digest in digests:
                by_digest[digest][id(reason)] = reason

    by_repo_name: dict[str, list[Reason]] = defaultdict(list)
    for kit in staying:
        for kind, path, image in kit_images(kit):
            reason = Reason(kind, (Subject(kit.ref, path),))
            for digest in resolver.digests(image):
                by_digest[digest][id(reason)] = reason
        if kit.building:
            by_repo_name[kit.repository_name].append(
                Reason(ReasonKind.KIT_BUILDING, (Subject(kit.ref),), phase=kit.phase))

    found: dict[ManifestKey, list[Reason]] = {}
    for m in manifests:
        reasons = [*by_digest.get(m.digest, {}).values(), *by_repo_name.get(last_segment(m.repository), ())]
        kept = keeper.manifest(m) if keeper is not None else None
        if kept is not None:
            reasons.append(kept)
        if reasons:
            found[m.key] = reasons

    _keep_children(found, manifests)
    return {key: sort_reasons(reasons) for key, reasons in found.items()}


def _keep_children(found: dict[ManifestKey, list[Reason]], manifests: Sequence[Manifest]) -> None:
    """A kept index keeps its children, transitively (an index may list indexes)."""
    by_key = {m.key: m for m in manifests}
    queue = deque(sorted(found))
    while queue:
        index = by_key[queue.popleft()]
        for child in index.children:
            child_key = index.key.child(child)
            if child_key not in by_key:
                continue
            if child_key not in found:
                found[child_key] = []
                queue.append(child_key)
            found[child_key].append(Reason(ReasonKind.INDEX_CHILD, index=index.key))


def referenced_keys(protected: Mapping[ManifestKey, Sequence[Reason]]) -> set[ManifestKey]:
    """The protected manifests something in the cluster refers to (kitgc_manifests_referenced).

    A reference, a staying kit or a building kit, or an index so referenced listing them;
    KEEP_IMAGES alone, or an index kept by it alone, makes nothing referenced.
    """
    found = {key for key, reasons in protected.items()
             if any(r.kind in PROTECTING and r.kind is not ReasonKind.INDEX_CHILD for r in reasons)}
    children: dict[ManifestKey, list[ManifestKey]] = defaultdict(list)
    for key, reasons in protected.items():
        for r in reasons:
            if r.kind is ReasonKind.INDEX_CHILD and r.index is not None:
                children[r.index].append(key)
    queue = deque(sorted(found))
    while queue:
        for child in children.get(queue.popleft(), ()):
            if child not in found:
                found.add(child)
                queue.append(child)
    return found
