"""An emulator of Azure Container Registry's ``/acr/v1`` API acting on a real Distribution registry.

What the collector asks of ACR, as Azure/azure-rest-api-specs ``containerregistry.json``
documents it (REGISTRIES.md row "Azure (ACR)"):

* ``GET /acr/v1/_catalog?n=&last=`` — ``{"repositories": [...]}`` with ``Link: <…>; rel="next"``
  while more remain (the upstream catalog minus repositories deleted here);
* ``GET /acr/v1/{name}`` — repository attributes ``{"registry", "imageName", "manifestCount",
  "tagCount", "changeableAttributes": {"deleteEnabled", "writeEnabled", "readEnabled",
  "listEnabled"}}`` (``manifestCount``: what the upstream tags name plus the untagged manifests
  a test told about with ``remember_untagged``, as ACR counts untagged manifests too);
* ``DELETE /acr/v1/{name}`` — 202 ``{"manifestsDeleted": [...], "tagsDeleted": [...]}``;
  404 ``NAME_UNKNOWN``. Deletes every tagged manifest of the repository upstream;
* ``GET /oauth2/token?service=&scope=`` with Basic — ``{"access_token": …}`` granting the
  requested actions the user has (ACR's token exchange with admin or token credentials).

Authentication as ACR answers it: without credentials, or with a token lacking the action, a
401 with ``WWW-Authenticate: Bearer realm="<url>/oauth2/token",service="<host>",scope="…"`` and
``{"errors":[{"code":"UNAUTHORIZED",…}]}``; Basic is accepted directly as well. ``users`` maps
a name to (password, actions), actions among ``pull``, ``delete``, ``metadata_read``. Tokens
issued are opaque and remembered here.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from testbed.emulators.vendor import ApiAnswer, VendorApiEmulator, basic_user, json_answer

_NAME = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"


def acr_error(status: int, code: str, message: str, detail: Any = None, *headers: tuple[str, str]) -> ApiAnswer:
    return json_answer(status, {"errors": [{"code": code, "message": message, "detail": detail}]}, *headers)


class AcrAPI(VendorApiEmulator):
    """ACR's ``/acr/v1`` and ``/oauth2/token`` for ``users`` (name -> (password, actions))."""

    service_name = "acr-api"

    def __init__(self, upstream_url: str, users: Mapping[str, tuple[str, Iterable[str]]]) -> None:
        super().__init__(upstream_url)
        self.users = {u: (p, frozenset(a)) for u, (p, a) in users.items()}
        self.issued: dict[str, frozenset[str]] = {}  # token -> scopes granted ("repository:x:delete")

    def __enter__(self) -> AcrAPI:
        self.start()
        return self

    def _challenge(self, scope: str) -> ApiAnswer:
        header = f'Bearer realm="{self.url}/oauth2/token",service="{self.address}",scope="{scope}"'
        return acr_error(401, "UNAUTHORIZED", "authentication required", None, ("WWW-Authenticate", header))

    def _allowed(self, headers: Mapping[str, str], scope: str) -> bool:
        value = headers.get("authorization", "")
        if value.lower().startswith("bearer "):
            return scope in self.issued.get(value[7:].strip(), frozenset())
        given = basic_user(headers)
        user = self.users.get(given[0]) if given else None
        if given is None or user is None or user[0] != given[1]:
            return False
        kind, _, rest = scope.partition(":")
        return kind == "registry" or rest.rsplit(":", 1)[-1] in user[1]

    def handle(self, method: str, raw_path: str, query: dict[str, list[str]], headers: Mapping[str, str]) -> ApiAnswer:
        if raw_path == "/oauth2/token" and method == "GET":
            return self._token(query, headers)
        if raw_path == "/acr/v1/_catalog" and method == "GET":
            if not self._allowed(headers, "registry:catalog:*"):
                return self._challenge("registry:catalog:*")
            return self._catalog(query)
        m = re.fullmatch(rf"/acr/v1/({_NAME})", raw_path)
        if m and method in ("GET", "DELETE"):
            name = m.group(1)
            scope = f"repository:{name}:{'delete' if method == 'DELETE' else 'metadata_read'}"
            if not self._allowed(headers, scope):
                return self._challenge(scope)
            if name not in self.visible(name):
                return acr_error(404, "NAME_UNKNOWN", "repository name not known to registry", {"name": name})
            if method == "GET":
                return self._attributes(name)
            manifests, tags = self.remove(name)
            return json_answer(202, {"manifestsDeleted": manifests, "tagsDeleted": tags})
        return acr_error(404, "NOT_FOUND", f"no route for {method} {raw_path}")

    def _token(self, query: dict[str, list[str]], headers: Mapping[str, str]) -> ApiAnswer:
        given = basic_user(headers)
        user = self.users.get(given[0]) if given else None
        if given is None or user is None or user[0] != given[1]:
            return acr_error(401, "UNAUTHORIZED", "authentication required")
        granted = set()
        for scope in query.get("scope", []):
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            for action in actions.split(","):
                if kind == "registry" or action in user[1]:
                    granted.add(f"{kind}:{name}:{action}")
        token = "acr-" + secrets.token_hex(16)
        self.issued[token] = frozenset(granted)
        return json_answer(200, {"access_token": token})

    def _catalog(self, query: dict[str, list[str]]) -> ApiAnswer:
        names = self.visible("")
        last = query.get("last", [""])[0]
        n = int(query.get("n", ["100"])[0])
        rest = [x for x in names if x > last]
        chunk = rest[:n]
        headers = []
        if len(rest) > n:
            headers.append(("Link", f'</acr/v1/_catalog?last={quote(chunk[-1])}&n={n}>; rel="next"'))
        return json_answer(200, {"repositories": chunk}, *headers)

    def _attributes(self, name: str) -> ApiAnswer:
        digests = self.upstream.tagged(name)
        return json_answer(200, {
            "registry": self.address, "imageName": name, "createdTime": "2026-01-01T00:00:00Z",
            "lastUpdateTime": "2026-01-01T00:00:00Z", "manifestCount": self.manifest_count(name),
            "tagCount": sum(len(t) for t in digests.values()),
            "changeableAttributes": {"deleteEnabled": True, "writeEnabled": True, "readEnabled": True,
                                     "listEnabled": True}})


__all__ = ["AcrAPI", "acr_error"]
