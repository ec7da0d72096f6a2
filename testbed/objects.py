"""Builders of realistic raw Kubernetes and Camel K objects (JSON dicts), for tests and demos.

Shapes follow what the API server returns for Camel K 2.x and Knative Serving v1, with just
enough fields: a builder takes the parts a test cares about and fills in the rest.

    objects.integration_kit(objects.kit_name(1), "camel-k",
                            image=objects.kit_image("registry:5000", "camel-k", objects.kit_name(1), 1))
"""

from __future__ import annotations

import hashlib
from typing import Any

XID_ALPHABET = "0123456789abcdefghijklmnopqrstuv"
KIT_TYPE = "camel.apache.org/kit.type"
INTEGRATION_LABEL = "camel.apache.org/integration"
CREATED = "2024-01-01T00:00:00Z"


# --- names and images ------------------------------------------------------------------


def digest(seed: object) -> str:
    """A stable sha256 digest for ``seed``."""
    return "sha256:" + hashlib.sha256(str(seed).encode()).hexdigest()


def kit_name(seed: object) -> str:
    """``kit-`` + 20 characters of ``[0-9a-v]`` (an xid), stable for ``seed``."""
    h = hashlib.sha256(f"kit-{seed}".encode()).digest()
    return "kit-" + "".join(XID_ALPHABET[b % 32] for b in h[:20])


def kit_image(registry: str, organization: str, kit: str, seed: object | None = None) -> str:
    """``<registry>/<organization>/camel-k-<kit>@sha256:…`` as the operator writes it after a build."""
    return f"{registry}/{organization}/camel-k-{kit}@{digest(seed if seed is not None else kit)}"


def meta(name: str, namespace: str | None = "default", labels: dict[str, str] | None = None,
         created: str | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name}
    if namespace is not None:
        out["namespace"] = namespace
    if labels:
        out["labels"] = dict(labels)
    if created:
        out["creationTimestamp"] = created
    out.update(extra)
    return out


Owner = tuple[str, str, str]  # (apiVersion, kind, name) of the controlling owner
INTEGRATION_API = "camel.apache.org/v1"


def uid(kind: str, namespace: str | None, name: str) -> str:
    """A stable UUID-shaped uid for an object."""
    h = hashlib.sha256(f"{kind}/{namespace}/{name}".encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def owner_reference(api_version: str, kind: str, name: str, namespace: str | None = None, *,
                    controller: bool = True) -> dict[str, Any]:
    """An ``ownerReferences`` entry as a controller writes it (``controller`` and ``blockOwnerDeletion``)."""
    ref: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "name": name, "uid": uid(kind, namespace, name)}
    if controller:
        ref.update(controller=True, blockOwnerDeletion=True)
    return ref


def _own(obj: dict[str, Any], owner: Owner | None) -> dict[str, Any]:
    """``obj`` controlled by ``owner`` (in ``obj``'s namespace), when there is one."""
    if owner is not None:
        api_version, kind, name = owner
        obj["metadata"]["ownerReferences"] = [owner_reference(api_version, kind, name,
                                                              obj["metadata"].get("namespace"))]
    return obj


def containers(images: list[str] | dict[str, str] | None) -> list[dict[str, Any]]:
    """Containers from a list of images (named c0, c1, …) or a {name: image} dict."""
    named = images if isinstance(images, dict) else {f"c{i}": img for i, img in enumerate(images or [])}
    return [{"name": n, "image": img} for n, img in named.items()]


def pod_spec(images: Any = None, init: Any = None, ephemeral: Any = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": containers(images)}
    if init:
        spec["initContainers"] = containers(init)
    if ephemeral:
        spec["ephemeralContainers"] = containers(ephemeral)
    return spec


# --- core and workloads ----------------------------------------------------------------


def pod(name: str, namespace: str = "default", *, images: Any = None, init: Any = None, ephemeral: Any = None,
        image_ids: dict[str, str] | None = None, status_images: dict[str, str] | None = None,
        labels: dict[str, str] | None = None, phase: str = "Running", owner: Owner | None = None) -> dict[str, Any]:
    """A Pod; ``image_ids`` maps a container name to the runtime's ``imageID`` (e.g.
    ``docker-pullable://repo@sha256:…``); ``status_images`` overrides ``status…image``;
    ``owner`` is its controller, e.g. ``("apps/v1", "ReplicaSet", "orders-5d4f8b9c7")``."""
    spec = pod_spec(images, init, ephemeral)
    statuses: dict[str, list[dict[str, Any]]] = {}
    for kind, skind in (("containers", "containerStatuses"), ("initContainers", "initContainerStatuses"),
                        ("ephemeralContainers", "ephemeralContainerStatuses")):
        for c in spec.get(kind, []):
            if image_ids and c["name"] in image_ids:
                image = (status_images or {}).get(c["name"], c["image"])
                statuses.setdefault(skind, []).append(
                    {"name": c["name"], "image": image, "imageID": image_ids[c["name"]], "ready": True,
                     "restartCount": 0})
    return _own({"apiVersion": "v1", "kind": "Pod", "metadata": meta(name, namespace, labels),
                 "spec": spec, "status": {"phase": phase, **statuses}}, owner)


def _template(images: Any, init: Any = None, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"labels": dict(labels or {})}, "spec": pod_spec(images, init)}


def _workload(api: str, kind: str, name: str, namespace: str, images: Any, init: Any,
              labels: dict[str, str] | None, owner: Owner | None = None) -> dict[str, Any]:
    return _own({"apiVersion": api, "kind": kind, "metadata": meta(name, namespace, labels),
                 "spec": {"selector": {"matchLabels": {"app": name}},
                          "template": _template(images, init, {"app": name, **(labels or {})})}}, owner)


def deployment(name: str, namespace: str = "default", *, images: Any = None, init: Any = None,
               labels: dict[str, str] | None = None, owner: Owner | None = None) -> dict[str, Any]:
    """A Deployment; one Camel K creates has ``owner=(INTEGRATION_API, "Integration", name)``."""
    return _workload("apps/v1", "Deployment", name, namespace, images, init, labels, owner)


def replicaset(name: str, namespace: str = "default", *, images: Any = None, init: Any = None,
               labels: dict[str, str] | None = None, owner: Owner | None = None) -> dict[str, Any]:
    """A ReplicaSet; one a Deployment rolled out has ``owner=("apps/v1", "Deployment", name)``."""
    return _workload("apps/v1", "ReplicaSet", name, namespace, images, init, labels, owner)


def statefulset(name: str, namespace: str = "default", *, images: Any = None, init: Any = None,
                labels: dict[str, str] | None = None) -> dict[str, Any]:
    return _workload("apps/v1", "StatefulSet", name, namespace, images, init, labels)


def daemonset(name: str, namespace: str = "default", *, images: Any = None, init: Any = None,
              labels: dict[str, str] | None = None) -> dict[str, Any]:
    return _workload("apps/v1", "DaemonSet", name, namespace, images, init, labels)


def job(name: str, namespace: str = "default", *, images: Any = None, init: Any = None,
        labels: dict[str, str] | None = None, owner: Owner | None = None) -> dict[str, Any]:
    """A Job; one a CronJob started has ``owner=("batch/v1", "CronJob", name)``."""
    obj = _workload("batch/v1", "Job", name, namespace, images, init, labels, owner)
    obj["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    return obj


def cronjob(name: str, namespace: str = "default", *, images: Any = None, init: Any = None,
            labels: dict[str, str] | None = None, schedule: str = "*/5 * * * *",
            owner: Owner | None = None) -> dict[str, Any]:
    template = _template(images, init, labels)
    template["spec"]["restartPolicy"] = "Never"
    return _own({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta(name, namespace, labels),
                 "spec": {"schedule": schedule, "jobTemplate": {"spec": {"template": template}}}}, owner)


def configmap(name: str, namespace: str = "default", *, data: dict[str, str] | None = None,
              binary_data: dict[str, str] | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(name, namespace)}
    if data is not None:
        obj["data"] = data
    if binary_data is not None:
        obj["binaryData"] = binary_data
    return obj


# --- Knative Serving -------------------------------------------------------------------


def knative_service(name: str, namespace: str = "default", *, image: str,
                    labels: dict[str, str] | None = None, owner: Owner | None = None) -> dict[str, Any]:
    return _own({"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": meta(name, namespace, labels),
                 "spec": {"template": {"metadata": {"labels": dict(labels or {})},
                                       "spec": {"containers": [{"name": "integration", "image": image}]}}}}, owner)


def knative_revision(name: str, namespace: str = "default", *, image: str, image_digest: str | None = None,
                     labels: dict[str, str] | None = None, owner: Owner | None = None) -> dict[str, Any]:
    """A Revision; ``image_digest`` is what Knative resolved the tag to (status). Knative's
    Configuration controls it: ``owner=("serving.knative.dev/v1", "Configuration", service)``."""
    status: dict[str, Any] = {}
    if image_digest:
        status["containerStatuses"] = [{"name": "integration", "imageDigest": image_digest}]
    return _own({"apiVersion": "serving.knative.dev/v1", "kind": "Revision",
                 "metadata": meta(name, namespace, labels),
                 "spec": {"containers": [{"name": "integration", "image": image}]}, "status": status}, owner)


# --- Camel K ---------------------------------------------------------------------------


def integration(name: str, namespace: str = "default", *, kit: str | None = None, kit_namespace: str | None = None,
                image: str | None = None, phase: str = "Running", trait_image: str | None = None,
                spec_kit: str | None = None) -> dict[str, Any]:
    """An Integration using ``kit`` (status.integrationKit) and running ``image`` (status.image).

    ``trait_image`` sets ``spec.traits.container.image``; ``spec_kit`` pins ``spec.integrationKit``.
    ``status.digest`` is a spec hash, as in Camel K, to catch anyone mistaking it for an image digest.
    """
    spec: dict[str, Any] = {"flows": [{"from": {"uri": "timer:tick", "steps": [{"to": "log:info"}]}}]}
    if trait_image:
        spec["traits"] = {"container": {"image": trait_image}}
    if spec_kit:
        spec["integrationKit"] = {"name": spec_kit, "namespace": kit_namespace or namespace}
    status: dict[str, Any] = {"phase": phase, "digest": "vmu6Dxr5qKPHT3-ZSlDyxPmcI2LxnjXLgxVLKHXf3r6w"}
    if kit:
        status["integrationKit"] = {"name": kit, "namespace": kit_namespace or namespace}
    if image:
        status["image"] = image
    return {"apiVersion": "camel.apache.org/v1", "kind": "Integration", "metadata": meta(name, namespace),
            "spec": spec, "status": status}


def integration_kit(name: str, namespace: str = "camel-k", *, kit_type: str = "platform", phase: str = "Ready",
                    created: str = CREATED, image: str | None = None, base_image: str | None = None,
                    root_image: str | None = None, spec_image: str | None = None,
                    labels: dict[str, str] | None = None) -> dict[str, Any]:
    """An IntegrationKit; ``image`` is ``status.image`` (the built ``repo@sha256:…``)."""
    all_labels = {KIT_TYPE: kit_type, "camel.apache.org/runtime.version": "3.8.1",
                  "camel.apache.org/runtime.provider": "quarkus", "camel.apache.org/kit.layout": "fast-jar",
                  **(labels or {})}
    spec: dict[str, Any] = {"dependencies": ["camel:timer", "camel:log"]}
    if spec_image:
        spec["image"] = spec_image
    status: dict[str, Any] = {"phase": phase, "digest": "vAZh9fwqaSXhV6Dh4nzpd9G4yy3oLvPxEv3WJ5TrGBV8",
                              "runtimeVersion": "3.8.1", "platform": "camel-k"}
    for key, value in (("image", image), ("baseImage", base_image), ("rootImage", root_image)):
        if value:
            status[key] = value
    return {"apiVersion": "camel.apache.org/v1", "kind": "IntegrationKit",
            "metadata": meta(name, namespace, all_labels, created), "spec": spec, "status": status}


def _registry(address: str | None, organization: str | None, insecure: bool, secret: str | None,
              ca: str | None) -> dict[str, Any]:
    reg: dict[str, Any] = {}
    for key, value in (("address", address), ("organization", organization), ("secret", secret), ("ca", ca)):
        if value:
            reg[key] = value
    if insecure:
        reg["insecure"] = True
    return reg


def integration_platform(name: str = "camel-k", namespace: str = "camel-k", *, address: str | None = None,
                         organization: str | None = None, insecure: bool = False, secret: str | None = None,
                         ca: str | None = None, in_status: bool = True, in_spec: bool = True,
                         base_image: str | None = "eclipse-temurin:17") -> dict[str, Any]:
    """An IntegrationPlatform; the status copy has the organization defaulted like the operator's."""
    spec_reg = _registry(address, organization, insecure, secret, ca)
    status_reg = _registry(address, organization or namespace, insecure, secret, ca)
    spec: dict[str, Any] = {"build": {"registry": spec_reg} if in_spec and spec_reg else {}}
    status: dict[str, Any] = {"phase": "Ready", "version": "2.5.0",
                              "build": {"registry": status_reg} if in_status and address else {}}
    if base_image:
        status["build"]["baseImage"] = base_image
    return {"apiVersion": "camel.apache.org/v1", "kind": "IntegrationPlatform", "metadata": meta(name, namespace),
            "spec": spec, "status": status}


def integration_profile(name: str, namespace: str = "default", *, address: str | None = None,
                        organization: str | None = None, insecure: bool = False,
                        base_image: str | None = None) -> dict[str, Any]:
    build: dict[str, Any] = {}
    reg = _registry(address, organization, insecure, None, None)
    if reg:
        build["registry"] = reg
    if base_image:
        build["baseImage"] = base_image
    return {"apiVersion": "camel.apache.org/v1", "kind": "IntegrationProfile", "metadata": meta(name, namespace),
            "spec": {"build": build}}


def build(name: str, namespace: str = "camel-k", *, phase: str = "Running", image: str | None = None,
          base_image: str = "eclipse-temurin:17", status_image: str | None = None) -> dict[str, Any]:
    """A Build (``ikb``) with builder, package and jib tasks; ``image`` is the one it pushes."""
    tasks: list[dict[str, Any]] = [
        {"builder": {"name": "builder", "baseImage": base_image, "runtime": {"version": "3.8.1"}}},
        {"package": {"name": "package", "baseImage": base_image}},
    ]
    if image:
        tasks.append({"jib": {"name": "jib", "baseImage": base_image, "image": image}})
    status: dict[str, Any] = {"phase": phase}
    if status_image:
        status.update({"image": status_image, "baseImage": base_image, "digest": status_image.rpartition("@")[2]})
    return {"apiVersion": "camel.apache.org/v1", "kind": "Build", "metadata": meta(name, namespace),
            "spec": {"tasks": tasks, "timeout": "5m0s"}, "status": status}


# --- sources added later: ReplicationController, Knative Configuration, Pipe, KameletBinding ----


def replication_controller(name: str, namespace: str = "default", *, images: Any = None, init: Any = None,
                           labels: dict[str, str] | None = None) -> dict[str, Any]:
    obj = _workload("v1", "ReplicationController", name, namespace, images, init, labels)
    obj["spec"]["selector"] = {"app": name}  # a plain map, not a LabelSelector
    return obj


def knative_configuration(name: str, namespace: str = "default", *, image: str,
                          owner: Owner | None = None) -> dict[str, Any]:
    """A Configuration; the Knative Service of the same name controls it."""
    obj = knative_service(name, namespace, image=image, owner=owner)
    obj["kind"] = "Configuration"
    return obj


def _binding(api: str, kind: str, name: str, namespace: str, annotation: str | None,
             traits: dict[str, Any] | None, integration_traits: dict[str, Any] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"source": {"ref": {"apiVersion": "camel.apache.org/v1", "kind": "Kamelet",
                                               "name": "timer-source"}, "properties": {"message": "hi"}},
                            "sink": {"uri": "log:info"}}
    if traits is not None:
        spec["traits"] = traits
    if integration_traits is not None:
        spec["integration"] = {"traits": integration_traits}
    obj = {"apiVersion": api, "kind": kind, "metadata": meta(name, namespace), "spec": spec,
           "status": {"phase": "Ready"}}
    if annotation is not None:
        obj["metadata"]["annotations"] = {"trait.camel.apache.org/container.image": annotation}
    return obj


def pipe(name: str, namespace: str = "default", *, annotation: str | None = None, trait_image: str | None = None,
         integration_trait_image: str | None = None) -> dict[str, Any]:
    """A Pipe; its container trait's image as the annotation (``kamel bind --trait`` up to
    Camel K 2.8), in ``spec.traits`` (2.9+) or in the deprecated ``spec.integration.traits``."""
    return _binding("camel.apache.org/v1", "Pipe", name, namespace, annotation,
                    {"container": {"image": trait_image}} if trait_image else None,
                    {"container": {"image": integration_trait_image}} if integration_trait_image else None)


def kamelet_binding(name: str, namespace: str = "default", *, annotation: str | None = None,
                    integration_trait_image: str | None = None) -> dict[str, Any]:
    """A Camel K 1.x KameletBinding (``camel.apache.org/v1alpha1``)."""
    return _binding("camel.apache.org/v1alpha1", "KameletBinding", name, namespace, annotation, None,
                    {"container": {"image": integration_trait_image}} if integration_trait_image else None)

