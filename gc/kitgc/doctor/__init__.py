"""``kitgc doctor``: a preflight that says whether a deleting run would have what it needs.

It checks what a run would use, in the order a run uses it (the cluster, the registry and
its scope, every reference source, the writes, state, Lease, Pushgateway, reference
clusters), through the run's own code, and WRITES NOTHING: no registry DELETE/PUT/POST, no
Kubernetes create/update/delete. The only POSTs are SelfSubjectAccessReviews, questions to
the authorizer that store nothing. What cannot be known without deleting is said to be
unknown (``ok: null``), which does not fail it; nor does an unset optional part.

Exit codes: 0 no check false, 1 some check false, 2 a configuration error.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from kitgc import logs
from kitgc.cluster.reader import ClusterReader
from kitgc.config import Settings
from kitgc.doctor import cluster, output, writes
from kitgc.doctor.checks import Check, Findings
from kitgc.doctor.openshift import check_openshift
from kitgc.doctor.pushgateway import check_pushgateway
from kitgc.doctor.registry import check_registry
from kitgc.doctor.target import resolve
from kitgc.errors import ConfigError
from kitgc.kube.connect import make_api_client
from kitgc.state import StateStore

__all__ = ["Check", "Findings", "doctor", "examine"]


def doctor(settings: Settings, env: Mapping[str, str], stream: TextIO | None = None) -> int:
    """Run every check, show them (``LOG_FORMAT``), and return the exit code."""
    stream = stream or sys.stdout
    # stdout carries the checks only; what the code under check logs goes to stderr meanwhile.
    logs.configure(settings.log_format, "debug" if settings.log_level == "debug" else "warning", stream=sys.stderr)
    try:
        findings = asyncio.run(examine(settings, env))
    finally:
        logs.configure(settings.log_format, settings.log_level)
    output.render(findings, settings.log_format, stream)
    return findings.exit_code()


async def examine(settings: Settings, env: Mapping[str, str], api_client: Any = None) -> Findings:
    """The findings, in order; ``api_client`` (tests) replaces the one built from ``env``."""
    findings = Findings()
    timeout = settings.kube_timeout.total_seconds()
    owned = api_client is None
    if owned:
        try:
            api_client = make_api_client(env)
        except ConfigError as exc:
            findings.config_error = True
            findings.add(Check("cluster_api", False, str(exc)))
    try:
        reader = state = None
        if api_client is not None:
            reader = ClusterReader(api_client, page_size=settings.kube_page_size, retries=1, backoff=0.2,
                                   timeout=timeout)
            if not findings.add(cluster.api_reachable(reader)).ok:
                reader = None
            else:
                state = StateStore(api_client, *settings.state_configmap, retries=1, backoff=0.2, timeout=timeout)
        target = await resolve(settings, reader, state, findings)
        if target is not None:
            await check_registry(settings, target, api_client if reader is not None else None, findings)
        if reader is not None:
            await asyncio.to_thread(_cluster_checks, reader, settings, target.kind if target else
                                    settings.registry_kind, findings)
        findings.add(await asyncio.to_thread(check_pushgateway, settings))
        await asyncio.to_thread(cluster.check_references, settings.reference_kubeconfig, timeout=timeout,
                                findings=findings)
    finally:
        if owned and api_client is not None:
            api_client.close()
    return findings


def _cluster_checks(reader: ClusterReader, settings: Settings, kind: str, findings: Findings) -> None:
    findings.extend(list(cluster.check_sources(reader)))
    findings.extend(list(writes.check_writes(reader.http, settings)))
    findings.add(writes.check_state(reader.http, settings))
    findings.add(writes.check_lease(reader.http, settings))
    findings.extend(list(check_openshift(reader, kind)))
