"""Certificate facts from the chain a server sent, judged against our own trust anchors.

sslyze's path validation folds expiry, name and trust into one error; here each is its own
fact: the chain is verified at a moment inside the leaf's validity and for a name the leaf
carries, so "untrusted" means the path, not the date or the name.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtensionOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from collectors.tls.facts import CertificateFacts


def dns_names(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    except x509.ExtensionNotFound:
        return ()
    return tuple(san.value.get_values_for_type(x509.DNSName))  # type: ignore[attr-defined]


def name_matches(hostname: str, patterns: Sequence[str]) -> bool:
    """RFC 6125 matching: exact, or one wildcard as the whole left-most label."""
    host = hostname.rstrip(".").lower()
    for pattern in (p.rstrip(".").lower() for p in patterns):
        if pattern == host:
            return True
        if pattern.startswith("*.") and "." in host:
            first, rest = host.split(".", 1)
            if first and rest == pattern[2:] and "." in rest:
                return True
    return False


def _key(cert: x509.Certificate) -> tuple[str, int]:
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.curve.key_size
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456
    return type(key).__name__, 0


def _signature_hash(cert: x509.Certificate) -> str | None:
    try:
        algorithm = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return "unknown"
    return algorithm.name if algorithm is not None else None


def _self_signed(cert: x509.Certificate) -> bool:
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def verify_path(
    chain: Sequence[x509.Certificate], store: Store, hostname: str, now: dt.datetime
) -> tuple[bool, str | None]:
    """Whether a path leads from the leaf to an anchor, whatever the date and the name."""
    leaf = chain[0]
    # The moment nearest to now at which every certificate sent was valid.
    start = max(c.not_valid_before_utc for c in chain)
    end = min(c.not_valid_after_utc for c in chain)
    moment = min(max(now, start), end) if start <= end else leaf.not_valid_before_utc
    subject = (dns_names(leaf) or (hostname,))[0].lstrip("*.")
    try:
        verifier = (
            PolicyBuilder().store(store).time(moment).build_server_verifier(x509.DNSName(subject))
        )
        verifier.verify(leaf, list(chain[1:]))
    except (VerificationError, ValueError) as exc:
        return False, str(exc)
    return True, None


def analyse(
    chain: Sequence[x509.Certificate],
    hostname: str,
    store: Store,
    ocsp_stapled: bool,
    now: dt.datetime,
) -> CertificateFacts:
    """Facts about the leaf of `chain` (as the server sent it, leaf first)."""
    leaf = chain[0]
    key_type, key_bits = _key(leaf)
    trusted, error = verify_path(chain, store, hostname, now)
    names = dns_names(leaf)
    return CertificateFacts(
        subject=leaf.subject.rfc4514_string(),
        issuer=leaf.issuer.rfc4514_string(),
        serial=format(leaf.serial_number, "x"),
        not_before=leaf.not_valid_before_utc,
        not_after=leaf.not_valid_after_utc,
        sha256_fingerprint=leaf.fingerprint(hashes.SHA256()).hex(":").upper(),
        dns_names=names,
        key_type=key_type,
        key_bits=key_bits,
        signature_hash=_signature_hash(leaf),
        self_signed=_self_signed(leaf),
        chain_trusted=trusted,
        trust_error=error,
        issuer_in_chain=any(c.subject == leaf.issuer for c in chain[1:]),
        chain_length=len(chain),
        hostname_matches=name_matches(hostname, names),
        ocsp_stapled=ocsp_stapled,
    )
