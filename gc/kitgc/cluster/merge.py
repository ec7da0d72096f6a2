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
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeVar

from kitgc.model import ClusterSnapshot, ObjectRef

T = TypeVar("T")


def _union(groups: Iterable[Iterable[T]]) -> tuple[T, ...]:
    return tuple(dict.fromkeys(item for group in groups for item in group))


def merge_snapshots(first: ClusterSnapshot, *later: ClusterSnapshot) -> ClusterSnapshot:
    """Everything any of the snapshots holds, each distinct item once, first-seen order."""
    snaps = (first, *later)
    return ClusterSnapshot(
        references=_union(s.references for s in snaps),
        kits=_union(s.kits for s in snaps),
        kit_uses=_union(s.kit_uses for s in snaps),
        unparsable=_union(s.unparsable for s in snaps),
        integrations=max(s.integrations for s in snaps),
        objects_read=max(s.objects_read for s in snaps),
        owners=_first_owners(s.owners for s in snaps),
        foreign_kits=_union(s.foreign_kits for s in snaps),
        clusters=_union(s.clusters for s in snaps),
        folded=max(s.folded for s in snaps),
    )


def _first_owners(groups: Iterable[Mapping[ObjectRef, ObjectRef]]) -> dict[ObjectRef, ObjectRef]:
    """Every child of any read, with the owner the first read that saw it gave it."""
    out: dict[ObjectRef, ObjectRef] = {}
    for owners in groups:
        for child, owner in owners.items():
            out.setdefault(child, owner)
    return out
