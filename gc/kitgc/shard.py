"""Sharding: which repositories (and which kits) one of ``SHARDS`` cooperating runs owns.

An estate one pod cannot hold is split over a Kubernetes Indexed Job: every shard reads all
references (they are global: any cluster object may hold any image) but scans, plans and
deletes only its own repositories. A repository belongs to the shard its last path segment
hashes to (``camel-k-kit-<xid>``), so a kit's repositories in every organization, and the
kit itself, belong to one and the same shard: a kit's deletion and its images' stay together.

The hash is SHA-256 (stable across processes and Python versions, unlike ``hash()``), so
adding no shard ever moves a repository between runs with the same ``SHARDS``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from kitgc.identity import last_segment


def shard_of(repository: str, shards: int) -> int:
    """The shard in ``range(shards)`` that owns ``repository`` (or a bare last segment)."""
    if shards <= 1:
        return 0
    digest = hashlib.sha256(last_segment(repository).encode()).digest()
    return int.from_bytes(digest[:8], "big") % shards


@dataclass(frozen=True)
class Shard:
    """This run's shard: ``index`` of ``count`` (``count == 1``: unsharded, owns everything)."""

    index: int = 0
    count: int = 1

    @property
    def sharded(self) -> bool:
        return self.count > 1

    def owns(self, repository: str) -> bool:
        return self.count <= 1 or shard_of(repository, self.count) == self.index

    def suffix(self) -> str:
        """What per-shard objects (Lease, state ConfigMap) append to their name."""
        return f"-shard-{self.index}" if self.sharded else ""

    def __str__(self) -> str:
        return f"shard {self.index} of {self.count}" if self.sharded else "unsharded"
