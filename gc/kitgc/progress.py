"""Progress of the registry scan, the long part of a run on a big registry.

Two audiences, two shapes:

* a person at a terminal (``LOG_FORMAT=console`` and stderr is a TTY) gets a transient
  progress bar on stderr, which vanishes once the scan is done and never reaches a log file;
* a CronJob's log (``LOG_FORMAT=json``) gets a ``scan_progress`` event every
  ``every_repositories`` repositories or ``every_seconds`` seconds, whichever comes first,
  so whoever tails it sees that a long run is alive. A heartbeat thread repeats the last
  counts when no repository finishes for a while (one slow repository, a registry that
  throttles), which is exactly when people start to wonder.

``run_pass`` calls the callback with ``(repositories done, repositories total)`` after each
repository; nothing here can change what the run does.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from kitgc import logs
from kitgc.config import Settings

Progress = Callable[[int, int], None]

EVERY_REPOSITORIES = 100
EVERY_SECONDS = 10.0


class JsonProgress:
    """``scan_progress`` events, at most one per interval unless enough repositories finished."""

    def __init__(self, log: Any = None, *, every_repositories: int = EVERY_REPOSITORIES,
                 every_seconds: float = EVERY_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self._log = log or logs.get_logger()
        self._every_n = max(1, every_repositories)
        self._every_s = every_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._started = clock()
        self._last_time = self._started
        self._last_done = 0
        self.done = 0
        self.total: int | None = None

    def __call__(self, done: int, total: int) -> None:
        with self._lock:
            self.done, self.total = done, total
            due = done - self._last_done >= self._every_n or self._clock() - self._last_time >= self._every_s
            if done >= total or not due:
                return  # the summary event reports the end
            self._emit_locked()

    def heartbeat(self) -> None:
        """Repeat the counts when nothing was said for ``every_seconds`` during the scan."""
        with self._lock:
            if self.total is None or self.done >= self.total:
                return
            if self._clock() - self._last_time >= self._every_s:
                self._emit_locked()

    def _emit_locked(self) -> None:
        now = self._clock()
        self._last_time, self._last_done = now, self.done
        self._log.info("scan_progress", repositories_done=self.done, repositories_total=self.total,
                       elapsed_seconds=round(now - self._started, 1))


class ConsoleProgress:
    """A transient rich progress bar on a terminal, started at the first repository."""

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("scanning kit repositories"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=Console(file=stream), transient=True, redirect_stdout=False, redirect_stderr=False,
        )
        self._task: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self._task is None:
            if done >= total:
                return  # finished (or nothing to scan) before anything was shown
            self._progress.start()
            self._task = self._progress.add_task("scan", total=total)
        self._progress.update(self._task, completed=done, total=total)
        if done >= total:
            self.close()

    def close(self) -> None:
        if self._task is not None:
            self._progress.stop()
            self._task = None


@contextmanager
def reporter(settings: Settings, stderr: TextIO | None = None, *, every_seconds: float | None = None,
             every_repositories: int | None = None) -> Iterator[Progress | None]:
    """The progress callback for this run's log format (None: say nothing), cleaned up after."""
    stderr = stderr or sys.stderr
    every_seconds = EVERY_SECONDS if every_seconds is None else every_seconds
    every_repositories = EVERY_REPOSITORIES if every_repositories is None else every_repositories
    if settings.log_format == "console":
        if not stderr.isatty():
            yield None
            return
        bar = ConsoleProgress(stderr)
        try:
            yield bar
        finally:
            bar.close()
        return
    events = JsonProgress(every_repositories=every_repositories, every_seconds=every_seconds)
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(min(1.0, every_seconds)):
            events.heartbeat()

    thread = threading.Thread(target=beat, name="kitgc-progress", daemon=True)
    thread.start()
    try:
        yield events
    finally:
        stop.set()
        thread.join(timeout=2)
