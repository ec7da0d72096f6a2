"""SweepLease against the emulated Kubernetes API: who may sweep, and when a run must stop.

The end-to-end runs (test_concurrency.py) show two runs racing, a killed run's Lease
expiring and a stolen Lease stopping a sweep; here each rule of the Lease is pinned alone,
with a hand-driven clock.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from kitgc.errors import EXIT_ABORT
from kitgc.lease import LEASE_NAME, LeaseHeld, SweepLease, micro_time
from testbed.kube_fixtures import KubeHandle

NS = "kitgc"
PATH = f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(seconds=60)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def lease(kube: KubeHandle, holder: str, clock: Clock, duration: timedelta = MINUTE) -> SweepLease:
    return SweepLease(kube.client(), NS, duration=duration, holder=holder, clock=clock)


def stored(kube: KubeHandle) -> dict[str, Any]:
    store = kube.api.store
    return store.get(store.resource_for("coordination.k8s.io/v1", "Lease"), NS, LEASE_NAME)


def overwrite_spec(kube: KubeHandle, **spec: Any) -> None:
    """Someone else writes the Lease (another run, or a person with kubectl)."""
    store = kube.api.store
    res = store.resource_for("coordination.k8s.io/v1", "Lease")
    current = stored(kube)
    store.update(res, NS, LEASE_NAME, {**current, "metadata": {**current["metadata"], "resourceVersion": None},
                                       "spec": {**current["spec"], **spec}})


def test_absent_lease_is_created_with_us_as_holder(kube: KubeHandle) -> None:
    with capture_logs() as logs:
        lease(kube, "run-a", Clock()).acquire()
    spec = stored(kube)["spec"]
    assert spec["holderIdentity"] == "run-a"
    assert spec["leaseDurationSeconds"] == 60
    assert spec["renewTime"] == spec["acquireTime"] == micro_time(T0)
    assert spec["leaseTransitions"] == 0
    assert stored(kube)["metadata"]["labels"]["app.kubernetes.io/name"] == "camel-k-kit-gc"
    assert [(w.method, w.path) for w in kube.writes()] == [("POST", PATH)]
    assert [e["event"] for e in logs] == ["lease_acquired"]


@pytest.mark.parametrize("later", [timedelta(0), timedelta(seconds=59)])
def test_fresh_lease_of_another_run_refuses_with_a_safety_abort(kube: KubeHandle, later: timedelta) -> None:
    lease(kube, "run-a", Clock()).acquire()
    with capture_logs() as logs, pytest.raises(LeaseHeld) as raised:
        lease(kube, "run-b", Clock(T0 + later)).acquire()
    assert raised.value.exit_code == EXIT_ABORT
    assert "run-a" in str(raised.value) and "deleting nothing" in str(raised.value)
    assert [(e["event"], e["holder"]) for e in logs] == [("lease_held", "run-a")]
    assert stored(kube)["spec"]["holderIdentity"] == "run-a"
    assert [w.method for w in kube.writes()] == ["POST"], "the refused run wrote nothing"


@pytest.mark.parametrize("later", [MINUTE, MINUTE + timedelta(hours=1)])
def test_expired_lease_is_taken_over_and_the_transition_counted(kube: KubeHandle, later: timedelta) -> None:
    lease(kube, "run-a", Clock()).acquire()
    with capture_logs() as logs:
        lease(kube, "run-b", Clock(T0 + later)).acquire()
    spec = stored(kube)["spec"]
    assert (spec["holderIdentity"], spec["leaseTransitions"]) == ("run-b", 1)
    assert spec["renewTime"] == micro_time(T0 + later)
    taken = [e for e in logs if e["event"] == "lease_taken_over"]
    assert [e["previous_holder"] for e in taken] == ["run-a"]
    assert [(w.method, w.status) for w in kube.writes()] == [("POST", 201), ("PUT", 200)]


def test_lease_without_a_readable_renew_time_counts_as_expired(kube: KubeHandle) -> None:
    lease(kube, "run-a", Clock()).acquire()
    overwrite_spec(kube, renewTime="yesterday", acquireTime=None)
    lease(kube, "run-b", Clock()).acquire()
    assert stored(kube)["spec"]["holderIdentity"] == "run-b"


def test_released_lease_is_taken_at_once_without_a_take_over(kube: KubeHandle) -> None:
    first = lease(kube, "run-a", Clock())
    first.acquire()
    first.release()
    with capture_logs() as logs:
        lease(kube, "run-b", Clock()).acquire()
    assert stored(kube)["spec"]["holderIdentity"] == "run-b"
    assert "lease_taken_over" not in [e["event"] for e in logs]


def test_lease_created_by_another_run_meanwhile_is_read_again_and_refused(kube: KubeHandle) -> None:
    created: list[str] = []

    def rival_first(method: str, path: str, query: dict[str, str]) -> None:
        if method == "POST" and path == PATH and not created:
            created.append("run-a")
            kube.add({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                      "metadata": {"name": LEASE_NAME, "namespace": NS},
                      "spec": {"holderIdentity": "run-a", "leaseDurationSeconds": 60, "renewTime": micro_time(T0)}})

    kube.api.on_request(rival_first)
    with pytest.raises(LeaseHeld, match="run-a"):
        lease(kube, "run-b", Clock()).acquire()
    assert [(r.method, r.status) for r in kube.requests] == [("GET", 404), ("POST", 409), ("GET", 200)]


def test_take_over_that_loses_the_race_is_refused(kube: KubeHandle) -> None:
    lease(kube, "run-a", Clock()).acquire()

    def rival_takes_it(method: str, path: str, query: dict[str, str]) -> None:
        if method == "PUT" and stored(kube)["spec"]["holderIdentity"] == "run-a":
            overwrite_spec(kube, holderIdentity="run-c", renewTime=micro_time(T0 + 2 * MINUTE))

    kube.api.on_request(rival_takes_it)
    with pytest.raises(LeaseHeld, match="at the same moment"):
        lease(kube, "run-b", Clock(T0 + 2 * MINUTE)).acquire()
    assert stored(kube)["spec"]["holderIdentity"] == "run-c"


def test_renew_moves_the_renew_time_forward(kube: KubeHandle) -> None:
    clock = Clock()
    ours = lease(kube, "run-a", clock)
    ours.acquire()
    clock.now = T0 + timedelta(seconds=20)
    assert ours.renew() is True
    spec = stored(kube)["spec"]
    assert spec["renewTime"] == micro_time(T0 + timedelta(seconds=20))
    assert spec["acquireTime"] == micro_time(T0) and spec["holderIdentity"] == "run-a"
    assert not ours.lost
    with pytest.raises(LeaseHeld):  # held until renewTime + duration, not acquireTime + duration
        lease(kube, "run-b", Clock(T0 + timedelta(seconds=70))).acquire()


def test_renewal_thread_keeps_the_lease_fresh_until_release(kube: KubeHandle) -> None:
    ours = SweepLease(kube.client(), NS, duration=timedelta(seconds=1), holder="run-a")
    ours.acquire()
    first = stored(kube)["spec"]["renewTime"]
    ours.start_renewing()
    deadline = time.monotonic() + 5
    while stored(kube)["spec"]["renewTime"] == first and time.monotonic() < deadline:
        time.sleep(0.05)
    started = time.monotonic()
    ours.release()
    assert time.monotonic() - started < 3, "release stops the renewing thread at once"
    assert stored(kube)["spec"]["renewTime"] > first
    assert "holderIdentity" not in stored(kube)["spec"]
    puts = len([w for w in kube.writes() if w.method == "PUT"])
    time.sleep(0.5)
    assert len([w for w in kube.writes() if w.method == "PUT"]) == puts, "no renewal after release"


def test_lease_taken_by_someone_else_is_flagged_lost_and_not_released(kube: KubeHandle) -> None:
    clock = Clock()
    ours = lease(kube, "run-a", clock)
    ours.acquire()
    overwrite_spec(kube, holderIdentity="someone-else")
    clock.now = T0 + timedelta(seconds=20)
    with capture_logs() as logs:
        assert ours.renew() is False
    assert ours.lost
    assert [e["event"] for e in logs] == ["lease_lost"]
    writes = len(kube.writes())
    assert ours.renew() is False, "once lost, never renewed again"
    ours.release()
    assert len(kube.writes()) == writes
    assert stored(kube)["spec"]["holderIdentity"] == "someone-else"


def test_renewal_refused_by_the_api_server_flags_the_lease_lost(kube: KubeHandle) -> None:
    ours = lease(kube, "run-a", Clock())
    ours.acquire()
    kube.inject("PUT", f"{PATH}/{LEASE_NAME}", status=403)
    assert ours.renew() is False
    assert ours.lost


def test_release_clears_only_our_own_holder(kube: KubeHandle) -> None:
    clock = Clock()
    ours = lease(kube, "run-a", clock)
    ours.acquire()
    clock.now = T0 + timedelta(seconds=5)
    with capture_logs() as logs:
        ours.release()
    spec = stored(kube)["spec"]
    assert "holderIdentity" not in spec and spec["renewTime"] == micro_time(T0 + timedelta(seconds=5))
    assert [e["event"] for e in logs] == ["lease_released"]
    writes = len(kube.writes())
    ours.release()  # a second release, and one of a lease never taken, write nothing
    lease(kube, "run-b", clock).release()
    assert len(kube.writes()) == writes
