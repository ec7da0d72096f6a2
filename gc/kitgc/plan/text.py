"""The wording of reasons: the one place a :class:`~kitgc.plan.reasons.Reason` becomes text.

Reasons are what an operator reads in the report and in ``kitgc explain`` when asking "why
was this deleted?", so durations are rounded to one human unit and digests are shortened
the way people quote them. A :class:`View` adapts the wording to where it is shown (the
console table calls a row's own kit "its IntegrationKit" and Knative kinds by the names
people use) without any caller rewriting the sentence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from kitgc.identity import ManifestKey
from kitgc.model import ObjectRef
from kitgc.plan.reasons import Reason, ReasonKind

_UNITS = (("d", 86400), ("h", 3600), ("m", 60))


def age_text(age: timedelta) -> str:
    """An age rounded down to its largest unit: ``3d``, ``5h``, ``12m``, ``40s``.

    Negative ages (a timestamp after ``now``, i.e. clock skew) read as ``0s``.
    """
    secs = max(0, int(age.total_seconds()))
    for unit, size in _UNITS:
        if secs >= size:
            return f"{secs // size}{unit}"
    return f"{secs}s"


def min_age_text(min_age: timedelta) -> str:
    """MIN_AGE exactly as an operator would have written it: ``24h``, ``90s``, ``7d``, ``0``.

    Exact, not rounded (a rounded grace period would misstate the rule). Whole days are
    shown as days only from 2 days on, so the default reads ``24h`` like the docs say.
    """
    secs = int(min_age.total_seconds())
    if secs <= 0:
        return "0"
    if secs % 86400 == 0 and secs >= 2 * 86400:
        return f"{secs // 86400}d"
    if secs % 3600 == 0:
        return f"{secs // 3600}h"
    if secs % 60 == 0:
        return f"{secs // 60}m"
    return f"{secs}s"


def some(items: list[str], limit: int = 3) -> str:
    """``a, b, c and 2 more``: a list that stays readable however long it gets."""
    shown = ", ".join(items[:limit])
    return f"{shown} and {len(items) - limit} more" if len(items) > limit else shown


def index_text(key: ManifestKey) -> str:
    """``org/repo@sha256:0123456789ab``: an index as reasons name it."""
    return key.short()


# Kinds as people say them, for views that want it (the console table, explain).
FRIENDLY_KINDS = {
    "Service.serving.knative.dev": "Knative Service",
    "Revision.serving.knative.dev": "Knative Revision",
    "Configuration.serving.knative.dev": "Knative Configuration",
}


@dataclass(frozen=True)
class View:
    """How a reason is worded where it is shown.

    ``own_kit``: the name of the kit whose row this is; a subject that is that kit reads
    "its IntegrationKit". ``friendly_kinds``: Knative kinds as people say them.
    """

    own_kit: str | None = None
    friendly_kinds: bool = False

    def object(self, ref: ObjectRef) -> str:
        if self.own_kit is not None and ref.kind == "IntegrationKit" and ref.name == self.own_kit:
            return "its IntegrationKit"
        kind = FRIENDLY_KINDS.get(ref.kind, ref.kind) if self.friendly_kinds else ref.kind
        text = f"{kind} {ref.namespace}/{ref.name}" if ref.namespace else f"{kind} {ref.name}"
        return f"{text} in cluster {ref.cluster}" if ref.cluster else text


PLAIN = View()


def _objects(r: Reason, view: View) -> str:
    return some(sorted({view.object(s.ref) for s in r.subjects}))


def _first(r: Reason, view: View) -> str:
    return view.object(r.subjects[0].ref) if r.subjects else "an object no longer listed"


def _age(r: Reason) -> str:
    return age_text(r.age or timedelta(0))


def _min_age(r: Reason) -> str:
    return min_age_text(r.min_age or timedelta(0))


def _unreferenced(r: Reason, view: View) -> str:
    text = f"unreferenced for {_age(r)}"
    if r.subjects:
        verb = "is" if len({s.ref for s in r.subjects}) == 1 else "are"
        text += f"; {_objects(r, view)} {verb} being deleted"
    return text


def _referenced(r: Reason, view: View) -> str:
    head = f"tag {r.tag} referenced by" if r.tag else "referenced by"
    return f"{head} {_first(r, view)}"


_ATTACHMENT_WORDS = {"signature": "signature", "attestation": "attestation", "sbom": "SBOM",
                     "referrers_index": "referrers index", "referrer": "referrer"}


def _attachment(r: Reason) -> str:
    return _ATTACHMENT_WORDS.get(r.message, "attachment")


def _index(r: Reason) -> str:
    return index_text(r.index) if r.index else "?"


def _problem(r: Reason, view: View) -> str:
    return f"repository not read completely: {r.message}" + (f" (tag {r.tag})" if r.tag else "")


_K = ReasonKind
_WORDING: dict[ReasonKind, Callable[[Reason, View], str]] = {
    _K.REFERENCED: _referenced,
    _K.KEPT_BY_USER: lambda r, v: f"kept by KEEP_IMAGES (pattern {r.message})",
    _K.KIT_IMAGE: lambda r, v: f"image of {_first(r, v)}",
    _K.BASE_IMAGE: lambda r, v: f"base image of {_first(r, v)}",
    _K.ROOT_IMAGE: lambda r, v: f"root image of {_first(r, v)}",
    _K.KIT_BUILDING: lambda r, v: f"{_first(r, v)} is still building (phase {r.phase or 'not set'})",
    _K.INDEX_CHILD: lambda r, v: f"child of kept index {index_text(r.index) if r.index else '?'}",
    _K.READ_PROBLEM: _problem,
    _K.REGISTRY_REFUSES: lambda r, v: (
        f"the registry refuses to delete it ({r.message or 'immutable tag'}) since "
        f"{r.since.isoformat() if r.since else '?'}; tried again later"),
    _K.TOO_YOUNG: lambda r, v: f"younger than MIN_AGE {_min_age(r)} (unreferenced for {_age(r)})",
    _K.OUT_OF_SCOPE: lambda r, v: f"never touched: {r.message}",
    _K.UNREFERENCED: _unreferenced,
    _K.OVER_MAX_DELETIONS: lambda r, v: (
        f"unreferenced for {_age(r)}, over MAX_DELETIONS {r.limit}, deferred to a later run"),
    _K.CHILD_OF_DEFERRED: lambda r, v: (
        f"child of deferred index {index_text(r.index) if r.index else '?'}, deferred with it"),
    _K.HELD: lambda r, v: f"unreferenced for {_age(r)}, not deleted: {r.message}",
    _K.HELD_BY_UNIT: lambda r, v: (
        f"unreferenced, but goes only with {r.message}, whose history holds an image that stays"),
    _K.KEPT_WITH_IMAGE: lambda r, v: f"{_attachment(r)} of kept image {_index(r)}",
    _K.DELETED_WITH_IMAGE: lambda r, v: f"{_attachment(r)} of {_index(r)}, deleted with it",
    _K.DEFERRED_WITH_IMAGE: lambda r, v: f"{_attachment(r)} of deferred image {_index(r)}, deferred with it",
    _K.AGE_FROM_KIT: lambda r, v: (
        f"age from the creationTimestamp of {_first(r, v)} ({r.since.isoformat() if r.since else '?'})"),
    _K.AGE_FROM_STATE: lambda r, v: f"age from the first-seen state ({r.since.isoformat() if r.since else '?'})",
    _K.AGE_FROM_THIS_RUN: lambda r, v: "first seen unreferenced in this run",
    _K.PRUNE_KITS_OFF: lambda r, v: "PRUNE_KITS is off",
    _K.EXTERNAL_KIT: lambda r, v: "external kit",
    _K.SYNTHETIC_KIT: lambda r, v: "synthetic kit",
    _K.UNKNOWN_KIT_TYPE: lambda r, v: f"kit type unknown ({r.kit_type!r})" if r.kit_type else "kit type unknown",
    _K.STILL_BUILDING: lambda r, v: f"still building (phase {r.phase or 'not set'})",
    _K.KIT_TOO_YOUNG: lambda r, v: f"younger than MIN_AGE {_min_age(r)} (created {_age(r)} ago)",
    _K.LISTED_TWICE: lambda r, v: "listed more than once in the cluster snapshot",
    _K.USED: lambda r, v: f"used by {_objects(r, v)}",
    _K.IMAGE_REFERENCED: lambda r, v: f"image referenced by {_objects(r, v)}",
    _K.BASE_OF_KIT: lambda r, v: f"base image of {_first(r, v)}",
    _K.ROOT_OF_KIT: lambda r, v: f"root image of {_first(r, v)}",
    _K.KIT_HELD: lambda r, v: f"not deleted: {r.message}",
    _K.UNUSED: lambda r, v: f"unused for {_age(r)}: no Integration uses it, no kit builds on it",
}


def render(reason: Reason, view: View = PLAIN) -> str:
    """The sentence for ``reason`` as ``view`` wants it."""
    return _WORDING[reason.kind](reason, view)
