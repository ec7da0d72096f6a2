"""Union of cluster snapshots taken at different moments of one run (pure).

The operator keeps working while a run plans: a kit marked Ready and unused when the first
snapshot was taken may be adopted by an Integration a moment later. So just before deleting,
the run reads the cluster again and plans once more with the union of the reads: a
reference seen in any read protects, a kit use seen in any read protects, and a kit that
looks different between reads (say ``Build Running`` in one, ``Ready`` in the other) is
listed twice, which the planner answers by keeping it ("listed more than once"). So
whatever any read saw as building or in use stays.

Owners only explain, they protect nothing: a child seen with different owners in different
reads (adopted, or deleted and recreated under the same name in between) keeps the owner
of the first read that saw it, and children seen in any read are all kept.

What a later read adds is usually nothing, or a few items: the merge then hands back the
first snapshot's own tuples and owner map (read-only, as every snapshot's are) instead of
copies of them, so that the recheck after deleting kits does not hold the run's snapshot twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeVar

from kitgc.model import ClusterSnapshot, ObjectRef

T = TypeVar("T")


def _union(first: tuple[T, ...], later: Iterable[tuple[T, ...]]) -> tuple[T, ...]:
    """``first``, then what ``later`` adds, each distinct item once; ``first`` itself when
    that is nothing new (and ``first`` holds no item twice)."""
    merged = dict.fromkeys(first)
    unique = len(merged) == len(first)
    for group in later:
        merged.update(dict.fromkeys(group))
    return first if unique and len(merged) == len(first) else tuple(merged)


def merge_snapshots(first: ClusterSnapshot, *later: ClusterSnapshot) -> ClusterSnapshot:
    """Everything any of the snapshots holds, each distinct item once, first-seen order."""
    snaps = (first, *later)
    return ClusterSnapshot(
        references=_union(first.references, (s.references for s in later)),
        kits=_union(first.kits, (s.kits for s in later)),
        kit_uses=_union(first.kit_uses, (s.kit_uses for s in later)),
        unparsable=_union(first.unparsable, (s.unparsable for s in later)),
        integrations=max(s.integrations for s in snaps),
        objects_read=max(s.objects_read for s in snaps),
        owners=_first_owners(first.owners, (s.owners for s in later)),
        foreign_kits=_union(first.foreign_kits, (s.foreign_kits for s in later)),
        clusters=_union(first.clusters, (s.clusters for s in later)),
        folded=max(s.folded for s in snaps),
    )


def _first_owners(first: Mapping[ObjectRef, ObjectRef],
                  later: Iterable[Mapping[ObjectRef, ObjectRef]]) -> Mapping[ObjectRef, ObjectRef]:
    """Every child of any read, with the owner the first read that saw it gave it; ``first``
    itself when no later read saw a child it has not."""
    new = [(child, owner) for owners in later for child, owner in owners.items() if child not in first]
    if not new:
        return first
    out = dict(first)
    for child, owner in new:
        out.setdefault(child, owner)
    return out
