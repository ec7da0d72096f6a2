"""How Kubernetes objects are named and owned, the same way on every side of a chain.

A reference's source, a kit's user and an owner named in ``metadata.ownerReferences`` must
be one and the same :class:`~kitgc.model.ObjectRef` when they are one object, or a chain
(Pod -> ReplicaSet -> Deployment -> Integration) could not be followed. So kinds are named
by one rule (:func:`kind_name`) and owners resolved by one rule (:func:`owner_ref`).
"""

from __future__ import annotations

import functools
import sys
from typing import Any

from kitgc.cluster import sources as S
from kitgc.cluster.raw import items as _items
from kitgc.model import ObjectRef

_PLAIN_GROUPS = frozenset({"", "apps", "batch", S.CAMEL})  # their kinds are named without the group


@functools.lru_cache(maxsize=256)
def kind_name(kind: str, group: str = "") -> str:
    """The kind as :class:`ObjectRef` names it: plain for core, apps, batch and Camel K
    (``"Pod"``, ``"Integration"``), ``Kind.group`` for any other group
    (``"Service.serving.knative.dev"``), so that a Knative Service is never a core Service."""
    return sys.intern(kind if group in _PLAIN_GROUPS else f"{kind}.{group}")


# The OpenShift objects an S2I kit owns to build and hold its own image (its BuildConfig
# pushes to its ImageStream): what they name is the kit's own (kitgc.plan.planner).
KIT_OWNED_KINDS = frozenset({kind_name(S.BUILD_CONFIGS.kind, S.BUILD_CONFIGS.group),
                             kind_name(S.IMAGE_STREAMS.kind, S.IMAGE_STREAMS.group)})


def source_kind(source: S.Source) -> str:
    """How the objects listed from ``source`` are named."""
    return kind_name(source.kind, source.group)


def object_ref(kind: str, obj: dict[str, Any]) -> ObjectRef:
    meta = obj.get("metadata") or {}
    raw = meta.get("namespace") if isinstance(meta, dict) else None
    # Thousands of objects share a few namespaces; anything but a string (garbage from the
    # API) names no namespace, as the object's own decoding then says (never a crash here).
    namespace = sys.intern(raw) if isinstance(raw, str) and raw else None
    name = meta.get("name") if isinstance(meta, dict) else None
    return ObjectRef(kind, str(name or ""), namespace)


def _controller(refs: Any) -> dict[str, Any] | None:
    """The ``ownerReferences`` entry with ``controller: true``, else the first one; entries
    without a kind or a name (strings) are not owners and are skipped."""
    valid = [r for r in _items(refs) if isinstance(r.get("kind"), str) and r["kind"]
             and isinstance(r.get("name"), str) and r["name"]]
    return next((r for r in valid if r.get("controller") is True), valid[0] if valid else None)


@functools.lru_cache(maxsize=4096)
def _owner_ref(kind: str, group: str, name: str, namespace: str | None) -> ObjectRef:
    """One shared ObjectRef per owner: the pods of a ReplicaSet name it over and over."""
    return ObjectRef(kind_name(kind, group), sys.intern(name), namespace)


def owner_ref(obj: dict[str, Any], namespace: str | None) -> ObjectRef | None:
    """The controlling owner of ``obj``, in the child's namespace (owners of namespaced
    objects live in the same namespace), or None."""
    meta = obj.get("metadata")
    entry = _controller(meta.get("ownerReferences") if isinstance(meta, dict) else None)
    if entry is None:
        return None
    api_version = entry.get("apiVersion")
    group = api_version.rpartition("/")[0] if isinstance(api_version, str) else ""  # "v1": the core group
    return _owner_ref(entry["kind"], group, entry["name"], namespace)
