"""The reliability figures: faults injected by kind, runs, wrongful deletions, garbage left.

The fault, race and concurrency tests record what they did here; at the end of the session
the totals are printed in pytest's summary and written to ``build/reliability-figures.json``,
so the figures a reviewer asks for come from the run itself, not from a hand-kept note.

    def test_x(figures):
        figures.fault("http_503", 2)
        figures.run(seconds=0.4, wrongful=0)
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

OUT = Path(os.environ.get("KITGC_FIGURES", "build/reliability-figures.json"))


@dataclass
class Figures:
    faults: Counter[str] = field(default_factory=Counter)
    runs: int = 0
    wrongful_deletions: int = 0
    garbage_left_after_clean_run: int = 0
    clean_follow_up_runs: int = 0
    soak_runs: int = 0
    longest_soak_run_seconds: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)

    def fault(self, kind: str, count: int = 1) -> None:
        if count:
            self.faults[kind] += count

    def add_faults(self, counts: Counter[str] | dict[str, int]) -> None:
        for kind, count in counts.items():
            self.fault(kind, count)

    def run(self, *, wrongful: int = 0) -> None:
        self.runs += 1
        self.wrongful_deletions += wrongful

    def converged(self, garbage_left: int) -> None:
        self.clean_follow_up_runs += 1
        self.garbage_left_after_clean_run += garbage_left

    def soak_run(self, seconds: float) -> None:
        self.soak_runs += 1
        self.longest_soak_run_seconds = max(self.longest_soak_run_seconds, round(seconds, 3))

    def as_dict(self) -> dict[str, Any]:
        return {
            "faults_injected_by_kind": dict(sorted(self.faults.items())),
            "faults_injected_total": sum(self.faults.values()),
            "runs": self.runs,
            "wrongful_deletions": self.wrongful_deletions,
            "clean_follow_up_runs": self.clean_follow_up_runs,
            "garbage_left_after_clean_follow_up_run": self.garbage_left_after_clean_run,
            "soak_runs": self.soak_runs,
            "longest_soak_run_seconds": self.longest_soak_run_seconds,
            **self.notes,
        }


FIGURES = Figures()


@pytest.fixture(scope="session")
def figures() -> Iterator[Figures]:
    yield FIGURES


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES.runs and not FIGURES.faults:
        return
    data = FIGURES.as_dict()
    try:
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(data, indent=2) + "\n")
    except OSError:
        pass
    terminalreporter.section("reliability figures")
    for key, value in data.items():
        terminalreporter.write_line(f"{key}: {value}")
