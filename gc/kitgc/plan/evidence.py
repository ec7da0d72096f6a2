"""How old an unreferenced manifest is, and which kits deleted in this run it belongs to.

Kept apart from the planner's order of work: both are small lookups over the kits, built
once per plan, whose answers become reasons (``age from the creationTimestamp of …``,
``… is being deleted``) and the executor's rule that a manifest stays when its kit could not
be deleted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from kitgc.identity import KitKey, last_segment
from kitgc.model import Kit, Manifest, State, state_key
from kitgc.plan.reasons import Reason, ReasonKind, Subject


class Going:
    """The kits deleted in this run, and which manifests belong to them.

    A manifest belongs to a kit when it is the kit's image (by digest) or sits in the kit's
    repository. The executor keeps a manifest whose kit could not be deleted: the kit
    would otherwise point at an image that is gone.
    """

    def __init__(self, kits: Sequence[Kit]) -> None:
        self._by_name: dict[str, list[Kit]] = defaultdict(list)
        self._by_digest: dict[str, list[Kit]] = defaultdict(list)
        for kit in sorted(kits, key=lambda k: k.key):
            self._by_name[kit.repository_name].append(kit)
            if kit.image is not None and kit.image.digest:
                self._by_digest[kit.image.digest].append(kit)

    def subjects(self, m: Manifest) -> tuple[Subject, ...]:
        """The kits of ``m``'s repository, for the reason ("… is being deleted")."""
        return tuple(Subject(k.ref) for k in self._by_name.get(last_segment(m.repository), ()))

    def owners(self, m: Manifest) -> tuple[KitKey, ...]:
        kits = [*self._by_name.get(last_segment(m.repository), ()), *self._by_digest.get(m.digest, ())]
        return tuple(sorted({k.key for k in kits}))


class Evidence:
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
        # One Reason per kit or first-seen time, shared by its manifests: at 100,000 manifests
        # a Reason each is tens of megabytes that say the same few things.
        self._reasons: dict[object, Reason] = {}

    def since(self, m: Manifest) -> datetime:
        kit = self._kits.get(last_segment(m.repository))
        if kit is not None:
            return kit.created
        return self._state.first_seen.get(state_key(m.repository, m.digest), self._now)

    def reason(self, m: Manifest) -> Reason:
        kit = self._kits.get(last_segment(m.repository))
        seen = self._state.first_seen.get(state_key(m.repository, m.digest)) if kit is None else None
        key = kit if kit is not None else seen
        reason = self._reasons.get(key)
        if reason is None:
            if kit is not None:
                reason = Reason(ReasonKind.AGE_FROM_KIT, (Subject(kit.ref, "metadata.creationTimestamp"),),
                                since=kit.created)
            elif seen is not None:
                reason = Reason(ReasonKind.AGE_FROM_STATE, since=seen)
            else:
                reason = Reason(ReasonKind.AGE_FROM_THIS_RUN)
            self._reasons[key] = reason
        return reason
