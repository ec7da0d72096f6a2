"""A registry's complete answer, and the one-line errors made from it.

Shared by the transport (token answers) and the client (API answers); kept out of both so
that how an error is worded does not depend on which of them met it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from kitgc.errors import RegistryError


@dataclass(frozen=True)
class Reply:
    """A complete answer (body read, connection released)."""

    status: int
    headers: httpx.Headers
    body: bytes
    url: httpx.URL


def one_line(text: str, limit: int = 500) -> str:
    """``text`` on one line of at most ``limit`` characters: a registry's message may hold anything."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_code(body: bytes) -> tuple[str | None, str | None]:
    """(code, message) of the first entry of ``{"errors": [...]}``, when the body has one."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return None, None
    errors = doc.get("errors") if isinstance(doc, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        code, message = errors[0].get("code"), errors[0].get("message")
        return (code if isinstance(code, str) else None, message if isinstance(message, str) else None)
    return None, None


def json_document(what: str, reply: Reply) -> Any:
    """The JSON body of a 200 answer, or a one-line :class:`RegistryError` naming ``what``."""
    if reply.status != 200:
        raise registry_error(what, reply)
    try:
        return json.loads(reply.body)
    except (ValueError, RecursionError):
        raise RegistryError(f"{what}: the answer is not valid JSON", status=200) from None


def registry_error(what: str, reply: Reply) -> RegistryError:
    """A one-line error naming the operation, the status and the registry's error code."""
    code, message = error_code(reply.body)
    text = f"{what}: HTTP {reply.status}" + (f" {code}" if code else "") + (f": {message}" if message else "")
    return RegistryError(one_line(text), status=reply.status, code=code)
