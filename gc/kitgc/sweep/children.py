"""Write down the children of the indexes about to be deleted, before deleting any.

See :mod:`kitgc.pending` for why: an untagged child is found only through its index, so a
run stopped between an index and its children would otherwise leave them unfindable.
"""

from __future__ import annotations

import asyncio
from typing import Any

from kitgc import pending
from kitgc.errors import KitGCError
from kitgc.model import Plan, State
from kitgc.state import StateStore


async def remember_children(
    store: StateStore, state: State, tracked: pending.Pending, plan: Plan, log: Any
) -> pending.Pending:
    """What is remembered from now on; saved with ``state`` when it grew.

    If the write fails the sweep goes on: the worst outcome is garbage left for the
    registry's own GC, never a wrong deletion.
    """
    wanted = pending.union(tracked, pending.children_of_deletions(plan))
    if wanted == tracked:
        return tracked
    try:
        await asyncio.to_thread(store.save, state, wanted)
    except KitGCError as exc:
        log.warning("pending_children_not_saved", error=str(exc),
                    note="if this run is interrupted, children of deleted indexes may stay untagged")
    return wanted
