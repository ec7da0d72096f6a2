"""An emulator of the Docker Hub API (hub.docker.com), acting on a real Distribution registry.

Serves what the dockerhub store asks of the Hub API, as the Docker Hub API reference
(docs.docker.com/reference/api/hub/latest) documents it (REGISTRIES.md row "Docker Hub";
werf/werf pkg/docker_registry/dockerhub* uses the same calls):

* ``POST /v2/auth/token`` ``{"identifier", "secret"}`` → ``{"access_token"}`` (a personal
  access token as the secret), and the deprecated ``POST /v2/users/login`` ``{"username",
  "password"}`` → ``{"token"}``; wrong credentials → ``401 {"detail", "message"}``. The JWT
  (an opaque string here) is then required as ``Authorization: Bearer`` everywhere else;
  :meth:`expire_tokens` makes the ones issued so far stop working (a run outliving its JWT);
* ``GET /v2/namespaces/{ns}/repositories?page=&page_size=`` → ``{"count", "next",
  "previous", "results": [{"name", "namespace", "repository_type", …}]}``: the upstream
  catalog's ``{ns}/{name}`` repositories, minus those deleted here;
* ``GET /v2/namespaces/{ns}/repositories/{repo}/tags`` → the same envelope with
  ``{"name", "digest", "tag_status", …}`` per tag (the tags the personality still shows);
* ``DELETE /v2/repositories/{ns}/{repo}/tags/{tag}/`` → 204: the tag is untagged through
  the v2 personality in front of the registry (:class:`~testbed.personalities.DockerHubPersonality`
  hides it; Distribution 2.8 cannot untag), so v2 clients stop seeing it;
* ``DELETE /v2/repositories/{ns}/{repo}/`` → 202: every manifest its tags (shown or hidden)
  name is deleted upstream, and the repository is hidden.

A token created without delete permission (``can_delete=False``, as a PAT with the "Read &
Write" scope) gets ``403 {"detail": "You do not have permission to perform this action."}``
on deletes. Answers carry ``X-RateLimit-Limit/-Remaining/-Reset``; pages are ``page`` and
``page_size`` (default 10, at most 100) with an absolute ``next`` URL (null on the last page).
"""

from __future__ import annotations

import re
import secrets
from typing import Any
from urllib.parse import unquote, urlencode

from testbed.emulators import Answer, RestEmulator, Route, json_answer, page_of
from testbed.personalities import DockerHubPersonality

_NAME = r"([^/]+)"
NO_PERMISSION = "You do not have permission to perform this action."


class DockerHubEmulator(RestEmulator):
    """The Hub API in front of ``personality`` (the v2 side) and the registry behind it."""

    service_name = "dockerhub-api"
    rate_limit = 180
    rate_headers_names = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")

    def __init__(self, personality: DockerHubPersonality, *, username: str, token: str,
                 can_delete: bool = True) -> None:
        super().__init__(personality.upstream)
        self.personality = personality
        self.username = username
        self.token = token
        self.can_delete = can_delete
        self.deleted_repositories: set[str] = set()
        self._jwts: set[str] = set()
        self.logins = 0

    def expire_tokens(self) -> None:
        with self.lock:
            self._jwts.clear()

    # --- state read from the registry --------------------------------------------------------

    def visible_tags(self, repository: str) -> list[str]:
        return sorted(self.personality.visible_tags(repository, self.upstream.tags(repository)))

    def _exists(self, repository: str) -> bool:
        with self.lock:
            if repository in self.deleted_repositories:
                return False
        return repository in self.upstream.catalog()

    # --- protocol -----------------------------------------------------------------------------

    @property
    def routes(self) -> list[Route]:
        return [
            ("POST", re.compile("/v2/auth/token"), self._token),
            ("POST", re.compile("/v2/users/login/?"), self._login),
            ("GET", re.compile(f"/v2/namespaces/{_NAME}/repositories/?"), self._repositories),
            ("GET", re.compile(f"/v2/namespaces/{_NAME}/repositories/{_NAME}/tags/?"), self._tags),
            ("DELETE", re.compile(f"/v2/repositories/{_NAME}/{_NAME}/tags/{_NAME}/"), self._delete_tag),
            ("DELETE", re.compile(f"/v2/repositories/{_NAME}/{_NAME}/"), self._delete_repository),
        ]

    def authorize(self, method: str, path: str, headers: dict[str, str]) -> Answer | None:
        if method == "POST":
            return None  # the logins
        given = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        scheme, _, value = given.partition(" ")
        with self.lock:
            valid = scheme.lower() == "bearer" and value.strip() in self._jwts
        if not valid:
            return json_answer(401, {"detail": "Authentication credentials were not provided.",
                                     "message": "authentication required"})
        if method == "DELETE" and not self.can_delete:
            return json_answer(403, {"detail": NO_PERMISSION, "message": NO_PERMISSION})
        return None

    def _issue(self, user: object, secret: object) -> str | None:
        if user != self.username or secret != self.token:
            return None
        jwt = "jwt-" + secrets.token_hex(16)
        with self.lock:
            self._jwts.add(jwt)
            self.logins += 1
        return jwt

    def _token(self, *, payload: Any, **_: Any) -> Answer:
        doc = payload if isinstance(payload, dict) else {}
        jwt = self._issue(doc.get("identifier"), doc.get("secret"))
        if jwt is None:
            return json_answer(401, {"detail": "Incorrect authentication credentials",
                                     "message": "Incorrect authentication credentials"})
        return json_answer(200, {"access_token": jwt})

    def _login(self, *, payload: Any, **_: Any) -> Answer:
        doc = payload if isinstance(payload, dict) else {}
        jwt = self._issue(doc.get("username"), doc.get("password"))
        if jwt is None:
            return json_answer(401, {"detail": "Incorrect authentication credentials",
                                     "message": "Incorrect authentication credentials"})
        return json_answer(200, {"token": jwt})

    def _envelope(self, items: list[Any], path: str, query: dict[str, list[str]]) -> Answer:
        page, size = page_of(query, "page_size", 10, 100)
        chunk = items[(page - 1) * size: page * size]
        more = page * size < len(items)
        return json_answer(200, {
            "count": len(items),
            "next": f"{self.url}{path}?{urlencode({'page': page + 1, 'page_size': size})}" if more else None,
            "previous": f"{self.url}{path}?{urlencode({'page': page - 1, 'page_size': size})}" if page > 1 else None,
            "results": chunk,
        })

    def _repositories(self, ns: str, *, query: dict[str, list[str]], **_: Any) -> Answer:
        names = sorted(r for r in self.upstream.catalog() if r.count("/") == 1 and r.startswith(f"{ns}/"))
        with self.lock:
            names = [r for r in names if r not in self.deleted_repositories]
        items = [{"name": r.split("/", 1)[1], "namespace": ns, "repository_type": "image", "status": 1,
                  "is_private": True, "last_updated": "2024-01-01T00:00:00Z"} for r in names]
        return self._envelope(items, f"/v2/namespaces/{ns}/repositories", query)

    def _tags(self, ns: str, name: str, *, query: dict[str, list[str]], **_: Any) -> Answer:
        repository = f"{ns}/{unquote(name)}"
        if not self._exists(repository):
            return json_answer(404, {"message": "object not found", "errinfo": {}})
        tags = self.visible_tags(repository)
        digests = self.upstream.tagged(repository, tags)
        by_tag = {t: d for d, ts in digests.items() for t in ts}
        items = [{"name": t, "digest": by_tag.get(t), "tag_status": "active", "last_updated": "2024-01-01T00:00:00Z",
                  "images": []} for t in tags]
        return self._envelope(items, f"/v2/namespaces/{ns}/repositories/{name}/tags", query)

    def _delete_tag(self, ns: str, name: str, tag: str, **_: Any) -> Answer:
        repository = f"{ns}/{unquote(name)}"
        if not self._exists(repository):
            return json_answer(404, {"message": "object not found", "errinfo": {}})
        reply = self.personality.untag(repository, unquote(tag), {})
        if reply.status == 404:
            return json_answer(404, {"message": "tag not found", "errinfo": {}})
        return Answer(204)

    def _delete_repository(self, ns: str, name: str, **_: Any) -> Answer:
        repository = f"{ns}/{unquote(name)}"
        if not self._exists(repository):
            return json_answer(404, {"message": "object not found", "errinfo": {}})
        for digest in self.upstream.tagged(repository):
            status = self.upstream.delete(repository, digest)
            if status not in (202, 404):
                return json_answer(500, {"message": f"upstream DELETE answered {status}"})
        with self.lock:
            self.deleted_repositories.add(repository)
        return Answer(202)
