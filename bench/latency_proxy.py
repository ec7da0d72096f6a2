"""A loopback TCP proxy that delays every request by a fixed time: a registry far away.

Each chunk the client sends is forwarded ``delay`` seconds after it arrived (stamped on
arrival, so chunks of one request are not delayed one after the other, and order is kept);
answers come back at once. Each HTTP request therefore takes ``delay`` longer, as it does
through a WAN link with that much round-trip time. Connections are never reused across
clients; keep-alive works as it would directly.

Loopback only: it listens on 127.0.0.1 and forwards only to a 127.0.0.0/8 address. It
prints ``READY <port>`` and stops by itself when its standard input closes or after
``--max-seconds``.

    python -m bench.latency_proxy --upstream 127.0.0.1:5000 --delay-ms 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import sys
import time


async def _pump_delayed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def send() -> None:
        while True:
            due, data = await queue.get()
            if not data:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        with contextlib.suppress(OSError):
            writer.write_eof()

    sender = asyncio.create_task(send())
    try:
        while data := await reader.read(65536):
            queue.put_nowait((time.monotonic() + delay, data))
    finally:
        queue.put_nowait((0.0, b""))
        await sender


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    with contextlib.suppress(OSError):
        writer.write_eof()


async def _serve(upstream: tuple[str, int], delay: float, max_seconds: float) -> None:
    async def handle(c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        try:
            u_reader, u_writer = await asyncio.open_connection(*upstream)
        except OSError:
            c_writer.close()
            return
        try:
            await asyncio.gather(_pump_delayed(c_reader, u_writer, delay), _pump(u_reader, c_writer))
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for w in (u_writer, c_writer):
                w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(f"READY {port}", flush=True)
    loop = asyncio.get_running_loop()
    stdin_closed = asyncio.Event()

    def on_stdin() -> None:
        if not sys.stdin.buffer.read1(4096):
            stdin_closed.set()

    loop.add_reader(sys.stdin.fileno(), on_stdin)
    async with server:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stdin_closed.wait(), max_seconds)
    loop.remove_reader(sys.stdin.fileno())


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.latency_proxy")
    parser.add_argument("--upstream", required=True, help="host:port of the registry (loopback)")
    parser.add_argument("--delay-ms", type=float, default=20.0)
    parser.add_argument("--max-seconds", type=float, default=3600.0)
    args = parser.parse_args()
    host, _, port = args.upstream.rpartition(":")
    if not ipaddress.ip_address(host).is_loopback:
        parser.error("the upstream must be a loopback address")
    asyncio.run(_serve((host, int(port)), args.delay_ms / 1000.0, args.max_seconds))


if __name__ == "__main__":
    main()
