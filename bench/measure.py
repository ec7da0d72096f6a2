"""Running one measured variant: a child process, its wall time and its own peak RSS.

``os.wait4`` gives the resource usage of exactly that child (``ru_maxrss``), where
``RUSAGE_CHILDREN`` would report the largest of all children so far; no ``/usr/bin/time``
needed. Children are started by :mod:`bench.launcher`, a bare interpreter, because
``ru_maxrss`` starts at the resident size of whatever forked the child. Output goes to a
file, not a pipe, so a chatty child can never block on it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Variables of kitgc that must not leak in from the caller's environment.
_KITGC_VARIABLES = ("DRY_RUN", "REGISTRY_", "MIN_AGE", "PRUNE_KITS", "MAX_DELETIONS", "STATE_CONFIGMAP", "PUSHGATEWAY_",
                    "CONCURRENCY", "LOG_", "REPORT_FILE", "KUBE_PAGE_SIZE", "ALLOW_EMPTY_CLUSTER", "KUBERNETES_SERVICE",
                    "CLUSTER_NAME", "POD_NAMESPACE")


@dataclass
class Measured:
    wall: float
    rss_mb: float
    cpu: float  # user + system seconds of the child: steadier than wall time on a busy machine
    returncode: int
    output: str
    requests: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def clean_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_KITGC_VARIABLES)}
    env["PYTHONPATH"] = REPO_ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(overrides)
    return env


class _Launcher:
    """The small process that starts every measured child (see :mod:`bench.launcher`)."""

    _proc: subprocess.Popen[str] | None = None

    @classmethod
    def job(cls, job: dict[str, Any]) -> dict[str, Any]:
        if cls._proc is None or cls._proc.poll() is not None:
            cls._proc = subprocess.Popen([sys.executable, os.path.join(REPO_ROOT, "bench", "launcher.py")],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                         env={"PATH": os.environ.get("PATH", "")})
        assert cls._proc.stdin is not None and cls._proc.stdout is not None
        cls._proc.stdin.write(json.dumps(job) + "\n")
        cls._proc.stdin.flush()
        answer = cls._proc.stdout.readline()
        if not answer:
            raise RuntimeError("the launcher died")
        return dict(json.loads(answer))


def run(argv: list[str], env: Mapping[str, str], timeout: float) -> Measured:
    """Run ``argv``; killed after ``timeout`` seconds (then ``returncode`` is negative)."""
    with tempfile.NamedTemporaryFile("rb", prefix="kitgc-bench-out-") as out:
        done = _Launcher.job({"argv": argv, "env": dict(env), "cwd": REPO_ROOT, "timeout": timeout,
                              "output": out.name})
        text = out.read().decode("utf-8", "replace")
    rss_mb = done["maxrss_kb"] / 1024.0  # KiB on Linux
    return Measured(round(done["wall"], 3), round(rss_mb, 1), round(done["cpu"], 2), done["returncode"], text)


def kitgc_summary(output: str) -> dict[str, Any]:
    """The ``summary`` event of a kitgc run's JSON log."""
    return kitgc_event(output, "summary")


def kitgc_event(output: str, name: str) -> dict[str, Any]:
    """The last event called ``name`` in a kitgc run's JSON log ({} when there is none)."""
    for line in reversed(output.splitlines()):
        if line.startswith("{"):
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("event") == name:
                return event
    return {}


def last_json(output: str) -> dict[str, Any]:
    for line in reversed(output.splitlines()):
        if line.startswith("{"):
            try:
                return dict(json.loads(line))
            except ValueError:
                continue
    return {}


PYTHON = sys.executable
