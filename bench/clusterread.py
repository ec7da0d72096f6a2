"""Reading the cluster several ways: the client's models, ``json.loads``, kitgc's decode.

``kitgc`` lists raw JSON through the official client's transport instead of the generated
API methods, because building the client's model objects (with their validation) costs
far more than the JSON; and it decodes each page keeping only the fields it reads
(:mod:`kitgc.cluster.projection`). This measures those choices on the scene's typed lists
(Pods, ReplicaSets, Deployments; the first ``pages`` pages of each, to keep the slow way
affordable): the same requests, pages and client each time, once deserialised into
``V1Pod`` & co., once with ``json.loads``, once with kitgc's projected decode. It also
times ``ClusterReader.snapshot()`` over every source, extraction included, which is what
a run really spends on the cluster.
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes
import structlog

from kitgc.cluster import sources as S
from kitgc.cluster.projection import decode_page
from kitgc.cluster.reader import ClusterReader
from kitgc.kube.connect import make_api_client

WAYS = ("models", "json", "kitgc")


def _typed_lists(api_client: Any) -> list[tuple[S.Source, Callable[..., Any]]]:
    core, apps = kubernetes.client.CoreV1Api(api_client), kubernetes.client.AppsV1Api(api_client)
    return [(S.PODS, core.list_pod_for_all_namespaces), (S.REPLICASETS, apps.list_replica_set_for_all_namespaces),
            (S.DEPLOYMENTS, apps.list_deployment_for_all_namespaces)]


def read_typed(api_client: Any, way: str, *, pages: int, page_size: int = 500) -> int:
    """Objects read from the first ``pages`` pages of each typed list, the ``way`` given."""
    total = 0
    for source, list_fn in _typed_lists(api_client):
        token = None
        for _ in range(pages):
            kwargs: dict[str, Any] = {"limit": page_size}
            if token:
                kwargs["_continue"] = token
            if way == "models":
                page = list_fn(**kwargs)
                items, token = page.items, page.metadata._continue
            else:
                data = list_fn(_preload_content=False, **kwargs).data
                if way == "json":
                    doc = json.loads(data)
                    items, token = doc["items"], doc["metadata"].get("continue")
                else:
                    decoded = decode_page(source, data)
                    assert decoded is not None, "the scene's objects should take the projected path"
                    items, token = decoded
            total += len(items)
            if not token:
                break
    return total


def measure(kubeconfig: Path, rounds: int, pages: int = 10, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Median seconds of each way over ``rounds`` rounds in alternating order, and what follows."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))  # the reader's
    api_client = make_api_client({"KUBECONFIG": str(kubeconfig)})
    times: dict[str, list[float]] = {"snapshot": [], **{w: [] for w in WAYS}}
    counts: dict[str, int] = {}
    try:
        for r in range(rounds):
            order = list(times) if r % 2 == 0 else list(reversed(times))
            for way in order:
                started = time.perf_counter()
                if way == "snapshot":
                    counts[way] = ClusterReader(api_client).snapshot().objects_read
                else:
                    counts[way] = read_typed(api_client, way, pages=pages)
                times[way].append(round(time.perf_counter() - started, 3))
            log(f"  cluster read round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()))
    finally:
        api_client.close()
    med = {k: statistics.median(v) for k, v in times.items()}
    per_second = {k: round(counts[k] / med[k]) for k in times}
    return {
        "seconds": times,
        "objects": {"all_sources": counts["snapshot"], "typed_lists": counts["json"]},
        "objects_per_second": per_second,
        "kitgc_reader_objects_per_second": per_second["snapshot"],
        "models_over_kitgc": round(med["models"] / med["kitgc"], 1),
        "models_over_json": round(med["models"] / med["json"], 1),
        "json_over_kitgc": round(med["json"] / med["kitgc"], 1),
    }
