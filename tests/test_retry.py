"""The one retry policy shared by the registry transport and the Kubernetes client, as a table.

Each row is one question asked of :class:`RetryPolicy` and the answer expected: whether a
status is retried, how long a ``Retry-After`` makes us wait, and where the jittered backoff
falls. ``now`` is fixed so HTTP dates are exact, and delays are checked as ranges.
"""

from __future__ import annotations

import email.utils
import random

import pytest

from kitgc.retry import RetryPolicy

NOW = 1_700_000_000.0
POLICY = RetryPolicy(attempts=4, backoff=0.5, max_backoff=3.0, retry_after_cap=30.0)


def _date(offset: float) -> str:
    return email.utils.formatdate(NOW + offset, usegmt=True)


# (id, status or None, Retry-After header, failed attempt, low, high); a status row checks
# retryable(status) against low (1.0 = retried, 0.0 = not), a delay row checks low <= delay <= high.
CASES = [
    ("200", 200, None, 1, 0.0, 0.0),
    ("404", 404, None, 1, 0.0, 0.0),
    ("409 conflict is the caller's", 409, None, 1, 0.0, 0.0),
    ("429", 429, None, 1, 1.0, 1.0),
    ("500", 500, None, 1, 1.0, 1.0),
    ("501 never transient", 501, None, 1, 0.0, 0.0),
    ("502", 502, None, 1, 1.0, 1.0),
    ("503", 503, None, 1, 1.0, 1.0),
    ("504", 504, None, 1, 1.0, 1.0),
    ("505 never transient", 505, None, 1, 0.0, 0.0),
    ("507 needs a person", 507, None, 1, 0.0, 0.0),
    ("retry-after seconds", None, "2", 1, 2.0, 2.0),
    ("retry-after fractional, spaced", None, " 1.5 ", 1, 1.5, 1.5),
    ("retry-after zero", None, "0", 3, 0.0, 0.0),
    ("retry-after over the cap", None, "3600", 1, 30.0, 30.0),
    ("retry-after date ahead", None, _date(12), 1, 12.0, 12.0),
    ("retry-after date far ahead, capped", None, _date(3600), 1, 30.0, 30.0),
    ("retry-after date past means now", None, _date(-60), 1, 0.0, 0.0),
    ("retry-after garbage: backoff", None, "soon", 1, 0.25, 0.5),
    ("retry-after negative: backoff", None, "-5", 1, 0.25, 0.5),
    ("retry-after nan: backoff", None, "nan", 1, 0.25, 0.5),
    ("retry-after empty: backoff", None, "", 1, 0.25, 0.5),
    ("backoff first", None, None, 1, 0.25, 0.5),
    ("backoff doubles", None, None, 2, 0.5, 1.0),
    ("backoff doubles again", None, None, 3, 1.0, 2.0),
    ("backoff capped at max_backoff", None, None, 4, 1.5, 3.0),
    ("backoff capped, huge attempt", None, None, 10_000, 1.5, 3.0),
]


@pytest.mark.parametrize(("status", "header", "attempt", "low", "high"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_retry_policy(status: int | None, header: str | None, attempt: int, low: float, high: float) -> None:
    if status is not None:
        assert POLICY.retryable(status) is (low == 1.0)
        return
    rng = random.Random(attempt)
    delays = [POLICY.delay(attempt, header, rng=rng, now=NOW) for _ in range(200)]
    assert all(low <= d <= high for d in delays), (min(delays), max(delays))
    if low < high:  # jitter: the delays spread over the range rather than sitting on one value
        assert max(delays) - min(delays) > (high - low) / 2
