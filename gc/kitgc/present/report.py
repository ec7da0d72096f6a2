"""The run's decision report (JSON, for machines) and its counts.

Pure functions over the plan and the execution result, so the numbers in the summary log
event, the report file and the pushed metrics are one and the same.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from kitgc.attachments import attached_to, attachment_of
from kitgc.identity import ManifestKey
from kitgc.model import Action, ExecutionResult, Inventory, Manifest, ManifestDecision, Plan

if TYPE_CHECKING:
    from kitgc.outcome import RunSummary


def reclaimable_bytes(plan: Plan, deleted: Iterable[ManifestKey] | None = None) -> int:
    """Bytes of blobs (and manifest bodies) used only by deleted manifests.

    ``deleted`` narrows the set to manifests actually deleted (a real run); by default every
    DELETE decision counts (a dry run: what would be reclaimed). A blob also used by any
    manifest that stays is not counted: deleting one kit does not free the JDK layers the
    others share. Registries free blobs only on their own garbage collection.
    """
    chosen = set(deleted) if deleted is not None else {d.manifest.key for d in plan.manifest_deletions}
    kept_blobs: set[str] = set()
    gone: dict[str, int] = {}
    total = 0
    for d in plan.manifests:
        m = d.manifest
        if m.key in chosen:
            total += m.size
            for b in m.blobs:
                gone[b.digest] = b.size
        else:
            kept_blobs.update(b.digest for b in m.blobs)
    return total + sum(size for digest, size in gone.items() if digest not in kept_blobs)


def counts(plan: Plan) -> dict[str, int]:
    by_action = {a: 0 for a in Action}
    for d in plan.manifests:
        by_action[d.action] += 1
    return {
        "manifests_scanned": len(plan.manifests),
        "manifests_referenced": sum(1 for d in plan.manifests if d.referenced),
        "manifests_eligible": by_action[Action.DELETE],
        "manifests_deferred": by_action[Action.DEFER],
        "manifests_kept": by_action[Action.KEEP],
        "kits_eligible": len(plan.kit_deletions),
        "attachments_scanned": sum(1 for d in plan.manifests if attachment_of(d.manifest) is not None),
    }


def _iso(ts: datetime | None) -> str | None:
    return ts.isoformat() if ts else None


def _manifest_entry(d: ManifestDecision, deleted: set[ManifestKey],
                    attachments: dict[ManifestKey, list[Manifest]]) -> dict[str, Any]:
    m = d.manifest
    entry: dict[str, Any] = {
        "repository": m.repository,
        "digest": m.digest,
        "tags": list(m.tags),
        "media_type": m.media_type,
        "action": d.action.value,
        "deleted": m.key in deleted,
        "referenced": d.referenced,
        "reason": d.reason,
        "reasons": list(d.reasons),
        "why": [r.as_dict() for r in d.why],
        "unreferenced_since": _iso(d.evidence_since),
        "bytes": m.size + sum(b.size for b in m.blobs),
    }
    attachment = attachment_of(m)
    if attachment is not None:
        entry["attached_to"] = {"digest": attachment.subject, "kind": attachment.kind.value, "via": attachment.via}
    if m.key in attachments:
        entry["attachments"] = [a.digest for a in sorted(attachments[m.key], key=lambda a: a.digest)]
    return entry


def build_report(
    summary: RunSummary,
    plan: Plan | None,
    result: ExecutionResult | None,
    *,
    registry: str = "",
    organizations: tuple[str, ...] = (),
    inventory: Inventory | None = None,
) -> dict[str, Any]:
    deleted = set(result.manifests_deleted) if result else set()
    deleted_kits = set(result.kits_deleted) if result else set()
    report: dict[str, Any] = {
        "summary": {k: v for k, v in summary.__dict__.items()},
        "registry": registry,
        "organizations": list(organizations),
        "manifests": [],
        "kits": [],
        "problems": [],
        "failures": [f.__dict__ for f in result.failures] if result else [],
    }
    if inventory is not None:
        report["problems"] = [p.__dict__ for p in inventory.problems]
    if plan is not None:
        attachments = attached_to([d.manifest for d in plan.manifests])
        report["manifests"] = [_manifest_entry(d, deleted, attachments) for d in plan.manifests]
        report["kits"] = [
            {
                "namespace": k.kit.namespace,
                "name": k.kit.name,
                "type": k.kit.kit_type,
                "phase": k.kit.phase,
                "action": k.action.value,
                "deleted": k.kit.key in deleted_kits,
                "reason": k.reason,
                "why": k.why.as_dict(),
            }
            for k in plan.kits
        ]
    return report


def write_report(path: str, report: dict[str, Any]) -> None:
    """Write atomically, so a reader never sees half a report."""
    directory = os.path.dirname(os.path.abspath(path)) or "."
    fd, tmp = tempfile.mkstemp(prefix=".kitgc-report-", dir=directory)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(report, fh, indent=1, default=str)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
