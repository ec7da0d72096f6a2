"""Children of deleted image indexes, remembered until they are gone.

The registry API lists tags, not manifests: an untagged child of an image index is found
only through its index. Indexes must be deleted before their children (GCR and Zot insist,
and a kept index must never point at a deleted child), so a run that is killed, stopped or
refused a DELETE between an index and its children would leave those children invisible to
every later run: garbage no collector could ever find again.

So before deleting an index, the run writes the digests of its children into the state
ConfigMap (key ``pending-children.json``); every later run fetches them by digest and adds
them to the inventory as untagged manifests (:func:`kitgc.inventory.include_remembered`),
where the planner decides about them like any other (a child someone references stays,
and stays remembered). An entry is forgotten once its manifest is deleted or gone, or
reachable again through an index that stays.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import structlog

from kitgc.identity import ManifestKey
from kitgc.imageref import InvalidReference, validate_digest
from kitgc.model import Inventory, Plan

log = structlog.get_logger("kitgc.pending")

KEY = "pending-children.json"
MAX_ENTRIES = 300  # ~40 KB of the ConfigMap; beyond that the registry's own GC must help
MAX_DEPTH = 4  # nested indexes fetched this deep

Pending = dict[str, set[str]]  # repository -> digests


def decode(text: str | None) -> Pending:
    """The remembered children; an unreadable value is forgotten (with a warning), never fatal."""
    if not text:
        return {}
    try:
        doc = json.loads(text)
        out: Pending = {}
        for repo, digests in doc.items():
            if not isinstance(digests, list) or not all(isinstance(d, str) for d in digests):
                raise ValueError(f"repository {repo!r} does not map to a list of digests")
            if digests:
                out[str(repo)] = {validate_digest(d) for d in digests}
        return out
    except (ValueError, TypeError, AttributeError, InvalidReference) as exc:
        log.warning("pending_children_unreadable", error=str(exc).splitlines()[0][:200],
                    note="children of indexes deleted earlier may stay until the registry's own GC")
        return {}


def encode(pending: Pending) -> str:
    entries = sorted((r, d) for r, ds in pending.items() for d in ds)
    if len(entries) > MAX_ENTRIES:
        log.warning("pending_children_truncated", kept=MAX_ENTRIES, dropped=len(entries) - MAX_ENTRIES)
        entries = entries[:MAX_ENTRIES]
    out: dict[str, list[str]] = {}
    for repo, digest in entries:
        out.setdefault(repo, []).append(digest)
    return json.dumps(out, separators=(",", ":"), sort_keys=True)


def union(*groups: Pending) -> Pending:
    out: Pending = {}
    for group in groups:
        for repo, digests in group.items():
            out.setdefault(repo, set()).update(digests)
    return out


def children_of_deletions(plan: Plan) -> Pending:
    """Children of every index the plan deletes (whatever is decided about them)."""
    out: Pending = {}
    for d in plan.manifest_deletions:
        if d.manifest.children:
            out.setdefault(d.manifest.repository, set()).update(d.manifest.children)
    return out


def remaining(tracked: Pending, inventory: Inventory, deleted: Iterable[ManifestKey]) -> Pending:
    """What must still be remembered: not deleted, and not reachable through an index that stays."""
    gone = set(deleted)
    reachable = {m.key.child(c) for m in inventory.manifests if m.key not in gone for c in m.children}
    out: Pending = {}
    for repo, digests in tracked.items():
        keep = {d for d in digests if ManifestKey(repo, d) not in gone and ManifestKey(repo, d) not in reachable}
        if keep:
            out[repo] = keep
    return out
