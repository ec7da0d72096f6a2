"""Attachments follow their image: kept with it, deferred with it, deleted with it.

Nothing in a cluster names a signature, an attestation or an SBOM, so on their own they
would look like garbage; deleting the signature of a running image makes the next pod start
fail admission. An attachment whose image is in the repository is therefore not decided on
its own: it takes its image's decision, recursively (a signature of an SBOM of a kept image
is kept). One whose image is not in the repository is ordinary garbage, subject to MIN_AGE.
A manifest something in the cluster references directly stays, attached or not.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from kitgc.attachments import Attachment, attachment_of
from kitgc.identity import ManifestKey
from kitgc.model import Action, Manifest, ManifestDecision
from kitgc.plan.reasons import Reason, ReasonKind

_FOLLOWS = {Action.KEEP: ReasonKind.KEPT_WITH_IMAGE, Action.DELETE: ReasonKind.DELETED_WITH_IMAGE,
            Action.DEFER: ReasonKind.DEFERRED_WITH_IMAGE}


class Attachments:
    """The attachments of one plan whose image is in the same repository ("bound")."""

    def __init__(self, manifests: Sequence[Manifest]) -> None:
        keys = {m.key for m in manifests}
        self.bound: dict[ManifestKey, Attachment] = {}
        self.dependents: dict[ManifestKey, list[ManifestKey]] = defaultdict(list)
        self.scanned = 0
        for m in manifests:
            found = attachment_of(m)
            if found is None:
                continue
            self.scanned += 1
            subject = m.key.child(found.subject)
            if subject in keys and subject != m.key:
                self.bound[m.key] = found
                self.dependents[subject].append(m.key)

    def group_size(self, key: ManifestKey, decided: dict[ManifestKey, ManifestDecision]) -> int:
        """``key`` and every undecided attachment hanging from it: what deleting it deletes."""
        size, todo, seen = 0, [key], {key}
        while todo:
            current = todo.pop()
            size += 1
            for dependent in self.dependents.get(current, ()):
                if dependent not in seen and dependent not in decided:
                    seen.add(dependent)
                    todo.append(dependent)
        return size

    def follow(self, decisions: dict[ManifestKey, ManifestDecision], by_key: dict[ManifestKey, Manifest]) -> None:
        """Decide (or re-decide) every bound attachment not held for its own sake.

        Runs to a fixed point, so chains settle whatever order they are listed in; an
        attachment held by the cluster or by a read problem keeps its own decision.
        """
        changed = True
        while changed:
            changed = False
            for key, found in sorted(self.bound.items()):
                current = decisions.get(key)
                if current is not None and current.why and current.why[0].kind not in _FOLLOW_KINDS:
                    continue  # decided for its own sake (referenced, read problem, child of an index)
                subject = decisions.get(key.child(found.subject))
                if subject is None:
                    continue
                why = Reason(_FOLLOWS[subject.action], index=subject.manifest.key, message=found.kind.value)
                if current is not None and current.action is subject.action and current.why[0] == why:
                    continue
                decisions[key] = ManifestDecision(by_key[key], subject.action, (why,),
                                                  evidence_since=subject.evidence_since)
                changed = True
        for key, found in self.bound.items():  # a cycle no registry should hold: keep it
            if key not in decisions:
                decisions[key] = ManifestDecision(
                    by_key[key], Action.KEEP,
                    (Reason(ReasonKind.KEPT_WITH_IMAGE, index=key.child(found.subject), message=found.kind.value),))


_FOLLOW_KINDS = frozenset(_FOLLOWS.values())
