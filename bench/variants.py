"""The measured variants, and the scene's helper processes they run against.

Every variant is a child process measured by :func:`bench.measure.run`: ``kitgc`` through
``python -m kitgc`` exactly as a CronJob runs it (environment variables, a kubeconfig, its
JSON log), the floor through ``python -m bench.floor``. The registry's access log says
which requests each one made.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import measure
from bench.scene import Registry
from kitgc.config import Settings
from testbed.servers import stop_process

ORGANIZATION = "camel-k"
TIMEOUT = 900.0  # CONCURRENCY=1 through 20 ms takes about three minutes

# name -> what it is, for the table
VARIANTS = {
    "kitgc": "(a) kitgc dry run, default CONCURRENCY",
    "floor": "(b) floor: a GET per tag, nothing done with the answers",
    "kitgc-c1": "(c) kitgc dry run, CONCURRENCY=1",
    "kitgc-fixed": "(f) kitgc dry run, CONCURRENCY_MAX = CONCURRENCY (no adaptation), beside (a)",
    "kitgc-shard4": "(g) kitgc dry run of one shard of four (SHARDS=4, shard 0): one pod of an Indexed Job",
    "floor-head": "(d) floor with HEAD instead of GET per tag (kitgc's HEAD-first scan, minus its body reads)",
    "kitgc-baseline": "(e) kitgc at the --baseline commit, dry run (before/after, side by side)",
}

# Where ``--baseline REV`` unpacks that commit's gc/ (see :func:`prepare_baseline`).
BASELINE_DIR = Path(measure.REPO_ROOT) / "bench" / ".baseline"
_baseline: dict[str, str] = {}


def prepare_baseline(rev: str) -> str:
    """Unpack ``rev``'s gc/ once, so variant kitgc-baseline runs that code; the commit's id."""
    commit = subprocess.run(["git", "rev-parse", "--verify", f"{rev}^{{commit}}"], cwd=measure.REPO_ROOT,
                            capture_output=True, text=True, check=True).stdout.strip()
    target = BASELINE_DIR / commit
    if not (target / "gc" / "kitgc").is_dir():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", commit, "gc"], cwd=measure.REPO_ROOT, capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    _baseline["pythonpath"] = str(target / "gc")
    return commit


@dataclass
class Helper:
    """A helper child (emulated API, latency proxy) that stops when its stdin closes."""

    process: subprocess.Popen[bytes]
    ready: list[str]

    @classmethod
    def start(cls, module: str, *args: str) -> Helper:
        proc = subprocess.Popen([sys.executable, "-m", module, *args], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, cwd=measure.REPO_ROOT, env=measure.clean_env())
        assert proc.stdout is not None
        line = proc.stdout.readline().decode().split()
        if not line or line[0] != "READY":
            stop_process(proc, timeout=5)
            raise RuntimeError(f"{module} did not start")
        return cls(proc, line[1:])

    def stop(self) -> None:
        """Close its stdin (how it is told to stop), give it 15 s to finish, then kill it."""
        if self.process.stdin:
            self.process.stdin.close()
        stop_process(self.process, timeout=15, terminate=False)


def kitgc_env(registry: str, kubeconfig: Path, **extra: str) -> dict[str, str]:
    """kitgc's environment, with glibc's malloc tuned as the container image tunes it."""
    return measure.clean_env(REGISTRY_ADDRESS=registry, REGISTRY_ORGANIZATION=ORGANIZATION,
                             REGISTRY_INSECURE="true", KUBECONFIG=str(kubeconfig), LOG_FORMAT="json",
                             **{"MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": "131072", **extra})


def run_variant(name: str, address: str, registry: Registry, kubeconfig: Path) -> measure.Measured:
    """One measured run of ``name`` against the registry at ``address`` (direct or proxied)."""
    offset = registry.log_offset()
    if name.startswith("kitgc"):
        extra = {"CONCURRENCY": "1"} if name == "kitgc-c1" else {}
        if name == "kitgc-fixed":
            extra["CONCURRENCY_MAX"] = str(Settings().concurrency)
        if name == "kitgc-shard4":  # reads every reference, scans and plans a quarter of the repositories
            extra.update(SHARDS="4", JOB_COMPLETION_INDEX="0")
        if name == "kitgc-baseline":  # that commit's package first on the path, ahead of the installed one
            if "pythonpath" not in _baseline:
                raise RuntimeError("variant kitgc-baseline needs --baseline REV")
            extra["PYTHONPATH"] = _baseline["pythonpath"] + os.pathsep + measure.REPO_ROOT
        m = measure.run([sys.executable, "-m", "kitgc"], kitgc_env(address, kubeconfig, DRY_RUN="true", **extra),
                        TIMEOUT)
        summary = measure.kitgc_summary(m.output)
        m.extra = {k: summary.get(k) for k in ("manifests_scanned", "manifests_referenced", "manifests_eligible",
                                                "kits_eligible", "bytes_reclaimable", "exit_code")}
        adapted = measure.kitgc_event(m.output, "registry_concurrency")  # where adaptation took the limit
        m.extra["concurrency"] = {k: v for k, v in adapted.items() if k not in ("event", "level", "timestamp")}
        ok = m.returncode == 0 and summary.get("exit_code") == 0
    else:
        mode = {"floor-head": "head", "warm-cluster": "none"}.get(name, "get")
        m = measure.run([sys.executable, "-m", "bench.floor", "--registry", address, "--organization", ORGANIZATION,
                         "--kubeconfig", str(kubeconfig), "--mode", mode], measure.clean_env(), TIMEOUT)
        m.extra = measure.last_json(m.output)
        ok = m.returncode == 0 and bool(m.extra)
    m.requests = registry.requests_since(offset)
    if not ok:
        raise RuntimeError(f"{name} failed (exit {m.returncode}):\n{m.output[-3000:]}")
    m.output = ""  # kept only on failure
    return m


def enforce_run(address: str, registry: Registry, kubeconfig: Path) -> dict[str, Any]:
    """A real run (DRY_RUN=false) on a scratch copy: one DELETE per deleted digest?"""
    offset = registry.log_offset()
    m = measure.run([sys.executable, "-m", "kitgc"], kitgc_env(address, kubeconfig, DRY_RUN="false"), TIMEOUT)
    summary = measure.kitgc_summary(m.output)
    if m.returncode != 0:
        raise RuntimeError(f"enforce run failed (exit {m.returncode}):\n{m.output[-3000:]}")
    return {"wall": m.wall, "rss_mb": m.rss_mb, "cpu": m.cpu, "requests": registry.requests_since(offset),
            "manifests_deleted": summary.get("manifests_deleted"), "kits_deleted": summary.get("kits_deleted"),
            "delete_failures": summary.get("delete_failures")}
