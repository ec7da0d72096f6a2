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
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "gc")]

from testbed import images, objects  # noqa: E402
from testbed.kubeapi import KubeAPI  # noqa: E402
from testbed.pushgateway import free_port, running_pushgateway  # noqa: E402
from testbed.registry_server import start_registry  # noqa: E402

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


# --- drawing ------------------------------------------------------------------------------

BACKGROUND, PANEL, BORDER, TEXT, DIM = "#111217", "#181b1f", "#2c3235", "#ccccdc", "#8e8e9e"
NAMED = {"green": "#56A64B", "orange": "#FF780A", "red": "#E02F44", "blue": "#3274D9", "yellow": "#F2CC0C",
         "purple": "#A352CC", "text": "#3d4147"}
PALETTE = ["#73BF69", "#F2CC0C", "#8AB8FF", "#FF9830", "#F2495C", "#5794F2", "#B877D9", "#705DA0"]
UNIT_H = 0.42  # inches per grid row
WIDTH = 20.0


def color(name: str | None) -> str:
    return NAMED.get(name or "", name or NAMED["text"])


def fmt(value: float, unit: str) -> str:
    if unit == "s":
        for size, name in ((86400, "day"), (3600, "hour"), (60, "min")):
            if abs(value) >= size:
                v = value / size
                return f"{v:.1f} {name}{'s' if name != 'min' and v >= 2 else ''}"
        return f"{value:.3g} s" if value < 10 else f"{value:.0f} s"
    if unit == "bytes":
        for size, name in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
            if abs(value) >= size:
                return f"{value / size:.1f} {name}"
        return f"{value:.0f} B"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"


def nice(x: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten that is at least ``x``."""
    power = 10 ** math.floor(math.log10(x))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= x)


def legend(template: str, labels: dict[str, str]) -> str:
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template).strip()


def with_instance(expr: str, dashboard: dict[str, Any]) -> str:
    """``$instance`` as the dashboard's "All" option gives it."""
    var = next(v for v in dashboard["templating"]["list"] if v["name"] == "instance")
    return expr.replace("$instance", var.get("allValue") or ".+")


def stat_style(panel: dict[str, Any], name: str, value: float) -> tuple[str, str]:
    """(text, background colour) of one stat value, following the panel's own config."""
    defaults = panel["fieldConfig"]["defaults"]
    for mapping in defaults.get("mappings", []):
        hit = mapping.get("options", {}).get(str(int(value)) if float(value).is_integer() else str(value))
        if mapping.get("type") == "value" and hit:
            return hit["text"], color(hit.get("color"))
    background = None
    for steps in [defaults.get("thresholds", {}).get("steps", [])]:
        for step in steps:
            if step["value"] is None or value >= step["value"]:
                background = step["color"]
    for override in panel["fieldConfig"].get("overrides", []):
        if override["matcher"].get("options") == name:
            for prop in override["properties"]:
                if prop["id"] == "color":
                    background = prop["value"].get("fixedColor", background)
    text = name if panel["options"].get("textMode") == "name" else fmt(value, defaults.get("unit", "none"))
    if panel["options"].get("colorMode") == "none":
        return text, PANEL
    return text, color(background)


def draw(dashboard: dict[str, Any], prom: Prom, runs: list[Ran], start: float, end: float, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch
    from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, MultipleLocator

    plt.rcParams.update({"font.family": "DejaVu Sans", "font.size": 11, "text.color": TEXT,
                         "axes.labelcolor": TEXT, "xtick.color": DIM, "ytick.color": DIM})
    panels = dashboard["panels"]
    # One extra full-width strip under the stats: the "Last outcome" query over time.
    strip_y, strip_h = next(p["gridPos"]["y"] for p in panels if p["type"] == "row" and p["gridPos"]["y"] > 0), 3
    header_h = 2.2
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels) + strip_h
    height = (rows + header_h) * UNIT_H + 0.9
    fig = plt.figure(figsize=(WIDTH, height), facecolor=BACKGROUND)

    def rect(x: float, y: float, w: float, h: float, pad: float = 0.06) -> list[float]:
        """Figure coordinates of a grid box (y from the top), with a small gap around it."""
        px, py = pad * UNIT_H / WIDTH * 3, pad / height
        top = 1 - (header_h + y) * UNIT_H / height
        return [x / 24 + px, top - h * UNIT_H / height + py, w / 24 - 2 * px, h * UNIT_H / height - 2 * py]

    def box(x: float, y: float, w: float, h: float, title: str) -> Any:
        frame = fig.add_axes(rect(x, y, w, h))
        frame.set_xticks([])
        frame.set_yticks([])
        frame.set_facecolor(PANEL)
        for spine in frame.spines.values():
            spine.set_color(BORDER)
        frame.text(0.012 * 24 / w, 1 - 0.45 / h, title, transform=frame.transAxes, fontsize=12.5,
                   fontweight="bold", va="center", color=TEXT)
        return frame

    def shifted(p: dict[str, Any]) -> dict[str, float]:
        g = dict(p["gridPos"])
        if g["y"] >= strip_y:
            g["y"] += strip_h
        return g

    stamp = datetime.fromtimestamp(end).strftime("%Y-%m-%d %H:%M:%S")
    fig.text(0.008, 1 - 0.55 * UNIT_H / height, dashboard["title"], fontsize=20, fontweight="bold", va="center")
    fig.text(0.008, 1 - 1.45 * UNIT_H / height,
             f"Cluster: All ({CLUSTER})     {len(runs)} real `python -m kitgc` runs,"
             f" {datetime.fromtimestamp(start):%H:%M:%S} to {datetime.fromtimestamp(end):%H:%M:%S}"
             "     Prometheus query_range, step 1s, scraping the Pushgateway every 1s (honor_labels)"
             f"     queries: {DASHBOARD.relative_to(ROOT)}", fontsize=11, color=DIM,
             va="center")
    fig.text(0.992, 1 - 0.55 * UNIT_H / height, f"rendered {stamp} by docs/render_dashboard.py", fontsize=10,
             color=DIM, va="center", ha="right")

    times = [datetime.fromtimestamp(r.ended) for r in runs]
    t0, t1 = datetime.fromtimestamp(start), datetime.fromtimestamp(end)

    def run_lines(ax: Any, numbers: bool = False) -> None:
        for r, t in zip(runs, times, strict=True):
            ax.axvline(t, color=DIM, lw=0.6, ls=":", zorder=0)
            if numbers:
                ax.text(t, 1.0, f" {r.number}", transform=ax.get_xaxis_transform(), fontsize=9.5, color=DIM,
                        va="bottom", ha="center")

    first_tick = (int(start) // 20 + 1) * 20
    ticks = [datetime.fromtimestamp(t) for t in range(first_tick, int(end), 20) if start + 4 < t < end - 4]

    def time_axis(ax: Any) -> None:
        ax.set_xlim(t0, t1)
        ax.xaxis.set_major_locator(FixedLocator([mdates.date2num(t) for t in ticks]))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
        ax.set_facecolor(PANEL)
        for side, spine in ax.spines.items():
            spine.set_visible(side == "bottom")
            spine.set_color(BORDER)
        ax.grid(True, color=BORDER, lw=0.6)

    for p in panels:
        g = shifted(p)
        if p["type"] == "row":
            fig.text(g["x"] / 24 + 0.004, 1 - (header_h + g["y"] + 0.5) * UNIT_H / height, "▾ " + p["title"],
                     fontsize=14, fontweight="bold", va="center")
            continue
        frame = box(g["x"], g["y"], g["w"], g["h"], p["title"])
        target = p["targets"][0]
        if p["type"] == "stat":
            result = prom.instant(with_instance(target["expr"], dashboard), end)
            if not result:
                frame.text(0.5, 0.4, "No data", ha="center", va="center", fontsize=18, color=DIM,
                           transform=frame.transAxes)
                continue
            labels, value = result[0]["metric"], float(result[0]["value"][1])
            text, background = stat_style(p, legend(target.get("legendFormat", ""), labels), value)
            frame.add_patch(FancyBboxPatch((0.03, 0.06), 0.94, 0.62, boxstyle="round,pad=0,rounding_size=0.02",
                                           transform=frame.transAxes, facecolor=background, edgecolor="none"))
            size = 30 if len(text) <= 8 else max(14, 30 - 1.7 * (len(text) - 8))
            frame.text(0.5, 0.37, text, ha="center", va="center", fontsize=size, fontweight="bold",
                       color="#ffffff", transform=frame.transAxes)
            continue

        unit = p["fieldConfig"]["defaults"].get("unit", "short")
        ax = fig.add_axes(rect(g["x"] + 0.35, g["y"] + 1.25, g["w"] - 0.6, g["h"] - 2.65, pad=0.02))
        time_axis(ax)
        run_lines(ax, numbers=p["title"] == "Manifests")
        handles, top = [], 0.0
        for i, t in enumerate(p["targets"]):
            for series in prom.range(with_instance(t["expr"], dashboard), start, end):
                xs = [datetime.fromtimestamp(float(v[0])) for v in series["values"]]
                ys = [float(v[1]) for v in series["values"]]
                top = max(top, *ys)
                c = PALETTE[i % len(PALETTE)]
                (line,) = ax.plot(xs, ys, drawstyle="steps-post", lw=2, color=c,
                                  label=legend(t.get("legendFormat", ""), series["metric"]))
                ax.fill_between(xs, ys, step="post", color=c, alpha=0.10)
                handles.append(line)
        ax.set_ylim(0, max(1.0, top * 1.15))
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=unit in ("short", "none")))
        if unit == "bytes" and top > 0:
            scale = 2**30 if top >= 2**30 else 2**20 if top >= 2**20 else 2**10
            ax.yaxis.set_major_locator(MultipleLocator(nice(top / 4 / scale) * scale))
        if unit in ("bytes", "s"):
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos, unit=unit: fmt(v, unit)))
        if handles:
            frame.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.005, 0.0), ncol=len(handles),
                         frameon=False, fontsize=10.5, handlelength=1.4, columnspacing=1.2, labelcolor=TEXT)
        else:
            ax.text(0.5, 0.5, "No data", ha="center", va="center", fontsize=16, color=DIM, transform=ax.transAxes)

    # The strip: the Last outcome panel's query over time, one band per outcome.
    outcome_panel = next(p for p in panels if p["title"] == "Last outcome")
    frame = box(0, strip_y, 24, strip_h, "Last outcome over time (the Last outcome query, query_range)")
    ax = fig.add_axes(rect(0.35, strip_y + 0.95, 23.3, strip_h - 1.75, pad=0.02))
    time_axis(ax)
    ax.grid(False)
    ax.set_yticks([])
    colours = {}
    for override in outcome_panel["fieldConfig"]["overrides"]:
        for prop in override["properties"]:
            if prop["id"] == "color":
                colours[override["matcher"]["options"]] = color(prop["value"].get("fixedColor"))
    expr = with_instance(outcome_panel["targets"][0]["expr"], dashboard)
    samples = sorted((float(ts), series["metric"].get("outcome", "?"))
                     for series in prom.range(expr, start, end) for ts, _ in series["values"])
    segments: list[list[Any]] = []  # [outcome, from, to]
    for ts, outcome in samples:
        if segments and segments[-1][0] == outcome and ts - segments[-1][2] <= 1.5:
            segments[-1][2] = ts
        else:
            segments.append([outcome, ts, ts])
    for outcome, a, b in segments:
        b = min(b + 1, end)
        ax.axvspan(datetime.fromtimestamp(a), datetime.fromtimestamp(b), color=colours.get(outcome, DIM), lw=0)
        if outcome != "success":
            ax.text(datetime.fromtimestamp((a + b) / 2), 0.5, outcome.replace("_", " "), fontsize=10, color="#ffffff",
                    va="center", ha="center", fontweight="bold")
    for r, t in zip(runs, times, strict=True):
        ax.axvline(t, color=BACKGROUND, lw=1.2)
        ax.text(t, -0.06, str(r.number), fontsize=9.5, color=DIM, va="top", ha="center",
                transform=ax.get_xaxis_transform())
    ax.set_ylim(0, 1)
    ax.tick_params(axis="x", labelbottom=False)
    keys = [FancyBboxPatch((0, 0), 1, 1, facecolor=c, edgecolor="none") for c in colours.values()]
    frame.legend(keys, list(colours), loc="upper right", ncol=len(keys), frameon=False, fontsize=10.5,
                 labelcolor=TEXT, bbox_to_anchor=(0.995, 1.02), handlelength=1.0)

    # What each run was, so the numbers on the plots can be read.
    notes = [f"{r.number} {r.label} (exit {r.code})" for r in runs]
    half = (len(notes) + 1) // 2
    for line, chunk in enumerate((notes[:half], notes[half:])):
        fig.text(0.008, (0.62 - 0.32 * line) * 0.9 / height, ("Runs:  " if line == 0 else "           ")
                 + "     ".join(chunk), fontsize=10.5, color=DIM, va="center")
    fig.savefig(out, dpi=90, facecolor=BACKGROUND)
    plt.close(fig)


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
        draw(dashboard, prom, runs, start, end, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
