"""The sweep Lease: at most one run deletes at a time, and a crashed run blocks no one for long.

A CronJob with ``concurrencyPolicy: Forbid`` already avoids overlapping runs, but not a run
started by hand next to the scheduled one, nor two clusters' CronJobs sharing a namespace by
mistake. Two sweeps at once would each believe the other's deletions are still to do and the
state ConfigMap would flip between them, so every run that is about to write (delete, or
save the first-seen state) first takes the ``coordination.k8s.io/v1`` Lease
``<namespace>/camel-k-kit-gc``:

* absent: created with us as holder (a 409 means another run created it first: look again);
* held by another run whose ``renewTime + leaseDurationSeconds`` is still in the future: we
  log ``lease_held`` and raise :class:`LeaseHeld` (exit 3, nothing deleted);
* released (no holder) or expired (its holder died, e.g. SIGKILL or OOM): taken over with a
  PUT carrying the ``resourceVersion`` just read, so of two runs taking over at once exactly
  one wins (the other gets 409 and reports the lease as held).

The duration is short (``LEASE_DURATION``, 60 s by default) and a background thread renews
the Lease every third of it, so a crashed run blocks the next for at most one duration,
however long a healthy sweep takes. If a renewal fails (someone else took the Lease, or the
API server stays unreachable), :attr:`SweepLease.lost` turns true and the executor stops
after the deletions in flight: a run that cannot prove it holds the Lease does not go on.
At the end the Lease is released (holder cleared) so the next run need not wait.

Expiry is judged with this machine's clock against the holder's ``renewTime``; clocks of
nodes in one cluster agree to well under the duration.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import kubernetes
import structlog

from kitgc.errors import SafetyAbort
from kitgc.kube.http import KubeHttp, Response, TransportError

log = structlog.get_logger("kitgc.lease")

LEASE_NAME = "camel-k-kit-gc"
_GROUP_PATH = "/apis/coordination.k8s.io/v1"
_LABELS = {"app.kubernetes.io/name": "camel-k-kit-gc", "app.kubernetes.io/component": "lease"}


class LeaseHeld(SafetyAbort):
    """Another run holds the sweep Lease (or it could not be taken): this run deletes nothing."""


def holder_identity() -> str:
    """``<pod or host name>/<pid>/<random>``: unique per process, even for PID 1 in every pod."""
    host = os.environ.get("HOSTNAME") or socket.gethostname() or "unknown"
    return f"{host}/{os.getpid()}/{secrets.token_hex(3)}"


def micro_time(when: datetime) -> str:
    """Kubernetes ``MicroTime``: RFC 3339 with microseconds, in UTC."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


class SweepLease:
    """Take, renew and release the Lease ``namespace/name`` for one run."""

    def __init__(
        self,
        api_client: kubernetes.client.ApiClient,
        namespace: str,
        *,
        duration: timedelta,
        name: str = LEASE_NAME,
        holder: str | None = None,
        timeout: float = 30.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.http = KubeHttp(api_client, retries=2, backoff=0.2, timeout=timeout)
        self.namespace, self.name = namespace, name
        self.holder = holder or holder_identity()
        self.seconds = max(1, int(duration.total_seconds()))
        self._clock = clock
        self._lease: dict[str, Any] | None = None  # the Lease as last written by us
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def where(self) -> str:
        return f"Lease {self.namespace}/{self.name}"

    @property
    def lost(self) -> bool:
        """True once a renewal failed: stop deleting."""
        return self._lost.is_set()

    # --- HTTP ----------------------------------------------------------------------------

    def _path(self, named: bool = True) -> str:
        base = f"{_GROUP_PATH}/namespaces/{self.namespace}/leases"
        return f"{base}/{self.name}" if named else base

    def _request(self, method: str, body: Any = None, *, named: bool = True) -> Response:
        try:
            return self.http.request(method, self._path(named), body=body)
        except TransportError as exc:
            raise LeaseHeld(f"cannot take the {self.where}: no answer from the API server ({exc}); "
                            "deleting nothing") from None

    def _fail(self, action: str, resp: Response) -> LeaseHeld:
        return LeaseHeld(f"cannot {action} the {self.where}: {resp.status_message()}; deleting nothing")

    def _spec(self, previous: dict[str, Any] | None) -> dict[str, Any]:
        now = micro_time(self._clock())
        old = (previous or {}).get("spec") or {}
        count = old.get("leaseTransitions")
        transitions = count if isinstance(count, int) else 0
        if previous is not None and old.get("holderIdentity") not in (None, "", self.holder):
            transitions += 1
        return {"holderIdentity": self.holder, "leaseDurationSeconds": self.seconds, "acquireTime": now,
                "renewTime": now, "leaseTransitions": transitions}

    # --- acquire -------------------------------------------------------------------------

    def acquire(self) -> None:
        """Take the Lease or raise :class:`LeaseHeld`; never waits for another run."""
        for _ in range(3):  # absent -> created by another meanwhile -> read again
            resp = self._request("GET")
            if resp.status == 404:
                body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                        "metadata": {"name": self.name, "namespace": self.namespace, "labels": dict(_LABELS)},
                        "spec": self._spec(None)}
                created = self._request("POST", body, named=False)
                if created.status == 409:
                    continue
                if not created.ok:
                    raise self._fail("create", created)
                return self._took(created, None)
            if not resp.ok:
                raise self._fail("read", resp)
            current = _object(resp)
            holder, until = self._holder(current)
            if holder and holder != self.holder and until is not None and until > self._clock():
                log.warning("lease_held", lease=f"{self.namespace}/{self.name}", holder=holder,
                            expires=until.isoformat(), note="another run is sweeping; this one deletes nothing")
                raise LeaseHeld(f"another run ({holder}) holds the {self.where} until {until.isoformat()}; "
                                "deleting nothing")
            body = dict(current)
            body["spec"] = {**(current.get("spec") or {}), **self._spec(current)}
            taken = self._request("PUT", body)
            if taken.status == 409:
                log.warning("lease_held", lease=f"{self.namespace}/{self.name}", holder="(changed while taking it)",
                            note="another run took the Lease first; this one deletes nothing")
                raise LeaseHeld(f"another run took the {self.where} at the same moment; deleting nothing")
            if not taken.ok:
                raise self._fail("take", taken)
            return self._took(taken, holder if holder and holder != self.holder else None)
        raise LeaseHeld(f"cannot take the {self.where}: it keeps changing; deleting nothing")

    def _holder(self, lease: dict[str, Any]) -> tuple[str | None, datetime | None]:
        """(holder, expiry); a Lease without a parsable renew time counts as expired."""
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") if isinstance(spec.get("holderIdentity"), str) else None
        renewed = parse_time(spec.get("renewTime")) or parse_time(spec.get("acquireTime"))
        seconds = spec.get("leaseDurationSeconds")
        if renewed is None or not isinstance(seconds, int) or isinstance(seconds, bool):
            return holder, None
        return holder, renewed + timedelta(seconds=seconds)

    def _took(self, resp: Response, previous: str | None) -> None:
        self._lease = _object(resp)
        if previous:
            log.warning("lease_taken_over", lease=f"{self.namespace}/{self.name}", previous_holder=previous,
                        note="the previous holder's Lease had expired (it crashed or was killed)")
        log.info("lease_acquired", lease=f"{self.namespace}/{self.name}", holder=self.holder,
                 duration_seconds=self.seconds)

    # --- renew and release ---------------------------------------------------------------

    def renew(self) -> bool:
        """Move ``renewTime`` forward; False (and :attr:`lost`) when the Lease is no longer ours."""
        with self._lock:
            if self._lease is None or self.lost:
                return False
            body = dict(self._lease)
            body["spec"] = {**(self._lease.get("spec") or {}), "renewTime": micro_time(self._clock())}
            try:
                resp = self.http.request("PUT", self._path(), body=body)
                if not resp.ok:
                    return self._lose(resp.status_message())
                self._lease = _object(resp)
            except (TransportError, LeaseHeld) as exc:
                return self._lose(str(exc))
            return True

    def _lose(self, why: str) -> bool:
        self._lost.set()
        log.error("lease_lost", lease=f"{self.namespace}/{self.name}", error=why,
                  note="stopping after the deletions in flight")
        return False

    def start_renewing(self) -> None:
        """Renew every third of the duration in a daemon thread until :meth:`release`."""
        interval = self.seconds / 3

        def loop() -> None:
            while not self._stop.wait(interval):
                if not self.renew():
                    return

        self._thread = threading.Thread(target=loop, name="kitgc-lease", daemon=True)
        self._thread.start()

    def release(self) -> None:
        """Stop renewing and clear the holder, so the next run need not wait (best effort)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.http.timeout + 5)
        with self._lock:
            if self._lease is None or self.lost:
                return
            body = dict(self._lease)
            spec = dict(self._lease.get("spec") or {})
            spec.pop("holderIdentity", None)
            body["spec"] = {**spec, "renewTime": micro_time(self._clock())}
            self._lease = None
            try:
                resp = self.http.request("PUT", self._path(), body=body)
            except TransportError as exc:
                log.warning("lease_not_released", lease=f"{self.namespace}/{self.name}", error=str(exc),
                            note=f"the next run can take it in {self.seconds} s")
                return
        if resp.ok:
            log.info("lease_released", lease=f"{self.namespace}/{self.name}")
        else:
            log.warning("lease_not_released", lease=f"{self.namespace}/{self.name}", error=resp.status_message(),
                        note=f"the next run can take it in {self.seconds} s")


def _object(resp: Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise LeaseHeld("the API server's answer about the sweep Lease is not an object; deleting nothing")
    return body
