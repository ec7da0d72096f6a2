"""A small, known scene for the fault tests: what must stay and what is garbage.

Four kit repositories in the real registry and the objects that (do not) refer to them:

* ``used``: a Ready kit an Integration runs (its image stays), plus an old image (garbage);
* ``unused``: a Ready kit nothing uses (the kit object and its image go);
* ``plain``: no kit; one image a Deployment runs (stays), one nobody runs (garbage);
* ``multi``: an unreferenced index with two children (all garbage).

After any run, :meth:`Scene.check` says how many referenced manifests were deleted
(must be 0) and how much garbage is left, and whether a kit object outlived its image.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from testbed import images, objects
from testbed.world import World

OLD = "2024-01-01T00:00:00Z"


@dataclass
class Scene:
    world: World
    keep: dict[str, tuple[str, str]] = field(default_factory=dict)  # label -> (repo, digest)
    garbage: dict[str, tuple[str, str]] = field(default_factory=dict)
    kits: dict[str, str] = field(default_factory=dict)  # label -> kit name

    @property
    def repos(self) -> dict[str, str]:
        return {label: repo for label, (repo, _) in {**self.keep, **self.garbage}.items()}

    def wrongful(self) -> list[str]:
        """Referenced manifests that are gone (every one is a wrongful deletion)."""
        return [label for label, (repo, digest) in self.keep.items() if not self.world.exists(repo, digest)]

    def garbage_left(self) -> list[str]:
        return [label for label, (repo, digest) in self.garbage.items() if self.world.exists(repo, digest)]

    def kits_without_image(self) -> list[str]:
        """Kit objects whose image is gone: the state the kit-first order must never leave."""
        out = []
        res = self.world.kube.api.store.resource_for("camel.apache.org/v1", "IntegrationKit")
        for kit in self.world.kube.api.store.objects(res):
            image = (kit.get("status") or {}).get("image", "")
            repo, _, digest = image.partition("@")
            repo = repo.split("/", 1)[1] if "/" in repo else repo
            if digest and not self.world.exists(repo, digest):
                out.append(kit["metadata"]["name"])
        return out


def build(world: World, seed: str = "") -> Scene:
    """Push the scene into ``world`` (its organization keeps tests apart)."""
    s = Scene(world)
    world.anchor()
    used, unused = objects.kit_name(f"used{seed}"), objects.kit_name(f"unused{seed}")
    s.kits = {"used": used, "unused": unused}

    repo = world.repo(used)
    s.keep["used"] = (repo, world.push(repo, "2"))
    s.garbage["used-old"] = (repo, world.push(repo, "1"))
    world.add(objects.integration_kit(used, "camel-k", created=OLD, image=world.image(*s.keep["used"])),
              objects.integration("orders", "shop", kit=used, kit_namespace="camel-k",
                                  image=world.image(*s.keep["used"])))

    repo = world.repo(unused)
    s.garbage["unused"] = (repo, world.push(repo, "1"))
    world.add(objects.integration_kit(unused, "camel-k", created=OLD, image=world.image(*s.garbage["unused"])))

    repo = world.repo(objects.kit_name(f"plain{seed}"))
    s.keep["plain"] = (repo, world.push(repo, "1"))
    s.garbage["plain-stray"] = (repo, world.push(repo, "2"))
    world.add(objects.deployment("billing", "shop", images=[world.image(*s.keep["plain"])]))

    repo = world.repo(objects.kit_name(f"multi{seed}"))
    index, children = images.push_multiarch(world.registry.url, repo, ["1"], client=world.http)
    s.garbage["multi-index"] = (repo, index)
    for i, child in enumerate(children):
        s.garbage[f"multi-child{i}"] = (repo, child)
    return s
