"""When a sweep stops early: SIGTERM (what Kubernetes sends), or the sweep Lease lost."""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

import structlog

from kitgc.lease import SweepLease


class StopRequest:
    """Set by SIGTERM; the sweep stops cleanly after the deletions in flight."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self) -> bool:
        return self.requested

    def handle(self, signum: int, _frame: Any) -> None:
        self.requested = True
        structlog.get_logger("kitgc").warning("stop_requested", signal=signal.Signals(signum).name)


class Stop:
    """Whether to stop deleting now; remembers why, for the exit code and the summary."""

    def __init__(self, requested: Callable[[], bool], lease: SweepLease) -> None:
        self._requested, self._lease = requested, lease
        self.why = ""

    def __call__(self) -> bool:
        if not self.why:
            if self._requested():
                self.why = "stop requested (SIGTERM)"
            elif self._lease.lost:
                self.why = "the sweep Lease was lost"
        return bool(self.why)
