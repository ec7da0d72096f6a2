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

What it shares with the Quay and ACR emulators is in :mod:`testbed.emulators.vendor`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from testbed.emulators.vendor import ApiAnswer, VendorApiEmulator, basic_user, json_answer

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

    service_name = "harbor-api"

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


__all__ = ["HarborAPI", "double_encoded", "harbor_error"]
