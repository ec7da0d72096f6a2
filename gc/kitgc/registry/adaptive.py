"""How many registry requests are in flight: CONCURRENCY to start, more while the registry keeps up.

At 20 ms round trip and 16 requests in flight, a scan of 100,000 tags waits on the network
for two minutes while the CPU idles; a fixed higher CONCURRENCY would be rude to a registry
that cannot take it. So the limit adapts to the registry's own answers, the way TCP's
congestion window does:

* **grow** by one request after each window of replies (as many replies as the limit) whose
  median latency stays within :data:`FLAT` of the best window seen: the registry is keeping
  up, so one more request in flight costs it nothing noticeable;
* **back off** to three quarters (never below the configured start) when a window's median
  latency passes :data:`SLOW` times the best: requests are queueing somewhere (the registry,
  a proxy, or this process's own CPU);
* **halve** on ``429 Too Many Requests`` or ``503 Service Unavailable`` (down to 1, below the
  start if need be: the registry said so), at most once per window, since every request in
  flight at that moment may bring the same answer.

The limit never exceeds CONCURRENCY_MAX (default four times CONCURRENCY, at most 64), and
CONCURRENCY_MAX=CONCURRENCY turns adaptation off. :class:`AdaptiveLimit` is the policy,
plain and synchronous, and the gate that holds requests back (``acquire``/``release``).
"""

from __future__ import annotations

import asyncio
import statistics
from collections import deque

FLAT = 1.25  # a window this close to the best median latency counts as flat
SLOW = 2.0  # a window this far above the best means requests are queueing
THROTTLED = frozenset({429, 503})
MIN_WINDOW = 8  # replies per window at least, so one slow reply does not decide


def default_ceiling(start: int) -> int:
    """CONCURRENCY_MAX when not set: four times CONCURRENCY, at most 64 (never below CONCURRENCY)."""
    return max(start, min(4 * start, 64))


class AdaptiveLimit:
    """The limit on requests in flight, moved by the replies' statuses and latencies."""

    def __init__(self, start: int, ceiling: int | None = None) -> None:
        self.start = max(1, start)
        self.ceiling = max(self.start, ceiling if ceiling is not None else default_ceiling(self.start))
        self.limit = self.start
        self.peak = self.start
        self.throttled = 0  # 429/503 answers seen
        self.cuts = 0  # times the limit was lowered
        self._best: float | None = None
        self._window: list[float] = []
        # One cut per window: after a cut, the requests that were in flight then (the old
        # limit) may all bring the same answer, and only the next ones tell something new.
        self._since_cut = 0
        self._cut_window = 0
        self._in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def adaptive(self) -> bool:
        return self.ceiling > self.start

    # --- the policy ------------------------------------------------------------------

    def observe(self, status: int | None, seconds: float) -> None:
        """One reply (``status`` None: no answer at all, a timeout or a reset) and its latency."""
        self._since_cut += 1
        if status is None or status in THROTTLED:
            if status is not None:
                self.throttled += 1
            if self._since_cut > self._cut_window:
                self._set(max(1, self.limit // 2))
            self._window.clear()
            return
        if not self.adaptive:
            return
        self._window.append(seconds)
        if len(self._window) < max(self.limit, MIN_WINDOW):
            return
        median = statistics.median(self._window)
        self._window.clear()
        if self._best is None or median < self._best:
            self._best = median
        if median <= FLAT * self._best:
            if self.limit < self.ceiling:
                self.limit += 1
                self.peak = max(self.peak, self.limit)
                self._wake()
        elif median > SLOW * self._best and self.limit > self.start:
            self._set(max(self.start, self.limit * 3 // 4))

    def _set(self, limit: int) -> None:
        if limit < self.limit:
            self.cuts += 1
            self._since_cut, self._cut_window = 0, self.limit
        self.limit = limit

    # --- the gate --------------------------------------------------------------------

    async def acquire(self) -> None:
        """Wait until fewer than ``limit`` requests are in flight, then count this one in."""
        while self._in_flight >= self.limit:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                self._wake()  # pass on a wake-up this cancelled waiter may have taken
                raise
        self._in_flight += 1

    def release(self) -> None:
        self._in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        """Wake as many waiters as there is room for (each re-checks the limit)."""
        room = self.limit - self._in_flight
        while room > 0 and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                room -= 1

    def summary(self) -> dict[str, int]:
        return {"concurrency_start": self.start, "concurrency_max": self.ceiling, "concurrency_peak": self.peak,
                "concurrency_end": self.limit, "throttled": self.throttled, "concurrency_cuts": self.cuts}
