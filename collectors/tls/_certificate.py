"""Certificate facts from the chain a server sent, judged against our own trust anchors.

sslyze's path validation folds expiry, name and trust into one error; here each is its own
fact, all three judged by cryptography's web PKI verifier: the path is verified at a moment
inside the chain's validity and without a name, so "untrusted" means the path, not the date
or the name; the name is matched (RFC 6125) on the leaf alone.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    Policy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from collectors.tls.facts import CertificateFacts


def _san(cert: x509.Certificate) -> x509.SubjectAlternativeName | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None


def dns_names(cert: x509.Certificate) -> tuple[str, ...]:
    san = _san(cert)
    return tuple(san.get_values_for_type(x509.DNSName)) if san else ()


def ip_addresses(cert: x509.Certificate) -> tuple[str, ...]:
    san = _san(cert)
    return tuple(str(ip) for ip in san.get_values_for_type(x509.IPAddress)) if san else ()


def _reference_identity(hostname: str) -> x509.DNSName | x509.IPAddress:
    """What a client looks for in the SAN: an IP address, or a DNS name in A-label form."""
    host = hostname.rstrip(".")
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host.encode("idna").decode("ascii").lower())


# The leaf is its own anchor when only its name is asked: any profile, the SAN required.
_NAME_ONLY_POLICY = ExtensionPolicy.permit_all().require_present(
    x509.SubjectAlternativeName, Criticality.AGNOSTIC, None
)


def _for_servers(policy: Policy, cert: x509.Certificate, eku: x509.ExtendedKeyUsage | None) -> None:
    if eku is not None and ExtendedKeyUsageOID.SERVER_AUTH not in eku:
        raise ValueError("the extended key usage does not allow TLS servers")


# A server's path, but no name: the web PKI profile, the SAN optional (a missing or wrong
# name is its own fact), the extended key usage that of a TLS server.
_PATH_ONLY_POLICY = (
    ExtensionPolicy.webpki_defaults_ee()
    .may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
    .may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _for_servers)
)


def _validity_moment(chain: Sequence[x509.Certificate], now: dt.datetime) -> dt.datetime:
    """The moment nearest to now at which every certificate sent was valid."""
    start = max(c.not_valid_before_utc for c in chain)
    end = min(c.not_valid_after_utc for c in chain)
    return min(max(now, start), end) if start <= end else chain[0].not_valid_before_utc


def hostname_matches(leaf: x509.Certificate, hostname: str, now: dt.datetime) -> bool:
    """Whether the leaf names `hostname`, by RFC 6125 §6.4 as cryptography implements it.

    One wildcard covers exactly one whole left-most label (`*.kunta.fi` covers
    `www.kunta.fi`, not `kunta.fi` nor `a.b.kunta.fi`); names compare as A-labels, without
    regard to case; an IP address matches only an IP SAN. Trust and dates are not asked:
    the leaf is its own anchor, at a moment inside its validity.
    """
    try:
        verifier = (
            PolicyBuilder()
            .store(Store([leaf]))
            .time(_validity_moment([leaf], now))
            .extension_policies(
                ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=_NAME_ONLY_POLICY
            )
            .build_server_verifier(_reference_identity(hostname))
        )
        verifier.verify(leaf, [])
    except (VerificationError, ValueError, UnicodeError):
        return False
    return True


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
    chain: Sequence[x509.Certificate], store: Store, now: dt.datetime
) -> tuple[bool, str | None]:
    """Whether a path leads from the leaf to an anchor, whatever the date and the name."""
    try:
        verifier = (
            PolicyBuilder()
            .store(store)
            .time(_validity_moment(chain, now))
            .extension_policies(
                ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=_PATH_ONLY_POLICY
            )
            .build_client_verifier()
        )
        verifier.verify(chain[0], list(chain[1:]))
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
    trusted, error = verify_path(chain, store, now)
    return CertificateFacts(
        subject=leaf.subject.rfc4514_string(),
        issuer=leaf.issuer.rfc4514_string(),
        serial=format(leaf.serial_number, "x"),
        not_before=leaf.not_valid_before_utc,
        not_after=leaf.not_valid_after_utc,
        sha256_fingerprint=leaf.fingerprint(hashes.SHA256()).hex(":").upper(),
        dns_names=dns_names(leaf),
        ip_addresses=ip_addresses(leaf),
        key_type=key_type,
        key_bits=key_bits,
        signature_hash=_signature_hash(leaf),
        self_signed=_self_signed(leaf),
        chain_trusted=trusted,
        trust_error=error,
        issuer_in_chain=any(c.subject == leaf.issuer for c in chain[1:]),
        chain_length=len(chain),
        hostname_matches=hostname_matches(leaf, hostname, now),
        ocsp_stapled=ocsp_stapled,
    )
