"""Fold the references that add nothing a decision reads: a few examples per image, counted.

What protects a manifest is *that* something names its image, not how many things do. Two
hundred thousand Pods name a few thousand images, and holding one record per Pod, each with
its owner link, is what made a run's memory grow with the cluster rather than with the
registry. So, per image reference (the same :class:`~kitgc.imageref.ImageRef`, host and tag
or digest as written), the first :data:`EXAMPLES` references from the many-object kinds are
kept, as evidence a person can follow (a Pod, with its owner chain), and the others are only
counted. Decisions cannot change: every image that was named is still named, by at least one
reference of the same kind group.

Never folded, because a decision reads *which* object names the image: IntegrationKits, and
the BuildConfigs and ImageStreams an S2I kit owns (a kit's own images protect only while it
stays; see :func:`kitgc.plan.planner._foreign_references`), and every kind outside
:data:`FOLDED_KINDS`. A Pod all of whose references were folded drops its owner link too
(Pods own nothing, so no chain passes through one); every other object keeps its link.
"""

from __future__ import annotations

from kitgc.cluster import sources as S
from kitgc.cluster.found import Found
from kitgc.cluster.objects import kind_name
from kitgc.imageref import ImageRef
from kitgc.model import ObjectRef

EXAMPLES = 3  # references kept per image, as evidence; the rest are counted
POD = kind_name(S.PODS.kind, S.PODS.group)
FOLDED_KINDS = frozenset(
    kind_name(s.kind, s.group)
    for s in (S.PODS, S.REPLICASETS, S.JOBS, S.REPLICATION_CONTROLLERS, S.KNATIVE_REVISIONS)
)


class Folder:
    """Folds the references of successive :class:`Found` batches against one running tally."""

    def __init__(self, examples: int = EXAMPLES) -> None:
        self.examples = max(1, examples)
        self._kept: dict[ImageRef, int] = {}
        self.folded = 0  # references counted, not kept

    def __call__(self, found: Found) -> Found:
        """``found``, in place, with the references beyond each image's examples folded away."""
        if not found.references:
            return found
        kept = []
        dropped: set[ObjectRef] = set()
        holding: set[ObjectRef] = set()
        for ref in found.references:
            if ref.source.kind not in FOLDED_KINDS:
                kept.append(ref)
                continue
            seen = self._kept.get(ref.image, 0)
            if seen < self.examples:
                self._kept[ref.image] = seen + 1
                kept.append(ref)
                holding.add(ref.source)
            else:
                self.folded += 1
                dropped.add(ref.source)
        if len(kept) == len(found.references):
            return found
        found.references = kept
        short_sources = {r.source for r in found.short}  # a bare name may still resolve: keep its chain
        for source in dropped - holding - short_sources:
            if source.kind == POD:
                found.owners.pop(source, None)
        return found
