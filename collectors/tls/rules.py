"""Pure rules: one endpoint's TLS facts in, finding drafts out.

Only what was actually tested is judged: a protocol whose scan command errored is neither
"offered" nor "not offered", and a missing certificate is not "expired".
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import shlex
from collections.abc import Callable, Iterator
from typing import Any

from collectors.tls import _ciphers
from collectors.tls.facts import AcceptedSuite, TlsFacts
from riskiturva.collector import ChangeDraft, FindingDraft, Rule, RuleSet

STARTTLS_MISSING = "email.smtp.starttls_missing"
HSTS_ONE_YEAR = 31_536_000

_PROTOCOL_CHECKS = {
    "SSLv2": ("tls.protocol.sslv2", "-ssl2"),
    "SSLv3": ("tls.protocol.sslv3", "-ssl3"),
    "TLSv1.0": ("tls.protocol.tls1_0", "-tls1"),
    "TLSv1.1": ("tls.protocol.tls1_1", "-tls1_1"),
}
_OPENSSL_FLAG = {p: flag for p, (_, flag) in _PROTOCOL_CHECKS.items()} | {
    "TLSv1.2": "-tls1_2",
    "TLSv1.3": "-tls1_3",
}

# Suite classes: check id → (predicate, OpenSSL cipher string for the reproduce command).
_SUITE_CHECKS: dict[str, tuple[Callable[[AcceptedSuite], bool], str]] = {
    "tls.cipher.null_export_anon": (_ciphers.is_null_export_anon, "aNULL:eNULL:EXPORT"),
    "tls.cipher.rc4": (_ciphers.is_rc4, "RC4"),
    "tls.cipher.block_64bit": (_ciphers.is_block_64, "3DES:DES:IDEA:RC2"),
    "tls.cipher.weak_dh": (_ciphers.weak_dh, "kDHE"),
    "tls.cipher.weak_ecdh": (_ciphers.weak_ecdh, "kECDHE"),
}

# check id → (Vulnerabilities field, verdict on its value, sslyze CLI option).
_VULNERABILITY_CHECKS: dict[str, tuple[str, Callable[[Any], bool], str]] = {
    "tls.vuln.heartbleed": ("heartbleed", lambda v: v is True, "--heartbleed"),
    "tls.vuln.robot": ("robot", lambda v: bool(v and v.startswith("VULNERABLE")), "--robot"),
    "tls.vuln.ccs_injection": ("ccs_injection", lambda v: v is True, "--openssl_ccs"),
    "tls.vuln.insecure_renegotiation": ("secure_renegotiation", lambda v: v is False, "--reneg"),
    "tls.vuln.compression": ("compression", lambda v: v is True, "--compression"),
    "tls.vuln.no_fallback_scsv": ("fallback_scsv", lambda v: v is False, "--fallback"),
}


def s_client(facts: TlsFacts, *extra: str) -> str:
    """An `openssl s_client` command that reaches this endpoint without any DNS lookup."""
    parts = ["openssl", "s_client", "-connect", f"{facts.address}:{facts.port}"]
    if facts.service == "smtp":
        parts += ["-starttls", "smtp"]
    parts += ["-servername", facts.hostname, *extra]
    return shlex.join(parts) + " </dev/null"


def _base(facts: TlsFacts) -> dict[str, Any]:
    evidence: dict[str, Any] = {"endpoint": facts.endpoint, "address": facts.address}
    if facts.grade is not None:
        evidence["grade"] = facts.grade.grade
        evidence["grade_ignoring_trust"] = facts.grade.ignoring_trust
    return evidence


def _starttls(facts: TlsFacts) -> Iterator[FindingDraft]:
    if facts.service == "smtp" and facts.starttls_offered is False:
        yield FindingDraft(
            STARTTLS_MISSING,
            {"endpoint": facts.endpoint, "address": facts.address, "starttls_offered": False},
            reproduce=shlex.join(
                [
                    "openssl",
                    "s_client",
                    "-connect",
                    f"{facts.address}:{facts.port}",
                    "-starttls",
                    "smtp",
                    "-name",
                    "riskiturva.invalid",
                ]
            )
            + " </dev/null",
        )


def _protocols(facts: TlsFacts) -> Iterator[FindingDraft]:
    offered = list(facts.protocols_offered)
    for protocol, (check, flag) in _PROTOCOL_CHECKS.items():
        if facts.offers(protocol):
            yield FindingDraft(
                check,
                _base(facts) | {"protocol": protocol, "protocols_offered": offered},
                reproduce=s_client(facts, flag),
            )
    modern = ("TLSv1.2", "TLSv1.3")
    if facts.tested(*modern) and offered and not any(map(facts.offers, modern)):
        yield FindingDraft(
            "tls.protocol.no_tls1_2",
            _base(facts) | {"protocols_offered": offered},
            reproduce=s_client(facts, "-tls1_2"),
        )
    elif facts.tested("TLSv1.3") and facts.offers("TLSv1.2") and not facts.offers("TLSv1.3"):
        yield FindingDraft(
            "tls.protocol.tls1_3_missing",
            _base(facts) | {"protocols_offered": offered},
            reproduce=s_client(facts, "-tls1_3"),
        )


def _suite_evidence(suites: list[AcceptedSuite]) -> list[dict[str, Any]]:
    return [
        {"protocol": s.protocol, "suite": s.name}
        | ({"key_exchange": f"{s.kx_type} {s.kx_curve or s.kx_bits}"} if s.kx_type else {})
        for s in suites
    ]


def _suites(facts: TlsFacts) -> Iterator[FindingDraft]:
    for check, (matches, cipher_string) in _SUITE_CHECKS.items():
        found = [s for s in facts.suites if matches(s)]
        if found:
            newest = found[-1].protocol
            yield FindingDraft(
                check,
                _base(facts) | {"suites": _suite_evidence(found)},
                reproduce=s_client(
                    facts, _OPENSSL_FLAG[newest], "-cipher", f"{cipher_string}:@SECLEVEL=0"
                ),
            )
    tls12 = [s for s in facts.suites if s.protocol == "TLSv1.2"]
    if tls12 and not any(map(_ciphers.is_aead, tls12)):
        yield FindingDraft(
            "tls.cipher.cbc_only",
            _base(facts) | {"suites": _suite_evidence(tls12)},
            reproduce=s_client(facts, "-tls1_2", "-cipher", "AESGCM:CHACHA20"),
        )
    if facts.suites and not any(map(_ciphers.has_forward_secrecy, facts.suites)):
        yield FindingDraft(
            "tls.cipher.no_forward_secrecy",
            _base(facts) | {"suites": _suite_evidence(list(facts.suites))},
            reproduce=s_client(facts, "-cipher", "kEECDH:kEDH"),
        )


def _mozilla(facts: TlsFacts) -> Iterator[FindingDraft]:
    if facts.mozilla_intermediate_issues:
        yield FindingDraft(
            "tls.config.not_mozilla_intermediate",
            _base(facts)
            | {
                "profile": "Mozilla intermediate (sslyze 5.7 profile)",
                "deviations": dict(sorted(facts.mozilla_intermediate_issues.items())),
            },
            reproduce=sslyze_command(facts, "--mozilla_config=intermediate"),
        )


def _certificate(facts: TlsFacts) -> Iterator[FindingDraft]:
    cert = facts.certificate
    if cert is None:
        return
    evidence = _base(facts) | {
        "subject": cert.subject,
        "issuer": cert.issuer,
        "not_before": cert.not_before,
        "not_after": cert.not_after,
        "sha256_fingerprint": cert.sha256_fingerprint,
        "dns_names": list(cert.dns_names),
    }
    if cert.ip_addresses:
        evidence["ip_addresses"] = list(cert.ip_addresses)
    show = s_client(facts, "-showcerts")
    dates = f"{show} | openssl x509 -noout -subject -issuer -dates -fingerprint -sha256"
    left = cert.not_after - facts.scanned_at
    if left < dt.timedelta(0):
        yield FindingDraft("tls.certificate.expired", evidence, reproduce=dates)
    elif left <= dt.timedelta(days=14):
        yield FindingDraft(
            "tls.certificate.expires_14d", evidence | {"days_left": left.days}, reproduce=dates
        )
    elif left <= dt.timedelta(days=30):
        yield FindingDraft(
            "tls.certificate.expires_30d", evidence | {"days_left": left.days}, reproduce=dates
        )
    if cert.not_before > facts.scanned_at:
        yield FindingDraft("tls.certificate.not_yet_valid", evidence, reproduce=dates)
    if not cert.chain_trusted:
        trust = evidence | {"trust_error": cert.trust_error, "chain_length": cert.chain_length}
        if cert.self_signed:
            yield FindingDraft("tls.certificate.self_signed", trust, reproduce=show)
        elif not cert.issuer_in_chain:
            yield FindingDraft("tls.certificate.missing_intermediate", trust, reproduce=show)
        else:
            yield FindingDraft("tls.certificate.untrusted", trust, reproduce=show)
    # Mail servers are found through MX records, not by the name on the certificate
    # (RFC 7672 §3.2): without DANE or MTA-STS, senders do not check names.
    if facts.service == "https" and not cert.hostname_matches:
        yield FindingDraft(
            "tls.certificate.hostname_mismatch",
            evidence | {"expected_name": facts.hostname},
            reproduce=f"{show} {_verify_name_flag(facts.hostname)} {shlex.quote(facts.hostname)}",
        )
    if _ciphers.weak_key(cert.key_type, cert.key_bits):
        yield FindingDraft(
            "tls.certificate.weak_key",
            evidence | {"key_type": cert.key_type, "key_bits": cert.key_bits},
            reproduce=f"{show} | openssl x509 -noout -text | grep 'Public-Key'",
        )
    if cert.signature_hash in ("sha1", "md5"):
        yield FindingDraft(
            "tls.certificate.weak_signature",
            evidence | {"signature_hash": cert.signature_hash},
            reproduce=f"{show} | openssl x509 -noout -text | grep 'Signature Algorithm'",
        )
    # Stapling is a web practice; mail clients do not ask for it.
    if facts.service == "https" and not cert.ocsp_stapled:
        yield FindingDraft(
            "tls.certificate.no_ocsp_stapling",
            evidence | {"ocsp_stapled": False},
            reproduce=s_client(facts, "-status") + " | grep -A2 'OCSP response'",
        )


def _verify_name_flag(hostname: str) -> str:
    try:
        ipaddress.ip_address(hostname)
    except ValueError:
        return "-verify_hostname"
    return "-verify_ip"


def sslyze_command(facts: TlsFacts, *options: str) -> str:
    """An sslyze command line for this endpoint at its address (no DNS lookup)."""
    starttls = ["--starttls", "smtp"] if facts.service == "smtp" else []
    target = f"{facts.hostname}:{facts.port}{{{facts.address}}}"
    return shlex.join(["sslyze", *starttls, *options, target])


def _vulnerabilities(facts: TlsFacts) -> Iterator[FindingDraft]:
    for check, (field, present, option) in _VULNERABILITY_CHECKS.items():
        value = getattr(facts.vulnerabilities, field)
        if present(value):
            yield FindingDraft(
                check, _base(facts) | {field: value}, reproduce=sslyze_command(facts, option)
            )


# Each rule with the ids it may emit; the collector's check ids are their union.
RULES: RuleSet[TlsFacts] = RuleSet(
    (
        Rule(_starttls, frozenset({STARTTLS_MISSING})),
        Rule(
            _protocols,
            frozenset(
                {
                    *(check for check, _ in _PROTOCOL_CHECKS.values()),
                    "tls.protocol.no_tls1_2",
                    "tls.protocol.tls1_3_missing",
                }
            ),
        ),
        Rule(
            _suites,
            frozenset({*_SUITE_CHECKS, "tls.cipher.cbc_only", "tls.cipher.no_forward_secrecy"}),
        ),
        Rule(_mozilla, frozenset({"tls.config.not_mozilla_intermediate"})),
        Rule(
            _certificate,
            frozenset(
                {
                    "tls.certificate.expired",
                    "tls.certificate.not_yet_valid",
                    "tls.certificate.expires_14d",
                    "tls.certificate.expires_30d",
                    "tls.certificate.untrusted",
                    "tls.certificate.self_signed",
                    "tls.certificate.missing_intermediate",
                    "tls.certificate.hostname_mismatch",
                    "tls.certificate.weak_key",
                    "tls.certificate.weak_signature",
                    "tls.certificate.no_ocsp_stapling",
                }
            ),
        ),
        Rule(_vulnerabilities, frozenset(_VULNERABILITY_CHECKS)),
    )
)
CHECK_IDS = RULES.check_ids


def judge(facts: TlsFacts) -> list[FindingDraft]:
    """Every finding the facts support, in a stable order.

    A mail server without STARTTLS negotiated nothing, so only its own rule has anything to say.
    """
    return RULES.judge(facts)


def new_certificate(previous: object, facts: TlsFacts) -> list[ChangeDraft]:
    """The endpoint serves another certificate than at its previous successful scan."""
    before = ((previous or {}) if isinstance(previous, dict) else {}).get("certificate") or {}
    now = facts.certificate
    old = before.get("sha256_fingerprint")
    if now is None or old is None or old == now.sha256_fingerprint:
        return []
    detail = {
        "source": "tls",
        "fingerprint": now.sha256_fingerprint,
        "previous_fingerprint": old,
        "names": list(now.dns_names),
        "issuer": now.issuer,
        "not_after": now.not_after.isoformat(),
    }
    return [ChangeDraft("certificate.new", facts.endpoint, detail)]
