"""Turning measurements into the results: medians, ratios, targets, the table, the file.

Ratios are quoted from one run of the benchmark, whose variants alternated round by
round: ``a/b`` is the median of the per-round ratios (each round's kitgc over the same
round's floor), so that drift in the machine's load cancels out; the ratio of the medians
is recorded beside it.
"""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import subprocess
from pathlib import Path
from typing import Any

from bench.measure import Measured
from bench.variants import VARIANTS

RESULTS = Path(__file__).resolve().parent / "results.json"
README = Path(__file__).resolve().parent.parent / "README.md"
KINDS = ("catalog", "tags", "head", "get", "delete")
TARGETS = {"a_over_b_max": 1.3, "c_over_a_min_latency": 10.0, "rss_mb_max": 200.0, "models_over_raw_min": 5.0}


def machine() -> dict[str, Any]:
    cpu = _proc_field("/proc/cpuinfo", "model name", lambda line: line.split(":", 1)[1].strip()) or ""
    mem = _proc_field("/proc/meminfo", "MemTotal", lambda line: int(line.split()[1]) // 1024) or 0
    registry = subprocess.run(["docker-registry", "--version"], capture_output=True, text=True).stdout.strip()
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_mb": mem, "python": platform.python_version(),
            "os": platform.platform(terse=True), "registry": registry.split()[-1] if registry else "",
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def _proc_field(path: str, key: str, value: Any) -> Any:
    try:
        with open(path) as fh:
            return next((value(line) for line in fh if line.startswith(key)), None)
    except OSError:
        return None


def summarise(runs: dict[str, list[Measured]], manifests: int) -> dict[str, Any]:
    """Per variant: medians and every sample; ratios between variants; requests per manifest."""
    out: dict[str, Any] = {"variants": {}}
    for name, ms in runs.items():
        out["variants"][name] = {
            "wall_median": statistics.median(m.wall for m in ms), "cpu_median": statistics.median(m.cpu for m in ms),
            "rss_mb_max": max(m.rss_mb for m in ms), "wall": [m.wall for m in ms], "cpu": [m.cpu for m in ms],
            "rss_mb": [m.rss_mb for m in ms], "requests": ms[0].requests,
            "requests_per_manifest": {k: round(ms[0].requests.get(k, 0) / manifests, 4) for k in KINDS},
            "same_requests_every_run": all(m.requests == ms[0].requests for m in ms),
        }
        kube = [m.extra["objects"] / m.extra["kube_seconds"] for m in ms if m.extra.get("kube_seconds")]
        if kube:  # the floor times its Kubernetes read
            out["variants"][name]["kube_objects_per_second"] = round(statistics.median(kube))
        adapted = [m.extra["concurrency"] for m in ms if m.extra.get("concurrency")]
        if adapted:  # kitgc's registry_concurrency log line: where adaptation took the limit, each run
            out["variants"][name]["concurrency"] = adapted
    v = out["variants"]

    def paired(x: str, y: str) -> float | None:
        if x not in runs or y not in runs:
            return None
        return round(statistics.median(a.wall / b.wall for a, b in zip(runs[x], runs[y], strict=False)), 2)

    out["ratios"] = {
        "a_over_b": paired("kitgc", "floor"), "c_over_a": paired("kitgc-c1", "kitgc"),
        "d_over_b": paired("floor-head", "floor"),
        "a_over_d": paired("kitgc", "floor-head"),  # against the floor with kitgc's own request mix
        "f_over_a": paired("kitgc-fixed", "kitgc"),  # what adaptive concurrency buys
        "a_over_b_of_medians": round(v["kitgc"]["wall_median"] / v["floor"]["wall_median"], 2)
        if "kitgc" in v and "floor" in v else None,
        "a_over_b_cpu": round(v["kitgc"]["cpu_median"] / v["floor"]["cpu_median"], 2)
        if "kitgc" in v and "floor" in v else None,
    }
    if "kitgc" in v and "floor" in v:
        out["floor_makes_the_same_requests"] = v["kitgc"]["requests"] == v["floor"]["requests"]
    return out


def targets(results: dict[str, Any]) -> dict[str, Any]:
    checks: dict[str, Any] = {}
    for net, data in results["networks"].items():
        r = data["ratios"]
        if r.get("a_over_b") is not None:
            checks[f"{net}: a/b <= {TARGETS['a_over_b_max']}"] = r["a_over_b"] <= TARGETS["a_over_b_max"]
        if net != "loopback" and r.get("c_over_a") is not None:
            least = TARGETS["c_over_a_min_latency"]
            checks[f"{net}: c/a >= {least:g}"] = r["c_over_a"] >= least
        if "kitgc" in data["variants"]:
            rss = max(data["variants"][n]["rss_mb_max"] for n in data["variants"] if n.startswith("kitgc"))
            checks[f"{net}: kitgc peak RSS <= {TARGETS['rss_mb_max']:g} MB"] = rss <= TARGETS["rss_mb_max"]
    cluster = results.get("cluster_read")
    if cluster:
        checks[f"cluster read: raw JSON (as kitgc reads it) >= {TARGETS['models_over_raw_min']:g}x faster than "
               "models"] = cluster["models_over_kitgc"] >= TARGETS["models_over_raw_min"]
    return checks


def table(results: dict[str, Any]) -> str:
    """The results as Markdown, as the README quotes them."""
    m, sc = results["machine"], results["scene"]
    lines = [f"Ran {results.get('date', '')} on {m['cpu']} ({m['cores']} cores, {m['memory_mb'] // 1024} GiB), "
             f"Python {m['python']}, Distribution {m['registry']}; load average {m['load_average'][0]} at the start, "
             f"{m.get('load_average_end', ['?'])[0]} at the end (a machine shared with other work). Scene: "
             f"{sc['manifests']:,} manifests in {sc['repositories']:,} kit repositories, "
             f"{sc.get('kubernetes_objects', 0):,} Kubernetes objects; medians of {results['rounds']} rounds.", ""]
    lines += ["| network | variant | wall median (s) | CPU median (s) | peak RSS (MB) | requests: catalog / tags / "
             "HEAD / GET / DELETE |", "| --- | --- | ---: | ---: | ---: | --- |"]
    for net, data in results["networks"].items():
        for name, v in data["variants"].items():
            req = " / ".join(str(v["requests"].get(k, 0)) for k in KINDS)
            lines.append(f"| {net} | {VARIANTS[name]} | {v['wall_median']:.2f} | {v['cpu_median']:.2f} | "
                         f"{v['rss_mb_max']:.0f} | {req} |")
    lines += ["", "| network | a/b (kitgc / floor) | a/d (kitgc / HEAD floor) | c/a (CONCURRENCY=1 / kitgc) | "
              "d/b (HEAD / GET floor) | f/a (fixed / adaptive concurrency) | a/b in CPU time |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for net, data in results["networks"].items():
        r = data["ratios"]
        lines.append(f"| {net} | {_x(r['a_over_b'])} | {_x(r.get('a_over_d'))} | {_x(r['c_over_a'])} | "
                     f"{_x(r['d_over_b'])} | {_x(r.get('f_over_a'))} | {_x(r['a_over_b_cpu'])} |")
    manifests = results["scene"]["manifests"]
    first = next(iter(results["networks"].values()))["variants"]
    per = "; ".join(f"{name}: " + ", ".join(f"{k} {v['requests'].get(k, 0) / manifests:.3f}" for k in KINDS)
                    for name, v in first.items())
    if per:  # HEAD-first kitgc: a HEAD per tag, a GET only for indexes and what the plan would delete
        lines += ["", f"Registry requests per manifest, by kind ({manifests} manifests, dry runs): {per}."]
    enforce = results.get("enforce")
    if enforce and "error" in enforce:
        lines.append(f"Real run (DRY_RUN=false, scratch copy) failed: {enforce['error'].splitlines()[0]}")
    elif enforce:
        req = enforce["requests"]
        lines.append(f"Real run (DRY_RUN=false, scratch copy): {enforce['manifests_deleted']} manifests and "
                     f"{enforce['kits_deleted']} kits deleted with {req.get('delete', 0)} DELETE requests, "
                     f"{req.get('get', 0)} GET, {req.get('head', 0)} HEAD, {req.get('tags', 0)} tag lists; "
                     f"{enforce['wall']:.1f} s, peak RSS {enforce['rss_mb']:.0f} MB.")
    c = results.get("cluster_read")
    if c:
        ops = c["objects_per_second"]
        lines.append(f"Cluster read, typed lists ({c['objects']['typed_lists']:,} Pods, ReplicaSets, Deployments): "
                     f"the client's models {ops['models']:,} objects/s, `json.loads` {ops['json']:,} objects/s, "
                     f"kitgc's projected decode {ops['kitgc']:,} objects/s: raw JSON as kitgc reads it is "
                     f"{c['models_over_kitgc']:.1f}x faster than the models ({c['models_over_json']:.1f}x with "
                     f"`json.loads`). kitgc's reader, every source with extraction: "
                     f"{c['kitgc_reader_objects_per_second']:,} objects/s ({c['objects']['all_sources']:,} objects).")
    lines += ["", "| target | met |", "| --- | --- |"]
    lines += [f"| {name} | {'yes' if ok else '**no**'} |" for name, ok in results["targets"].items()]
    return "\n".join(lines)


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def write(results: dict[str, Any], path: Path = RESULTS) -> None:
    path.write_text(json.dumps(results, indent=1) + "\n")


def update_readme(text: str, path: Path = README) -> bool:
    """Replace what stands between the README's bench markers; False when they are absent."""
    start, end = "<!-- bench:start -->", "<!-- bench:end -->"
    readme = path.read_text()
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    if not pattern.search(readme):
        return False
    path.write_text(pattern.sub(lambda _: f"{start}\n{text}\n{end}", readme, count=1))
    return True
