"""Builders for the planner's inputs, and hypothesis strategies over them.

Builders take the few facts a scenario is about and default everything else, so a test
reads like the rule it protects. The strategy :func:`plan_inputs` draws whole worlds:
several organizations (some out of scope), non-kit repositories, indexes with children,
digests shared across repositories, references by digest/tag/both under random hosts,
kits of every type and phase chained through base images, and random state and policy.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from kitgc.imageref import ImageRef, digest_only, parse
from kitgc.model import (
    INDEX_MEDIA_TYPES,
    Action,
    ClusterSnapshot,
    Inventory,
    Kit,
    KitDecision,
    KitUse,
    Manifest,
    ManifestDecision,
    ObjectRef,
    Plan,
    Policy,
    Reference,
    RepositoryProblem,
    State,
    UnparsableReference,
    state_key,
)
from kitgc.plan import plan

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
ORG = "camel-k"
HOST = "registry.example:5000"
IMAGE_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_TYPE = sorted(INDEX_MEDIA_TYPES)[0]
DAY, HOUR, MINUTE = timedelta(days=1), timedelta(hours=1), timedelta(minutes=1)


def digest(label: object) -> str:
    """A well-formed sha256 digest derived from ``label`` (stable across runs)."""
    return "sha256:" + hashlib.sha256(str(label).encode()).hexdigest()


def repo(kit_name: str = "kit-a", org: str = ORG) -> str:
    """The repository the operator pushes kit ``kit_name`` to."""
    return f"{org}/camel-k-{kit_name}"


def manifest(repository: str, label: object, *tags: str, children: tuple[str, ...] = ()) -> Manifest:
    """An image manifest (or an index, when it has children) whose digest is ``digest(label)``."""
    return Manifest(
        repository=repository,
        digest=digest(label),
        media_type=INDEX_TYPE if children else IMAGE_TYPE,
        tags=tuple(tags),
        children=children,
    )


def inventory(*manifests: Manifest, problems: tuple[RepositoryProblem, ...] = ()) -> Inventory:
    return Inventory(
        registry=HOST,
        repositories=tuple(dict.fromkeys(m.repository for m in manifests)),
        manifests=tuple(manifests),
        problems=problems,
    )


def image(repository: str, label: object = None, tag: str | None = None, host: str = HOST) -> ImageRef:
    """A reference to ``host/repository[:tag][@digest(label)]``."""
    text = f"{host}/{repository}" + (f":{tag}" if tag else "") + (f"@{digest(label)}" if label is not None else "")
    return parse(text)


def kit(
    name: str = "kit-a",
    *,
    namespace: str = ORG,
    kit_type: str = "platform",
    phase: str = "Ready",
    age: timedelta = 3 * DAY,
    image: ImageRef | None = None,
    spec_image: ImageRef | None = None,
    base: ImageRef | None = None,
    root: ImageRef | None = None,
) -> Kit:
    return Kit(
        namespace=namespace,
        name=name,
        kit_type=kit_type,
        phase=phase,
        created=NOW - age,
        image=image,
        spec_image=spec_image,
        base_image=base,
        root_image=root,
    )


def ref(
    img: ImageRef | str, kind: str = "Deployment", name: str = "orders", namespace: str | None = "shop"
) -> Reference:
    return Reference(image=parse(img) if isinstance(img, str) else img, source=ObjectRef(kind, name, namespace))


def use(k: Kit, kind: str = "Integration", name: str = "orders", namespace: str = "shop") -> KitUse:
    return KitUse(user=ObjectRef(kind, name, namespace), kit_namespace=k.namespace, kit_name=k.name)


def cluster(
    references: tuple[Reference, ...] | list[Reference] = (),
    kits: tuple[Kit, ...] | list[Kit] = (),
    uses: tuple[KitUse, ...] | list[KitUse] = (),
    unparsable: tuple[UnparsableReference, ...] = (),
    owners: dict[ObjectRef, ObjectRef] | None = None,
) -> ClusterSnapshot:
    """A snapshot; ``owners`` maps an object to its controlling owner (ownerReferences)."""
    return ClusterSnapshot(
        references=tuple(references), kits=tuple(kits), kit_uses=tuple(uses), unparsable=unparsable,
        owners=dict(owners or {}),
    )


def policy(
    *orgs: str, min_age: timedelta = 24 * HOUR, prune_kits: bool = True, max_deletions: int = 500
) -> Policy:
    return Policy(
        organizations=orgs or (ORG,), min_age=min_age, prune_kits=prune_kits, max_deletions=max_deletions
    )


def seen(*entries: tuple[Manifest, timedelta]) -> State:
    """State saying each manifest was first seen unreferenced ``age`` before NOW."""
    return State(first_seen={state_key(m.repository, m.digest): NOW - age for m, age in entries})


def run(
    inv: Inventory,
    snap: ClusterSnapshot | None = None,
    pol: Policy | None = None,
    st_: State | None = None,
    now: datetime = NOW,
) -> Plan:
    return plan(inv, snap or cluster(), pol or policy(), st_ or State(), now)


def decision(p: Plan, m: Manifest) -> ManifestDecision:
    (found,) = [d for d in p.manifests if d.manifest.key == m.key]
    return found


def action(p: Plan, m: Manifest) -> Action:
    return decision(p, m).action


def kit_decision(p: Plan, k: Kit) -> KitDecision:
    (found,) = [d for d in p.kits if (d.kit.namespace, d.kit.name) == (k.namespace, k.name)]
    return found


# --- hypothesis -------------------------------------------------------------------------

ORGS = ("camel-k", "team/camel-k", "other")  # "other" is never configured
KIT_NAMES = ("kit-a", "kit-b", "kit-c", "kit-d", "kit-e")
FOREIGN_REPOS = ("camel-k/tooling", "camel-k/camel-k-kit", "camel-k/sub/camel-k-kit-a", "library/camel-k-kit-a")
HOSTS = (HOST, "10.0.0.7:5000", "mirror.local", "docker.io", "[::1]:5000", "localhost:5000")
TAGS = ("1", "2", "latest")
# Weighted by repetition: prunable, finished kits are the interesting ones.
KIT_TYPES = ("platform", "platform", "platform", "user", "user", "external", "synthetic", "", "weird")
PHASES = ("Ready", "Ready", "Ready", "Ready", "Error", "Cannot Build", "Build Running", "", "Initialization", "Odd")
DIGESTS = tuple(digest(i) for i in range(10))  # few, so that repositories share digests
MIN_AGES = (timedelta(0), HOUR, 24 * HOUR, 3 * DAY)
AGES = st.sampled_from((timedelta(0), 30 * MINUTE, 2 * HOUR, 23 * HOUR, 25 * HOUR, 2 * DAY, 9 * DAY, -HOUR))


@dataclass
class World:
    """One drawn set of planner inputs."""

    inventory: Inventory
    cluster: ClusterSnapshot
    policy: Policy
    state: State
    now: datetime = NOW
    notes: list[str] = field(default_factory=list)

    def plan(self) -> Plan:
        return plan(self.inventory, self.cluster, self.policy, self.state, self.now)


@st.composite
def _repository(draw: st.DrawFn, name: str) -> list[Manifest]:
    """Manifests of one repository: distinct digests, each tag on at most one, some indexes."""
    digests = draw(st.lists(st.sampled_from(DIGESTS), unique=True, max_size=5))
    tags = {t: draw(st.sampled_from([None, *digests])) for t in TAGS} if digests else {}
    out = []
    for i, d in enumerate(digests):
        later = digests[i + 1 :]  # children only among later digests: no cycles, as in a registry
        children: tuple[str, ...] = ()
        is_index: bool = draw(st.booleans())
        if later and is_index:
            children = tuple(draw(st.lists(st.sampled_from(later), unique=True, min_size=1, max_size=2)))
        own_tags = tuple(t for t, target in tags.items() if target == d)
        out.append(
            Manifest(name, d, INDEX_TYPE if children else IMAGE_TYPE, tags=own_tags, children=children, size=1)
        )
    return out


@st.composite
def _image_in(draw: st.DrawFn, repositories: list[str]) -> ImageRef:
    """A reference into one of ``repositories`` by digest, tag, both, or a bare digest."""
    repository = draw(st.sampled_from(repositories))
    host = draw(st.sampled_from(HOSTS))
    form = draw(st.sampled_from(("digest", "tag", "both", "bare", "none")))
    d = draw(st.sampled_from(DIGESTS))
    t = draw(st.sampled_from(TAGS))
    if form == "bare":
        return digest_only(d)
    base = f"{host}/{repository}"
    text = {"digest": f"{base}@{d}", "tag": f"{base}:{t}", "both": f"{base}:{t}@{d}", "none": base}[form]
    return parse(text)


@st.composite
def _kit_image(draw: st.DrawFn, own: list[Manifest], repositories: list[str]) -> ImageRef | None:
    """A kit's status.image: mostly one of its repository's manifests by digest, as pushed."""
    if own and draw(st.integers(0, 3)) > 0:
        m = draw(st.sampled_from(own))
        if m.tags and draw(st.integers(0, 4)) == 0:  # old Kaniko builds: tag only
            return parse(f"{HOST}/{m.repository}:{m.tags[0]}")
        return parse(f"{HOST}/{m.repository}@{m.digest}")
    return draw(st.none() | _image_in(repositories))


@st.composite
def plan_inputs(draw: st.DrawFn, *, with_unparsable: bool = False) -> World:
    orgs = tuple(draw(st.lists(st.sampled_from(ORGS[:2]), min_size=1, unique=True)))
    kit_repos = [repo(n, o) for o in ORGS for n in KIT_NAMES]
    ours = [repo(n, o) for o in orgs for n in KIT_NAMES]  # repeated below: mostly in-scope repositories
    names = draw(st.lists(st.sampled_from(ours * 3 + kit_repos + list(FOREIGN_REPOS)), unique=True, max_size=6))
    manifests = [m for n in names for m in draw(_repository(n))]
    all_repos = sorted(set(names) | set(kit_repos[:3]))
    problems = tuple(
        RepositoryProblem(n, "tag 2: HTTP 500", tag=draw(st.sampled_from((None, "2"))))
        for n in names
        if draw(st.integers(0, 9)) == 4
    )

    kits: list[Kit] = []
    for name in draw(st.lists(st.sampled_from(KIT_NAMES), unique=True, max_size=5)):
        own = [m for m in manifests if m.repository.rpartition("/")[2] == f"camel-k-{name}"]
        for ns in draw(st.lists(st.sampled_from((ORG, ORG, "other-ns")), min_size=1, max_size=2, unique=True)):
            kits.append(
                Kit(
                    namespace=ns,
                    name=name,
                    kit_type=draw(st.sampled_from(KIT_TYPES)),
                    phase=draw(st.sampled_from(PHASES)),
                    created=NOW - draw(AGES),
                    image=draw(_kit_image(own, [repo(name, o) for o in ORGS])),
                    spec_image=draw(st.none() | _image_in(all_repos)) if draw(st.integers(0, 4)) == 0 else None,
                )
            )
    # Base and root images: mostly other kits' images (incremental builds), sometimes anything.
    images = [k.image for k in kits if k.image is not None]
    chained = st.sampled_from(images) if images else st.nothing()
    kits = [
        replace(
            k,
            base_image=draw(st.none() | chained | chained | _image_in(all_repos)),
            root_image=draw(st.none() | st.none() | chained | _image_in([*all_repos, "library/eclipse-temurin"])),
        )
        for k in kits
    ]
    sources = [ObjectRef(k, n, "shop") for k in ("Deployment", "Pod", "Integration", "Build") for n in ("a", "b")]
    sources += [ObjectRef("IntegrationKit", k.name, k.namespace) for k in kits]
    sources.append(ObjectRef("IntegrationKit", "kit-unknown", ORG))
    references = draw(
        st.lists(st.builds(Reference, _image_in(all_repos), st.sampled_from(sources)), max_size=6)
    )
    uses = [
        KitUse(ObjectRef("Integration", "it", "shop"), k.namespace, k.name)
        for k in kits
        if draw(st.integers(0, 3)) == 2
    ]
    first_seen = {
        state_key(m.repository, m.digest): NOW - draw(AGES) for m in manifests if draw(st.booleans())
    }
    first_seen[state_key(repo("kit-gone"), DIGESTS[0])] = NOW - 9 * DAY  # a stale entry
    unparsable: tuple[UnparsableReference, ...] = ()
    if with_unparsable and draw(st.booleans()):
        unparsable = (UnparsableReference("Bad Image", ObjectRef("Pod", "p", "shop"), "spec.containers[a]", "bad"),)
    return World(
        inventory=Inventory(HOST, tuple(names), tuple(manifests), problems),
        cluster=ClusterSnapshot(tuple(references), tuple(kits), tuple(uses), unparsable),
        policy=Policy(
            organizations=orgs,
            min_age=draw(st.sampled_from(MIN_AGES)),
            prune_kits=draw(st.integers(0, 5)) < 5,
            max_deletions=draw(st.sampled_from((0, 1, 2, 3, 5, 10_000))),
        ),
        state=State(first_seen=first_seen),
    )


@st.composite
def index_worlds(draw: st.DrawFn) -> World:
    """Unreferenced index trees under a small MAX_DELETIONS, with ages per manifest.

    The general strategy rarely cuts MAX_DELETIONS between an index and its children;
    this one does so all the time, which is where a deleted child would break its index.
    """
    manifests: list[Manifest] = []
    for name in draw(st.lists(st.sampled_from(KIT_NAMES[:3]), min_size=1, unique=True)):
        manifests += draw(_repository(repo(name)))
    references = draw(
        st.lists(st.builds(Reference, _image_in([m.repository for m in manifests] or [repo()]),
                           st.just(ObjectRef("Pod", "p", "shop"))), max_size=1)
    )
    return World(
        inventory=inventory(*manifests),
        cluster=cluster(references=references),
        policy=policy(min_age=24 * HOUR, max_deletions=draw(st.integers(0, 6))),
        state=State(first_seen={state_key(m.repository, m.digest): NOW - draw(AGES) for m in manifests}),
    )
