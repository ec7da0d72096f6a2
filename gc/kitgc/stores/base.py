"""The image-store protocol: what the pass asks of wherever kit images live.

Modelled on OpenShift's image pruner, which is handed one-method deleter interfaces: each
step of the pass depends only on the small protocol it uses (the executor on
:class:`ManifestDeleter`, the scan on :class:`RepositoryLister` and
:class:`RepositoryScanner`, the remembered-children look-up on :class:`ManifestFetcher`),
and :class:`ImageStore` is what one implementation offers as a whole. Deletion receives the
whole :class:`~kitgc.model.Manifest`, tags included, so a store that must remove tags
before a digest, or delete a tag object instead of a digest, has what it needs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from kitgc.errors import RegistryError
from kitgc.model import Manifest, RepositoryProblem
from kitgc.scope import Scope

# The repositories the cluster's kits name, asked for only when the store cannot list.
KnownRepositories = tuple[str, ...] | Callable[[], Awaitable[tuple[str, ...]]]


@dataclass(frozen=True)
class Capabilities:
    """What a store can do, so the pass and ``doctor`` need not know its kind.

    ``lists_repositories``: it can enumerate repositories itself (else the cluster's kit
    repositories are scanned); ``deletes_manifests``: a manifest can be deleted at all;
    ``deletes_repositories``: an emptied repository can be removed; ``untags_first``: tags
    must go before the digest they point at; ``metered_reads``: every manifest GET counts
    against a rate limit (Docker Hub's pulls), so nothing that stays is read.
    """

    lists_repositories: bool = True
    deletes_manifests: bool = True
    deletes_repositories: bool = False
    untags_first: bool = False
    metered_reads: bool = False


@dataclass(frozen=True)
class RepositoryListing:
    """The in-scope repositories, how many others were seen, and how they were found."""

    repositories: tuple[str, ...]
    out_of_scope: int = 0
    source: str = "catalog"  # "catalog", or "cluster kits" when the store could not list


@dataclass
class RepositoryScan:
    """Everything read from one repository: its manifests by digest and what went wrong."""

    repository: str
    manifests: dict[str, Manifest] = field(default_factory=dict)
    problems: list[RepositoryProblem] = field(default_factory=list)
    # Digests that can only be deleted together (an OpenShift ImageStreamTag and its history),
    # each with what to call the group in a reason.
    units: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)


class DeleteOutcome(StrEnum):
    DELETED = "deleted"
    ALREADY_GONE = "already_gone"  # a 404: someone (or the store itself) was first
    # The store cannot delete it alone (GitHub: the last tagged version of a package): it
    # goes when its repository is deleted, or stays (kept, not a failure) if that cannot be.
    WITH_REPOSITORY = "with_repository"


class RepositoryLister(Protocol):
    async def list_repositories(self, scope: Scope, known: KnownRepositories = ()) -> RepositoryListing: ...


class RepositoryScanner(Protocol):
    async def scan_repository(self, repository: str) -> RepositoryScan: ...


class ManifestFetcher(Protocol):
    async def fetch_manifest(self, repository: str, digest: str) -> Manifest | None:
        """The untagged manifest at ``digest``; None when it is gone; RegistryError otherwise."""
        ...


class ManifestDeleter(Protocol):
    async def delete_manifest(self, manifest: Manifest) -> DeleteOutcome:
        """Delete ``manifest`` (in as many steps as the store needs).

        Raises :class:`~kitgc.errors.DeletionDisabled` when the store refuses every
        deletion (the sweep stops), :class:`~kitgc.errors.RegistryError` for one refusal.
        """
        ...


class RepositoryDeleter(Protocol):
    async def delete_repository(self, repository: str) -> DeleteOutcome:
        """Delete a whole (emptied) repository through the vendor's API.

        Only called when ``capabilities.deletes_repositories`` is true, and only for a kit
        repository whose every scanned manifest this run deleted. Raises
        :class:`~kitgc.errors.RegistryError` when refused.
        """
        ...


class ImageStore(RepositoryLister, RepositoryScanner, ManifestFetcher, ManifestDeleter, Protocol):
    """One place kit images live: listed, scanned and deleted through this protocol only."""

    kind: str  # "distribution", ...
    address: str  # host[:port] as people know it
    concurrency: int
    capabilities: Capabilities

    @property
    def stats(self) -> Mapping[str, int]:
        """Requests sent, by kind (for logs and the benchmark)."""
        ...

    def deletion_batches(self, manifests: Sequence[Manifest]) -> list[list[Manifest]]:
        """The order deletions must follow: each batch only after the previous one."""
        ...

    def explain_refusal(self, error: RegistryError) -> str | None:
        """What a refusal means for this store and what to do about it, or None."""
        ...

    async def aclose(self) -> None: ...
