"""The reference picture of a run: this cluster, plus every ``REFERENCE_KUBECONFIG`` context.

Each cluster is read with the same reader and the same sources, completely or not at all:
a reference cluster that is unreachable, forbids a list, or cannot finish one makes the run
delete nothing (exit 3), naming the context (see :mod:`kitgc.cluster.foreign`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from kitgc.cluster import sources
from kitgc.cluster.foreign import from_cluster, with_references_from
from kitgc.cluster.reader import ClusterReader
from kitgc.errors import SafetyAbort, SourceUnavailable
from kitgc.identity import kit_repository_name
from kitgc.kube.connect import reference_client, reference_contexts
from kitgc.model import ClusterSnapshot


@dataclass(frozen=True)
class KitsShown:
    repositories: frozenset[str]  # camel-k-<name> of every kit
    namespaces: frozenset[str]  # where the kits live (on OpenShift, organizations)


def kits_shown(reader: ClusterReader) -> KitsShown:
    """The IntegrationKits this cluster shows now, for the scope (and the catalog fallback)."""
    names, namespaces = set(), set()
    for item in reader.list_raw(sources.INTEGRATION_KITS):
        meta = item.get("metadata")
        if isinstance(meta, dict) and meta.get("name"):
            names.add(kit_repository_name(str(meta["name"])))
            if meta.get("namespace"):
                namespaces.add(str(meta["namespace"]))
    return KitsShown(frozenset(names), frozenset(namespaces))


async def read_everywhere(reader: ClusterReader, reference_kubeconfig: str | None, *, page_size: int,
                          timeout: float, log: Any) -> ClusterSnapshot:
    """This cluster's snapshot with the references of every reference cluster added."""
    local = await asyncio.to_thread(reader.snapshot)
    if not reference_kubeconfig:
        return local
    others = []
    for context in reference_contexts(reference_kubeconfig):
        snapshot = await asyncio.to_thread(_read_context, reference_kubeconfig, context, page_size, timeout)
        others.append(from_cluster(snapshot, context))
        log.info("reference_cluster_read", context=context, references=len(snapshot.references),
                 kits=len(snapshot.kits), objects=snapshot.objects_read)
    return with_references_from(local, *others)


def _read_context(path: str, context: str, page_size: int, timeout: float) -> ClusterSnapshot:
    api_client = reference_client(path, context)
    try:
        return ClusterReader(api_client, page_size=page_size, timeout=timeout).snapshot()
    except SafetyAbort as exc:
        raise SourceUnavailable(f"reference cluster {context}: {exc}") from None
    finally:
        api_client.close()
