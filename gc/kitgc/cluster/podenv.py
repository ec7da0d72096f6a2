"""A container's environment as far as its Deployment's manifest shows it.

Kubernetes semantics: the last ``env`` entry of a name counts, and ``env`` wins over
``envFrom``; ``valueFrom`` (a Secret or ConfigMap key, a resource field) and ``$(VAR)``
expansions are resolved by the kubelet, out of sight. A value that cannot be seen here is
reported with why, never guessed; ``fieldRef: metadata.namespace`` is the one that can be.
"""

from __future__ import annotations

from typing import Any

from kitgc.cluster.raw import get as _get
from kitgc.cluster.raw import items as _items


def _ref_text(ref: dict[str, Any]) -> str:
    """A ``valueFrom`` or an ``envFrom`` entry, as a person names it."""
    for key, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap"),
                      ("secretRef", "Secret"), ("configMapRef", "ConfigMap")):
        sel = ref.get(key)
        if isinstance(sel, dict):
            return f"{kind} {sel.get('name')}" + (f" key {sel['key']}" if sel.get("key") else "")
    if isinstance(ref.get("fieldRef"), dict):
        return f"the pod's field {ref['fieldRef'].get('fieldPath')}"
    return " ".join(str(k) for k in ref if k != "prefix") or "nothing"


class Env:
    """What one container's manifest says of its environment."""

    def __init__(self, container: dict[str, Any], namespace: str) -> None:
        self.values: dict[str, str] = {}
        self.hidden: dict[str, str] = {}  # name -> why its value cannot be seen
        for entry in _items(container.get("env")):
            name = entry.get("name")
            if not isinstance(name, str):
                continue
            self.values.pop(name, None)  # the last entry of a name is the one that counts
            self.hidden.pop(name, None)
            ref, value = entry.get("valueFrom"), entry.get("value")
            if isinstance(ref, dict) and ref:
                if _get(ref, "fieldRef", "fieldPath") == "metadata.namespace":
                    self.values[name] = namespace
                else:
                    self.hidden[name] = f"it is set from {_ref_text(ref)} (valueFrom)"
            elif isinstance(value, str) and "$(" in value:
                self.hidden[name] = f"its value {value!r} refers to other variables"
            else:
                self.values[name] = value if isinstance(value, str) else ""
        self.env_from = _items(container.get("envFrom"))

    def get(self, name: str) -> tuple[str | None, str | None]:
        """(value, None); (None, why it cannot be seen); (None, None) when it is not set."""
        if name in self.values or name in self.hidden:
            return self.values.get(name), self.hidden.get(name)
        sources = [_ref_text(e) for e in self.env_from if name.startswith(str(e.get("prefix") or ""))]
        return (None, f"it may be set by envFrom {', '.join(sources)}") if sources else (None, None)


def container_env(workload: dict[str, Any], container: str, namespace: str) -> Env | None:
    """The environment of the container named ``container`` in ``workload``'s pod template
    (else of its first container); None when it has none."""
    containers = _items(_get(workload, "spec", "template", "spec", "containers"))
    named = [c for c in containers if c.get("name") == container] or containers
    return Env(named[0], namespace) if named else None
