"""Which repositories are ours to clean: ``<organization>/camel-k-kit-*`` and nothing else.

Kept apart so that the registry scan and the planner apply one and the same rule.
"""

from __future__ import annotations

from kitgc.identity import KIT_NAME_PREFIX, KIT_REPOSITORY_PREFIX

KIT_PREFIX = KIT_REPOSITORY_PREFIX + KIT_NAME_PREFIX  # camel-k-kit-


def organization_of(repository: str, organizations: tuple[str, ...]) -> str | None:
    """The organization ``repository`` is a kit repository of, or None when out of scope.

    The kit name is exactly one path segment below the organization: ``org/camel-k-kit-x``
    is in scope for ``org``; ``org/sub/camel-k-kit-x`` is not (unless ``org/sub`` is named).
    """
    parent, _, last = repository.rpartition("/")
    if not last.startswith(KIT_PREFIX) or len(last) == len(KIT_PREFIX):
        return None
    return parent if parent in organizations else None


def in_scope(repository: str, organizations: tuple[str, ...]) -> bool:
    return organization_of(repository, organizations) is not None


def full_organizations(prefix: str, organizations: tuple[str, ...]) -> tuple[str, ...]:
    """Organizations as repository path prefixes, with the registry address's path prefix."""
    cleaned = [o.strip().strip("/") for o in organizations if o.strip().strip("/")]
    if prefix:
        cleaned = [f"{prefix.strip('/')}/{o}" for o in cleaned]
    return tuple(dict.fromkeys(cleaned))
