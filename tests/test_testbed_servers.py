"""The testbed's start/stop helpers (testbed/servers.py): every server the suite starts goes through
them, so a failed start must say why and a stop must leave no child behind."""

from __future__ import annotations

import sys
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest

from testbed.servers import (
    BackgroundHTTPServer,
    ServerDidNotStart,
    free_port,
    on_free_port,
    running_process,
    stop_process,
    wait_until_answers,
)


def test_child_that_exits_early_is_reported_with_the_tail_of_its_log(tmp_path: Path) -> None:
    log = tmp_path / "child.log"
    with running_process([sys.executable, "-c", "import sys; sys.exit('no such config')"], log) as child, \
            pytest.raises(ServerDidNotStart, match=r"(?s)child exited with code 1.*no such config"):
        wait_until_answers(f"http://127.0.0.1:{free_port()}/", timeout=10, what="child", process=child, log=log)


def test_port_that_never_answers_fails_at_the_deadline() -> None:
    started = time.monotonic()
    with pytest.raises(ServerDidNotStart, match="did not answer"):
        wait_until_answers(f"127.0.0.1:{free_port()}", timeout=0.3)
    assert time.monotonic() - started < 5


def test_running_process_stops_the_child_however_the_block_ends(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), \
            running_process([sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / "log") as child:
        raise RuntimeError("the test failed")
    assert child.poll() is not None


def test_child_that_ignores_sigterm_is_killed(tmp_path: Path) -> None:
    script = "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); " \
             "time.sleep(60)"
    with running_process([sys.executable, "-c", script], tmp_path / "log", stop_timeout=0.5) as child:
        deadline = time.monotonic() + 10
        while "up" not in (tmp_path / "log").read_text() and time.monotonic() < deadline:
            time.sleep(0.02)
        stop_process(child, timeout=0.5)
        assert child.returncode == -9


def test_start_is_retried_on_another_port_when_the_first_one_fails() -> None:
    ports: list[int] = []

    def start(port: int) -> int:
        ports.append(port)
        if len(ports) == 1:
            raise ServerDidNotStart("port taken meanwhile")
        return port

    assert on_free_port(start) == ports[-1] and len(ports) == 2


def test_background_http_server_serves_until_stopped() -> None:
    class Hello(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with BackgroundHTTPServer(Hello, name="hello") as server:
        assert httpx.get(server.url).status_code == 204
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url)
