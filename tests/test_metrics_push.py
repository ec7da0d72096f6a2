"""push_metrics against the real Pushgateway: values, outcomes, the success-time rule, auth, failures."""

from __future__ import annotations

import base64
import http.server
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest
import structlog
from prometheus_client.exposition import generate_latest

from kitgc.config import Settings
from kitgc.metrics import GAUGES, JOB, OUTCOMES, build_registry, push_config_error, push_metrics
from kitgc.outcome import RunSummary
from testbed.pushgateway import (  # noqa: F401  (fixtures)
    GATEWAY_GROUP_METRICS,
    Pushgateway,
    free_port,
    pushgateway_fixture,
    pushgateway_server_fixture,
    running_pushgateway,
)

VERSION = "1.2.3"
SUCCESS = RunSummary(
    outcome="success", exit_code=0, dry_run=False, started_at=1_700_000_000.0, duration_seconds=42.5,
    repositories_scanned=3, manifests_scanned=40, manifests_referenced=25, manifests_eligible=12,
    manifests_deferred=2, manifests_deleted=10, kits_deleted=4, kits_eligible=5, delete_failures=0,
    bytes_reclaimable=123_456_789, registry_errors=1, deletion_disabled=False, attachments_scanned=6,
    attachments_deleted=3, clusters_read=2, unowned_repositories=7, repositories_deleted=5, manifests_immutable=8,
)
# Gauge -> value the SUCCESS summary must produce.
EXPECTED = {
    "kitgc_repositories_scanned": 3, "kitgc_manifests_scanned": 40, "kitgc_manifests_referenced": 25,
    "kitgc_manifests_eligible": 12, "kitgc_manifests_deferred": 2, "kitgc_manifests_deleted": 10,
    "kitgc_kits_eligible": 5, "kitgc_kits_deleted": 4, "kitgc_delete_failures": 0, "kitgc_registry_errors": 1,
    "kitgc_bytes_reclaimable": 123_456_789, "kitgc_dry_run": 0, "kitgc_registry_deletion_disabled": 0,
    "kitgc_run_duration_seconds": 42.5, "kitgc_last_run_timestamp_seconds": 1_700_000_042.5,
    "kitgc_last_success_timestamp_seconds": 1_700_000_042.5,
    "kitgc_attachments_scanned": 6, "kitgc_attachments_deleted": 3, "kitgc_clusters_read": 2,
    "kitgc_unowned_repositories": 7, "kitgc_repositories_deleted": 5, "kitgc_manifests_immutable": 8,
}
# bcrypt of "s3cret!" (cost 4), as `htpasswd -nbB -C 4` prints it.
BCRYPT_S3CRET = "$2y$04$3c4ZGrhU8SG1VyhOHaDgZe58mqO6SH/xZeigawje/QLCkLofQuNPa"


def settings_for(url: str, cluster: str = "c1", **kw: str) -> Settings:
    return Settings(pushgateway_url=url, cluster_name=cluster, **kw)  # type: ignore[arg-type]


def outcomes(gw: Pushgateway, instance: str = "c1") -> dict[str, float | None]:
    scrape = gw.scrape()
    return {o: scrape.value("kitgc_run_outcome", instance=instance, outcome=o) for o in OUTCOMES}


def test_success_run_pushes_every_gauge_with_its_value(pushgateway: Pushgateway) -> None:
    assert push_metrics(SUCCESS, settings_for(pushgateway.url), version=VERSION) is True
    scrape = pushgateway.scrape()
    assert set(EXPECTED) == set(GAUGES)
    for name, value in EXPECTED.items():
        assert scrape.value(name, job=JOB, instance="c1") == value, name
    assert outcomes(pushgateway) == {"success": 1, "partial": 0, "aborted": 0, "config_error": 0}
    assert scrape.value("kitgc_build_info", job=JOB, instance="c1", version=VERSION) == 1


def test_dry_run_reports_nothing_deleted_and_sets_the_dry_run_flag(pushgateway: Pushgateway) -> None:
    # Even a summary that (wrongly) counts deletions must not show any in a dry run.
    dry = replace(SUCCESS, dry_run=True)
    assert push_metrics(dry, settings_for(pushgateway.url), version=VERSION)
    scrape = pushgateway.scrape()
    assert scrape.value("kitgc_manifests_deleted", instance="c1") == 0
    assert scrape.value("kitgc_dry_run", instance="c1") == 1
    assert scrape.value("kitgc_manifests_eligible", instance="c1") == 12
    assert scrape.value("kitgc_last_success_timestamp_seconds", instance="c1") == 1_700_000_042.5


@pytest.mark.parametrize(("outcome", "exit_code"), [("partial", 1), ("aborted", 3), ("config_error", 2)])
def test_failing_run_leaves_the_previous_success_time_and_switches_the_outcome(
    pushgateway: Pushgateway, outcome: str, exit_code: int
) -> None:
    assert push_metrics(SUCCESS, settings_for(pushgateway.url), version=VERSION)
    failing = replace(SUCCESS, outcome=outcome, exit_code=exit_code, started_at=1_700_086_400.0,
                      duration_seconds=5.0, manifests_deleted=0, delete_failures=7)
    assert push_metrics(failing, settings_for(pushgateway.url), version=VERSION)
    scrape = pushgateway.scrape()
    assert scrape.value("kitgc_last_success_timestamp_seconds", instance="c1") == 1_700_000_042.5
    assert scrape.value("kitgc_last_run_timestamp_seconds", instance="c1") == 1_700_086_405.0
    assert scrape.value("kitgc_delete_failures", instance="c1") == 7
    assert outcomes(pushgateway) == {o: (1 if o == outcome else 0) for o in OUTCOMES}


def test_next_success_moves_the_success_time_forward(pushgateway: Pushgateway) -> None:
    later = replace(SUCCESS, started_at=1_700_172_800.0)
    for summary in (SUCCESS, replace(SUCCESS, outcome="aborted", exit_code=3), later):
        assert push_metrics(summary, settings_for(pushgateway.url), version=VERSION)
    assert pushgateway.scrape().value("kitgc_last_success_timestamp_seconds", instance="c1") == 1_700_172_842.5


def test_first_run_failing_pushes_no_success_time_at_all(pushgateway: Pushgateway) -> None:
    # KitGCNeverSucceeded relies on the series being absent, not 0.
    aborted = replace(SUCCESS, outcome="aborted", exit_code=3)
    assert push_metrics(aborted, settings_for(pushgateway.url), version=VERSION)
    scrape = pushgateway.scrape()
    assert scrape.value("kitgc_last_success_timestamp_seconds", instance="c1") is None
    assert scrape.value("kitgc_last_run_timestamp_seconds", instance="c1") == 1_700_000_042.5


def test_new_version_replaces_the_build_info_series(pushgateway: Pushgateway) -> None:
    push_metrics(SUCCESS, settings_for(pushgateway.url), version="1.0.0")
    push_metrics(SUCCESS, settings_for(pushgateway.url), version="1.1.0")
    series = pushgateway.scrape().select("kitgc_build_info", instance="c1")
    assert [s.labels["version"] for s in series] == ["1.1.0"]


def test_clusters_sharing_a_pushgateway_keep_separate_groups(pushgateway: Pushgateway) -> None:
    push_metrics(SUCCESS, settings_for(pushgateway.url, "prod/eu-1"), version=VERSION)
    push_metrics(replace(SUCCESS, manifests_scanned=7), settings_for(pushgateway.url, "staging"),
                 version=VERSION)
    scrape = pushgateway.scrape()
    assert scrape.value("kitgc_manifests_scanned", instance="prod/eu-1") == 40
    assert scrape.value("kitgc_manifests_scanned", instance="staging") == 7


def test_no_created_series_is_pushed(pushgateway: Pushgateway) -> None:
    assert b"_created" not in generate_latest(build_registry(SUCCESS, version=VERSION))
    push_metrics(SUCCESS, settings_for(pushgateway.url), version=VERSION)
    ours = pushgateway.scrape().names(job=JOB) - GATEWAY_GROUP_METRICS
    assert ours == set(GAUGES) | {"kitgc_run_outcome", "kitgc_build_info"}


def test_without_a_url_nothing_is_pushed() -> None:
    with structlog.testing.capture_logs() as logs:
        assert push_metrics(SUCCESS, Settings(), version=VERSION) is False
    assert logs == []


# --- runs whose settings could not be parsed ------------------------------------------------


def test_config_error_push_reads_the_environment_leniently(pushgateway: Pushgateway) -> None:
    push_metrics(SUCCESS, settings_for(pushgateway.url, "prod"), version=VERSION)
    env = {"PUSHGATEWAY_URL": pushgateway.url + "/", "CLUSTER_NAME": "prod", "MIN_AGE": "soon",
           "DRY_RUN": "maybe"}
    assert push_config_error(env, version=VERSION, started_at=1_700_090_000.0, duration_seconds=0.25)
    scrape = pushgateway.scrape()
    assert outcomes(pushgateway, "prod") == {o: (1 if o == "config_error" else 0) for o in OUTCOMES}
    assert scrape.value("kitgc_last_run_timestamp_seconds", instance="prod") == 1_700_090_000.25
    assert scrape.value("kitgc_last_success_timestamp_seconds", instance="prod") == 1_700_000_042.5
    assert scrape.value("kitgc_manifests_scanned", instance="prod") == 0
    assert scrape.value("kitgc_dry_run", instance="prod") == 1


@pytest.mark.parametrize("url", [None, "", "   ", "ftp://gateway", "not a url"])
def test_config_error_push_is_skipped_silently_without_a_usable_url(url: str | None) -> None:
    env = {} if url is None else {"PUSHGATEWAY_URL": url}
    with structlog.testing.capture_logs() as logs:
        assert push_config_error(env, version=VERSION) is False
    assert logs == []


# --- failures never raise -------------------------------------------------------------------


def test_unreachable_pushgateway_returns_false_quickly_with_a_warning() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    with structlog.testing.capture_logs() as logs:
        assert push_metrics(SUCCESS, settings_for(url), version=VERSION, timeout=5) is False
    assert time.monotonic() - started < 2
    assert [(e["event"], e["log_level"], e["url"]) for e in logs] == [("metrics_push_failed", "warning", url)]
    assert "refused" in logs[0]["error"].lower()


@contextmanager
def loopback(respond: Callable[[http.server.BaseHTTPRequestHandler], None]) -> Iterator[tuple[str, list]]:
    """A tiny HTTP server; ``respond`` handles every request, which is recorded."""
    seen: list[tuple[str, str, dict[str, str], bytes]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def _any(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append((self.command, self.path, dict(self.headers), body))
            respond(self)

        do_POST = do_PUT = do_GET = _any

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def answer(status: int) -> Callable[[http.server.BaseHTTPRequestHandler], None]:
    def respond(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return respond


def test_error_answer_returns_false_with_a_warning() -> None:
    with loopback(answer(500)) as (url, seen), structlog.testing.capture_logs() as logs:
        assert push_metrics(SUCCESS, settings_for(url), version=VERSION) is False
    assert len(seen) == 1
    assert logs[0]["event"] == "metrics_push_failed"
    assert "500" in logs[0]["error"]


def test_silent_pushgateway_is_abandoned_after_the_timeout() -> None:
    release = threading.Event()

    def hang(handler: http.server.BaseHTTPRequestHandler) -> None:
        release.wait(10)

    with loopback(hang) as (url, _seen):
        started = time.monotonic()
        with structlog.testing.capture_logs() as logs:
            assert push_metrics(SUCCESS, settings_for(url), version=VERSION, timeout=0.5) is False
        elapsed = time.monotonic() - started
        release.set()
    assert 0.4 < elapsed < 1.5
    assert logs[0]["event"] == "metrics_push_failed"


def test_pushes_with_post_to_the_job_and_instance_group_with_basic_auth() -> None:
    settings = settings_for("", "prod", pushgateway_username="kitgc", pushgateway_password="s3cret!")
    with loopback(answer(200)) as (url, seen):
        assert push_metrics(SUCCESS, replace(settings, pushgateway_url=url), version=VERSION)
    (method, path, headers, body) = seen[0]
    assert (method, path) == ("POST", f"/metrics/job/{JOB}/instance/prod")
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"kitgc:s3cret!").decode()
    assert b"kitgc_manifests_scanned 40.0" in body


def test_no_authorization_header_without_a_username() -> None:
    with loopback(answer(200)) as (url, seen):
        assert push_metrics(SUCCESS, settings_for(url), version=VERSION)
    assert "Authorization" not in seen[0][2]


def test_basic_auth_is_accepted_by_a_protected_pushgateway_and_the_password_never_logged() -> None:
    web_config = f'basic_auth_users:\n  kitgc: "{BCRYPT_S3CRET}"\n'
    with running_pushgateway(web_config=web_config, auth=("kitgc", "s3cret!")) as gw:
        good = settings_for(gw.url, pushgateway_username="kitgc", pushgateway_password="s3cret!")
        assert push_metrics(SUCCESS, good, version=VERSION)
        assert gw.scrape().value("kitgc_manifests_scanned", instance="c1") == 40

        wrong = replace(good, pushgateway_password="wrong-pass")
        with structlog.testing.capture_logs() as logs:
            assert push_metrics(SUCCESS, wrong, version=VERSION) is False
    assert "401" in logs[0]["error"]
    assert "wrong-pass" not in repr(logs)


def test_credentials_in_the_url_are_not_logged() -> None:
    url = f"http://kitgc:hunter2@127.0.0.1:{free_port()}"
    with structlog.testing.capture_logs() as logs:
        assert push_metrics(SUCCESS, settings_for(url), version=VERSION) is False
    assert "hunter2" not in repr(logs)
    assert logs[0]["url"].startswith("http://127.0.0.1:")
