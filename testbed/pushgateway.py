"""A real Prometheus Pushgateway for tests, and a reader for what it exposes.

The push semantics we rely on (POST replaces only the metric names sent, so a failing
run leaves ``kitgc_last_success_timestamp_seconds`` alone) are the Pushgateway's, not
prometheus_client's, so they are tested against the real binary (Debian package
``prometheus-pushgateway``; ``make test`` installs it).

Use either the context manager::

    with running_pushgateway() as gw:
        ...; gw.scrape().value("kitgc_dry_run", instance="c1")

or the fixtures ``pushgateway`` (a server shared by the session, emptied before each
test) and ``pushgateway_server``: list this module in ``pytest_plugins`` of
``tests/conftest.py``, or import ``pushgateway_fixture, pushgateway_server_fixture`` into
a test module.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from testbed.servers import free_port, on_free_port, start_process, stop_process, wait_until_answers

__all__ = ["BINARY", "GATEWAY_GROUP_METRICS", "Pushgateway", "Sample", "Scrape", "free_port", "parse",
           "pushgateway_fixture", "pushgateway_server_fixture", "running_pushgateway"]

BINARY = "prometheus-pushgateway"
# Metrics the Pushgateway adds on its own for every group; not ours.
GATEWAY_GROUP_METRICS = frozenset({"push_time_seconds", "push_failure_time_seconds"})


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class Scrape:
    """One parsed ``GET /metrics`` of the Pushgateway."""

    text: str
    samples: tuple[Sample, ...]

    def select(self, name: str, **labels: str) -> list[Sample]:
        """Samples called ``name`` whose labels include ``labels``."""
        return [s for s in self.samples
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]

    def value(self, name: str, **labels: str) -> float | None:
        """The one matching sample's value, ``None`` when absent; more than one is an error."""
        found = self.select(name, **labels)
        if len(found) > 1:
            raise AssertionError(f"{len(found)} samples match {name}{labels}: {found}")
        return found[0].value if found else None

    def names(self, job: str | None = None) -> set[str]:
        """Sample names, optionally only those pushed under ``job``."""
        return {s.name for s in self.samples if job is None or s.labels.get("job") == job}


def parse(text: str) -> Scrape:
    samples = tuple(
        Sample(s.name, dict(s.labels), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    )
    return Scrape(text, samples)


@dataclass
class Pushgateway:
    """A running Pushgateway: where it listens and how to read or empty it."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path
    auth: tuple[str, str] | None = None
    admin_api: bool = True
    _client: httpx.Client = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._client = httpx.Client(base_url=self.url, auth=self.auth, timeout=5.0)

    def scrape(self) -> Scrape:
        response = self._client.get("/metrics")
        response.raise_for_status()
        return parse(response.text)

    def wipe(self) -> None:
        """Delete every group (admin API), so one test's pushes cannot leak into the next."""
        if not self.admin_api:
            raise RuntimeError("started without the admin API")
        self._client.put("/api/v1/admin/wipe").raise_for_status()

    def logs(self) -> str:
        return self.log.read_text(errors="replace")

    def close(self) -> None:
        self._client.close()


@contextmanager
def running_pushgateway(*, web_config: str | None = None, auth: tuple[str, str] | None = None,
                        admin_api: bool = True, ready_timeout: float = 10.0) -> Iterator[Pushgateway]:
    """Start ``prometheus-pushgateway`` on a free loopback port, in memory only; stop it after.

    ``web_config`` is the text of a ``--web.config.file`` (e.g. ``basic_auth_users``), with
    ``auth`` the credentials our own scrapes then use. Persistence is switched off with an
    empty ``--persistence.file`` (Debian's default writes to /var/lib).
    """
    binary = shutil.which(BINARY)
    if binary is None:
        raise RuntimeError(f"{BINARY} not found: `make test` installs the Debian package {BINARY}")
    with tempfile.TemporaryDirectory(prefix="kitgc-pushgateway-") as tmp:
        log = Path(tmp) / "pushgateway.log"
        args = [binary, "--persistence.file=", "--log.level=warn"]
        if admin_api:
            args.append("--web.enable-admin-api")
        if web_config is not None:
            config = Path(tmp) / "web.yml"
            config.write_text(web_config)
            args.append(f"--web.config.file={config}")

        def start(port: int) -> Pushgateway:
            process = start_process([*args, f"--web.listen-address=127.0.0.1:{port}"], log, stdin=None)
            gateway = Pushgateway(f"http://127.0.0.1:{port}", process, log, auth, admin_api)
            try:
                wait_until_answers(f"{gateway.url}/-/ready", timeout=ready_timeout, what=BINARY, process=process,
                                   log=log, auth=auth, accept=lambda r: r.status_code == 200, interval=0.02)
            except BaseException:
                _stop(gateway)
                raise
            return gateway

        gateway = on_free_port(start)
        try:
            yield gateway
        finally:
            _stop(gateway)


def _stop(gateway: Pushgateway) -> None:
    gateway.close()
    stop_process(gateway.process)


# Fixtures carry explicit names so a test module can import them without its parameters
# shadowing the import (ruff F811): ``from testbed.pushgateway import pushgateway_fixture``.
@pytest.fixture(scope="session", name="pushgateway_server")
def pushgateway_server_fixture() -> Iterator[Pushgateway]:
    """One Pushgateway for the whole session (starting one takes well under a second)."""
    if shutil.which(BINARY) is None:
        pytest.fail(f"{BINARY} not found: `make test` installs the Debian package {BINARY}")
    with running_pushgateway() as gateway:
        yield gateway


@pytest.fixture(name="pushgateway")
def pushgateway_fixture(pushgateway_server: Pushgateway) -> Pushgateway:
    """The session's Pushgateway, emptied before the test."""
    pushgateway_server.wipe()
    return pushgateway_server
