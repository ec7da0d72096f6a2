"""Hand the heap's free pages back to the kernel between the stages of a pass.

A stage's transient objects (the cluster read's decoded pages, a plan's working maps) are
freed when it ends, but glibc keeps the freed memory in its arenas, counted in the pod's
RSS, where a memory limit reads it. ``malloc_trim(0)`` returns every whole free page of
every arena (glibc 2.8 and later also those inside the heap, not only at its top), so the
next stage's peak starts from what is live, not from the last stage's high-water mark.

Best effort: on a C library without ``malloc_trim`` (musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable


@functools.cache
def _trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        trim = getattr(libc, "malloc_trim", None)
    except OSError:
        return None
    if trim is None:
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def give_back() -> bool:
    """Return free heap pages to the kernel; whether the C library could be asked to."""
    trim = _trim()
    if trim is None:
        return False
    trim(0)
    return True
