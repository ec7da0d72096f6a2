"""Which registry, and which organizations in it, Camel K pushes kits to.

The operator's own answer is in each IntegrationPlatform's ``status.build.registry`` (the
defaulted copy: organization filled in with the platform's namespace), with
``spec.build.registry`` as the fallback for a platform the operator has not reconciled.
IntegrationProfiles may override parts of it. Explicit settings always win; when the
cluster names several registries and none was chosen, we refuse to guess.

Camel K's main branch deprecates the IntegrationPlatform: the operator then takes its
registry from its own environment. So when no IntegrationPlatform names a registry address,
the operator Deployments are read. Facts from Camel K's source (github.com/apache/camel-k):

- ``pkg/platform/env_platform.go`` ``registry()``: ``REGISTRY_ADDRESS``, ``REGISTRY_ORGANIZATION``,
  ``REGISTRY_INSECURE`` (``strconv.ParseBool``, false when unparsable), ``REGISTRY_SECRET``,
  ``REGISTRY_CA_CONFIGMAP``; ``pkg/cmd/operator/operator.go`` ``checkRegistry()`` says the
  operator uses that registry "unless any other specified in IntegrationPlatform".
- ``pkg/trait/trait.go`` ``NewEnvironment`` and ``pkg/controller/build/build_controller.go``: an
  IntegrationPlatform, where one exists, replaces the environment's settings: a platform wins.
- ``pkg/trait/builder.go`` ``getImageName``: an empty organization defaults to the catalog
  namespace, ``pkg/platform/operator.go`` ``GetOperatorNamespace()``: the variable ``NAMESPACE``,
  which the manifests set from the pod's ``metadata.namespace``.
- ``pkg/resources/config/manager/operator-deployment.yaml`` and
  ``helm/camel-k/templates/operator-deployment.yaml``: the Deployment is labelled
  ``app: camel-k`` and ``camel.apache.org/component: operator`` (in 1.x too), its container is
  ``camel-k-operator``; the kustomize one also takes ``envFrom`` the optional ConfigMap
  ``camel-k-operator-configmap-configuration`` and Secret ``camel-k-operator-secret-configuration``.
- ``pkg/util/defaults/defaults_support.go`` ``OperatorID()``: ``KAMEL_OPERATOR_ID``, else
  ``OPERATOR_ID``, the id resources name in the ``camel.apache.org/operator.id`` annotation
  (``pkg/apis/camel/v1/common_types.go``); it is only reported here.

A variable whose value the collector cannot see (``valueFrom`` a Secret or ConfigMap, a
``$(VAR)`` expansion, or left unset while ``envFrom`` may set it) is never guessed: where it
would decide the address, the organizations or plain HTTP, :func:`resolve_targets` refuses
with a ConfigError naming the Deployment and the variable to set instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kitgc.cluster.podenv import container_env
from kitgc.errors import ConfigError
from kitgc.imageref import InvalidReference, split_address
from kitgc.model import ObjectRef

PLATFORM_KIND = "IntegrationPlatform"
OPERATOR_SELECTOR = "app=camel-k,camel.apache.org/component=operator"
OPERATOR_CONTAINER = "camel-k-operator"
_GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})  # strconv.ParseBool


@dataclass(frozen=True)
class PlatformRegistry:
    """The registry one IntegrationPlatform, IntegrationProfile or operator Deployment names.

    ``address`` None: the object names no address (a profile inheriting the platform's), or
    an operator's cannot be seen (``unread``). ``organization`` "": none named and nothing to
    default to (profiles inherit too).
    """

    source: ObjectRef
    address: str | None
    organization: str
    insecure: bool
    secret: str | None
    ca: str | None
    # Where the address was read, for the log: "IntegrationPlatform camel-k/camel-k status.build.registry".
    origin: str = field(default="", compare=False)
    # An operator's variables whose value cannot be seen: (variable, why).
    unread: tuple[tuple[str, str], ...] = ()

    def why_unread(self, variable: str) -> str | None:
        return next((why for name, why in self.unread if name == variable), None)


def _registry(obj: dict[str, Any], part: str) -> dict[str, Any] | None:
    reg = ((obj.get(part) or {}).get("build") or {}).get("registry")
    return reg if isinstance(reg, dict) and reg else None


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _make(src: ObjectRef, reg: dict[str, Any], default_org: str, origin: str) -> PlatformRegistry:
    return PlatformRegistry(
        source=src,
        address=_text(reg.get("address")),
        organization=(_text(reg.get("organization")) or default_org).strip("/"),
        insecure=reg.get("insecure") is True or str(reg.get("insecure")).lower() == "true",
        secret=_text(reg.get("secret")),
        ca=_text(reg.get("ca")),
        origin=origin,
    )


def from_platform(obj: dict[str, Any]) -> PlatformRegistry | None:
    """``status.build.registry`` first, then ``spec.build.registry``; org defaults to the namespace."""
    meta = obj.get("metadata") or {}
    src = ObjectRef(PLATFORM_KIND, str(meta.get("name") or ""), meta.get("namespace"))
    part = "status" if _registry(obj, "status") else "spec"
    reg = _registry(obj, part)
    if reg is None:
        return None
    return _make(src, reg, src.namespace or "", f"{src} {part}.build.registry")


def from_profile(obj: dict[str, Any]) -> PlatformRegistry | None:
    """``spec.build.registry`` of a profile; unset fields are inherited from the platform."""
    meta = obj.get("metadata") or {}
    src = ObjectRef("IntegrationProfile", str(meta.get("name") or ""), meta.get("namespace"))
    reg = _registry(obj, "spec")
    return None if reg is None else _make(src, reg, "", f"{src} spec.build.registry")


def registries(platforms: Iterable[dict[str, Any]], profiles: Iterable[dict[str, Any]] = ()) -> list[PlatformRegistry]:
    found = [from_platform(p) for p in platforms] + [from_profile(p) for p in profiles]
    return [r for r in found if r is not None]


def platform_names_address(found: Iterable[PlatformRegistry]) -> bool:
    """Whether an IntegrationPlatform or an IntegrationProfile names a registry address: then
    the operators' environment is not read (a profile overrides what the operator would use,
    and reading it anyway could only turn a working discovery into an error)."""
    return any(r.address is not None for r in found if r.source.kind in (PLATFORM_KIND, "IntegrationProfile"))


# --- the operator's environment ---------------------------------------------------------------


def from_operator(obj: dict[str, Any]) -> PlatformRegistry | None:
    """The registry a Camel K operator Deployment's environment names; None when it names none."""
    meta = obj.get("metadata") or {}
    namespace = str(meta.get("namespace") or "")
    src = ObjectRef("Deployment", str(meta.get("name") or ""), namespace or None)
    env = container_env(obj, OPERATOR_CONTAINER, namespace)
    if env is None:
        return None
    address, hidden = env.get("REGISTRY_ADDRESS")
    unread = [("REGISTRY_ADDRESS", hidden)] if hidden else []
    if _text(address) is None and not hidden:
        return None
    organization, hidden = env.get("REGISTRY_ORGANIZATION")
    if _text(organization) is None and not hidden:  # Camel K: the operator's namespace, NAMESPACE
        organization, hidden = env.get("NAMESPACE")
        organization = organization if organization is not None or hidden else namespace
        hidden = hidden and f"it defaults to NAMESPACE, and {hidden}"
    unread += [("REGISTRY_ORGANIZATION", hidden)] if hidden else []
    insecure, hidden = env.get("REGISTRY_INSECURE")
    unread += [("REGISTRY_INSECURE", hidden)] if hidden else []
    operator_id = _text(env.get("KAMEL_OPERATOR_ID")[0]) or _text(env.get("OPERATOR_ID")[0])
    return PlatformRegistry(
        source=src,
        address=_text(address),
        organization=(_text(organization) or "").strip("/"),
        insecure=insecure in _GO_TRUE,
        secret=_text(env.get("REGISTRY_SECRET")[0]),
        ca=_text(env.get("REGISTRY_CA_CONFIGMAP")[0]),
        origin=f"operator {src} env REGISTRY_ADDRESS" + (f" (operator id {operator_id})" if operator_id else ""),
        unread=tuple(unread),
    )


def operator_registries(deployments: Iterable[dict[str, Any]]) -> list[PlatformRegistry]:
    """Registries of the operator Deployments (listed with :data:`OPERATOR_SELECTOR`)."""
    return [r for r in map(from_operator, deployments) if r is not None]


# --- resolving ---------------------------------------------------------------------------------


def _refuse_unread(found: Iterable[PlatformRegistry], variable: str, setting: str) -> None:
    for p in found:
        why = p.why_unread(variable)
        if why:
            raise ConfigError(f"cannot tell the {variable} of the Camel K operator {p.source}: {why}, which kitgc "
                              f"does not read; set {setting}")


def _normal(address: str, source: str) -> str:
    try:
        host, prefix = split_address(address)
    except InvalidReference as exc:
        raise ConfigError(f"invalid registry address in {source}: {exc}; set REGISTRY_ADDRESS") from None
    return f"{host}/{prefix}" if prefix else host


def _by_address(platforms: Iterable[PlatformRegistry]) -> dict[str, list[PlatformRegistry]]:
    by_address: dict[str, list[PlatformRegistry]] = {}
    for p in platforms:
        if p.address is not None:
            by_address.setdefault(_normal(p.address, str(p.source)), []).append(p)
    return by_address


def resolve_targets(
    platforms: Sequence[PlatformRegistry],
    address: str | None,
    organizations: tuple[str, ...] | None,
    insecure: bool | None,
) -> tuple[str, tuple[str, ...], bool]:
    """(address, organizations, insecure) to clean, as CONTRACT.md defaults them.

    ``platforms``: platforms, profiles and (when no platform names an address) operators.

    - ``address``: REGISTRY_ADDRESS, else the one address they name; several different ones,
      or none, or an operator whose address cannot be seen, is a ConfigError asking for it.
    - ``organizations``: REGISTRY_ORGANIZATION, else every organization named by a platform
      or profile that pushes to that address (or names no address, so inherits it); when
      REGISTRY_ADDRESS matches no platform, every platform's organizations.
    - ``insecure``: REGISTRY_INSECURE, else true when a platform on that address says so
      (a wrong guess fails to connect; it cannot delete anything).

    A value that decides one of these and cannot be seen is a ConfigError naming the setting.
    """
    by_address = _by_address(platforms)
    unplaced = [p for p in platforms if p.why_unread("REGISTRY_ADDRESS")]
    inheriting = [p for p in platforms if p.address is None and not p.why_unread("REGISTRY_ADDRESS")]

    if address is None:
        _refuse_unread(unplaced, "REGISTRY_ADDRESS", "REGISTRY_ADDRESS")
        if not by_address:
            raise ConfigError(
                "no registry address found in any IntegrationPlatform, IntegrationProfile or Camel K operator "
                f"Deployment (labelled {OPERATOR_SELECTOR}); set REGISTRY_ADDRESS"
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
        _refuse_unread(unplaced, "REGISTRY_ADDRESS", "REGISTRY_ORGANIZATION")  # whose organizations?
        _refuse_unread(same, "REGISTRY_ORGANIZATION", "REGISTRY_ORGANIZATION")
        orgs = tuple(dict.fromkeys(p.organization for p in same if p.organization))
        if not orgs:
            raise ConfigError(
                f"no organization found for registry {chosen} in any IntegrationPlatform, IntegrationProfile or "
                "Camel K operator; set REGISTRY_ORGANIZATION"
            )
        organizations = tuple(sorted(orgs))
    if insecure is None:
        _refuse_unread(by_address.get(chosen, []), "REGISTRY_INSECURE", "REGISTRY_INSECURE")
        insecure = any(p.insecure for p in by_address.get(chosen, []))
    return chosen, organizations, insecure


def registry_origin(platforms: Sequence[PlatformRegistry], address: str | None) -> str:
    """Where the address :func:`resolve_targets` chose came from, for the log: ``REGISTRY_ADDRESS``,
    or what named it (``IntegrationPlatform camel-k/camel-k status.build.registry``, ``operator
    Deployment camel-k/camel-k-operator env REGISTRY_ADDRESS``); "" when nothing or several did."""
    if address is not None:
        return "REGISTRY_ADDRESS"
    by_address = _by_address(platforms)
    if len(by_address) != 1:
        return ""
    origins = list(dict.fromkeys(p.origin for p in next(iter(by_address.values()))))
    return "; ".join(origins[:3]) + (f" and {len(origins) - 3} more" if len(origins) > 3 else "")
