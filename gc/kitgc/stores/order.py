"""The order deletions must follow, whatever the store: nothing may point at what is gone.

An index goes before the manifests it lists (a kept index must never point at a deleted
child, and GCR and Zot refuse a child while its index exists); an attachment — signature,
SBOM, referrers index — goes before the image it is attached to, and a referrers index
before the referrers it lists, so a run killed half-way never leaves an attachment whose
image is gone while it is still findable, nor an image whose signature is gone first.
"""

from __future__ import annotations

from collections.abc import Sequence

from kitgc.attachments import attachment_of
from kitgc.identity import ManifestKey
from kitgc.model import Manifest


def deletion_layers(manifests: Sequence[Manifest]) -> list[list[Manifest]]:
    """Batches to delete one after the other; within a batch nothing depends on another.

    ``X`` precedes ``Y`` when ``Y`` is a child of index ``X`` or ``X`` is attached to ``Y``
    (same repository). A cycle, which no registry should hold, lands in the last batch.
    """
    by_key = {m.key: m for m in manifests}
    before: dict[ManifestKey, set[ManifestKey]] = {key: set() for key in by_key}  # Y -> {X that precede Y}
    for m in manifests:
        follows = [m.key.child(c) for c in m.children]
        attached = attachment_of(m)
        if attached is not None:
            follows.append(m.key.child(attached.subject))
        for key in follows:
            if key in by_key and key != m.key:
                before[key].add(m.key)
    layers: list[list[Manifest]] = []
    placed: set[ManifestKey] = set()
    while len(placed) < len(by_key):
        ready = [m for m in manifests if m.key not in placed and before[m.key] <= placed]
        if not ready:
            layers.append([m for m in manifests if m.key not in placed])
            break
        layers.append(ready)
        placed.update(m.key for m in ready)
    return layers
