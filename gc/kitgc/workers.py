"""A few workers taking items in turn: bounded concurrency without a task per item.

A task per item waiting on a semaphore costs memory per item (some 50 MB for 32,000
repositories); a handful of workers sharing one iterator costs the same whatever the count.
Used by the registry scan and by kit deletion.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


async def in_turn(items: Iterable[T], workers: int, work: Callable[[T], Awaitable[None]]) -> None:
    """``work`` on every item, at most ``workers`` at once. Should one fail, the others are
    cancelled (their requests stop) and the failure is raised."""
    todo = iter(items)

    async def worker() -> None:
        for item in todo:
            await work(item)

    tasks = [asyncio.ensure_future(worker()) for _ in range(max(1, workers))]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
