"""What extraction finds in an object, and the helpers every extraction rule starts from.

:class:`Found` collects references, kits, kit uses, unparsable values and owners; every rule
(:mod:`kitgc.cluster.extract` for Kubernetes and Camel K, :mod:`kitgc.cluster.openshift_refs`
for OpenShift) begins with :func:`begin` and records images through :meth:`Found.image`,
which errs on the side of keeping: a value that cannot be parsed is an
:class:`~kitgc.model.UnparsableReference`, never skipped.
"""

from __future__ import annotations

import functools
import re
import sys
from dataclasses import dataclass, field
from typing import Any

from kitgc import imageref
from kitgc.cluster.objects import object_ref, owner_ref
from kitgc.cluster.raw import get, items
from kitgc.imageref import ImageRef, InvalidReference
from kitgc.model import Kit, KitUse, ObjectRef, Reference, UnparsableReference

_CONTAINER_KINDS = ("containers", "initContainers", "ephemeralContainers")
_RUNTIME_PREFIXES = ("docker-pullable://", "docker://")
_BARE_DIGEST = re.compile(r"[A-Za-z][A-Za-z0-9]*:[0-9a-fA-F]{32,}")


@dataclass
class Found:
    """What one or more objects contribute to the cluster snapshot."""

    references: list[Reference] = field(default_factory=list)
    kits: list[Kit] = field(default_factory=list)
    kit_uses: list[KitUse] = field(default_factory=list)
    unparsable: list[UnparsableReference] = field(default_factory=list)
    owners: dict[ObjectRef, ObjectRef] = field(default_factory=dict)  # child -> its controlling owner
    # OpenShift (see kitgc.cluster.local_lookup): the references written as a bare name, with
    # neither host nor path ("camel-k-kit-abc:7"), and the (namespace, name) of every
    # ImageStream with spec.lookupPolicy.local, through which such a name may resolve.
    short: list[Reference] = field(default_factory=list)
    local_streams: set[tuple[str, str]] = field(default_factory=set)

    def extend(self, other: Found) -> None:
        """Add ``other``; a child already known keeps the owner first recorded for it."""
        self.references += other.references
        self.kits += other.kits
        self.kit_uses += other.kit_uses
        self.unparsable += other.unparsable
        for child, owner in other.owners.items():
            self.owners.setdefault(child, owner)
        self.short += other.short
        self.local_streams |= other.local_streams

    def image(self, value: Any, src: ObjectRef, path: str, *, runtime: bool = False) -> None:
        """Record ``value`` found at ``path``: a Reference, or an UnparsableReference.

        ``None`` and "" are skipped (a template may leave the image to a webhook; a container
        not yet pulled has no imageID). ``runtime`` values come from a container runtime and
        may carry a ``docker-pullable://`` prefix or be a bare ``sha256:…`` image ID.
        A value without any ``/`` is a bare name: it is also kept in :attr:`short`.
        """
        ref = self.parse(value, src, path, runtime=runtime)
        if ref is not None:
            reference = Reference(ref, src, sys.intern(path))  # one copy of each path
            self.references.append(reference)
            if "/" not in value and ref.registry == imageref.DOCKER_HUB:
                self.short.append(reference)

    def parse(self, value: Any, src: ObjectRef, path: str, *, runtime: bool = False) -> ImageRef | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            self.unparsable.append(UnparsableReference(repr(value), src, path, f"not a string: {type(value).__name__}"))
            return None
        text = value
        if runtime:
            for prefix in _RUNTIME_PREFIXES:
                if text.startswith(prefix):
                    text = text[len(prefix):]
        try:
            return _parse(text, runtime)
        except InvalidReference as exc:
            self.unparsable.append(UnparsableReference(value, src, path, str(exc)))
            return None


@functools.lru_cache(maxsize=4096)
def _parse(text: str, runtime: bool) -> ImageRef:
    """Parsed once per distinct string: 20,000 pods name a few thousand images, and the
    (immutable) ImageRef is shared by every reference to it, in time and in memory. The
    pods of one workload are listed together, so a few thousand entries catch them; each
    entry (the text, the ImageRef and its strings, the cache's own links) is some 450 bytes,
    7 MB at 16,384 entries, held through every read."""
    if runtime and _BARE_DIGEST.fullmatch(text):
        return imageref.digest_only(text)
    return imageref.parse(text)


def forget_parsed() -> None:
    """Empty the parse cache once a read is done: the snapshot holds the references it
    kept, and the cache's own texts and entries (4,096 of them) were megabytes held for
    nothing through planning and deleting."""
    _parse.cache_clear()


def begin(kind: str, obj: dict[str, Any]) -> tuple[Found, ObjectRef]:
    """A fresh Found and ``obj``'s ref, with ``obj``'s owner recorded: every extractor starts here."""
    found, src = Found(), object_ref(kind, obj)
    owner = owner_ref(obj, src.namespace)
    if owner is not None and src.name:  # a nameless object is no link in any chain
        found.owners[src] = owner
    return found, src


def pod_spec(found: Found, spec: Any, src: ObjectRef, prefix: str) -> None:
    """Images of containers, init containers and ephemeral containers of a pod spec."""
    for kind in _CONTAINER_KINDS:
        for i, c in enumerate(items(get(spec, kind))):
            found.image(c.get("image"), src, f"{prefix}.{kind}[{c.get('name') or i}].image")

