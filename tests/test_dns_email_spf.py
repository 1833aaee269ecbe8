"""SPF parsing and expansion on records from RFC 7208, answered from real dnspython zones.

`zone_query` answers lookups from an in-memory zone through a wire-format round trip and
the collector's own `answer_from`, so these tests exercise the seam's parsing too.
"""

from __future__ import annotations

import asyncio

import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone
import pytest

from collectors.dns_email.spf import SpfSyntaxError, expand_spf, is_spf, parse_spf
from riskiturva.dns_seam import Answer, QueryFunction, answer_from


def zone_query(*zones: str | dns.zone.Zone) -> QueryFunction:
    """Answer queries like authoritative servers for `zones` (DS from the parent's side).

    A string is zone-file text with absolute names and no SOA, held as one flat zone.
    """
    loaded = [_flat(z) if isinstance(z, str) else z for z in zones]

    def zone_for(qname: dns.name.Name, qtype: int) -> dns.zone.Zone:
        holding = [z for z in loaded if qname.is_subdomain(z.origin)]
        holding.sort(key=lambda z: len(z.origin), reverse=True)
        if qtype == dns.rdatatype.DS and len(holding) > 1 and holding[0].origin == qname:
            return holding[1]
        return holding[0]

    async def query(name: str, rdtype: str) -> Answer:
        qname, qtype = dns.name.from_text(name), dns.rdatatype.from_text(rdtype)
        response = dns.message.make_response(dns.message.make_query(qname, qtype))
        zone = zone_for(qname, qtype)
        node = zone.get_node(qname)
        if node is None:
            below = any(n.is_subdomain(qname) for n in zone.nodes)
            response.set_rcode(dns.rcode.NOERROR if below else dns.rcode.NXDOMAIN)
        else:
            for rdtype_, covers in ((qtype, 0), (dns.rdatatype.RRSIG, qtype)):
                rdataset = node.get_rdataset(dns.rdataclass.IN, rdtype_, covers)
                if rdataset is not None:
                    response.answer.append(dns.rrset.from_rdata_list(qname, 300, list(rdataset)))
            alias = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.CNAME)
            if not response.answer and alias is not None:
                response.answer.append(dns.rrset.from_rdata_list(qname, 300, list(alias)))
        wire = dns.message.from_wire(response.to_wire())
        return answer_from(wire, name, rdtype)

    return query


def _flat(text: str) -> dns.zone.Zone:
    lines = "\n".join(line.strip() for line in text.strip().splitlines())
    return dns.zone.from_text(
        f"$TTL 300\n{lines}\n", origin=dns.name.root, relativize=False, check_origin=False
    )


def expand(zone: str, domain: str):
    return asyncio.run(expand_spf(domain, zone_query(zone)))


# --- parsing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "record",
    [
        # RFC 7208 Appendix A.1, "Simple Examples"
        "v=spf1 +all",
        "v=spf1 a -all",
        "v=spf1 a:example.org -all",
        "v=spf1 mx -all",
        "v=spf1 mx:example.org -all",
        "v=spf1 mx mx:example.org -all",
        "v=spf1 mx/30 mx:example.org/30 -all",
        "v=spf1 ptr -all",
        "v=spf1 ip4:192.0.2.128/28 -all",
        # Appendix A.2, "Multiple Domain Example"
        "v=spf1 include:example.com include:example.net -all",
        # Appendix A.3, "DNSBL Style Example"
        "v=spf1 mx include:mx.example.org -all",
        "v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all",
        # §7.4 macro examples, and §6.2 exp= with the explanation-only %{c} macro
        "v=spf1 exists:%{ir}.%{v}._spf.%{d2} -all",
        "v=spf1 exists:%{lr-}.lp._spf.%{d2} -all",
        "v=spf1 -all exp=explain._spf.%{d}",
        # §4.6.1: several spaces between terms, unknown modifiers are allowed
        "v=spf1  ip6:2001:db8::/32   foo=bar -all",
        "v=spf1 a/24//64 -all",
    ],
)
def test_rfc_7208_examples_parse(record: str) -> None:
    assert parse_spf(record).terms


@pytest.mark.parametrize(
    ("record", "complaint"),
    [
        ("v=spf1 ipv4:192.0.2.1 -all", "unknown mechanism 'ipv4'"),  # a typo seen in the wild
        ("v=spf1 include -all", "include needs a domain"),
        ("v=spf1 ip4:192.0.2.300 -all", "192.0.2.300"),
        ("v=spf1 ip4:2001:db8::1 -all", "not an IPv4"),
        ("v=spf1 exists:%{x}.example.com -all", "bad macro"),  # §7.1: x is no macro letter
        ("v=spf1 exists:%{c}.example.com -all", "only allowed in exp"),  # §7.3
        ("v=spf1 a:foo%bar.example.com", "bad macro"),
        ("v=spf1 redirect=a.example.com redirect=b.example.com", "more than once"),  # §6
        ("v=spf1 a/33 -all", "prefix length out of range"),
        ("v=spf1 all:example.com", "takes no argument"),
        ("v=spf1 a:localhost -all", "not a domain name"),
    ],
)
def test_faulty_records_are_named_precisely(record: str, complaint: str) -> None:
    with pytest.raises(SpfSyntaxError, match=complaint):
        parse_spf(record)


def test_only_v_spf1_then_space_is_an_spf_record() -> None:
    # RFC 7208 §4.5: "v=spf10" and records without the version are not SPF records.
    assert is_spf("v=spf1 -all") and is_spf("V=SPF1") and is_spf("v=spf1")
    assert not is_spf("v=spf10 -all") and not is_spf("spf1 -all")


# --- expansion ---------------------------------------------------------------------------

MAIL = """
example.test. TXT "v=spf1 mx include:_spf.partner.test -all"
example.test. MX 10 mx.example.test.
mx.example.test. A 192.0.2.10
_spf.partner.test. TXT "v=spf1 ip4:192.0.2.0/24 ~all"
"""


def test_a_plain_record_counts_its_lookups_and_takes_its_own_all() -> None:
    facts = expand(MAIL, "example.test")
    assert facts.lookups == 2  # mx, include (§4.6.4)
    assert facts.all_qualifier == "-"  # the included record's ~all does not count
    assert facts.void_lookups == 0
    assert not facts.loops and not facts.problems
    assert [d for d, _ in facts.seen] == ["example.test", "_spf.partner.test"]


def test_more_than_ten_lookups_are_counted_through_nested_includes() -> None:
    # RFC 7208 §4.6.4: include, a, mx, ptr, exists and redirect each cost one lookup,
    # counted across the whole evaluation: here 4 + 3 + 1 + 3 + 1 = 12.
    zone = """
    svc.test. TXT "v=spf1 mx include:_a.svc.test include:_b.svc.test include:_spf.partner.test -all"
    svc.test. MX 10 mx.svc.test.
    mx.svc.test. A 192.0.2.25
    www.svc.test. A 192.0.2.80
    _a.svc.test. TXT "v=spf1 a:www.svc.test a:mx.svc.test include:_c.svc.test -all"
    _b.svc.test. TXT "v=spf1 a:www.svc.test a:mx.svc.test include:_c.svc.test -all"
    _c.svc.test. TXT "v=spf1 ip4:192.0.2.0/24 a:www.svc.test -all"
    _spf.partner.test. TXT "v=spf1 ip4:192.0.2.0/24 -all"
    """
    facts = expand(zone, "svc.test")
    assert facts.lookups == 12


def test_an_include_loop_terminates_and_is_reported_as_a_fault_of_the_record() -> None:
    zone = """
    lib.test. TXT "v=spf1 include:_spf-lib.test -all"
    _spf-lib.test. TXT "v=spf1 ip4:192.0.2.25 include:lib.test -all"
    """
    facts = expand(zone, "lib.test")
    assert facts.loops == ("lib.test → _spf-lib.test → lib.test",)
    assert facts.lookups == 2


def test_a_redirect_loop_terminates_too() -> None:
    zone = """
    a.test. TXT "v=spf1 redirect=b.test"
    b.test. TXT "v=spf1 redirect=a.test"
    """
    facts = expand(zone, "a.test")
    assert facts.loops and facts.all_qualifier is None


def test_redirect_supplies_the_all_of_a_record_without_one() -> None:
    # RFC 7208 §6.1: redirect applies when the record has no `all`.
    zone = """
    a.test. TXT "v=spf1 ip4:192.0.2.1 redirect=_spf.b.test"
    _spf.b.test. TXT "v=spf1 ip4:192.0.2.2 ?all"
    """
    facts = expand(zone, "a.test")
    assert facts.all_qualifier == "?"
    assert facts.lookups == 1


def test_void_lookups_are_counted() -> None:
    # RFC 7208 §4.6.4: a lookup answered with no records or NXDOMAIN is void; over 2 fail.
    zone = """
    v.test. TXT "v=spf1 a:gone1.v.test a:gone2.v.test mx:gone3.v.test include:gone4.v.test -all"
    """
    facts = expand(zone, "v.test")
    assert facts.void_lookups == 4
    assert facts.problems == ("include:gone4.v.test has no SPF record",)


def test_ptr_is_found_in_included_records() -> None:
    zone = """
    p.test. TXT "v=spf1 include:_spf.p.test -all"
    _spf.p.test. TXT "v=spf1 ptr:p.test -all"
    """
    assert expand(zone, "p.test").ptr_in == ("_spf.p.test",)


def test_two_records_are_not_evaluated() -> None:
    # RFC 7208 §4.5: more than one record is a permerror.
    zone = """
    two.test. TXT "v=spf1 -all"
    two.test. TXT "v=spf1 ~all"
    two.test. TXT "google-site-verification=abc"
    """
    facts = expand(zone, "two.test")
    assert len(facts.records) == 2 and facts.lookups == 0


def test_only_fails_recognises_a_domain_that_sends_nothing() -> None:
    zone = """
    none.test. TXT "v=spf1 -all"
    some.test. TXT "v=spf1 a -all"
    """
    assert expand(zone, "none.test").only_fails
    assert not expand(zone, "some.test").only_fails


def test_macro_targets_are_counted_but_not_looked_up() -> None:
    facts = expand('m.test. TXT "v=spf1 exists:%{i}._spf.m.test -all"', "m.test")
    assert facts.lookups == 1 and facts.unexpanded == ("exists:%{i}._spf.m.test",)


def test_a_fault_in_an_included_record_is_a_fault_of_the_record() -> None:
    zone = """
    k.test. TXT "v=spf1 include:_spf.isp.test -all"
    _spf.isp.test. TXT "v=spf1 ip4:192.0.2.0/33 -all"
    """
    facts = expand(zone, "k.test")
    assert facts.syntax_error is None
    assert len(facts.problems) == 1 and facts.problems[0].startswith("_spf.isp.test: ")


def test_redirect_is_ignored_when_the_record_has_all() -> None:
    # RFC 7208 §6.1: "redirect" is ignored when there is an "all" mechanism.
    zone = """
    r.test. TXT "v=spf1 -all redirect=other.test"
    other.test. TXT "v=spf1 +all"
    """
    facts = expand(zone, "r.test")
    assert facts.all_qualifier == "-" and facts.lookups == 0
