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
import gc
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import structlog

from kitgc import __version__, pending
from kitgc.bodies import read_before_deleting, unread_deletions
from kitgc.cluster.discovery import resolve_targets
from kitgc.cluster.everywhere import kits_shown, read_everywhere
from kitgc.cluster.reader import ClusterReader
from kitgc.config import Settings
from kitgc.errors import EXIT_ABORT, EXIT_PARTIAL, KitGCError, RegistryError, SafetyAbort
from kitgc.execute import announce, execute
from kitgc.imageref import split_address
from kitgc.inventory import include_remembered, scan
from kitgc.kube.connect import make_api_client
from kitgc.lease import LEASE_NAME, SweepLease
from kitgc.memory import give_back
from kitgc.model import ClusterSnapshot, ExecutionResult, Inventory, Plan, Policy, State
from kitgc.outcome import OUTCOMES, RunSummary, exit_code, immutable_kept, summarize
from kitgc.plan import guards
from kitgc.plan.unowned import looks_shared, unowned_repositories
from kitgc.present.report import build_report, counts, write_report
from kitgc.scope import Scope, full_organizations
from kitgc.state import StateStore
from kitgc.stores.base import ImageStore
from kitgc.stores.choose import decide_kind, open_store
from kitgc.sweep.children import remember_children
from kitgc.sweep.planner import Planner
from kitgc.sweep.repositories import delete_emptied
from kitgc.sweep.reread import plan_again, recheck
from kitgc.sweep.stop import Stop


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
    state_error: str | None = None  # the first-seen state could not be saved (exit 1)
    unowned: tuple[str, ...] = ()  # in-scope repositories with images and no kit this cluster ever saw
    shared_warning: str = ""  # said in the summary when the registry looks shared and nothing protects it
    stopped: str = ""  # why the sweep stopped before its end (SIGTERM, Lease lost): exit 1
    # The first plan's figures (kitgc.present.report.counts), for the summary of a deleting
    # run that let go of that plan before its second read and then failed.
    first_counts: dict[str, int] | None = None


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


def _unowned(settings: Settings, inventory: Inventory, cluster: ClusterSnapshot, state: State,
             log: Any) -> tuple[tuple[str, ...], str]:
    """Repositories with images and no kit this cluster ever saw; a warning when many, unprotected."""
    unowned = unowned_repositories(inventory, cluster.kits, state.kits_seen)
    if not looks_shared(unowned, inventory) or settings.reference_kubeconfig:
        return unowned, ""
    log.warning("registry_looks_shared", unowned_repositories=len(unowned), examples=list(unowned[:3]),
                note="these kit repositories hold images but no kit this cluster ever saw: if another cluster "
                     "(a promotion target) uses this registry, set REFERENCE_KUBECONFIG or KEEP_IMAGES before "
                     "deleting, or its images may be deleted")
    return unowned, (f"The registry looks shared: {len(unowned)} kit repositories hold images no kit of this "
                     "cluster ever owned; set REFERENCE_KUBECONFIG (or KEEP_IMAGES) before a deleting run.")


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
        out.summary = summarize(out, settings, started, time.monotonic() - t0, code, str(exc))
    except Exception as exc:  # a bug: say so, and never claim success
        code = EXIT_ABORT if out.result is None else EXIT_PARTIAL
        log.error("internal_error", error=f"{type(exc).__name__}: {exc}", exit_code=code, exc_info=True)
        out.summary = summarize(out, settings, started, time.monotonic() - t0, code, f"internal error: {exc}")
    else:
        code = exit_code(out)
        message = f"sweep stopped early: {out.stopped}; the rest waits for the next run" if out.stopped else ""
        if out.stopped:
            log.warning("sweep_stopped", reason=out.stopped)
        out.summary = summarize(out, settings, started, time.monotonic() - t0, code, message)
    log.info("summary", **{k: v for k, v in out.summary.__dict__.items() if k != "message" or v})
    if settings.report_file:
        try:
            write_report(settings.report_file, build_report(
                out.summary, out.plan, out.result, registry=out.registry,
                organizations=out.organizations, inventory=out.inventory))
        except OSError as exc:
            log.error("report_write_failed", path=settings.report_file, error=str(exc))
    gc.unfreeze()  # frozen during the pass (see _pass); a process running passes in turn gets them back
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
    kind, kind_from = await decide_kind(settings, targets.host, targets.insecure)
    log.info("run_started", version=__version__, dry_run=settings.dry_run, registry=targets.host,
             organizations=list(targets.organizations), min_age=str(settings.min_age),
             prune_kits=settings.prune_kits, max_deletions=settings.max_deletions,
             registry_plain_http=targets.insecure, registry_from=reader.registry_origin(settings.registry_address),
             registry_kind=kind, registry_kind_from=kind_from, shard=str(settings.shard))
    state_store = StateStore(api_client, *settings.state_configmap, timeout=kube_timeout)
    state = await asyncio.to_thread(state_store.load)
    started = datetime.now(UTC)
    # Scope follows the kits: those the cluster shows now, and those the state remembers.
    kits_now = await asyncio.to_thread(kits_shown, reader)
    organizations = targets.organizations
    if kind == "openshift":  # an organization is a namespace there, and S2I kits live in their own
        organizations = tuple(dict.fromkeys((*organizations, *sorted(kits_now.namespaces))))
        out.organizations = organizations
    scope = Scope(organizations, kits_now.repositories | state.kits_seen, shard=settings.shard)
    store = open_store(settings, kind, targets.host, targets.insecure, api_client)
    try:
        # The registry FIRST, the cluster after (see the module docstring).
        inventory = await scan(store, scope, progress=progress, known_repositories=tuple(
            f"{org}/{name}" for org in scope.organizations for name in sorted(kits_now.repositories)))
        inventory, tracked = await include_remembered(store, inventory, state_store.remembered(), scope)
        give_back()  # the scan's responses: the cluster read starts from the inventory alone
        adapted = getattr(store, "concurrency_summary", None)  # v2 stores; vendor APIs keep their own limits
        if adapted is not None:
            log.info("registry_concurrency", **adapted())
        cluster = await read_everywhere(reader, settings.reference_kubeconfig, page_size=settings.kube_page_size,
                                        timeout=kube_timeout, log=log)
        out.inventory, out.cluster = inventory, cluster
        log.info("cluster_read", objects=cluster.objects_read, references=len(cluster.references),
                 references_folded=cluster.folded, kits=len(cluster.kits), owner_links=len(cluster.owners))
        give_back()  # the read's pages and decoded items are gone: planning starts from what lives
        # The inventory and the snapshot live until the run ends: out of the collector's sight,
        # planning does not rescan hundreds of thousands of objects at every full collection.
        gc.freeze()
        guards.check_references(cluster)
        out.unowned, out.shared_warning = _unowned(settings, inventory, cluster, state, log)
        policy = Policy(organizations, settings.min_age, settings.prune_kits, settings.max_deletions,
                        keep=settings.keep_images, kit_repositories=scope.kit_repositories, shard=settings.shard)
        planner = Planner(inventory, policy, state, now or datetime.now(UTC), started, remember=not settings.dry_run)
        out.plan = planner(cluster)
        give_back()  # the planner's working maps
        # HEAD-first scanning: what the plan deletes is read (verified, sizes, an OCI subject)
        # first, with its kept neighbours (exact bytes), and planned again if a body changes a
        # decision (kitgc.bodies).
        planner, out.plan = await read_before_deleting(store, planner, cluster, out.plan, neighbours=True)
        out.inventory = planner.inventory
        guards.check_wrong_cluster(out.plan, cluster, allow=settings.allow_empty_cluster)
        if settings.dry_run:
            out.result = announce(out.plan, log)
            return out
        await _sweep(settings, out, api_client, store, reader, planner, state_store, tracked, should_stop, log)
    finally:
        await store.aclose()
    return out


async def _sweep(
    settings: Settings, out: PassResult, api_client: Any, store: ImageStore, reader: ClusterReader,
    planner: Planner, state_store: StateStore, tracked: pending.Pending, should_stop: Callable[[], bool], log: Any,
) -> None:
    """A deleting run, under the sweep Lease: read again, remember children, delete, save the state."""
    assert out.plan is not None and out.cluster is not None and out.inventory is not None
    lease = SweepLease(api_client, settings.state_configmap[0], name=LEASE_NAME + settings.shard.suffix(),
                       duration=settings.lease_duration,
                       timeout=settings.kube_timeout.total_seconds())
    await asyncio.to_thread(lease.acquire)
    try:
        lease.start_renewing()
        stop = Stop(should_stop, lease)
        if out.plan.manifest_deletions or out.plan.kit_deletions:
            def release() -> None:  # the first plan, before the second read (see plan_again)
                assert out.plan is not None
                out.first_counts = {**counts(out.plan), "manifests_immutable": immutable_kept(out.plan, None)}
                out.plan = None

            out.cluster, out.plan = await plan_again(reader, planner, out.cluster, log,
                                                     allow_empty_cluster=settings.allow_empty_cluster, plan=out.plan,
                                                     release=release)
            planner, out.plan = await read_before_deleting(store, planner, out.cluster, out.plan)
            out.inventory = planner.inventory
            guards.check_wrong_cluster(out.plan, out.cluster, allow=settings.allow_empty_cluster)
        if unread := unread_deletions(out.plan):  # never: read_before_deleting settles it; fail closed
            raise SafetyAbort(f"{len(unread)} manifest(s) planned for deletion were never read (first: "
                              f"{unread[0].manifest.key}); nothing deleted")
        tracked = await remember_children(state_store, planner.state, tracked, out.plan, log)
        out.result = await execute(out.plan, store, reader, store, concurrency=settings.concurrency,
                                   should_stop=stop, log=log, recheck=recheck(reader, planner, out.cluster, out.plan))
        out.result = await delete_emptied(store, out.inventory, out.cluster, out.result,
                                          enabled=settings.delete_empty_repositories, should_stop=stop, log=log)
        out.stopped = stop.why
        remembered = pending.remaining(tracked, out.inventory, out.result.manifests_deleted)
        try:
            await asyncio.to_thread(state_store.save, with_refusals(out.plan.state, out.result), remembered)
        except KitGCError as exc:
            log.error("state_save_failed", error=str(exc))
            out.state_error = str(exc)
    finally:
        await asyncio.to_thread(lease.release)


def with_refusals(state: State, result: ExecutionResult) -> State:
    """The state to save, with the manifests the registry refused for good in this run."""
    if not result.immutable:
        return state
    now = datetime.now(UTC)
    refused = dict(state.refused)
    for key in result.immutable:
        refused.setdefault(key.state_key(), (now, "immutable tag"))
    return replace(state, refused=refused)


__all__ = ["OUTCOMES", "PassResult", "RegistryError", "run_pass"]
