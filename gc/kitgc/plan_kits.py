"""Kit decisions: which IntegrationKits go, and so which kits' images stay protected.

Decided before any manifest, because a staying kit protects its image, its base image and
its root image. Incremental builds chain kits through ``status.baseImage``; deleting a
parent whose image a staying kit builds on breaks the next build (camel-k issue 4007). So
the "base of a staying kit" rule is computed to a fixed point: a chain of unused kits goes
together, and one used kit keeps its whole ancestry.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Sequence
from datetime import datetime

from kitgc.imageref import ImageRef
from kitgc.model import PRUNABLE_KIT_TYPES, Action, Kit, KitDecision, KitUse, Policy, Reference
from kitgc.plan_text import age_text, last_segment, min_age_text, some
from kitgc.protect import TagResolver, effective_tag

KitKey = tuple[str, str]


def kit_key(kit: Kit) -> KitKey:
    return (kit.namespace, kit.name)


class _KitImages:
    """What a kit's own image is: digests (given or resolved), or an unresolved name:tag."""

    def __init__(self, kit: Kit, resolver: TagResolver) -> None:
        self.digests: set[str] = set()
        self.unresolved_tags: set[tuple[str, str]] = set()
        for ref in (kit.image, kit.spec_image):
            if ref is None:
                continue
            found = resolver.digests(ref)
            self.digests.update(found)
            if not found:
                self.unresolved_tags.add((ref.repository, effective_tag(ref)))


def _keep_reason(kit: Kit, policy: Policy, now: datetime) -> str | None:
    """Why ``kit`` stays regardless of what uses it, or None."""
    if not policy.prune_kits:
        return "PRUNE_KITS is off"
    if kit.kit_type == "external":
        return "external kit"
    if kit.kit_type == "synthetic":
        return "synthetic kit"
    if kit.kit_type not in PRUNABLE_KIT_TYPES:
        return f"kit type unknown ({kit.kit_type!r})" if kit.kit_type else "kit type unknown"
    if kit.building:
        return f"still building (phase {kit.phase or 'not set'})"
    if kit.created > now - policy.min_age:
        return f"younger than MIN_AGE {min_age_text(policy.min_age)} (created {age_text(now - kit.created)} ago)"
    return None


def _builds_on(base: ImageRef, candidate: Kit, images: _KitImages, resolver: TagResolver) -> bool:
    """Whether a base/root image reference may be ``candidate``'s image.

    By digest when both sides have one; otherwise conservatively by repository name (the
    last path segment is the kit's repository name), since a tag may have moved on.
    """
    same_repo = last_segment(base.repository) == candidate.repository_name
    if base.digest:
        return base.digest in images.digests or (not images.digests and same_repo)
    return same_repo or bool(images.digests.intersection(resolver.digests(base)))


def decide_kits(
    kits: Sequence[Kit],
    uses: Sequence[KitUse],
    references: Sequence[Reference],
    resolver: TagResolver,
    policy: Policy,
    now: datetime,
) -> tuple[KitDecision, ...]:
    """One decision per kit, sorted by namespace and name.

    ``references`` must not contain the kits' own images (a kit would keep itself).
    """
    groups: dict[KitKey, list[Kit]] = defaultdict(list)
    for kit in kits:
        if kit not in groups[kit_key(kit)]:
            groups[kit_key(kit)].append(kit)

    users: dict[KitKey, list[str]] = defaultdict(list)
    for use in uses:
        users[(use.kit_namespace, use.kit_name)].append(str(use.user))
    by_digest: dict[str, set[str]] = defaultdict(set)
    by_tag: dict[tuple[str, str], set[str]] = defaultdict(set)
    for ref in references:
        for digest in resolver.digests(ref.image):
            by_digest[digest].add(str(ref.source))
        if not ref.image.digest:
            by_tag[(ref.image.repository, effective_tag(ref.image))].add(str(ref.source))

    decisions: dict[Kit, KitDecision] = {}
    candidates: list[Kit] = []
    images: dict[Kit, _KitImages] = {}
    for key in sorted(groups):
        group = groups[key]
        for kit in group:
            images[kit] = _KitImages(kit, resolver)
            reason = _keep_reason(kit, policy, now)
            if reason is None and len(group) > 1:
                reason = "listed more than once in the cluster snapshot"
            if reason is None and users.get(key):
                reason = f"used by {some(sorted(set(users[key])))}"
            if reason is None:
                sources = set().union(*(by_digest.get(d, set()) for d in images[kit].digests))
                sources |= set().union(*(by_tag.get(t, set()) for t in images[kit].unresolved_tags))
                if sources:
                    reason = f"image referenced by {some(sorted(sources))}"
            if reason is None:
                candidates.append(kit)
            else:
                decisions[kit] = KitDecision(kit, Action.KEEP, reason)

    # Fixed point: every staying kit, in a fixed order, pulls in the candidates it builds on.
    by_name: dict[str, list[Kit]] = defaultdict(list)
    by_image: dict[str, list[Kit]] = defaultdict(list)
    for kit in candidates:
        by_name[kit.repository_name].append(kit)
        for digest in sorted(images[kit].digests):
            by_image[digest].append(kit)
    remaining = set(candidates)
    queue = deque(sorted(decisions, key=kit_key))
    while queue and remaining:
        staying = queue.popleft()
        for label, base in (("base image", staying.base_image), ("root image", staying.root_image)):
            if base is None:
                continue
            possible = list(by_name.get(last_segment(base.repository), []))
            possible += [k for d in resolver.digests(base) for k in by_image.get(d, [])]
            for kit in sorted(set(possible) & remaining, key=kit_key):
                if _builds_on(base, kit, images[kit], resolver):
                    remaining.discard(kit)
                    decisions[kit] = KitDecision(kit, Action.KEEP, f"{label} of {staying.ref}")
                    queue.append(kit)

    for kit in remaining:
        decisions[kit] = KitDecision(
            kit,
            Action.DELETE,
            f"unused for {age_text(now - kit.created)}: no Integration uses it, no kit builds on it",
        )
    return tuple(decisions[kit] for key in sorted(groups) for kit in groups[key])
