"""The TLS rules and grade, offline, on small fact objects (Given facts / When judged / Then)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import tomllib
from importlib import resources

import pytest

from collectors.tls import TLSCollector, rules
from collectors.tls.facts import AcceptedSuite, CertificateFacts, TlsFacts, Vulnerabilities
from collectors.tls.grade import grade
from riskiturva.checks import load_registry
from tests.rule_checks import checked

NOW = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)
ECDHE = AcceptedSuite(
    "TLSv1.2", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", 128, False, "ECDH", 253, "X25519"
)
TLS13 = AcceptedSuite("TLSv1.3", "TLS_AES_128_GCM_SHA256", 128, False, "ECDH", 253, "X25519")
SOUND_VULNS = Vulnerabilities(
    heartbleed=False,
    robot="NOT_VULNERABLE_NO_ORACLE",
    ccs_injection=False,
    secure_renegotiation=True,
    client_renegotiation_dos=False,
    compression=False,
    fallback_scsv=True,
)


def certificate(**changes: object) -> CertificateFacts:
    base = CertificateFacts(
        subject="CN=www.kunta.test",
        issuer="CN=Kunta CA",
        serial="1f",
        not_before=NOW - dt.timedelta(days=10),
        not_after=NOW + dt.timedelta(days=80),
        sha256_fingerprint="AA:BB",
        dns_names=("www.kunta.test",),
        key_type="EC",
        key_bits=256,
        signature_hash="sha256",
        self_signed=False,
        chain_trusted=True,
        trust_error=None,
        issuer_in_chain=True,
        chain_length=2,
        hostname_matches=True,
        ocsp_stapled=True,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def facts(**changes: object) -> TlsFacts:
    """A well-configured HTTPS endpoint; `changes` plant one weakness at a time."""
    base = TlsFacts(
        hostname="www.kunta.test",
        address="127.60.9.10",
        port=443,
        service="https",
        scanned_at=NOW,
        protocols_tested=("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"),
        protocols_offered=("TLSv1.2", "TLSv1.3"),
        suites=(ECDHE, TLS13),
        curves=("X25519", "secp256r1"),
        certificate=certificate(),
        vulnerabilities=SOUND_VULNS,
        hsts_max_age=63072000,
        mozilla_intermediate_issues={},
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def ids(endpoint: TlsFacts) -> set[str]:
    return {d.check_id for d in checked(rules.judge, endpoint)}


def test_well_configured_endpoint_raises_nothing_and_grades_a_plus():
    endpoint = facts()
    assert ids(endpoint) == set()
    assert grade(endpoint).grade == "A+"


def test_tls13_only_server_is_modern_not_a_finding():
    endpoint = facts(protocols_offered=("TLSv1.3",), suites=(TLS13,))
    assert ids(endpoint) == set()
    assert grade(endpoint).grade == "A+"


@pytest.mark.parametrize(
    ("protocol", "check", "flag"),
    [
        ("SSLv2", "tls.protocol.sslv2", "-ssl2"),
        ("SSLv3", "tls.protocol.sslv3", "-ssl3"),
        ("TLSv1.0", "tls.protocol.tls1_0", "-tls1"),
        ("TLSv1.1", "tls.protocol.tls1_1", "-tls1_1"),
    ],
)
def test_old_protocol_offered_is_reported_with_a_pasteable_command(protocol, check, flag):
    endpoint = facts(protocols_offered=(protocol, "TLSv1.2", "TLSv1.3"))
    (draft,) = [d for d in checked(rules.judge, endpoint) if d.check_id == check]
    assert draft.evidence["protocol"] == protocol
    assert draft.reproduce == (
        f"openssl s_client -connect 127.60.9.10:443 -servername www.kunta.test {flag} </dev/null"
    )


def test_protocol_whose_test_errored_is_neither_offered_nor_missing():
    # Given the TLS 1.0 and TLS 1.3 scan commands failed (not "tested")
    endpoint = facts(
        protocols_tested=("SSLv2", "SSLv3", "TLSv1.1", "TLSv1.2"),
        protocols_offered=("TLSv1.2",),
    )
    assert ids(endpoint) == set()


def test_neither_tls12_nor_tls13_is_one_finding_not_tls13_missing():
    endpoint = facts(
        protocols_offered=("TLSv1.0",),
        suites=(dataclasses.replace(ECDHE, protocol="TLSv1.0",
                                    name="TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"),),
    )  # fmt: skip
    assert ids(endpoint) == {"tls.protocol.tls1_0", "tls.protocol.no_tls1_2"}
    assert grade(endpoint).grade == "C"


def test_tls12_only_raises_tls13_missing_and_caps_at_a_minus():
    endpoint = facts(protocols_offered=("TLSv1.2",), suites=(ECDHE,))
    assert ids(endpoint) == {"tls.protocol.tls1_3_missing"}
    assert grade(endpoint).grade == "A-"


def suite(name: str, protocol: str = "TLSv1.2", **kw: object) -> AcceptedSuite:
    return AcceptedSuite(protocol, name, kw.pop("key_bits", 128), kw.pop("anonymous", False), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("planted", "check"),
    [
        (suite("TLS_RSA_WITH_NULL_SHA256", key_bits=0), "tls.cipher.null_export_anon"),
        (suite("TLS_DH_anon_WITH_AES_128_GCM_SHA256", anonymous=True),
         "tls.cipher.null_export_anon"),
        (suite("TLS_RSA_EXPORT_WITH_RC4_40_MD5", key_bits=40), "tls.cipher.null_export_anon"),
        (suite("TLS_ECDHE_RSA_WITH_RC4_128_SHA"), "tls.cipher.rc4"),
        (suite("TLS_RSA_WITH_3DES_EDE_CBC_SHA", key_bits=168), "tls.cipher.block_64bit"),
        (suite("TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", kx_type="DH", kx_bits=1024),
         "tls.cipher.weak_dh"),
        (suite("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", kx_type="ECDH", kx_bits=192,
               kx_curve="secp192r1"), "tls.cipher.weak_ecdh"),
    ],
)  # fmt: skip
def test_weak_suite_is_reported_with_what_was_accepted(planted, check):
    endpoint = facts(suites=(ECDHE, TLS13, planted))
    (draft,) = [d for d in checked(rules.judge, endpoint) if d.check_id == check]
    assert {"protocol": "TLSv1.2", "suite": planted.name} in [
        {k: v for k, v in s.items() if k != "key_exchange"} for s in draft.evidence["suites"]
    ]
    assert "-cipher" in draft.reproduce and "127.60.9.10:443" in draft.reproduce


def test_strong_dh_and_curves_are_not_weak():
    strong = (
        suite("TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", kx_type="DH", kx_bits=2048),
        suite("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", kx_type="ECDH", kx_bits=256,
              kx_curve="prime256v1"),
    )  # fmt: skip
    assert ids(facts(suites=(*strong, TLS13))) == set()


def test_cbc_only_on_tls12_and_no_forward_secrecy():
    cbc_rsa = suite("TLS_RSA_WITH_AES_128_CBC_SHA")
    endpoint = facts(protocols_offered=("TLSv1.2",), suites=(cbc_rsa,))
    assert {"tls.cipher.cbc_only", "tls.cipher.no_forward_secrecy"} <= ids(endpoint)
    assert grade(endpoint).ignoring_trust == "B"


def test_some_rsa_key_exchange_next_to_ecdhe_is_not_no_forward_secrecy():
    endpoint = facts(suites=(ECDHE, TLS13, suite("TLS_RSA_WITH_AES_128_GCM_SHA256")))
    assert "tls.cipher.no_forward_secrecy" not in ids(endpoint)


def test_mozilla_deviations_are_one_summary_finding_with_evidence():
    issues = {"tls_versions": "TLS versions {'TLSv1'} are supported", "ciphers": "…"}
    (draft,) = checked(rules.judge, facts(mozilla_intermediate_issues=issues))
    assert draft.check_id == "tls.config.not_mozilla_intermediate"
    assert draft.evidence["deviations"] == dict(sorted(issues.items()))
    assert "--mozilla_config=intermediate" in draft.reproduce
    assert "www.kunta.test:443{127.60.9.10}" in draft.reproduce


def test_mozilla_profile_not_checkable_is_no_finding():
    assert ids(facts(mozilla_intermediate_issues=None)) == set()


@pytest.mark.parametrize(
    ("not_after", "expected"),
    [
        (NOW - dt.timedelta(days=1), {"tls.certificate.expired"}),
        (NOW + dt.timedelta(days=10), {"tls.certificate.expires_14d"}),
        (NOW + dt.timedelta(days=20), {"tls.certificate.expires_30d"}),
        (NOW + dt.timedelta(days=31), set()),
    ],
)
def test_expiry_raises_the_most_urgent_check_only(not_after, expected):
    endpoint = facts(certificate=certificate(not_after=not_after))
    assert ids(endpoint) == expected


def test_expired_certificate_evidence_has_subject_issuer_dates_and_fingerprint():
    endpoint = facts(certificate=certificate(not_after=NOW - dt.timedelta(days=1)))
    (draft,) = checked(rules.judge, endpoint)
    assert draft.evidence["subject"] == "CN=www.kunta.test"
    assert draft.evidence["issuer"] == "CN=Kunta CA"
    assert draft.evidence["not_after"] == NOW - dt.timedelta(days=1)
    assert draft.evidence["sha256_fingerprint"] == "AA:BB"
    assert "openssl x509 -noout" in draft.reproduce
    assert grade(endpoint).grade == "T"


def test_not_yet_valid():
    endpoint = facts(certificate=certificate(not_before=NOW + dt.timedelta(days=1)))
    assert ids(endpoint) == {"tls.certificate.not_yet_valid"}


@pytest.mark.parametrize(
    ("changes", "check"),
    [
        ({"chain_trusted": False, "self_signed": True}, "tls.certificate.self_signed"),
        (
            {"chain_trusted": False, "issuer_in_chain": False},
            "tls.certificate.missing_intermediate",
        ),
        ({"chain_trusted": False}, "tls.certificate.untrusted"),
    ],
)
def test_untrusted_chain_is_reported_by_its_most_specific_cause(changes, check):
    endpoint = facts(certificate=certificate(**changes))
    assert ids(endpoint) == {check}
    assert grade(endpoint).grade == "T"
    assert grade(endpoint).ignoring_trust == "A+"


def test_hostname_mismatch_on_the_web_but_not_on_mail():
    cert = certificate(hostname_matches=False, dns_names=("other.test",))
    web = facts(certificate=cert)
    assert ids(web) == {"tls.certificate.hostname_mismatch"}
    assert grade(web).grade == "M"
    mail = facts(
        certificate=cert, service="smtp", port=25, starttls_offered=True, hsts_max_age=None
    )
    assert ids(mail) == set()
    assert grade(mail).grade == "A"  # no HSTS on SMTP, so no A+


@pytest.mark.parametrize(
    ("key_type", "bits", "weak"),
    [("RSA", 1024, True), ("RSA", 2048, False), ("EC", 224, True), ("EC", 256, False)],
)
def test_weak_key(key_type, bits, weak):
    endpoint = facts(certificate=certificate(key_type=key_type, key_bits=bits))
    assert ("tls.certificate.weak_key" in ids(endpoint)) is weak


@pytest.mark.parametrize("digest", ["sha1", "md5"])
def test_weak_signature(digest):
    endpoint = facts(certificate=certificate(signature_hash=digest))
    assert ids(endpoint) == {"tls.certificate.weak_signature"}


def test_missing_ocsp_staple_is_info_on_the_web_only():
    assert ids(facts(certificate=certificate(ocsp_stapled=False))) == {
        "tls.certificate.no_ocsp_stapling"
    }
    mail = facts(service="smtp", port=25, certificate=certificate(ocsp_stapled=False))
    assert ids(mail) == set()


@pytest.mark.parametrize(
    ("changes", "check", "letter"),
    [
        ({"heartbleed": True}, "tls.vuln.heartbleed", "F"),
        ({"robot": "VULNERABLE_STRONG_ORACLE"}, "tls.vuln.robot", "F"),
        ({"ccs_injection": True}, "tls.vuln.ccs_injection", "F"),
        ({"secure_renegotiation": False}, "tls.vuln.insecure_renegotiation", "F"),
        ({"compression": True}, "tls.vuln.compression", "C"),
        ({"fallback_scsv": False}, "tls.vuln.no_fallback_scsv", "A-"),
    ],
)
def test_vulnerabilities_and_their_grade_caps(changes, check, letter):
    endpoint = facts(vulnerabilities=dataclasses.replace(SOUND_VULNS, **changes))
    (draft,) = checked(rules.judge, endpoint)
    assert draft.check_id == check
    assert draft.reproduce.startswith("sslyze ")
    assert grade(endpoint).grade == letter


def test_vulnerability_not_tested_is_not_a_finding():
    assert ids(facts(vulnerabilities=Vulnerabilities())) == set()


@pytest.mark.parametrize(
    ("protocols", "letter"),
    [(("TLSv1.0", "TLSv1.2", "TLSv1.3"), "B"), (("SSLv3", "TLSv1.2"), "C"),
     (("SSLv2", "TLSv1.2"), "F")],
)  # fmt: skip
def test_protocol_grade_caps(protocols, letter):
    endpoint = facts(protocols_offered=protocols)
    assert grade(endpoint).grade == letter
    assert any(cap.endswith(f"→ {letter}") for cap in grade(endpoint).caps)


def test_findings_carry_the_grade_as_evidence():
    endpoint = facts(protocols_offered=("TLSv1.0", "TLSv1.2", "TLSv1.3"))
    endpoint = dataclasses.replace(endpoint, grade=grade(endpoint))
    (draft,) = checked(rules.judge, endpoint)
    assert (draft.evidence["grade"], draft.evidence["endpoint"]) == ("B", "www.kunta.test:443")


def test_mail_server_without_starttls_raises_only_starttls_missing():
    endpoint = TlsFacts("mx.kunta.test", "127.60.9.25", 25, "smtp", NOW, starttls_offered=False)
    (draft,) = checked(rules.judge, endpoint)
    assert draft.check_id == "email.smtp.starttls_missing"
    assert draft.evidence == {
        "endpoint": "mx.kunta.test:25",
        "address": "127.60.9.25",
        "starttls_offered": False,
    }
    assert "-connect 127.60.9.25:25 -starttls smtp" in draft.reproduce
    assert grade(endpoint) is None


def test_check_ids_match_the_registry_both_ways():
    registry = load_registry()
    declared = set(tomllib.loads(
        (resources.files("riskiturva") / "check_data" / "tls.toml").read_text(encoding="utf-8")
    ))  # fmt: skip
    tls_ids = {c for c in TLSCollector.check_ids if c.startswith("tls.")}
    assert tls_ids == declared
    assert tls_ids <= set(registry)
    assert TLSCollector.check_ids - tls_ids == {"email.smtp.starttls_missing"}


# Facts that, between them, raise every check the TLS collector declares
# (tests/test_rule_coverage.py holds every collector to this).
PLANTED = [
    facts(protocols_offered=("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2")),
    facts(protocols_offered=("TLSv1.0",)),
    facts(
        suites=(
            suite("TLS_RSA_WITH_NULL_SHA256"),
            suite("TLS_RSA_WITH_RC4_128_SHA"),
            suite("TLS_RSA_WITH_3DES_EDE_CBC_SHA"),
            suite("TLS_DHE_RSA_WITH_AES_128_CBC_SHA", kx_type="DH", kx_bits=1024),
            suite("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", kx_type="ECDH", kx_curve="secp160r1"),
        ),
        mozilla_intermediate_issues={"x": "y"},
    ),
    facts(suites=(suite("TLS_RSA_WITH_AES_128_GCM_SHA256"),)),
    *(facts(certificate=certificate(**c)) for c in (
        {"not_after": NOW - dt.timedelta(days=1), "not_before": NOW + dt.timedelta(days=1)},
        {"not_after": NOW + dt.timedelta(days=5)},
        {"not_after": NOW + dt.timedelta(days=25)},
        {"chain_trusted": False},
        {"chain_trusted": False, "self_signed": True},
        {"chain_trusted": False, "issuer_in_chain": False},
        {"hostname_matches": False, "key_bits": 128, "signature_hash": "sha1",
         "ocsp_stapled": False},
    )),
    facts(vulnerabilities=Vulnerabilities(True, "VULNERABLE_WEAK_ORACLE", True, False,
                                          True, True, False)),
    TlsFacts("mx.kunta.test", "127.60.9.25", 25, "smtp", NOW, starttls_offered=False),
]  # fmt: skip
