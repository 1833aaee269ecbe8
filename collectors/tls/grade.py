"""An SSL-Labs-style grade for one endpoint, from its facts alone (pure; docs/tls-grade.md).

The grade starts at A and each weakness caps it; the lowest cap wins. Trust problems give T
and a name mismatch gives M (SSL Labs' letters), with the grade the endpoint would get once
they are fixed kept beside it. A+ needs an uncapped A, TLS 1.3 and HSTS of at least
180 days. This is a documented approximation, not SSL Labs' exact scoring.
"""

from __future__ import annotations

from collectors.tls import _ciphers
from collectors.tls.facts import Grade, TlsFacts

GRADES = ("A+", "A", "A-", "B", "C", "F")  # best first
HSTS_FOR_A_PLUS = 15_552_000  # 180 days, as SSL Labs


def _caps(facts: TlsFacts) -> list[tuple[str, str]]:
    """(grade, reason) for every weakness present in the facts."""
    caps: list[tuple[str, str]] = []
    vulns = facts.vulnerabilities
    suites = facts.suites

    def cap(grade: str, reason: str, present: bool) -> None:
        if present:
            caps.append((grade, reason))

    cap("F", "SSLv2 offered", facts.offers("SSLv2"))
    cap("F", "NULL, EXPORT or anonymous suites", any(map(_ciphers.is_null_export_anon, suites)))
    cap("F", "Heartbleed", vulns.heartbleed is True)
    cap("F", "OpenSSL CCS injection", vulns.ccs_injection is True)
    cap("F", "ROBOT", bool(vulns.robot and vulns.robot.startswith("VULNERABLE")))
    cap("F", "insecure renegotiation", vulns.secure_renegotiation is False)
    tiny_dh = any(s.kx_type == "DH" and (s.kx_bits or 0) < 1024 for s in suites)
    cap("F", "DH group under 1024 bits", tiny_dh)
    cert = facts.certificate
    cap(
        "F",
        "RSA key under 1024 bits",
        bool(cert and cert.key_type == "RSA" and cert.key_bits < 1024),
    )
    cap("C", "SSLv3 offered", facts.offers("SSLv3"))
    cap("C", "RC4 suites", any(map(_ciphers.is_rc4, suites)))
    cap("C", "64-bit block ciphers (SWEET32)", any(map(_ciphers.is_block_64, suites)))
    cap("C", "TLS compression (CRIME)", vulns.compression is True)
    cap(
        "C",
        "neither TLS 1.2 nor TLS 1.3",
        facts.tested("TLSv1.2", "TLSv1.3")
        and not (facts.offers("TLSv1.2") or facts.offers("TLSv1.3")),
    )
    cap("B", "TLS 1.0 offered", facts.offers("TLSv1.0"))
    cap("B", "TLS 1.1 offered", facts.offers("TLSv1.1"))
    cap("B", "DH group under 2048 bits", any(map(_ciphers.weak_dh, suites)))
    cap("B", "weak ECDH curve", any(map(_ciphers.weak_ecdh, suites)))
    no_fs = bool(suites) and not any(map(_ciphers.has_forward_secrecy, suites))
    cap("B", "no forward secrecy", no_fs)
    cap("B", "no AEAD suites", bool(suites) and not any(map(_ciphers.is_aead, suites)))
    cap("B", "weak certificate key", bool(cert and _ciphers.weak_key(cert.key_type, cert.key_bits)))
    cap("A-", "no TLS_FALLBACK_SCSV", vulns.fallback_scsv is False)
    cap("A-", "TLS 1.3 not offered", facts.tested("TLSv1.3") and not facts.offers("TLSv1.3"))
    return caps


def trust_problems(facts: TlsFacts) -> list[str]:
    """Why a client would not trust the certificate (the T of the grade)."""
    cert = facts.certificate
    if cert is None:
        return []
    problems = []
    if not cert.chain_trusted:
        problems.append("certificate chain not trusted")
    if cert.not_after < facts.scanned_at:
        problems.append("certificate expired")
    if cert.not_before > facts.scanned_at:
        problems.append("certificate not yet valid")
    if cert.signature_hash in ("sha1", "md5"):
        problems.append(f"{cert.signature_hash.upper()} signature")
    return problems


def grade(facts: TlsFacts) -> Grade | None:
    """The grade of an endpoint that negotiated TLS; None when nothing was negotiated."""
    if not facts.protocols_offered:
        return None
    caps = _caps(facts)
    worst = max((GRADES.index(g) for g, _ in caps), default=GRADES.index("A"))
    letter = GRADES[worst]
    if (
        letter == "A"
        and facts.offers("TLSv1.3")
        and facts.hsts_max_age is not None
        and facts.hsts_max_age >= HSTS_FOR_A_PLUS
    ):
        letter = "A+"
    reasons = [f"{reason} → {g}" for g, reason in caps]
    final = letter
    if trust_problems(facts):
        final = "T"
        reasons += [f"{p} → T" for p in trust_problems(facts)]
    elif facts.certificate and facts.service == "https" and not facts.certificate.hostname_matches:
        final = "M"
        reasons.append("certificate does not name the host → M")
    return Grade(grade=final, ignoring_trust=letter, caps=tuple(reasons))
