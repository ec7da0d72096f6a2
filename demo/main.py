"""``python -m demo``: the collector against a realistic Camel K installation, on loopback.

Starts a real Distribution registry, a real Pushgateway and an emulated Kubernetes API,
seeds them with ``demo/scene.yaml``, then runs ``kitgc`` through its real entry point (a
subprocess, configured only by environment variables, exactly as the CronJob runs it):
a dry run, a real run, and ``kitgc explain`` on a base image. It ends by checking the
registry and the cluster against the scene's own expectations, so the demo cannot quietly
show something wrong. Everything it started is stopped at the end, on Ctrl-C and on
SIGTERM alike.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import httpx

from demo import scene as scenes
from kitgc.config import VARIABLES
from kitgc.present.console import human_bytes
from testbed.kubeapi import KubeAPI
from testbed.pushgateway import BINARY as PUSHGATEWAY
from testbed.pushgateway import running_pushgateway
from testbed.registry_server import REGISTRY_BINARY, start_registry

SHOWN_METRICS = ("kitgc_manifests_scanned", "kitgc_manifests_eligible", "kitgc_manifests_deleted",
                 "kitgc_kits_deleted", "kitgc_bytes_reclaimable", "kitgc_dry_run", "kitgc_run_duration_seconds",
                 "kitgc_last_success_timestamp_seconds")


def _say(text: str = "", *, bold: bool = False) -> None:
    if bold and sys.stdout.isatty():
        text = f"\033[1m{text}\033[0m"
    print(text, flush=True)


def _missing_tools() -> list[str]:
    missing = []
    if not os.path.exists(REGISTRY_BINARY):
        missing.append("docker-registry")
    if shutil.which(PUSHGATEWAY) is None:
        missing.append("prometheus-pushgateway")
    return missing


def _kitgc_command() -> list[str]:
    """The installed console script when there is one (what the CronJob runs), else ``-m kitgc``."""
    script = Path(sys.executable).with_name("kitgc")
    return [str(script)] if script.exists() else [sys.executable, "-m", "kitgc"]


def kitgc_env(scene: scenes.Scene, kubeconfig: Path, pushgateway_url: str, **extra: str) -> dict[str, str]:
    """The user's environment without any kitgc variable of theirs, plus the demo's settings."""
    ours = {v.env for v in VARIABLES} | {"KUBERNETES_SERVICE_HOST", "KUBECONFIG", "POD_NAMESPACE"}
    env = {k: v for k, v in os.environ.items() if k not in ours}
    env.update(scene.settings)
    env.update({"KUBECONFIG": str(kubeconfig), "PUSHGATEWAY_URL": pushgateway_url, "LOG_FORMAT": "console",
                "LOG_LEVEL": "warning"})
    env.update(extra)
    return env


def _run_kitgc(title: str, args: Sequence[str], env: dict[str, str], shown: dict[str, str]) -> int:
    _say()
    _say(f"━━ {title} " + "━" * max(0, 76 - len(title)), bold=True)
    _say("$ " + " ".join([*(f"{k}={v}" for k, v in shown.items()), "kitgc", *args]))
    started = time.monotonic()
    code = subprocess.run([*_kitgc_command(), *args], env=env, check=False).returncode
    _say(f"(exit code {code}, {time.monotonic() - started:.1f} s)")
    return code


def _kits_present(api: KubeAPI) -> set[tuple[str, str]]:
    res = api.store.resource_for("camel.apache.org/v1", "IntegrationKit")
    return {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in api.store.objects(res)}


def _describe(scene: scenes.Scene, built: scenes.Built, registry: str) -> None:
    in_scope = [p for p in built.images if p.in_scope]
    repos = {p.repository for p in in_scope}
    orgs = sorted({scene.organization(p["namespace"]) for p in scene.platforms})
    _say(f"Seeded registry {registry}: {len(in_scope)} kit images in {len(repos)} kit repositories of "
         f"{' and '.join(orgs)}, plus {len(built.images) - len(in_scope)} images kitgc must never touch.")
    _say(f"Cluster: {len(scene.kits)} IntegrationKits, {len(scene.integrations)} Integrations "
         "(Deployments with old ReplicaSets, CronJobs, Knative Services scaled to zero, one still building), "
         f"{len(built.objects)} objects in all.")


def _show_metrics(url: str) -> None:
    from testbed.pushgateway import parse

    scrape = parse(httpx.get(f"{url}/metrics", timeout=5).text)
    _say()
    _say(f"━━ Metrics in the Pushgateway ({url}, job camel-k-kit-gc) " + "━" * 20, bold=True)
    for name in SHOWN_METRICS:
        value = scrape.value(name, job="camel-k-kit-gc")
        if value is None:
            continue
        if name.endswith("_timestamp_seconds"):
            note = datetime.fromtimestamp(value, UTC).strftime("(%Y-%m-%d %H:%M:%S UTC)")
        elif name.endswith("_bytes_reclaimable"):
            note = f"({human_bytes(int(value))})"
        else:
            note = ""
        _say(f"  {name:<40} {value:>14.10g} {note}".rstrip())


def run(scene_file: Path = scenes.SCENE_FILE) -> int:
    missing = _missing_tools()
    if missing:
        _say(f"error: the demo needs {' and '.join(missing)} (Debian/Ubuntu packages of the same name). "
             f"Run `make demo`, which installs them with apt-get, or: sudo apt-get install {' '.join(missing)}")
        return 1
    scene = scenes.load(scene_file)
    _say("camel-k-kit-gc demo: a real registry, a real Pushgateway and an emulated Camel K cluster on loopback",
         bold=True)
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kitgc-demo-")))
        registry = start_registry(tmp / "registry", delete_enabled=True)
        stack.callback(registry.stop)
        gateway = stack.enter_context(running_pushgateway(admin_api=False))
        api = KubeAPI(knative=True).start()
        stack.callback(api.stop)
        kubeconfig = api.write_kubeconfig(tmp / "kubeconfig")
        client = stack.enter_context(httpx.Client(timeout=30))
        _say(f"Started: registry {registry.address}, Pushgateway {gateway.url.removeprefix('http://')}, "
             f"emulated Kubernetes API {api.url.removeprefix('http://')}")

        built = scenes.build(scene, registry_url=registry.url, address=registry.address, client=client,
                             now=datetime.now(UTC))
        api.add(*built.objects)
        _describe(scene, built, registry.address)

        shown = {k: v for k, v in scene.settings.items() if k == "MIN_AGE"}
        env = kitgc_env(scene, kubeconfig, gateway.url)
        codes = [_run_kitgc("1. dry run: what would go, and why the rest stays", [], {**env, "DRY_RUN": "true"},
                            {"DRY_RUN": "true", **shown, "LOG_FORMAT": "console"})]
        problems = scenes.check(built, client, registry.url, _kits_present(api), dry_run=True)
        _say("Checked: the dry run changed nothing in the registry or the cluster." if not problems
             else "The dry run changed something!")
        codes.append(_run_kitgc("2. real run", [], {**env, "DRY_RUN": "false"},
                                {"DRY_RUN": "false", **shown, "LOG_FORMAT": "console"}))
        base = built.current[scene.kits[0].id]
        _say()
        _say("Kit names are xids; in demo/scene.yaml " + ", ".join(
            f"{k.namespace}/{k.name} is {k.id}" for k in scene.kits[:2]) + ".")
        codes.append(_run_kitgc("3. why is this image kept?", ["explain", base], env, {"LOG_FORMAT": "console"}))
        _show_metrics(gateway.url)

        problems += scenes.check(built, client, registry.url, _kits_present(api), dry_run=False)
        kept = [p for p in built.images if p.expect == scenes.KEEP]
        _say()
        if problems or any(codes):
            _say(f"✗ the outcome differs from demo/scene.yaml (exit codes {codes}):", bold=True)
            for line in problems:
                _say(f"  - {line}")
            return 1
        _say(f"✓ Checked against demo/scene.yaml: the {len(kept)} images and "
             f"{sum(1 for k in scene.kits if k.expect == scenes.KEEP)} kits that must stay are there, "
             f"the {len(built.images) - len(kept)} images and "
             f"{sum(1 for k in scene.kits if k.expect == scenes.DELETE)} kits that must go are gone, "
             "and nothing outside the kit repositories was touched.", bold=True)
        _say("Stopping the registry, the Pushgateway and the emulated API.")
    return 0


def _terminate(signum: int, _frame: Any) -> NoReturn:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main() -> int:
    signal.signal(signal.SIGTERM, _terminate)  # `finally` blocks then stop everything, as on Ctrl-C
    # Ctrl-C too, even when started in the background of a script, which ignores SIGINT and
    # hands that on: the demo would otherwise run to its end with everything started.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return run()
    except KeyboardInterrupt:
        _say("\ninterrupted: everything the demo started has been stopped")
        return 130
