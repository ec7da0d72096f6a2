"""Which manifests something refers to: the part of planning that must never be wrong.

A digest that a workload or a staying kit names is protected in every in-scope repository,
whatever host the reference was written with: pods may pull through a mirror, a proxy or a
second address of the same registry, so a host or path mismatch must never unprotect an
image. A tag is resolved to the digest it points at *now* in the inventory. A building
kit protects its whole repository (its image is being pushed and nothing names it yet),
and a kept index keeps its children, because deleting a child breaks the index.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable, Sequence

from kitgc.imageref import ImageRef
from kitgc.model import Kit, Manifest, Reference
from kitgc.plan_text import last_segment, short_digest

# Reason categories, in the order a person should read them (the first is the headline).
REFERENCE, KIT_IMAGE, BUILDING, CHILD, PROBLEM = range(5)
Reason = tuple[int, str]


def effective_tag(ref: ImageRef) -> str:
    """The tag a reference pulls: a reference with neither tag nor digest means ``latest``."""
    return ref.tag or "latest"


class TagResolver:
    """Digests a reference stands for, looked up in the inventory.

    The repository is matched by path alone (host ignored). Should the inventory ever list
    one tag on two digests of a repository, both count: the safe reading.
    """

    def __init__(self, manifests: Iterable[Manifest]) -> None:
        self._tags: dict[tuple[str, str], set[str]] = defaultdict(set)
        for m in manifests:
            for tag in m.tags:
                self._tags[(m.repository, tag)].add(m.digest)

    def digests(self, ref: ImageRef) -> tuple[str, ...]:
        """The reference's own digest, or those its tag points at now (possibly none)."""
        if ref.digest:
            return (ref.digest,)
        return tuple(sorted(self._tags.get((ref.repository, effective_tag(ref)), ())))


def reference_text(ref: Reference) -> str:
    """``referenced by Deployment shop/orders`` or ``tag 3 referenced by Pod a/b``."""
    if ref.image.digest:
        return f"referenced by {ref.source}"
    return f"tag {effective_tag(ref.image)} referenced by {ref.source}"


def kit_images(kit: Kit) -> list[tuple[str, ImageRef]]:
    """The images a kit names, with what they are to it (for reasons)."""
    named = (
        ("image", kit.image),
        ("image", kit.spec_image),
        ("base image", kit.base_image),
        ("root image", kit.root_image),
    )
    return [(label, ref) for label, ref in named if ref is not None]


def building_text(kit: Kit) -> str:
    return f"{kit.ref} is still building (phase {kit.phase or 'not set'})"


def protect(
    manifests: Sequence[Manifest],
    references: Sequence[Reference],
    staying: Sequence[Kit],
    resolver: TagResolver,
) -> dict[str, list[Reason]]:
    """Reasons each protected manifest (by key) must stay; unprotected manifests are absent.

    ``manifests`` are the in-scope manifests, ``references`` the cluster's references
    (without the kits' own, which ``staying`` carries once kit decisions are made).
    """
    by_digest: dict[str, set[Reason]] = defaultdict(set)
    for ref in references:
        for digest in resolver.digests(ref.image):
            by_digest[digest].add((REFERENCE, reference_text(ref)))

    by_repo_name: dict[str, set[Reason]] = defaultdict(set)
    for kit in staying:
        for label, image in kit_images(kit):
            for digest in resolver.digests(image):
                by_digest[digest].add((KIT_IMAGE, f"{label} of {kit.ref}"))
        if kit.building:
            by_repo_name[kit.repository_name].add((BUILDING, building_text(kit)))

    found: dict[str, set[Reason]] = {}
    for m in manifests:
        reasons = by_digest.get(m.digest, set()) | by_repo_name.get(last_segment(m.repository), set())
        if reasons:
            found[m.key] = reasons

    # A kept index keeps its children, transitively (an index may list indexes).
    by_key = {m.key: m for m in manifests}
    queue = deque(sorted(found))
    while queue:
        index = by_key[queue.popleft()]
        for child in index.children:
            child_key = f"{index.repository}@{child}"
            if child_key not in by_key:
                continue
            if child_key not in found:
                found[child_key] = set()
                queue.append(child_key)
            found[child_key].add((CHILD, f"child of kept index {index.repository}@{short_digest(index.digest)}"))
    return {key: sorted(reasons) for key, reasons in found.items()}
