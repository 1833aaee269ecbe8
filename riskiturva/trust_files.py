"""Files of trust the configuration points at: PEM CA certificates and DNSSEC trust anchors.

Read here, once for the configuration check and again by the collectors, so a file that
`riskiturva config check` accepted is exactly a file the scan can use. Every problem is a
`ValueError` whose message says what is wrong with the file (never its contents).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from pathlib import Path

import dns.exception
import dns.name
import dns.rdata
import dns.rdatatype
import dns.zone
from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning

TrustAnchors = Mapping[dns.name.Name, tuple[dns.rdata.Rdata, ...]]

# A trust file larger than this is not one a person wrote or a CA bundle: refuse to read it.
MAX_TRUST_FILE_BYTES = 8 * 1024 * 1024


def _read(path: Path) -> bytes:
    if not path.exists():
        raise ValueError(f"file not found: {path}")
    if not path.is_file():
        raise ValueError(f"not a file: {path}")
    if path.stat().st_size > MAX_TRUST_FILE_BYTES:
        raise ValueError(f"larger than {MAX_TRUST_FILE_BYTES // 1024 // 1024} MiB: {path}")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from exc


def read_ca_certificates(path: Path) -> list[x509.Certificate]:
    """Every certificate of a PEM file; each must be a CA certificate (basicConstraints CA)."""
    data = _read(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            certificates = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise ValueError(f"not PEM certificates ({exc}): {path}") from exc
    for number, certificate in enumerate(certificates, start=1):
        try:
            constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
            is_ca = constraints.value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if not is_ca:
            subject = certificate.subject.rfc4514_string() or "an empty subject"
            raise ValueError(
                f"certificate {number} ({subject}) is not a CA certificate "
                f"(no basicConstraints CA:TRUE): {path}"
            )
    return certificates


def parse_trust_anchors(text: str) -> dict[dns.name.Name, tuple[dns.rdata.Rdata, ...]]:
    """DS and DNSKEY records in zone-file syntax (absolute owner names), by owner."""
    try:
        zone = dns.zone.from_text(
            f"$TTL 0\n{text}", origin=dns.name.root, relativize=False, check_origin=False
        )
    except (dns.exception.DNSException, ValueError) as exc:
        # dnspython prefixes "<string>:N:" with a line number that does not match the file's.
        reason = re.sub(r"^<string>:\d+:\s*", "", str(exc))
        raise ValueError(f"not DS/DNSKEY records in zone-file syntax ({reason})") from exc
    anchors: dict[dns.name.Name, list[dns.rdata.Rdata]] = {}
    for name, _ttl, rdata in zone.iterate_rdatas():
        if rdata.rdtype in (dns.rdatatype.DS, dns.rdatatype.DNSKEY):
            anchors.setdefault(name, []).append(rdata)
    if not anchors:
        raise ValueError("no DS or DNSKEY records")
    return {name: tuple(rdatas) for name, rdatas in anchors.items()}


def read_trust_anchors(path: Path) -> dict[dns.name.Name, tuple[dns.rdata.Rdata, ...]]:
    """The DS/DNSKEY trust anchors of a file (see `parse_trust_anchors`)."""
    data = _read(path)
    try:
        return parse_trust_anchors(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text: {path}") from exc
    except ValueError as exc:
        raise ValueError(f"{exc}: {path}") from exc
