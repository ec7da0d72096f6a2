"""Repositories with images and no kit this cluster ever saw: a sign of a shared registry.

On a registry only this cluster pushes to, every kit repository that still holds images
belongs to a kit the cluster shows, or showed while the collector was watching (the state
remembers). Many that belong to none mean another installation — a production cluster that
got the images by promotion, another team's operator — pushes here too, and this cluster's
collector cannot see what uses them. The run says so before the first deleting run, not
after, and points at ``REFERENCE_KUBECONFIG``.
"""

from __future__ import annotations

from collections.abc import Sequence

from kitgc.identity import last_segment
from kitgc.model import Inventory, Kit

# Warn from this many unowned repositories, when they are at least this share of those with images.
WARN_AT_LEAST = 5
WARN_SHARE = 0.2


def unowned_repositories(inventory: Inventory, kits: Sequence[Kit], kits_seen: frozenset[str]) -> tuple[str, ...]:
    """In-scope repositories holding manifests whose name is no kit's this cluster shows or remembers."""
    owned = kits_seen | {k.repository_name for k in kits}
    holding = {m.repository for m in inventory.manifests}
    return tuple(sorted(r for r in holding if last_segment(r) not in owned))


def looks_shared(unowned: Sequence[str], inventory: Inventory) -> bool:
    holding = len({m.repository for m in inventory.manifests})
    return len(unowned) >= WARN_AT_LEAST and len(unowned) >= WARN_SHARE * holding
