"""A real HTTP(S) receiver on loopback for the alert tests.

It records every request as it arrived and, like a careful receiver (a ticketing system
behind a webhook), processes each `Idempotency-Key` once: repeats are answered 200 and
counted, not processed. It can answer with a chosen status, run a hook before answering
(the crash tests kill the sender there), and be stopped and started again on the same
port to stand for an outage.
"""

from __future__ import annotations

import datetime as dt
import json
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.smtp import free_port, make_ca, server_context


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    at: dt.datetime

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def key(self) -> str | None:
        return self.headers.get("idempotency-key")


@dataclass
class Receiver:
    folder: Path
    tls: bool = True
    port: int = field(default_factory=free_port)
    status: int = 202
    on_request: Callable[[Request], None] | None = None
    requests: list[Request] = field(default_factory=list)
    processed: dict[str, Request] = field(default_factory=dict)
    repeats: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()
        self._context: ssl.SSLContext | None = None
        if self.tls:
            key, cert, self.ca_file = make_ca(self.folder, f"receiver-ca-{self.port}")
            self._context = server_context(self.folder, key, cert)

    def url(self, path: str) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}{path}"

    def _record(self, request: Request) -> int:
        with self._lock:
            self.requests.append(request)
            if request.key in self.processed:
                self.repeats.append(request)
                return 200
            if self.status < 300 and request.key is not None:
                self.processed[request.key] = request
            return self.status

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                request = Request(
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length),
                    dt.datetime.now(dt.UTC),
                )
                status = receiver._record(request)
                if receiver.on_request is not None:
                    receiver.on_request(request)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender is gone (the crash tests kill it right here)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        if self._context is not None:
            server.socket = self._context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
