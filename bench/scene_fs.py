"""Seeding the benchmark's registry by writing Distribution's storage layout directly.

Pushing 100,000 manifests through the HTTP API takes about half a million requests (an
upload start, a PUT per blob, a mount per shared layer, a PUT per manifest), which is hours
on two cores. The registry's filesystem driver keeps a documented, plain layout, so the same
content can be written as files in minutes and the real registry started on it afterwards:

    docker/registry/v2/blobs/sha256/<2 hex>/<hex>/data           the bytes (layers, configs, manifests)
    docker/registry/v2/repositories/<name>/_layers/sha256/<hex>/link                blobs of <name>
    docker/registry/v2/repositories/<name>/_manifests/revisions/sha256/<hex>/link   its manifests
    docker/registry/v2/repositories/<name>/_manifests/tags/<tag>/current/link       what <tag> names
    docker/registry/v2/repositories/<name>/_manifests/tags/<tag>/index/sha256/<hex>/link  tag history

Each ``link`` file holds the digest string (``sha256:<hex>``, no newline), as the registry
writes it. What is written is exactly what :func:`bench.scene._seed` pushes (same blobs, same
manifest bytes, so the same digests), and ``tests/test_bench_fs_scene.py`` starts the real
registry on such a layout and checks that catalog, tag lists, HEAD/GET and DELETE work.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.scene import Kit, SceneSpec, base_layers, build_image, kit_layer
from testbed import images

V2 = ("docker", "registry", "v2")


def _hex(digest: str) -> str:
    algorithm, _, hexpart = digest.partition(":")
    if algorithm != "sha256" or len(hexpart) != 64:
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return hexpart


def _write(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)


class Layout:
    """The storage under one ``rootdirectory`` (what the registry's config names).

    Blobs are content-addressed and shared by every repository, so each is written once;
    :meth:`blob` remembers what it wrote (a set of 100,000 digests is a few MB).
    """

    def __init__(self, rootdirectory: Path) -> None:
        self.root = os.path.join(rootdirectory, *V2)
        self._blobs: set[str] = set()

    def blob(self, data: bytes) -> str:
        """Store ``data`` as a blob (once); its digest."""
        digest = images.digest_of(data)
        if digest not in self._blobs:
            h = _hex(digest)
            _write(os.path.join(self.root, "blobs", "sha256", h[:2], h, "data"), data)
            self._blobs.add(digest)
        return digest

    def _repo(self, repository: str, *parts: str) -> str:
        if repository.startswith("/") or ".." in repository.split("/"):
            raise ValueError(f"not a repository name: {repository!r}")
        return os.path.join(self.root, "repositories", repository, *parts)

    def link_blob(self, repository: str, digest: str) -> None:
        """Make a blob part of ``repository`` (what an upload or a cross-repository mount does)."""
        _write(self._repo(repository, "_layers", "sha256", _hex(digest), "link"), digest.encode())

    def manifest(self, repository: str, body: bytes, tags: Iterable[str] = ()) -> str:
        """Store a manifest in ``repository`` under ``tags`` (none: untagged, by digest only)."""
        digest = self.blob(body)
        h = _hex(digest)
        _write(self._repo(repository, "_manifests", "revisions", "sha256", h, "link"), digest.encode())
        for tag in tags:
            _write(self._repo(repository, "_manifests", "tags", tag, "current", "link"), digest.encode())
            _write(self._repo(repository, "_manifests", "tags", tag, "index", "sha256", h, "link"), digest.encode())
        os.makedirs(self._repo(repository, "_uploads"), exist_ok=True)
        return digest

    def image(self, repository: str, config: bytes, layers: Iterable[bytes], body: bytes,
              tags: Iterable[str] = ()) -> str:
        """An image's blobs linked into ``repository``, then its manifest; the manifest's digest."""
        for data in (*layers, config):
            self.link_blob(repository, self.blob(data))
        return self.manifest(repository, body, tags)


def _repository(layout: Layout, repository: str, tags: tuple[str, ...]) -> list[str]:
    """One repository of the scene, as :func:`bench.scene._seed` pushes it; its digests."""
    for data in (*base_layers(), kit_layer(repository)):
        layout.link_blob(repository, layout.blob(data))
    digests = []
    for tag in tags:
        config, body = build_image(repository, tag)
        layout.link_blob(repository, layout.blob(config))
        digests.append(layout.manifest(repository, body, (tag,)))
    return digests


def write_scene(spec: SceneSpec, kits: list[Kit], rootdirectory: Path, workers: int = 4) -> None:
    """Write the whole scene under ``rootdirectory``; checks every digest against ``kits``.

    A few threads, because the work is mostly file-system calls, which release the GIL.
    The blob set is shared between them: a blob written twice is the same bytes, harmless.
    """
    layout = Layout(rootdirectory)
    for data in base_layers():  # before the threads: every repository links them
        layout.blob(data)
    jobs = [(k.repository, k.tags) for k in kits] + [(f"apps/service-{i}", ("1.0",)) for i in range(spec.foreign)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        written = list(pool.map(lambda job: _repository(layout, *job), jobs))
    for kit, digests in zip(kits, written, strict=False):
        if tuple(digests) != kit.digests:
            raise RuntimeError(f"{kit.repository}: wrote {digests}, the scene plans {list(kit.digests)}")
