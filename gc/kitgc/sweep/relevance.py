"""Which references of a second or third cluster read can still change a deleting run's plan.

A read taken again before deleting is merged with the first one (a union), so it can only
add protection; what it adds matters only for the manifests the plan could still delete:
every manifest nothing referred to in the first read (those it deletes; those it defers,
which move up when a deletion is held back; and those kept for another reason that a later
step may yet release, such as an attachment once its image's body is read), and the images
of the kits it deletes (their digests, also the digest a tag of theirs points at). A
manifest the first read found referenced stays whatever the second one says. A reference can
protect one of them only by naming its digest (in any repository, on any host: see
:mod:`kitgc.plan.protect`) or a tag, in any repository of the inventory, that points at that
digest now (a digest is protected wherever it is found). Every other reference of the new
read is dropped as it is read, so the second and third reads hold a few thousand references
instead of a second cluster. Kits, kit uses and unparsable values are always kept: a new kit
or an Integration adopting one changes decisions in ways no image names (those equal to what
the earlier read holds are dropped all the same, as the merge would:
:mod:`kitgc.cluster.later`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from kitgc.model import Action, Manifest, Plan, Reference


@dataclass(frozen=True)
class Relevance:
    """The digests and repository paths a reference must name to matter to ``plan``."""

    digests: frozenset[str]
    repositories: frozenset[str]

    @classmethod
    def of(cls, plan: Plan, inventory: Iterable[Manifest] = ()) -> Relevance:
        """From ``plan``, and the whole ``inventory`` (out-of-scope repositories too: a tag
        there may point at a digest that an in-scope repository holds as well)."""
        inventory = tuple(inventory)
        candidates = [d.manifest for d in plan.manifests if d.action is not Action.KEEP or not d.referenced]
        digests = {m.digest for m in candidates}
        repositories = {m.repository for m in candidates}
        tagged: set[tuple[str, str]] = set()  # kits' images named by tag: (repository path, tag)
        for k in plan.kits:
            if k.action is Action.DELETE:
                for image in (k.kit.image, k.kit.spec_image):
                    if image is not None:
                        repositories.add(image.repository)
                        if image.digest:
                            digests.add(image.digest)
                        else:
                            tagged.add((image.repository, image.effective_tag))
        # A kit named by tag is in use when a reference names the digest that tag points at
        # (kitgc.plan.kits resolves both sides in the inventory, by path): a bare digest from a
        # Pod's imageID names no repository, so that digest must be relevant too.
        if tagged:
            digests.update(m.digest for m in inventory if any((m.repository, t) in tagged for t in m.tags))
        repositories.update(m.repository for m in inventory if m.digest in digests)
        return cls(frozenset(digests), frozenset(repositories))

    def __call__(self, ref: Reference) -> bool:
        image = ref.image
        return (image.digest is not None and image.digest in self.digests) or image.repository in self.repositories
