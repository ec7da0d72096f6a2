"""What a deleting run's later read may leave out, page by page, because the merge would.

A deleting run reads the cluster again before deleting and once more after deleting kits,
and merges each later read with what it already holds (:func:`kitgc.cluster.merge.merge_snapshots`:
a union of references, kits and kit uses, and each child's owner as the first read gave it).
So whatever a later read finds that equals what the earlier snapshot holds is dropped by the
merge: an IntegrationKit or a kit use read again unchanged, a kit's own reference read
again (every other kind's are folded against the earlier read's examples), the owner link of
an object the earlier read had already linked. Held until the read ends, those duplicates were most of a
later read's memory at scale (a link and two object names for each of 80,000 ReplicaSets and
32,000 Deployments, a record for each of 50,000 kits and kit uses), all of it on top of the
plan being carried out. Dropped as each page is read, they are never held; the merged
snapshot is the same item for item.

The one thing a later read drops that the merge would not: the owner links of Pods,
ReplicaSets, Jobs, ReplicationControllers and Knative Revisions (:data:`LINK_PRUNED_KINDS`)
that hold nothing the read keeps on their own page. A Pod's link explains only its own
references (nothing is owned by a Pod). A ReplicaSet's link could also explain a Pod the read
keeps whose ReplicaSet keeps nothing itself: the relevance filter keeps a reference when it
names a candidate image's repository, and a Pod's images are its ReplicaSet's template's, so
that needs the Pod to name an image its template does not (a mutating webhook). Then that
reason's owner chain stops at the ReplicaSet. Owner links explain; they never protect
(:func:`kitgc.plan.planner._speaks_for_a_kit` reads only the links of the kit-owned kinds,
which are never dropped here), so no decision changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kitgc.cluster.fold import LINK_PRUNED_KINDS, NEVER_FOLDED, drop_idle_links, examples_of
from kitgc.cluster.found import Found
from kitgc.imageref import ImageRef
from kitgc.model import ClusterSnapshot, Kit, KitUse, ObjectRef, Reference


@dataclass(frozen=True)
class Earlier:
    """The snapshot a later read will be merged with, indexed for dropping what it holds."""

    owners: Mapping[ObjectRef, ObjectRef]
    kits: frozenset[Kit]
    kit_uses: frozenset[KitUse]
    examples: Mapping[ImageRef, int]  # references per image it holds, for the later read's folding
    # The references of the kinds never folded (a kit's own: IntegrationKits, and the
    # BuildConfigs and ImageStreams an S2I kit owns): read again, they are not folded away
    # against ``examples`` as every other kind's are, so they are dropped here when equal.
    unfolded: frozenset[Reference]

    @classmethod
    def of(cls, snapshot: ClusterSnapshot) -> Earlier:
        return cls(snapshot.owners, frozenset(snapshot.kits), frozenset(snapshot.kit_uses),
                   examples_of(snapshot.references),
                   frozenset(r for r in snapshot.references if r.source.kind in NEVER_FOLDED))

    def drop_known(self, found: Found) -> None:
        """Drop from ``found``, in place, what the merge with the earlier snapshot would drop,
        and the idle links of the many-object kinds (see the module docstring)."""
        if found.references and self.unfolded:
            short = {id(r) for r in found.short}  # a bare name stays: it may resolve anew
            found.references = [r for r in found.references if id(r) in short or r not in self.unfolded]
        if found.kits:
            found.kits = [k for k in found.kits if k not in self.kits]
        if found.kit_uses:
            found.kit_uses = [u for u in found.kit_uses if u not in self.kit_uses]
        for child in [c for c in found.owners if c in self.owners]:
            del found.owners[child]
        drop_idle_links(found, LINK_PRUNED_KINDS)
