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

import functools
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kitgc import imageref
from kitgc.cluster import sources as S
from kitgc.cluster import traits
from kitgc.cluster.objects import object_ref, owner_ref, source_kind
from kitgc.imageref import ImageRef, InvalidReference
from kitgc.model import Kit, KitUse, ObjectRef, Reference, UnparsableReference

KIT_TYPE_LABEL = "camel.apache.org/kit.type"
BUILD_FINISHED = frozenset({"Succeeded", "Failed", "Error", "Interrupted"})
_CONTAINER_KINDS = ("containers", "initContainers", "ephemeralContainers")
_STATUS_KINDS = ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses")
_RUNTIME_PREFIXES = ("docker-pullable://", "docker://")
_BARE_DIGEST = re.compile(r"[A-Za-z][A-Za-z0-9]*:[0-9a-fA-F]{32,}")


@dataclass
class Found:
    """What one or more objects contribute to the cluster snapshot."""

    references: list[Reference] = field(default_factory=list)
    kits: list[Kit] = field(default_factory=list)
    kit_uses: list[KitUse] = field(default_factory=list)
    unparsable: list[UnparsableReference] = field(default_factory=list)
    owners: dict[ObjectRef, ObjectRef] = field(default_factory=dict)  # child -> its controlling owner

    def extend(self, other: Found) -> None:
        """Add ``other``; a child already known keeps the owner first recorded for it."""
        self.references += other.references
        self.kits += other.kits
        self.kit_uses += other.kit_uses
        self.unparsable += other.unparsable
        for child, owner in other.owners.items():
            self.owners.setdefault(child, owner)

    def image(self, value: Any, src: ObjectRef, path: str, *, runtime: bool = False) -> None:
        """Record ``value`` found at ``path``: a Reference, or an UnparsableReference.

        ``None`` and "" are skipped (a template may leave the image to a webhook; a container
        not yet pulled has no imageID). ``runtime`` values come from a container runtime and
        may carry a ``docker-pullable://`` prefix or be a bare ``sha256:…`` image ID.
        """
        ref = self.parse(value, src, path, runtime=runtime)
        if ref is not None:
            self.references.append(Reference(ref, src, sys.intern(path)))  # one copy of each path

    def parse(self, value: Any, src: ObjectRef, path: str, *, runtime: bool = False) -> ImageRef | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            self.unparsable.append(UnparsableReference(repr(value), src, path, f"not a string: {type(value).__name__}"))
            return None
        text = value
        if runtime:
            for prefix in _RUNTIME_PREFIXES:
                if text.startswith(prefix):
                    text = text[len(prefix):]
        try:
            return _parse(text, runtime)
        except InvalidReference as exc:
            self.unparsable.append(UnparsableReference(value, src, path, str(exc)))
            return None


@functools.lru_cache(maxsize=16384)
def _parse(text: str, runtime: bool) -> ImageRef:
    """Parsed once per distinct string: 20,000 pods name a few thousand images, and the
    (immutable) ImageRef is shared by every reference to it, in time and in memory."""
    if runtime and _BARE_DIGEST.fullmatch(text):
        return imageref.digest_only(text)
    return imageref.parse(text)


def _get(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _items(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _begin(kind: str, obj: dict[str, Any]) -> tuple[Found, ObjectRef]:
    """A fresh Found and ``obj``'s ref, with ``obj``'s owner recorded: every extractor starts here."""
    found, src = Found(), object_ref(kind, obj)
    owner = owner_ref(obj, src.namespace)
    if owner is not None and src.name:  # a nameless object is no link in any chain
        found.owners[src] = owner
    return found, src


def pod_spec(found: Found, spec: Any, src: ObjectRef, prefix: str) -> None:
    """Images of containers, init containers and ephemeral containers of a pod spec."""
    for kind in _CONTAINER_KINDS:
        for i, c in enumerate(_items(_get(spec, kind))):
            found.image(c.get("image"), src, f"{prefix}.{kind}[{c.get('name') or i}].image")


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
}


def extract(source: S.Source, obj: dict[str, Any], now: datetime) -> Found:
    """Everything ``obj`` (an item listed from ``source``) contributes to the snapshot."""
    if source == S.INTEGRATION_KITS:
        return integration_kit(obj, now)
    fn = EXTRACTORS.get(source)
    if fn is None:
        raise KeyError(f"no extraction rule for {source}")
    return fn(obj)
