"""One garbage-collection pass: the imperative shell around the pure planner.

Order of reading is a safety property: the registry is listed FIRST and the cluster read
after it, so every image in the inventory existed before the reference picture was taken;
an image pushed by a build that starts mid-run belongs to a kit the snapshot already shows
as building (or it is not in the inventory at all).

A run that deletes then takes the sweep Lease (:mod:`kitgc.lease`), reads the cluster a
second time and plans again with the union of both reads, and after deleting kits reads
once more (:mod:`kitgc.sweep`). A dry run writes nothing, so it takes no Lease and reads once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from kitgc import __version__, guards, pending, sweep
from kitgc.cluster import sources
from kitgc.cluster.connect import make_api_client
from kitgc.cluster.discovery import resolve_targets
from kitgc.cluster.reader import ClusterReader
from kitgc.config import Settings
from kitgc.errors import EXIT_ABORT, EXIT_CONFIG, EXIT_OK, EXIT_PARTIAL, KitGCError, RegistryError
from kitgc.execute import execute
from kitgc.imageref import split_address
from kitgc.inventory import scan
from kitgc.lease import SweepLease
from kitgc.model import ClusterSnapshot, ExecutionResult, Inventory, Plan, Policy, RunSummary
from kitgc.registry.auth import load_docker_config
from kitgc.registry.client import RegistryClient
from kitgc.report import build_report, counts, reclaimable_bytes, write_report
from kitgc.scope import full_organizations
from kitgc.state import StateStore

OUTCOMES = {EXIT_OK: "success", EXIT_PARTIAL: "partial", EXIT_CONFIG: "config_error", EXIT_ABORT: "aborted"}


@dataclass(repr=False)  # asyncio.run formats its task's result on exit: 100+ MB for 20,000 pods
class PassResult:
    """Everything a pass produced, for the CLI's report, the metrics and the tests."""

    summary: RunSummary
    plan: Plan | None = None
    inventory: Inventory | None = None
    cluster: ClusterSnapshot | None = None
    result: ExecutionResult | None = None
    registry: str = ""
    organizations: tuple[str, ...] = ()
    request_stats: dict[str, int] = field(default_factory=dict)
    state_error: str | None = None  # the first-seen state could not be saved (exit 1)
    stopped: str = ""  # why the sweep stopped before its end (SIGTERM, Lease lost): exit 1


@dataclass
class _Targets:
    host: str
    organizations: tuple[str, ...]
    insecure: bool


def _targets(settings: Settings, reader: ClusterReader) -> _Targets:
    platforms = []
    if settings.registry_address is None or settings.organizations is None:
        platforms = reader.platform_registries()
    address, orgs, insecure = resolve_targets(
        platforms, settings.registry_address, settings.organizations, settings.registry_insecure
    )
    host, prefix = split_address(address)
    return _Targets(host, full_organizations(prefix, orgs), insecure)


async def _scan_and_read(
    settings: Settings, reader: ClusterReader, targets: _Targets, progress: Callable[[int, int], None] | None,
    remembered: pending.Pending,
) -> tuple[Inventory, ClusterSnapshot, RegistryClient, pending.Pending]:
    credentials = None
    if settings.registry_auth_file:
        credentials = load_docker_config(settings.registry_auth_file, targets.host)
    client = RegistryClient(
        targets.host,
        insecure=targets.insecure,
        ca_file=settings.registry_ca_file,
        credentials=credentials,
        concurrency=settings.concurrency,
        timeout=settings.registry_timeout.total_seconds(),
    )
    await client.__aenter__()
    try:
        inventory = await scan(client, targets.organizations, progress=progress,
                               known_repositories=lambda: asyncio.to_thread(_kit_repositories, reader, targets))
        inventory, tracked = await pending.include(client, inventory, remembered, targets.organizations)
        cluster = await asyncio.to_thread(reader.snapshot)
    except BaseException:
        await client.__aexit__(None, None, None)
        raise
    return inventory, cluster, client, tracked


def _kit_repositories(reader: ClusterReader, targets: _Targets) -> tuple[str, ...]:
    """Where the cluster's kits push, for registries that refuse the catalog: every kit, every organization."""
    names = {f"camel-k-{item['metadata']['name']}" for item in reader.list_raw(sources.INTEGRATION_KITS)}
    return tuple(sorted(f"{org}/{name}" for org in targets.organizations for name in names))


def run_pass(
    settings: Settings,
    *,
    env: Mapping[str, str] | None = None,
    now: datetime | None = None,
    api_client: Any = None,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> PassResult:
    """Run one pass; never raises for expected failures: the summary carries the exit code."""
    log = structlog.get_logger("kitgc")
    started = time.time()
    t0 = time.monotonic()
    out = PassResult(summary=RunSummary("aborted", EXIT_ABORT, settings.dry_run, started, 0.0))
    try:
        out = asyncio.run(_run(settings, out, now, api_client, progress, should_stop, log, env))
    except KitGCError as exc:
        code = exc.exit_code
        log.error("run_failed" if code != EXIT_ABORT else "run_aborted", error=str(exc), exit_code=code,
                  deleted_nothing=not (out.result and (out.result.manifests_deleted or out.result.kits_deleted)))
        out.summary = _summary(out, settings, started, time.monotonic() - t0, code, str(exc))
    except Exception as exc:  # a bug: say so, and never claim success
        code = EXIT_ABORT if out.result is None else EXIT_PARTIAL
        log.error("internal_error", error=f"{type(exc).__name__}: {exc}", exit_code=code, exc_info=True)
        out.summary = _summary(out, settings, started, time.monotonic() - t0, code, f"internal error: {exc}")
    else:
        code = _exit_code(out)
        message = f"sweep stopped early: {out.stopped}; the rest waits for the next run" if out.stopped else ""
        if out.stopped:
            log.warning("sweep_stopped", reason=out.stopped)
        out.summary = _summary(out, settings, started, time.monotonic() - t0, code, message)
    log.info("summary", **{k: v for k, v in out.summary.__dict__.items() if k != "message" or v})
    if settings.report_file:
        try:
            write_report(settings.report_file, build_report(
                out.summary, out.plan, out.result, registry=out.registry,
                organizations=out.organizations, inventory=out.inventory))
        except OSError as exc:
            log.error("report_write_failed", path=settings.report_file, error=str(exc))
    return out


async def _run(
    settings: Settings, out: PassResult, now: datetime | None, api_client: Any,
    progress: Callable[[int, int], None] | None, should_stop: Callable[[], bool], log: Any,
    env: Mapping[str, str] | None = None,
) -> PassResult:
    owned = api_client is None
    api_client = api_client or make_api_client(env)
    try:
        return await _pass(settings, out, now, api_client, progress, should_stop, log)
    finally:
        if owned:
            api_client.close()


async def _pass(
    settings: Settings, out: PassResult, now: datetime | None, api_client: Any,
    progress: Callable[[int, int], None] | None, should_stop: Callable[[], bool], log: Any,
) -> PassResult:
    kube_timeout = settings.kube_timeout.total_seconds()
    reader = ClusterReader(api_client, page_size=settings.kube_page_size, timeout=kube_timeout)
    targets = _targets(settings, reader)
    out.registry, out.organizations = targets.host, targets.organizations
    log.info("run_started", version=__version__, dry_run=settings.dry_run, registry=targets.host,
             organizations=list(targets.organizations), min_age=str(settings.min_age),
             prune_kits=settings.prune_kits, max_deletions=settings.max_deletions,
             registry_plain_http=targets.insecure)
    store = StateStore(api_client, *settings.state_configmap, timeout=kube_timeout)
    state = await asyncio.to_thread(store.load)
    started = datetime.now(UTC)

    inventory, cluster, client, tracked = await _scan_and_read(settings, reader, targets, progress, store.pending)
    lease: SweepLease | None = None
    try:
        out.inventory, out.cluster = inventory, cluster
        guards.check_references(cluster)
        policy = Policy(targets.organizations, settings.min_age, settings.prune_kits, settings.max_deletions)
        planner = sweep.Planner(inventory, policy, state, now or datetime.now(UTC), started)
        plan = planner(cluster)
        out.plan = plan
        guards.check_wrong_cluster(plan, cluster, allow=settings.allow_empty_cluster)
        if not settings.dry_run:
            lease = SweepLease(api_client, settings.state_configmap[0], duration=settings.lease_duration,
                               timeout=kube_timeout)
            await asyncio.to_thread(lease.acquire)
            lease.start_renewing()
            stop = sweep.Stop(should_stop, lease)
            if plan.manifest_deletions or plan.kit_deletions:
                cluster, plan = await sweep.plan_again(settings, reader, planner, cluster, log)
                out.cluster, out.plan = cluster, plan
            tracked = await sweep.remember_children(store, state, tracked, plan, log)
            out.result = await execute(plan, client, reader, dry_run=False, concurrency=settings.concurrency,
                                       should_stop=stop, log=log, recheck=sweep.recheck(reader, planner, cluster))
            out.stopped = stop.why
            store.pending = pending.remaining(tracked, inventory, out.result.manifests_deleted)
        else:
            out.result = await execute(plan, client, reader, dry_run=True, concurrency=settings.concurrency, log=log)
        if not settings.dry_run:
            try:
                await asyncio.to_thread(store.save, plan.state)
            except KitGCError as exc:
                log.error("state_save_failed", error=str(exc))
                out.state_error = str(exc)
    finally:
        out.request_stats = dict(client.stats)
        await client.__aexit__(None, None, None)
        if lease is not None:
            await asyncio.to_thread(lease.release)
    return out


def _exit_code(out: PassResult) -> int:
    if out.result and (out.result.failures or out.result.deletion_disabled):
        return EXIT_PARTIAL
    if out.stopped:
        return EXIT_PARTIAL
    if out.inventory and out.inventory.problems:
        return EXIT_PARTIAL
    if out.state_error:
        return EXIT_PARTIAL
    return EXIT_OK


def _summary(out: PassResult, settings: Settings, started: float, duration: float, code: int,
             message: str) -> RunSummary:
    c = counts(out.plan) if out.plan else {}
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
        deletion_disabled=bool(res and res.deletion_disabled),
        message=message,
    )


__all__ = ["OUTCOMES", "PassResult", "RegistryError", "run_pass"]
