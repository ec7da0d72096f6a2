"""Kit decisions: which IntegrationKits go, and so which kits' images stay protected.

Decided before any manifest, because a staying kit protects its image, its base image and
its root image. Incremental builds chain kits through ``status.baseImage``; deleting a
parent whose image a staying kit builds on breaks the next build (camel-k issue 4007). So
the "base of a staying kit" rule is computed to a fixed point: a chain of unused kits goes
together, and one used kit keeps its whole ancestry.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from kitgc.identity import KitKey, last_segment
from kitgc.imageref import ImageRef
from kitgc.model import PRUNABLE_KIT_TYPES, Action, Kit, KitDecision, KitUse, ObjectRef, Policy, Reference
from kitgc.plan.protect import Keeper, Subjects, TagResolver
from kitgc.plan.reasons import Reason, ReasonKind, Subject


def kit_key(kit: Kit) -> KitKey:
    return kit.key


class _KitImages:
    """What a kit's own image is: digests (given or resolved), or an unresolved name:tag."""

    # Slotted, with tuples (one or two entries): one per kit, and two sets each were some
    # 20 MB of a plan's working memory at 32,000 kits.
    __slots__ = ("digests", "unresolved_tags")

    def __init__(self, kit: Kit, resolver: TagResolver) -> None:
        digests: list[str] = []
        unresolved: list[tuple[str, str]] = []
        for ref in (kit.image, kit.spec_image):
            if ref is None:
                continue
            found = resolver.digests(ref)
            digests.extend(found)
            if not found:
                unresolved.append((ref.repository, ref.effective_tag))
        self.digests: tuple[str, ...] = tuple(dict.fromkeys(digests))
        self.unresolved_tags: tuple[tuple[str, str], ...] = tuple(dict.fromkeys(unresolved))


def _keep_reason(kit: Kit, policy: Policy, now: datetime) -> Reason | None:
    """Why ``kit`` stays regardless of what uses it, or None."""
    if not policy.prune_kits:
        return Reason(ReasonKind.PRUNE_KITS_OFF)
    if kit.kit_type == "external":
        return Reason(ReasonKind.EXTERNAL_KIT)
    if kit.kit_type == "synthetic":
        return Reason(ReasonKind.SYNTHETIC_KIT)
    if kit.kit_type not in PRUNABLE_KIT_TYPES:
        return Reason(ReasonKind.UNKNOWN_KIT_TYPE, kit_type=kit.kit_type)
    if kit.building:
        return Reason(ReasonKind.STILL_BUILDING, phase=kit.phase)
    if kit.created > now - policy.min_age:
        return Reason(ReasonKind.KIT_TOO_YOUNG, min_age=policy.min_age, age=now - kit.created)
    return None


def _builds_on(base: ImageRef, candidate: Kit, images: _KitImages, resolver: TagResolver) -> bool:
    """Whether a base/root image reference may be ``candidate``'s image.

    By digest when both sides have one; otherwise conservatively by repository name (the
    last path segment is the kit's repository name), since a tag may have moved on.
    """
    same_repo = last_segment(base.repository) == candidate.repository_name
    if base.digest:
        return base.digest in images.digests or (not images.digests and same_repo)
    return same_repo or any(d in images.digests for d in resolver.digests(base))


def decide_kits(
    kits: Sequence[Kit],
    uses: Sequence[KitUse],
    references: Sequence[Reference],
    resolver: TagResolver,
    policy: Policy,
    now: datetime,
    owners: Mapping[ObjectRef, ObjectRef] | None = None,
    anchors: Sequence[Kit] = (),
    keeper: Keeper | None = None,
) -> tuple[KitDecision, ...]:
    """One decision per kit, sorted by namespace and name.

    ``references`` must not contain the kits' own images (a kit would keep itself).
    ``owners`` (child -> owner) gives the subjects of reasons their owner chains.
    ``anchors`` are kits that stay whatever happens (other clusters' kits): the kits they
    build on stay too. ``keeper`` keeps a kit whose own image matches KEEP_IMAGES.
    """
    groups: dict[KitKey, list[Kit]] = defaultdict(list)
    for kit in kits:
        if kit not in groups[kit_key(kit)]:
            groups[kit_key(kit)].append(kit)
    holders = _Holders(uses, references, resolver, Subjects(owners or {}))
    images = {kit: _KitImages(kit, resolver) for group in groups.values() for kit in group}

    decisions: dict[Kit, KitDecision] = {}
    candidates: list[Kit] = []
    for key in sorted(groups):
        group = groups[key]
        for kit in group:
            reason = _keep_reason(kit, policy, now)
            if reason is None and keeper is not None:
                reason = keeper.kit(kit, resolver)
            if reason is None and len(group) > 1:
                reason = Reason(ReasonKind.LISTED_TWICE)
            if reason is None:
                reason = holders.reason(key, images[kit])
            if reason is None:
                candidates.append(kit)
            else:
                decisions[kit] = KitDecision(kit, Action.KEEP, reason)

    remaining = _keep_what_staying_kits_build_on(decisions, candidates, images, resolver, anchors)
    for kit in remaining:
        decisions[kit] = KitDecision(kit, Action.DELETE, Reason(ReasonKind.UNUSED, age=now - kit.created))
    return tuple(decisions[kit] for key in sorted(groups) for kit in groups[key])


_Named = tuple[ObjectRef, str] | dict[ObjectRef, str]  # (holder, field), or holder -> field


def _name(index: dict[Any, _Named], key: Any, holder: ObjectRef, field: str) -> None:
    """Record that ``holder`` names ``key`` in ``field`` (the first field it was seen in stays)."""
    found = index.get(key)
    if found is None:
        index[key] = (holder, field)
    elif isinstance(found, tuple):
        if found[0] != holder:
            index[key] = {found[0]: found[1], holder: field}
    else:
        found.setdefault(holder, field)


def _holders_into(out: dict[ObjectRef, str], named: _Named | None) -> None:
    """``out.update`` with what :func:`_name` recorded, whichever form it took."""
    if isinstance(named, tuple):
        out[named[0]] = named[1]
    elif named:
        out.update(named)


class _Holders:
    """Who uses each kit (Integrations) and who names each image (workloads), as subjects."""

    def __init__(self, uses: Sequence[KitUse], references: Sequence[Reference], resolver: TagResolver,
                 subjects: Subjects) -> None:
        # Holders are kept as (object, field) and become Subjects (with owner chains) only for
        # the kits whose reason names them: tens of thousands of pods hold images, few hold kits'.
        self._subjects = subjects
        # The user of each kit, or its users when several (rare): a dict per kit was some
        # 6 MB of every plan at 32,000 kits.
        self.users: dict[KitKey, ObjectRef | dict[ObjectRef, str]] = {}
        for use in uses:
            key = KitKey(use.kit_namespace, use.kit_name)
            found = self.users.setdefault(key, use.user)
            if found is not use.user and found != use.user:
                if isinstance(found, ObjectRef):
                    found = self.users[key] = {found: ""}
                found.setdefault(use.user, "")
        # Who names each digest and each tag: its one holder as a pair, a dict only when
        # several (a dict per digest was some 10 MB of every plan at 50,000 images).
        self.by_digest: dict[str, _Named] = {}
        self.by_tag: dict[tuple[str, str], _Named] = {}
        for ref in references:
            for digest in resolver.digests(ref.image):
                _name(self.by_digest, digest, ref.source, ref.field)
            if not ref.image.by_digest:
                _name(self.by_tag, (ref.image.repository, ref.image.effective_tag), ref.source, ref.field)

    def reason(self, key: KitKey, images: _KitImages) -> Reason | None:
        """Why the kit is in use: an Integration uses it, or a workload names its image."""
        users = self.users.get(key)
        if users is not None:
            return Reason(ReasonKind.USED, self._sorted(users if isinstance(users, dict) else {users: ""}))
        sources: dict[ObjectRef, str] = {}
        for d in images.digests:
            _holders_into(sources, self.by_digest.get(d))
        for t in images.unresolved_tags:
            _holders_into(sources, self.by_tag.get(t))
        return Reason(ReasonKind.IMAGE_REFERENCED, self._sorted(sources)) if sources else None

    def _sorted(self, found: dict[ObjectRef, str]) -> tuple[Subject, ...]:
        return tuple(self._subjects.of(ref, found[ref]) for ref in sorted(found, key=str))


def _keep_what_staying_kits_build_on(
    decisions: dict[Kit, KitDecision], candidates: Sequence[Kit], images: dict[Kit, _KitImages],
    resolver: TagResolver, anchors: Sequence[Kit] = (),
) -> set[Kit]:
    """The fixed point: every staying kit, in a fixed order, keeps the candidates it builds on.

    Decides those as kept (base or root image of the staying kit) and returns the rest.
    """
    by_name: dict[str, list[Kit]] = defaultdict(list)
    by_image: dict[str, list[Kit]] = defaultdict(list)
    for kit in candidates:
        by_name[kit.repository_name].append(kit)
        for digest in sorted(images[kit].digests):
            by_image[digest].append(kit)
    remaining = set(candidates)
    queue = deque([*sorted(decisions, key=kit_key), *sorted(anchors, key=lambda k: (k.cluster, *k.key))])
    while queue and remaining:
        staying = queue.popleft()
        for label, base, field in ((ReasonKind.BASE_OF_KIT, staying.base_image, "status.baseImage"),
                                   (ReasonKind.ROOT_OF_KIT, staying.root_image, "status.rootImage")):
            if base is None:
                continue
            possible = list(by_name.get(last_segment(base.repository), []))
            possible += [k for d in resolver.digests(base) for k in by_image.get(d, [])]
            for kit in sorted(set(possible) & remaining, key=kit_key):
                if _builds_on(base, kit, images[kit], resolver):
                    remaining.discard(kit)
                    decisions[kit] = KitDecision(kit, Action.KEEP, Reason(label, (Subject(staying.ref, field),)))
                    queue.append(kit)
    return remaining
