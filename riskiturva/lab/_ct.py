"""The lab's Certificate Transparency log: crt.sh's JSON interface for the lab's own certificates.

Run as `python -m riskiturva.lab._ct SPEC.json`; SPEC is `{"listen": [ip, port], "rows": [...]}`
with one crt.sh-style row per certificate. `GET /?q=%.example.test&output=json` answers the
rows with a name under `example.test` (`q=example.test`: the name itself too), as crt.sh does.
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from cryptography import x509


def certificate_row(row_id: int, pem: bytes) -> dict[str, Any]:
    """A crt.sh JSON row for one certificate."""
    cert = x509.load_pem_x509_certificate(pem)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns_names = names.get_values_for_type(x509.DNSName)
    common = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return {
        "issuer_ca_id": 1,
        "issuer_name": cert.issuer.rfc4514_string(),
        "common_name": str(common[0].value) if common else "",
        "name_value": "\n".join(dns_names),
        "id": row_id,
        "entry_timestamp": cert.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%S.000"),
        "not_before": cert.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%S"),
        "not_after": cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%S"),
        "serial_number": format(cert.serial_number, "x"),
        "result_count": len(dns_names),
    }


def matches(row: dict[str, Any], query: str) -> bool:
    names = {*row["name_value"].split("\n"), row["common_name"]}
    if query.startswith("%."):
        return any(n.lower().endswith(query[1:].lower()) for n in names)
    return query.lower() in {n.lower() for n in names}


class _Handler(BaseHTTPRequestHandler):
    rows: ClassVar[list[dict[str, Any]]] = []

    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        if query.get("output") != ["json"] or not query.get("q"):
            self.send_error(400, "use ?q=...&output=json")
            return
        body = json.dumps([r for r in self.rows if matches(r, query["q"][0])]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


if __name__ == "__main__":
    spec = json.loads(Path(sys.argv[1]).read_text())
    _Handler.rows = spec["rows"]
    ThreadingHTTPServer(tuple(spec["listen"]), _Handler).serve_forever()
