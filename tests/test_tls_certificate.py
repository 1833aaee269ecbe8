"""Certificate facts from real certificates, offline: RFC 6125 names apart from the chain's trust.

Given a small CA and leaves made here, When `analyse` reads a chain as a server sent it,
Then the name match and the path's trust are separate facts, and the rules raise a name
mismatch or an untrusted chain, never one for the other.
"""

from __future__ import annotations

import datetime as dt
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import Store

from collectors.tls import _certificate, rules
from collectors.tls.facts import CertificateFacts, TlsFacts
from tests.rule_checks import checked

NOW = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)
SanEntry = x509.DNSName | x509.IPAddress


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


class Authority:
    """A root CA that issues server leaves."""

    def __init__(self, common_name: str = "Test Root") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(_name(common_name))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(days=30))
            .not_valid_after(NOW + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), False)
            .sign(self.key, hashes.SHA256())
        )

    def leaf(self, *san: SanEntry, common_name: str = "leaf") -> x509.Certificate:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(days=1))
            .not_valid_after(NOW + dt.timedelta(days=89))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
        )
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(list(san)), False)
        return builder.sign(self.key, hashes.SHA256())


CA = Authority()
STORE = Store([CA.cert])
WILDCARD = CA.leaf(x509.DNSName("*.kunta.test"))


def analysed(leaf: x509.Certificate, hostname: str, store: Store = STORE) -> CertificateFacts:
    return _certificate.analyse([leaf], hostname, store, ocsp_stapled=True, now=NOW)


def findings(cert: CertificateFacts, hostname: str) -> set[str]:
    endpoint = TlsFacts(hostname, "127.60.9.10", 443, "https", NOW, certificate=cert)
    return {d.check_id for d in checked(rules.judge, endpoint)}


@pytest.mark.parametrize(
    ("san", "hostname", "matches"),
    [
        # The wildcard covers exactly one whole left-most label.
        (x509.DNSName("*.kunta.test"), "www.kunta.test", True),
        (x509.DNSName("*.kunta.test"), "kunta.test", False),
        (x509.DNSName("*.kunta.test"), "a.b.kunta.test", False),
        (x509.DNSName("*.kunta.test"), "www.toinen.test", False),
        # Names compare without regard to case, and a trailing dot is the same name.
        (x509.DNSName("*.kunta.test"), "WWW.Kunta.Test.", True),
        (x509.DNSName("www.kunta.test"), "www.kunta.test", True),
        # Partial-label wildcards are not honoured (RFC 6125 §6.4.3 allows clients to refuse).
        (x509.DNSName("w*.kunta.test"), "www.kunta.test", False),
        (x509.DNSName("*w.kunta.test"), "www.kunta.test", False),
        # IDNs: certificates carry A-labels; the host may be given in either form.
        (x509.DNSName("*.xn--hyvl-noab.test"), "www.xn--hyvl-noab.test", True),
        (x509.DNSName("*.xn--hyvl-noab.test"), "www.hyvälä.test", True),
        (x509.DNSName("*.xn--hyvl-noab.test"), "www.hyvala.test", False),
        # An IP address matches an IP SAN only, never a DNS SAN that spells it.
        (x509.IPAddress(ipaddress.ip_address("127.60.9.10")), "127.60.9.10", True),
        (x509.IPAddress(ipaddress.ip_address("127.60.9.10")), "127.60.9.11", False),
        (x509.DNSName("127.60.9.10"), "127.60.9.10", False),
        (x509.IPAddress(ipaddress.ip_address("2001:db8::1")), "2001:db8:0::1", True),
    ],
)
def test_host_names_match_by_rfc_6125(san, hostname, matches):
    # Given a leaf from a trusted CA with one SAN entry
    cert = analysed(CA.leaf(san), hostname)
    # Then the name is judged by itself, and the chain stays trusted whatever the name
    assert cert.hostname_matches is matches
    assert cert.chain_trusted, cert.trust_error
    # And the rules raise exactly a name mismatch, never an untrusted chain
    expected = set() if matches else {"tls.certificate.hostname_mismatch"}
    assert findings(cert, hostname) == expected


def test_a_wildcard_certificate_served_on_a_covered_name_raises_nothing():
    cert = analysed(WILDCARD, "www.kunta.test")
    assert (cert.chain_trusted, cert.hostname_matches, cert.trust_error) == (True, True, None)
    assert cert.dns_names == ("*.kunta.test",)
    assert findings(cert, "www.kunta.test") == set()


def test_a_wildcard_two_labels_up_is_a_name_mismatch_with_the_names_as_evidence():
    cert = analysed(WILDCARD, "lainaus.kirjasto.kunta.test")
    endpoint = TlsFacts("lainaus.kirjasto.kunta.test", "127.60.9.10", 443, "https", NOW,
                        certificate=cert)  # fmt: skip
    (draft,) = checked(rules.judge, endpoint)
    assert draft.check_id == "tls.certificate.hostname_mismatch"
    assert draft.evidence["dns_names"] == ["*.kunta.test"]
    assert draft.evidence["expected_name"] == "lainaus.kirjasto.kunta.test"
    assert draft.reproduce.endswith("-verify_hostname lainaus.kirjasto.kunta.test")


def test_an_unknown_issuer_is_untrusted_even_when_the_name_matches():
    stranger = Authority("Unknown Root")
    chain = [stranger.leaf(x509.DNSName("*.kunta.test")), stranger.cert]
    cert = _certificate.analyse(chain, "www.kunta.test", STORE, ocsp_stapled=True, now=NOW)
    assert cert.hostname_matches and not cert.chain_trusted
    assert findings(cert, "www.kunta.test") == {"tls.certificate.untrusted"}


def test_an_ip_san_is_evidence_and_checked_with_verify_ip():
    leaf = CA.leaf(x509.IPAddress(ipaddress.ip_address("127.60.9.10")))
    cert = analysed(leaf, "127.60.9.11")
    endpoint = TlsFacts("127.60.9.11", "127.60.9.11", 443, "https", NOW, certificate=cert)
    (draft,) = checked(rules.judge, endpoint)
    assert draft.evidence["ip_addresses"] == ["127.60.9.10"]
    assert draft.reproduce.endswith("-verify_ip 127.60.9.11")


def test_a_leaf_without_subject_alt_name_matches_no_name_but_its_chain_is_trusted():
    # Clients stopped reading the common name years ago (RFC 6125 §6.4.4, CA/B BR 7.1.4.2).
    cert = analysed(CA.leaf(common_name="www.kunta.test"), "www.kunta.test")
    assert cert.chain_trusted and not cert.hostname_matches
    assert findings(cert, "www.kunta.test") == {"tls.certificate.hostname_mismatch"}


def test_a_self_signed_leaf_is_self_signed_and_its_name_still_judged_on_its_own():
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name("intra.kunta.test"))
        .issuer_name(_name("intra.kunta.test"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=89))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("intra.kunta.test")]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert = analysed(leaf, "intra.kunta.test")
    assert cert.self_signed and cert.hostname_matches and not cert.chain_trusted
    assert findings(cert, "intra.kunta.test") == {"tls.certificate.self_signed"}
