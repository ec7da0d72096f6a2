"""Bare image names that OpenShift resolves through an ImageStream (``spec.lookupPolicy.local``).

In a namespace holding an ImageStream ``camel-k-kit-abc`` with ``spec.lookupPolicy.local: true``,
a pod may say ``image: camel-k-kit-abc:7``; OpenShift's admission resolves it to that stream's
tag ``7``. Only a name with neither host nor path qualifies (OpenShift's image policy parses
without defaulting and skips any reference with a registry or a namespace), and only
within the stream's own namespace.

The reference parser reads such a name as ``docker.io/library/camel-k-kit-abc:7``, which
cannot tell it apart from ``docker.io/library/camel-k-kit-abc:7`` written in full. So the
honest check is made where the string is read: :meth:`kitgc.cluster.found.Found.image` keeps
the references whose string had no ``/`` at all (no host, no path) in ``Found.short``; the
ImageStream rule keeps the local-lookup streams in ``Found.local_streams``. Once every source
is read, :func:`resolved` adds, for each such reference, a reference to the stream's tag (or
digest), beside the original: over-protection is the safe side.
"""

from __future__ import annotations

from collections.abc import Iterable

from kitgc.cluster.found import Found
from kitgc.cluster.openshift_refs import INTEGRATED_REGISTRY
from kitgc.imageref import DOCKER_HUB, ImageRef
from kitgc.model import Reference

_LIBRARY = "library/"


def resolved(short: Iterable[Reference], local_streams: set[tuple[str, str]]) -> list[Reference]:
    """The references to ImageStreams that the bare names in ``short`` resolve to."""
    out: list[Reference] = []
    if not local_streams:
        return out
    for ref in short:
        image, ns = ref.image, ref.source.namespace
        stream = image.repository.removeprefix(_LIBRARY)
        if (image.registry != DOCKER_HUB or not image.repository.startswith(_LIBRARY) or "/" in stream
                or ns is None or (ns, stream) not in local_streams):
            continue
        target = ImageRef(INTEGRATED_REGISTRY, f"{ns}/{stream}", tag=image.tag, digest=image.digest)
        out.append(Reference(target, ref.source, f"{ref.field} (ImageStream {stream}, lookupPolicy.local)"))
    return out


def with_local_lookups(found: Found) -> tuple[Reference, ...]:
    """Every reference ``found`` holds and, after them, what their bare names resolve to."""
    return (*found.references, *resolved(found.short, found.local_streams))
