#!/usr/bin/env python3
"""Render docs/dashboard.png: the Grafana dashboard's panels over real runs of the collector.

Nothing is mocked except the Kubernetes API (the test suite's emulator). The script starts

* a real Distribution registry (``docker-registry``) holding a scene of kit images,
* the emulated Kubernetes API with IntegrationKits, Integrations and a Deployment,
* a real Pushgateway (``prometheus-pushgateway``),
* a real Prometheus (Debian package ``prometheus``) scraping the Pushgateway every second
  with ``honor_labels: true``, storing into a temporary directory,

then runs ``python -m kitgc`` about ten times, changing the scene between runs (a dry run,
real runs as old kits pile up, a run capped by MAX_DELETIONS, one aborted by a 403, one
with a failing kit deletion, one with a configuration error). Finally it asks Prometheus's
HTTP API (``query`` and ``query_range``) for the PromQL of every panel of
``manifests/monitoring/grafana-dashboard.json`` (read from the file, ``$instance`` set to
the dashboard's "All") and draws a dashboard-like PNG with matplotlib.

    make install && .venv/bin/pip install -e '.[docs]'     # matplotlib
    .venv/bin/python docs/render_dashboard.py             # ~2 minutes; writes docs/dashboard.png

Options: ``--out PATH``, ``--gap SECONDS`` (between runs, default 7).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "gc")]

from testbed import images, objects  # noqa: E402
from testbed.kubeapi import KubeAPI  # noqa: E402
from testbed.pushgateway import free_port, running_pushgateway  # noqa: E402
from testbed.registry_server import start_registry  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dashboard_draw import draw  # noqa: E402

DASHBOARD = ROOT / "manifests" / "monitoring" / "grafana-dashboard.json"
CLUSTER = "prod-eu"
ORG = "camel-k"
KIT_NS = "camel-k"
MIN_AGE = "1h"
KIT_DELETE = r"/apis/camel\.apache\.org/v1/namespaces/[^/]+/integrationkits/[^/]+"

# --- the scene ----------------------------------------------------------------------------


@dataclass
class Scene:
    """Kit images in the registry and the Camel K objects that use them."""

    registry_url: str
    registry_address: str
    api: KubeAPI
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=60))
    serial: int = 0
    builds: dict[str, int] = field(default_factory=dict)  # kit -> builds pushed so far
    kit_of: dict[str, str] = field(default_factory=dict)  # integration -> its kit

    def _layer(self, mib: float) -> bytes:
        return os.urandom(int(mib * 1024 * 1024))

    def push(self, kit: str, tag: str, mib: float) -> str:
        """One kit image: the shared base layer plus its own application layer."""
        repo = f"{ORG}/camel-k-{kit}"
        return images.push_image(self.registry_url, repo, [tag], layers=(images.SHARED_LAYER, self._layer(mib)),
                                 client=self.http)

    def kit(self, name: str, *, builds: int = 1, mib: float = 2.0, created: str = objects.CREATED) -> str:
        """An IntegrationKit whose last build is its image; earlier builds stay as old tags."""
        digest = ""
        for build in range(builds):
            digest = self.push(name, str(build + 1), mib * (0.8 + 0.1 * build))
        image = f"{self.registry_address}/{ORG}/camel-k-{name}@{digest}"
        self.api.add(objects.integration_kit(name, KIT_NS, image=image, created=created))
        self.builds[name] = builds
        return image

    def integration(self, name: str, *, builds: int = 1, mib: float = 2.0) -> None:
        """An Integration running on a kit of its own."""
        self.serial += 1
        kit = objects.kit_name(f"{name}-{self.serial}")
        image = self.kit(kit, builds=builds, mib=mib)
        self.api.add(objects.integration(name, KIT_NS, kit=kit, image=image))
        self.kit_of[name] = kit

    def rebuild(self, name: str, *, mib: float = 2.0) -> None:
        """The Integration changed: the operator builds a new kit; the old one is now unused."""
        self.serial += 1
        kit = objects.kit_name(f"{name}-{self.serial}")
        image = self.kit(kit, mib=mib)
        res = self.api.store.resource_for("camel.apache.org/v1", "Integration")
        self.api.store.update(res, KIT_NS, name, objects.integration(name, KIT_NS, kit=kit, image=image))
        self.kit_of[name] = kit

    def rebuild_in_place(self, name: str, *, mib: float = 2.0) -> None:
        """The same kit is built again: its previous image becomes an old build."""
        kit = self.kit_of[name]
        self.builds[kit] += 1
        digest = self.push(kit, str(self.builds[kit]), mib)
        image = f"{self.registry_address}/{ORG}/camel-k-{kit}@{digest}"
        res = self.api.store.resource_for("camel.apache.org/v1", "IntegrationKit")
        self.api.store.update(res, KIT_NS, kit, objects.integration_kit(kit, KIT_NS, image=image))
        res = self.api.store.resource_for("camel.apache.org/v1", "Integration")
        self.api.store.update(res, KIT_NS, name, objects.integration(name, KIT_NS, kit=kit, image=image))

    def orphan(self, count: int) -> None:
        """Images in a repository no kit names: kept until first seen MIN_AGE ago."""
        self.serial += 1
        kit = objects.kit_name(f"orphan-{self.serial}")
        for n in range(count):
            self.push(kit, str(n + 1), 1.0)


def seed(scene: Scene) -> None:
    scene.api.add(objects.deployment("gateway", "shop", images=["docker.io/library/nginx:1.27"]))
    for i, (builds, mib) in enumerate([(1, 3), (3, 2), (2, 4), (1, 2), (4, 1.5), (2, 2), (1, 5), (3, 2.5)]):
        scene.integration(f"route-{i}", builds=builds, mib=mib)
    for i in range(4):  # kits whose Integrations are long gone
        scene.kit(objects.kit_name(f"stale-{i}"), builds=1 + i % 2, mib=2.5)
    scene.orphan(3)


# --- the runs -----------------------------------------------------------------------------


@dataclass
class Step:
    label: str
    expect: int  # the exit code this run must have, or the picture is wrong
    env: dict[str, str] = field(default_factory=dict)
    before: Callable[[Scene], None] = lambda scene: None
    after: Callable[[Scene], None] = lambda scene: None


def churn(rebuilt: list[int], stale: int, orphans: int = 0, in_place: tuple[int, ...] = ()) -> Callable[[Scene], None]:
    """New kits for ``rebuilt`` routes, ``stale`` unused kits, new builds of ``in_place`` kits.

    The stale kits are older than every other kit, so MAX_DELETIONS takes them first and
    defers the in-place builds' old images, whose kits stay (and keep proving their age).
    """
    def change(scene: Scene) -> None:
        for i in rebuilt:
            scene.rebuild(f"route-{i}", mib=2.0 + i / 2)
        for i in in_place:
            scene.rebuild_in_place(f"route-{i}", mib=1.5 + i / 3)
        for _ in range(stale):
            scene.serial += 1
            scene.kit(objects.kit_name(f"stale-new-{scene.serial}"), builds=2, mib=3, created="2023-06-01T00:00:00Z")
        if orphans:
            scene.orphan(orphans)
    return change


def inject(method: str, path: str, status: int) -> Callable[[Scene], None]:
    def fault(scene: Scene) -> None:
        scene.api.inject(method, path, status=status)
    return fault


def both(*changes: Callable[[Scene], None]) -> Callable[[Scene], None]:
    def change(scene: Scene) -> None:
        for c in changes:
            c(scene)
    return change


def clear(scene: Scene) -> None:
    scene.api.clear_faults()


STEPS = [
    Step("dry run", 0, {"DRY_RUN": "true"}),
    Step("first real run", 0),
    Step("nothing new", 0),
    Step("2 kits rebuilt, 2 stale kits; MAX_DELETIONS=4", 0, {"MAX_DELETIONS": "4"}, churn([], 2, in_place=(1, 4))),
    Step("403 on deployments: aborted", 3, before=inject("GET", r"/apis/apps/v1/deployments", 403), after=clear),
    Step("deferred ones deleted", 0),
    Step("3 rebuilds, kit DELETE fails: partial", 1,
         before=both(churn([0, 2, 7], 0), inject("DELETE", KIT_DELETE, 500)), after=clear),
    Step("retry succeeds", 0),
    Step("MIN_AGE=soon: config error", 2, {"MIN_AGE": "soon"}),
    Step("3 rebuilds, 1 stale kit, 2 new orphans", 0, before=churn([3, 5, 6], 1, orphans=2)),
    Step("steady state", 0),
]


@dataclass
class Ran:
    number: int
    label: str
    ended: float
    code: int
    summary: dict[str, Any]


def run_kitgc(env: dict[str, str]) -> tuple[int, dict[str, Any]]:
    done = subprocess.run([sys.executable, "-m", "kitgc"], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    summary: dict[str, Any] = {}
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            event = json.loads(line)
            if event.get("event") in ("summary", "config_error"):
                summary = event
    return done.returncode, summary


# --- Prometheus ---------------------------------------------------------------------------


@contextmanager
def running_prometheus(target: str, directory: Path) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        raise SystemExit("prometheus not found: apt-get install prometheus")
    config = directory / "prometheus.yml"
    config.write_text(json.dumps({  # JSON is valid YAML
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "pushgateway", "honor_labels": True,
                            "static_configs": [{"targets": [target]}]}],
    }, indent=1))
    port = free_port()
    log = (directory / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={directory / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise SystemExit(f"prometheus exited:\n{(directory / 'prometheus.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("prometheus did not become ready")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


class Prom:
    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=30)

    def _get(self, path: str, **params: Any) -> list[dict[str, Any]]:
        r = self.http.get(path, params=params)
        r.raise_for_status()
        body = r.json()
        if body["status"] != "success":
            raise RuntimeError(f"{params.get('query')}: {body}")
        return list(body["data"]["result"])

    def instant(self, query: str, at: float) -> list[dict[str, Any]]:
        return self._get("/api/v1/query", query=query, time=at)

    def range(self, query: str, start: float, end: float, step: float = 1.0) -> list[dict[str, Any]]:
        return self._get("/api/v1/query_range", query=query, start=start, end=end, step=step)


def wait_for_first_scrape(prom: Prom, timeout: float = 30) -> None:
    """Prometheus scrapes a new target only after a while; a run before that is never seen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        up = prom.instant('up{job="pushgateway"}', time.time())
        if up and up[0]["value"][1] == "1":
            return
        time.sleep(0.5)
    raise SystemExit("prometheus never scraped the pushgateway")


# --- main ---------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "dashboard.png")
    parser.add_argument("--gap", type=float, default=7.0, help="seconds between runs")
    args = parser.parse_args()
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise SystemExit("matplotlib is missing: .venv/bin/pip install -e '.[docs]'") from None
    dashboard = json.loads(DASHBOARD.read_text())

    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kitgc-dashboard-")))
        registry = start_registry(tmp / "registry", delete_enabled=True)
        stack.callback(registry.stop)
        api = stack.enter_context(KubeAPI())
        kubeconfig = api.write_kubeconfig(tmp / "kubeconfig")
        gateway = stack.enter_context(running_pushgateway())
        (tmp / "prometheus").mkdir()
        prom = Prom(stack.enter_context(running_prometheus(gateway.url.removeprefix("http://"), tmp / "prometheus")))

        wait_for_first_scrape(prom)
        scene = Scene(registry.url, registry.address, api)
        seed(scene)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("KITGC", "KUBERNETES_"))}
        base.update({
            "KUBECONFIG": str(kubeconfig), "REGISTRY_ADDRESS": registry.address, "REGISTRY_ORGANIZATION": ORG,
            "REGISTRY_INSECURE": "true", "DRY_RUN": "false", "MIN_AGE": MIN_AGE, "PUSHGATEWAY_URL": gateway.url,
            "CLUSTER_NAME": CLUSTER, "LOG_FORMAT": "json", "STATE_CONFIGMAP": "camel-k/camel-k-kit-gc-state",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "gc"), os.environ.get("PYTHONPATH")])),
        })

        start = time.time() - 6
        runs: list[Ran] = []
        for number, step in enumerate(STEPS, 1):
            step.before(scene)
            code, summary = run_kitgc({**base, **step.env})
            step.after(scene)
            runs.append(Ran(number, step.label, time.time(), code, summary))
            shown = {k: summary.get(k) for k in ("manifests_scanned", "manifests_eligible", "manifests_deleted",
                                                 "kits_deleted", "delete_failures", "bytes_reclaimable")}
            print(f"run {number:2} exit {code} {step.label}: {shown}", flush=True)
            if code != step.expect:
                raise SystemExit(f"run {number} ({step.label}) exited {code}, expected {step.expect}: {summary}")
            time.sleep(args.gap)
        end = time.time()
        time.sleep(2)  # one more scrape
        draw(dashboard, prom, runs, start, end, args.out, cluster=CLUSTER,
             queries_from=str(DASHBOARD.relative_to(ROOT)))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
