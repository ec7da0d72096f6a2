"""The identities every stage agrees on: a manifest, a kit, a digest, a kit's repository.

Each identity has one type and one spelling, so no module assembles ``repo@digest`` or
``ns/name`` by hand and no two modules can disagree about what names the same thing. The
types are NamedTuples: hashable and ordered (decisions sort by them), cheap (a run holds
100,000 of them), and their ``str`` is the spelling people read in logs and reports.
"""

from __future__ import annotations

import re
from typing import NamedTuple

# Camel K pushes a kit to ``<organization>/camel-k-<kit name>``; the operator names kits
# ``kit-<xid>``, hence the ``camel-k-kit-`` repositories.
KIT_REPOSITORY_PREFIX = "camel-k-"
KIT_NAME_PREFIX = "kit-"

# A digest as the OCI image spec writes it: algorithm ":" encoded (at least 32 hex digits
# for the registered algorithms); what the registry API and Kubernetes image IDs carry.
_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}")


def is_digest(reference: str) -> bool:
    """Whether a manifest reference (the part after ``/manifests/``) is a digest, not a tag.

    Tags cannot contain ``:``, but a tag-looking string such as ``sha256`` alone must not
    pass either, so the whole digest grammar is checked.
    """
    return _DIGEST.fullmatch(reference) is not None


class ManifestKey(NamedTuple):
    """One manifest in one repository: what state, reports and decisions are keyed by."""

    repository: str
    digest: str

    def __str__(self) -> str:
        return f"{self.repository}@{self.digest}"

    def child(self, digest: str) -> ManifestKey:
        """The key of a manifest an index in this repository lists."""
        return ManifestKey(self.repository, digest)

    def short(self) -> str:
        """``org/repo@sha256:0123456789ab``: the digest shortened the way people quote it."""
        return f"{self.repository}@{short_digest(self.digest)}"

    def state_key(self) -> str:
        """Key of the first-seen state: ``repository@<algorithm>:<first 24 hex>``.

        Truncated so that 20,000 entries fit a ConfigMap (1 MiB); 96 bits cannot collide in
        practice, and a collision could only make a manifest look older than it is within
        one repository of unreferenced manifests.
        """
        algorithm, _, hexpart = self.digest.partition(":")
        return str(ManifestKey(self.repository, f"{algorithm}:{hexpart[:24]}"))


class KitKey(NamedTuple):
    """One IntegrationKit object, by namespace and name."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


def kit_repository_name(kit_name: str) -> str:
    """The last path segment of the repository the operator pushes kit ``kit_name`` to."""
    return f"{KIT_REPOSITORY_PREFIX}{kit_name}"


def kit_name_of_repository(repository: str) -> str | None:
    """The kit name a repository's last segment stands for, or None if it is no kit's."""
    last = repository.rpartition("/")[2]
    if not last.startswith(KIT_REPOSITORY_PREFIX) or len(last) == len(KIT_REPOSITORY_PREFIX):
        return None
    return last[len(KIT_REPOSITORY_PREFIX):]


def short_digest(digest: str) -> str:
    """``sha256:0123456789ab``: the algorithm and the first 12 hex digits."""
    algorithm, sep, hexpart = digest.partition(":")
    return f"{algorithm}:{hexpart[:12]}" if sep else digest[:12]


def last_segment(repository: str) -> str:
    """The last path segment of a repository, where a kit's name shows."""
    return repository.rpartition("/")[2]
