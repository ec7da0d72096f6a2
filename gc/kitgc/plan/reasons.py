"""Why a manifest or a kit is kept or deleted, as data.

The planner states its evidence once, as :class:`Reason` values: what kind of reason it is,
which objects hold the image (each a :class:`Subject`: API kind, namespace, name, the field
that names the image, and the chain of owners above it), and the few facts the wording
needs (a tag, a phase, an age). Everything that shows a decision — the console table, the
summary sentence, ``kitgc explain``, the JSON report, the logs — renders these values
(:mod:`kitgc.plan.text`) and never parses a sentence back. So a table can say "its
IntegrationKit" for exactly the row's own kit, and explain can follow a base image to the
kit that needs it and on to the Integration and Deployment that run it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from kitgc.identity import KitKey, ManifestKey
from kitgc.model import ObjectRef


class ReasonKind(StrEnum):
    """Every reason the planner gives; the value is what the JSON report writes."""

    # A manifest is kept because ...
    REFERENCED = "referenced"  # a workload, Integration or Build names it (by digest or tag)
    KEPT_BY_USER = "kept_by_user"  # it matches a KEEP_IMAGES pattern (``message``: the pattern)
    KIT_IMAGE = "kit_image"  # it is the image of a kit that stays
    BASE_IMAGE = "base_image"  # a kit that stays builds on it
    ROOT_IMAGE = "root_image"
    KIT_BUILDING = "kit_building"  # its repository belongs to a kit still building
    INDEX_CHILD = "index_child"  # an index that stays lists it
    READ_PROBLEM = "read_problem"  # its repository was not read completely
    # The registry refused to delete it for good (an immutable tag) in a recent run; ``since``:
    # when it first refused, ``message``: what it said. Tried again after REFUSAL_RETRY.
    REGISTRY_REFUSES = "registry_refuses"
    TOO_YOUNG = "too_young"  # unreferenced for less than MIN_AGE
    OUT_OF_SCOPE = "out_of_scope"  # not a kit repository of the organizations: never touched
    # A manifest is deleted or deferred because ...
    UNREFERENCED = "unreferenced"
    OVER_MAX_DELETIONS = "over_max_deletions"
    CHILD_OF_DEFERRED = "child_of_deferred"
    HELD = "held"  # the run may delete nothing (an unparsable reference)
    HELD_BY_UNIT = "held_by_unit"  # deleted only with others (an ImageStreamTag's history), and one stays
    # An attachment (signature, attestation, SBOM, referrer) takes its image's decision.
    KEPT_WITH_IMAGE = "attached_to_kept"
    DELETED_WITH_IMAGE = "attached_to_deleted"
    DEFERRED_WITH_IMAGE = "attached_to_deferred"
    # How old an unreferenced manifest is, by the best evidence (listed after the headline).
    AGE_FROM_KIT = "age_from_kit"
    AGE_FROM_STATE = "age_from_state"
    AGE_FROM_THIS_RUN = "age_from_this_run"
    # An IntegrationKit is kept because ...
    PRUNE_KITS_OFF = "prune_kits_off"
    EXTERNAL_KIT = "external_kit"
    SYNTHETIC_KIT = "synthetic_kit"
    UNKNOWN_KIT_TYPE = "unknown_kit_type"
    STILL_BUILDING = "still_building"
    KIT_TOO_YOUNG = "kit_too_young"
    LISTED_TWICE = "listed_twice"
    USED = "used"  # an Integration uses it
    # KEPT_BY_USER too: its own image matches a KEEP_IMAGES pattern
    IMAGE_REFERENCED = "image_referenced"  # a workload names its image
    BASE_OF_KIT = "base_of_kit"  # a kit that stays builds on it
    ROOT_OF_KIT = "root_of_kit"
    KIT_HELD = "kit_held"
    # ... or deleted because
    UNUSED = "unused"


# Order in which a manifest's reasons are listed: the first is the headline.
_RANK = {
    ReasonKind.REFERENCED: 0,
    ReasonKind.KEPT_BY_USER: 0,
    ReasonKind.BASE_IMAGE: 1,
    ReasonKind.KIT_IMAGE: 1,
    ReasonKind.ROOT_IMAGE: 1,
    ReasonKind.KIT_BUILDING: 2,
    ReasonKind.INDEX_CHILD: 3,
    ReasonKind.KEPT_WITH_IMAGE: 3,
    ReasonKind.READ_PROBLEM: 4,
    ReasonKind.REGISTRY_REFUSES: 4,
}

# Reasons that mean "something in the cluster refers to this manifest" (kitgc_manifests_referenced);
# INDEX_CHILD only counts when its index is referenced (see protect.referenced_keys).
PROTECTING = frozenset(_RANK) - {ReasonKind.READ_PROBLEM, ReasonKind.KEPT_WITH_IMAGE, ReasonKind.KEPT_BY_USER,
                                 ReasonKind.REGISTRY_REFUSES}


@dataclass(frozen=True, slots=True)
class Subject:
    """An object that holds an image: which object, the field naming the image, its owners.

    ``chain`` lists the owners above ``ref`` by ``metadata.ownerReferences``, nearest first
    (a Pod's ReplicaSet, then its Deployment, then the Integration).
    """

    ref: ObjectRef
    field: str = ""
    chain: tuple[ObjectRef, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.ref.kind, "namespace": self.ref.namespace, "name": self.ref.name}
        if self.ref.cluster:
            out["cluster"] = self.ref.cluster
        if self.field:
            out["field"] = self.field
        if self.chain:
            out["owners"] = [{"kind": o.kind, "namespace": o.namespace, "name": o.name} for o in self.chain]
        return out


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason, with the facts its wording needs; ``str()`` gives the plain sentence."""

    kind: ReasonKind
    subjects: tuple[Subject, ...] = ()
    tag: str | None = None  # the tag a reference pulls, or the tag a read problem is about
    phase: str | None = None
    age: timedelta | None = None
    min_age: timedelta | None = None
    since: datetime | None = None
    index: ManifestKey | None = None
    limit: int | None = None
    message: str = ""
    kit_type: str = ""

    @property
    def rank(self) -> int:
        return _RANK.get(self.kind, 9)

    @property
    def kit(self) -> KitKey | None:
        """The IntegrationKit this reason is about, when its first subject is one."""
        if self.subjects and self.subjects[0].ref.kind == "IntegrationKit":
            ref = self.subjects[0].ref
            return KitKey(ref.namespace or "", ref.name)
        return None

    def __str__(self) -> str:
        from kitgc.plan.text import render

        return render(self)

    def as_dict(self) -> dict[str, Any]:
        """The reason for machines (the JSON report): kind, text, subjects and facts."""
        out: dict[str, Any] = {"kind": self.kind.value, "text": str(self)}
        if self.subjects:
            out["subjects"] = [s.as_dict() for s in self.subjects]
        for name in ("tag", "phase", "message", "kit_type"):
            value = getattr(self, name)
            if value:
                out[name] = value
        if self.age is not None:
            out["age_seconds"] = int(self.age.total_seconds())
        if self.min_age is not None:
            out["min_age_seconds"] = int(self.min_age.total_seconds())
        if self.since is not None:
            out["since"] = self.since.isoformat()
        if self.index is not None:
            out["index"] = str(self.index)
        if self.limit is not None:
            out["limit"] = self.limit
        return out


MAX_CHAIN = 8  # owners followed above a subject (real chains are 3 or 4 long)


def sort_reasons(reasons: set[Reason] | list[Reason]) -> list[Reason]:
    """Headline first: references, then kit images, building kits, index parents, problems.

    Within a rank the order is the sentences' alphabetical order (by digest before by tag,
    then by the holder's kind, namespace and name), computed from the data, not the words.
    """
    return sorted(reasons, key=_order)


def _order(r: Reason) -> tuple[Any, ...]:
    holders = [(s.ref.kind, s.ref.namespace or "", s.ref.name, s.ref.cluster, s.field) for s in r.subjects]
    return (r.rank, r.kind.value, r.tag is not None, r.tag or "", holders, r.message, str(r.index or ""))
