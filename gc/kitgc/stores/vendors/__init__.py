"""Image stores that list or delete through a vendor's REST API, over a v2 store for reading.

Each one is the v2 store plus one or more API clients; :func:`merged_stats` and
:func:`close_all` are what they share for requests counted and connections closed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any


def merged_stats(v2: Any, apis: Iterable[Any]) -> Mapping[str, int]:
    """The v2 store's request counts, and each API's as ``api_<kind>``."""
    merged = Counter(v2.stats)
    for api in apis:
        merged.update({k if k.startswith("api_") else f"api_{k}": v for k, v in api.stats.items()})
    return merged


async def close_all(v2: Any, apis: Iterable[Any]) -> None:
    """Close every API client, then the v2 store, whatever fails on the way."""
    try:
        for api in apis:
            await api.aclose()
    finally:
        await v2.aclose()
