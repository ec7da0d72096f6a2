"""An emulator of Quay's REST API (``/api/v1``) acting on a real Distribution registry.

What the collector asks of Quay, as quay/quay documents it in ``endpoints/api/repository.py``
and ``endpoints/exception.py`` (REGISTRIES.md row "Quay"):

* ``GET /api/v1/repository?namespace=X[&next_page=…]`` — ``{"repositories": [{"namespace",
  "name", "kind": "image", "is_public", …}], "next_page": …}`` (``next_page`` only when more
  remain; an opaque token). Needs ``repo:read``;
* ``GET /api/v1/repository/{namespace}/{name…}`` — the repository with ``can_write`` and
  ``can_admin`` for the caller (``can_admin`` iff the token has ``repo:admin``). Needs ``repo:read``;
* ``DELETE /api/v1/repository/{namespace}/{name…}`` — 204; needs ``repo:admin`` (an OAuth
  application token; robot credentials never carry it). Deletes every tagged manifest of the
  repository upstream and hides the repository from later listings.

Authentication: ``Authorization: Bearer <OAuth token>``; ``tokens`` maps each valid token to
its scopes. No or an unknown token: 401 ``invalid_token``; a token without the scope: 403
``insufficient_scope`` ("Unauthorized", as ``Unauthorized`` in endpoints/exception.py answers
for a user). Errors have Quay's shape: ``detail``, ``error_message``, ``error_type``, ``title``,
``type``, ``status``. Names with a ``/`` after the namespace are served literally (Quay's
extended repository names).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from typing import Any

from testbed.emulators.vendor import ApiAnswer, VendorApiEmulator, json_answer

_NAMESPACE = r"[a-z0-9]+(?:[._-][a-z0-9]+)*"
_NAME = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"


def quay_error(status: int, error_type: str, message: str) -> ApiAnswer:
    """Quay's RFC 7807 error body (endpoints/exception.py ``ApiException.to_dict``)."""
    return json_answer(status, {"detail": message, "error_message": message, "error_type": error_type,
                                "title": error_type, "type": f"https://quay.io/api/v1/error/{error_type}",
                                "status": status})


class QuayAPI(VendorApiEmulator):
    """Quay's ``/api/v1`` for ``tokens`` (token -> scopes such as ``repo:read``, ``repo:admin``)."""

    service_name = "quay-api"

    def __init__(self, upstream_url: str, tokens: Mapping[str, Iterable[str]], *, page_size: int = 100) -> None:
        super().__init__(upstream_url)
        self.tokens = {t: frozenset(s) for t, s in tokens.items()}
        self.page_size = page_size

    def __enter__(self) -> QuayAPI:
        self.start()
        return self

    def _scopes(self, headers: Mapping[str, str]) -> frozenset[str] | None:
        value = headers.get("authorization", "")
        if not value.lower().startswith("bearer "):
            return None
        return self.tokens.get(value[7:].strip())

    def handle(self, method: str, raw_path: str, query: dict[str, list[str]], headers: Mapping[str, str]) -> ApiAnswer:
        scopes = self._scopes(headers)
        if scopes is None:
            return quay_error(401, "invalid_token", "Requires authentication")
        if raw_path == "/api/v1/repository" and method == "GET":
            return self._list(scopes, query)
        m = re.fullmatch(rf"/api/v1/repository/({_NAMESPACE})/({_NAME})", raw_path)
        if m and method in ("GET", "DELETE"):
            repo = f"{m.group(1)}/{m.group(2)}"
            if method == "GET":
                return self._get(repo, scopes)
            return self._delete(repo, scopes)
        if raw_path == "/api/v1/user/" and method == "GET":
            if "user:read" not in scopes:
                return quay_error(403, "insufficient_scope", "Unauthorized")
            return json_answer(200, {"username": "kitgc", "anonymous": False})
        return quay_error(404, "not_found", "Not Found")

    def _list(self, scopes: frozenset[str], query: dict[str, list[str]]) -> ApiAnswer:
        if "repo:read" not in scopes:
            return quay_error(403, "insufficient_scope", "Unauthorized")
        namespace = query.get("namespace", [""])[0]
        if not re.fullmatch(_NAMESPACE, namespace):
            return quay_error(400, "invalid_request", "namespace is required")
        start = 0
        if "next_page" in query:
            try:
                start = int(base64.urlsafe_b64decode(query["next_page"][0].encode()).decode())
            except (ValueError, UnicodeDecodeError):
                return quay_error(400, "invalid_request", "Invalid next_page")
        names = self.visible(namespace + "/")
        chunk = names[start:start + self.page_size]
        doc: dict[str, Any] = {"repositories": [
            {"namespace": namespace, "name": n.split("/", 1)[1], "description": None, "is_public": False,
             "kind": "image", "state": "NORMAL", "is_starred": False} for n in chunk]}
        if start + self.page_size < len(names):
            doc["next_page"] = base64.urlsafe_b64encode(str(start + self.page_size).encode()).decode()
        return json_answer(200, doc)

    def _get(self, repo: str, scopes: frozenset[str]) -> ApiAnswer:
        if "repo:read" not in scopes:
            return quay_error(403, "insufficient_scope", "Unauthorized")
        if repo not in self.visible(repo.split("/", 1)[0] + "/"):
            return quay_error(404, "not_found", "Not Found")
        namespace, name = repo.split("/", 1)
        tags = {t: {"name": t} for t in self.upstream.tags(repo)}
        return json_answer(200, {"namespace": namespace, "name": name, "kind": "image", "description": None,
                                 "is_public": False, "is_organization": True, "is_starred": False,
                                 "can_write": "repo:write" in scopes or "repo:admin" in scopes,
                                 "can_admin": "repo:admin" in scopes, "tags": tags, "state": "NORMAL"})

    def _delete(self, repo: str, scopes: frozenset[str]) -> ApiAnswer:
        if "repo:admin" not in scopes:
            return quay_error(403, "insufficient_scope", "Unauthorized")
        if repo not in self.visible(repo.split("/", 1)[0] + "/"):
            return quay_error(404, "not_found", "Not Found")
        self.remove(repo)
        return ApiAnswer(204)


__all__ = ["QuayAPI", "quay_error"]
