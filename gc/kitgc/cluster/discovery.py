"""Which registry, and which organizations in it, Camel K pushes kits to.

The operator's own answer is in each IntegrationPlatform's ``status.build.registry`` (the
defaulted copy: organization filled in with the platform's namespace), with
``spec.build.registry`` as the fallback for a platform the operator has not reconciled.
IntegrationProfiles may override parts of it. Explicit settings always win; when the
cluster names several registries and none was chosen, we refuse to guess.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from kitgc.errors import ConfigError
from kitgc.imageref import InvalidReference, split_address
from kitgc.model import ObjectRef


@dataclass(frozen=True)
class PlatformRegistry:
    """The registry one IntegrationPlatform or IntegrationProfile names.

    ``address`` None: the object names no address (a profile inheriting the platform's).
    ``organization`` "": none named and nothing to default to (profiles inherit too).
    """

    source: ObjectRef
    address: str | None
    organization: str
    insecure: bool
    secret: str | None
    ca: str | None


def _registry(obj: dict[str, Any], part: str) -> dict[str, Any] | None:
    reg = ((obj.get(part) or {}).get("build") or {}).get("registry")
    return reg if isinstance(reg, dict) and reg else None


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _make(src: ObjectRef, reg: dict[str, Any], default_org: str) -> PlatformRegistry:
    return PlatformRegistry(
        source=src,
        address=_text(reg.get("address")),
        organization=(_text(reg.get("organization")) or default_org).strip("/"),
        insecure=reg.get("insecure") is True or str(reg.get("insecure")).lower() == "true",
        secret=_text(reg.get("secret")),
        ca=_text(reg.get("ca")),
    )


def from_platform(obj: dict[str, Any]) -> PlatformRegistry | None:
    """``status.build.registry`` first, then ``spec.build.registry``; org defaults to the namespace."""
    meta = obj.get("metadata") or {}
    src = ObjectRef("IntegrationPlatform", str(meta.get("name") or ""), meta.get("namespace"))
    reg = _registry(obj, "status") or _registry(obj, "spec")
    if reg is None:
        return None
    return _make(src, reg, src.namespace or "")


def from_profile(obj: dict[str, Any]) -> PlatformRegistry | None:
    """``spec.build.registry`` of a profile; unset fields are inherited from the platform."""
    meta = obj.get("metadata") or {}
    src = ObjectRef("IntegrationProfile", str(meta.get("name") or ""), meta.get("namespace"))
    reg = _registry(obj, "spec")
    return None if reg is None else _make(src, reg, "")


def registries(platforms: Iterable[dict[str, Any]], profiles: Iterable[dict[str, Any]] = ()) -> list[PlatformRegistry]:
    found = [from_platform(p) for p in platforms] + [from_profile(p) for p in profiles]
    return [r for r in found if r is not None]


def _normal(address: str, source: str) -> str:
    try:
        host, prefix = split_address(address)
    except InvalidReference as exc:
        raise ConfigError(f"invalid registry address in {source}: {exc}; set REGISTRY_ADDRESS") from None
    return f"{host}/{prefix}" if prefix else host


def resolve_targets(
    platforms: Sequence[PlatformRegistry],
    address: str | None,
    organizations: tuple[str, ...] | None,
    insecure: bool | None,
) -> tuple[str, tuple[str, ...], bool]:
    """(address, organizations, insecure) to clean, as CONTRACT.md defaults them.

    - ``address``: REGISTRY_ADDRESS, else the one address the platforms and profiles name;
      several different ones, or none, is a ConfigError asking for REGISTRY_ADDRESS.
    - ``organizations``: REGISTRY_ORGANIZATION, else every organization named by a platform
      or profile that pushes to that address (or names no address, so inherits it); when
      REGISTRY_ADDRESS matches no platform, every platform's organizations.
    - ``insecure``: REGISTRY_INSECURE, else true when a platform on that address says so
      (a wrong guess fails to connect; it cannot delete anything).
    """
    by_address: dict[str, list[PlatformRegistry]] = {}
    inheriting = [p for p in platforms if p.address is None]
    for p in platforms:
        if p.address is not None:
            by_address.setdefault(_normal(p.address, str(p.source)), []).append(p)

    if address is None:
        if not by_address:
            raise ConfigError(
                "no registry address found in any IntegrationPlatform or IntegrationProfile; set REGISTRY_ADDRESS"
            )
        if len(by_address) > 1:
            listed = ", ".join(f"{a} ({', '.join(str(p.source) for p in ps)})" for a, ps in sorted(by_address.items()))
            raise ConfigError(f"the cluster names several registries: {listed}; set REGISTRY_ADDRESS to choose one")
        chosen = next(iter(by_address))
    else:
        chosen = _normal(address, "REGISTRY_ADDRESS")
    same = by_address.get(chosen, [])
    if address is not None and not same:
        # REGISTRY_ADDRESS is often another name for the platforms' registry (a node-local
        # alias, a port-forward): their organizations are still the ones to clean.
        same = [p for ps in by_address.values() for p in ps]
    same = same + inheriting

    if organizations is None:
        orgs = tuple(dict.fromkeys(p.organization for p in same if p.organization))
        if not orgs:
            raise ConfigError(
                f"no organization found for registry {chosen} in any IntegrationPlatform or IntegrationProfile; "
                "set REGISTRY_ORGANIZATION"
            )
        organizations = tuple(sorted(orgs))
    if insecure is None:
        insecure = any(p.insecure for p in by_address.get(chosen, []))
    return chosen, organizations, insecure
