"""A delay proxy: what round trips cost on the real internet, on loopback.

Run as `python -m riskiturva.lab._latency SPEC.json`; SPEC is
`{"rtt_ms": N, "routes": [{"proto": "tcp"|"udp", "listen": [ip, port], "target": [ip, port]}]}`.
Every datagram and every TCP chunk is held for half the round-trip time in each direction,
in order, so a query costs one added RTT and a TLS handshake costs what it would. A new TCP
connection's first bytes also wait one RTT, standing in for the TCP handshake the kernel
has already completed locally. (The kernel here has no `netem`.)
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any, cast

# Long enough for any answer (resolver timeouts are a few seconds), short enough that a
# burst of queries — each from its own source port — does not run out of descriptors.
_UDP_IDLE_SECONDS = 5.0


async def _pump(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float, first_extra: float
) -> None:
    """Copy reader to writer, each chunk `delay` seconds late, order kept."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, data = await queue.get()
            await asyncio.sleep(max(0.0, due - loop.time()))
            if not data:
                break
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(deliver())
    extra = first_extra
    try:
        while True:
            data = await reader.read(65536)
            queue.put_nowait((loop.time() + delay + extra, data))
            extra = 0.0
            if not data:
                break
        await sender
    except (ConnectionError, OSError):
        sender.cancel()
    finally:
        writer.close()


async def _tcp_route(listen: tuple[str, int], target: tuple[str, int], rtt: float) -> None:
    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            upstream_r, upstream_w = await asyncio.open_connection(*target)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(
            _pump(client_r, upstream_w, rtt / 2, rtt),
            _pump(upstream_r, client_w, rtt / 2, 0.0),
            return_exceptions=True,
        )

    server = await asyncio.start_server(handle, *listen)
    await server.serve_forever()


class _Upstream(asyncio.DatagramProtocol):
    """One client's view of the UDP target: replies go back to that client, late."""

    def __init__(self, front: asyncio.DatagramTransport, client: Any, delay: float) -> None:
        self.front, self.client, self.delay = front, client, delay

    def datagram_received(self, data: bytes, addr: Any) -> None:
        asyncio.get_running_loop().call_later(self.delay, self.front.sendto, data, self.client)


class _Front(asyncio.DatagramProtocol):
    def __init__(self, target: tuple[str, int], delay: float) -> None:
        self.target, self.delay = target, delay
        self.upstreams: dict[Any, asyncio.DatagramTransport] = {}
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport does not subclass DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        asyncio.get_running_loop().call_later(
            self.delay, lambda: asyncio.ensure_future(self._forward(data, addr))
        )

    async def _forward(self, data: bytes, client: Any) -> None:
        assert self.transport is not None
        upstream = self.upstreams.get(client)
        if upstream is None:
            loop = asyncio.get_running_loop()
            upstream, _ = await loop.create_datagram_endpoint(
                lambda: _Upstream(self.transport, client, self.delay),  # type: ignore[arg-type]
                remote_addr=self.target,
            )
            self.upstreams[client] = upstream
            # Stub resolvers use a new source port per query: forget idle ones.
            loop.call_later(_UDP_IDLE_SECONDS, self._forget, client)
        upstream.sendto(data)

    def _forget(self, client: Any) -> None:
        upstream = self.upstreams.pop(client, None)
        if upstream is not None:
            upstream.close()


async def _udp_route(listen: tuple[str, int], target: tuple[str, int], rtt: float) -> None:
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(lambda: _Front(target, rtt / 2), local_addr=listen)
    await asyncio.Event().wait()


async def serve(spec: dict[str, Any]) -> None:
    rtt = float(spec["rtt_ms"]) / 1000
    routes = []
    for route in spec["routes"]:
        listen, target = tuple(route["listen"]), tuple(route["target"])
        run = _tcp_route if route["proto"] == "tcp" else _udp_route
        routes.append(run(listen, target, rtt))
    await asyncio.gather(*routes)


if __name__ == "__main__":
    asyncio.run(serve(json.loads(Path(sys.argv[1]).read_text())))
