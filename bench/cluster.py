"""The benchmark's cluster: Camel K at scale, as raw JSON objects of realistic size.

Sizes matter more than exact shapes: a real Pod is 4-5 KB of JSON once ``managedFields``,
probes, the service-account volume and status are in, and an IntegrationKit carries its
artifact list. The collector's cost (transfer, JSON parsing, extraction) and memory follow
those bytes, so the objects here carry them. Deterministic: the same scene every run.

Who references what: 2,000 Integrations use 1,200 kits (some kits are shared), each runs
as a Deployment (with 2-3 ReplicaSets, old ones scaled to zero) and 7 Pods, all naming the
kit's current image by digest; 6,000 other Pods run images that are not kits. So the
latest build of the 1,200 kits in use is referenced (20 % of the manifests); the other 800
kits are unused and prunable, and older builds are garbage.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bench.scene import Kit, SceneSpec, check_scale
from testbed import objects

HOST = "image-registry.camel-k.svc:5000"  # how the cluster names the registry (matched by digest)
NAMESPACES = 40
INTEGRATIONS = 2000
PODS_PER_INTEGRATION = 7
OTHER_PODS = 6000
REPLICASETS = 5000
CREATED = "2024-03-01T10:00:00Z"
OTHER_IMAGES = (
    "registry.k8s.io/kube-proxy:v1.30.2", "registry.k8s.io/coredns/coredns:v1.11.1",
    "quay.io/prometheus/node-exporter:v1.8.1", "docker.io/library/nginx:1.27.0",
    "docker.io/library/redis:7.2", "quay.io/strimzi/kafka:0.41.0-kafka-3.7.0",
    "ghcr.io/fluxcd/source-controller:v1.3.0", "docker.io/bitnami/postgresql:16.3.0",
    "quay.io/jetstack/cert-manager-controller:v1.15.1",
    "docker.io/library/busybox@sha256:9ae97d36d26566ff84e8893c64a6dc4fe8ca6d1144bf5b87b2b85a32def253c7",
)


def _uid(*seed: object) -> str:
    return str(uuid.UUID(hashlib.md5(repr(seed).encode()).hexdigest()))


def _hash(*seed: object, n: int = 10) -> str:
    return hashlib.sha256(repr(seed).encode()).hexdigest()[:n]


def kit_image(kit: Kit, previous: bool = False) -> str:
    """The kit's current image by digest (``previous``: the build before it, as an old ReplicaSet runs)."""
    return f"{HOST}/{kit.repository}@{kit.digests[-2 if previous and len(kit.digests) > 1 else -1]}"


def _managed_fields(manager: str) -> list[dict[str, Any]]:
    fields = {"f:metadata": {"f:labels": {".": {}, "f:app": {}, "f:camel.apache.org/integration": {}},
                             "f:ownerReferences": {".": {}, 'k:{"uid":"x"}': {}}},
              "f:spec": {"f:containers": {'k:{"name":"integration"}': {
                  ".": {}, "f:env": {".": {}, 'k:{"name":"CAMEL_K_DIGEST"}': {".": {}, "f:name": {}, "f:value": {}},
                                     'k:{"name":"CAMEL_K_CONF"}': {".": {}, "f:name": {}, "f:value": {}}},
                  "f:image": {}, "f:imagePullPolicy": {}, "f:name": {}, "f:ports": {}, "f:resources": {},
                  "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {}, "f:volumeMounts": {}}},
                  "f:dnsPolicy": {}, "f:enableServiceLinks": {}, "f:restartPolicy": {}, "f:volumes": {}}}
    return [{"manager": manager, "operation": "Update", "apiVersion": "v1", "time": CREATED,
             "fieldsType": "FieldsV1", "fieldsV1": fields}]


def _container(image: str, name: str, integration: str | None) -> dict[str, Any]:
    env = [{"name": "CAMEL_K_DIGEST", "value": "vmu6Dxr5qKPHT3-ZSlDyxPmcI2LxnjXLgxVLKHXf3r6w"},
           {"name": "CAMEL_K_CONF", "value": "/etc/camel/application.properties"},
           {"name": "CAMEL_K_CONF_D", "value": "/etc/camel/conf.d"},
           {"name": "CAMEL_K_VERSION", "value": "2.5.0"},
           {"name": "CAMEL_K_INTEGRATION", "value": integration or name},
           {"name": "CAMEL_K_RUNTIME_VERSION", "value": "3.8.1"},
           {"name": "NAMESPACE", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}},
           {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}]
    probe: dict[str, Any] = {"failureThreshold": 3, "periodSeconds": 10, "successThreshold": 1, "timeoutSeconds": 1,
             "httpGet": {"path": "/q/health/ready", "port": 8080, "scheme": "HTTP"}}
    return {"name": name, "image": image, "imagePullPolicy": "IfNotPresent", "env": env,
            "command": ["java"], "args": ["-cp", "./resources:/deployments/dependencies/*", "io.quarkus.Main"],
            "workingDir": "/deployments", "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "125m", "memory": "256Mi"}},
            "livenessProbe": dict(probe, httpGet={**probe["httpGet"], "path": "/q/health/live"}),
            "readinessProbe": probe, "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
            "volumeMounts": [{"mountPath": "/etc/camel/conf.d/_configmaps/app", "name": "app-config", "readOnly": True},
                             {"mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                              "name": "kube-api-access", "readOnly": True}]}


def _pod_spec(image: str, name: str, integration: str | None) -> dict[str, Any]:
    return {"containers": [_container(image, name, integration)], "dnsPolicy": "ClusterFirst",
            "enableServiceLinks": True, "restartPolicy": "Always", "schedulerName": "default-scheduler",
            "securityContext": {}, "serviceAccount": "default", "serviceAccountName": "default",
            "terminationGracePeriodSeconds": 30,
            "tolerations": [{"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists",
                             "tolerationSeconds": 300},
                            {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists",
                             "tolerationSeconds": 300}],
            "volumes": [{"name": "app-config", "configMap": {"defaultMode": 420, "name": f"{name}-config"}},
                        {"name": "kube-api-access", "projected": {"defaultMode": 420, "sources": [
                            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                            {"configMap": {"items": [{"key": "ca.crt", "path": "ca.crt"}], "name": "kube-root-ca.crt"}},
                            {"downwardAPI": {"items": [{"fieldRef": {"apiVersion": "v1",
                                                                     "fieldPath": "metadata.namespace"},
                                                        "path": "namespace"}]}}]}}]}


def pod(name: str, namespace: str, image: str, owner: str | None, integration: str | None) -> dict[str, Any]:
    labels = {"app": integration or name.rsplit("-", 2)[0], "pod-template-hash": _hash(owner, n=10)}
    if integration:
        labels |= {"camel.apache.org/integration": integration, "camel.apache.org/generation": "1"}
    meta = objects.meta(name, namespace, labels, CREATED, uid=_uid("pod", namespace, name),
                        generateName=name[:-5], annotations={"prometheus.io/scrape": "true",
                                                             "camel.apache.org/operator.id": "camel-k"},
                        managedFields=_managed_fields("kube-controller-manager"))
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner,
                                    "uid": _uid("rs", namespace, owner), "controller": True,
                                    "blockOwnerDeletion": True}]
    ip = int(hashlib.md5(name.encode()).hexdigest()[:6], 16)
    pod_ip = f"10.{ip >> 16 & 255}.{ip >> 8 & 255}.{ip & 255}"
    repo, _, digest = image.partition("@")
    image_id = image if digest else f"{image.rsplit(':', 1)[0]}@sha256:{_hash(image, n=64)}"
    status = {"phase": "Running", "hostIP": "10.0.0.7", "hostIPs": [{"ip": "10.0.0.7"}], "podIP": pod_ip,
              "podIPs": [{"ip": pod_ip}], "qosClass": "Burstable", "startTime": CREATED,
              "conditions": [{"lastProbeTime": None, "lastTransitionTime": CREATED, "status": "True", "type": t}
                             for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady",
                                       "PodScheduled")],
              "containerStatuses": [{"containerID": f"containerd://{_hash(name, n=64)}", "image": repo if digest
                                     else image, "imageID": image_id, "lastState": {}, "name": "integration"
                                     if integration else name, "ready": True, "restartCount": 0, "started": True,
                                     "state": {"running": {"startedAt": CREATED}}}]}
    spec = _pod_spec(image, "integration" if integration else name, integration)
    spec["nodeName"] = f"worker-{ip % 12}"
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def _workload(kind: str, name: str, namespace: str, image: str, integration: str, replicas: int,
              owner: dict[str, Any]) -> dict[str, Any]:
    labels = {"app": integration, "camel.apache.org/integration": integration}
    meta = objects.meta(name, namespace, labels, CREATED, uid=_uid(kind, namespace, name), generation=1,
                        annotations={"deployment.kubernetes.io/revision": "1",
                                     "camel.apache.org/operator.id": "camel-k"},
                        ownerReferences=[owner], managedFields=_managed_fields("camel-k-operator"))
    template = {"metadata": {"labels": labels, "annotations": {"camel.apache.org/operator.id": "camel-k"}},
                "spec": _pod_spec(image, "integration", integration)}
    status = {"observedGeneration": 1, "replicas": replicas, "readyReplicas": replicas,
              "availableReplicas": replicas}
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": meta,
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"camel.apache.org/integration": integration}},
                     "template": template}, "status": status}


def integration(name: str, namespace: str, kit: Kit) -> dict[str, Any]:
    obj = objects.integration(name, namespace, kit=kit.name, kit_namespace="camel-k", image=kit_image(kit))
    obj["metadata"].update(uid=_uid("it", namespace, name), creationTimestamp=CREATED, generation=3,
                           annotations={"camel.apache.org/operator.id": "camel-k"})
    route = "\n".join(f"- from:\n    uri: timer:t{i}\n    steps:\n      - to: log:{name}-{i}" for i in range(6))
    obj["spec"]["sources"] = [{"name": f"{name}.yaml", "content": route}]
    obj["spec"]["traits"] = {"health": {"enabled": True}, "prometheus": {"enabled": True},
                             "container": {"requestMemory": "256Mi", "limitMemory": "1Gi"}}
    obj["status"].update(runtimeVersion="3.8.1", runtimeProvider="quarkus", version="2.5.0", replicas=1,
                         profile="Kubernetes", platform="camel-k",
                         conditions=[{"type": t, "status": "True", "lastTransitionTime": CREATED,
                                      "lastUpdateTime": CREATED, "reason": f"{t}Available",
                                      "message": f"{t} ok for {name}"}
                                     for t in ("IntegrationPlatformAvailable", "IntegrationKitAvailable",
                                               "DeploymentAvailable", "ServiceAvailable", "Ready")])
    return obj


def integration_kit(kit: Kit, index: int) -> dict[str, Any]:
    obj = objects.integration_kit(kit.name, "camel-k", image=kit_image(kit),
                                  base_image="eclipse-temurin:17", root_image="eclipse-temurin:17")
    obj["metadata"].update(uid=_uid("kit", kit.name), generation=1, resourceVersion=kit.tags[-1])
    deps = [f"mvn:org.apache.camel.quarkus:camel-quarkus-{d}" for d in
            ("timer", "log", "kafka", "http", "jackson", "rest", "platform-http", "micrometer", "bean", "direct")]
    obj["spec"]["dependencies"] = deps
    obj["status"]["artifacts"] = [
        {"id": f"org.apache.camel:camel-dep-{j}:4.8.0", "location": f"/tmp/kit-{index}/dependencies/dep-{j}.jar",
         "target": f"dependencies/org.apache.camel.camel-dep-{j}-4.8.0.jar",
         "checksum": f"sha1:{_hash('jar', j, n=40)}"} for j in range(30)]
    obj["status"]["conditions"] = [{"type": "IntegrationPlatformAvailable", "status": "True",
                                    "lastTransitionTime": CREATED, "reason": "IntegrationPlatformAvailable",
                                    "message": "camel-k/camel-k"}]
    return obj


@dataclass(frozen=True)
class ClusterSpec:
    """How many of each object the scene's cluster holds (see the module docstring)."""

    integrations: int = INTEGRATIONS
    pods_per_integration: int = PODS_PER_INTEGRATION
    other_pods: int = OTHER_PODS
    replicasets: int = REPLICASETS
    namespaces: int = NAMESPACES
    rollout_history: bool = False  # old ReplicaSets name the kit's previous build, not its current one

    @classmethod
    def for_scale(cls, scale: str) -> ClusterSpec:
        """Today's cluster times ``scale``; ``large``: 200,000 Pods, 40,000 ReplicaSets, 20,000 of the rest."""
        if check_scale(scale) == "large":
            return cls(integrations=20_000, other_pods=60_000, replicasets=40_000, namespaces=400,
                       rollout_history=True)
        f = int(scale)
        return cls(INTEGRATIONS * f, PODS_PER_INTEGRATION, OTHER_PODS * f, REPLICASETS * f, NAMESPACES * f)

    def replicasets_of(self, i: int) -> int:
        """Integration ``i``'s Deployment has 3 ReplicaSets while there are extra ones, else 2."""
        return 3 if i < self.replicasets - 2 * self.integrations else 2


class Scene:
    """The cluster's objects by kind and index, made on demand (``kind``, ``i``) -> dict.

    Indexable rather than a list, so that the emulator can serve 300,000 objects page by
    page without holding them (:mod:`bench.kubeserver`); deterministic, so a page asked
    twice is the same page.
    """

    def __init__(self, scene: SceneSpec, kits: list[Kit], spec: ClusterSpec | None = None) -> None:
        self.scene, self.kits, self.spec = scene, kits, spec or ClusterSpec()
        s = self.spec
        extra = max(0, min(s.replicasets - 2 * s.integrations, s.integrations))
        self.counts = {"IntegrationPlatform": 1, "IntegrationKit": len(kits), "Integration": s.integrations,
                       "Deployment": s.integrations, "ReplicaSet": 2 * s.integrations + extra,
                       "Pod": s.integrations * s.pods_per_integration + s.other_pods}
        self._extra = extra

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def _it(self, i: int) -> tuple[str, str, Kit]:
        return f"route-{i:04d}", f"team-{i % self.spec.namespaces:02d}", self.kits[i % self.scene.in_use]

    def make(self, kind: str, i: int) -> dict[str, Any]:
        """Object ``i`` (0-based) of ``kind``."""
        if kind == "IntegrationPlatform":
            return objects.integration_platform("camel-k", "camel-k", address=HOST,
                                                organization=self.scene.organization, insecure=True)
        if kind == "IntegrationKit":
            return integration_kit(self.kits[i], i)
        if kind == "Pod":
            return self._pod(i)
        if kind == "ReplicaSet":
            it, r = (i // 3, i % 3) if i < 3 * self._extra else (self._extra + (i - 3 * self._extra) // 2,
                                                                 (i - 3 * self._extra) % 2)
            name, ns, kit = self._it(it)
            rs = f"{name}-{_hash(name, r, n=10)}"
            image = kit_image(kit, previous=r > 0 and self.spec.rollout_history)
            dep_owner = {"apiVersion": "apps/v1", "kind": "Deployment", "name": name,
                         "uid": _uid("Deployment", ns, name), "controller": True, "blockOwnerDeletion": True}
            return _workload("ReplicaSet", rs, ns, image, name, self.spec.pods_per_integration if r == 0 else 0,
                             dep_owner)
        name, ns, kit = self._it(i)
        if kind == "Integration":
            return integration(name, ns, kit)
        if kind == "Deployment":
            it_owner = {"apiVersion": "camel.apache.org/v1", "kind": "Integration", "name": name,
                        "uid": _uid("it", ns, name), "controller": True, "blockOwnerDeletion": True}
            return _workload("Deployment", name, ns, kit_image(kit), name, self.spec.pods_per_integration, it_owner)
        raise KeyError(f"no {kind} in the bench scene")

    def _pod(self, i: int) -> dict[str, Any]:
        per = self.spec.pods_per_integration
        if i < self.spec.integrations * per:
            name, ns, kit = self._it(i // per)
            current = f"{name}-{_hash(name, 0, n=10)}"
            return pod(f"{current}-{_hash(name, i % per, n=5)}", ns, kit_image(kit), current, name)
        j = i - self.spec.integrations * per
        image = OTHER_IMAGES[j % len(OTHER_IMAGES)]
        app = image.rsplit("/", 1)[-1].split(":")[0].split("@")[0]
        return pod(f"{app}-{j:05d}-{_hash(j, n=5)}", f"infra-{j % 20:02d}", image, f"{app}-{_hash(app, n=10)}", None)


def build_objects(spec: SceneSpec, kits: list[Kit], cluster: ClusterSpec | None = None) -> Iterator[dict[str, Any]]:
    """Every object of the scene (about 31,000 at scale 1), generated lazily."""
    scene = Scene(spec, kits, cluster)
    for kind, count in scene.counts.items():
        for i in range(count):
            yield scene.make(kind, i)
