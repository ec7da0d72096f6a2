"""The plain data that flows between the stages of a pass.

Reading the registry produces an :class:`Inventory`; reading the cluster produces a
:class:`ClusterSnapshot`; the pure planner turns both, plus :class:`Policy` and the
first-seen :class:`State`, into a :class:`Plan` of :class:`ManifestDecision` and
:class:`KitDecision`; the executor carries the plan out. Nothing here does I/O, so every
stage can be tested with data built by hand.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from kitgc.identity import KitKey, ManifestKey, kit_repository_name
from kitgc.imageref import ImageRef
from kitgc.keep import KeepPattern
from kitgc.shard import Shard

if TYPE_CHECKING:
    from kitgc.plan.reasons import Reason

# --- registry side -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Blob:
    """A config or layer blob named by a manifest, with its size in bytes."""

    digest: str
    size: int


@dataclass(frozen=True, slots=True)
class Manifest:
    """One manifest (image or index) in one repository, identified by its digest.

    ``tags`` are the tags of this repository that point at it now (empty for the untagged
    children of an index). ``children`` are the digests of the manifests an index lists.
    ``blobs`` are the config and layer blobs an image manifest names (empty for an index).
    """

    repository: str
    digest: str
    media_type: str
    tags: tuple[str, ...] = ()
    children: tuple[str, ...] = ()
    blobs: tuple[Blob, ...] = ()
    size: int = 0  # bytes of the manifest body itself
    subject: str | None = None  # OCI 1.1: the digest of the image this artifact refers to
    artifact_type: str = ""  # OCI 1.1 artifactType (what a referrer is: signature, SBOM, ...)
    # False when only a HEAD resolved it (digest, media type, size): blobs and subject are
    # unknown until its body is read, which happens before it can be deleted.
    read: bool = True
    # The identity used in state, reports and decisions: made once. The planner keys half a
    # dozen maps by it, and a fresh key per look-up was one more 7 MB copy per map at 100,000.
    key: ManifestKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # The repository and media type are interned: a few per repository, shared with the
        # cluster's parsed references (kitgc.imageref interns hosts and repositories). Digests
        # and tags are not: each is one manifest's own, and an entry in the interpreter's table
        # of interned strings (never shrunk; doubled, 15 MB more, past 350,000 live entries at
        # 100,000 manifests) costs more than the few it would share with the cluster's.
        _intern_fields(self, ("repository", "media_type"))
        object.__setattr__(self, "key", ManifestKey(self.repository, self.digest))

    @property
    def is_index(self) -> bool:
        return bool(self.children) or self.media_type in INDEX_MEDIA_TYPES


@dataclass(frozen=True)
class RepositoryProblem:
    """A repository, or a tag in it, that could not be read completely.

    The planner keeps every manifest of such a repository: with a tag unresolved we cannot
    know which digest a tag reference protects.
    """

    repository: str
    message: str
    tag: str | None = None


@dataclass(frozen=True)
class Inventory:
    """What the registry holds in scope: in-scope repositories and their manifests."""

    registry: str  # host[:port] as configured
    repositories: tuple[str, ...]  # every in-scope repository that was listed
    manifests: tuple[Manifest, ...]
    problems: tuple[RepositoryProblem, ...] = ()
    out_of_scope: int = 0  # repositories in the catalog that were not ours (never touched)
    # Manifests that go together or not at all (an ImageStreamTag's history): (name, keys).
    units: tuple[tuple[str, tuple[ManifestKey, ...]], ...] = ()


# --- cluster side --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """A Kubernetes object that refers to an image, for reasons a person can read."""

    kind: str
    name: str
    namespace: str | None = None
    cluster: str = ""  # "" for this cluster; else the REFERENCE_KUBECONFIG context it was read in
    # Computed once: object references key the owner map, subjects and holders, hundreds of
    # thousands of look-ups per run, and a frozen dataclass would hash its fields every time.
    _hash: int = field(init=False, repr=False, compare=False, default=0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.kind, self.name, self.namespace, self.cluster)))

    def __hash__(self) -> int:
        return self._hash

    def __str__(self) -> str:
        text = f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"
        return f"{text} in cluster {self.cluster}" if self.cluster else text


@dataclass(frozen=True, slots=True)
class Reference:
    """An image reference found in the cluster, and where it was found."""

    image: ImageRef
    source: ObjectRef
    field: str = ""  # e.g. "spec.template.spec.containers[app].image"


@dataclass(frozen=True, slots=True)
class UnparsableReference:
    """A string in an image field that is not a valid reference: the pass must abort."""

    raw: str
    source: ObjectRef
    field: str
    error: str


BUILDING_PHASES = frozenset({"", "Initialization", "Waiting For Platform", "Build Submitted", "Build Running"})
FINISHED_PHASES = frozenset({"Ready", "Error", "Cannot Build"})
PRUNABLE_KIT_TYPES = frozenset({"platform", "user"})
INDEX_MEDIA_TYPES = frozenset(
    {
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    }
)


@dataclass(frozen=True, slots=True)
class Kit:
    """An IntegrationKit, reduced to what the planner needs."""

    namespace: str
    name: str
    kit_type: str  # label camel.apache.org/kit.type: platform, user, external, synthetic, or ""
    phase: str
    created: datetime
    image: ImageRef | None = None  # status.image (the built image, usually by digest)
    spec_image: ImageRef | None = None  # spec.image (external kits)
    base_image: ImageRef | None = None  # status.baseImage
    root_image: ImageRef | None = None  # status.rootImage
    cluster: str = ""  # "" for this cluster; a REFERENCE_KUBECONFIG context for a foreign kit
    # Last path segment of the repository the operator pushes this kit to: made once, as the
    # planner's kit indexes (evidence, kits going, building repositories) key by it.
    repository_name: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Twenty thousand kits say "Ready" and "platform" in a few namespaces, and each kit's
        # name is written again by every Integration that uses it (KitUse): one string each.
        _intern_fields(self, ("namespace", "name", "kit_type", "phase"))
        object.__setattr__(self, "repository_name", kit_repository_name(self.name))

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef("IntegrationKit", self.name, self.namespace, self.cluster)

    @property
    def building(self) -> bool:
        """Unknown phases count as building: the safe reading."""
        return self.phase not in FINISHED_PHASES

    @property
    def key(self) -> KitKey:
        return KitKey(self.namespace, self.name)



@dataclass(frozen=True, slots=True)
class KitUse:
    """An Integration (or other owner) that uses a kit by name."""

    user: ObjectRef
    kit_namespace: str
    kit_name: str

    def __post_init__(self) -> None:
        _intern_fields(self, ("kit_namespace", "kit_name"))  # one string with the kit's own (Kit)


def _intern_fields(obj: object, names: tuple[str, ...]) -> None:
    """Intern the named string fields of a frozen record (anything else is left as it is)."""
    for name in names:
        value = getattr(obj, name)
        if type(value) is str:
            object.__setattr__(obj, name, sys.intern(value))


@dataclass(frozen=True)
class ClusterSnapshot:
    """Every reference the cluster holds, read completely (or the pass aborts)."""

    references: tuple[Reference, ...]
    kits: tuple[Kit, ...]
    kit_uses: tuple[KitUse, ...]
    unparsable: tuple[UnparsableReference, ...] = ()
    integrations: int = 0  # how many Integrations exist (wrong-cluster guard)
    objects_read: int = 0
    # Each object's controlling owner (metadata.ownerReferences, controller first), for the
    # chains that explain a reference: Pod -> ReplicaSet -> Deployment -> Integration.
    owners: Mapping[ObjectRef, ObjectRef] = field(default_factory=dict)
    # Kits of the REFERENCE_KUBECONFIG clusters: never deleted here, they keep their images
    # (and the local kits they build on) exactly as a staying local kit does.
    foreign_kits: tuple[Kit, ...] = ()
    clusters: tuple[str, ...] = ()  # the reference clusters read completely, by context name
    # References not kept because their image already had its examples (kitgc.cluster.fold).
    folded: int = 0


# --- policy, state, decisions --------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    organizations: tuple[str, ...]  # full repository path prefixes (registry path prefix included)
    min_age: timedelta
    prune_kits: bool
    max_deletions: int
    # Last segments (``camel-k-<name>``) of repositories in scope beyond ``camel-k-kit-*`` and
    # ``camel-k-ctx-*``: those of every kit seen (user kits, git builds).
    kit_repositories: frozenset[str] = frozenset()
    # KEEP_IMAGES: an in-scope manifest matching any of these stays, and so does a kit whose image does.
    keep: tuple[KeepPattern, ...] = ()
    # SHARDS > 1: only this shard's repositories are planned, and only its kits deleted.
    shard: Shard = field(default_factory=Shard)


def state_key(repository: str, digest: str) -> str:
    """Key of the first-seen state (see :meth:`ManifestKey.state_key`)."""
    return ManifestKey(repository, digest).state_key()


class FirstSeen(Mapping[str, datetime]):
    """A plan's first-seen times, keyed by :func:`state_key` only once they are read.

    A deleting run's plan holds them from its planning to its end, where the state is
    written: 77,000 keys at 100,000 manifests, each a string of its own (``repo@sha256:`` and
    24 hex) in a dict, 12 MB held through the sweep. Held as (manifest, time) pairs, of
    objects the inventory holds anyway, they are 5 MB; the keyed dict is made on first use,
    in the pairs' order (so a later pair with the same key wins, as in a dict built in turn).
    """

    __slots__ = ("_keyed", "_pairs")

    def __init__(self, pairs: list[tuple[Manifest, datetime]]) -> None:
        self._pairs = pairs
        self._keyed: dict[str, datetime] | None = None

    def _by_key(self) -> dict[str, datetime]:
        if self._keyed is None:
            self._keyed = {m.key.state_key(): t for m, t in self._pairs}
            self._pairs = []
        return self._keyed

    def __getitem__(self, key: str) -> datetime:
        return self._by_key()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_key())

    def __len__(self) -> int:
        return len(self._by_key())


@dataclass(frozen=True)
class State:
    """First-seen times of unreferenced manifests, keyed by :func:`state_key`."""

    first_seen: Mapping[str, datetime] = field(default_factory=dict)
    # Repositories (last segments) of kits seen, kept while the repository holds manifests:
    # a kit deleted with some images deferred still owns its repository next run.
    kits_seen: frozenset[str] = frozenset()
    # Manifests the registry refused to delete for good (immutable tags), keyed like
    # first_seen: when it first refused and what it said. Kept without asking until
    # REFUSAL_RETRY has passed, so a refusal is not a failure that repeats every run.
    refused: dict[str, tuple[datetime, str]] = field(default_factory=dict)


class Action(StrEnum):
    KEEP = "keep"
    DELETE = "delete"
    DEFER = "defer"  # eligible, but over MAX_DELETIONS this run


@dataclass(frozen=True, slots=True)
class ManifestDecision:
    """What happens to one manifest, and every reason that applies (the first is the headline).

    ``kits`` names the kits deleted in this run that the manifest belongs to: should one of
    them fail to go, the executor keeps the manifest (the kit would point at nothing).
    """

    manifest: Manifest
    action: Action
    why: tuple[Reason, ...]
    evidence_since: datetime | None = None  # best evidence of age for unreferenced manifests
    referenced: bool = False  # kept because something refers to it (for kitgc_manifests_referenced)
    kits: tuple[KitKey, ...] = ()

    @property
    def reason(self) -> str:
        """The headline reason as plain text."""
        return str(self.why[0])

    @property
    def reasons(self) -> tuple[str, ...]:
        """Every reason as plain text, each distinct sentence once (one Pod may name an image
        in two fields: two subjects, one sentence)."""
        return tuple(dict.fromkeys(str(r) for r in self.why))


@dataclass(frozen=True, slots=True)
class KitDecision:
    kit: Kit
    action: Action
    why: Reason

    @property
    def reason(self) -> str:
        return str(self.why)


@dataclass(frozen=True)
class Plan:
    manifests: tuple[ManifestDecision, ...]
    kits: tuple[KitDecision, ...]
    state: State  # first-seen state to write back after the run

    @property
    def manifest_deletions(self) -> tuple[ManifestDecision, ...]:
        return tuple(d for d in self.manifests if d.action is Action.DELETE)

    @property
    def kit_deletions(self) -> tuple[KitDecision, ...]:
        return tuple(d for d in self.kits if d.action is Action.DELETE)


# --- outcome -------------------------------------------------------------------------


@dataclass(frozen=True)
class DeletionFailure:
    target: str  # "repo@digest" or "IntegrationKit ns/name", as people read it
    message: str


@dataclass(frozen=True)
class ExecutionResult:
    manifests_deleted: tuple[ManifestKey, ...] = ()
    kits_deleted: tuple[KitKey, ...] = ()
    failures: tuple[DeletionFailure, ...] = ()
    deletion_disabled: bool = False  # the registry answered 405 UNSUPPORTED
    # Manifests the registry refuses to delete for good (immutable tags): kept, not failures.
    immutable: tuple[ManifestKey, ...] = ()
    # Manifests the store can delete only with their whole repository (GitHub's last tagged
    # version): deleted when the repository goes, else kept.
    with_repository: tuple[ManifestKey, ...] = ()
    repositories_deleted: tuple[str, ...] = ()  # emptied kit repositories removed whole
