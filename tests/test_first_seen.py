"""A plan's first-seen times: held as (manifest, time) pairs, read as the state's keyed map."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime, timedelta

from kitgc.model import FirstSeen, state_key
from testbed.planfactory import manifest

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def test_first_seen_reads_as_the_dict_built_in_turn_a_later_pair_of_one_key_winning() -> None:
    a, b = manifest("org/camel-k-kit-a", 1), manifest("org/camel-k-kit-b", 2)
    twin = manifest("org/camel-k-kit-a", 1)  # the same state key again
    pairs = [(a, T0), (b, T0 + timedelta(hours=1)), (twin, T0 + timedelta(hours=2))]
    expected = {}
    for m, t in pairs:
        expected[state_key(m.repository, m.digest)] = t
    seen = FirstSeen(list(pairs))
    assert seen == expected and expected == seen
    assert list(seen) == list(expected) and len(seen) == 2
    assert seen[state_key(a.repository, a.digest)] == T0 + timedelta(hours=2)
    assert seen.get("org/camel-k-kit-c@sha256:0") is None


def test_first_seen_makes_its_keys_only_when_read() -> None:
    """The keys (a string each) were 12 MB of a 100,000-manifest deleting run's sweep."""
    pairs = [(manifest(f"org/camel-k-kit-{i % 500}", i), T0) for i in range(20_000)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        seen = FirstSeen(pairs)
        held = tracemalloc.get_traced_memory()[0] - before
        assert len(seen) == 20_000
        read = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < 10_000, f"{held} bytes held before any key was read"
    assert read > 1_000_000, "reading it makes the keys"
