"""Small text helpers for the planner's reasons, kept apart so every reason reads alike.

Reasons are what an operator reads in the report and in ``kitgc explain`` when asking "why
was this deleted?", so durations are rounded to one human unit and digests are shortened
the way people quote them.
"""

from __future__ import annotations

from datetime import timedelta

_UNITS = (("d", 86400), ("h", 3600), ("m", 60))


def age_text(age: timedelta) -> str:
    """An age rounded down to its largest unit: ``3d``, ``5h``, ``12m``, ``40s``.

    Negative ages (a timestamp after ``now``, i.e. clock skew) read as ``0s``.
    """
    secs = max(0, int(age.total_seconds()))
    for unit, size in _UNITS:
        if secs >= size:
            return f"{secs // size}{unit}"
    return f"{secs}s"


def min_age_text(min_age: timedelta) -> str:
    """MIN_AGE exactly as an operator would have written it: ``24h``, ``90s``, ``7d``, ``0``.

    Exact, not rounded (a rounded grace period would misstate the rule). Whole days are
    shown as days only from 2 days on, so the default reads ``24h`` like the docs say.
    """
    secs = int(min_age.total_seconds())
    if secs <= 0:
        return "0"
    if secs % 86400 == 0 and secs >= 2 * 86400:
        return f"{secs // 86400}d"
    if secs % 3600 == 0:
        return f"{secs // 3600}h"
    if secs % 60 == 0:
        return f"{secs // 60}m"
    return f"{secs}s"


def short_digest(digest: str) -> str:
    """``sha256:0123456789ab``: the algorithm and the first 12 hex digits."""
    algorithm, sep, hexpart = digest.partition(":")
    return f"{algorithm}:{hexpart[:12]}" if sep else digest[:12]


def last_segment(repository: str) -> str:
    """The last path segment of a repository, where a kit's name shows."""
    return repository.rpartition("/")[2]


def some(items: list[str], limit: int = 3) -> str:
    """``a, b, c and 2 more``: a list that stays readable however long it gets."""
    shown = ", ".join(items[:limit])
    return f"{shown} and {len(items) - limit} more" if len(items) > limit else shown
