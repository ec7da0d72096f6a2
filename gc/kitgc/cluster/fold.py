"""Fold the references that add nothing a decision reads: a few examples per image, counted.

What protects a manifest is *that* something names its image, not how many things do. Two
hundred thousand Pods name a few thousand images, and holding one record per Pod, each with
its owner link, is what made a run's memory grow with the cluster rather than with the
registry. So, per image reference (the same :class:`~kitgc.imageref.ImageRef`, host and tag
or digest as written), the first :data:`EXAMPLES` references are kept, as evidence a person
can follow (a Pod, with its owner chain up to its Integration), and the others are only
counted. Decisions cannot change: every image that was named is still named.

Never folded, because a decision reads *which* object names the image: IntegrationKits, and
the BuildConfigs and ImageStreams an S2I kit owns (:data:`KIT_OWNED_KINDS`: a kit's own
images protect only while it stays; see :func:`kitgc.plan.planner._foreign_references`).

Owner links are what explain a kept reference (Pod -> ReplicaSet -> Deployment ->
Integration). Those of the many-object kinds that own nothing a person asks about
(:data:`LINK_PRUNED_KINDS`: Pods, ReplicaSets, Jobs, ReplicationControllers, Revisions) are
dropped once no kept reference's chain passes through them: a Pod that keeps no reference
(folded, or let go by a later read's relevance filter) at once, page by page, the rest when
the whole cluster has been read (:func:`prune_owner_links`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from kitgc.cluster import sources as S
from kitgc.cluster.found import Found
from kitgc.cluster.objects import KIT_OWNED_KINDS, kind_name
from kitgc.imageref import ImageRef
from kitgc.model import ObjectRef, Reference
from kitgc.plan.reasons import MAX_CHAIN  # the owners a reason follows above its subject

# References kept per image, as evidence; the rest are counted. One: read first, a Pod's,
# with its owner chain (ReplicaSet, Deployment, Integration) it explains the whole chain,
# and at 16x today's bench scene each further example was some 15 MB of a deleting run's
# sweep (its reference, its object's name and owner links), for a reason that names more.
EXAMPLES = 1
POD = kind_name(S.PODS.kind, S.PODS.group)
PODS_ONLY = frozenset({POD})
NEVER_FOLDED = frozenset({"IntegrationKit", *KIT_OWNED_KINDS})
LINK_PRUNED_KINDS = frozenset(
    kind_name(s.kind, s.group)
    for s in (S.PODS, S.REPLICASETS, S.JOBS, S.REPLICATION_CONTROLLERS, S.KNATIVE_REVISIONS)
)


class Folder:
    """Folds the references of successive :class:`Found` batches against one running tally."""

    def __init__(self, examples: int = EXAMPLES, before: Mapping[ImageRef, int] | None = None) -> None:
        self.examples = max(1, examples)
        self._kept: dict[ImageRef, int] = {}
        # Examples an earlier read of this run already holds (read-only, shared by folders):
        # a later read is merged with it, so an image named there needs no example here.
        self._before: Mapping[ImageRef, int] = before if before is not None else {}
        self.folded = 0  # references counted, not kept

    def __call__(self, found: Found) -> Found:
        """``found``, in place, with the references beyond each image's examples folded away."""
        if not found.references:
            return found
        kept = []
        for ref in found.references:
            if ref.source.kind in NEVER_FOLDED:
                kept.append(ref)
                continue
            seen = self._kept.get(ref.image)
            if seen is None:
                seen = self._before.get(ref.image, 0)
            if seen < self.examples:
                self._kept[ref.image] = seen + 1
                kept.append(ref)
            else:
                self.folded += 1
        if len(kept) == len(found.references):
            return found
        found.references = kept
        drop_idle_links(found)
        return found


def drop_idle_links(found: Found, kinds: frozenset[str] = PODS_ONLY) -> None:
    """Drop, in place, the owner links of the ``kinds`` objects in ``found`` that hold nothing it keeps.

    Pods own nothing, so no chain passes through one: a Pod's link explains only its own
    references, and :func:`prune_owner_links` would drop it once the read ends. Dropped per
    page, two hundred thousand Pods' links are never held at once: those whose references
    folding or a later read's relevance filter (:mod:`kitgc.sweep.relevance`) let go. A Pod
    with a bare name (it may still resolve), a kit use or an unparsable value keeps its link.
    A later read drops the idle links of every :data:`LINK_PRUNED_KINDS` kind this way
    (:mod:`kitgc.cluster.later` says what that costs).
    """
    held = {r.source for r in found.references}
    held.update(r.source for r in found.short)
    held.update(u.user for u in found.kit_uses)
    held.update(u.source for u in found.unparsable)
    for child in [c for c in found.owners if c.kind in kinds and c not in held]:
        del found.owners[child]


def examples_of(references: Iterable[Reference]) -> dict[ImageRef, int]:
    """How many references name each image, for a later read's :class:`Folder` (``before``)."""
    out: dict[ImageRef, int] = {}
    for ref in references:
        if ref.source.kind not in NEVER_FOLDED:
            out[ref.image] = out.get(ref.image, 0) + 1
    return out


def prune_owner_links(owners: Mapping[ObjectRef, ObjectRef],
                      holders: Iterable[ObjectRef]) -> dict[ObjectRef, ObjectRef]:
    """``owners`` without the links of :data:`LINK_PRUNED_KINDS` objects that are on no
    chain above any of ``holders`` (the sources of kept references, kit users, unparsable
    values); every other link stays."""
    needed: set[ObjectRef] = set()
    for holder in holders:
        current: ObjectRef | None = holder
        for _ in range(MAX_CHAIN + 1):
            if current is None or current in needed:
                break
            needed.add(current)
            current = owners.get(current)
    return {child: owner for child, owner in owners.items()
            if child.kind not in LINK_PRUNED_KINDS or child in needed}
