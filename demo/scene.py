"""Load ``demo/scene.yaml`` and build it: images pushed to a real registry, cluster objects.

One loader serves ``make demo`` and ``tests/test_demo.py``, so the demo a newcomer watches
and the test that guards it are the same scene. The images and objects are built with the
test helpers (:mod:`testbed.images`, :mod:`testbed.objects`), which follow the
shapes Camel K, Kubernetes and Knative really produce.

Image content is deterministic (same scene, same digests) so output and docs stay stable;
kits of one chain share their parent's layers, like incremental builds, so the bytes the
collector reports as reclaimable are those of layers nothing else uses.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

from kitgc.config import parse_duration
from kitgc.model import State, state_key
from kitgc.state import encode
from testbed import images, objects

SCENE_FILE = Path(__file__).with_name("scene.yaml")
BASE_LAYER = images.layer("demo:eclipse-temurin:17", 256 * 1024)  # shared by every kit image
PLATFORM_BASE = "docker.io/library/eclipse-temurin:17"
KEEP, DELETE = "keep", "delete"


# --- the scene as data ----------------------------------------------------------------


@dataclass(frozen=True)
class ImageSpec:
    tag: str
    expect: str
    current: bool = False


@dataclass(frozen=True)
class KitSpec:
    id: str
    namespace: str
    type: str
    age: timedelta
    expect: str
    images: tuple[ImageSpec, ...] = ()
    phase: str = "Ready"
    base: str | None = None
    spec_image: str | None = None

    @property
    def name(self) -> str:
        return objects.kit_name(self.id)

    @property
    def current(self) -> ImageSpec | None:
        return next((i for i in self.images if i.current), None)


@dataclass(frozen=True)
class IntegrationSpec:
    name: str
    namespace: str
    kit: str
    runs_as: str  # deployment | cronjob | knative | none
    phase: str = "Running"
    previous_kit: str | None = None
    previous_tag: str | None = None


@dataclass(frozen=True)
class OrphanSpec:
    id: str
    organization: str
    images: tuple[ImageSpec, ...]
    first_seen: timedelta | None = None


@dataclass(frozen=True)
class Scene:
    settings: dict[str, str]
    platforms: tuple[dict[str, str], ...]
    kits: tuple[KitSpec, ...]
    integrations: tuple[IntegrationSpec, ...]
    orphans: tuple[OrphanSpec, ...]
    others: tuple[dict[str, Any], ...]

    def organization(self, namespace: str) -> str:
        for p in self.platforms:
            if p["namespace"] == namespace:
                return p.get("organization") or namespace
        raise ValueError(f"no IntegrationPlatform in namespace {namespace!r}")

    def kit(self, kit_id: str) -> KitSpec:
        return next(k for k in self.kits if k.id == kit_id)


def _images(raw: Iterable[dict[str, Any]]) -> tuple[ImageSpec, ...]:
    return tuple(ImageSpec(str(i["tag"]), i["expect"], bool(i.get("current"))) for i in raw)


def load(path: Path = SCENE_FILE) -> Scene:
    doc = yaml.safe_load(path.read_text())
    kits = tuple(
        KitSpec(id=k["id"], namespace=k["namespace"], type=k["type"], age=parse_duration(k["age"]),
                expect=k["expect"], images=_images(k.get("images") or ()), phase=k.get("phase", "Ready"),
                base=k.get("base"), spec_image=k.get("spec_image"))
        for k in doc["kits"]
    )
    scene = Scene(
        settings={k: str(v) for k, v in doc["settings"].items()},
        platforms=tuple(doc["platforms"]),
        kits=kits,
        integrations=tuple(IntegrationSpec(**i) for i in doc["integrations"]),
        orphans=tuple(OrphanSpec(o["id"], o["organization"], _images(o["images"]),
                                 parse_duration(o["first_seen"]) if o.get("first_seen") else None)
                      for o in doc["orphans"]),
        others=tuple(doc["other_repositories"]),
    )
    _validate(scene)
    return scene


def _validate(scene: Scene) -> None:
    """A typo in the scene should fail loudly here, not as a puzzling demo result."""
    ids = [k.id for k in scene.kits]
    assert len(ids) == len(set(ids)), "duplicate kit id"
    for k in scene.kits:
        assert k.expect in (KEEP, DELETE) and all(i.expect in (KEEP, DELETE) for i in k.images), k.id
        assert sum(i.current for i in k.images) <= 1, f"{k.id}: more than one current image"
        assert k.base is None or scene.kit(k.base).current, f"{k.id}: base {k.base} has no current image"
        scene.organization(k.namespace)
    for i in scene.integrations:
        scene.kit(i.kit)
        assert i.runs_as in ("deployment", "cronjob", "knative", "none"), i.name


# --- building it ----------------------------------------------------------------------


@dataclass(frozen=True)
class Pushed:
    """One image in the registry and what must become of it."""

    repository: str
    tag: str
    digest: str
    expect: str
    owner: str  # "kit rest-api", "orphan removed-2023-a", "not ours"
    in_scope: bool = True


@dataclass
class Built:
    """The scene as pushed: every image with its expectation, and the objects to serve."""

    address: str
    images: list[Pushed] = field(default_factory=list)
    kits: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # id -> (namespace, name, expect)
    objects: list[dict[str, Any]] = field(default_factory=list)
    current: dict[str, str] = field(default_factory=dict)  # kit id -> image by digest
    layers: dict[str, tuple[bytes, ...]] = field(default_factory=dict)  # kit id -> layers of its current image
    pending: dict[str, list[tuple[str, tuple[bytes, ...], bytes]]] = field(default_factory=dict)

    def ref(self, p: Pushed) -> str:
        return f"{self.address}/{p.repository}@{p.digest}"

    def image(self, kit_id: str, tag: str) -> str:
        p = next(p for p in self.images if p.owner == f"kit {kit_id}" and p.tag == tag)
        return self.ref(p)


def _own_layer(seed: str) -> bytes:
    """A kit's dependency layer: 128 to 768 KiB (real ones are bigger), deterministic per image."""
    size = 128 * 1024 + int(hashlib.sha256(seed.encode()).hexdigest(), 16) % (640 * 1024)
    return images.layer(f"demo:{seed}", size)


def _push(built: Built, client: httpx.Client, url: str, repository: str, tag: str,
          layers: tuple[bytes, ...]) -> str:
    """Queue an image for pushing; its digest is known before it is pushed (content addressing)."""
    config = images.image_config(nonce=f"{repository}:{tag}", layers=layers)
    built.pending.setdefault(repository, []).append((tag, layers, config))
    return images.digest_of(images.image_manifest(config, layers))


def _push_all(built: Built, client: httpx.Client, url: str) -> None:
    """Push the queued images, one thread per repository (pushes within one stay in order)."""

    def one(repository: str) -> None:
        for tag, layers, config in built.pending[repository]:
            images.push_image(url, repository, [tag], layers=layers, config=config, client=client)

    with ThreadPoolExecutor(max_workers=8) as pool:
        for future in [pool.submit(one, repository) for repository in built.pending]:
            future.result()
    built.pending.clear()


def _ordered(kits: Iterable[KitSpec]) -> list[KitSpec]:
    """Parents before children, so a child's image can carry its parent's layers."""
    done: dict[str, KitSpec] = {}
    pending = list(kits)
    while pending:
        for k in list(pending):
            if k.base is None or k.base in done:
                done[k.id] = k
                pending.remove(k)
    return list(done.values())


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def build(scene: Scene, *, registry_url: str, address: str, client: httpx.Client, now: datetime) -> Built:
    """Push every image of ``scene`` and return it with the cluster objects to serve."""
    built = Built(address)
    for kit in _ordered(scene.kits):
        _build_kit(scene, built, kit, client, registry_url, now)
    for it in scene.integrations:
        built.objects.extend(_integration(scene, built, it))
    first_seen: dict[str, datetime] = {}
    for orphan in scene.orphans:
        repo = f"{orphan.organization}/camel-k-{objects.kit_name(orphan.id)}"
        for spec in orphan.images:
            digest = _push(built, client, registry_url, repo, spec.tag, (BASE_LAYER, _own_layer(f"{repo}:{spec.tag}")))
            built.images.append(Pushed(repo, spec.tag, digest, spec.expect, f"orphan {orphan.id}"))
            if orphan.first_seen is not None:
                first_seen[state_key(repo, digest)] = now - orphan.first_seen
    for other in scene.others:
        repo = other.get("repository") or f"{other['organization']}/camel-k-{objects.kit_name(other['kit'])}"
        for tag in other["tags"]:
            digest = _push(built, client, registry_url, repo, str(tag), (_own_layer(f"{repo}:{tag}"),))
            built.images.append(Pushed(repo, str(tag), digest, KEEP, "not ours", in_scope=False))
    _push_all(built, client, registry_url)
    for p in scene.platforms:
        built.objects.append(objects.integration_platform(
            p["name"], p["namespace"], address=address, organization=p.get("organization"), insecure=True,
            base_image=PLATFORM_BASE))
    namespace, name = scene.settings["STATE_CONFIGMAP"].split("/")
    state = encode(State(first_seen))
    built.objects.append(objects.configmap(name, namespace, data=state["data"], binary_data=state["binaryData"]))
    return built


def _build_kit(scene: Scene, built: Built, kit: KitSpec, client: httpx.Client, url: str, now: datetime) -> None:
    repo = f"{scene.organization(kit.namespace)}/camel-k-{kit.name}"
    parent_layers = built.layers[kit.base] if kit.base else (BASE_LAYER,)
    for spec in kit.images:
        layers = (*parent_layers, _own_layer(f"{repo}:{spec.tag}"))
        digest = _push(built, client, url, repo, spec.tag, layers)
        pushed = Pushed(repo, spec.tag, digest, spec.expect, f"kit {kit.id}")
        built.images.append(pushed)
        if spec.current:
            built.current[kit.id] = built.ref(pushed)
            built.layers[kit.id] = layers
    built.kits[kit.id] = (kit.namespace, kit.name, kit.expect)
    spec_image = f"{built.address}/{kit.spec_image}" if kit.spec_image else None
    built.objects.append(objects.integration_kit(
        kit.name, kit.namespace, kit_type=kit.type, phase=kit.phase, created=_iso(now - kit.age),
        image=built.current.get(kit.id) or spec_image, spec_image=spec_image,
        base_image=built.current[kit.base] if kit.base else (PLATFORM_BASE if kit.current else None),
        root_image=PLATFORM_BASE if kit.current else None))


def _integration(scene: Scene, built: Built, it: IntegrationSpec) -> list[dict[str, Any]]:
    kit = scene.kit(it.kit)
    image = built.current.get(kit.id)
    labels = {objects.INTEGRATION_LABEL: it.name}
    out = [objects.integration(it.name, it.namespace, kit=kit.name, kit_namespace=kit.namespace, image=image,
                               phase=it.phase)]
    if image is None or it.runs_as == "none":
        return out
    pod_hash = hashlib.sha256(f"{it.namespace}/{it.name}:{image}".encode()).hexdigest()
    rs = f"{it.name}-{pod_hash[:9]}"
    # Owned the way the controllers own them: Integration > Deployment > ReplicaSet > Pod.
    integration: objects.Owner = (objects.INTEGRATION_API, "Integration", it.name)
    deployment: objects.Owner = ("apps/v1", "Deployment", it.name)
    if it.runs_as == "deployment":
        out += [objects.deployment(it.name, it.namespace, images={"integration": image}, labels=labels,
                                   owner=integration),
                objects.replicaset(rs, it.namespace, images={"integration": image}, labels=labels, owner=deployment),
                objects.pod(f"{rs}-{pod_hash[9:14]}", it.namespace, images={"integration": image},
                            image_ids={"integration": "docker-pullable://" + image}, labels=labels,
                            owner=("apps/v1", "ReplicaSet", rs))]
        if it.previous_kit:
            old = built.current[it.previous_kit]
            old_rs = objects.replicaset(f"{it.name}-{pod_hash[20:29]}", it.namespace,
                                        images={"integration": old}, labels=labels, owner=deployment)
            old_rs["spec"]["replicas"] = 0  # rolled out long ago; Kubernetes keeps it for rollbacks
            out.append(old_rs)
    elif it.runs_as == "cronjob":
        out.append(objects.cronjob(it.name, it.namespace, images={"integration": image}, labels=labels,
                                   owner=integration))
    elif it.runs_as == "knative":
        repo = image.rpartition("@")[0]
        tag = kit.current.tag if kit.current else "latest"
        out += [objects.knative_service(it.name, it.namespace, image=image, labels=labels, owner=integration),
                objects.knative_revision(f"{it.name}-00002", it.namespace, image=f"{repo}:{tag}",
                                         image_digest=image, labels=labels)]
        if it.previous_tag:
            old = built.image(kit.id, it.previous_tag)
            out.append(objects.knative_revision(f"{it.name}-00001", it.namespace,
                                                image=f"{repo}:{it.previous_tag}", image_digest=old, labels=labels))
    return out


# --- checking the outcome ---------------------------------------------------------------


def exists(client: httpx.Client, registry_url: str, p: Pushed) -> bool:
    r = client.head(f"{registry_url}/v2/{p.repository}/manifests/{p.digest}", headers={"Accept": images.ALL_MANIFESTS})
    if r.status_code not in (200, 404):
        raise RuntimeError(f"HEAD {p.repository}@{p.digest}: HTTP {r.status_code}")
    return r.status_code == 200


def check(built: Built, client: httpx.Client, registry_url: str, kits_present: set[tuple[str, str]], *,
          dry_run: bool) -> list[str]:
    """What differs from the scene's expectations; after a dry run, everything must still be there."""
    problems = []
    for p in built.images:
        wanted = True if dry_run else p.expect == KEEP
        if exists(client, registry_url, p) != wanted:
            state = "still there" if not wanted else "gone"
            problems.append(f"image {p.repository}:{p.tag} ({p.owner}) is {state}, expected {p.expect}")
    for kit_id, (namespace, name, expect) in built.kits.items():
        wanted = True if dry_run else expect == KEEP
        if ((namespace, name) in kits_present) != wanted:
            problems.append(f"IntegrationKit {namespace}/{name} ({kit_id}) expected {expect}")
    return problems
