"""The demo scene end to end, and ``make demo`` itself.

The scene (demo/scene.yaml) says for every image and every IntegrationKit whether it must
stay or go. Here it is pushed to a fresh real registry and served by the emulated API, and
``kitgc`` runs through its entry point as the demo runs it: a dry run that must change
nothing, a real run that must leave exactly the annotated survivors, and a second run that
must find nothing more to do. Then ``python -m demo`` runs as a newcomer would, including
being interrupted.
"""

from __future__ import annotations

import io
import json
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from demo import scene as scenes
from demo.main import kitgc_env

from kitgc.cli import main
from testbed.kube_fixtures import KubeHandle
from testbed.pushgateway import Pushgateway

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Demo:
    scene: scenes.Scene
    built: scenes.Built
    kube: KubeHandle
    registry_url: str
    http: httpx.Client
    env: dict[str, str]

    def run(self, *argv: str, **env: str) -> tuple[int, str]:
        out = io.StringIO()
        with redirect_stdout(out):
            code = main(list(argv), {**self.env, **env})
        return code, out.getvalue()

    def kits_present(self) -> set[tuple[str, str]]:
        store = self.kube.api.store
        res = store.resource_for("camel.apache.org/v1", "IntegrationKit")
        return {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in store.objects(res)}

    def problems(self, *, dry_run: bool) -> list[str]:
        return scenes.check(self.built, self.http, self.registry_url, self.kits_present(), dry_run=dry_run)


def _events(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def _summary(output: str) -> dict[str, Any]:
    (found,) = [e for e in _events(output) if e.get("event") == "summary"]
    return found


@pytest.fixture
def demo(registry_factory, kube: KubeHandle, pushgateway: Pushgateway) -> Iterator[Demo]:
    kube.serve("serving.knative.dev")
    registry = registry_factory(delete_enabled=True)  # its own: the scene's organizations must be alone
    scene = scenes.load()
    with httpx.Client(timeout=30) as http:
        built = scenes.build(scene, registry_url=registry.url, address=registry.address, client=http,
                             now=datetime.now(UTC))
        kube.add(*built.objects)
        env = kitgc_env(scene, kube.kubeconfig, pushgateway.url, LOG_FORMAT="json", LOG_LEVEL="info")
        yield Demo(scene, built, kube, registry.url, http, env)


def test_scene_file_annotates_every_image_and_kit() -> None:
    scene = scenes.load()
    assert len(scene.kits) >= 25
    assert {k.type for k in scene.kits} >= {"platform", "user", "external"}
    assert any(k.phase == "Build Running" for k in scene.kits)
    assert {i.runs_as for i in scene.integrations} >= {"deployment", "cronjob", "knative"}
    assert len({scene.organization(p["namespace"]) for p in scene.platforms}) == 2


def test_dry_run_of_the_scene_changes_nothing_and_announces_the_annotated_deletions(demo: Demo) -> None:
    code, output = demo.run(DRY_RUN="true")

    assert code == 0, output[-2000:]
    assert demo.problems(dry_run=True) == []
    assert demo.kube.writes() == []
    going = [p for p in demo.built.images if p.expect == scenes.DELETE]
    summary = _summary(output)
    assert summary["manifests_eligible"] == len(going)
    assert summary["kits_eligible"] == sum(1 for k in demo.scene.kits if k.expect == scenes.DELETE)
    would = {(e["repository"], tuple(e["tags"])) for e in _events(output) if e.get("event") == "would_delete"}
    assert would == {(p.repository, (p.tag,)) for p in going}


def test_real_run_leaves_exactly_the_annotated_survivors_and_never_touches_other_repositories(
    demo: Demo, pushgateway: Pushgateway
) -> None:
    before = {p.repository: sorted(demo.http.get(f"{demo.registry_url}/v2/{p.repository}/tags/list")
                                   .json()["tags"]) for p in demo.built.images if not p.in_scope}

    code, output = demo.run(DRY_RUN="false")

    assert code == 0, output[-2000:]
    assert demo.problems(dry_run=False) == []
    after = {repo: sorted(demo.http.get(f"{demo.registry_url}/v2/{repo}/tags/list").json()["tags"])
             for repo in before}
    assert after == before  # the non-kit repositories, tag for tag
    deleted = sum(1 for p in demo.built.images if p.expect == scenes.DELETE)
    scrape = pushgateway.scrape()
    assert scrape.value("kitgc_manifests_deleted", job="camel-k-kit-gc", instance="demo") == deleted
    assert scrape.value("kitgc_kits_deleted", job="camel-k-kit-gc", instance="demo") == sum(
        1 for k in demo.scene.kits if k.expect == scenes.DELETE)


def test_second_real_run_of_the_scene_finds_nothing_more_to_delete(demo: Demo) -> None:
    assert demo.run(DRY_RUN="false")[0] == 0

    code, output = demo.run(DRY_RUN="false")

    assert code == 0
    assert _summary(output)["manifests_eligible"] == 0
    assert demo.problems(dry_run=False) == []


def test_explain_follows_a_base_image_to_the_deployment_that_needs_it(demo: Demo) -> None:
    base = demo.built.current["quarkus-base"]
    child = demo.scene.kit("rest-api")

    code, output = demo.run("explain", base, LOG_FORMAT="console")

    assert code == 0, output
    assert f"kept: base image of IntegrationKit camel-k/{child.name}" in output
    assert (f"base image of IntegrationKit camel-k/{child.name}, used by Integration shop/orders, "
            "running as Deployment shop/orders") in output
    assert demo.kube.writes() == []


# --- make demo ---------------------------------------------------------------------------


def _closed(address: str) -> bool:
    host, _, port = address.rpartition(":")
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, int(port))) != 0


def _addresses(output: str) -> list[str]:
    return re.findall(r"(127\.0\.0\.1:\d+)", output.split("\n\n")[0])


def test_make_demo_shows_both_reports_checks_itself_and_stops_everything() -> None:
    proc = subprocess.run([sys.executable, "-m", "demo"], cwd=ROOT, capture_output=True, text=True, timeout=180)

    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-2000:]
    scene = scenes.load()
    going = sum(1 for k in scene.kits for i in k.images if i.expect == scenes.DELETE) + sum(
        1 for o in scene.orphans for i in o.images if i.expect == scenes.DELETE)
    assert "DRY RUN" in out and "DELETING" in out
    assert re.search(rf"^Would delete {going} manifests \(", out, re.M), out
    assert re.search(rf"^Deleted {going} manifests \(", out, re.M), out
    assert "running as Deployment shop/orders" in out
    assert "kitgc_manifests_deleted" in out
    assert "✓ Checked against demo/scene.yaml" in out
    assert all(not line.startswith("{") for line in out.splitlines())  # console mode: no JSON lines
    addresses = _addresses(out)
    assert len(addresses) >= 2
    assert all(_closed(a) for a in addresses), addresses


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_demo_stops_everything_it_started(sig: signal.Signals) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "demo"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    seen = ""
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            seen += line
            if line.startswith("Started: ") or not line:
                break
        assert _addresses(seen), seen
        proc.send_signal(sig)
        rest, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, seen + rest
    assert "interrupted" in rest
    assert all(_closed(a) for a in _addresses(seen))
