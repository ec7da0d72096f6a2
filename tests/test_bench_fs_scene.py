"""The benchmark's filesystem seeder writes storage the real registry serves.

``bench.scene_fs`` writes Distribution's storage layout directly instead of pushing over
HTTP (100,000 manifests would take hours). That is only worth anything if the real
registry, started on the result, behaves as if the content had been pushed: catalog, tag
lists, HEAD and GET (by tag and by digest, bodies matching their digests), indexes, and
DELETE by digest. These tests start ``docker-registry`` on a small layout and check that.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from bench.scene import SceneSpec, plan_kits
from bench.scene_fs import Layout, write_scene

from testbed import images
from testbed.registry_server import RegistryServer, registry_available, start_registry

pytestmark = pytest.mark.skipif(not registry_available(), reason="docker-registry is not installed (make system-deps)")

SPEC = SceneSpec(repositories=3, tags=2, in_use=1, foreign=1)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[RegistryServer, dict[str, dict[str, str]], str]]:
    """The bench scene (3 x 2) plus a multi-arch repository with an OCI index, served."""
    kits = plan_kits(SPEC)
    write_scene(SPEC, kits, tmp_path / "data")
    expected = {k.repository: dict(zip(k.tags, k.digests, strict=True)) for k in kits}
    layout = Layout(tmp_path / "data")
    layer = images.layer("fs-scene-index-layer", 512)
    entries, children = [], []
    for arch in ("amd64", "arm64"):
        config = images.image_config(arch, nonce=f"fs-{arch}", layers=(layer,))
        body = images.image_manifest(config, (layer,))
        digest = layout.image("camel-k/multiarch", config, (layer,), body)  # children: untagged
        children.append(digest)
        entries.append({"mediaType": images.OCI_MANIFEST, "digest": digest, "size": len(body),
                        "platform": {"os": "linux", "architecture": arch}})
    index = json.dumps({"schemaVersion": 2, "mediaType": images.OCI_INDEX, "manifests": entries}).encode()
    expected["camel-k/multiarch"] = {"v1": layout.manifest("camel-k/multiarch", index, ("v1",))}
    expected["apps/service-0"] = {}  # the foreign repository (tag checked separately)
    with start_registry(tmp_path) as server:
        yield server, expected, children[0]


def test_catalog_and_tag_lists(served: tuple[RegistryServer, dict[str, dict[str, str]], str]) -> None:
    server, expected, _ = served
    with httpx.Client(base_url=server.url, timeout=10.0) as c:
        assert sorted(c.get("/v2/_catalog").json()["repositories"]) == sorted(expected)
        for repo, tags in expected.items():
            listed = c.get(f"/v2/{repo}/tags/list").json()["tags"]
            assert sorted(listed) == (sorted(tags) or ["1.0"]), repo


def test_head_and_get_serve_the_bodies_of_their_digests(
        served: tuple[RegistryServer, dict[str, dict[str, str]], str]) -> None:
    server, expected, child = served
    accept = {"Accept": images.ALL_MANIFESTS}
    with httpx.Client(base_url=server.url, timeout=10.0, headers=accept) as c:
        for repo, tags in expected.items():
            for tag, digest in tags.items():
                head = c.head(f"/v2/{repo}/manifests/{tag}")
                assert head.status_code == 200, (repo, tag)
                assert head.headers["Docker-Content-Digest"] == digest
                for ref in (tag, digest):
                    got = c.get(f"/v2/{repo}/manifests/{ref}")
                    assert got.status_code == 200, (repo, ref)
                    assert images.digest_of(got.content) == digest
                    assert int(head.headers["Content-Length"]) == len(got.content)
        index = c.get("/v2/camel-k/multiarch/manifests/v1")
        assert index.headers["Content-Type"] == images.OCI_INDEX
        assert index.json()["manifests"][0]["digest"] == child
        untagged = c.get(f"/v2/camel-k/multiarch/manifests/{child}")
        assert untagged.status_code == 200 and images.digest_of(untagged.content) == child
        config = untagged.json()["config"]["digest"]
        blob = c.get(f"/v2/camel-k/multiarch/blobs/{config}")
        assert blob.status_code == 200 and images.digest_of(blob.content) == config


def test_delete_by_digest(served: tuple[RegistryServer, dict[str, dict[str, str]], str]) -> None:
    server, expected, _ = served
    repo = next(r for r in expected if r.startswith("camel-k/camel-k-kit-"))
    (old_tag, old), (new_tag, _new) = expected[repo].items()
    with httpx.Client(base_url=server.url, timeout=10.0, headers={"Accept": images.ALL_MANIFESTS}) as c:
        assert c.delete(f"/v2/{repo}/manifests/{old}").status_code == 202
        assert c.get(f"/v2/{repo}/manifests/{old}").status_code == 404
        assert c.head(f"/v2/{repo}/manifests/{old_tag}").status_code == 404
        assert c.get(f"/v2/{repo}/tags/list").json()["tags"] == [new_tag]
        assert c.delete(f"/v2/{repo}/manifests/{old}").status_code == 404


def test_layout_matches_what_the_scene_plans(tmp_path: Path) -> None:
    """The written digests are the planned ones (the cluster names them), links hold digests."""
    kits = plan_kits(SPEC)
    write_scene(SPEC, kits, tmp_path)
    kit = kits[0]
    tags = tmp_path / "docker/registry/v2/repositories" / kit.repository / "_manifests/tags"
    for tag, digest in zip(kit.tags, kit.digests, strict=True):
        assert (tags / tag / "current/link").read_bytes() == digest.encode()
        blob = tmp_path / "docker/registry/v2/blobs/sha256" / digest[7:9] / digest[7:] / "data"
        assert images.digest_of(blob.read_bytes()) == digest
    with pytest.raises(ValueError, match="not a repository name"):
        Layout(tmp_path).link_blob("../escape", kit.digests[0])
