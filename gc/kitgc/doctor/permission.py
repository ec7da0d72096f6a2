"""Is deletion permitted? As far as can be known without deleting, and never by trying.

A Bearer-token registry says what it will allow before anything is attempted: the token
service is asked for ``repository:<repo>:delete`` (Quay: ``pull,push``, which is what its
delete needs) and the token's ``access`` claim says which actions were granted. The claim is
read, not verified (the registry verifies it; we only want to know what it would say), and
the token itself is never printed. Basic auth and anonymous registries decide at the DELETE
itself, so there the answer is "unknown until the first deleting run". Vendor stores may add
their own checks (``permission_checks()``, e.g. a REST API token's scopes).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import httpx

from kitgc.doctor.checks import UNKNOWN_UNTIL_DELETING, Check
from kitgc.registry.answers import error_code
from kitgc.registry.auth import basic_header

if TYPE_CHECKING:
    from kitgc.doctor.registry import Access
    from kitgc.doctor.target import Target

NAME = "registry_delete_permission"
# kind -> (actions asked for, the action that permits a delete)
_DELETE_ACTIONS = {"quay": ("pull,push", "push")}
_DEFAULT_ACTIONS = ("delete", "delete")
# Kinds that delete through the vendor's REST API, not the v2 API: their store's checks say.
_VIA_VENDOR_API = frozenset({"ghcr", "dockerhub"})
PROBE_REPOSITORY = "camel-k-kit-doctor"  # asked about when no in-scope repository exists yet


async def delete_permission(target: Target, access: Access | None, repository: str | None, timeout: float) -> Check:
    """``registry_delete_permission`` from what the token service grants, else unknown."""
    if target.kind in _VIA_VENDOR_API:
        return Check(NAME, None, f"not asked of the v2 token service: {target.kind} deletes through its REST API "
                                 "(see the store's own checks)")
    if access is None:
        return Check(NAME, None, f"{UNKNOWN_UNTIL_DELETING} (the registry's authentication could not be checked)")
    challenge = access.challenge
    if challenge is None:
        return Check(NAME, None, f"{UNKNOWN_UNTIL_DELETING} (anonymous registry: it decides at the DELETE)")
    if challenge.scheme != "bearer" or not challenge.realm:
        return Check(NAME, None, f"{UNKNOWN_UNTIL_DELETING} ({challenge.scheme.capitalize()} authentication: "
                                 "the registry decides at the DELETE)")
    repo = repository or f"{target.organizations[0]}/{PROBE_REPOSITORY}"
    asked, needed = _DELETE_ACTIONS.get(target.kind, _DEFAULT_ACTIONS)
    scope = f"repository:{repo}:{asked}"
    params = {"scope": scope, **({"service": challenge.service} if challenge.service else {})}
    headers = {"Authorization": basic_header(access.credentials)} if access.credentials else {}
    try:
        async with httpx.AsyncClient(verify=access.verify, timeout=timeout) as http:
            answer = await http.get(challenge.realm, params=params, headers=headers)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return Check(NAME, None, f"{UNKNOWN_UNTIL_DELETING} (the token service did not answer: {type(exc).__name__})")
    if answer.status_code in (401, 403):
        code, message = error_code(answer.content)
        said = f" {code}" + (f": {message}" if message else "") if code else ""
        return Check(NAME, False, f"the token service refuses a token for {scope}: HTTP {answer.status_code}{said}")
    if answer.status_code != 200:
        return Check(NAME, None, f"{UNKNOWN_UNTIL_DELETING} (the token service answered HTTP {answer.status_code})")
    granted = _granted(answer.content, repo)
    if granted is None:
        return Check(NAME, None, f"{UNKNOWN_UNTIL_DELETING} (the token for {scope} does not say what it grants)")
    if needed in granted or "*" in granted:
        return Check(NAME, True, f"the token service grants {needed} on {repo}")
    shown = ",".join(granted) if granted else "nothing"
    return Check(NAME, False, f"the token service grants {shown} on {repo}, not {needed}: a deleting run "
                              "would be refused")


def _granted(body: bytes, repository: str) -> list[str] | None:
    """The actions the token's ``access`` claim grants on ``repository``; None when unreadable."""
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    token = (doc.get("token") or doc.get("access_token")) if isinstance(doc, dict) else None
    claims = _claims(token) if isinstance(token, str) else None
    access = claims.get("access") if isinstance(claims, dict) else None
    if not isinstance(access, list):
        return None
    actions: list[str] = []
    for entry in access:
        if isinstance(entry, dict) and entry.get("type") == "repository" and entry.get("name") == repository:
            actions += [a for a in entry.get("actions") or [] if isinstance(a, str) and a not in actions]
    return actions


def _claims(token: str) -> Any:
    """The JWT's payload, unverified; None when the token is not a JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return None


async def store_checks(store: object) -> list[Check]:
    """What the store itself can say about its permissions (vendor REST APIs), if anything."""
    checks: Callable[[], Awaitable[list[tuple[str, bool | None, str]]]] | None = getattr(
        store, "permission_checks", None)
    if checks is None:
        return []
    try:
        return [Check(name, ok, detail) for name, ok, detail in await checks()]
    except Exception as exc:  # a vendor check must not hide every other check
        return [Check("registry_store_permissions", None, f"the store's own checks failed: {type(exc).__name__}: "
                                                          f"{exc}")]


__all__ = ["delete_permission", "store_checks"]
