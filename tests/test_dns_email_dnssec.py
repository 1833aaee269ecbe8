"""DNSSEC validation by the collector itself, on zones signed here with real keys.

The parent `test.` is the trust anchor; children are signed with dnspython (ECDSA P-256,
or RSA/SHA-1 for the weak-algorithm case) and answered through `zone_query`, so the chain
DS → DNSKEY → SOA is checked with real signatures.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import dns.dnssec
import dns.name
import dns.rrset
import dns.zone
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from collectors.dns_email import rules
from collectors.dns_email.dnssec import (
    DnssecStatus,
    load_trust_anchors,
    validate_name,
    zone_cuts,
)
from collectors.dns_email.facts import DnsEmailFacts
from tests.test_dns_email_spf import zone_query

NOW = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)
Algorithm = dns.dnssec.Algorithm


def _key(algorithm: Algorithm):
    if algorithm == Algorithm.RSASHA1:
        private = rsa.generate_private_key(65537, 2048)
    else:
        private = ec.generate_private_key(ec.SECP256R1())
    return private, dns.dnssec.make_dnskey(private.public_key(), algorithm, flags=257)


def _signed(text: str, origin: str, key, days: float) -> dns.zone.Zone:
    zone = dns.zone.from_text(f"$TTL 300\n{text}", origin=origin, relativize=False)
    dns.dnssec.sign_zone(
        zone,
        keys=[key],
        inception=NOW - dt.timedelta(hours=1),
        expiration=NOW + dt.timedelta(days=days),
        dnskey_ttl=300,
        policy=dns.dnssec.allow_all_policy,
    )
    return zone


def estate(child_algorithm: Algorithm, child_days: float, ds_matches: bool = True):
    """`test.` (the anchor) delegating to a signed `kunta.test.` and an unsigned `auki.test.`."""
    child_key = _key(child_algorithm)
    ds_key = child_key[1] if ds_matches else _key(Algorithm.ECDSAP256SHA256)[1]
    ds = dns.dnssec.make_ds("kunta.test.", ds_key, "SHA256")
    header = "@ SOA ns.test. h.test. 1 3600 900 1209600 300\n@ NS ns.test.\n"
    parent_key = _key(Algorithm.ECDSAP256SHA256)
    parent = _signed(
        header + f"kunta NS ns.test.\nkunta DS {ds}\nauki NS ns.test.\n", "test.", parent_key, 30
    )
    child = _signed(header + "www A 192.0.2.80\n", "kunta.test.", child_key, child_days)
    unsigned = dns.zone.from_text(f"$TTL 300\n{header}www A 192.0.2.81\n", origin="auki.test.")
    anchor = dns.rrset.from_rdata(dns.name.from_text("test."), 300, parent_key[1])
    return zone_query(parent, child, unsigned), anchor.to_text()


def validate(query, anchor_text: str, tmp_path, name: str = "www.kunta.test"):
    path = tmp_path / "anchors.txt"
    path.write_text(anchor_text + "\n")
    anchors = load_trust_anchors(path)

    async def run():
        return await validate_name(name, await zone_cuts(name, query), query, anchors, NOW)

    return asyncio.run(run())


def judged(sec) -> set[str]:
    facts = DnsEmailFacts("kunta.test", ("domain",), "@127.53.0.1", NOW, dnssec=sec)
    return {d.check_id for d in rules.judge_facts(facts)}


def test_a_good_chain_is_secure_and_raises_nothing(tmp_path):
    query, anchor = estate(Algorithm.ECDSAP256SHA256, 30)
    sec = validate(query, anchor, tmp_path)
    assert sec.status is DnssecStatus.SECURE, sec.reason
    assert sec.zone == "kunta.test" and sec.algorithms == (13,)
    assert judged(sec) == set()


def test_a_ds_naming_another_key_is_bogus(tmp_path):
    query, anchor = estate(Algorithm.ECDSAP256SHA256, 30, ds_matches=False)
    sec = validate(query, anchor, tmp_path)
    assert sec.status is DnssecStatus.BOGUS
    assert sec.reason == "kunta.test.: no DNSKEY matches the DS in the parent"
    assert judged(sec) == {"dns.dnssec.bogus"}


def test_expired_signatures_are_bogus(tmp_path):
    query, anchor = estate(Algorithm.ECDSAP256SHA256, -1 / 48)  # expired 30 minutes ago
    sec = validate(query, anchor, tmp_path)
    assert sec.status is DnssecStatus.BOGUS and "does not validate" in sec.reason


def test_rsa_sha1_signatures_about_to_expire(tmp_path):
    query, anchor = estate(Algorithm.RSASHA1, 2)
    sec = validate(query, anchor, tmp_path)
    assert sec.status is DnssecStatus.SECURE
    assert sec.earliest_expiry == NOW + dt.timedelta(days=2)
    assert judged(sec) == {"dns.dnssec.weak_algorithm", "dns.dnssec.expiring_signatures"}


def test_a_delegation_without_ds_is_unsigned(tmp_path):
    query, anchor = estate(Algorithm.ECDSAP256SHA256, 30)
    sec = validate(query, anchor, tmp_path, name="auki.test")
    assert sec.status is DnssecStatus.INSECURE
    assert judged(sec) == {"dns.dnssec.unsigned"}


def test_a_name_no_anchor_covers_is_not_judged(tmp_path):
    query, _anchor = estate(Algorithm.ECDSAP256SHA256, 30)
    path = tmp_path / "anchors.txt"
    path.write_text("other. 300 IN DS 1 13 2 " + "00" * 32 + "\n")
    sec = asyncio.run(
        validate_name("kunta.test", [dns.name.root], query, load_trust_anchors(path), NOW)
    )
    assert sec.status is DnssecStatus.NO_ANCHOR and judged(sec) == set()


def test_the_iana_root_anchors_are_the_default():
    anchors = load_trust_anchors(None)
    assert sorted(ds.key_tag for ds in anchors[dns.name.root]) == [20326, 38696]
