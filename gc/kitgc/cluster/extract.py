"""Image references, kits and kit uses, pulled out of raw Kubernetes JSON objects.

Pure functions over dicts, one per source kind, so that every rule is testable without
a server. Each rule errs on the side of keeping: an image string that cannot be parsed is
not skipped but reported as :class:`UnparsableReference` (the pass then aborts), because a
reference we cannot read might be the one that protects an image.

Deliberately absent: ``status.digest`` of Integrations and IntegrationKits, which is a
hash of the spec and not an image digest; and references from IntegrationKits, whose
images the planner protects itself once it has decided which kits stay.

Every object's controlling owner (``metadata.ownerReferences``) is recorded too, so that a
reference can be followed up its chain (Pod -> ReplicaSet -> Deployment -> Integration)
without guessing from names. Kinds are named by :func:`kind_name` on both ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from kitgc.cluster import openshift_refs, traits
from kitgc.cluster import sources as S
from kitgc.cluster.found import Found, pod_spec
from kitgc.cluster.found import begin as _begin
from kitgc.cluster.objects import source_kind
from kitgc.cluster.raw import get as _get
from kitgc.cluster.raw import items as _items
from kitgc.model import Kit, KitUse, ObjectRef

KIT_TYPE_LABEL = "camel.apache.org/kit.type"
BUILD_FINISHED = frozenset({"Succeeded", "Failed", "Error", "Interrupted"})
_STATUS_KINDS = ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses")


def container_statuses(found: Found, status: Any, src: ObjectRef, prefix: str = "status") -> None:
    """What the runtime actually runs: ``imageID`` (usually by digest) and ``image``."""
    for kind in _STATUS_KINDS:
        for i, c in enumerate(_items(_get(status, kind))):
            where = f"{prefix}.{kind}[{c.get('name') or i}]"
            found.image(c.get("imageID"), src, f"{where}.imageID", runtime=True)
            found.image(c.get("image"), src, f"{where}.image", runtime=True)


def pod(obj: dict[str, Any], kind: str = source_kind(S.PODS)) -> Found:
    found, src = _begin(kind, obj)
    pod_spec(found, obj.get("spec"), src, "spec")
    container_statuses(found, obj.get("status"), src)
    return found


def workload(kind: str) -> Callable[[dict[str, Any]], Found]:
    """Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, ReplicationController, Knative
    Service and Configuration: ``spec.template.spec``."""

    def extract(obj: dict[str, Any]) -> Found:
        found, src = _begin(kind, obj)
        pod_spec(found, _get(obj, "spec", "template", "spec"), src, "spec.template.spec")
        return found

    return extract


def cronjob(obj: dict[str, Any]) -> Found:
    found, src = _begin(source_kind(S.CRONJOBS), obj)
    spec = _get(obj, "spec", "jobTemplate", "spec", "template", "spec")
    pod_spec(found, spec, src, "spec.jobTemplate.spec.template.spec")
    return found


def knative_revision(obj: dict[str, Any]) -> Found:
    """A Revision keeps its image even when scaled to zero; ``imageDigest`` is the resolved one."""
    found, src = _begin(source_kind(S.KNATIVE_REVISIONS), obj)
    pod_spec(found, obj.get("spec"), src, "spec")
    for i, c in enumerate(_items(_get(obj, "status", "containerStatuses"))):
        found.image(c.get("imageDigest"), src, f"status.containerStatuses[{c.get('name') or i}].imageDigest")
    return found


def integration(obj: dict[str, Any]) -> Found:
    found, src = _begin(source_kind(S.INTEGRATIONS), obj)
    found.image(_get(obj, "status", "image"), src, "status.image")
    # up to Camel K 2.3 a Pipe's trait annotations are copied onto its Integration, where they apply
    for path, value in (*traits.container_images(obj, "spec", "traits"), *traits.annotation_images(obj)):
        found.image(value, src, path)
    own_ns = src.namespace or ""
    for path in ("status", "spec"):
        kit = _get(obj, path, "integrationKit")
        if isinstance(kit, dict) and kit.get("name"):
            found.kit_uses.append(KitUse(src, str(kit.get("namespace") or own_ns), str(kit["name"])))
    old = _get(obj, "spec", "kit")  # Camel K 1.x: spec.kit is a kit name in the same namespace
    if isinstance(old, str) and old:
        found.kit_uses.append(KitUse(src, own_ns, old))
    return found


def binding(kind: str) -> Callable[[dict[str, Any]], Found]:
    """Pipe, KameletBinding: the container trait's image of the Integration they create, in
    every form Camel K stores it (see :mod:`kitgc.cluster.traits`)."""

    def extract(obj: dict[str, Any]) -> Found:
        found, src = _begin(kind, obj)
        for path, value in traits.binding_images(obj):
            found.image(value, src, path)
        return found

    return extract


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp as Kubernetes writes it, tz-aware; None when unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def integration_kit(obj: dict[str, Any], now: datetime) -> Found:
    """A Kit, not References: which kits stay is the planner's decision.

    A kit whose ``creationTimestamp`` cannot be read is dated ``now``: it then looks new,
    which can only delay its deletion.
    """
    found, src = _begin(source_kind(S.INTEGRATION_KITS), obj)
    labels = _get(obj, "metadata", "labels") or {}
    found.kits.append(
        Kit(
            namespace=src.namespace or "",
            name=src.name,
            kit_type=str(labels.get(KIT_TYPE_LABEL) or "") if isinstance(labels, dict) else "",
            phase=str(_get(obj, "status", "phase") or ""),
            created=parse_time(_get(obj, "metadata", "creationTimestamp")) or now,
            image=found.parse(_get(obj, "status", "image"), src, "status.image"),
            spec_image=found.parse(_get(obj, "spec", "image"), src, "spec.image"),
            base_image=found.parse(_get(obj, "status", "baseImage"), src, "status.baseImage"),
            root_image=found.parse(_get(obj, "status", "rootImage"), src, "status.rootImage"),
        )
    )
    return found


def _image_fields(value: Any, path: str, key: str = "") -> Iterable[tuple[str, Any]]:
    """Every value under a key ending in ``image``/``Image``, at any depth."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _image_fields(v, f"{path}.{k}", str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _image_fields(v, f"{path}[{i}]", key)
    elif key.endswith(("image", "Image")):
        yield path, value


def build(obj: dict[str, Any]) -> Found:
    """An unfinished Build is about to push, or pull, every image it names."""
    found, src = _begin(source_kind(S.BUILDS), obj)
    if _get(obj, "status", "phase") in BUILD_FINISHED:
        return found
    for part in ("spec", "status"):
        for path, value in _image_fields(obj.get(part), part):
            found.image(value, src, path)
    return found


def platform_like(kind: str) -> Callable[[dict[str, Any]], Found]:
    """IntegrationPlatform, IntegrationProfile: the base image every build starts from."""

    def extract(obj: dict[str, Any]) -> Found:
        found, src = _begin(kind, obj)
        for part in ("spec", "status"):
            found.image(_get(obj, part, "build", "baseImage"), src, f"{part}.build.baseImage")
        return found

    return extract


EXTRACTORS: dict[S.Source, Callable[[dict[str, Any]], Found]] = {
    S.PODS: pod,
    S.DEPLOYMENTS: workload(source_kind(S.DEPLOYMENTS)),
    S.REPLICASETS: workload(source_kind(S.REPLICASETS)),
    S.STATEFULSETS: workload(source_kind(S.STATEFULSETS)),
    S.DAEMONSETS: workload(source_kind(S.DAEMONSETS)),
    S.JOBS: workload(source_kind(S.JOBS)),
    S.CRONJOBS: cronjob,
    S.REPLICATION_CONTROLLERS: workload(source_kind(S.REPLICATION_CONTROLLERS)),
    S.KNATIVE_SERVICES: workload(source_kind(S.KNATIVE_SERVICES)),
    S.KNATIVE_CONFIGURATIONS: workload(source_kind(S.KNATIVE_CONFIGURATIONS)),
    S.KNATIVE_REVISIONS: knative_revision,
    S.INTEGRATIONS: integration,
    S.PIPES: binding(source_kind(S.PIPES)),
    S.KAMELET_BINDINGS: binding(source_kind(S.KAMELET_BINDINGS)),
    S.INTEGRATION_PLATFORMS: platform_like(source_kind(S.INTEGRATION_PLATFORMS)),
    S.INTEGRATION_PROFILES: platform_like(source_kind(S.INTEGRATION_PROFILES)),
    S.BUILDS: build,
    **openshift_refs.EXTRACTORS,
}


def extract(source: S.Source, obj: dict[str, Any], now: datetime) -> Found:
    """Everything ``obj`` (an item listed from ``source``) contributes to the snapshot; on
    every kind, the ImageStreamTags of its ``image.openshift.io/triggers`` annotation too."""
    fn = EXTRACTORS.get(source)
    if source == S.INTEGRATION_KITS:
        found = integration_kit(obj, now)
    elif fn is None:
        raise KeyError(f"no extraction rule for {source}")
    else:
        found = fn(obj)
    openshift_refs.triggers(found, source, obj)
    return found

