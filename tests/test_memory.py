"""kitgc.memory hands freed heap pages back between stages (glibc's malloc_trim)."""

from __future__ import annotations

import ctypes.util
from pathlib import Path

from kitgc.memory import give_back


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_freed_small_allocations_go_back_to_the_kernel_when_given_back() -> None:
    # Tens of megabytes of objects above pymalloc's 512-byte limit and below the mmap
    # threshold (glibc heap chunks), freed but for one in 64 that pins the heap's top.
    assert ctypes.util.find_library("c")  # glibc here: the Debian machines this runs on
    chunks = [bytearray(2000) for _ in range(40_000)]
    pins = chunks[::64]
    del chunks
    before = _rss_kb()
    assert give_back()
    after = _rss_kb()
    assert before - after > 20_000, (before, after)  # most of ~78 MB freed comes back
    assert pins  # alive until here
