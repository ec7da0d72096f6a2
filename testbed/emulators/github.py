"""An emulator of GitHub's REST API for container packages, acting on a real Distribution registry.

Serves what the ghcr store asks of api.github.com, as docs.github.com/rest/packages documents
it (REGISTRIES.md row "GitHub (ghcr.io)"; werf/werf pkg/docker_registry/github* uses the same
calls):

* ``GET /orgs/{org}/packages?package_type=container`` and ``GET /users/{user}/packages?…``:
  a JSON array of ``{"id", "name", "package_type", "owner": {"login", "type"}, "visibility",
  "url", "html_url"}``; an owner of the other kind answers ``404 {"message": "Not Found"}``.
  The packages are the upstream catalog's repositories under ``{owner}/`` that hold a
  manifest, minus the packages deleted here; a name below the owner may contain ``/`` and is
  sent URL-encoded (``%2F``) in paths;
* ``GET …/packages/container/{name}/versions``: ``{"id", "name": <digest>, "url",
  "package_html_url", "created_at", "updated_at", "metadata": {"package_type": "container",
  "container": {"tags": [...]}}}``, newest id first. Versions are the digests of the
  repository's tags (HEAD with every manifest type accepted) plus the untagged digests the
  emulator was told about (:meth:`add_untagged`) that still exist; ids are stable integers;
* ``DELETE …/versions/{id}``: 204, deleting the digest upstream (its tags go with it); the last
  tagged version of a package answers ``400 {"message": "You cannot delete the last tagged
  version of a package. You must delete the package instead."}``;
* ``DELETE …/packages/container/{name}``: 204, deleting every version's digest upstream and
  hiding the package;
* ``GET /user``: ``{"login"}``.

Every answer carries ``x-ratelimit-limit/-remaining/-reset/-used/-resource`` and, for an
authenticated request, ``x-oauth-scopes`` (the token's scopes, configurable). A missing or
wrong token answers ``401 {"message": "Bad credentials", "documentation_url": …}``; a delete
without ``delete:packages`` answers 403 (the wording of that message is this emulator's, not
quoted from GitHub). Pagination is ``per_page`` (default 30, at most 100) and ``page`` with a
``Link`` header (``rel="next"``, ``rel="last"``). :meth:`RestEmulator.throttle` makes the next
requests answer 429 with ``Retry-After``.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, unquote, urlencode

from testbed.emulators import Answer, RestEmulator, Route, json_answer, page_of

DOCS = "https://docs.github.com/rest/packages/packages"
LAST_TAGGED = "You cannot delete the last tagged version of a package. You must delete the package instead."
_OWNER = r"/(orgs|users)/([^/]+)"
_PACKAGE = _OWNER + r"/packages/container/([^/]+)"


class GitHubPackagesEmulator(RestEmulator):
    """``owners``: ``{login: "Organization" | "User"}``; ``token``: the PAT it accepts."""

    service_name = "github-api"

    def __init__(self, upstream_url: str, *, token: str, owners: Mapping[str, str],
                 scopes: Sequence[str] = ("read:packages", "delete:packages")) -> None:
        super().__init__(upstream_url)
        self.token = token
        self.owners = dict(owners)
        self.scopes = tuple(scopes)
        self.deleted_packages: set[str] = set()  # "owner/name"
        self._untagged: dict[str, set[str]] = {}
        self._ids: dict[tuple[str, str], int] = {}
        self._counter = itertools.count(1000)
        self._deleting = threading.Lock()  # GitHub decides "last tagged" one deletion at a time

    # --- control ----------------------------------------------------------------------------

    def add_untagged(self, repository: str, digest: str) -> None:
        """List ``digest`` as an untagged version of ``repository`` (as GHCR lists index children)."""
        with self.lock:
            self._untagged.setdefault(repository, set()).add(digest)

    def version_id(self, repository: str, digest: str) -> int:
        with self.lock:
            key = (repository, digest)
            if key not in self._ids:
                self._ids[key] = next(self._counter)
            return self._ids[key]

    # --- state read from the registry -------------------------------------------------------------

    def versions(self, repository: str) -> list[dict[str, Any]]:
        """The versions of ``repository`` now, newest (highest id) first."""
        tagged = self.upstream.tagged(repository)
        with self.lock:
            told = sorted(self._untagged.get(repository, set()) - set(tagged))
        untagged = [d for d in told if self.upstream.digest(repository, d) == d]
        out = []
        for digest, tags in [*tagged.items(), *((d, []) for d in untagged)]:
            vid = self.version_id(repository, digest)
            out.append({
                "id": vid, "name": digest, "url": f"{self.url}/versions/{vid}",
                "package_html_url": f"https://github.com/{repository}", "created_at": "2024-01-01T00:00:00Z",
                "updated_at": "2024-01-01T00:00:00Z", "html_url": f"https://github.com/{repository}/{vid}",
                "metadata": {"package_type": "container", "container": {"tags": sorted(tags)}},
            })
        return sorted(out, key=lambda v: -int(v["id"]))

    def _exists(self, repository: str) -> bool:
        with self.lock:
            if repository in self.deleted_packages:
                return False
        return bool(self.upstream.tags(repository)) or bool(self.versions(repository))

    def _owner_ok(self, kind: str, owner: str) -> bool:
        wanted = "Organization" if kind == "orgs" else "User"
        return self.owners.get(owner) == wanted

    # --- protocol -----------------------------------------------------------------------------------

    @property
    def routes(self) -> list[Route]:
        return [
            ("GET", re.compile("/user"), self._user),
            ("GET", re.compile(_OWNER + "/packages"), self._packages),
            ("GET", re.compile(_PACKAGE + "/versions"), self._versions),
            ("DELETE", re.compile(_PACKAGE + r"/versions/(\d+)"), self._delete_version),
            ("DELETE", re.compile(_PACKAGE), self._delete_package),
        ]

    def authorize(self, method: str, path: str, headers: dict[str, str]) -> Answer | None:
        given = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() not in ("bearer", "token") or value.strip() != self.token:
            return json_answer(401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
        if method == "DELETE" and "delete:packages" not in self.scopes:
            return json_answer(403, {"message": "Deleting a package version needs a token with the delete:packages "
                                                "scope", "documentation_url": DOCS})
        return None

    def extra_headers(self, headers: dict[str, str]) -> list[tuple[str, str]]:
        out = [("x-ratelimit-used", "1"), ("x-ratelimit-resource", "core"),
               ("x-github-api-version-selected", "2022-11-28")]
        if any(k.lower() == "authorization" for k in headers):
            out.append(("x-oauth-scopes", ", ".join(self.scopes)))
        return out

    def _paged(self, items: list[Any], path: str, query: dict[str, list[str]]) -> Answer:
        page, size = page_of(query, "per_page", 30, 100)
        chunk = items[(page - 1) * size: page * size]
        last = max(1, -(-len(items) // size))
        links = []
        keep = {k: v[0] for k, v in query.items() if k not in ("page",)}
        if page < last:
            links.append(f'<{self.url}{path}?{urlencode({**keep, "page": page + 1})}>; rel="next"')
            links.append(f'<{self.url}{path}?{urlencode({**keep, "page": last})}>; rel="last"')
        return Answer(200, chunk, [("Link", ", ".join(links))] if links else [])

    def _user(self, **_: Any) -> Answer:
        return json_answer(200, {"login": "kitgc-robot", "type": "User"})

    def _packages(self, kind: str, owner: str, *, query: dict[str, list[str]], **_: Any) -> Answer:
        if not self._owner_ok(kind, owner):
            return json_answer(404, {"message": "Not Found", "documentation_url": DOCS})
        if query.get("package_type", [""])[0] != "container":
            return json_answer(400, {"message": "package_type is required", "documentation_url": DOCS})
        names = sorted(r for r in self.upstream.catalog() if r.startswith(f"{owner}/") and self._exists(r))
        items = [{"id": 10_000 + i, "name": r.split("/", 1)[1], "package_type": "container",
                  "owner": {"login": owner, "type": self.owners[owner]}, "visibility": "private",
                  "url": f"{self.url}/{kind}/{owner}/packages/container/{quote(r.split('/', 1)[1], safe='')}",
                  "html_url": f"https://github.com/{r}"} for i, r in enumerate(names)]
        return self._paged(items, f"/{kind}/{owner}/packages", query)

    def _repository(self, kind: str, owner: str, encoded: str) -> str | None:
        repository = f"{owner}/{unquote(encoded)}"
        return repository if self._owner_ok(kind, owner) and self._exists(repository) else None

    def _versions(self, kind: str, owner: str, encoded: str, *, query: dict[str, list[str]], **_: Any) -> Answer:
        repository = self._repository(kind, owner, encoded)
        if repository is None:
            return json_answer(404, {"message": "Package not found.", "documentation_url": DOCS})
        return self._paged(self.versions(repository), f"/{kind}/{owner}/packages/container/{encoded}/versions", query)

    def _delete_version(self, kind: str, owner: str, encoded: str, vid: str, **_: Any) -> Answer:
        with self._deleting:
            return self._delete_version_now(kind, owner, encoded, vid)

    def _delete_version_now(self, kind: str, owner: str, encoded: str, vid: str) -> Answer:
        repository = self._repository(kind, owner, encoded)
        if repository is None:
            return json_answer(404, {"message": "Package not found.", "documentation_url": DOCS})
        versions = self.versions(repository)
        version = next((v for v in versions if v["id"] == int(vid)), None)
        if version is None:
            return json_answer(404, {"message": "Not Found", "documentation_url": DOCS})
        tagged = [v for v in versions if v["metadata"]["container"]["tags"]]
        if version["metadata"]["container"]["tags"] and len(tagged) == 1:
            return json_answer(400, {"message": LAST_TAGGED, "documentation_url": DOCS})
        status = self.upstream.delete(repository, version["name"])
        if status not in (202, 404):
            return json_answer(500, {"message": f"upstream DELETE answered {status}"})
        with self.lock:
            self._untagged.get(repository, set()).discard(version["name"])
        return Answer(204)

    def _delete_package(self, kind: str, owner: str, encoded: str, **_: Any) -> Answer:
        with self._deleting:
            return self._delete_package_now(kind, owner, encoded)

    def _delete_package_now(self, kind: str, owner: str, encoded: str) -> Answer:
        repository = self._repository(kind, owner, encoded)
        if repository is None:
            return json_answer(404, {"message": "Package not found.", "documentation_url": DOCS})
        for version in self.versions(repository):
            status = self.upstream.delete(repository, version["name"])
            if status not in (202, 404):
                return json_answer(500, {"message": f"upstream DELETE answered {status}"})
        with self.lock:
            self.deleted_packages.add(repository)
            self._untagged.pop(repository, None)
        return Answer(204)
