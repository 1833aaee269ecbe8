"""The lab's mail exchangers: real SMTP (aiosmtpd), with or without STARTTLS.

Run as `python -m riskiturva.lab._smtp SPEC.json`; SPEC lists
`{"ip", "port", "hostname", "cert", "key"}` (cert and key null: no STARTTLS offered).
Messages are accepted and dropped.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session

from riskiturva.lab._web import MOZILLA_INTERMEDIATE_CIPHERS


class _Discard:
    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return "250 OK: discarded by the lab"


def _tls_context(cert: str, key: str) -> ssl.SSLContext:
    """TLS 1.2+ with Mozilla's intermediate suites and a P-256 group only."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(MOZILLA_INTERMEDIATE_CIPHERS)
    ctx.set_ecdh_curve("prime256v1")
    ctx.load_cert_chain(cert, key)
    return ctx


async def serve(spec: list[dict[str, object]]) -> None:
    loop = asyncio.get_running_loop()
    servers = []
    for entry in spec:
        tls = _tls_context(str(entry["cert"]), str(entry["key"])) if entry["cert"] else None
        hostname = str(entry["hostname"])

        def factory(tls: ssl.SSLContext | None = tls, hostname: str = hostname) -> SMTP:
            return SMTP(_Discard(), hostname=hostname, ident="ESMTP", tls_context=tls)

        servers.append(await loop.create_server(factory, str(entry["ip"]), int(str(entry["port"]))))
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    asyncio.run(serve(json.loads(Path(sys.argv[1]).read_text())))
