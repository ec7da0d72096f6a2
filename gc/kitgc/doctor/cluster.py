"""Cluster checks: the API server answers, and every reference source can be read.

A run that cannot read a source completely deletes nothing (exit 3): the doctor finds that
out first, per source, by asking RBAC (a SelfSubjectAccessReview for ``list`` cluster-wide)
and by reading a first page (``limit=1``), so a 403, a missing CRD or an API server that
answers nonsense shows here rather than in the middle of a run. Optional APIs (Knative,
Pipes, OpenShift's, ...) that are not served are fine, as they are for a run. The same is
done for every context of REFERENCE_KUBECONFIG.
"""

from __future__ import annotations

from collections.abc import Iterator

from kitgc.cluster import sources as S
from kitgc.cluster.reader import ClusterReader
from kitgc.doctor.access import qualified, review
from kitgc.doctor.checks import Check, Findings
from kitgc.errors import ConfigError, SafetyAbort
from kitgc.kube.connect import reference_client, reference_contexts
from kitgc.kube.http import KubeHttp, TransportError


def source_name(source: S.Source) -> str:
    return f"cluster_source:{qualified(source.group, source.plural)}"


def api_reachable(reader: ClusterReader, what: str = "the API server") -> Check:
    """``cluster_api``: discovery answers with our credentials (nothing else can be checked without)."""
    host = reader.http.api_client.configuration.host
    try:
        resp = reader.http.request("GET", "/api")
    except TransportError as exc:
        return Check("cluster_api", False, f"no answer from {what} at {host}: {exc}")
    if resp.status == 401:
        return Check("cluster_api", False, f"{what} at {host} refuses our credentials: {resp.status_message()}")
    if not resp.ok:
        return Check("cluster_api", False, f"{what} at {host} answered {resp.status_message()}")
    return Check("cluster_api", True, f"{what} at {host} answers")


def first_page(http: KubeHttp, source: S.Source) -> str | None:
    """None when a first page of ``source`` (``limit=1``) reads as a list, else what went wrong."""
    try:
        resp = http.request("GET", source.path, query=[("limit", 1)])
    except TransportError as exc:
        return f"no answer from the API server: {exc}"
    if not resp.ok:
        hint = "; are Camel K's CRDs installed?" if source.group == S.CAMEL and resp.status == 404 else ""
        return f"list refused: {resp.status_message()}{hint}"
    try:
        body = resp.json()
    except ValueError:
        return f"the API server answered {resp.status} with a body that is not JSON"
    listed = isinstance(body, dict) and "items" in body and (body["items"] is None or isinstance(body["items"], list))
    if not listed:
        return f"the API server answered {resp.status} with something that is not a list"
    return None


def _served(reader: ClusterReader, source: S.Source) -> tuple[bool, str]:
    """(served, why not known) for an optional source; required ones are always expected."""
    if not source.optional:
        return True, ""
    try:
        return reader.served(source), ""
    except SafetyAbort as exc:
        return False, str(exc)


def check_sources(reader: ClusterReader) -> Iterator[Check]:
    """``cluster_source:<resource>`` for every source a run reads."""
    for source in reader.sources:
        name = source_name(source)
        served, trouble = _served(reader, source)
        if trouble:
            yield Check(name, False, trouble)
            continue
        if not served:
            yield Check(name, None, f"not served (optional API {source.group_version}): a run skips it")
            continue
        allowed = review(reader.http, "list", source.group, source.plural)
        problem = first_page(reader.http, source)
        rbac = {True: "RBAC allows list cluster-wide", False: "RBAC does not allow list cluster-wide",
                None: allowed.reason}[allowed.allowed]
        if problem is not None:
            yield Check(name, False, f"{problem} ({rbac})")
        elif allowed.allowed is False:
            yield Check(name, False, f"{rbac}, though a first page answered: a run may be refused mid-way")
        else:
            yield Check(name, True, f"{rbac}; a first page was read")


def check_references(path: str | None, *, timeout: float, findings: Findings) -> None:
    """``reference_cluster:<context>``: every context of REFERENCE_KUBECONFIG reachable and readable."""
    if not path:
        return
    try:
        contexts = reference_contexts(path)
    except ConfigError as exc:
        findings.config_error = True
        findings.add(Check("reference_cluster", False, str(exc)))
        return
    for context in contexts:
        findings.add(reference_cluster(path, context, timeout))


def reference_cluster(path: str, context: str, timeout: float) -> Check:
    name = f"reference_cluster:{context}"
    try:
        api_client = reference_client(path, context)
    except SafetyAbort as exc:
        return Check(name, False, str(exc))
    try:
        reader = ClusterReader(api_client, retries=1, backoff=0.2, timeout=timeout)
        reached = api_reachable(reader, "the reference cluster")
        if not reached.ok:
            return Check(name, False, reached.detail)
        read = absent = 0
        for source in reader.sources:
            served, trouble = _served(reader, source)
            if trouble:
                return Check(name, False, trouble)
            if not served:
                absent += 1
                continue
            problem = first_page(reader.http, source)
            if problem is not None:
                return Check(name, False, f"cannot read {source}: {problem}; a run would delete nothing (exit 3)")
            read += 1
        return Check(name, True, f"{reached.detail}; {read} sources readable, {absent} optional APIs not served")
    finally:
        api_client.close()


__all__ = ["api_reachable", "check_references", "check_sources", "first_page", "reference_cluster", "source_name"]
