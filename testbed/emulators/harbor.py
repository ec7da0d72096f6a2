"""An emulator of Harbor's REST API (``/api/v2.0``) acting on a real Distribution registry.

Serves what the collector asks of Harbor's API, as goharbor/harbor ``api/v2.0/swagger.yaml``
documents it (REGISTRIES.md row "Harbor"):

* ``GET /api/v2.0/projects/{project_name}/repositories?page=&page_size=`` — a JSON array of
  ``{"id", "project_id", "name": "project/repo…", "artifact_count", …}``; ``page`` from 1,
  ``page_size`` 1..100 (default 10); headers ``X-Total-Count`` and ``Link: <…>; rel="prev" ,
  <…>; rel="next"``. The repositories are the upstream catalog's names under ``project/``,
  minus those deleted here (unless something was pushed there again);
* ``DELETE /api/v2.0/projects/{project_name}/repositories/{repository_name}`` — 200; the name
  inside the project must be double-encoded (``a%252Fb``): Harbor's router decodes the path
  once before matching, so a single ``%2F`` becomes a ``/`` and no route matches (404). Like
  Harbor it deletes every artifact of the repository, tagged or not: here each tag's manifest
  (and an index's children) upstream, by digest;
* ``GET /api/v2.0/projects/{project_name}/repositories/{repository_name}`` — one repository;
  ``artifact_count`` counts what the upstream tags name plus the untagged manifests a test told
  about (``remember_untagged``): Harbor counts untagged artifacts too;
* ``GET /api/v2.0/projects/{project_name}`` — ``{"project_id", "name", …}``;
* ``GET /api/v2.0/users/current/permissions?scope=/project/{id}&relative=true`` —
  ``[{"resource", "action"}]`` for the caller's role.

Authentication is Basic with no challenge on 401 (Harbor's API never sends ``WWW-Authenticate``).
Users have a role: ``admin`` (system admin), ``projectAdmin``, ``maintainer``, ``developer``,
``guest`` (all may list; the first three may delete a repository) or ``none`` (not a member:
403). Errors are ``{"errors":[{"code","message"}]}``. Every request is logged
(:attr:`VendorApiEmulator.calls`, never with credentials).

The module also holds what the three emulators share (:class:`UpstreamRegistry`,
:class:`VendorApiEmulator`), used by :mod:`testbed.emulators.quay` and :mod:`testbed.emulators.acr`.
They are apart from :class:`testbed.emulators.RestEmulator` (GitHub, Docker Hub) because these
APIs decide per route from the request's headers (a Harbor role, a Quay token's scopes, an ACR
token's grants) and log the authorization scheme, which that base does not hand to a route.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import httpx

from testbed.images import ALL_MANIFESTS
from testbed.servers import BackgroundHTTPServer

# --- shared by the emulators -----------------------------------------------------------


@dataclass(frozen=True)
class ApiAnswer:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


def json_answer(status: int, doc: Any, *headers: tuple[str, str]) -> ApiAnswer:
    return ApiAnswer(status, json.dumps(doc).encode(), (("Content-Type", "application/json"), *headers))


@dataclass(frozen=True)
class ApiCall:
    """One request the emulator received: raw path (as sent, still encoded), no credentials."""

    method: str
    raw_path: str
    query: str
    auth: str  # "basic", "bearer" or "" (the scheme only)
    status: int


class UpstreamRegistry:
    """The real registry behind an emulator, read and changed through its v2 API."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=30.0)

    def close(self) -> None:
        self.http.close()

    def catalog(self) -> list[str]:
        names: list[str] = []
        url: str | None = "/v2/_catalog?n=1000"
        while url:
            r = self.http.get(url)
            r.raise_for_status()
            names.extend(r.json().get("repositories") or ())
            m = re.search(r'<([^>]*)>\s*;\s*rel="next"', r.headers.get("Link", ""))
            url = m.group(1) if m else None
        return names

    def tags(self, repo: str) -> list[str]:
        r = self.http.get(f"/v2/{repo}/tags/list")
        return sorted(r.json().get("tags") or ()) if r.status_code == 200 else []

    def digests(self, repo: str) -> dict[str, list[str]]:
        """Digest -> its tags, for every tag of ``repo`` (HEAD with every manifest type accepted)."""
        found: dict[str, list[str]] = {}
        for tag in self.tags(repo):
            r = self.http.head(f"/v2/{repo}/manifests/{tag}", headers={"Accept": ALL_MANIFESTS})
            digest = r.headers.get("Docker-Content-Digest")
            if r.status_code == 200 and digest:
                found.setdefault(digest, []).append(tag)
        return found

    def exists(self, repo: str, digest: str) -> bool:
        r = self.http.head(f"/v2/{repo}/manifests/{digest}", headers={"Accept": ALL_MANIFESTS})
        return r.status_code == 200

    def delete_all(self, repo: str, untagged: tuple[str, ...] = ()) -> tuple[list[str], list[str]]:
        """Delete every tagged manifest of ``repo``, the children of its indexes and ``untagged``:
        (digests deleted, tags they carried)."""
        tagged = self.digests(repo)
        children: list[str] = list(untagged)
        for digest in tagged:
            r = self.http.get(f"/v2/{repo}/manifests/{digest}", headers={"Accept": ALL_MANIFESTS})
            if r.status_code == 200:
                entries = r.json().get("manifests")
                children += [e["digest"] for e in entries or () if isinstance(e, dict) and "digest" in e]
        deleted: list[str] = []
        for digest in [*tagged, *children]:
            if self.http.delete(f"/v2/{repo}/manifests/{digest}").status_code == 202:
                deleted.append(digest)
        return deleted, sorted(t for tags in tagged.values() for t in tags)


class VendorApiEmulator:
    """A vendor REST API on a free loopback port over :class:`UpstreamRegistry`; subclasses route.

    ``deleted`` holds the repositories deleted through the API: they disappear from the
    emulator's listings until something is pushed there again.
    """

    name = "rest-emulator"

    def __init__(self, upstream_url: str) -> None:
        self.upstream = UpstreamRegistry(upstream_url)
        self.deleted: set[str] = set()
        # Untagged manifests a test pushed and told about: Distribution cannot list them, the
        # vendor's own database can (Harbor artifacts, ACR manifests).
        self.untagged: dict[str, set[str]] = {}
        self.calls: list[ApiCall] = []
        self._lock = threading.Lock()
        self._http: BackgroundHTTPServer | None = None

    def start(self) -> VendorApiEmulator:
        emulator = self

        class Handler(_Handler):
            owner = emulator

        self._http = BackgroundHTTPServer(Handler, name=self.name)
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.stop()
            self._http = None
        self.upstream.close()

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def address(self) -> str:
        assert self._http is not None, "not started"
        return self._http.address

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def requests(self, method: str | None = None, path: str = ".*") -> list[ApiCall]:
        with self._lock:
            return [c for c in self.calls if method in (None, c.method) and re.fullmatch(path, c.raw_path)]

    def visible(self, prefix: str) -> list[str]:
        """UpstreamRegistry repositories under ``prefix``, minus deleted ones that stayed empty."""
        names = [n for n in self.upstream.catalog() if n.startswith(prefix)]
        return sorted(n for n in names if n not in self.deleted or self.upstream.tags(n))

    def remember_untagged(self, repo: str, digest: str) -> None:
        with self._lock:
            self.untagged.setdefault(repo, set()).add(digest)

    def manifest_count(self, repo: str) -> int:
        """Distinct manifests of ``repo``: those its tags name, and remembered untagged ones still there."""
        digests = set(self.upstream.digests(repo))
        with self._lock:
            extra = set(self.untagged.get(repo, ())) - digests
        return len(digests) + sum(1 for d in extra if self.upstream.exists(repo, d))

    def remove(self, repo: str) -> tuple[list[str], list[str]]:
        """Delete ``repo`` as the vendor does: everything in it, then the repository."""
        gone = self.upstream.delete_all(repo, tuple(sorted(self.untagged.get(repo, ()))))
        with self._lock:
            self.deleted.add(repo)
        return gone

    def handle(self, method: str, raw_path: str, query: dict[str, list[str]], headers: Mapping[str, str]) -> ApiAnswer:
        raise NotImplementedError

    def _record(self, call: ApiCall) -> None:
        with self._lock:
            self.calls.append(call)


def basic_user(headers: Mapping[str, str]) -> tuple[str, str] | None:
    """(user, password) of a Basic ``Authorization``, or None."""
    value = headers.get("authorization", "")
    if not value.lower().startswith("basic "):
        return None
    try:
        user, sep, password = base64.b64decode(value[6:].strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: VendorApiEmulator

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        split = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            answer = self.owner.handle(self.command, split.path, parse_qs(split.query), headers)
        except Exception as exc:  # an emulator bug must show as a 500, not a hung client
            answer = json_answer(500, {"errors": [{"code": "UNKNOWN", "message": f"emulator: {exc!r}"}]})
        scheme = headers.get("authorization", "").split(" ", 1)[0].lower()
        self.owner._record(ApiCall(self.command, split.path, split.query, scheme, answer.status))
        self.send_response(answer.status)
        for k, v in answer.headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)

    do_GET = do_HEAD = do_DELETE = do_POST = do_PUT = _serve


# --- Harbor ------------------------------------------------------------------------------

ROLES = ("admin", "projectAdmin", "maintainer", "developer", "guest", "none")
_DELETERS = frozenset({"admin", "projectAdmin", "maintainer"})
_PERMISSIONS = {
    "admin": ("repository:list", "repository:read", "repository:update", "repository:delete", "artifact:delete"),
    "projectAdmin": ("repository:list", "repository:read", "repository:update", "repository:delete",
                     "artifact:delete"),
    "maintainer": ("repository:list", "repository:read", "repository:update", "repository:delete",
                   "artifact:delete"),
    "developer": ("repository:list", "repository:read", "repository:update", "repository:pull"),
    "guest": ("repository:list", "repository:read", "repository:pull"),
    "none": (),
}
_PROJECT = r"[a-z0-9]+(?:[._-][a-z0-9]+)*"


def harbor_error(status: int, code: str, message: str) -> ApiAnswer:
    return json_answer(status, {"errors": [{"code": code, "message": message}]})


@dataclass
class HarborUser:
    password: str
    role: str


class HarborAPI(VendorApiEmulator):
    """Harbor's ``/api/v2.0`` for ``users`` (name -> (password, role)) over ``upstream_url``.

    ``max_page_size`` caps pages below Harbor's 100, so a test with a few repositories sees
    several pages.
    """

    name = "harbor-api"

    def __init__(self, upstream_url: str, users: Mapping[str, tuple[str, str]], *, max_page_size: int = 100) -> None:
        super().__init__(upstream_url)
        for _, role in users.values():
            assert role in ROLES, role
        self.users = {u: HarborUser(p, r) for u, (p, r) in users.items()}
        self.max_page_size = max_page_size
        self.project_ids: dict[str, int] = {}

    def __enter__(self) -> HarborAPI:
        self.start()
        return self

    def _project_id(self, project: str) -> int:
        with self._lock:
            return self.project_ids.setdefault(project, len(self.project_ids) + 1)

    def _role(self, headers: Mapping[str, str]) -> str | ApiAnswer:
        given = basic_user(headers)
        user = self.users.get(given[0]) if given else None
        if given is None or user is None or user.password != given[1]:
            return harbor_error(401, "UNAUTHORIZED", "unauthorized")
        return user.role

    def handle(self, method: str, raw_path: str, query: dict[str, list[str]], headers: Mapping[str, str]) -> ApiAnswer:
        role = self._role(headers)
        if isinstance(role, ApiAnswer):
            return role
        m = re.fullmatch(rf"/api/v2\.0/projects/({_PROJECT})/repositories", raw_path)
        if m and method == "GET":
            return self._list(m.group(1), role, query)
        m = re.fullmatch(rf"/api/v2\.0/projects/({_PROJECT})/repositories/([^/]+)", raw_path)
        if m and method in ("GET", "DELETE"):
            once = unquote(m.group(2))
            if "/" in once:  # single-encoded: Harbor's router sees extra segments
                return harbor_error(404, "NOT_FOUND", f"no route for {raw_path}")
            repo = f"{m.group(1)}/{unquote(once)}"
            return self._delete(repo, role) if method == "DELETE" else self._get(repo, role)
        m = re.fullmatch(rf"/api/v2\.0/projects/({_PROJECT})", raw_path)
        if m and method == "GET":
            project = m.group(1)
            return json_answer(200, {"project_id": self._project_id(project), "name": project,
                                     "metadata": {"public": "false"}})
        if raw_path == "/api/v2.0/users/current/permissions" and method == "GET":
            return self._permissions(role, query)
        return harbor_error(404, "NOT_FOUND", f"no route for {method} {raw_path}")

    def _list(self, project: str, role: str, query: dict[str, list[str]]) -> ApiAnswer:
        if role == "none":
            return harbor_error(403, "FORBIDDEN", "forbidden")
        try:
            page = int(query.get("page", ["1"])[0])
            size = int(query.get("page_size", ["10"])[0])
        except ValueError:
            return harbor_error(400, "BAD_REQUEST", "page and page_size must be integers")
        if page < 1 or not 1 <= size <= 100:
            return harbor_error(400, "BAD_REQUEST", "page must be >= 1 and page_size within 1..100")
        size = min(size, self.max_page_size)
        names = self.visible(project + "/")
        chunk = names[(page - 1) * size: page * size]
        base = f"/api/v2.0/projects/{project}/repositories"
        links = []
        if page > 1:
            links.append(f'<{base}?page={page - 1}&page_size={size}>; rel="prev"')
        if page * size < len(names):
            links.append(f'<{base}?page={page + 1}&page_size={size}>; rel="next"')
        headers = [("X-Total-Count", str(len(names)))] + ([("Link", " , ".join(links))] if links else [])
        return json_answer(200, [self._repository(n) for n in chunk], *headers)

    def _repository(self, name: str) -> dict[str, Any]:
        project = name.split("/", 1)[0]
        return {"id": abs(hash(name)) % 100000, "project_id": self._project_id(project), "name": name,
                "description": "", "artifact_count": self.manifest_count(name), "pull_count": 0,
                "creation_time": "2026-01-01T00:00:00.000Z", "update_time": "2026-01-01T00:00:00.000Z"}

    def _exists(self, repo: str) -> bool:
        return repo in self.visible(repo.split("/", 1)[0] + "/")

    def _get(self, repo: str, role: str) -> ApiAnswer:
        if role == "none":
            return harbor_error(403, "FORBIDDEN", "forbidden")
        if not self._exists(repo):
            return harbor_error(404, "NOT_FOUND", f"repository {repo} not found")
        return json_answer(200, self._repository(repo))

    def _delete(self, repo: str, role: str) -> ApiAnswer:
        if role not in _DELETERS:
            return harbor_error(403, "FORBIDDEN", "forbidden")
        if not self._exists(repo):
            return harbor_error(404, "NOT_FOUND", f"repository {repo} not found")
        self.remove(repo)
        return ApiAnswer(200)

    def _permissions(self, role: str, query: dict[str, list[str]]) -> ApiAnswer:
        scope = query.get("scope", [""])[0]
        if not re.fullmatch(r"/project/\d+", scope):
            return harbor_error(400, "BAD_REQUEST", f"invalid scope {scope!r}")
        relative = query.get("relative", ["false"])[0] == "true"
        out = []
        for permission in _PERMISSIONS[role]:
            resource, action = permission.split(":")
            out.append({"resource": resource if relative else f"{scope}/{resource}", "action": action})
        return json_answer(200, out)


def double_encoded(name: str) -> str:
    """What Harbor's path wants for a repository name inside its project (``a/b`` -> ``a%252Fb``)."""
    return quote(quote(name, safe=""), safe="")


__all__ = [
    "ApiAnswer",
    "ApiCall",
    "HarborAPI",
    "UpstreamRegistry",
    "VendorApiEmulator",
    "basic_user",
    "double_encoded",
    "harbor_error",
    "json_answer",
]
