"""The benchmark's registry: a real Distribution registry, seeded once, reused afterwards.

Seeding 6,000 manifests takes tens of thousands of HTTP requests, so it is done
concurrently (httpx async) and cached under ``bench/.scene/<key>/``; the ``seeded.json``
marker is written last, so an interrupted seeding is redone from scratch, never half-used.
Scenes bigger than today's (``--scale``) are written straight into the registry's storage
layout instead (:mod:`bench.scene_fs`): the same bytes, minutes instead of hours.
Content is built the way Jib builds kits: every image shares the base layers (mounted
across repositories, as registries do for shared blobs), each kit repository has its own
dependency layer shared by its builds, and every build has a unique config blob and so a
unique digest. The registry's access log (one line per request) is how the benchmark
counts what each variant asked of it, independently of the variants themselves.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from testbed import images, objects
from testbed.registry_server import REGISTRY_BINARY
from testbed.servers import on_free_port, start_process, stop_process, wait_until_answers

# Where seeded scenes are cached. BENCH_SCENE_ROOT moves them, e.g. to a tmpfs: a registry
# whose small files are not in the page cache measures the disk (at 16x, a cold cache made
# every HEAD wait for a random read: 85 % I/O wait), not the registry or kitgc.
SCENE_ROOT = Path(os.environ.get("BENCH_SCENE_ROOT") or Path(__file__).resolve().parent / ".scene")


@dataclass(frozen=True)
class SceneSpec:
    """What the scene holds; ``key`` names the cache directory, so a change reseeds."""

    repositories: int = 2000
    tags: int = 3
    in_use: int = 1200  # kits some Integration uses: their latest build is referenced (20 %)
    foreign: int = 10  # repositories outside the organization (never to be touched)
    organization: str = "camel-k"
    version: int = 1  # bump when the way content is built changes

    @property
    def key(self) -> str:
        return f"v{self.version}-r{self.repositories}-t{self.tags}-f{self.foreign}"

    @property
    def manifests(self) -> int:
        return self.repositories * self.tags

    @classmethod
    def for_scale(cls, scale: str) -> SceneSpec:
        """``1``, ``4``, ``16``: today's scene times that; ``large``: 20,000 kits x 5 tags.

        ``large`` is the issue's target estate: 100,000 manifests, half the kits in use; the
        cluster (:class:`bench.cluster.ClusterSpec`) references their last two builds (the
        old ReplicaSet keeps the previous image), so 20 % of the manifests are referenced.
        """
        if check_scale(scale) == "large":
            return cls(repositories=20_000, tags=5, in_use=10_000, foreign=10)
        factor, base = int(scale), cls()
        return cls(repositories=base.repositories * factor, tags=base.tags, in_use=base.in_use * factor,
                   foreign=base.foreign * factor)


SCALES = ("1", "4", "16", "large")


def check_scale(scale: str) -> str:
    """``scale`` if it names a scene (``--scale`` / ``BENCH_SCALE``), else a one-line ValueError."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}: expected one of {', '.join(SCALES)}")
    return scale


@dataclass(frozen=True)
class Kit:
    name: str  # kit-<xid>
    repository: str  # <org>/camel-k-kit-<xid>
    tags: tuple[str, ...]
    digests: tuple[str, ...]  # one per tag; the last one is the kit's current image


@functools.cache
def base_layers() -> tuple[bytes, ...]:
    """The JDK/base layers every kit image shares (small: sizes do not matter here).

    Cached: they are hashed out of a seed block by block, and 100,000 builds would redo it.
    """
    return (images.layer("bench-base-os", 4096), images.layer("bench-base-jdk", 8192))


@functools.lru_cache(maxsize=64)
def kit_layer(repository: str) -> bytes:
    """The dependency layer of one kit repository, shared by its builds (cached for them)."""
    return images.layer(f"bench-kit-deps-{repository}", 2048)


def build_image(repository: str, tag: str) -> tuple[bytes, bytes]:
    """(config, manifest body) of one build; deterministic, so digests are reproducible."""
    layers = (*base_layers(), kit_layer(repository))
    config = images.image_config(nonce=f"{repository}:{tag}", layers=layers)
    return config, images.image_manifest(config, layers)


def plan_kits(spec: SceneSpec) -> list[Kit]:
    kits = []
    for i in range(spec.repositories):
        name = objects.kit_name(f"bench-{i}")
        repo = f"{spec.organization}/camel-k-{name}"
        tags = tuple(str(100_000 + i * spec.tags + t) for t in range(spec.tags))  # resourceVersions
        digests = tuple(images.digest_of(build_image(repo, t)[1]) for t in tags)
        kits.append(Kit(name, repo, tags, digests))
    return kits


# --- the registry process ----------------------------------------------------------------


@dataclass
class Registry:
    url: str
    address: str
    process: subprocess.Popen[bytes]
    access_log: Path

    def log_offset(self) -> int:
        return self.access_log.stat().st_size

    def requests_since(self, offset: int) -> dict[str, int]:
        """Requests the registry answered since ``offset`` of its access log, by kind."""
        with open(self.access_log, "rb") as fh:
            fh.seek(offset)
            return count_requests(fh.read().decode("utf-8", "replace"))

    def stop(self) -> None:
        stop_process(self.process, timeout=10)
        self.access_log.unlink(missing_ok=True)


def count_requests(log_text: str) -> dict[str, int]:
    """Access-log lines (``"GET /v2/<name>/manifests/<ref> HTTP/1.1" 200``) by kind."""
    out = dict.fromkeys(("catalog", "tags", "head", "get", "delete", "other"), 0)
    for line in log_text.splitlines():
        start = line.find('"')
        if start < 0:
            continue
        parts = line[start + 1:].split(" ", 2)
        if len(parts) < 2:
            continue
        method, path = parts[0], parts[1].split("?", 1)[0]
        if path == "/v2/_catalog":
            kind = "catalog"
        elif path.endswith("/tags/list"):
            kind = "tags"
        elif "/manifests/" in path:
            kind = {"HEAD": "head", "GET": "get", "DELETE": "delete"}.get(method, "other")
        else:
            kind = "other"
        out[kind] += 1
    return out


def start_registry(root: Path, *, delete_enabled: bool = True) -> Registry:
    """``docker-registry serve`` on loopback with data under ``root/data`` and an access log."""
    root.mkdir(parents=True, exist_ok=True)

    def start(port: int) -> Registry:
        cfg = {
            "version": 0.1,
            "log": {"level": "error", "accesslog": {"disabled": False}},
            "storage": {"filesystem": {"rootdirectory": str(root / "data")}, "delete": {"enabled": delete_enabled},
                        "maintenance": {"uploadpurging": {"enabled": False}}},
            "http": {"addr": f"127.0.0.1:{port}", "secret": "kitgc-bench"},
        }
        (root / "config.yml").write_text(json.dumps(cfg))  # JSON is YAML
        log_path = root / f"access-{port}.log"  # one per process: two registries may share the storage
        proc = start_process([REGISTRY_BINARY, "serve", str(root / "config.yml")], log_path)
        reg = Registry(f"http://127.0.0.1:{port}", f"127.0.0.1:{port}", proc, log_path)
        try:
            wait_until_answers(f"{reg.url}/v2/", timeout=15.0, what=f"docker-registry in {root}", process=proc,
                               log=log_path)
        except BaseException:
            reg.stop()
            raise
        return reg

    return on_free_port(start)


# --- seeding ------------------------------------------------------------------------------


async def _upload(c: httpx.AsyncClient, repo: str, blob: bytes, mount_from: str | None = None) -> None:
    digest = images.digest_of(blob)
    params = {"mount": digest, "from": mount_from} if mount_from else None
    r = await c.post(f"/v2/{repo}/blobs/uploads/", params=params)
    if r.status_code == 201:  # mounted from another repository: nothing to upload
        return
    if r.status_code != 202:
        raise RuntimeError(f"start upload to {repo}: HTTP {r.status_code}: {r.text[:200]}")
    location = httpx.URL(str(c.base_url)).join(r.headers["Location"]).copy_merge_params({"digest": digest})
    r = await c.put(location, content=blob, headers={"Content-Type": "application/octet-stream"})
    if r.status_code != 201:
        raise RuntimeError(f"upload {digest} to {repo}: HTTP {r.status_code}: {r.text[:200]}")


async def _put_manifest(c: httpx.AsyncClient, repo: str, tag: str, body: bytes) -> None:
    r = await c.put(f"/v2/{repo}/manifests/{tag}", content=body, headers={"Content-Type": images.OCI_MANIFEST})
    if r.status_code != 201:
        raise RuntimeError(f"push {repo}:{tag}: HTTP {r.status_code}: {r.text[:200]}")


async def _seed(url: str, spec: SceneSpec, kits: list[Kit], concurrency: int = 32) -> None:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120.0, limits=limits) as c:
        first = kits[0].repository
        for blob in base_layers():
            await _upload(c, first, blob)
        sem = asyncio.Semaphore(concurrency)

        async def one(kit: Kit) -> None:
            async with sem:
                for blob in base_layers():
                    await _upload(c, kit.repository, blob, mount_from=first)
                await _upload(c, kit.repository, kit_layer(kit.repository))
                for tag in kit.tags:
                    config, body = build_image(kit.repository, tag)
                    await _upload(c, kit.repository, config)
                    await _put_manifest(c, kit.repository, tag, body)

        async def foreign(i: int) -> None:
            async with sem:
                repo = f"apps/service-{i}"
                for blob in base_layers():
                    await _upload(c, repo, blob, mount_from=first)
                await _upload(c, repo, kit_layer(repo))
                config, body = build_image(repo, "1.0")
                await _upload(c, repo, config)
                await _put_manifest(c, repo, "1.0", body)

        await asyncio.gather(*(one(k) for k in kits), *(foreign(i) for i in range(spec.foreign)))


def prepare(spec: SceneSpec, root: Path = SCENE_ROOT, log: Any = print) -> tuple[Registry, list[Kit], dict[str, Any]]:
    """Start the scene's registry, seeding it first unless a complete seeding is cached."""
    directory = root / spec.key
    marker = directory / "seeded.json"
    kits = plan_kits(spec)
    info: dict[str, Any] = {"cached": marker.exists(), "directory": str(directory)}
    if not marker.exists():
        shutil.rmtree(directory, ignore_errors=True)
        # Bigger than today's scene: HTTP seeding would take hours; write the storage instead.
        seeder = "filesystem" if spec.manifests > SceneSpec().manifests else "http"
        log(f"seeding {spec.manifests} manifests in {spec.repositories} repositories through {seeder} "
            f"(once; cached in {directory})")
        started = time.monotonic()
        if seeder == "filesystem":
            from bench.scene_fs import write_scene  # here: scene_fs builds on this module

            write_scene(spec, kits, directory / "data")
            registry = start_registry(directory)
        else:
            registry = start_registry(directory)
            try:
                asyncio.run(_seed(registry.url, spec, kits))
            except BaseException:
                registry.stop()
                raise
        info["seed_seconds"] = round(time.monotonic() - started, 1)
        info["seeder"] = seeder
        marker.write_text(json.dumps({"spec": asdict(spec), "seed_seconds": info["seed_seconds"], "seeder": seeder}))
        log(f"seeded in {info['seed_seconds']} s")
    else:
        registry = start_registry(directory)
        recorded = json.loads(marker.read_text())
        info["seed_seconds"], info["seeder"] = recorded.get("seed_seconds"), recorded.get("seeder", "http")
    return registry, kits, info


def scratch_copy(spec: SceneSpec, root: Path = SCENE_ROOT) -> Path:
    """A throw-away copy of the seeded storage, for the run that really deletes.

    Hard links (``cp -al``), not copies: at 100,000 manifests a copy is most of a million
    files and takes longer than the run. Safe for a run that only deletes: Distribution's
    DELETE removes link files and tag directories (unlink, rmdir) and never rewrites a file,
    so the seeded scene is untouched.
    """
    target = root / f"{spec.key}-scratch"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    subprocess.run(["cp", "-al", str(root / spec.key / "data"), str(target / "data")], check=True)
    return target
