"""SelfSubjectAccessReview: ask the API server what our credentials may do, without doing it.

A review is a POST, but one that stores nothing: the authorizer answers ``status.allowed``
for the verb, group, resource and namespace asked about. It is the only way to learn that a
DELETE of IntegrationKits or a ConfigMap update would be refused before a deleting run tries
it. Where reviews are not served or not allowed, the answer is "unknown", never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kitgc.kube.http import KubeHttp, TransportError

REVIEWS = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"


@dataclass(frozen=True)
class Review:
    """``allowed`` None: the API server could not be asked; ``reason`` says why, or its own reason."""

    allowed: bool | None
    reason: str = ""


def attributes(verb: str, group: str, resource: str, namespace: str | None = None) -> dict[str, Any]:
    attrs: dict[str, Any] = {"verb": verb, "group": group, "resource": resource}
    if namespace:
        attrs["namespace"] = namespace
    return attrs


def review(http: KubeHttp, verb: str, group: str, resource: str, namespace: str | None = None) -> Review:
    """May we ``verb`` ``group``/``resource`` (in ``namespace``, or in every namespace)?"""
    body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes(verb, group, resource, namespace)}}
    try:
        resp = http.request("POST", REVIEWS, body=body)
    except TransportError as exc:
        return Review(None, f"SelfSubjectAccessReview unanswered: {exc}")
    if not resp.ok:
        return Review(None, f"SelfSubjectAccessReview refused: {resp.status_message()}")
    try:
        status = resp.json().get("status") or {}
    except (ValueError, AttributeError):
        return Review(None, "SelfSubjectAccessReview answer is not an object")
    allowed = status.get("allowed") if isinstance(status, dict) else None
    if not isinstance(allowed, bool):
        return Review(None, "SelfSubjectAccessReview answer has no status.allowed")
    reason = str(status.get("reason") or "") if isinstance(status, dict) else ""
    if status.get("denied") is True:
        allowed = False
    return Review(allowed, reason)


def qualified(group: str, resource: str) -> str:
    """``resource.group`` as kubectl names it (``pods`` for the core group)."""
    return f"{resource}.{group}" if group else resource


__all__ = ["REVIEWS", "Review", "attributes", "qualified", "review"]
