"""The object store behind the Kubernetes API emulator (testbed/kubeapi.py).

Plain data and rules, no HTTP: which resources exist, label and field selectors, resource
versions, merge patch and snapshot-consistent paging. Stored objects are never mutated in
place (every write stores a new dict), so a paged list can keep references to a snapshot.
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

CAMEL = "camel.apache.org"
KNATIVE = "serving.knative.dev"
IMAGE, OPENSHIFT_APPS, OPENSHIFT_BUILD = "image.openshift.io", "apps.openshift.io", "build.openshift.io"
OPENSHIFT = (IMAGE, OPENSHIFT_APPS, OPENSHIFT_BUILD)  # served only when a test turns them on
EXPIRED = ("The provided continue parameter is too old to display a consistent list result. You can start a "
           "new list without the continue parameter.")
VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def qualified(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


R = Resource
RESOURCES = (
    R("", "v1", "pods", "Pod"), R("", "v1", "configmaps", "ConfigMap"), R("", "v1", "secrets", "Secret"),
    R("", "v1", "services", "Service"), R("", "v1", "namespaces", "Namespace", namespaced=False),
    R("apps", "v1", "deployments", "Deployment"), R("apps", "v1", "replicasets", "ReplicaSet"),
    R("apps", "v1", "statefulsets", "StatefulSet"), R("apps", "v1", "daemonsets", "DaemonSet"),
    R("batch", "v1", "jobs", "Job"), R("batch", "v1", "cronjobs", "CronJob"),
    R("coordination.k8s.io", "v1", "leases", "Lease"),
    R(KNATIVE, "v1", "services", "Service"), R(KNATIVE, "v1", "revisions", "Revision"),
    R(KNATIVE, "v1", "configurations", "Configuration"), R(KNATIVE, "v1", "routes", "Route"),
    R(CAMEL, "v1", "integrations", "Integration"), R(CAMEL, "v1", "integrationkits", "IntegrationKit"),
    R(CAMEL, "v1", "integrationplatforms", "IntegrationPlatform"),
    R(CAMEL, "v1", "integrationprofiles", "IntegrationProfile"), R(CAMEL, "v1", "builds", "Build"),
    R(CAMEL, "v1", "pipes", "Pipe"),
    R("", "v1", "replicationcontrollers", "ReplicationController"),
    R(CAMEL, "v1alpha1", "kameletbindings", "KameletBinding"),  # Camel K 1.x (and, deprecated, 2.0-2.5)
    R(IMAGE, "v1", "imagestreams", "ImageStream"), R(IMAGE, "v1", "images", "Image", namespaced=False),
    R(IMAGE, "v1", "imagestreamtags", "ImageStreamTag"),  # virtual: served from the streams (testbed.kubeopenshift)
    R(OPENSHIFT_APPS, "v1", "deploymentconfigs", "DeploymentConfig"),
    R(OPENSHIFT_BUILD, "v1", "buildconfigs", "BuildConfig"),
)


class ApiError(Exception):
    """An error answer; :meth:`status` is the Kubernetes ``Status`` body."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}

    def status(self) -> dict[str, Any]:
        return status_body(self.code, self.reason, self.message, self.details)


def status_body(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "details": details or {}, "code": code}


def not_found(res: Resource, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{res.qualified()} "{name}" not found',
                    {"name": name, "group": res.group, "kind": res.plural})


def _split_terms(text: str) -> list[str]:
    terms, depth, cur = [], 0, ""
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            terms.append(cur)
            cur = ""
        else:
            cur += ch
    return [t.strip() for t in [*terms, cur] if t.strip()]


_KEY = r"[A-Za-z0-9][A-Za-z0-9./_-]*"
_VALUE = r"[A-Za-z0-9._-]*"


Labels = dict[str, str]


def _requirement(term: str) -> Callable[[Labels], bool]:
    if m := re.fullmatch(rf"!\s*({_KEY})", term):
        key = m[1]
        return lambda lb: key not in lb
    if m := re.fullmatch(rf"({_KEY})\s*(==|=|!=)\s*({_VALUE})", term):
        key, op, value = m.groups()
        return lambda lb: (lb.get(key) == value) != (op == "!=")
    if m := re.fullmatch(rf"({_KEY})\s+(in|notin)\s*\(([^)]*)\)", term):
        key, op, values = m[1], m[2], {v.strip() for v in m[3].split(",")}
        return lambda lb: (lb.get(key) in values) != (op == "notin")
    if re.fullmatch(_KEY, term):
        return lambda lb: term in lb
    raise ApiError(400, "BadRequest", f"unable to parse requirement: {term!r}")


def label_selector(text: str) -> Callable[[Labels], bool]:
    """``a=b``, ``a==b``, ``a!=b``, ``a``, ``!a``, ``a in (x,y)``, ``a notin (x,y)``, comma-joined."""
    preds = [_requirement(term) for term in _split_terms(text)]
    return lambda labels: all(p(labels) for p in preds)


def field_selector(text: str) -> Callable[[dict[str, Any]], bool]:
    """``metadata.name=x``, ``metadata.namespace!=y``, any dotted path, comma-joined."""
    preds: list[Callable[[dict[str, Any]], bool]] = []
    for term in _split_terms(text):
        m = re.fullmatch(r"([A-Za-z0-9.]+)\s*(==|=|!=)\s*(.*)", term)
        if not m:
            raise ApiError(400, "BadRequest", f"invalid field selector: {term!r}")
        path, op, want = m[1].split("."), m[2], m[3]

        def pred(obj: dict[str, Any], path: list[str] = path, op: str = op, want: str = want) -> bool:
            value: Any = obj
            for key in path:
                value = value.get(key) if isinstance(value, dict) else None
            return (str(value or "") == want) != (op == "!=")

        preds.append(pred)
    return lambda obj: all(p(obj) for p in preds)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch; returns a new value."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


class Store:
    """Objects by resource and (namespace, name); thread-safe; resourceVersion grows on every write."""

    def __init__(self, resources: Iterable[Resource] = RESOURCES) -> None:
        self.resources = tuple(resources)
        self.disabled: set[str] = set()  # "group" or "group/plural"
        self.lock = threading.RLock()
        self._rv = itertools.count(1000)
        self.rv = "999"
        self._objects: dict[Resource, dict[tuple[str, str], dict[str, Any]]] = {r: {} for r in self.resources}
        self._snapshots: dict[str, tuple[str, list[dict[str, Any]]]] = {}
        # Called, under the lock, with (resource, old, new) on every write; old or new is None on create or delete.
        self.watchers: list[Callable[[Resource, dict[str, Any] | None, dict[str, Any] | None], None]] = []

    def _changed(self, res: Resource, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        for watcher in self.watchers:
            watcher(res, old, new)

    # --- what is served ----------------------------------------------------------------

    def served(self, res: Resource) -> bool:
        return res.group not in self.disabled and f"{res.group}/{res.plural}" not in self.disabled

    def served_resources(self, group: str, version: str) -> list[Resource]:
        return [r for r in self.resources if r.group == group and r.version == version and self.served(r)]

    def resource(self, group: str, version: str, plural: str) -> Resource | None:
        return next((r for r in self.served_resources(group, version) if r.plural == plural), None)

    def resource_for(self, api_version: str, kind: str) -> Resource:
        for r in self.resources:
            if r.api_version == api_version and r.kind == kind:
                return r
        raise KeyError(f"unknown resource {api_version} {kind}")

    # --- writes --------------------------------------------------------------------------

    def _stamp(self, obj: dict[str, Any]) -> None:
        self.rv = str(next(self._rv))
        obj["metadata"]["resourceVersion"] = self.rv

    def create(self, res: Resource, obj: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        if not meta.get("name"):
            raise ApiError(422, "Invalid", f"{res.kind} is invalid: metadata.name: Required value")
        ns = (namespace or meta.get("namespace") or "default") if res.namespaced else ""
        if namespace and meta.get("namespace") not in (None, namespace):
            raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the namespace "
                                              "sent on the request")
        if res.namespaced:
            meta["namespace"] = ns
        obj.setdefault("apiVersion", res.api_version)
        obj.setdefault("kind", res.kind)
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        meta.setdefault("generation", 1)
        with self.lock:
            if (ns, meta["name"]) in self._objects[res]:
                raise ApiError(409, "AlreadyExists", f'{res.qualified()} "{meta["name"]}" already exists',
                               {"name": meta["name"], "group": res.group, "kind": res.plural})
            self._stamp(obj)
            self._objects[res][(ns, meta["name"])] = obj
            self._changed(res, None, obj)
        return obj

    def add(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create an object from its own apiVersion/kind (seeding, and changes during a run)."""
        return self.create(self.resource_for(obj["apiVersion"], obj["kind"]), obj)

    def get(self, res: Resource, ns: str | None, name: str) -> dict[str, Any]:
        with self.lock:
            obj = self._objects[res].get((ns or "", name))
        if obj is None:
            raise not_found(res, name)
        return obj

    def update(self, res: Resource, ns: str | None, name: str, obj: dict[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(obj)
        with self.lock:
            current = self.get(res, ns, name)
            meta = obj.setdefault("metadata", {})
            wanted = meta.get("resourceVersion")
            if wanted and wanted != current["metadata"]["resourceVersion"]:
                raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {res.qualified()} "{name}": the '
                               "object has been modified; please apply your changes to the latest version and try "
                               "again", {"name": name, "group": res.group, "kind": res.plural})
            for key in ("uid", "creationTimestamp", "namespace", "name"):
                if key in current["metadata"]:
                    meta[key] = current["metadata"][key]
            obj.setdefault("apiVersion", res.api_version)
            obj.setdefault("kind", res.kind)
            self._stamp(obj)
            self._objects[res][(ns or "", name)] = obj
            self._changed(res, current, obj)
        return obj

    def patch(self, res: Resource, ns: str | None, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            merged = merge_patch(self.get(res, ns, name), patch)
            merged["metadata"].pop("resourceVersion", None)
            return self.update(res, ns, name, merged)

    def delete(self, res: Resource, ns: str | None, name: str) -> dict[str, Any]:
        with self.lock:
            obj = self._objects[res].pop((ns or "", name), None)
            if obj is None:
                raise not_found(res, name)
            self.rv = str(next(self._rv))
            self._changed(res, obj, None)
        return obj

    def objects(self, res: Resource) -> list[dict[str, Any]]:
        with self.lock:
            return [v for _, v in sorted(self._objects[res].items())]

    # --- lists -----------------------------------------------------------------------------

    def list(self, res: Resource, ns: str | None, query: dict[str, str]) -> dict[str, Any]:
        """One page of a list; ``continue`` tokens name a snapshot taken by the first page."""
        limit = int(query.get("limit") or 0)
        token = query.get("continue")
        if token:
            try:
                sid, offset = json.loads(base64.urlsafe_b64decode(token.encode()))
            except (ValueError, TypeError):
                sid, offset = None, 0
            with self.lock:
                entry = self._snapshots.get(sid) if isinstance(sid, str) else None
            if entry is None:
                raise ApiError(410, "Expired", EXPIRED)
            rv, items = entry
        else:
            labels = label_selector(query.get("labelSelector", ""))
            fields = field_selector(query.get("fieldSelector", ""))
            offset, sid = 0, uuid.uuid4().hex
            with self.lock:
                items = [o for o in self.objects(res) if (ns is None or o["metadata"].get("namespace") == ns)
                         and labels(o["metadata"].get("labels") or {}) and fields(o)]
                rv = self.rv
                if limit and len(items) > limit:  # tokens stay valid (like etcd's) until evicted
                    self._snapshots[sid] = (rv, items)
                    while len(self._snapshots) > 256:
                        del self._snapshots[next(iter(self._snapshots))]
        page = items[offset: offset + limit] if limit else items[offset:]
        meta: dict[str, Any] = {"resourceVersion": rv}
        end = offset + len(page)
        if end < len(items):
            meta["continue"] = base64.urlsafe_b64encode(json.dumps([sid, end]).encode()).decode()
            meta["remainingItemCount"] = len(items) - end
        return {"kind": f"{res.kind}List", "apiVersion": res.api_version, "metadata": meta, "items": page}

    def expire_continue_tokens(self) -> None:
        with self.lock:
            self._snapshots.clear()
