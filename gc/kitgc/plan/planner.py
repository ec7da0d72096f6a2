"""The pure planner: what to keep, what to delete, and why, for every manifest and kit.

No I/O and no clock: ``now`` is an argument, so a plan can be reproduced exactly from its
inputs (the report carries them) and the rules tested exhaustively. The order of work is
the order of safety:

1. kit decisions (:mod:`kitgc.plan.kits`), since a staying kit protects its images;
2. protection (:mod:`kitgc.plan.protect`): references, staying kits' images, building kits'
   repositories, KEEP_IMAGES patterns, children of kept indexes, and repositories not read
   completely;
3. the rest are candidates; the age evidence (the kit's ``creationTimestamp``, else the
   first-seen state, else "now") decides whether they are old enough;
4. at most MAX_DELETIONS of the oldest are deleted, the rest deferred; finally no child is
   deleted while an index listing it stays, which would break that index.

Anything the planner cannot be sure of is kept: unknown kit phases count as building, a
tag listed twice protects both digests, a reference whose host differs still protects.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from kitgc.cluster.objects import KIT_OWNED_KINDS
from kitgc.identity import KitKey, ManifestKey, last_segment
from kitgc.model import (
    Action,
    ClusterSnapshot,
    FirstSeen,
    Inventory,
    KitDecision,
    Manifest,
    ManifestDecision,
    ObjectRef,
    Plan,
    Policy,
    Reference,
    State,
    state_key,
)
from kitgc.plan.attached import Attachments
from kitgc.plan.evidence import Evidence, Going
from kitgc.plan.kits import decide_kits
from kitgc.plan.protect import Keeper, TagResolver, protect, referenced_keys
from kitgc.plan.reasons import Reason, ReasonKind
from kitgc.scope import in_scope
from kitgc.shard import Shard, shard_of


def plan(inventory: Inventory, cluster: ClusterSnapshot, policy: Policy, state: State, now: datetime, *,
         resolver: TagResolver | None = None, keeper: Keeper | None = None,
         within: frozenset[str] | None = None, remember: bool = True) -> Plan:
    """Decide every in-scope manifest and every kit; see the module docstring for the rules.

    Decisions come sorted (manifests by repository and digest, kits by namespace and name)
    so that equal inputs give equal plans whatever order the inputs were listed in.
    ``resolver`` and ``keeper``: the inventory's tag index and KEEP_IMAGES, when the caller
    plans the same inventory again.

    ``within``: decide only the manifests of these repositories (and of any unit one of
    them shares), for a recheck that asks only which of a few repositories' deletions still
    stand. Every rule that keeps a manifest reads its own repository and the global inputs
    (references, kits, the whole inventory's tags and KEEP_IMAGES), so each of those
    manifests is protected exactly as in the whole plan; only MAX_DELETIONS' room differs,
    which is why such a plan is never executed or saved on its own (see
    :meth:`kitgc.sweep.planner.Planner.deletions_within`).

    ``remember=False``: the plan's state carries no first-seen times. Only a run that
    deletes saves its state; at 100,000 manifests a dry run's would be some 15 MB of keys
    built for nothing. Decisions are the same either way.
    """
    resolver = resolver if resolver is not None else TagResolver(inventory.manifests)
    if within is not None:
        within = _with_their_units(within, inventory.units)
    manifests = in_scope_manifests(inventory, policy, within)
    if keeper is None:  # KEEP_IMAGES, over the whole inventory whatever is decided
        keeper = Keeper(policy.keep, inventory.registry,
                        manifests if within is None else in_scope_manifests(inventory, policy))
    references = _foreign_references(cluster)
    hold = _hold_reason(cluster)

    kits = decide_kits(cluster.kits, cluster.kit_uses, references, resolver, policy, now, cluster.owners,
                       anchors=cluster.foreign_kits, keeper=keeper)
    if hold:
        kits = tuple(
            KitDecision(d.kit, Action.KEEP, Reason(ReasonKind.KIT_HELD, message=hold))
            if d.action is Action.DELETE else d for d in kits
        )
    if policy.shard.sharded:
        kits = tuple(_left_to_its_shard(d, policy.shard) for d in kits)
    staying = [d.kit for d in kits if d.action is not Action.DELETE] + list(cluster.foreign_kits)
    deleted = [d.kit for d in kits if d.action is Action.DELETE]

    protected = protect(manifests, references, staying, resolver, cluster.owners, keeper)
    refused = _refused(manifests, state, now)
    decisions, candidates = _kept(manifests, protected, _problems(inventory), refused)
    # Working lists are dropped as soon as they are used: the peak of planning 100,000
    # manifests is at its end, with every decision made, and each of them was megabytes.
    protected_keys = set(protected) if remember else set()  # the first-seen state skips these
    refused_keys = set(refused)
    del protected, refused, references, staying
    attachments = Attachments(manifests)  # decided by their image, not on their own
    candidates = [m for m in candidates if m.key not in attachments.bound]
    evidence = Evidence(cluster.kits, state, now)
    eligible = _old_enough(candidates, evidence, policy, now, decisions)
    del candidates
    _allot(eligible, evidence, policy, now, hold, Going(deleted), decisions, attachments)
    del eligible
    by_key = {m.key: m for m in manifests} if attachments.bound else {}
    for _ in range(_SETTLE_ROUNDS):  # an image kept as an index child takes its attachments along
        before = _actions(decisions, manifests)
        attachments.follow(decisions, by_key)
        _keep_children_of_staying_indexes(decisions, manifests)
        _hold_units(decisions, inventory.units)
        if before == _actions(decisions, manifests):
            break

    # The best evidence is carried over, not only the first sighting: a manifest deferred by
    # MAX_DELETIONS whose kit is deleted in this run must not start its grace period anew.
    # Every manifest observed unreferenced in this run keeps its first-seen time.
    first_seen = [(m, min(state.first_seen.get(m.key.state_key(), now), evidence.since(m)))
                  for m in (manifests if remember else ()) if m.key not in protected_keys]
    # Kits seen are remembered while their repository still holds images (scope, ownership).
    holding = {last_segment(m.repository) for m in manifests if decisions[m.key].action is not Action.DELETE}
    kits_seen = (state.kits_seen | {k.repository_name for k in cluster.kits}) & holding
    return Plan(
        manifests=tuple(decisions[m.key] for m in manifests),
        kits=kits,
        state=State(first_seen=FirstSeen(first_seen), kits_seen=frozenset(kits_seen),
                    refused={state_key(m.repository, m.digest): state.refused[state_key(m.repository, m.digest)]
                             for m in manifests if m.key in refused_keys}),
    )


def _with_their_units(repositories: frozenset[str],
                      units: Sequence[tuple[str, tuple[ManifestKey, ...]]]) -> frozenset[str]:
    """``repositories`` and every repository a unit of theirs reaches (a unit goes whole)."""
    out = set(repositories)
    changed = True
    while changed:
        changed = False
        for _name, keys in units:
            reached = {k.repository for k in keys}
            if reached & out and not reached <= out:
                out |= reached
                changed = True
    return frozenset(out)


def _actions(decisions: Decisions, manifests: Sequence[Manifest]) -> list[Action | None]:
    """Each manifest's action so far (None: not decided yet, an attachment before it follows
    its image), in order: a list, not a second dict of 100,000 entries per settling round."""
    return [d.action if (d := decisions.get(m.key)) is not None else None for m in manifests]


# How long a manifest the registry refused to delete (immutable tag) is kept without asking
# again: the rule may be lifted, and a week of one refused request per image costs nothing.
REFUSAL_RETRY = timedelta(days=7)


def _refused(manifests: Sequence[Manifest], state: State, now: datetime) -> dict[ManifestKey, list[Reason]]:
    """Manifests a recent run found the registry refusing to delete, with that reason."""
    out: dict[ManifestKey, list[Reason]] = {}
    for m in manifests if state.refused else ():
        entry = state.refused.get(state_key(m.repository, m.digest))
        if entry is not None and now - entry[0] < REFUSAL_RETRY:
            out[m.key] = [Reason(ReasonKind.REGISTRY_REFUSES, since=entry[0], message=entry[1])]
    return out


Decisions = dict[ManifestKey, ManifestDecision]
_SETTLE_ROUNDS = 8


def _kept(
    manifests: Sequence[Manifest], protected: dict[ManifestKey, list[Reason]], problems: dict[str, list[Reason]],
    refused: Mapping[ManifestKey, list[Reason]],
) -> tuple[Decisions, list[Manifest]]:
    """Decisions for what is protected or in a repository not read completely; the rest."""
    referenced = referenced_keys(protected)  # what the cluster refers to, not KEEP_IMAGES
    decisions: Decisions = {}
    candidates: list[Manifest] = []
    for m in manifests:
        reasons = [*protected.get(m.key, []), *problems.get(m.repository, []), *refused.get(m.key, [])]
        if reasons:
            decisions[m.key] = ManifestDecision(m, Action.KEEP, tuple(reasons), referenced=m.key in referenced)
        else:
            candidates.append(m)
    return decisions, candidates


def _old_enough(
    candidates: Sequence[Manifest], evidence: Evidence, policy: Policy, now: datetime, decisions: Decisions
) -> list[tuple[datetime, Manifest]]:
    """Candidates at least MIN_AGE old, oldest first; the younger ones are decided as kept."""
    eligible: list[tuple[datetime, Manifest]] = []
    for m in candidates:
        since = evidence.since(m)
        age = now - since
        if age < policy.min_age:
            why = Reason(ReasonKind.TOO_YOUNG, min_age=policy.min_age, age=age)
            decisions[m.key] = ManifestDecision(m, Action.KEEP, (why, evidence.reason(m)), evidence_since=since)
        else:
            eligible.append((since, m))
    eligible.sort(key=lambda e: (e[0], e[1].repository, e[1].digest))
    return eligible


def _allot(
    eligible: Sequence[tuple[datetime, Manifest]], evidence: Evidence, policy: Policy, now: datetime, hold: str,
    going: Going, decisions: Decisions, attachments: Attachments,
) -> None:
    """The oldest MAX_DELETIONS are deleted, the rest deferred (all of them on hold).

    An image counts with the attachments that go with it, so MAX_DELETIONS bounds the
    manifests a run deletes, attachments included.
    """
    room = 0 if hold else max(0, policy.max_deletions)
    # What is deferred shares its reasons: the manifests of one kit have one age, and a large
    # first run defers tens of thousands (a reason and a tuple each were 19 MB at 100,000).
    deferred: dict[tuple[datetime, int], tuple[Reason, Reason]] = {}  # by age and evidence (alive here)
    for since, m in eligible:
        age = now - since
        owned: tuple[KitKey, ...] = ()
        size = attachments.group_size(m.key, decisions)
        if size <= room:
            room -= size
            owned = going.owners(m)
            why = (Reason(ReasonKind.UNREFERENCED, going.subjects(m), age=age), evidence.reason(m))
            decisions[m.key] = ManifestDecision(m, Action.DELETE, why, evidence_since=since, kits=owned)
            continue
        aged = evidence.reason(m)
        shared = deferred.get((since, id(aged)))
        if shared is None:
            first = (Reason(ReasonKind.HELD, age=age, message=hold) if hold else
                     Reason(ReasonKind.OVER_MAX_DELETIONS, age=age, limit=policy.max_deletions))
            shared = deferred[(since, id(aged))] = (first, aged)
        decisions[m.key] = ManifestDecision(m, Action.DEFER, shared, evidence_since=since)


def _left_to_its_shard(d: KitDecision, shard: Shard) -> KitDecision:
    """A kit another shard owns is deleted by that shard; here it stays (and holds its images).

    Keeping more is the safe side: an image it holds in this shard goes a run later, once
    its owner has deleted it (and never while it still exists).
    """
    if d.action is not Action.DELETE or shard.owns(d.kit.repository_name):
        return d
    owner = Shard(shard_of(d.kit.repository_name, shard.count), shard.count)
    return KitDecision(d.kit, Action.KEEP, Reason(ReasonKind.KIT_HELD, message=f"it belongs to {owner}"))


def in_scope_manifests(inventory: Inventory, policy: Policy, within: frozenset[str] | None = None) -> list[Manifest]:
    """In-scope manifests, one per key, sorted (only those of the ``within`` repositories, if given).

    The inventory should hold nothing else, but the planner filters anyway: its scope rule
    is the last line of defence. A manifest listed twice is merged (tags and children
    united), so that no tag or child is lost to a duplicate.
    """
    merged: dict[ManifestKey, Manifest] = {}
    for m in inventory.manifests:
        if within is not None and m.repository not in within:
            continue
        if not in_scope(m.repository, policy.organizations, policy.kit_repositories):
            continue
        if not policy.shard.owns(m.repository):
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
    known = {k.ref for k in cluster.kits}  # local kits: a kit of another cluster is never one of them
    return [r for r in cluster.references if not _speaks_for_a_kit(r.source, known, cluster.owners)]


def _speaks_for_a_kit(source: ObjectRef, kits: set[ObjectRef], owners: Mapping[ObjectRef, ObjectRef]) -> bool:
    """Whether ``source`` is a known kit, or the OpenShift object an S2I kit owns to build and hold
    its own image (its BuildConfig pushes to its ImageStream): what they name is the kit's own,
    protected exactly while the kit stays.

    Only those kinds: a Camel K Build is owned by its kit too, but while it runs it names images
    (the base it builds on) that must stay whatever happens to the kit.
    """
    if source.kind == "IntegrationKit":
        return source in kits
    if source.kind not in KIT_OWNED_KINDS:
        return False
    owner = owners.get(source)
    return owner is not None and owner.kind == "IntegrationKit" and owner in kits



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


def _problems(inventory: Inventory) -> dict[str, list[Reason]]:
    found: dict[str, set[Reason]] = defaultdict(set)
    for p in inventory.problems:
        found[p.repository].add(Reason(ReasonKind.READ_PROBLEM, message=p.message, tag=p.tag))
    return {repo: sorted(reasons, key=str) for repo, reasons in found.items()}


def _hold_units(decisions: Decisions, units: Sequence[tuple[str, tuple[ManifestKey, ...]]]) -> None:
    """Manifests that can only go together (an ImageStreamTag and its history) go together or stay.

    One that stays — kept or deferred — holds the others of its unit: they stay too, deferred
    with a deferred one, kept otherwise.
    """
    for name, keys in units:
        present = [decisions[k] for k in keys if k in decisions]
        staying = [d for d in present if d.action is not Action.DELETE]
        if not staying or len(staying) == len(present):
            continue
        action = Action.KEEP if any(d.action is Action.KEEP for d in staying) else Action.DEFER
        for d in present:
            if d.action is Action.DELETE:
                why = Reason(ReasonKind.HELD_BY_UNIT, message=name)
                decisions[d.manifest.key] = replace(d, action=action, why=(why, *d.why), kits=())


def _keep_children_of_staying_indexes(
    decisions: dict[ManifestKey, ManifestDecision], manifests: Sequence[Manifest]
) -> None:
    """No child is deleted while an index listing it (in its repository) stays.

    A child of a kept index is kept; a child of a deferred index is deferred with it.
    Repeated until stable, since a demoted child may itself be an index.
    """
    keys = {m.key for m in manifests}
    parents: dict[ManifestKey, list[Manifest]] = defaultdict(list)
    for m in manifests:
        for child in m.children:
            child_key = m.key.child(child)
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
            if kept:
                action, why = Action.KEEP, Reason(ReasonKind.INDEX_CHILD, index=parent.key)
            else:
                action, why = Action.DEFER, Reason(ReasonKind.CHILD_OF_DEFERRED, index=parent.key)
            decisions[key] = replace(decision, action=action, why=(why, *decision.why), kits=())
            changed = True
