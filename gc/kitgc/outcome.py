"""What one run did: the summary behind the log event, the report, the metrics and the exit code.

One :class:`RunSummary` feeds the ``summary`` log line, ``REPORT_FILE``, the console sentence
and every pushed gauge, so what a person reads and what an alert watches cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from kitgc.attachments import attachment_of
from kitgc.config import Settings
from kitgc.errors import EXIT_ABORT, EXIT_CONFIG, EXIT_OK, EXIT_PARTIAL
from kitgc.identity import ManifestKey
from kitgc.model import ExecutionResult, Plan
from kitgc.plan.reasons import ReasonKind
from kitgc.present.report import counts, reclaimable_bytes

if TYPE_CHECKING:
    from kitgc.run import PassResult

OUTCOMES = {EXIT_OK: "success", EXIT_PARTIAL: "partial", EXIT_CONFIG: "config_error", EXIT_ABORT: "aborted"}


@dataclass(frozen=True)
class RunSummary:
    """What one run did, for the summary log event, the report and the metrics."""

    outcome: str  # success | partial | aborted | config_error
    exit_code: int
    dry_run: bool
    started_at: float  # Unix time
    duration_seconds: float
    repositories_scanned: int = 0
    manifests_scanned: int = 0
    manifests_referenced: int = 0
    manifests_eligible: int = 0  # would be, or were, deleted (DELETE decisions)
    manifests_deferred: int = 0  # eligible but over MAX_DELETIONS
    manifests_deleted: int = 0
    kits_deleted: int = 0
    kits_eligible: int = 0
    delete_failures: int = 0
    bytes_reclaimable: int = 0
    registry_errors: int = 0
    attachments_scanned: int = 0  # signatures, attestations, SBOMs, referrers
    attachments_deleted: int = 0
    clusters_read: int = 0  # this cluster and every REFERENCE_KUBECONFIG context, read completely
    unowned_repositories: int = 0  # in-scope repositories with images and no kit this cluster ever saw
    repositories_deleted: int = 0  # emptied kit repositories removed whole
    manifests_immutable: int = 0  # the registry refused them for good (immutable tags): kept
    deletion_disabled: bool = False
    message: str = ""


def attachments_deleted(plan: Plan | None, deleted: tuple[ManifestKey, ...]) -> int:
    if plan is None or not deleted:
        return 0
    gone = set(deleted)
    return sum(1 for d in plan.manifests if d.manifest.key in gone and attachment_of(d.manifest) is not None)


def immutable_kept(plan: Plan | None, result: ExecutionResult | None) -> int:
    """Manifests kept because the registry refuses to delete them: now, or in a recent run."""
    keys = set(result.immutable) if result else set()
    if plan is not None:
        keys |= {d.manifest.key for d in plan.manifests
                 if any(r.kind is ReasonKind.REGISTRY_REFUSES for r in d.why)}
    return len(keys)


def exit_code(out: PassResult) -> int:
    if out.result and (out.result.failures or out.result.deletion_disabled):
        return EXIT_PARTIAL
    if out.stopped:
        return EXIT_PARTIAL
    if out.inventory and out.inventory.problems:
        return EXIT_PARTIAL
    if out.state_error:
        return EXIT_PARTIAL
    return EXIT_OK


def summarize(out: PassResult, settings: Settings, started: float, duration: float, code: int,
             message: str) -> RunSummary:
    c = counts(out.plan) if out.plan else (out.first_counts or {})
    res = out.result
    deleted_keys = res.manifests_deleted if res else ()
    if out.plan is None or code in (EXIT_ABORT, EXIT_CONFIG):
        reclaim = 0
    elif settings.dry_run:
        reclaim = reclaimable_bytes(out.plan)
    else:
        reclaim = reclaimable_bytes(out.plan, deleted_keys)
    return RunSummary(
        outcome=OUTCOMES.get(code, "partial"),
        exit_code=code,
        dry_run=settings.dry_run,
        started_at=started,
        duration_seconds=round(duration, 3),
        repositories_scanned=len(out.inventory.repositories) if out.inventory else 0,
        manifests_scanned=c.get("manifests_scanned", 0),
        manifests_referenced=c.get("manifests_referenced", 0),
        manifests_eligible=c.get("manifests_eligible", 0),
        manifests_deferred=c.get("manifests_deferred", 0),
        manifests_deleted=len(deleted_keys),
        kits_deleted=len(res.kits_deleted) if res else 0,
        kits_eligible=c.get("kits_eligible", 0),
        delete_failures=len(res.failures) if res else 0,
        bytes_reclaimable=reclaim,
        registry_errors=len(out.inventory.problems) if out.inventory else 0,
        attachments_scanned=c.get("attachments_scanned", 0),
        clusters_read=1 + len(out.cluster.clusters) if out.cluster is not None else 0,
        unowned_repositories=len(out.unowned),
        attachments_deleted=attachments_deleted(out.plan, deleted_keys),
        repositories_deleted=len(res.repositories_deleted) if res else 0,
        manifests_immutable=(immutable_kept(out.plan, res) if out.plan is not None
                             else c.get("manifests_immutable", 0) + len(res.immutable if res else ())),
        deletion_disabled=bool(res and res.deletion_disabled),
        message=message,
    )
