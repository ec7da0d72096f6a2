"""Builders of OpenShift objects (JSON dicts) as the API serves them, and of Camel K's S2I kits.

Field names follow openshift/api (image/v1, apps/v1, build/v1 types.go). The emulator serves
them with ``KubeAPI(openshift=True)`` (or ``kube.serve(group)`` for each of :data:`GROUPS`).

A kit built with the S2I publish strategy (Camel K <= 2.5 on OpenShift) comes with an
ImageStream and a BuildConfig named ``camel-k-<kit>`` in the kit's namespace, both controlled by
the kit, and the Image the build pushed::

    s2i = openshift.integration_kit_s2i(objects.kit_name(1), "shop", seed=1)
    kube.add(*s2i)                     # kit, stream, build config, image
    s2i.kit["status"]["image"]         # image-registry.openshift-image-registry.svc:5000/shop/camel-k-kit-…@sha256:…

Owners: ``owner`` is an IntegrationKit's name, or any ``(apiVersion, kind, name)``; the
reference carries ``owner_uid`` when given, else :func:`testbed.objects.uid` of the owner, which
is the uid :func:`integration_kit_s2i` gives its kit (the emulator also matches an owner by
kind and name when the uid names nothing it stores).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from testbed import objects
from testbed.kubeopenshift import REGISTRY_HOST
from testbed.kubestore import IMAGE, OPENSHIFT, OPENSHIFT_APPS, OPENSHIFT_BUILD

__all__ = ["GROUPS", "IMAGE", "OPENSHIFT_APPS", "OPENSHIFT_BUILD", "REGISTRY_HOST", "S2IKit", "build_config",
           "deployment_config", "image", "image_stream", "integration_kit_s2i", "owner_reference"]

GROUPS = OPENSHIFT
IMAGE_API, APPS_API, BUILD_API = f"{IMAGE}/v1", f"{OPENSHIFT_APPS}/v1", f"{OPENSHIFT_BUILD}/v1"
LAYER_TYPE = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"

Owner = str | objects.Owner  # an IntegrationKit's name, or (apiVersion, kind, name)
Event = tuple[str, str]  # (image digest, created) of one push to a tag; the first is current
Ref = tuple[str, str] | tuple[str, str, str]  # (kind, name) or (kind, name, namespace): an ObjectReference


def owner_reference(owner: Owner, namespace: str | None, uid: str | None = None) -> dict[str, Any]:
    """A controller reference to ``owner`` (an IntegrationKit when a plain name)."""
    api, kind, name = (objects.INTEGRATION_API, "IntegrationKit", owner) if isinstance(owner, str) else owner
    ref = objects.owner_reference(api, kind, name, namespace)
    if uid:
        ref["uid"] = uid
    return ref


def _meta(name: str, namespace: str | None, labels: Mapping[str, str] | None, created: str,
          owner: Owner | None, owner_uid: str | None) -> dict[str, Any]:
    meta = objects.meta(name, namespace, dict(labels or {}), created)
    if owner is not None:
        meta["ownerReferences"] = [owner_reference(owner, namespace, owner_uid)]
    return meta


def _ref(ref: Ref) -> dict[str, str]:
    out = {"kind": ref[0], "name": ref[1]}
    if len(ref) == 3:
        out["namespace"] = ref[2]
    return out


# --- image.openshift.io ------------------------------------------------------------------


def image_stream(name: str, namespace: str = "default", *, tags: Mapping[str, Iterable[Event]] | None = None,
                 spec_tags: Mapping[str, Ref] | None = None, lookup_local: bool = True, owner: Owner | None = None,
                 owner_uid: str | None = None, labels: Mapping[str, str] | None = None,
                 registry_host: str = REGISTRY_HOST, public_host: str | None = None,
                 created: str = objects.CREATED) -> dict[str, Any]:
    """An ImageStream whose ``status.tags`` record ``tags``: tag -> pushes ``(digest, created)``,
    newest first (``items[0]`` is the tag's current image). Pushed tags (what a build or the
    registry writes) have no spec entry; ``spec_tags`` adds ``spec.tags`` entries that track a
    reference, tag -> ``(kind, name[, namespace])`` with kind ``DockerImage``,
    ``ImageStreamTag`` or ``ImageStreamImage``."""
    repo = f"{registry_host}/{namespace}/{name}"
    history = {tag: list(events) for tag, events in (tags or {}).items()}
    generation = max((len(e) for e in history.values()), default=1) + len(spec_tags or {})
    spec: dict[str, Any] = {"lookupPolicy": {"local": lookup_local}}
    if spec_tags:
        spec["tags"] = [{"name": tag, "annotations": None, "from": _ref(ref), "generation": generation,
                         "importPolicy": {"importMode": "Legacy"}, "referencePolicy": {"type": "Source"}}
                        for tag, ref in spec_tags.items()]
    status: dict[str, Any] = {"dockerImageRepository": repo}
    if public_host:
        status["publicDockerImageRepository"] = f"{public_host}/{namespace}/{name}"
    status_tags = [{"tag": tag, "items": [{"created": when, "dockerImageReference": f"{repo}@{digest}",
                                           "image": digest, "generation": len(events) - i}
                                          for i, (digest, when) in enumerate(events)]}
                   for tag, events in history.items() if events]
    if status_tags:
        status["tags"] = status_tags
    meta = _meta(name, namespace, labels, created, owner, owner_uid)
    meta["generation"] = generation
    return {"apiVersion": IMAGE_API, "kind": "ImageStream", "metadata": meta, "spec": spec, "status": status}


def image(digest: str, size: int | None = None, layers: Iterable[tuple[str, int] | tuple[str, int, str]] = (), *,
          reference: str | None = None, created: str = objects.CREATED, managed: bool = True) -> dict[str, Any]:
    """An Image (cluster-scoped, named by its digest); ``layers`` are ``(digest, size[, mediaType])``
    and ``size`` (``dockerImageMetadata.Size``) defaults to their sum; ``reference`` is where it was
    pushed (``dockerImageReference``)."""
    layer_list = [{"name": layer[0], "size": layer[1], "mediaType": layer[2] if len(layer) == 3 else LAYER_TYPE}
                  for layer in layers]
    config = "sha256:" + hashlib.sha256(f"config-{digest}".encode()).hexdigest()
    annotations = {"image.openshift.io/dockerLayersOrder": "ascending"}
    if managed:
        annotations["openshift.io/image.managed"] = "true"
    return {"apiVersion": IMAGE_API, "kind": "Image",
            "metadata": objects.meta(digest, None, created=created, annotations=annotations),
            "dockerImageReference": reference or f"{REGISTRY_HOST}/default/unknown@{digest}",
            "dockerImageMetadata": {"kind": "DockerImage", "apiVersion": "image.openshift.io/1.0", "Id": config,
                                    "Created": created, "ContainerConfig": {}, "Config": {"User": "1001"},
                                    "Architecture": "amd64",
                                    "Size": size if size is not None else sum(la["size"] for la in layer_list)},
            "dockerImageMetadataVersion": "1.0", "dockerImageLayers": layer_list,
            "dockerImageManifestMediaType": MANIFEST_TYPE}


# --- apps.openshift.io and build.openshift.io ---------------------------------------------


def deployment_config(name: str, namespace: str = "default", *, images: Any = None,
                      triggers: Mapping[str, str] | None = None, trigger_namespace: str | None = None,
                      labels: Mapping[str, str] | None = None, replicas: int = 1, owner: Owner | None = None,
                      owner_uid: str | None = None, created: str = objects.CREATED) -> dict[str, Any]:
    """A DeploymentConfig running ``images`` (containers as in :func:`testbed.objects.pod`);
    ``triggers`` maps a container to the ImageStreamTag (``stream:tag``, in ``trigger_namespace``,
    default the DC's) whose image it runs: one ImageChange trigger per tag, and a ConfigChange one."""
    by_tag: dict[str, list[str]] = {}
    for container, istag in (triggers or {}).items():
        by_tag.setdefault(istag, []).append(container)
    trigger_list: list[dict[str, Any]] = [{"type": "ConfigChange"}]
    trigger_list += [{"type": "ImageChange", "imageChangeParams": {
        "automatic": True, "containerNames": names,
        "from": {"kind": "ImageStreamTag", "name": istag, "namespace": trigger_namespace or namespace}}}
        for istag, names in by_tag.items()]
    pod_labels = {"deploymentconfig": name, **(labels or {})}
    spec = {"strategy": {"type": "Rolling", "rollingParams": {"intervalSeconds": 1, "timeoutSeconds": 600}},
            "triggers": trigger_list, "replicas": replicas, "revisionHistoryLimit": 10, "test": False,
            "selector": {"deploymentconfig": name},
            "template": {"metadata": {"labels": pod_labels}, "spec": objects.pod_spec(images)}}
    status = {"latestVersion": 1, "observedGeneration": 1, "replicas": replicas, "updatedReplicas": replicas,
              "availableReplicas": replicas, "unavailableReplicas": 0, "readyReplicas": replicas}
    return {"apiVersion": APPS_API, "kind": "DeploymentConfig",
            "metadata": _meta(name, namespace, labels, created, owner, owner_uid), "spec": spec, "status": status}


def build_config(name: str, namespace: str = "default", *, strategy: str = "Docker", base: Ref | None = None,
                 output: Ref | None = None, binary: bool = True, labels: Mapping[str, str] | None = None,
                 owner: Owner | None = None, owner_uid: str | None = None,
                 created: str = objects.CREATED) -> dict[str, Any]:
    """A BuildConfig; ``strategy`` is ``Docker``, ``Source`` or ``Custom`` and ``base`` its
    ``from`` (required but for Docker); ``output`` its ``output.to``, ``(kind, name)`` with kind
    ``ImageStreamTag`` or ``DockerImage``. Camel K's: Docker, no base, binary source, output
    ``ImageStreamTag camel-k-<kit>:<tag>``."""
    key = {"Docker": "dockerStrategy", "Source": "sourceStrategy", "Custom": "customStrategy"}[strategy]
    if base is None and strategy != "Docker":
        raise ValueError(f"a {strategy} strategy needs a base image (from)")
    spec: dict[str, Any] = {"nodeSelector": None, "postCommit": {}, "resources": {}, "runPolicy": "Serial",
                            "source": {"type": "Binary", "binary": {}} if binary else {"type": "None"},
                            "strategy": {"type": strategy, key: {"from": _ref(base)} if base else {}},
                            "output": {"to": _ref(output)} if output else {}, "triggers": []}
    return {"apiVersion": BUILD_API, "kind": "BuildConfig",
            "metadata": _meta(name, namespace, labels, created, owner, owner_uid), "spec": spec,
            "status": {"lastVersion": 1}}


# --- Camel K with the S2I publish strategy -------------------------------------------------


class S2IKit(NamedTuple):
    """An S2I kit and what it owns; iterate it to add them all (``kube.add(*s2i)``)."""

    kit: dict[str, Any]
    stream: dict[str, Any]
    build_config: dict[str, Any]
    image: dict[str, Any]


def integration_kit_s2i(name: str, namespace: str = "camel-k", *, seed: object | None = None, tag: str | None = None,
                        created: str = objects.CREATED, layers: Iterable[tuple[str, int]] | None = None,
                        integration: str | None = None, registry_host: str = REGISTRY_HOST,
                        phase: str = "Ready", **kit: Any) -> S2IKit:
    """An IntegrationKit built by S2I, with its uid (:func:`testbed.objects.uid`), and the
    ImageStream ``camel-k-<name>`` and BuildConfig of that name it controls, and the Image pushed
    to tag ``tag`` (the kit's resourceVersion at build time; made up from ``seed`` by default).
    ``status.image`` is ``<registry_host>/<namespace>/camel-k-<name>@<digest>``; ``integration``
    adds ``camel.apache.org/created.by.*`` labels to all three; other keywords go to
    :func:`testbed.objects.integration_kit`."""
    digest = objects.digest(seed if seed is not None else name)
    tag = tag or str(100000 + int(digest[7:13], 16) % 900000)
    stream_name = f"camel-k-{name}"
    repo = f"{registry_host}/{namespace}/{stream_name}"
    labels = dict(kit.pop("labels", None) or {})
    if integration:
        by = "camel.apache.org/created.by"
        labels.update({f"{by}.kind": "Integration", f"{by}.name": integration, f"{by}.namespace": namespace})
    obj = objects.integration_kit(name, namespace, phase=phase, created=created, image=f"{repo}@{digest}",
                                  labels=labels, **kit)
    uid = obj["metadata"]["uid"] = objects.uid("IntegrationKit", namespace, name)
    stream = image_stream(stream_name, namespace, tags={tag: [(digest, created)]}, owner=name, owner_uid=uid,
                          labels=labels, registry_host=registry_host, created=created)
    bc = build_config(stream_name, namespace, output=("ImageStreamTag", f"{stream_name}:{tag}"), labels=labels,
                      owner=name, owner_uid=uid, created=created)
    layer_list = list(layers) if layers is not None else [(objects.digest(("layer", digest, i)), 10_000_000 >> i)
                                                          for i in range(3)]
    return S2IKit(obj, stream, bc, image(digest, layers=layer_list, reference=f"{repo}@{digest}", created=created))
