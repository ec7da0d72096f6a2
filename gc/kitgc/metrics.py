"""Gauges describing the last run, pushed to a Prometheus Pushgateway.

A CronJob lives too briefly to be scraped, so each run pushes its numbers to the
Pushgateway (job ``camel-k-kit-gc``, grouping key ``instance=<CLUSTER_NAME>``, plus ``shard``
with SHARDS > 1) and
Prometheus scrapes them from there. Alerts watch the age of
``kitgc_last_success_timestamp_seconds``; for that to work a failing run must leave the
previous success time in place. We therefore push with HTTP POST
(:func:`prometheus_client.pushadd_to_gateway`), which replaces only the metric names that
are sent, and send ``kitgc_last_success_timestamp_seconds`` only from a run that exits 0.

Pushing is best effort: metrics must never change the outcome or the exit code of a run.
Every failure (Pushgateway down, slow, answering an error, a bad URL) is logged as one
``metrics_push_failed`` warning and reported as ``False``. The whole push is bounded by
``timeout``, not only each socket read, so a Pushgateway that trickles bytes cannot hold
the CronJob's pod past its deadline.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.parse
from collections.abc import Callable, Mapping

import structlog
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.exposition import basic_auth_handler, default_handler, pushadd_to_gateway

from kitgc.config import BY_ENV, Settings, parse_bool
from kitgc.outcome import RunSummary

JOB = "camel-k-kit-gc"
OUTCOMES = ("success", "partial", "aborted", "config_error")

# name -> help. Every gauge a run can push; the dashboard and alert tests check their
# PromQL against what build_registry() really emits, not against this table.
GAUGES: dict[str, str] = {
    "kitgc_repositories_scanned": "In-scope repositories listed in the registry by the last run.",
    "kitgc_manifests_scanned": "In-scope manifests (images, indexes and index children) read by the last run.",
    "kitgc_manifests_referenced": "Manifests kept by the last run because something in the cluster refers to them.",
    "kitgc_manifests_eligible": "Manifests the last run would delete or deleted (DELETE decisions).",
    "kitgc_manifests_deferred": "Eligible manifests left for a later run because of MAX_DELETIONS.",
    "kitgc_manifests_deleted": "Manifests the last run deleted from the registry (0 in a dry run).",
    "kitgc_kits_eligible": "Unused IntegrationKit objects the last run would delete or deleted.",
    "kitgc_kits_deleted": "IntegrationKit objects the last run deleted (0 in a dry run).",
    "kitgc_delete_failures": "Deletions (manifests or kits) that failed in the last run.",
    "kitgc_registry_errors": "In-scope repositories or tags the last run could not read (all their manifests kept).",
    "kitgc_bytes_reclaimable": "Bytes only the deleted (dry run: eligible) manifests use; freed by the registry's GC.",
    "kitgc_attachments_scanned": "Signatures, attestations, SBOMs and referrers among the scanned manifests.",
    "kitgc_attachments_deleted": "Attachments the last run deleted with their image (0 in a dry run).",
    "kitgc_clusters_read": "Clusters whose references the last run read completely (incl. REFERENCE_KUBECONFIG).",
    "kitgc_unowned_repositories": "In-scope repositories holding images that no kit of this cluster ever owned.",
    "kitgc_repositories_deleted": "Emptied kit repositories the last run deleted whole (0 in a dry run).",
    "kitgc_manifests_immutable": "Manifests kept because the registry refuses to delete them (immutable tags).",
    "kitgc_dry_run": "1 if the last run was a dry run, else 0.",
    "kitgc_registry_deletion_disabled": "1 if the registry refused DELETE as unsupported in the last run.",
    "kitgc_run_duration_seconds": "Wall-clock duration of the last run.",
    "kitgc_last_run_timestamp_seconds": "Unix time at which the last run ended, whatever its outcome.",
    "kitgc_last_success_timestamp_seconds": "Unix time at which the last run that exited 0 ended.",
}
OUTCOME_METRIC = "kitgc_run_outcome"
BUILD_INFO_METRIC = "kitgc_build_info"
SUCCESS_METRIC = "kitgc_last_success_timestamp_seconds"

# Summary field behind each plain gauge (the rest are computed in build_registry).
_FIELDS = {
    "kitgc_repositories_scanned": "repositories_scanned",
    "kitgc_manifests_scanned": "manifests_scanned",
    "kitgc_manifests_referenced": "manifests_referenced",
    "kitgc_manifests_eligible": "manifests_eligible",
    "kitgc_manifests_deferred": "manifests_deferred",
    "kitgc_kits_eligible": "kits_eligible",
    "kitgc_kits_deleted": "kits_deleted",
    "kitgc_delete_failures": "delete_failures",
    "kitgc_registry_errors": "registry_errors",
    "kitgc_bytes_reclaimable": "bytes_reclaimable",
    "kitgc_run_duration_seconds": "duration_seconds",
    "kitgc_attachments_scanned": "attachments_scanned",
    "kitgc_clusters_read": "clusters_read",
    "kitgc_unowned_repositories": "unowned_repositories",
    "kitgc_repositories_deleted": "repositories_deleted",
    "kitgc_manifests_immutable": "manifests_immutable",
}


def build_registry(summary: RunSummary, *, version: str) -> CollectorRegistry:
    """A fresh registry holding exactly what one run pushes.

    A fresh registry (not the global one) keeps process and platform collectors, and any
    metric another library registers, out of the Pushgateway group.
    """
    registry = CollectorRegistry(auto_describe=True)

    def gauge(name: str, value: float) -> None:
        Gauge(name, GAUGES[name], registry=registry).set(value)

    for name, attr in _FIELDS.items():
        gauge(name, getattr(summary, attr))
    # A dry run deletes nothing, whatever the summary's count says.
    gauge("kitgc_manifests_deleted", 0 if summary.dry_run else summary.manifests_deleted)
    gauge("kitgc_attachments_deleted", 0 if summary.dry_run else summary.attachments_deleted)
    gauge("kitgc_dry_run", 1 if summary.dry_run else 0)
    gauge("kitgc_registry_deletion_disabled", 1 if summary.deletion_disabled else 0)
    finished = summary.started_at + summary.duration_seconds
    gauge("kitgc_last_run_timestamp_seconds", finished)
    if summary.exit_code == 0:
        gauge(SUCCESS_METRIC, finished)

    # Every outcome is sent (0 or 1) so the POST replaces the whole family: a stale 1 for
    # the previous run's outcome cannot survive next to this run's.
    outcome = Gauge(OUTCOME_METRIC, "1 for the outcome of the last run, 0 for the others.",
                    ["outcome"], registry=registry)
    for name in OUTCOMES:
        outcome.labels(outcome=name).set(1 if summary.outcome == name else 0)
    Gauge(BUILD_INFO_METRIC, "Always 1; the label carries the collector's version.",
          ["version"], registry=registry).labels(version=version).set(1)
    return registry


def push_metrics(summary: RunSummary, settings: Settings, *, version: str, timeout: float = 10.0) -> bool:
    """Push the run's gauges to ``settings.pushgateway_url``; ``True`` when it accepted them.

    No URL configured means nothing to do: ``False``, silently. Never raises.
    """
    url = settings.pushgateway_url
    if not url:
        return False
    try:
        registry = build_registry(summary, version=version)
    except Exception as exc:  # a malformed summary must not break the run's ending
        _warn(url, f"could not build metrics: {exc}", settings.pushgateway_password)
        return False
    return _push(
        registry,
        url=url,
        instance=settings.cluster_name,
        shard=str(settings.shard_index) if settings.shards > 1 else None,
        username=settings.pushgateway_username,
        password=settings.pushgateway_password,
        timeout=timeout,
    )


def push_config_error(
    env: Mapping[str, str],
    *,
    version: str,
    started_at: float | None = None,
    duration_seconds: float = 0.0,
    timeout: float = 10.0,
) -> bool:
    """Report a run whose configuration could not be parsed, reading the environment leniently.

    Without Settings we still know where to push if ``PUSHGATEWAY_URL`` itself is valid.
    The run touched nothing, so every count is 0, ``kitgc_run_outcome{outcome="config_error"}``
    is 1 and the previous success time is left alone. ``kitgc_dry_run`` is 1 unless
    ``DRY_RUN`` clearly says false (nothing was written either way). An unset or invalid
    URL means no push, silently: the config error itself is what the run reports.
    """
    raw = (env.get("PUSHGATEWAY_URL") or "").strip()
    if not raw:
        return False
    try:
        url = BY_ENV["PUSHGATEWAY_URL"].parse(raw)
    except ValueError:
        return False
    try:
        dry_run = parse_bool(env.get("DRY_RUN") or "true")
    except ValueError:
        dry_run = True
    now = time.time()
    start = now - duration_seconds if started_at is None else started_at
    summary = RunSummary(outcome="config_error", exit_code=2, dry_run=dry_run, started_at=start,
                         duration_seconds=duration_seconds)
    return _push(
        build_registry(summary, version=version),
        url=url,
        instance=(env.get("CLUSTER_NAME") or "").strip() or "default",
        username=(env.get("PUSHGATEWAY_USERNAME") or None),
        password=(env.get("PUSHGATEWAY_PASSWORD") or None),
        timeout=timeout,
    )


def _push(registry: CollectorRegistry, *, url: str, instance: str, username: str | None,
          password: str | None, timeout: float, shard: str | None = None) -> bool:
    """Push under ``instance`` (and ``shard`` with SHARDS > 1: each shard keeps its own group,
    so one shard's push never replaces another's)."""
    grouping = {"instance": instance} if shard is None else {"instance": instance, "shard": shard}

    def with_auth(url: str, method: str, timeout: float | None, headers: list[tuple[str, str]],
                  data: bytes) -> Callable[[], None]:
        return basic_auth_handler(url, method, timeout, headers, data, username, password or "")

    handler: Callable[..., Callable[[], None]] = with_auth if username else default_handler

    outcome: dict[str, BaseException | None] = {}

    def work() -> None:
        try:
            pushadd_to_gateway(url, job=JOB, registry=registry, grouping_key=grouping,
                               timeout=timeout, handler=handler)
            outcome["error"] = None
        except BaseException as exc:
            outcome["error"] = exc

    # A daemon thread bounds the whole exchange: urllib's timeout only bounds each read.
    worker = threading.Thread(target=work, name="kitgc-metrics-push", daemon=True)
    worker.start()
    worker.join(timeout)
    if "error" not in outcome:
        _warn(url, f"no answer within {timeout:g}s", password)
        return False
    error = outcome["error"]
    if error is not None:
        _warn(url, _describe(error), password)
        return False
    structlog.get_logger().debug("metrics_pushed", url=_redact(url), job=JOB, instance=instance)
    return True


def _describe(error: BaseException) -> str:
    if isinstance(error, urllib.error.HTTPError):
        # The Pushgateway explains a 400 (e.g. an inconsistent push) in the body.
        try:
            body = error.read(300).decode("utf-8", "replace").strip()
        except Exception:
            body = ""
        return f"HTTP {error.code} {error.reason}" + (f": {body}" if body else "")
    reason = getattr(error, "reason", None)  # URLError wraps the socket error here
    text = str(reason if reason is not None else error) or type(error).__name__
    return f"{type(error).__name__}: {text}"


def _warn(url: str, error: str, password: str | None) -> None:
    if password:
        error = error.replace(password, "<hidden>")
    structlog.get_logger().warning("metrics_push_failed", url=_redact(url), error=error)


def _redact(url: str) -> str:
    """The URL without any ``user:password@`` part, fit for a log line."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<invalid url>"
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=host))
