"""``python -m bench`` (``make bench``): set up the scene, run the rounds, report.

    python -m bench                       # everything (about 15 minutes on 2 cores)
    python -m bench --variants kitgc,floor,kitgc-c1,floor-head   # also HEAD instead of GET
    python -m bench --rounds 1 --networks loopback --variants kitgc,floor   # a quick look
    python -m bench --readme              # also rewrite the README's table
    python -m bench --scale 4 --rounds 1 --networks loopback --variants kitgc,floor --no-enforce
    BENCH_SCALE=large make bench          # 100,000 manifests, 300,000 objects (seeded once, cached)

``--scale`` (or ``BENCH_SCALE``) multiplies today's scene (2,000 kits x 3 tags, 31,000
objects) by 1, 4 or 16, or picks ``large`` (20,000 kits x 5 tags, 200,000 Pods); scenes
bigger than today's are seeded by writing the registry's storage directly (bench.scene_fs)
and results go to ``bench/results-scale-<scale>.json`` unless ``--output`` says otherwise.

Each round runs every variant once per network, in an order that rotates from round to
round, so that a busy neighbour on a shared machine slows all variants alike.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import clusterread, report, scaletable
from bench import variants as variant_runs
from bench.measure import Measured
from bench.scene import SCALES, SceneSpec, prepare, scratch_copy, start_registry
from bench.variants import VARIANTS, Helper, enforce_run, prepare_baseline, run_variant

NETWORKS = {"loopback": 0.0, "latency-20ms": 20.0}


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description="kitgc performance benchmark")
    p.add_argument("--rounds", type=int, default=3, help="measured rounds per network (median of these)")
    p.add_argument("--networks", default=",".join(NETWORKS), help="comma-separated: " + ", ".join(NETWORKS))
    p.add_argument("--variants", default="kitgc,floor,kitgc-c1",
                   help="comma-separated: " + ", ".join(VARIANTS) + " (floor-head: HEAD instead of GET, opt-in)")
    p.add_argument("--cluster-rounds", type=int, default=3, help="rounds of the cluster-read comparison (0: skip)")
    p.add_argument("--no-enforce", action="store_true", help="skip the real run on a scratch copy")
    p.add_argument("--readme", action="store_true", help="rewrite the table between the README's bench markers")
    p.add_argument("--scale", choices=SCALES, default=os.environ.get("BENCH_SCALE") or "1",
                   help="the scene: today's x 1, 4, 16, or large (20,000 kits x 5 tags); default $BENCH_SCALE or 1")
    p.add_argument("--output", type=Path, help="default bench/results.json (scale 1), else results-scale-<s>.json")
    p.add_argument("--warmup", choices=("floor", "cluster"), default="floor",
                   help="before the rounds: a whole floor run (default), or only the cluster's pages (at "
                        "`large`, when the registry's files are already in the page cache from an earlier run)")
    p.add_argument("--baseline", metavar="REV",
                   help="a commit to compare with, side by side (variant kitgc-baseline runs its gc/)")
    return p.parse_args(argv)


def log(message: str) -> None:
    print(message, flush=True)


def _kube_peak_rss_mb(pid: int) -> float | None:
    """The emulator's peak RSS (``VmHWM``), read before it stops: it holds the cluster's pages."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            return next((int(line.split()[1]) / 1024.0 for line in fh if line.startswith("VmHWM:")), None)
    except OSError:
        return None


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    if args.scale not in SCALES:  # BENCH_SCALE is not checked by argparse's choices
        sys.exit(f"unknown scale {args.scale!r} (BENCH_SCALE): expected one of {', '.join(SCALES)}")
    if args.output is None:
        args.output = report.RESULTS if args.scale == "1" else report.RESULTS.with_name(
            f"results-scale-{args.scale}.json")
    if args.readme and args.scale != "1":
        sys.exit("--readme quotes the scale-1 scene only; run it without --scale")
    networks = [n for n in args.networks.split(",") if n]
    variants = [v for v in args.variants.split(",") if v]
    for name in (*networks, *variants):
        if name not in NETWORKS and name not in VARIANTS:
            sys.exit(f"unknown network or variant {name!r}")
    if "kitgc-baseline" in variants:
        if not args.baseline:
            sys.exit("variant kitgc-baseline needs --baseline REV")
        log(f"baseline: {prepare_baseline(args.baseline)}")
    spec = SceneSpec.for_scale(args.scale)
    # A child's time limit grows with the scene: 100,000 manifests through 20 ms on 2 cores
    # take most of an hour for the floor alone.
    variant_runs.TIMEOUT = max(variant_runs.TIMEOUT, spec.manifests * 0.03)
    started = time.monotonic()
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    results: dict[str, Any] = {"date": date, "machine": report.machine(), "rounds": args.rounds, "networks": {},
                               "scene": {"scale": args.scale, "repositories": spec.repositories,
                                         "tags_per_repository": spec.tags, "manifests": spec.manifests,
                                         "kits_in_use": spec.in_use, "foreign_repositories": spec.foreign}}
    registry, _kits, info = prepare(spec, log=log)
    results["scene"]["seed_seconds"] = info.get("seed_seconds")
    results["scene"]["reused_seeded_registry"] = info["cached"]
    results["scene"]["seeder"] = info.get("seeder")
    helpers: list[Helper] = []
    with tempfile.TemporaryDirectory(prefix="kitgc-bench-") as tmp:
        kubeconfig = Path(tmp) / "kubeconfig"
        try:
            kube_started = time.monotonic()
            kube = Helper.start("bench.kubeserver", "--kubeconfig", str(kubeconfig), "--scale", args.scale)
            helpers.append(kube)
            results["scene"]["kubernetes_objects"] = int(kube.ready[1])
            addresses = {"loopback": registry.address}
            if "latency-20ms" in networks:
                proxy = Helper.start("bench.latency_proxy", "--upstream", registry.address, "--delay-ms",
                                     str(NETWORKS["latency-20ms"]))
                helpers.append(proxy)
                addresses["latency-20ms"] = f"127.0.0.1:{proxy.ready[0]}"
            log(f"scene: {spec.manifests} manifests in {spec.repositories} repositories, "
                f"{results['scene']['kubernetes_objects']} Kubernetes objects; warming up")
            warm_name = "floor" if args.warmup == "floor" else "warm-cluster"
            warm = run_variant(warm_name, registry.address, registry, kubeconfig)  # fills caches; not in the table
            # Recorded all the same: at large scales a second floor run is minutes the table can spare.
            results["scene"]["warmup"] = args.warmup
            results["scene"]["warmup_floor"] = {"wall": warm.wall, "cpu": warm.cpu, "rss_mb": warm.rss_mb,
                                                **{k: warm.extra.get(k) for k in ("registry_seconds", "kube_seconds")}}
            log(f"warm-up floor {warm.wall:7.2f} s wall {warm.cpu:6.2f} s CPU {warm.rss_mb:6.0f} MB  "
                f"(registry {warm.extra.get('registry_seconds')} s, cluster {warm.extra.get('kube_seconds')} s)")
            results["scene"]["kubeserver_warm_seconds"] = round(time.monotonic() - kube_started, 1)
            runs: dict[str, dict[str, list[Measured]]] = {n: {v: [] for v in variants} for n in networks}
            for r in range(args.rounds):
                for net in networks:
                    order = variants[r % len(variants):] + variants[:r % len(variants)]
                    for name in order:
                        m = run_variant(name, addresses[net], registry, kubeconfig)
                        runs[net][name].append(m)
                        log(f"round {r + 1}/{args.rounds} {net:13s} {name:10s} {m.wall:7.2f} s wall "
                            f"{m.cpu:6.2f} s CPU {m.rss_mb:6.0f} MB  {m.requests}")
            for net in networks:
                results["networks"][net] = report.summarise(runs[net], spec.manifests)
            if args.cluster_rounds:
                log("cluster read: kitgc's reader, raw JSON, the client's models")
                results["cluster_read"] = clusterread.measure(kubeconfig, args.cluster_rounds, log=log)
            if not args.no_enforce:
                try:
                    results["enforce"] = _enforce(spec, kubeconfig, networks[-1])
                except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                    # Recorded (a run that failed, or a scratch copy that could not be made: a tmpfs
                    # out of inodes), and the dry runs' results are still written.
                    log(f"real run failed: {str(exc)[:2000]}")
                    results["enforce"] = {"network": networks[-1], "error": str(exc)[:2000]}
        finally:
            if helpers:
                results["scene"]["kubeserver_peak_rss_mb"] = _kube_peak_rss_mb(helpers[0].process.pid)
            for helper in helpers:
                helper.stop()
            registry.stop()
    results["targets"] = report.targets(results)
    results["bench_seconds"] = round(time.monotonic() - started)
    results["machine"]["load_average_end"] = report.machine()["load_average"]
    text = report.table(results)
    print("\n" + text + "\n")
    report.write(results, args.output)
    log(f"results written to {args.output} ({results['bench_seconds']} s)")
    scaled = sorted(report.RESULTS.parent.glob("results-scale-*.json"))
    if args.scale != "1" or args.output in scaled:
        print("\nThe scale table (every bench/results-scale-*.json; python -m bench.scaletable):\n")
        print(scaletable.render(scaletable.load(scaled)))
    if args.readme and not report.update_readme(text):
        log("README.md has no bench markers; not updated")
    return 0


def _enforce(spec: SceneSpec, kubeconfig: Path, network: str) -> dict[str, Any]:
    """The real run, last (it deletes kits from the emulated cluster), on a scratch registry,
    through ``network`` (the 20 ms proxy when the table measures that network)."""
    log(f"real run (DRY_RUN=false) on a scratch copy of the registry, {network}")
    scratch = start_registry(scratch_copy(spec))
    proxy: Helper | None = None
    try:
        address = scratch.address
        if NETWORKS[network]:
            proxy = Helper.start("bench.latency_proxy", "--upstream", scratch.address, "--delay-ms",
                                 str(NETWORKS[network]))
            address = f"127.0.0.1:{proxy.ready[0]}"
        return {"network": network, **enforce_run(address, scratch, kubeconfig)}
    finally:
        if proxy is not None:
            proxy.stop()
        scratch.stop()
        # Removed in the background: at 100,000 manifests that is minutes of unlinking.
        subprocess.Popen(["rm", "-rf", str(scratch.access_log.parent)], start_new_session=True)


if __name__ == "__main__":
    sys.exit(main())
