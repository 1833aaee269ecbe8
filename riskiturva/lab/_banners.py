"""Listeners that answer like the services they stand for, enough for `nmap -sV`.

Run as `python -m riskiturva.lab._banners SPEC.json`; SPEC lists `{"ip", "port", "kind"}`.
Each kind sends what nmap's service probes match (see nmap-service-probes): a Linux
telnetd's option negotiation, a Windows RDP and SMB negotiation reply, a MySQL handshake,
SSH identification strings (upstream and Debian builds), an Exim SMTP greeting, an Apache
`Server` header, an Elasticsearch REST answer. None of them does more. One kind,
`silent_https`, accepts connections on 443 and never says a word.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

_TELNET_NEGOTIATION = b"\xff\xfd\x18\xff\xfd\x20\xff\xfd\x23\xff\xfd\x27"
# X.224 connection confirm with an RDP negotiation response (Windows).
_RDP_CONFIRM = b"\x03\x00\x00\x13\x0e\xd0\x00\x00\x12\x34\x00\x02\x1f\x08\x00\x02\x00\x00\x00"
# SMB1 negotiate response as Windows 7 - 10 sends it ("NT LM 0.12", extended security).
_SMB_NEGOTIATE = (
    b"\xffSMBr\x00\x00\x00\x00\x88\x01@" + b"\x00" * 14 + b"@\x06\x00\x00\x01\x00"
    b"\x11\x07\x00\x03\n\x00\x01\x00\x04\x11\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00"
    b"\xfc\xe3\x01\x00" + b"\x00" * 16
)
_ELASTIC_BODY = """{
  "name" : "es-data-01",
  "cluster_name" : "sekala-lokit",
  "cluster_uuid" : "Zq5Tg6gQRXe0l3GkQe1aNw",
  "version" : {
    "number" : "8.15.3",
    "build_flavor" : "default",
    "build_type" : "deb",
    "lucene_version" : "9.11.1",
    "minimum_wire_compatibility_version" : "7.17.0",
    "minimum_index_compatibility_version" : "7.0.0"
  },
  "tagline" : "You Know, for Search"
}
"""


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


async def _read(reader: asyncio.StreamReader, n: int = 4096, timeout: float = 10.0) -> bytes:
    try:
        return await asyncio.wait_for(reader.read(n), timeout)
    except (TimeoutError, OSError):
        return b""


def _greeting(payload: bytes) -> Handler:
    """Send `payload` on connect, then wait for the client to go."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(payload)
        await writer.drain()
        await _read(reader)
        await _close(writer)

    return handle


def _reply(payload: bytes) -> Handler:
    """Answer the client's first message with `payload`."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if await _read(reader):
            writer.write(payload)
            await writer.drain()
            await _read(reader)
        await _close(writer)

    return handle


def _mysql_handshake(version: str) -> bytes:
    body = (
        b"\x0a"
        + version.encode()
        + b"\x00"
        + struct.pack("<I", 8)  # connection id
        + b"lab8salt\x00"
        + struct.pack("<H", 0xF7FF)  # capability flags (lower)
        + b"\x21"  # utf8
        + struct.pack("<H", 0x0002)  # status
        + struct.pack("<H", 0x81FF)  # capability flags (upper)
        + b"\x15"
        + b"\x00" * 10
        + b"lab12saltmore\x00"
        + b"mysql_native_password\x00"
    )
    return struct.pack("<I", len(body))[:3] + b"\x00" + body


async def _elasticsearch(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    if await _read(reader):
        body = _ELASTIC_BODY.encode()
        writer.write(
            b"HTTP/1.0 200 OK\r\ncontent-type: application/json; charset=UTF-8\r\n"
            + f"content-length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
    await _close(writer)


def _http(server: str) -> Handler:
    """Answer any request like a web server whose `Server` header is `server`."""
    body = b"<!doctype html><title>It works!</title><h1>It works!</h1>\n"

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if await _read(reader):
            writer.write(
                b"HTTP/1.1 200 OK\r\nDate: Tue, 01 Dec 2026 10:00:00 GMT\r\n"
                + f"Server: {server}\r\n".encode()
                + b"Last-Modified: Mon, 11 Jun 2007 18:53:14 GMT\r\nAccept-Ranges: bytes\r\n"
                + f"Content-Length: {len(body)}\r\n".encode()
                + b"Connection: close\r\nContent-Type: text/html\r\n\r\n"
                + body
            )
            await writer.drain()
        await _close(writer)

    return handle


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accept, then never answer: a stalled server, or a middlebox that holds connections."""
    with contextlib.suppress(OSError):
        while await reader.read(4096):
            pass
    await _close(writer)


HANDLERS: dict[str, Handler] = {
    "telnet": _greeting(_TELNET_NEGOTIATION + b"\r\nDebian GNU/Linux 12\r\npalvelin login: "),
    "rdp": _reply(_RDP_CONFIRM),
    "smb": _reply(struct.pack(">I", len(_SMB_NEGOTIATE)) + _SMB_NEGOTIATE),
    "mysql": _greeting(_mysql_handshake("8.0.36")),
    "ssh_outdated": _greeting(b"SSH-2.0-OpenSSH_7.4\r\n"),
    "ssh_current": _greeting(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"),
    "ssh_debian9": _greeting(b"SSH-2.0-OpenSSH_7.4p1 Debian-10+deb9u7\r\n"),
    "smtp_exim": _greeting(
        b"220 palvelin.rapala.test ESMTP Exim 4.89 Tue, 01 Dec 2026 12:00:00 +0200\r\n"
    ),
    "http_apache": _http("Apache/2.4.49 (Unix)"),
    "http_apache_debian": _http("Apache/2.4.38 (Debian)"),
    "elasticsearch": _elasticsearch,
    "silent_https": _silent,
}


async def serve(spec: list[dict[str, object]]) -> None:
    servers = [
        await asyncio.start_server(HANDLERS[str(e["kind"])], str(e["ip"]), int(str(e["port"])))
        for e in spec
    ]
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    asyncio.run(serve(json.loads(Path(sys.argv[1]).read_text())))
