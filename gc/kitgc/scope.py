"""Which repositories are ours to clean, and nothing else.

In scope, directly under a configured organization: ``camel-k-kit-*`` (what the operator
names a kit's repository), ``camel-k-ctx-*`` (Camel K 0.x contexts), and ``camel-k-<name>``
for a kit ``<name>`` this collector has seen (``kamel kit create NAME`` user kits, and from
Camel K 2.7 builds from git named after their Integration). A repository whose name only
looks like a kit's is never touched when no kit was ever seen for it: ``camel-k-my-app`` may
be anybody's. Kept apart so that the scan and the planner apply one and the same rule.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from kitgc.identity import KIT_NAME_PREFIX, KIT_REPOSITORY_PREFIX
from kitgc.shard import Shard

KIT_PREFIX = KIT_REPOSITORY_PREFIX + KIT_NAME_PREFIX  # camel-k-kit-
CONTEXT_PREFIX = KIT_REPOSITORY_PREFIX + "ctx-"  # camel-k-ctx-: Camel K 0.x
_PREFIXES = (KIT_PREFIX, CONTEXT_PREFIX)


def organization_of(
    repository: str, organizations: tuple[str, ...], kit_repositories: Collection[str] = ()
) -> str | None:
    """The organization ``repository`` is a kit repository of, or None when out of scope.

    The kit name is exactly one path segment below the organization: ``org/camel-k-kit-x``
    is in scope for ``org``; ``org/sub/camel-k-kit-x`` is not (unless ``org/sub`` is named).
    ``kit_repositories`` are the last segments of the kits seen (``camel-k-<name>``).
    """
    parent, _, last = repository.rpartition("/")
    if parent not in organizations:
        return None
    if any(last.startswith(p) and len(last) > len(p) for p in _PREFIXES):
        return parent
    if last.startswith(KIT_REPOSITORY_PREFIX) and last in kit_repositories:  # only ever camel-k-<name>
        return parent
    return None


def in_scope(repository: str, organizations: tuple[str, ...], kit_repositories: Collection[str] = ()) -> bool:
    return organization_of(repository, organizations, kit_repositories) is not None


@dataclass(frozen=True)
class Scope:
    """The organizations to clean and the kit repositories seen: ``repository in scope``."""

    organizations: tuple[str, ...]
    kit_repositories: frozenset[str] = frozenset()
    shard: Shard = field(default_factory=Shard)  # with SHARDS > 1, only this shard's repositories

    def __contains__(self, repository: object) -> bool:
        return (isinstance(repository, str) and in_scope(repository, self.organizations, self.kit_repositories)
                and self.shard.owns(repository))

    @classmethod
    def of(cls, value: Scope | tuple[str, ...]) -> Scope:
        """A Scope, or one over plain organizations (kit repositories ``camel-k-kit-*``, ``-ctx-*`` only)."""
        return value if isinstance(value, Scope) else cls(tuple(value))


def full_organizations(prefix: str, organizations: tuple[str, ...]) -> tuple[str, ...]:
    """Organizations as repository path prefixes, with the registry address's path prefix."""
    cleaned = [o.strip().strip("/") for o in organizations if o.strip().strip("/")]
    if prefix:
        cleaned = [f"{prefix.strip('/')}/{o}" for o in cleaned]
    return tuple(dict.fromkeys(cleaned))
