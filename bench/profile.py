"""Profile one kitgc run on a bench scene: memory by phase, and where the CPU goes.

    python -m bench.profile --scale 4                 # RSS per phase (no slowdown)
    python -m bench.profile --scale 4 --tracemalloc   # and the Python heap's biggest holders
    python -m bench.profile --scale 4 --py-spy        # and py-spy's samples, summed per function
    python -m bench.profile --scale 1 --delete        # a deleting run, on a scratch copy

The scene is :mod:`bench.scene`'s (seeded once, cached) and the cluster :mod:`bench.kubeserver`'s.
What it prints is what the README's profile summary quotes; it is not part of ``make bench``
(tracemalloc and py-spy distort timings), and it writes ``bench/profile-<scale>.json``.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import measure
from bench.scene import SCALES, SceneSpec, prepare, scratch_copy, start_registry
from bench.variants import TIMEOUT, Helper, kitgc_env


def _memory(env: dict[str, str], tracemalloc: bool, tmp: Path) -> dict[str, Any]:
    out = tmp / "memprofile.json"
    argv = [sys.executable, "-m", "bench.memprofile", str(out), *(["--tracemalloc"] if tracemalloc else [])]
    m = measure.run(argv, env, TIMEOUT * 2)
    if m.returncode != 0 or not out.exists():
        raise RuntimeError(f"profiled run failed (exit {m.returncode}):\n{m.output[-3000:]}")
    result: dict[str, Any] = json.loads(out.read_text())
    result["wall"], result["cpu"], result["maxrss_mb"] = m.wall, m.cpu, m.rss_mb
    return result


def _frame_name(frame: str) -> str:
    """``function (path/to/file.py:12)`` -> ``path/to/file.py:function``, shortened at the package."""
    name, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0]
    for marker in ("/gc/", "/site-packages/"):
        if marker in path:
            path = path.rsplit(marker, 1)[-1]
            break
    else:
        path = re.sub(r"^.*/lib/python3\.\d+/", "", path)
    return f"{path}:{name}"


def summarise_samples(raw: str, top: int = 20) -> dict[str, Any]:
    """py-spy's raw (collapsed) stacks summed: per leaf function (self) and per kitgc
    function anywhere on the stack (inclusive), as shares of all samples."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_name(f) for f in stack.split(";") if f and not f.startswith("process ")
                  and not f.startswith("thread ")]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for name in set(frames):
            if name.startswith("kitgc/"):
                inclusive[name] += count

    def shares(counter: collections.Counter[str]) -> list[dict[str, Any]]:
        return [{"function": k, "share": round(v / total, 3)} for k, v in counter.most_common(top)]

    return {"samples": total, "self": shares(own), "inclusive_kitgc": shares(inclusive)}


def _cpu(env: dict[str, str], tmp: Path) -> dict[str, Any]:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    out = tmp / "pyspy.txt"
    argv = [spy, "record", "--format", "raw", "--rate", "200", "--threads", "--output", str(out), "--",
            sys.executable, "-m", "kitgc"]
    m = measure.run(argv, env, TIMEOUT * 2)
    if m.returncode != 0 or not out.exists():
        raise RuntimeError(f"py-spy run failed (exit {m.returncode}):\n{m.output[-3000:]}")
    return {"wall": m.wall, **summarise_samples(out.read_text())}


def _print(result: dict[str, Any]) -> None:
    mem = result["memory"]
    # The run's peak is the highest phase's VmHWM: the resets between phases lower the
    # high-water mark wait4 reports at exit to the last phase's.
    print(f"\nscale {result['scale']}: {result['manifests']} manifests; kitgc {mem['wall']:.1f} s wall, "
          f"{mem['cpu']:.1f} s CPU, peak RSS {mem['peak_rss_mb']:.0f} MB (highest phase)")
    print(f"{'phase':36s} {'at s':>7s} {'RSS MB':>7s} {'peak':>7s} {'heap':>7s}")
    for p in mem["phases"]:
        print(f"{p['phase']:36s} {p['at_s']:7.1f} {p['rss_mb']:7.0f} {p['peak_rss_mb']:7.0f} "
              f"{p.get('heap_peak_mb', ''):>7}")
        for t in p.get("top", [])[:6]:
            print(f"    {t['mb']:7.2f} MB {t['blocks']:8d} blocks  {t['where']}")
    if "cpu" in result:
        cpu = result["cpu"]
        print(f"\npy-spy: {cpu['samples']} samples")
        for title, key in (("self", "self"), ("inclusive (kitgc)", "inclusive_kitgc")):
            print(f"  {title}:")
            for row in cpu[key][:15]:
                print(f"    {row['share'] * 100:5.1f} %  {row['function']}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n")[0])
    p.add_argument("--scale", choices=SCALES, default="1")
    p.add_argument("--tracemalloc", action="store_true")
    p.add_argument("--py-spy", action="store_true", dest="pyspy")
    p.add_argument("--delete", action="store_true", help="a deleting run on a scratch copy of the registry")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                   help="an extra variable for kitgc (repeatable), e.g. MALLOC_ARENA_MAX=2")
    p.add_argument("--output", type=Path)
    args = p.parse_args(argv)
    spec = SceneSpec.for_scale(args.scale)
    registry, _kits, _info = prepare(spec, log=print)
    result: dict[str, Any] = {"scale": args.scale, "manifests": spec.manifests, "delete": args.delete,
                              "env": args.env}
    with tempfile.TemporaryDirectory(prefix="kitgc-profile-") as tmp_name:
        tmp = Path(tmp_name)
        kubeconfig = tmp / "kubeconfig"
        kube = Helper.start("bench.kubeserver", "--kubeconfig", str(kubeconfig), "--scale", args.scale)
        target = registry
        try:
            if args.delete:
                target = start_registry(scratch_copy(spec))
            extra = dict(e.split("=", 1) for e in args.env)
            env = kitgc_env(target.address, kubeconfig, DRY_RUN="false" if args.delete else "true", **extra)
            result["memory"] = _memory(env, args.tracemalloc, tmp)
            if args.pyspy:
                if args.delete:
                    print("--py-spy with --delete profiles the dry run only (the scratch copy is spent)")
                    env = kitgc_env(registry.address, kubeconfig, DRY_RUN="true", **extra)
                result["cpu"] = _cpu(env, tmp)
        finally:
            kube.stop()
            if target is not registry:
                target.stop()
                shutil.rmtree(target.access_log.parent, ignore_errors=True)
            registry.stop()
    output = args.output or Path(measure.REPO_ROOT) / "bench" / f"profile-{args.scale}.json"
    output.write_text(json.dumps(result, indent=1) + "\n")
    _print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
