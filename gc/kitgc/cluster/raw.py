"""Safe steps through raw Kubernetes JSON: a missing or mistyped field reads as nothing.

Every extraction rule walks objects the API server (or anything pretending to be one) sent;
one wrong type must not become a traceback. Shared by extraction, owners, traits and the
operator's environment.
"""

from __future__ import annotations

from typing import Any


def get(obj: Any, *keys: str) -> Any:
    """``obj[k1][k2]…``, or None as soon as a step is not a dict."""
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def items(value: Any) -> list[dict[str, Any]]:
    """The dict entries of a list; anything else is an empty list."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []
