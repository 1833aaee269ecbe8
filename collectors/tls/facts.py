"""What the TLS collector saw on one endpoint: typed, frozen, JSON-friendly facts.

Each field that a scan command fills is `None` when that command could not run, so the
rules can tell "not offered" from "could not check".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

PROTOCOLS = ("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")


@dataclass(frozen=True)
class AcceptedSuite:
    """A cipher suite the server accepted, with the key exchange it negotiated."""

    protocol: str  # one of PROTOCOLS
    name: str  # IANA name, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
    key_bits: int  # symmetric key size (0 for NULL)
    anonymous: bool
    kx_type: str | None = None  # "DH", "ECDH" or None (static RSA, TLS 1.3 key shares…)
    kx_bits: int | None = None  # DH group size or EC curve size
    kx_curve: str | None = None


@dataclass(frozen=True)
class CertificateFacts:
    """The leaf certificate the server sent with SNI, and how it relates to its chain."""

    subject: str
    issuer: str
    serial: str
    not_before: dt.datetime
    not_after: dt.datetime
    sha256_fingerprint: str
    dns_names: tuple[str, ...]
    key_type: str  # "RSA", "EC", "DSA", "Ed25519", …
    key_bits: int
    signature_hash: str | None  # "sha256", "sha1", "md5"; None for Ed25519
    self_signed: bool
    chain_trusted: bool  # a path to Mozilla's store or an extra CA, ignoring time and name
    trust_error: str | None
    issuer_in_chain: bool  # the server sent a certificate whose subject is the leaf's issuer
    chain_length: int
    hostname_matches: bool  # RFC 6125: a SAN names the host (one left-most wildcard label)
    ocsp_stapled: bool
    ip_addresses: tuple[str, ...] = ()  # IP addresses in the subjectAltName


@dataclass(frozen=True)
class Vulnerabilities:
    """Results of sslyze's vulnerability tests; None means the test could not run."""

    heartbleed: bool | None = None
    robot: str | None = None  # sslyze's RobotScanResultEnum name
    ccs_injection: bool | None = None
    secure_renegotiation: bool | None = None
    client_renegotiation_dos: bool | None = None
    compression: bool | None = None
    fallback_scsv: bool | None = None


@dataclass(frozen=True)
class Grade:
    """An SSL-Labs-style grade with the caps that produced it (see docs/tls-grade.md)."""

    grade: str  # A+, A, A-, B, C, F, T or M
    ignoring_trust: str  # the grade if trust and name problems were fixed
    caps: tuple[str, ...]  # "TLSv1.0 offered → B", …


@dataclass(frozen=True)
class CommandError:
    command: str
    reason: str


@dataclass(frozen=True)
class TlsFacts:
    """One endpoint: `hostname:port` reached at `address` (STARTTLS for SMTP)."""

    hostname: str
    address: str
    port: int
    service: str  # "https" or "smtp"
    scanned_at: dt.datetime
    starttls_offered: bool | None = None  # SMTP only
    # Protocols whose scan command completed, and the ones among them the server accepted.
    protocols_tested: tuple[str, ...] = ()
    protocols_offered: tuple[str, ...] = ()
    suites: tuple[AcceptedSuite, ...] = ()
    curves: tuple[str, ...] | None = None
    certificate: CertificateFacts | None = None
    vulnerabilities: Vulnerabilities = field(default_factory=Vulnerabilities)
    hsts_max_age: int | None = None  # from sslyze's HTTP headers command (for the grade)
    mozilla_intermediate_issues: dict[str, str] | None = None  # None: could not be checked
    errors: tuple[CommandError, ...] = ()
    other_addresses: tuple[str, ...] = ()  # the name's other in-scope addresses, not scanned
    grade: Grade | None = None

    @property
    def endpoint(self) -> str:
        return f"{self.hostname}:{self.port}"

    def offers(self, protocol: str) -> bool:
        return protocol in self.protocols_offered

    def tested(self, *protocols: str) -> bool:
        return all(p in self.protocols_tested for p in protocols)
