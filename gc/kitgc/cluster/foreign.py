"""References from other clusters (``REFERENCE_KUBECONFIG``), counted like this cluster's.

Camel K's documented way from dev to prod (``kamel promote``, the GitOps trait) copies a dev
Integration's kit image, by digest, into the production cluster's Integration, and both
operators push to one registry. A collector that sees only dev would delete what production
runs. So every context of ``REFERENCE_KUBECONFIG`` is read with all sources, completely or
not at all, and what it holds protects exactly like what this cluster holds — with two
differences that keep the other cluster untouched: its IntegrationKits are never deleted
(they become *foreign kits*, which keep their images and the local kits they build on, as a
staying kit does), and its Integrations' kit uses name kits of that cluster, not of this one.
Every object read there carries the context's name, so reasons say which cluster holds it.
"""

from __future__ import annotations

from dataclasses import replace

from kitgc.model import ClusterSnapshot, ObjectRef, Reference, UnparsableReference


class _Stamp:
    """ObjectRefs of one cluster with its name set, each built once."""

    def __init__(self, cluster: str) -> None:
        self.cluster = cluster
        self._seen: dict[ObjectRef, ObjectRef] = {}

    def __call__(self, ref: ObjectRef) -> ObjectRef:
        stamped = self._seen.get(ref)
        if stamped is None:
            stamped = self._seen[ref] = replace(ref, cluster=self.cluster)
        return stamped


def from_cluster(snapshot: ClusterSnapshot, cluster: str) -> ClusterSnapshot:
    """``snapshot``, read in context ``cluster``, as references and foreign kits of that cluster."""
    stamp = _Stamp(cluster)
    return ClusterSnapshot(
        references=tuple(Reference(r.image, stamp(r.source), r.field) for r in snapshot.references),
        kits=(),
        kit_uses=(),  # they name kits of that cluster, which are foreign kits here
        unparsable=tuple(UnparsableReference(u.raw, stamp(u.source), u.field, u.error) for u in snapshot.unparsable),
        integrations=snapshot.integrations,
        objects_read=snapshot.objects_read,
        owners={stamp(child): stamp(owner) for child, owner in snapshot.owners.items()},
        foreign_kits=tuple(replace(k, cluster=cluster) for k in (*snapshot.kits, *snapshot.foreign_kits)),
        clusters=(cluster,),
        folded=snapshot.folded,
    )


def with_references_from(local: ClusterSnapshot, *others: ClusterSnapshot) -> ClusterSnapshot:
    """This cluster's snapshot plus the other clusters' references, foreign kits and owners.

    ``integrations`` stays this cluster's: the wrong-cluster guard asks whether *this*
    cluster shows Camel K at all.
    """
    if not others:
        return local
    owners = dict(local.owners)
    for other in others:
        owners.update(other.owners)
    return replace(
        local,
        references=local.references + tuple(r for o in others for r in o.references),
        unparsable=local.unparsable + tuple(u for o in others for u in o.unparsable),
        objects_read=local.objects_read + sum(o.objects_read for o in others),
        owners=owners,
        foreign_kits=local.foreign_kits + tuple(k for o in others for k in o.foreign_kits),
        clusters=local.clusters + tuple(c for o in others for c in o.clusters),
        folded=local.folded + sum(o.folded for o in others),
    )
