"""The reference picture of a run: this cluster, plus every ``REFERENCE_KUBECONFIG`` context.

Each cluster is read with the same reader and the same sources, completely or not at all:
a reference cluster that is unreachable, forbids a list, or cannot finish one makes the run
delete nothing (exit 3), naming the context (see :mod:`kitgc.cluster.foreign`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from kitgc.cluster import sources
from kitgc.cluster.foreign import from_cluster, with_references_from
from kitgc.cluster.reader import ClusterReader
from kitgc.errors import SafetyAbort, SourceUnavailable
from kitgc.identity import kit_repository_name
from kitgc.kube.connect import reference_client, reference_contexts
from kitgc.model import ClusterSnapshot


def kit_repository_names(reader: ClusterReader) -> frozenset[str]:
    """``camel-k-<name>`` of every IntegrationKit this cluster shows now (scope, catalog fallback)."""
    items = reader.list_raw(sources.INTEGRATION_KITS)
    return frozenset(kit_repository_name(str(item["metadata"]["name"])) for item in items
                     if isinstance(item.get("metadata"), dict) and item["metadata"].get("name"))


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
