"""Which registry and organizations a run would clean, resolved exactly as a run resolves them.

The doctor must check the registry a run would talk to, not one it guessed: the address and
organizations come from REGISTRY_ADDRESS/REGISTRY_ORGANIZATION or the cluster's
IntegrationPlatforms (:func:`kitgc.cluster.discovery.resolve_targets`, as in
:mod:`kitgc.run`), and the scope from the kits the cluster shows and the state remembers.
The registry kind is decided by :func:`kitgc.stores.choose.decide_kind`, as a run decides it
(``REGISTRY_KIND``, the host name, then the registry's anonymous answer to ``GET /v2/``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from kitgc.cluster.discovery import resolve_targets
from kitgc.cluster.everywhere import KitsShown, kits_shown
from kitgc.cluster.reader import ClusterReader
from kitgc.config import Settings
from kitgc.doctor.checks import Check, Findings
from kitgc.errors import ConfigError, KitGCError
from kitgc.imageref import split_address
from kitgc.scope import Scope, full_organizations
from kitgc.state import StateStore
from kitgc.stores import choose


@dataclass(frozen=True)
class Target:
    """The registry, its kind, and what is in scope there, as a run would see them now."""

    host: str
    organizations: tuple[str, ...]
    insecure: bool
    kind: str
    scope: Scope
    known: tuple[str, ...]  # the kit repositories the cluster names (for a store that cannot list)


async def decide_kind(settings: Settings, host: str, insecure: bool) -> tuple[str, str]:
    """(kind, how it was decided): the one place the doctor asks, exactly as a run does."""
    try:
        return await choose.decide_kind(settings, host, insecure)
    except ConfigError:  # an unreadable REGISTRY_AUTH_FILE: registry_auth says so
        return choose.choose_kind(settings.registry_kind, host)


def _locate(settings: Settings, reader: ClusterReader | None) -> tuple[str, tuple[str, ...], bool]:
    platforms = []
    if settings.registry_address is None or settings.organizations is None:
        if reader is None:
            raise ConfigError("REGISTRY_ADDRESS and REGISTRY_ORGANIZATION unset and no cluster to read "
                              "IntegrationPlatforms from")
        platforms = reader.platform_registries()
    return resolve_targets(platforms, settings.registry_address, settings.organizations, settings.registry_insecure)


async def resolve(settings: Settings, reader: ClusterReader | None, state: StateStore | None,
                  findings: Findings) -> Target | None:
    """The run's target, adding the ``registry_target`` and ``registry_kind`` checks; None if unknown."""
    try:
        address, orgs, insecure = await asyncio.to_thread(_locate, settings, reader)
        host, prefix = split_address(address)
    except ConfigError as exc:
        findings.config_error = True
        findings.add(Check("registry_target", False, str(exc)))
        return None
    except KitGCError as exc:
        findings.add(Check("registry_target", False, f"cannot find the registry a run would clean: {exc}"))
        return None
    organizations = full_organizations(prefix, orgs)
    kind, kind_from = await decide_kind(settings, host, insecure)
    shown = await asyncio.to_thread(_kits, reader)
    if kind == "openshift":  # an organization is a namespace there, and S2I kits live in their own
        organizations = tuple(dict.fromkeys((*organizations, *sorted(shown.namespaces))))
    remembered: frozenset[str] = frozenset()
    if state is not None:
        remembered = (await asyncio.to_thread(state.load)).kits_seen
    origin = reader.registry_origin(settings.registry_address) if reader is not None else "REGISTRY_ADDRESS"
    org_origin = "REGISTRY_ORGANIZATION" if settings.organizations is not None else "the cluster's platforms"
    scheme = "plain HTTP" if insecure else "HTTPS"
    findings.add(Check("registry_target", True,
                       f"{host} (from {origin or 'the cluster'}), organizations {', '.join(organizations)} "
                       f"(from {org_origin}), {scheme}"))
    findings.add(Check("registry_kind", True, f"{kind} ({kind_from})"))
    scope = Scope(organizations, shown.repositories | remembered)
    known = tuple(f"{org}/{name}" for org in organizations for name in sorted(shown.repositories))
    return Target(choose.v2_host(kind, host), organizations, insecure, kind, scope, known)


def _kits(reader: ClusterReader | None) -> KitsShown:
    """The kits the cluster shows; none when they cannot be read (``cluster_source`` says why)."""
    if reader is None:
        return KitsShown(frozenset(), frozenset())
    try:
        return kits_shown(reader)
    except KitGCError:
        return KitsShown(frozenset(), frozenset())


__all__ = ["Target", "decide_kind", "resolve"]
