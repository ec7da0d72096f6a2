"""An emulated Kubernetes API server that the real ``kubernetes`` client talks to over HTTP.

Serves discovery, LIST (with ``limit``/``continue`` paging, label and field selectors),
GET, POST, PUT, PATCH (merge) and DELETE from :mod:`testbed.kubestore`, with every error a
real ``Status`` body; a DELETE also deletes the object's dependents (:mod:`testbed.kubegc`).
OpenShift's image, apps and build groups are served with ``openshift=True``
(:mod:`testbed.kubeopenshift`; builders in :mod:`testbed.openshift`). For failure tests it
injects faults per method and path (a status, N times then recovery, a delay, a dropped
connection, a garbage body, 410 on a continue) and logs every request, so a test can assert
that a dry run wrote nothing.

RBAC is emulated just enough for ``kitgc doctor``: ``authorization.k8s.io/v1``
SelfSubjectAccessReviews are answered from :class:`AccessRules` (everything allowed unless a
test calls :meth:`KubeAPI.deny`), and a denied verb also answers the real request with the
API server's 403, as RBAC would (``enforce=False`` to make only the review say no). Serving
the group can be switched off like any other (``serve(AUTHORIZATION, on=False)``).

    with KubeAPI([objects.pod("p", images=["nginx"])], knative=True) as api:
        api.write_kubeconfig(tmp_path / "kubeconfig")
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from testbed import kubeopenshift
from testbed.kubefaults import REASONS, Fault, Request, fault_error
from testbed.kubegc import OwnerIndex, propagation
from testbed.kubestore import CAMEL, KNATIVE, OPENSHIFT, VERBS, ApiError, Resource, Store, status_body
from testbed.servers import LoopbackService

__all__ = ["AUTHORIZATION", "REASONS", "AccessRule", "AccessRules", "Fault", "KubeAPI", "Request"]

AUTHORIZATION = "authorization.k8s.io"
SSAR = "selfsubjectaccessreviews"
SUBJECT = "system:serviceaccount:kitgc:camel-k-kit-gc"  # who the emulator's token stands for
_METHOD_VERB = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


@dataclass(frozen=True)
class AccessRule:
    """A denial: ``verb`` (or ``*``) on ``group``/``resource``, in ``namespace`` (None: everywhere).

    A request for all namespaces (a cluster-wide list) is denied by a rule for any one
    namespace too: RBAC grants cluster-wide access only through a ClusterRole for all of them.
    """

    verb: str
    group: str
    resource: str
    namespace: str | None = None
    enforce: bool = True  # the real request is answered 403 as well, not only the review

    def matches(self, verb: str, group: str, resource: str, namespace: str) -> bool:
        return (self.verb in ("*", verb) and self.group == group and self.resource == resource
                and (self.namespace is None or namespace in ("", self.namespace)))


@dataclass
class AccessRules:
    """Everything is allowed except what a rule denies; thread-safe enough (append-only lists)."""

    denied: list[AccessRule] = field(default_factory=list)

    def deny(self, rule: AccessRule) -> None:
        self.denied.append(rule)

    def allowed(self, verb: str, group: str, resource: str, namespace: str = "", *, enforced: bool = False) -> bool:
        return not any(r.matches(verb, group, resource, namespace) and (r.enforce or not enforced)
                       for r in list(self.denied))


@dataclass(eq=False)
class KubeAPI(LoopbackService):
    """The emulator; ``start()`` (or ``with``) serves it on 127.0.0.1 on a free port."""

    service_name = "kubeapi"

    objects: Iterable[dict[str, Any]] = ()
    knative: bool = False
    camel: bool = True
    profiles: bool = True  # IntegrationProfiles (Camel K >= 2.3)
    kamelet_bindings: bool = False  # camel.apache.org/v1alpha1 KameletBindings (Camel K 1.x)
    openshift: bool = False  # image.openshift.io, apps.openshift.io and build.openshift.io
    garbage_collect: bool = True  # a DELETE deletes the object's dependents (ownerReferences)
    token: str = "kitgc-test-token"
    store: Store = field(default_factory=Store)
    faults: list[Fault] = field(default_factory=list)
    log: list[Request] = field(default_factory=list)
    hooks: list[Callable[[str, str, dict[str, str]], None]] = field(default_factory=list)
    access: AccessRules = field(default_factory=AccessRules)
    # Serve GETs from a cache of serialised answers, kept while the store does not change (the
    # benchmark's 20,000 Pods: without it, serialising them costs more than the client reading them).
    cache_reads: bool = False

    def __post_init__(self) -> None:
        for group, on in ((KNATIVE, self.knative), (CAMEL, self.camel), *((g, self.openshift) for g in OPENSHIFT)):
            self.serve(group, on=on)
        self.serve(CAMEL, "integrationprofiles", on=self.profiles)
        self.serve(CAMEL, "kameletbindings", on=self.kamelet_bindings)
        self.owners = OwnerIndex(self.store)
        for obj in self.objects:
            self.store.add(obj)
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, object, str, str], bytes] = {}
        self._reviews: list[dict[str, Any]] = []

    # --- control (start, stop, url: LoopbackService) ------------------------------------------

    def write_kubeconfig(self, path: Path | str) -> Path:
        """A kubeconfig pointing at this server with a bearer token (JSON is valid YAML)."""
        cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "emulator",
               "clusters": [{"name": "emulator", "cluster": {"server": self.url}}],
               "users": [{"name": "kitgc", "user": {"token": self.token}}],
               "contexts": [{"name": "emulator", "context": {"cluster": "emulator", "user": "kitgc"}}]}
        Path(path).write_text(json.dumps(cfg, indent=1))
        return Path(path)

    def serve(self, group: str, plural: str | None = None, *, on: bool = True) -> None:
        """Serve, or stop serving, an API group (or one resource of it), as CRDs come and go."""
        key = f"{group}/{plural}" if plural else group
        (self.store.disabled.discard if on else self.store.disabled.add)(key)

    def inject(self, method: str, path: str, **kw: Any) -> Fault:
        """Add a :class:`Fault`; e.g. ``inject("GET", "/apis/apps/v1/deployments", status=403)``."""
        fault = Fault(method, path, **kw)
        with self._lock:
            self.faults.append(fault)
        return fault

    def deny(self, verb: str, group: str, resource: str, namespace: str | None = None, *,
             enforce: bool = True) -> AccessRule:
        """Deny ``verb`` on ``group``/``resource`` (in ``namespace``, or everywhere) for our token.

        SelfSubjectAccessReviews answer ``allowed: false``; with ``enforce`` the request itself
        is refused with RBAC's 403 too (``get`` of one object, ``list`` of a collection, ...).
        """
        rule = AccessRule(verb, group, resource, namespace, enforce)
        self.access.deny(rule)
        self._cache.clear()
        return rule

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def expire_continue_tokens(self) -> None:
        self.store.expire_continue_tokens()

    def on_request(self, hook: Callable[[str, str, dict[str, str]], None]) -> None:
        """Call ``hook(method, path, query)`` before each request is answered (race tests)."""
        self.hooks.append(hook)

    def add(self, *objs: dict[str, Any]) -> None:
        for obj in objs:
            self.store.add(obj)

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self.log)

    def writes(self) -> list[Request]:
        """Every request that could change something (POST, PUT, PATCH, DELETE).

        A SelfSubjectAccessReview is a POST that stores nothing (a question to the
        authorizer): it is not a write, see :meth:`reviews`.
        """
        return [r for r in self.requests if r.method not in ("GET", "HEAD") and not _is_review(r.path)]

    def reviews(self) -> list[dict[str, Any]]:
        """The ``spec.resourceAttributes`` of every SelfSubjectAccessReview answered, in order."""
        with self._lock:
            return list(self._reviews)

    # --- answering -------------------------------------------------------------------------

    def _fault(self, method: str, path: str, query: dict[str, str]) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, path, query):
                    fault.hits += 1
                    return fault
        return None

    def _record(self, method: str, path: str, query: dict[str, str], status: int) -> None:
        with self._lock:
            self.log.append(Request(method, path, query, time.time(), status))

    def cache_version(self, path: str) -> tuple[str, object]:
        """What a cached answer for ``path`` was made from: a scope and its version. Here one
        scope, the whole store, whose resourceVersion any write changes."""
        return "", self.store.rv

    def _serialised(self, method: str, path: str, raw_query: str, query: dict[str, str],
                    raw: bytes) -> tuple[int, bytes]:
        scope, version = self.cache_version(path)
        key = (scope, version, path, raw_query)
        if self.cache_reads and method == "GET" and key in self._cache:
            return 200, self._cache[key]
        try:
            body = json.loads(raw) if raw else None
            code, result = self.answer(method, path, query, body)
        except ApiError as err:
            code, result = err.code, err.status()
        except ValueError as err:
            code, result = 400, status_body(400, "BadRequest", f"invalid request: {err}")
        payload = json.dumps(result, separators=(",", ":")).encode()
        if self.cache_reads and method == "GET" and code == 200:
            with self._lock:
                for stale in [k for k in self._cache if k[0] == scope and k[1] != version]:
                    del self._cache[stale]  # what the answers of this scope were made from changed
                self._cache[key] = payload
        return code, payload

    def answer(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        parts = [unquote(p) for p in path.split("/") if p]
        if parts == ["api"]:
            return 200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
        if parts == ["apis"]:
            return 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": self._groups()}
        if len(parts) == 2 and parts[0] == "apis":
            found = next((g for g in self._groups() if g["name"] == parts[1]), None)
            if found:
                return 200, {"kind": "APIGroup", "apiVersion": "v1", **found}
        if parts[:2] == ["apis", AUTHORIZATION] and len(parts) >= 3 and self._authorization_served():
            return self._authorization(method, parts[2:], body)
        if len(parts) >= 2 and parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        served = self.store.served_resources(group, version)
        if not served:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if not rest and method == "GET":
            return 200, self._resource_list(group, version, served)
        ns = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            res = self.store.resource(group, version, rest[2])
            if res and res.namespaced:
                ns, rest = rest[1], rest[2:]
        res = self.store.resource(group, version, rest[0]) if rest else None
        if res is None or len(rest) > 2 or (len(rest) == 2 and res.namespaced and ns is None):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) == 2 else None
        self._authorize(method, res, ns, name)
        return self._crud(method, res, ns, name, query, body)

    # --- RBAC, just enough ---------------------------------------------------------------

    def _authorization_served(self) -> bool:
        return AUTHORIZATION not in self.store.disabled

    def _authorization(self, method: str, rest: list[str], body: Any) -> tuple[int, Any]:
        """``/apis/authorization.k8s.io/v1[/selfsubjectaccessreviews]``: discovery and reviews."""
        if rest == ["v1"] and method == "GET":
            return 200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{AUTHORIZATION}/v1",
                         "resources": [{"name": SSAR, "singularName": "", "namespaced": False,
                                        "kind": "SelfSubjectAccessReview", "verbs": ["create"]}]}
        if rest != ["v1", SSAR]:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if method != "POST":
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        review = _object(body)
        attrs = (review.get("spec") or {}).get("resourceAttributes")
        if not isinstance(attrs, dict) or not attrs.get("verb") or not attrs.get("resource"):
            raise ApiError(422, "Invalid", "SelfSubjectAccessReview.authorization.k8s.io is invalid: "
                                           "spec.resourceAttributes: Required value")
        with self._lock:
            self._reviews.append(dict(attrs))
        allowed = self.access.allowed(str(attrs["verb"]), str(attrs.get("group") or ""), str(attrs["resource"]),
                                      str(attrs.get("namespace") or ""))
        reason = 'RBAC: allowed by ClusterRoleBinding "emulator" of ClusterRole "cluster-admin"' if allowed else ""
        return 201, {"apiVersion": f"{AUTHORIZATION}/v1", "kind": "SelfSubjectAccessReview",
                     "metadata": {"creationTimestamp": None}, "spec": review.get("spec"),
                     "status": {"allowed": allowed, "reason": reason}}

    def _authorize(self, method: str, res: Resource, ns: str | None, name: str | None) -> None:
        """Refuse with RBAC's 403 what a test denied (with ``enforce``)."""
        if not self.access.denied:
            return
        verb = ("list" if name is None else "get") if method in ("GET", "HEAD") else _METHOD_VERB.get(method, "")
        if self.access.allowed(verb, res.group, res.plural, ns or "", enforced=True):
            return
        where = f'in the namespace "{ns}"' if ns else "at the cluster scope"
        what = f'{res.qualified()} "{name}"' if name else res.qualified()
        raise ApiError(403, "Forbidden", f'{what} is forbidden: User "{SUBJECT}" cannot {verb} resource '
                                         f'"{res.plural}" in API group "{res.group}" {where}',
                       {"group": res.group, "kind": res.plural, **({"name": name} if name else {})})

    def _crud(self, method: str, res: Resource, ns: str | None, name: str | None, query: dict[str, str],
              body: Any) -> tuple[int, Any]:
        if (res.group, res.plural) == (kubeopenshift.IMAGE, "imagestreamtags"):
            return 200, kubeopenshift.image_stream_tags(self.store, method, ns, name, query)
        if name is None and method == "GET":
            return 200, self.store.list(res, ns, query)
        if name is None and method == "POST" and (ns or not res.namespaced):
            return 201, self.store.create(res, kubeopenshift.prepare_create(res, _object(body), ns), ns)
        if name is not None:
            if method == "GET":
                return 200, self.store.get(res, ns, name)
            if method == "PUT":
                return 200, self.store.update(res, ns, name, _object(body))
            if method == "PATCH":
                return 200, self.store.patch(res, ns, name, _object(body))
            if method == "DELETE":
                with self.store.lock:
                    obj = self.store.delete(res, ns, name)
                    if self.garbage_collect:
                        self.owners.collect(res, obj, propagation(query, body))
                return 200, obj
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def _groups(self) -> list[dict[str, Any]]:
        """Served groups with every served version; the first one listed is the preferred one."""
        out: dict[str, dict[str, Any]] = {}
        for r in self.store.resources:
            if not r.group or not self.store.served(r):
                continue
            gv = {"groupVersion": r.api_version, "version": r.version}
            group = out.setdefault(r.group, {"name": r.group, "versions": [], "preferredVersion": gv})
            if gv not in group["versions"]:
                group["versions"].append(gv)
        if self._authorization_served():
            gv = {"groupVersion": f"{AUTHORIZATION}/v1", "version": "v1"}
            out[AUTHORIZATION] = {"name": AUTHORIZATION, "versions": [gv], "preferredVersion": gv}
        return list(out.values())

    @staticmethod
    def _resource_list(group: str, version: str, served: list[Resource]) -> dict[str, Any]:
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/{version}".lstrip("/"),
                "resources": [{"name": r.plural, "singularName": r.kind.lower(), "namespaced": r.namespaced,
                               "kind": r.kind, "verbs": kubeopenshift.VERBS.get((r.group, r.plural), VERBS)}
                              for r in served]}

    fault_error = staticmethod(fault_error)  # the error an injected status stands for


def _is_review(path: str) -> bool:
    return path.rstrip("/").endswith(f"/apis/{AUTHORIZATION}/v1/{SSAR}")


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "BadRequest", "the request body is not a JSON object")
    return body


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the client's connection pool expects
    timeout = 30
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stalls
    owner: KubeAPI

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _handle(self) -> None:
        api = self.owner
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        for hook in list(api.hooks):
            hook(self.command, url.path, query)
        fault = api._fault(self.command, url.path, query)
        if fault and fault.delay:
            time.sleep(fault.delay)
        if fault and fault.close:
            api._record(self.command, url.path, query, 0)
            self.close_connection = True
            return
        headers: dict[str, str] = {}
        if fault and fault.body is not None:
            code, payload = fault.status or 200, fault.body
        elif fault and fault.status:
            code = fault.status
            err = api.fault_error(code, self.command, url.path)
            err.message = fault.message or err.message
            payload = json.dumps(err.status()).encode()
            if fault.retry_after is not None:
                headers["Retry-After"] = str(fault.retry_after)
        elif self.headers.get("Authorization") != f"Bearer {api.token}":
            code, payload = 401, json.dumps(status_body(401, "Unauthorized", "Unauthorized")).encode()
        else:
            code, payload = api._serialised(self.command, url.path, url.query, query, raw)
        api._record(self.command, url.path, query, code)
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


KubeAPI.handler = _Handler  # defined after the emulator it serves
