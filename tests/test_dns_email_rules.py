"""Offline tests of the dns_email parsers (DMARC, DKIM, MTA-STS, TLSA) and the pure rules.

Records come from the RFCs' own examples where there are any; the rules are judged on
small facts objects. Hostile records (4 KB, HTML/JS, non-UTF-8) go through the real parsers.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import json

import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st
from publicsuffixlist import PublicSuffixList

from collectors.dns_email import DnsEmailCollector, rules
from collectors.dns_email.dkim import DkimFacts, parse_dkim
from collectors.dns_email.dmarc import (
    DmarcSyntaxError,
    find_dmarc,
    organisational_domain,
    parse_dmarc,
)
from collectors.dns_email.dnssec import DnssecFacts, DnssecStatus
from collectors.dns_email.facts import DnsEmailFacts
from collectors.dns_email.mail import (
    DaneHost,
    MtaStsFacts,
    MtaStsPolicyError,
    MxFacts,
    MxHost,
    TlsRptFacts,
    find_mx,
    mx_matches,
    parse_http_response,
    parse_mta_sts_policy,
    tlsa_matches,
)
from collectors.dns_email.spf import SpfFacts, SpfSyntaxError, expand_spf, parse_spf
from collectors.dns_email.zone import Nameserver, ZoneFacts, find_caa, follow_cname
from riskiturva.checks import load_registry
from riskiturva.collector import to_jsonable
from riskiturva.dns_seam import txt_string
from tests.rule_checks import checked
from tests.test_dns_email_spf import zone_query

T0 = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)
PSL = PublicSuffixList()


def facts(**sections: object) -> DnsEmailFacts:
    roles = sections.pop("roles", ("domain", "mail_domain"))
    return DnsEmailFacts("kunta.test", roles, "@127.53.0.1", T0, **sections)  # type: ignore[arg-type]


def ids(f: DnsEmailFacts) -> set[str]:
    return {d.check_id for d in checked(rules.judge_facts, f)}


# --- the registry ------------------------------------------------------------------------


def test_every_email_and_dns_check_is_this_collector_s_but_starttls() -> None:
    email_and_dns = {c for c in load_registry() if c.startswith(("email.", "dns."))}
    # The TLS collector emits the STARTTLS check; every other one here is ours.
    assert email_and_dns - DnsEmailCollector.check_ids == {"email.smtp.starttls_missing"}


# --- DMARC (RFC 7489) --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "policy", "rua"),
    [
        # RFC 7489 Appendix B.2.1
        ("v=DMARC1; p=none; rua=mailto:dmarc-feedback@example.com", "none", 1),
        # B.2.3, with a size limit on the second URI (§6.2)
        (
            "v=DMARC1; p=quarantine; rua=mailto:dmarc-feedback@example.com,"
            "mailto:tld-test@thirdparty.example.net!10m; ruf=mailto:auth-reports@example.com",
            "quarantine",
            2,
        ),
        # B.2.4: a partial roll-out
        ("v=DMARC1; p=quarantine; rua=mailto:dmarc-feedback@example.com; pct=10", "quarantine", 1),
        ("v=DMARC1;p=reject;unknown=ignored", "reject", 0),  # §6.3: unknown tags are ignored
    ],
)
def test_rfc_7489_examples_parse(record: str, policy: str, rua: int) -> None:
    parsed = parse_dmarc(record)
    assert parsed.policy == policy and len(parsed.rua) == rua


@pytest.mark.parametrize(
    ("record", "complaint"),
    [
        ("v=DMARC1; p=rejected; rua=mailto:d@example.com", "p='rejected'"),
        ("v=DMARC1; rua=mailto:d@example.com", "p= is missing"),
        ("v=DMARC1; p=reject; pct=150", "pct="),
        ("v=DMARC1; p=reject; sp=maybe", "sp="),
        ("v=DMARC1; p=reject; rua=dmarc@example.com", "not a URI"),
        ("v=DMARC1; p=reject; p=none", "twice"),
    ],
)
def test_faulty_dmarc_records_are_named_precisely(record: str, complaint: str) -> None:
    with pytest.raises(DmarcSyntaxError, match=complaint):
        parse_dmarc(record)


def test_the_organisational_domain_comes_from_the_public_suffix_list() -> None:
    assert organisational_domain("koulu.rapala.test", PSL) == "rapala.test"  # default * rule
    assert organisational_domain("www.kunta.fi", PSL) == "kunta.fi"
    assert organisational_domain("mail.example.co.uk", PSL) == "example.co.uk"


DMARC_ZONE = """
_dmarc.org.test. TXT "v=DMARC1; p=reject; sp=quarantine; rua=mailto:d@org.test"
_dmarc.own.org.test. TXT "v=DMARC1; p=none; rua=mailto:d@org.test"
_dmarc.two.test. TXT "v=DMARC1; p=reject"
_dmarc.two.test. TXT "v=DMARC1; p=none"
_dmarc.other.test. TXT "some verification token"
"""


def test_a_subdomain_without_a_record_inherits_the_organisational_policy() -> None:
    # RFC 7489 §6.6.3: fall back to the organisational domain; `sp` applies there.
    found = asyncio.run(find_dmarc("shop.org.test", zone_query(DMARC_ZONE), PSL))
    assert found.found_at == "_dmarc.org.test" and found.inherited
    assert found.effective_policy == "quarantine"
    assert ids(facts(dmarc=found)) == {"email.dmarc.inherited_from_org_domain"}


def test_a_subdomain_record_of_its_own_is_preferred() -> None:
    found = asyncio.run(find_dmarc("own.org.test", zone_query(DMARC_ZONE), PSL))
    assert not found.inherited
    assert ids(facts(dmarc=found)) == {"email.dmarc.policy_none"}


def test_two_dmarc_records_mean_no_policy() -> None:
    found = asyncio.run(find_dmarc("two.test", zone_query(DMARC_ZONE), PSL))
    assert ids(facts(dmarc=found)) == {"email.dmarc.syntax_error"}


def test_non_dmarc_txt_at_the_name_is_not_a_record() -> None:
    found = asyncio.run(find_dmarc("other.test", zone_query(DMARC_ZONE), PSL))
    assert ids(facts(dmarc=found)) == {"email.dmarc.missing"}


def test_dmarc_policy_rules() -> None:
    zone = """
    _dmarc.a.test. TXT "v=DMARC1; p=reject; sp=none; pct=50"
    """
    found = asyncio.run(find_dmarc("a.test", zone_query(zone), PSL))
    assert ids(facts(dmarc=found)) == {
        "email.dmarc.subdomain_policy_none",
        "email.dmarc.pct_partial",
        "email.dmarc.no_rua",
    }


# --- DKIM (RFC 6376 §3.6.1) --------------------------------------------------------------


def _rsa_record(bits: int, extra: str = "") -> str:
    if bits >= 1024:
        key = rsa.generate_private_key(65537, bits).public_key()
    else:  # cryptography will not generate keys this weak; the public numbers suffice
        key = rsa.RSAPublicNumbers(65537, (1 << (bits - 1)) | 1).public_key()
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return f"v=DKIM1; k=rsa;{extra} p={base64.b64encode(der).decode()}"


@pytest.mark.parametrize(
    ("bits", "check"),
    [(512, "email.dkim.key_under_1024"), (1024, "email.dkim.key_under_2048"), (2048, None)],
)
def test_dkim_key_sizes(bits: int, check: str | None) -> None:
    key = parse_dkim("s1", _rsa_record(bits))
    assert key.bits == bits
    found = ids(facts(dkim=DkimFacts("kunta.test", ("s1",), (key,))))
    assert found == ({check} if check else set())


def test_a_revoked_key_and_the_testing_flag() -> None:
    revoked = parse_dkim("old", "v=DKIM1; k=rsa; p=")  # §3.6.1: empty p= means revoked
    testing = parse_dkim("new", _rsa_record(2048, " t=y;"))
    assert revoked.revoked and testing.testing
    found = ids(facts(dkim=DkimFacts("kunta.test", ("old", "new"), (revoked, testing))))
    assert found == {"email.dkim.revoked_key", "email.dkim.testing"}


def test_garbage_in_p_is_kept_as_an_error_not_a_crash() -> None:
    key = parse_dkim("x", "v=DKIM1; p=<script>alert(1)</script>")
    assert key.error and key.bits is None


def test_no_key_at_any_selector() -> None:
    assert ids(facts(dkim=DkimFacts("kunta.test", ("default",), ()))) == {"email.dkim.not_found"}


# --- MTA-STS (RFC 8461) ------------------------------------------------------------------

RFC_8461_POLICY = (
    "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\n"
    "mx: backupmx.example.com\r\nmax_age: 604800\r\n"
)


def test_the_rfc_8461_example_policy_parses() -> None:
    # RFC 8461 §3.2
    policy = parse_mta_sts_policy(RFC_8461_POLICY)
    assert policy.mode == "enforce" and policy.max_age == 604800
    assert policy.mx == ("mail.example.com", "*.example.net", "backupmx.example.com")


@pytest.mark.parametrize(
    "text",
    [
        "version: STSv1\nmode: enforcing\nmx: a.example\nmax_age: 1\n",
        "version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n",
        "version: STSv1\nmode: enforce\nmax_age: 1\n",
        "<html><body>Not found</body></html>",
    ],
)
def test_bad_policies_are_rejected(text: str) -> None:
    with pytest.raises(MtaStsPolicyError):
        parse_mta_sts_policy(text)


def test_mx_patterns_match_as_rfc_8461_says() -> None:
    # §4.1: a wildcard matches exactly one leftmost label.
    assert mx_matches("*.example.net", "mx1.example.net")
    assert not mx_matches("*.example.net", "a.mx1.example.net")
    assert not mx_matches("*.example.net", "example.net")
    assert mx_matches("mail.example.com", "MAIL.example.com.")


MX = MxFacts(
    "kunta.test", ("10 mx1.kunta.test.",), (MxHost(10, "mx1.kunta.test", (), ("192.0.2.25",)),)
)
STS_RECORD = ("v=STSv1; id=1",)


@pytest.mark.parametrize(
    ("sts", "expected"),
    [
        (MtaStsFacts("kunta.test", ()), {"email.mta_sts.missing"}),
        (
            MtaStsFacts("kunta.test", STS_RECORD, problem="HTTP status 404"),
            {"email.mta_sts.policy_unavailable"},
        ),
        (
            MtaStsFacts(
                "kunta.test",
                STS_RECORD,
                policy=parse_mta_sts_policy(
                    "version: STSv1\nmode: testing\nmx: mx1.kunta.test\nmax_age: 86400\n"
                ),
            ),
            {"email.mta_sts.mode_testing"},
        ),
        (
            MtaStsFacts(
                "kunta.test",
                STS_RECORD,
                policy=parse_mta_sts_policy("version: STSv1\nmode: none\nmax_age: 86400\n"),
            ),
            {"email.mta_sts.mode_none"},
        ),
        (
            MtaStsFacts(
                "kunta.test",
                STS_RECORD,
                policy=parse_mta_sts_policy(
                    "version: STSv1\nmode: enforce\nmx: old.kunta.test\nmax_age: 86400\n"
                ),
                uncovered_mx=("mx1.kunta.test",),
            ),
            {"email.mta_sts.mx_not_covered"},
        ),
    ],
)
def test_mta_sts_rules(sts: MtaStsFacts, expected: set[str]) -> None:
    assert ids(facts(mx=MX, mta_sts=sts)) == expected


def test_a_null_mx_is_intentional_and_asks_for_no_transport_security() -> None:
    # RFC 7505: `MX 0 .` says the domain receives no mail.
    null = MxFacts("kunta.test", ("0 .",), (MxHost(0, ".", (), ()),))
    found = ids(
        facts(
            mx=null,
            mta_sts=MtaStsFacts("kunta.test", ()),
            tlsrpt=TlsRptFacts("kunta.test", ()),
            dane=(),
        )
    )
    assert found == set()


def test_mx_rules() -> None:
    broken = MxFacts(
        "kunta.test",
        ("10 alias.kunta.test.", "20 gone.kunta.test."),
        (
            MxHost(
                10, "alias.kunta.test", ("alias.kunta.test CNAME mx.isp.test.",), ("192.0.2.1",)
            ),
            MxHost(20, "gone.kunta.test", (), ()),
        ),
    )
    assert ids(facts(mx=broken)) == {"email.mx.cname", "email.mx.unresolvable"}
    assert ids(facts(mx=MxFacts("kunta.test", (), ()))) == {"email.mx.missing"}
    # A plain `domain` asset is not judged for its MX.
    assert ids(facts(mx=MxFacts("kunta.test", (), ()), roles=("domain",))) == set()


# --- DANE (RFC 7672, RFC 6698) -----------------------------------------------------------


def _certificate() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mx1.kunta.test")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(T0)
        .not_valid_after(T0 + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


def _tlsa(text: str) -> dns.rdata.Rdata:
    return dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.TLSA, text)


def test_tlsa_records_match_the_served_certificate() -> None:
    served = _certificate()
    spki = (
        x509.load_der_x509_certificate(served)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert tlsa_matches(_tlsa(f"3 1 1 {hashlib.sha256(spki).hexdigest()}"), served)
    assert tlsa_matches(_tlsa(f"3 0 1 {hashlib.sha256(served).hexdigest()}"), served)
    assert tlsa_matches(_tlsa(f"3 1 2 {hashlib.sha512(spki).hexdigest()}"), served)
    assert tlsa_matches(_tlsa(f"3 1 1 {hashlib.sha256(b'other').hexdigest()}"), served) is False
    assert tlsa_matches(_tlsa(f"2 0 1 {hashlib.sha256(served).hexdigest()}"), served) is None


def test_dane_rules() -> None:
    hosts = (
        DaneHost("mx1.kunta.test", ("3 1 1 aa",), "192.0.2.25", "ff", matched=False),
        DaneHost("mx2.kunta.test", ()),
    )
    assert ids(facts(mx=MX, dane=hosts)) == {"email.dane.mismatch", "email.dane.missing"}


# --- SPF rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("qualifier", "check"),
    [
        ("+", "email.spf.pass_all"),
        ("?", "email.spf.neutral_all"),
        (None, "email.spf.neutral_all"),
        ("~", "email.spf.softfail_all"),
        ("-", None),
    ],
)
def test_the_all_qualifier_decides(qualifier: str | None, check: str | None) -> None:
    spf = SpfFacts("kunta.test", ("v=spf1 mx ...",), all_qualifier=qualifier)
    assert ids(facts(spf=spf)) == ({check} if check else set())


def test_a_domain_without_mx_should_publish_dash_all() -> None:
    no_mx = MxFacts("kunta.test", (), ())
    sends = SpfFacts("kunta.test", ("v=spf1 a -all",), all_qualifier="-")
    nothing = SpfFacts("kunta.test", ("v=spf1 -all",), all_qualifier="-")
    assert ids(facts(spf=sends, mx=no_mx, roles=("domain",))) == {
        "email.spf.nonsending_not_restricted"
    }
    assert ids(facts(spf=nothing, mx=no_mx, roles=("domain",))) == set()


def test_spf_limits_and_loops() -> None:
    spf = SpfFacts(
        "kunta.test",
        ("v=spf1 include:a -all",),
        all_qualifier="-",
        lookups=11,
        void_lookups=3,
        loops=("kunta.test → a → kunta.test",),
        ptr_in=("a",),
        problems=("include:b has no SPF record",),
    )
    assert ids(facts(spf=spf)) == {
        "email.spf.too_many_lookups",
        "email.spf.too_many_void_lookups",
        "email.spf.include_loop",
        "email.spf.ptr_used",
        "email.spf.syntax_error",
    }


# --- DNSSEC and DNS hygiene --------------------------------------------------------------


def _dnssec(status: DnssecStatus, **extra: object) -> DnssecFacts:
    return DnssecFacts("kunta.test", "kunta.test", status, **extra)  # type: ignore[arg-type]


def test_dnssec_rules() -> None:
    assert ids(facts(dnssec=_dnssec(DnssecStatus.INSECURE))) == {"dns.dnssec.unsigned"}
    assert ids(facts(dnssec=_dnssec(DnssecStatus.BOGUS, reason="no DNSKEY matches"))) == {
        "dns.dnssec.bogus"
    }
    assert ids(facts(dnssec=_dnssec(DnssecStatus.NO_ANCHOR))) == set()
    soon = _dnssec(DnssecStatus.SECURE, algorithms=(5,), earliest_expiry=T0 + dt.timedelta(days=3))
    assert ids(facts(dnssec=soon)) == {
        "dns.dnssec.expiring_signatures",
        "dns.dnssec.weak_algorithm",
    }
    later = _dnssec(
        DnssecStatus.SECURE, algorithms=(13,), earliest_expiry=T0 + dt.timedelta(days=30)
    )
    assert ids(facts(dnssec=later)) == set()


def test_nameserver_rules() -> None:
    one = ZoneFacts(
        "kunta.test", ("ns1.isp.test.",), (Nameserver("ns1.isp.test", ("192.0.2.53",)),)
    )
    assert ids(facts(zone=one)) == {"dns.ns.single"}
    same = ZoneFacts(
        "kunta.test",
        ("ns1.isp.test.", "ns2.isp.test."),
        (
            Nameserver("ns1.isp.test", ("192.0.2.53",)),
            Nameserver(
                "ns2.isp.test",
                ("192.0.2.54",),
                lame=("192.0.2.54: answered REFUSED",),
                axfr_open=("192.0.2.54: transferred 9 records",),
            ),
        ),
    )
    found = checked(rules.judge_facts, facts(zone=same))
    assert {d.check_id for d in found} == {"dns.ns.same_subnet", "dns.ns.lame", "dns.axfr.open"}
    axfr = next(d for d in found if d.check_id == "dns.axfr.open")
    assert axfr.reproduce == "dig AXFR kunta.test @192.0.2.54"


# --- hostile records ---------------------------------------------------------------------


# Non-UTF-8 bytes (\255\254 in zone-file escapes) and HTML in a DMARC record.
HOSTILE_DMARC = (
    '"v=DMARC1; p=reject; rua=mailto:\\255\\254@hostile.test<img src=x onerror=alert(1)>"'
)


def test_hostile_records_are_kept_safely_and_never_crash() -> None:
    big = " ".join(f'"{"x" * 250}"' for _ in range(16))  # a 4 KB TXT record
    zone = f"""
    hostile.test. TXT "v=spf1 <script>alert('x')</script> -all"
    hostile.test. TXT {big}
    _dmarc.hostile.test. TXT {HOSTILE_DMARC}
    big.test. TXT "v=spf1 ip4:192.0.2.1 -all" {big}
    """
    query = zone_query(zone)
    spf = asyncio.run(expand_spf("hostile.test", query))
    dmarc = asyncio.run(find_dmarc("hostile.test", query, PSL))
    big_spf = asyncio.run(expand_spf("big.test", query))
    assert spf.syntax_error and "<script>" in spf.records[0]  # kept as data, as it was
    assert dmarc.syntax_error and "\\xff\\xfe" in dmarc.records[0]  # non-UTF-8 made visible
    assert big_spf.syntax_error  # "xxx…" is no SPF term
    drafts = checked(rules.judge_facts, facts(spf=big_spf, dmarc=dmarc))
    evidence = json.dumps(to_jsonable([d.evidence for d in drafts]))
    assert "(4025 characters)" in evidence  # the 4 KB record is cut, and says so
    assert all(len(text) <= rules.MAX_SHOWN + 30 for text in _strings(to_jsonable(drafts)))
    assert {d.check_id for d in drafts} == {"email.spf.syntax_error", "email.dmarc.syntax_error"}


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def test_every_finding_has_a_reproduce_command_with_an_explicit_server() -> None:
    f = facts(
        spf=SpfFacts("kunta.test", ()),
        dmarc=asyncio.run(find_dmarc("kunta.test", zone_query(DMARC_ZONE), PSL)),
        mx=MX,
        mta_sts=MtaStsFacts("kunta.test", ()),
        tlsrpt=TlsRptFacts("kunta.test", ()),
        dane=(DaneHost("mx1.kunta.test", ()),),
        dnssec=_dnssec(DnssecStatus.INSECURE),
    )
    drafts = checked(rules.judge_facts, f)
    assert len(drafts) == 6
    for draft in drafts:
        assert draft.reproduce and "@127.53.0.1" in draft.reproduce, draft


def test_a_null_mx_is_read_from_dns_as_intentional() -> None:
    # RFC 7505 §3: a single MX with preference 0 and the root as exchange.
    zone = """
    nomail.test. MX 0 .
    mail.test. MX 10 mx.mail.test.
    mail.test. MX 20 alias.mail.test.
    mx.mail.test. A 192.0.2.25
    alias.mail.test. CNAME mx.mail.test.
    """
    null = asyncio.run(find_mx("nomail.test", zone_query(zone)))
    assert null.null_mx and not null.receives_mail
    assert ids(facts(mx=null)) == set()
    mail = asyncio.run(find_mx("mail.test", zone_query(zone)))
    assert [(h.name, h.addresses) for h in mail.hosts] == [
        ("mx.mail.test", ("192.0.2.25",)),
        ("alias.mail.test", ("192.0.2.25",)),
    ]
    assert ids(facts(mx=mail)) == {"email.mx.cname"}


def test_caa_is_looked_up_the_tree_to_the_organisational_domain() -> None:
    # RFC 8659 §3: the closest CAA set up the tree is the relevant one.
    zone = 'kunta.test. CAA 0 issue "ca.test"'
    found = asyncio.run(find_caa("www.palvelu.kunta.test", "kunta.test", zone_query(zone)))
    assert found.found_at == "kunta.test"
    assert found.searched == ("www.palvelu.kunta.test", "palvelu.kunta.test", "kunta.test")
    missing = asyncio.run(find_caa("muu.test", "muu.test", zone_query(zone)))
    assert ids(facts(caa=missing)) == {"dns.caa.missing"}


def test_a_cname_to_a_name_that_does_not_exist_is_dangling() -> None:
    zone = """
    vanha.kunta.test. CNAME kampanja.palvelu.test.
    uusi.kunta.test. CNAME www.kunta.test.
    www.kunta.test. A 192.0.2.80
    """
    dangling = asyncio.run(follow_cname("vanha.kunta.test", zone_query(zone)))
    alive = asyncio.run(follow_cname("uusi.kunta.test", zone_query(zone)))
    plain = asyncio.run(follow_cname("www.kunta.test", zone_query(zone)))
    assert dangling.dangling and dangling.chain == (
        "vanha.kunta.test CNAME kampanja.palvelu.test.",
    )
    assert not alive.dangling and not plain.dangling and plain.chain == ()
    assert ids(facts(cname=dangling, roles=("host",))) == {"dns.cname.dangling"}


@pytest.mark.parametrize(
    ("raw", "status", "body"),
    [
        (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nversion: STSv1\r\n",
            200,
            b"version: STSv1\r\n",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            200,
            b"hello",
        ),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n", 200, b""),
        (b"<html><script>alert(1)</script>", 0, b""),
        (b"HTTP/1.1 abc\r\n\r\n\xff\xfe", 0, b"\xff\xfe"),
        (b"", 0, b""),
    ],
)
def test_hostile_http_responses_are_read_without_raising(raw: bytes, status: int, body: bytes):
    fetched = parse_http_response(raw)
    assert (fetched.status, fetched.body) == (status, body)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300), st.binary(max_size=300))
def test_parsers_raise_only_their_own_precise_errors(text: str, data: bytes) -> None:
    """Whatever a TXT record holds, a parser names the fault or reads it; nothing else."""
    decoded = txt_string((data,))
    for candidate in (text, decoded, f"v=spf1 {text}", f"v=DMARC1; {text}"):
        with contextlib.suppress(SpfSyntaxError):
            parse_spf(candidate)
        with contextlib.suppress(DmarcSyntaxError):
            parse_dmarc(candidate)
        with contextlib.suppress(MtaStsPolicyError):
            parse_mta_sts_policy(candidate)
        parse_dkim("s", candidate)
        parse_dkim("s", f"v=DKIM1; p={candidate}")
    parse_http_response(data)


def _planted() -> list[DnsEmailFacts]:
    """Facts that, between them, raise every check the collector declares."""
    dmarc_zone = zone_query(
        """
        _dmarc.b.test. TXT "v=DMARC1; p=rejected"
        _dmarc.c.test. TXT "v=DMARC1; p=none; rua=mailto:d@c.test"
        _dmarc.d.test. TXT "v=DMARC1; p=reject; sp=none; pct=50"
        vanha.kunta.test. CNAME kampanja.palvelu.test.
        """
    )
    found_dmarc = [
        asyncio.run(find_dmarc(name, dmarc_zone, PSL))
        for name in ("a.test", "b.test", "sub.c.test", "d.test")
    ]
    no_mail = MxFacts("kunta.test", (), ())
    keys = (
        parse_dkim("s512", _rsa_record(512)),
        parse_dkim("s1024", _rsa_record(1024)),
        parse_dkim("old", "v=DKIM1; k=rsa; p="),
        parse_dkim("test", _rsa_record(1024, " t=y;")),
    )
    policy = parse_mta_sts_policy
    sts = [
        MtaStsFacts("kunta.test", ()),
        MtaStsFacts("kunta.test", STS_RECORD, problem="HTTP status 404"),
        MtaStsFacts(
            "kunta.test",
            STS_RECORD,
            policy=policy("version: STSv1\nmode: testing\nmx: mx1.kunta.test\nmax_age: 86400\n"),
        ),
        MtaStsFacts(
            "kunta.test", STS_RECORD, policy=policy("version: STSv1\nmode: none\nmax_age: 86400\n")
        ),
        MtaStsFacts(
            "kunta.test",
            STS_RECORD,
            policy=policy("version: STSv1\nmode: enforce\nmx: old.kunta.test\nmax_age: 86400\n"),
            uncovered_mx=("mx1.kunta.test",),
        ),
    ]
    broken_mx = MxFacts(
        "kunta.test",
        ("10 alias.kunta.test.", "20 gone.kunta.test."),
        (
            MxHost(
                10, "alias.kunta.test", ("alias.kunta.test CNAME mx.isp.test.",), ("192.0.2.1",)
            ),
            MxHost(20, "gone.kunta.test", (), ()),
        ),
    )
    two_ns = ZoneFacts(
        "kunta.test",
        ("ns1.isp.test.", "ns2.isp.test."),
        (
            Nameserver("ns1.isp.test", ("192.0.2.53",)),
            Nameserver(
                "ns2.isp.test",
                ("192.0.2.54",),
                lame=("192.0.2.54: REFUSED",),
                axfr_open=("192.0.2.54: transferred 9 records",),
            ),
        ),
    )
    one_ns = ZoneFacts(
        "kunta.test", ("ns1.isp.test.",), (Nameserver("ns1.isp.test", ("192.0.2.53",)),)
    )
    spf = [
        SpfFacts("kunta.test", ()),
        SpfFacts("kunta.test", ("v=spf1 -all", "v=spf1 mx -all")),
        SpfFacts("kunta.test", ("v=spf1 bogus",), syntax_error="unknown mechanism 'bogus'"),
        *(SpfFacts("kunta.test", ("v=spf1 mx",), all_qualifier=q) for q in ("+", "?", "~")),
        SpfFacts(
            "kunta.test",
            ("v=spf1 include:a -all",),
            all_qualifier="-",
            lookups=11,
            void_lookups=3,
            loops=("kunta.test → a → kunta.test",),
            ptr_in=("a",),
        ),
    ]
    return [
        *(facts(spf=s) for s in spf),
        facts(spf=SpfFacts("kunta.test", ("v=spf1 a -all",), all_qualifier="-"), mx=no_mail,
              roles=("domain",)),
        *(facts(dmarc=d) for d in found_dmarc),
        facts(dkim=DkimFacts("kunta.test", ("default",), ())),
        facts(dkim=DkimFacts("kunta.test", tuple(k.selector for k in keys), keys)),
        facts(mx=broken_mx),
        facts(mx=no_mail),
        *(facts(mx=MX, mta_sts=s) for s in sts),
        facts(mx=MX, tlsrpt=TlsRptFacts("kunta.test", ())),
        facts(mx=MX, dane=(DaneHost("mx1.kunta.test", ("3 1 1 aa",), "192.0.2.25", "ff",
                                    matched=False), DaneHost("mx2.kunta.test", ()))),
        facts(dnssec=_dnssec(DnssecStatus.INSECURE)),
        facts(dnssec=_dnssec(DnssecStatus.BOGUS, reason="no DNSKEY matches")),
        facts(dnssec=_dnssec(DnssecStatus.SECURE, algorithms=(5,),
                             earliest_expiry=T0 + dt.timedelta(days=3))),
        facts(zone=one_ns),
        facts(zone=two_ns),
        facts(caa=asyncio.run(find_caa("muu.test", "muu.test", dmarc_zone))),
        facts(cname=asyncio.run(follow_cname("vanha.kunta.test", dmarc_zone)), roles=("host",)),
    ]  # fmt: skip


# Read by tests/test_rule_coverage.py, which holds every collector to its declared checks.
PLANTED = _planted()
