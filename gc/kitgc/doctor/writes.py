"""What a deleting run writes, checked without writing: RBAC for its writes, its state, its Lease.

A deleting run deletes IntegrationKits, saves first-seen times in the state ConfigMap and
takes the sweep Lease (:mod:`kitgc.lease`); each write is asked of RBAC with a
SelfSubjectAccessReview (the table is :data:`kitgc.cluster.sources.WRITES`, which also drives
the RBAC manifests). The ConfigMap and the Lease are read, never written: absent is fine when
the run may create them; a Lease held right now would make a run starting now stop (exit 3).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from kitgc.cluster import sources as S
from kitgc.config import Settings
from kitgc.doctor.access import qualified, review
from kitgc.doctor.checks import UNKNOWN_UNTIL_DELETING, Check
from kitgc.kube.http import KubeHttp, Response, TransportError
from kitgc.lease import LEASE_NAME, parse_time
from kitgc.state import StateUnreadable, decode

LEASES = "coordination.k8s.io"


def check_writes(http: KubeHttp, settings: Settings) -> Iterator[Check]:
    """``cluster_write:<verb> <resource>`` for every write a deleting run makes."""
    namespace = settings.state_configmap[0]
    for write in S.WRITES:
        for verb in write.verbs:
            where = namespace if write.namespaced else None
            shown = f"in namespace {namespace}" if where else "cluster-wide"
            name = f"cluster_write:{verb} {qualified(write.group, write.plural)}"
            answer = review(http, verb, write.group, write.plural, where)
            unneeded = write.plural == "integrationkits" and not settings.prune_kits
            if answer.allowed:
                yield Check(name, True, f"allowed {shown}")
            elif answer.allowed is False:
                yield Check(name, None if unneeded else False,
                            f"denied {shown}" + ("; not needed with PRUNE_KITS=false" if unneeded else
                                                 ": a deleting run would fail there"))
            else:
                yield Check(name, None, f"{answer.reason}; {UNKNOWN_UNTIL_DELETING}")


def _get(http: KubeHttp, path: str) -> Response | str:
    try:
        return http.request("GET", path)
    except TransportError as exc:
        return f"no answer from the API server: {exc}"


def check_state(http: KubeHttp, settings: Settings) -> Check:
    """``state_configmap``: readable when present, creatable when absent."""
    namespace, name = settings.state_configmap
    where = f"ConfigMap {namespace}/{name}"
    resp = _get(http, f"/api/v1/namespaces/{namespace}/configmaps/{name}")
    if isinstance(resp, str):
        return Check("state_configmap", False, f"cannot read {where}: {resp}")
    if resp.status == 404:
        answer = review(http, "create", "", "configmaps", namespace)
        if answer.allowed is False:
            return Check("state_configmap", False, f"{where} is absent and may not be created")
        if answer.allowed is None:
            return Check("state_configmap", None, f"{where} is absent; whether it may be created: {answer.reason}")
        return Check("state_configmap", True, f"{where} is absent; the first deleting run creates it")
    if not resp.ok:
        return Check("state_configmap", False, f"cannot read {where}: {resp.status_message()}")
    try:
        state = decode(resp.json())
    except (StateUnreadable, ValueError) as exc:
        return Check("state_configmap", False, f"{where} cannot be read ({exc}): a run would neither use nor "
                                               "overwrite it")
    return Check("state_configmap", True, f"{where}: {len(state.first_seen)} first-seen times, "
                                          f"{len(state.kits_seen)} kits remembered")


def check_lease(http: KubeHttp, settings: Settings, now: datetime | None = None) -> Check:
    """``lease``: absent or free is fine; held now means a deleting run starting now would stop."""
    namespace = settings.state_configmap[0]
    name = LEASE_NAME + settings.shard.suffix()  # each shard has its own
    where = f"Lease {namespace}/{name}"
    resp = _get(http, f"/apis/{LEASES}/v1/namespaces/{namespace}/leases/{name}")
    if isinstance(resp, str):
        return Check("lease", False, f"cannot read the {where}: {resp}")
    if resp.status == 404:
        return Check("lease", True, f"{where} is absent; the first deleting run creates it")
    if not resp.ok:
        return Check("lease", False, f"cannot read the {where}: {resp.status_message()}")
    try:
        spec = resp.json().get("spec") or {}
    except (ValueError, AttributeError):
        return Check("lease", False, f"the {where} is not an object")
    holder = spec.get("holderIdentity") if isinstance(spec.get("holderIdentity"), str) else None
    renewed = parse_time(spec.get("renewTime")) or parse_time(spec.get("acquireTime"))
    seconds = spec.get("leaseDurationSeconds")
    until = renewed + timedelta(seconds=seconds) if renewed and isinstance(seconds, int) else None
    now = now or datetime.now(UTC)
    if holder and until is not None and until > now:
        return Check("lease", None, f"{where} is held by {holder} until {until.isoformat()}: a deleting run "
                                    "starting now would stop (exit 3) and delete nothing")
    if holder:
        return Check("lease", True, f"{where}: the last holder {holder} let it expire"
                                    + (f" at {until.isoformat()}" if until else "") + "; a run takes it over")
    return Check("lease", True, f"{where} is free")


__all__ = ["check_lease", "check_state", "check_writes"]
