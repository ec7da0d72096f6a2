"""Requests in flight grow while the registry keeps up, shrink when it slows or says 429/503,
and never pass the limit; against the real registry behind a slow and a throttling proxy."""

from __future__ import annotations

import asyncio

import pytest

from kitgc.config import load
from kitgc.errors import ConfigError
from kitgc.registry.adaptive import MIN_WINDOW, AdaptiveLimit, default_ceiling
from kitgc.registry.client import RegistryClient
from kitgc.stores.distribution import DistributionStore
from testbed.faultproxy import FaultProxy
from testbed.images import image_config, push_image
from testbed.registryfaults import Fault


def window(limit: AdaptiveLimit, seconds: float, status: int = 200) -> None:
    for _ in range(max(limit.limit, MIN_WINDOW)):
        limit.observe(status, seconds)


def test_flat_latency_grows_the_limit_by_one_per_window_up_to_the_ceiling() -> None:
    limit = AdaptiveLimit(4, 7)
    for expected in (5, 6, 7, 7):
        window(limit, 0.020)
        assert limit.limit == expected
    assert limit.peak == 7 and limit.cuts == 0


def test_rising_latency_backs_off_but_never_below_the_configured_start() -> None:
    limit = AdaptiveLimit(8, 64)
    for _ in range(8):
        window(limit, 0.020)
    assert limit.limit == 16
    window(limit, 0.030)  # within FLAT? no: 1.5x the best; above SLOW? no: hold
    assert limit.limit == 16
    window(limit, 0.050)  # 2.5x the best: queueing
    assert limit.limit == 12
    for _ in range(5):
        window(limit, 0.100)
    assert limit.limit == 8  # the start, not below


def test_a_429_or_503_halves_the_limit_once_per_window_even_below_the_start() -> None:
    limit = AdaptiveLimit(16, 64)
    for _ in range(16):  # a burst: every request in flight comes back throttled
        limit.observe(429, 0.01)
    assert (limit.limit, limit.throttled, limit.cuts) == (8, 16, 1)
    for _ in range(8):
        limit.observe(503, 0.01)
    assert limit.limit == 4
    for _ in range(40):
        limit.observe(None, 30.0)  # no answer at all: the same signal
    assert limit.limit >= 1 and limit.cuts >= 3


def test_without_room_to_grow_the_limit_stays_but_still_yields_to_a_429() -> None:
    limit = AdaptiveLimit(16, 16)
    assert not limit.adaptive
    for _ in range(20):
        window(limit, 0.020)
    assert limit.limit == 16
    for _ in range(16):
        limit.observe(429, 0.01)
    assert limit.limit == 8


def test_the_default_ceiling_is_four_times_the_start_at_most_64() -> None:
    assert [default_ceiling(n) for n in (1, 4, 16, 32, 100)] == [4, 16, 64, 64, 100]


def test_concurrency_max_below_concurrency_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="CONCURRENCY_MAX: 4 is below CONCURRENCY 16"):
        load({"REGISTRY_ADDRESS": "r.example.com", "CONCURRENCY_MAX": "4"})
    assert load({"REGISTRY_ADDRESS": "r.example.com", "CONCURRENCY": "8", "CONCURRENCY_MAX": "8"}).concurrency_max == 8


def test_the_gate_never_lets_more_than_the_limit_in_flight_as_it_grows() -> None:
    async def main() -> tuple[int, list[tuple[int, int]]]:
        limit = AdaptiveLimit(2, 6)
        in_flight, seen = 0, []

        async def request() -> None:
            nonlocal in_flight
            await limit.acquire()
            in_flight += 1
            seen.append((in_flight, limit.limit))
            await asyncio.sleep(0.001)
            in_flight -= 1
            limit.observe(200, 0.001)
            limit.release()

        await asyncio.gather(*(request() for _ in range(300)))
        return limit.peak, seen

    peak, seen = asyncio.run(main())
    assert all(n <= lim for n, lim in seen)
    assert peak == 6 and max(n for n, _ in seen) == 6


def test_a_cancelled_waiter_gives_its_place_to_the_next() -> None:
    async def main() -> int:
        limit = AdaptiveLimit(1, 1)
        await limit.acquire()
        first = asyncio.create_task(limit.acquire())
        second = asyncio.create_task(limit.acquire())
        await asyncio.sleep(0)
        first.cancel()
        limit.release()
        await asyncio.wait_for(second, 1)
        return limit._in_flight

    assert asyncio.run(main()) == 1


def _scan(address: str, concurrency: int, ceiling: int) -> tuple[int, dict[str, int]]:
    async def main() -> tuple[int, dict[str, int]]:
        client = RegistryClient(address, insecure=True, concurrency=concurrency, concurrency_max=ceiling,
                                backoff=0.01, max_backoff=0.05)
        async with DistributionStore(client) as store:
            scan = await store.scan_repository("camel-k/camel-k-kit-adaptive")
            return len(scan.manifests), store.concurrency_summary()

    return asyncio.run(main())


@pytest.fixture(scope="module")
def tagged(registry_factory):  # one repository of 240 tags on 240 images
    registry = registry_factory(delete_enabled=True)
    for i in range(240):
        push_image(registry.url, "camel-k/camel-k-kit-adaptive", [f"t{i}"],
                   config=image_config(nonce=f"adaptive-{i}"))
    return registry


def test_behind_a_slow_registry_the_scan_grows_its_requests_in_flight(tagged) -> None:
    with FaultProxy(tagged.url) as proxy:
        proxy.add(Fault("slow", "HEAD", r"/v2/.*/manifests/.*", delay=0.03))
        manifests, summary = _scan(proxy.address, 2, 8)
    assert manifests == 240
    assert summary["concurrency_peak"] > 2 and summary["throttled"] == 0


def test_a_registry_answering_429_makes_the_scan_slow_down_and_still_finish(tagged) -> None:
    with FaultProxy(tagged.url) as proxy:
        proxy.add(Fault("status", "HEAD", r"/v2/.*/manifests/.*", status=429, retry_after="0", times=12))
        manifests, summary = _scan(proxy.address, 8, 32)
    assert manifests == 240  # every 429 was retried
    assert summary["throttled"] == 12 and summary["concurrency_cuts"] >= 1
    assert summary["concurrency_end"] < 32
