"""Progress on long runs: a bar for people at a terminal, periodic events for CronJob logs."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from typing import Any

import pytest

from kitgc import progress
from kitgc.cli import main
from kitgc.config import Settings
from testbed import objects
from testbed.world import World


class Log:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def info(self, event: str, **kw: Any) -> None:
        self.events.append({"event": event, **kw})


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_json_progress_speaks_every_n_repositories() -> None:
    log, clock = Log(), Clock()
    p = progress.JsonProgress(log, every_repositories=10, every_seconds=1e9, clock=clock)

    for done in range(1, 36):
        p(done, 35)

    assert [e["repositories_done"] for e in log.events] == [10, 20, 30]
    assert {e["repositories_total"] for e in log.events} == {35}


def test_json_progress_speaks_every_interval_and_leaves_the_end_to_the_summary() -> None:
    log, clock = Log(), Clock()
    p = progress.JsonProgress(log, every_repositories=1000, every_seconds=10, clock=clock)

    for done, t in ((1, 1), (2, 11), (3, 12), (4, 25), (5, 40)):
        clock.now = t
        p(done, 5)

    assert [(e["repositories_done"], e["elapsed_seconds"]) for e in log.events] == [(2, 11), (4, 25)]


def test_heartbeat_repeats_the_counts_while_a_slow_repository_holds_the_scan() -> None:
    log, clock = Log(), Clock()
    p = progress.JsonProgress(log, every_repositories=1000, every_seconds=10, clock=clock)
    p.heartbeat()  # nothing known yet: silent
    p(1, 3)
    clock.now = 5
    p.heartbeat()
    clock.now = 15
    p.heartbeat()
    p(3, 3)
    clock.now = 60
    p.heartbeat()  # the scan is over: silent

    assert [(e["repositories_done"], e["elapsed_seconds"]) for e in log.events] == [(1, 15)]


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_console_mode_draws_a_bar_only_on_a_terminal() -> None:
    console = Settings(log_format="console")
    with progress.reporter(console, io.StringIO()) as cb:
        assert cb is None
    tty = Tty()
    with progress.reporter(console, tty) as cb:
        assert isinstance(cb, progress.ConsoleProgress)
        for done in range(1, 4):
            cb(done, 3)
    assert "scanning kit repositories" in tty.getvalue()


def test_json_run_logs_scan_progress_events_between_repositories(
    registry, kube, org, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(progress, "EVERY_REPOSITORIES", 1)
    world = World(registry, kube, org)
    world.anchor()
    for i in range(4):
        world.push(world.repo(objects.kit_name(f"progress-{i}")), "1")
    env = {"REGISTRY_ADDRESS": registry.address, "REGISTRY_ORGANIZATION": org, "REGISTRY_INSECURE": "true",
           "LOG_FORMAT": "json", "KUBECONFIG": str(kube.kubeconfig)}
    out = io.StringIO()
    with redirect_stdout(out):
        assert main([], env) == 0

    events = [json.loads(line) for line in out.getvalue().splitlines()]  # still one JSON object per line
    seen = [e["repositories_done"] for e in events if e["event"] == "scan_progress"]
    assert seen == [1, 2, 3]
    assert all(e["repositories_total"] == 4 for e in events if e["event"] == "scan_progress")
