"""One retry policy for every HTTP peer: the container registry and the Kubernetes API.

The registry transport and the Kubernetes client used to decide separately what is worth
another attempt and how long to wait, and disagreed (a 507 retried on one side, an HTTP-date
``Retry-After`` ignored on the other). The rules live here once, as pure functions of their
inputs, so both sides behave alike and a table test can pin them down.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from dataclasses import dataclass

# Why exactly these: 429 is the server asking us to slow down (registry rate limits,
# Kubernetes priority and fairness), usually with Retry-After. 500, 502, 503 and 504 are the
# statuses a proxy, a load balancer or a restarting server give for a moment and a later
# attempt commonly cures. Every other 5xx describes the request or the server's set-up, not
# a moment: 501 Not Implemented and 505 HTTP Version Not Supported answer the same way every
# time; 507 Insufficient Storage, 508 Loop Detected, 510 and 511 need a person, and retrying
# them only repeats a request (possibly a DELETE) against a server already in trouble.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value, or None when it is unusable.

    RFC 9110 allows delta-seconds or an HTTP-date. A date already past means "now" (0). A
    negative, infinite or NaN number is not delta-seconds: it is treated like garbage (None),
    so the caller falls back to its own backoff instead of retrying at once. ``now`` (epoch
    seconds) is for tests; the wall clock otherwise, since the date is the server's wall clock.
    """
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts, and how long to wait between them.

    ``attempts`` counts every try, the first included (at least one is always made).
    ``backoff`` is the delay after the first failure, doubled after each further one up to
    ``max_backoff``, then jittered down to half so that many clients failing together do not
    come back together. A server's ``Retry-After`` replaces the backoff, but never beyond
    ``retry_after_cap``: a registry asking for an hour must not stall a run for an hour.
    """

    attempts: int = 4
    backoff: float = 0.5
    max_backoff: float = 10.0
    retry_after_cap: float = 30.0

    def retryable(self, status: int) -> bool:
        """True when an answer with ``status`` is worth another attempt (see RETRYABLE_STATUSES)."""
        return status in RETRYABLE_STATUSES

    def may_retry(self, attempt: int) -> bool:
        """True when attempt number ``attempt`` (1-based) that just failed may be followed by another."""
        return attempt < max(1, self.attempts)

    def delay(self, attempt: int, retry_after_header: str | None = None, *,
              rng: random.Random | None = None, now: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based).

        The server's ``Retry-After`` when usable, capped; otherwise exponential backoff with
        jitter in ``[0.5, 1.0]`` of the step. ``rng`` and ``now`` make it deterministic in tests.
        """
        told = retry_after_seconds(retry_after_header, now)
        if told is not None:
            return min(told, self.retry_after_cap)
        step = min(self.max_backoff, self.backoff * 2 ** min(max(0, attempt - 1), 64))  # no float overflow
        return step * (rng or random).uniform(0.5, 1.0)
