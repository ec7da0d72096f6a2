"""The pure planner: what to keep, what to delete, and why, for every manifest and kit.

No I/O and no clock: ``now`` is an argument, so a plan can be reproduced exactly from its
inputs (the report carries them) and the rules tested exhaustively. The order of work is
the order of safety:

1. kit decisions (:mod:`kitgc.plan_kits`), since a staying kit protects its images;
2. protection (:mod:`kitgc.protect`): references, staying kits' images, building kits'
   repositories, children of kept indexes, and repositories not read completely;
3. the rest are candidates; the age evidence (the kit's ``creationTimestamp``, else the
   first-seen state, else "now") decides whether they are old enough;
4. at most MAX_DELETIONS of the oldest are deleted, the rest deferred; finally no child is
   deleted while an index listing it stays, which would break that index.

Anything the planner cannot be sure of is kept: unknown kit phases count as building, a
tag listed twice protects both digests, a reference whose host differs still protects.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from kitgc.model import (
    Action,
    ClusterSnapshot,
    Inventory,
    Kit,
    KitDecision,
    Manifest,
    ManifestDecision,
    Plan,
    Policy,
    Reference,
    State,
    state_key,
)
from kitgc.plan_kits import decide_kits
from kitgc.plan_text import age_text, last_segment, min_age_text, short_digest, some
from kitgc.protect import PROBLEM, Reason, TagResolver, protect
from kitgc.scope import in_scope


def plan(inventory: Inventory, cluster: ClusterSnapshot, policy: Policy, state: State, now: datetime) -> Plan:
    """Decide every in-scope manifest and every kit; see the module docstring for the rules.

    Decisions come sorted (manifests by repository and digest, kits by namespace and name)
    so that equal inputs give equal plans whatever order the inputs were listed in.
    """
    manifests = _in_scope_manifests(inventory, policy)
    resolver = TagResolver(inventory.manifests)
    references = _foreign_references(cluster)
    hold = _hold_reason(cluster)

    kits = decide_kits(cluster.kits, cluster.kit_uses, references, resolver, policy, now)
    if hold:
        kits = tuple(
            KitDecision(d.kit, Action.KEEP, f"not deleted: {hold}") if d.action is Action.DELETE else d for d in kits
        )
    staying = [d.kit for d in kits if d.action is not Action.DELETE]
    deleted = [d.kit for d in kits if d.action is Action.DELETE]

    protected = protect(manifests, references, staying, resolver)
    problems = _problems(inventory)
    decisions: dict[str, ManifestDecision] = {}
    candidates: list[Manifest] = []
    unreferenced: list[Manifest] = []  # observed unreferenced this run: their first-seen times are kept
    for m in manifests:
        reasons: list[Reason] = [*protected.get(m.key, []), *((PROBLEM, t) for t in problems.get(m.repository, []))]
        if m.key not in protected:
            unreferenced.append(m)
        if reasons:
            texts = tuple(text for _, text in reasons)
            decisions[m.key] = ManifestDecision(m, Action.KEEP, texts[0], referenced=m.key in protected, reasons=texts)
        else:
            candidates.append(m)

    evidence = _Evidence(cluster.kits, state, now)
    eligible: list[tuple[datetime, Manifest]] = []
    for m in candidates:
        since = evidence.since(m)
        age = now - since
        if age < policy.min_age:
            text = f"younger than MIN_AGE {min_age_text(policy.min_age)} (unreferenced for {age_text(age)})"
            decisions[m.key] = ManifestDecision(
                m, Action.KEEP, text, evidence_since=since, reasons=(text, evidence.text(m))
            )
        else:
            eligible.append((since, m))

    eligible.sort(key=lambda e: (e[0], e[1].repository, e[1].digest))
    capacity = 0 if hold else max(0, policy.max_deletions)
    going = _kits_by_repository_name(deleted)
    for position, (since, m) in enumerate(eligible):
        text = f"unreferenced for {age_text(now - since)}"
        if position < capacity:
            action = Action.DELETE
            owners = going.get(last_segment(m.repository))
            if owners:
                text += f"; {some(owners)} {'is' if len(owners) == 1 else 'are'} being deleted"
        elif hold:
            action, text = Action.DEFER, f"{text}, not deleted: {hold}"
        else:
            action, text = Action.DEFER, f"{text}, over MAX_DELETIONS {policy.max_deletions}, deferred to a later run"
        decisions[m.key] = ManifestDecision(m, action, text, evidence_since=since, reasons=(text, evidence.text(m)))

    _keep_children_of_staying_indexes(decisions, manifests)

    # The best evidence is carried over, not only the first sighting: a manifest deferred by
    # MAX_DELETIONS whose kit is deleted in this run must not start its grace period anew.
    first_seen = {}
    for m in unreferenced:
        key = state_key(m.repository, m.digest)
        first_seen[key] = min(state.first_seen.get(key, now), evidence.since(m))
    return Plan(
        manifests=tuple(decisions[m.key] for m in manifests),
        kits=kits,
        state=State(first_seen=dict(sorted(first_seen.items()))),
    )


def _in_scope_manifests(inventory: Inventory, policy: Policy) -> list[Manifest]:
    """In-scope manifests, one per key, sorted.

    The inventory should hold nothing else, but the planner filters anyway: its scope rule
    is the last line of defence. A manifest listed twice is merged (tags and children
    united), so that no tag or child is lost to a duplicate.
    """
    merged: dict[str, Manifest] = {}
    for m in inventory.manifests:
        if not in_scope(m.repository, policy.organizations):
            continue
        seen = merged.get(m.key)
        if seen is None:
            merged[m.key] = m
        else:
            merged[m.key] = replace(
                seen,
                tags=tuple(dict.fromkeys(seen.tags + m.tags)),
                children=tuple(dict.fromkeys(seen.children + m.children)),
            )
    return sorted(merged.values(), key=lambda m: (m.repository, m.digest))


def _foreign_references(cluster: ClusterSnapshot) -> list[Reference]:
    """References other than the known kits' own images.

    The cluster reader may report IntegrationKits' images as references too. A kit's own
    images must protect only while the kit stays (else no kit could ever be pruned), so
    those of kits in the snapshot are left to the kit decisions; a reference from a kit the
    snapshot does not list stays an ordinary reference (the safe side).
    """
    known = {(k.namespace, k.name) for k in cluster.kits}
    return [
        r
        for r in cluster.references
        if not (r.source.kind == "IntegrationKit" and (r.source.namespace, r.source.name) in known)
    ]


def _hold_reason(cluster: ClusterSnapshot) -> str:
    """Why nothing may be deleted at all, or "".

    An unparsable image reference may name anything; the run is meant to abort before
    planning, and the planner refuses to delete on its own too, should it be asked anyway.
    """
    if not cluster.unparsable:
        return ""
    first = cluster.unparsable[0]
    return (
        f"{len(cluster.unparsable)} image reference(s) in the cluster could not be parsed "
        f"(first: {first.raw!r} in {first.source} {first.field})"
    )


def _problems(inventory: Inventory) -> dict[str, list[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    for p in inventory.problems:
        tag = f" (tag {p.tag})" if p.tag else ""
        found[p.repository].add(f"repository not read completely: {p.message}{tag}")
    return {repo: sorted(texts) for repo, texts in found.items()}


def _kits_by_repository_name(kits: Sequence[Kit]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for kit in sorted(kits, key=lambda k: (k.namespace, k.name)):
        found[kit.repository_name].append(str(kit.ref))
    return found


class _Evidence:
    """The best evidence of how long an unreferenced manifest has been unreferenced.

    The youngest kit pushing to the repository (several kits of one name in different
    namespaces share a repository; the youngest is the safe choice), else the first-seen
    state, else now: a manifest never seen before starts its grace period today.
    """

    def __init__(self, kits: Sequence[Kit], state: State, now: datetime) -> None:
        self._kits: dict[str, Kit] = {}
        for kit in sorted(kits, key=lambda k: (k.namespace, k.name)):
            seen = self._kits.get(kit.repository_name)
            if seen is None or kit.created > seen.created:
                self._kits[kit.repository_name] = kit
        self._state = state
        self._now = now

    def since(self, m: Manifest) -> datetime:
        kit = self._kits.get(last_segment(m.repository))
        if kit is not None:
            return kit.created
        return self._state.first_seen.get(state_key(m.repository, m.digest), self._now)

    def text(self, m: Manifest) -> str:
        kit = self._kits.get(last_segment(m.repository))
        if kit is not None:
            return f"age from the creationTimestamp of {kit.ref} ({kit.created.isoformat()})"
        seen = self._state.first_seen.get(state_key(m.repository, m.digest))
        if seen is not None:
            return f"age from the first-seen state ({seen.isoformat()})"
        return "first seen unreferenced in this run"


def _keep_children_of_staying_indexes(decisions: dict[str, ManifestDecision], manifests: Sequence[Manifest]) -> None:
    """No child is deleted while an index listing it (in its repository) stays.

    A child of a kept index is kept; a child of a deferred index is deferred with it.
    Repeated until stable, since a demoted child may itself be an index.
    """
    keys = {m.key for m in manifests}
    parents: dict[str, list[Manifest]] = defaultdict(list)
    for m in manifests:
        for child in m.children:
            child_key = f"{m.repository}@{child}"
            if child_key in keys and child_key != m.key:
                parents[child_key].append(m)
    changed = True
    while changed:
        changed = False
        for key in sorted(parents):
            decision = decisions[key]
            if decision.action is not Action.DELETE:
                continue
            staying = [p for p in parents[key] if decisions[p.key].action is not Action.DELETE]
            if not staying:
                continue
            kept = [p for p in staying if decisions[p.key].action is Action.KEEP]
            parent = (kept or staying)[0]
            name = f"{parent.repository}@{short_digest(parent.digest)}"
            if kept:
                action, text = Action.KEEP, f"child of kept index {name}"
            else:
                action, text = Action.DEFER, f"child of deferred index {name}, deferred with it"
            decisions[key] = replace(decision, action=action, reason=text, reasons=(text, *decision.reasons))
            changed = True
