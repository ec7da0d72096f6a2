"""Starting and stopping the testbed's servers, done one way so that none is left running.

The registry and the Pushgateway are real binaries run as child processes; the Kubernetes
API emulator, the token issuer and the fault proxy are HTTP servers in a thread of the test
process. Every one of them listens on a free loopback port and must be waited for before use
and stopped afterwards, whatever happened in between: a child left behind holds its port and
its temporary directory, a failed start must say why (the tail of the child's log) rather
than time out somewhere later. This module is that code, once.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

import httpx

T = TypeVar("T")
LOOPBACK = "127.0.0.1"


class ServerDidNotStart(RuntimeError):
    """A server did not answer in time (or its process ended first); the message has its log tail."""


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (the caller retries if it is taken meanwhile)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def log_tail(path: Path | None, chars: int = 2000) -> str:
    """The end of a child's log, which is where it says why it stopped."""
    if path is None or not path.exists():
        return ""
    return path.read_text(errors="replace")[-chars:]


def _answers(target: str, client: httpx.Client | None, accept: Callable[[httpx.Response], bool]) -> bool:
    if client is None:  # host:port: a TCP connection is the answer
        host, _, port = target.rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=1.0):
                return True
        except OSError:
            return False
    try:
        return accept(client.get(target))
    except httpx.HTTPError:
        return False


def wait_until_answers(
    target: str, *, timeout: float, what: str = "server", process: subprocess.Popen[Any] | None = None,
    log: Path | None = None, verify: Any = True, auth: Any = None,
    accept: Callable[[httpx.Response], bool] = lambda response: True, interval: float = 0.05,
) -> None:
    """Poll ``target`` (a URL, or ``host:port`` for a bare TCP port) until it answers.

    For a URL, any HTTP answer counts unless ``accept`` says otherwise (a registry with
    authentication answers 401, and that means it serves). Raises :class:`ServerDidNotStart`,
    with the tail of ``log``, when ``process`` ends first or ``timeout`` seconds pass.
    """
    deadline = time.monotonic() + timeout
    client = httpx.Client(verify=verify, auth=auth, timeout=1.0) if "://" in target else None
    try:
        while True:
            if process is not None and process.poll() is not None:
                reason = f"exited with code {process.returncode}"
                break
            if _answers(target, client, accept):
                return
            if time.monotonic() >= deadline:
                reason = f"did not answer at {target} within {timeout:g} s"
                break
            time.sleep(interval)
    finally:
        if client is not None:
            client.close()
    tail = log_tail(log)
    raise ServerDidNotStart(f"{what} {reason}" + (f":\n{tail}" if tail else ""))


def start_process(argv: Sequence[str], log: Path, **popen: Any) -> subprocess.Popen[bytes]:
    """Start ``argv`` with stdout and stderr into ``log`` (truncated) and no stdin."""
    popen.setdefault("stdin", subprocess.DEVNULL)
    with open(log, "wb") as out:
        return subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT, **popen)


def stop_process(process: subprocess.Popen[Any], timeout: float = 5.0, *, terminate: bool = True) -> None:
    """Stop a child for sure: SIGTERM, wait up to ``timeout``, then SIGKILL and reap it.

    ``terminate=False`` is for a child already told to stop another way (its stdin closed):
    it gets ``timeout`` seconds to finish on its own before it is killed.
    """
    if process.poll() is not None:
        return
    if terminate:
        process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


@contextmanager
def running_process(argv: Sequence[str], log: Path, *, stop_timeout: float = 5.0,
                    **popen: Any) -> Iterator[subprocess.Popen[bytes]]:
    """:func:`start_process`, and :func:`stop_process` when the block ends, however it ends."""
    process = start_process(argv, log, **popen)
    try:
        yield process
    finally:
        stop_process(process, stop_timeout)


def on_free_port(start: Callable[[int], T], *, attempts: int = 3) -> T:
    """``start(port)`` on a free port, again on another one if it fails to start.

    Between :func:`free_port` and the child binding it, another process may take the port;
    ``start`` must clean up after itself and raise :class:`ServerDidNotStart` in that case.
    """
    for attempt in range(attempts):
        try:
            return start(free_port())
        except ServerDidNotStart:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


class QuietHTTPServer(ThreadingHTTPServer):
    """A threaded HTTP server whose handler threads never block the interpreter's exit.

    Clients that hang up mid-answer (a timeout test, a body too large) are the point of many
    tests, so a broken connection is not printed as an error; anything else still is.
    """

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class BackgroundHTTPServer:
    """An HTTP server on a free loopback port, served by a daemon thread until :meth:`stop`."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], *, name: str,
                 server_class: type[ThreadingHTTPServer] = QuietHTTPServer) -> None:
        self.name = name
        self._server = server_class((LOOPBACK, 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name=name, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def stop(self) -> None:
        """Stop serving, wait for the serving thread, and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> BackgroundHTTPServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class LoopbackService:
    """What every in-process server of the testbed shares: it serves itself on a free loopback
    port from :meth:`start` (or ``with``) to :meth:`stop`, through its :attr:`handler`, a
    request handler class whose ``owner`` is set to the service in a subclass made at start.

    A service that holds more than its port (a client to an upstream) releases it in :meth:`closed`.
    """

    handler: ClassVar[type[BaseHTTPRequestHandler]]
    service_name: ClassVar[str] = "service"
    server_class: ClassVar[type[ThreadingHTTPServer]] = QuietHTTPServer
    _http: BackgroundHTTPServer | None = None

    def start(self) -> Self:
        bound = type(f"{type(self).__name__}Handler", (self.handler,), {"owner": self})
        self._http = BackgroundHTTPServer(bound, name=self.service_name, server_class=self.server_class)
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.stop()
            self._http = None
        self.closed()

    def closed(self) -> None:
        """Called by :meth:`stop` once the server is down; nothing by default."""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def address(self) -> str:
        assert self._http is not None, f"{self.service_name} not started"
        return self._http.address

    @property
    def url(self) -> str:
        return f"http://{self.address}"
