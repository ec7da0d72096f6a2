"""The emulated Kubernetes API of the scene, in its own process.

Its own process so that serving 130 MB of JSON per cluster read does not share a GIL with
the latency proxy or the measuring loop. Started by :mod:`bench.__main__`; prints one line
``READY <url> <objects>`` when it serves, and stops by itself when its standard input
closes (the benchmark ended, however) or after ``--max-seconds``.

    python -m bench.kubeserver --kubeconfig /tmp/kubeconfig [--max-seconds 3600]
"""

from __future__ import annotations

import argparse
import select
import sys
import time
from pathlib import Path

from bench.cluster import build_objects
from bench.scene import SceneSpec, plan_kits
from testbed.kubeapi import KubeAPI


def serve(kubeconfig: Path, max_seconds: float) -> None:
    spec = SceneSpec()
    api = KubeAPI(cache_reads=True)
    count = 0
    for obj in build_objects(spec, plan_kits(spec)):
        api.store.add(obj)
        count += 1
    api.start()
    api.write_kubeconfig(kubeconfig)
    print(f"READY {api.url} {count}", flush=True)
    deadline = time.monotonic() + max_seconds
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([sys.stdin], [], [], 1.0)
            if ready and not sys.stdin.buffer.read1(4096):  # EOF: the benchmark is gone
                break
            api.log.clear()  # the request log is for tests; here it would only grow
    finally:
        api.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.kubeserver")
    parser.add_argument("--kubeconfig", required=True, type=Path)
    parser.add_argument("--max-seconds", type=float, default=3600.0)
    args = parser.parse_args()
    serve(args.kubeconfig, args.max_seconds)


if __name__ == "__main__":
    main()
