"""Where a kitgc run's memory goes, phase by phase: ``python -m bench.memprofile OUT.json``.

Runs ``kitgc`` in this process exactly as ``python -m kitgc`` does (same environment, same
entry point), with its phase functions wrapped to record, at the end of each phase, the
process's resident memory now and at its peak during the phase (``VmHWM``, reset between
phases through ``/proc/self/clear_refs``) and, with ``--tracemalloc``, the Python heap and
the source lines holding most of it. tracemalloc slows a run two to three times: its
timings are not the bench's. Started by :mod:`bench.profile`, which sets up the scene.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

_phases: list[dict[str, Any]] = []
_started = time.monotonic()
_top = 12


def _status() -> dict[str, float]:
    out: dict[str, float] = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024.0
    return out


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
    except OSError:
        pass


def _record(phase: str) -> None:
    status = _status()
    entry: dict[str, Any] = {"phase": phase, "at_s": round(time.monotonic() - _started, 1),
                             "rss_mb": round(status.get("VmRSS", 0.0), 1),
                             "peak_rss_mb": round(status.get("VmHWM", 0.0), 1)}
    if tracemalloc.is_tracing():
        current, peak = tracemalloc.get_traced_memory()
        entry["heap_mb"], entry["heap_peak_mb"] = round(current / 2**20, 1), round(peak / 2**20, 1)
        stats = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)]).statistics("lineno")
        entry["top"] = [{"where": f"{s.traceback[0].filename.rsplit('/gc/', 1)[-1]}:{s.traceback[0].lineno}",
                         "mb": round(s.size / 2**20, 2), "blocks": s.count} for s in stats[:_top]]
        tracemalloc.reset_peak()
    _phases.append(entry)
    _reset_peak()


def _wrap_async(module: Any, name: str, phase: str) -> None:
    original: Callable[..., Any] = getattr(module, name)

    @functools.wraps(original)
    async def wrapped(*args: Any, **kwargs: Any) -> Any:
        call = original(*args, **kwargs)
        del args, kwargs  # not held here while it runs: a deleting run lets go of its first plan
        result = await call
        _record(phase)
        return result

    setattr(module, name, wrapped)


def _wrap_planner(run_module: Any) -> None:
    planner_class = run_module.Planner
    original = planner_class.__call__

    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        _record("plan")
        return result

    planner_class.__call__ = call
    within = planner_class.deletions_within

    def deletions_within(self: Any, *args: Any, **kwargs: Any) -> Any:
        _record("execute: the recheck's read")  # the read after deleting kits, until its plan
        return within(self, *args, **kwargs)

    planner_class.deletions_within = deletions_within


def main() -> int:
    global _top
    p = argparse.ArgumentParser(prog="python -m bench.memprofile")
    p.add_argument("output")
    p.add_argument("--tracemalloc", action="store_true")
    p.add_argument("--top", type=int, default=int(os.environ.get("BENCH_PROFILE_TOP", "12")),
                   help="source lines listed per phase (default: $BENCH_PROFILE_TOP or 12)")
    args = p.parse_args()
    _top = args.top
    if args.tracemalloc:
        tracemalloc.start(1)
    from kitgc import cli, run

    _record("imports")
    _wrap_async(run, "scan", "registry scan")
    _wrap_async(run, "read_everywhere", "cluster read")
    _wrap_async(run, "read_before_deleting", "read before deleting")
    _wrap_async(run, "plan_again", "cluster read again (deleting run)")
    from kitgc import execute

    _wrap_async(execute, "_delete_kits", "execute: delete kits")
    _wrap_async(execute, "_still_garbage", "execute: the recheck's plan (read again after deleting kits)")
    _wrap_async(run, "execute", "execute: delete manifests")
    _wrap_planner(run)
    try:
        code = cli.main([])
    finally:
        _record("end")
        with open(args.output, "w") as fh:
            json.dump({"phases": _phases, "peak_rss_mb": max(p["peak_rss_mb"] for p in _phases)}, fh, indent=1)
    return code


if __name__ == "__main__":
    sys.exit(main())
