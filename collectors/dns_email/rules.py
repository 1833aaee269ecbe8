"""Pure rules: one `DnsEmailFacts` in, finding drafts out. No I/O, never raises.

Each rule reads one section of the facts; a section that is None (not applicable, or not
checked) produces nothing. Evidence carries the records seen, shortened when hostile.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from typing import Any

from collectors.dns_email.dnssec import WEAK_ALGORITHMS, DnssecStatus
from collectors.dns_email.facts import DnsEmailFacts
from collectors.dns_email.spf import LOOKUP_LIMIT, VOID_LOOKUP_LIMIT
from riskiturva.collector import FindingDraft, Rule, RuleSet

SIGNATURE_WARNING = dt.timedelta(days=7)
MAX_SHOWN = 1024  # characters of one record kept in evidence


def shown(text: str) -> str:
    """A record as evidence: kept as data, but a 4 KB blob is cut and says so."""
    return text if len(text) <= MAX_SHOWN else f"{text[:MAX_SHOWN]}… ({len(text)} characters)"


def _shown_all(texts: Iterable[str]) -> list[str]:
    return [shown(t) for t in texts]


# The record's final `all` (redirects followed); no `all` at all means neutral (§4.7).
_ALL_CHECKS = {
    "+": "email.spf.pass_all",
    "?": "email.spf.neutral_all",
    None: "email.spf.neutral_all",
    "~": "email.spf.softfail_all",
}


def spf_rules(f: DnsEmailFacts) -> Iterator[FindingDraft]:
    spf = f.spf
    if spf is None:
        return
    repro = f.dig("TXT", spf.domain)
    base: dict[str, Any] = {"domain": spf.domain, "records": _shown_all(spf.records)}
    if not spf.records:
        yield FindingDraft("email.spf.missing", base, reproduce=repro)
        return
    if len(spf.records) > 1:
        yield FindingDraft("email.spf.multiple", base, reproduce=repro)
        return
    if spf.syntax_error:
        yield FindingDraft(
            "email.spf.syntax_error", {**base, "error": shown(spf.syntax_error)}, reproduce=repro
        )
        return
    chain = {**base, "followed": [f"{d}: {shown(r)}" for d, r in spf.seen]}
    if spf.problems:
        yield FindingDraft(
            "email.spf.syntax_error", {**chain, "errors": _shown_all(spf.problems)}, reproduce=repro
        )
    if spf.all_qualifier in _ALL_CHECKS:
        all_term = f"{spf.all_qualifier}all" if spf.all_qualifier else "no all mechanism (neutral)"
        yield FindingDraft(
            _ALL_CHECKS[spf.all_qualifier], {**chain, "all": all_term}, reproduce=repro
        )
    if spf.lookups > LOOKUP_LIMIT:
        yield FindingDraft(
            "email.spf.too_many_lookups",
            {**chain, "lookups": spf.lookups, "limit": LOOKUP_LIMIT},
            reproduce=repro,
        )
    if spf.void_lookups > VOID_LOOKUP_LIMIT:
        yield FindingDraft(
            "email.spf.too_many_void_lookups",
            {**chain, "void_lookups": spf.void_lookups, "limit": VOID_LOOKUP_LIMIT},
            reproduce=repro,
        )
    if spf.loops:
        yield FindingDraft(
            "email.spf.include_loop", {**chain, "loops": list(spf.loops)}, reproduce=repro
        )
    if spf.ptr_in:
        yield FindingDraft(
            "email.spf.ptr_used", {**chain, "ptr_in": list(spf.ptr_in)}, reproduce=repro
        )
    if f.mx is not None and not f.mx.receives_mail and not spf.only_fails:
        yield FindingDraft(
            "email.spf.nonsending_not_restricted",
            {**base, "mx": list(f.mx.records), "expected": "v=spf1 -all"},
            reproduce=f"{repro}; {f.dig('MX', spf.domain)}",
        )


def dmarc_rules(f: DnsEmailFacts) -> Iterator[FindingDraft]:
    dmarc = f.dmarc
    if dmarc is None:
        return
    where = dmarc.found_at or f"_dmarc.{dmarc.domain}"
    repro = f.dig("TXT", where)
    base: dict[str, Any] = {
        "domain": dmarc.domain,
        "looked_at": where,
        "records": _shown_all(dmarc.records),
    }
    if dmarc.found_at is None:
        if not dmarc.is_organisational:
            base["also_looked_at"] = f"_dmarc.{dmarc.organisational_domain}"
            own, inherited = f"_dmarc.{dmarc.domain}", base["also_looked_at"]
            repro = f"{f.dig('TXT', own)}; {f.dig('TXT', inherited)}"
        yield FindingDraft("email.dmarc.missing", base, reproduce=repro)
        return
    if dmarc.syntax_error or dmarc.record is None:
        yield FindingDraft(
            "email.dmarc.syntax_error",
            {**base, "error": shown(dmarc.syntax_error or "")},
            reproduce=repro,
        )
        return
    record = dmarc.record
    if dmarc.inherited:
        yield FindingDraft(
            "email.dmarc.inherited_from_org_domain",
            {**base, "organisational_domain": dmarc.organisational_domain},
            reproduce=repro,
        )
    if dmarc.effective_policy == "none":
        yield FindingDraft("email.dmarc.policy_none", {**base, "policy": "none"}, reproduce=repro)
    if dmarc.inherited:
        return  # the rest belongs to the organisational domain's own record
    if record.pct < 100 and record.policy != "none":
        yield FindingDraft("email.dmarc.pct_partial", {**base, "pct": record.pct}, reproduce=repro)
    if not record.rua:
        yield FindingDraft("email.dmarc.no_rua", base, reproduce=repro)
    if dmarc.is_organisational and record.subdomain_policy == "none":
        yield FindingDraft(
            "email.dmarc.subdomain_policy_none", {**base, "sp": "none"}, reproduce=repro
        )


def dkim_rules(f: DnsEmailFacts) -> Iterator[FindingDraft]:
    dkim = f.dkim
    if dkim is None:
        return
    if not dkim.keys:
        yield FindingDraft(
            "email.dkim.not_found",
            {"domain": dkim.domain, "selectors_tried": list(dkim.selectors_tried)},
            reproduce=f.dig("TXT", f"{dkim.selectors_tried[0]}._domainkey.{dkim.domain}")
            if dkim.selectors_tried
            else None,
        )
        return
    groups = {
        "email.dkim.key_under_1024": [k for k in dkim.keys if k.bits is not None and k.bits < 1024],
        "email.dkim.key_under_2048": [
            k for k in dkim.keys if k.bits is not None and 1024 <= k.bits < 2048
        ],
        "email.dkim.revoked_key": [k for k in dkim.keys if k.revoked],
        "email.dkim.testing": [k for k in dkim.keys if k.testing],
    }
    for check_id, keys in groups.items():
        if keys:
            yield FindingDraft(
                check_id,
                {
                    "domain": dkim.domain,
                    "keys": [
                        {"selector": k.selector, "bits": k.bits, "record": shown(k.record)}
                        for k in keys
                    ],
                },
                reproduce=f.dig("TXT", f"{keys[0].selector}._domainkey.{dkim.domain}"),
            )


def mx_rules(f: DnsEmailFacts) -> Iterator[FindingDraft]:
    mx = f.mx
    if mx is None or "mail_domain" not in f.roles:
        return
    repro = f.dig("MX", mx.domain)
    if not mx.records:
        yield FindingDraft(
            "email.mx.missing",
            {"domain": mx.domain, "looked_at": f"MX {mx.domain}"},
            reproduce=repro,
        )
        return
    hosts = [h for h in mx.hosts if h.name != "."]
    aliased = [h for h in hosts if h.cnames]
    if aliased:
        yield FindingDraft(
            "email.mx.cname",
            {
                "domain": mx.domain,
                "records": list(mx.records),
                "aliases": [c for h in aliased for c in h.cnames],
            },
            reproduce=f"{repro}; {f.dig('CNAME', aliased[0].name)}",
        )
    dead = [h for h in hosts if not h.addresses]
    if dead:
        yield FindingDraft(
            "email.mx.unresolvable",
            {
                "domain": mx.domain,
                "records": list(mx.records),
                "unresolvable": [h.name for h in dead],
            },
            reproduce=f"{repro}; {f.dig('A', dead[0].name)}",
        )


def transport_rules(f: DnsEmailFacts) -> Iterator[FindingDraft]:
    """MTA-STS, TLS-RPT and DANE: only for a domain that receives mail."""
    if f.mx is None or not f.mx.receives_mail:
        return
    domain = f.mx.domain
    if f.mta_sts is not None:
        yield from _mta_sts(f, domain)
    if f.tlsrpt is not None and not f.tlsrpt.records:
        yield FindingDraft(
            "email.tlsrpt.missing",
            {"domain": domain, "looked_at": f"TXT _smtp._tls.{domain}"},
            reproduce=f.dig("TXT", f"_smtp._tls.{domain}"),
        )
    if f.dane is not None:
        without = [d.host for d in f.dane if not d.tlsa]
        if without:
            yield FindingDraft(
                "email.dane.missing",
                {"domain": domain, "mx_without_tlsa": without},
                reproduce=f.dig("TLSA", f"_25._tcp.{without[0]}"),
            )
        for host in (d for d in f.dane if d.matched is False):
            yield FindingDraft(
                "email.dane.mismatch",
                {
                    "domain": domain,
                    "mx": host.host,
                    "address": host.address,
                    "tlsa": list(host.tlsa),
                    "certificate_sha256": host.certificate_sha256,
                },
                reproduce=(
                    f"{f.dig('TLSA', f'_25._tcp.{host.host}')}; openssl s_client -starttls smtp "
                    f"-connect {host.address}:25 -servername {host.host} </dev/null | openssl x509 "
                    "-noout -pubkey | openssl pkey -pubin -outform DER | sha256sum"
                ),
            )


_MODE_CHECKS = {"testing": "email.mta_sts.mode_testing", "none": "email.mta_sts.mode_none"}


def _mta_sts(f: DnsEmailFacts, domain: str) -> Iterator[FindingDraft]:
    sts = f.mta_sts
    assert sts is not None
    repro = f.dig("TXT", f"_mta-sts.{domain}")
    if not sts.records:
        looked_at = {"domain": domain, "looked_at": f"TXT _mta-sts.{domain}"}
        yield FindingDraft("email.mta_sts.missing", looked_at, reproduce=repro)
        return
    fetch = (
        f"curl --resolve mta-sts.{domain}:443:{sts.address} {sts.policy_url}"
        if sts.address
        else repro
    )
    base = {
        "domain": domain,
        "records": _shown_all(sts.records),
        "policy_url": sts.policy_url,
        "address": sts.address,
    }
    if sts.problem is not None:
        yield FindingDraft(
            "email.mta_sts.policy_unavailable",
            {**base, "problem": sts.problem, "response": shown(sts.policy_text or "")},
            reproduce=fetch,
        )
        return
    if sts.policy is None:
        return
    base["policy"] = shown(sts.policy_text or "")
    if sts.policy.mode in _MODE_CHECKS:
        yield FindingDraft(
            _MODE_CHECKS[sts.policy.mode],
            {**base, "mode": sts.policy.mode},
            reproduce=fetch,
        )
    if sts.uncovered_mx and sts.policy.mode != "none":
        yield FindingDraft(
            "email.mta_sts.mx_not_covered",
            {**base, "uncovered_mx": list(sts.uncovered_mx)},
            reproduce=fetch,
        )


def dnssec_rules(f: DnsEmailFacts) -> Iterator[FindingDraft]:
    sec = f.dnssec
    if sec is None or sec.status is DnssecStatus.NO_ANCHOR:
        return
    base = {"zone": sec.zone, "chain": list(sec.chain), "records": _shown_all(sec.records)}
    if sec.status is DnssecStatus.INSECURE:
        yield FindingDraft(
            "dns.dnssec.unsigned", base, reproduce=f.dig("DS", sec.zone, "+dnssec +cd")
        )
    if sec.status is DnssecStatus.BOGUS:
        yield FindingDraft(
            "dns.dnssec.bogus",
            {**base, "reason": sec.reason},
            reproduce=(
                f"{f.dig('DS', sec.zone, '+dnssec +cd')}; "
                f"{f.dig('DNSKEY', sec.zone, '+dnssec +cd')}"
            ),
        )
    weak = sorted(set(sec.algorithms) & WEAK_ALGORITHMS)
    if weak:
        yield FindingDraft(
            "dns.dnssec.weak_algorithm",
            {**base, "algorithms": weak},
            reproduce=f.dig("DNSKEY", sec.zone, "+dnssec +cd"),
        )
    if sec.earliest_expiry is not None and sec.earliest_expiry - f.checked_at < SIGNATURE_WARNING:
        yield FindingDraft(
            "dns.dnssec.expiring_signatures",
            {**base, "expires": sec.earliest_expiry},
            reproduce=f.dig("SOA", sec.zone, "+dnssec +cd +multi"),
        )


def zone_rules(f: DnsEmailFacts) -> Iterator[FindingDraft]:
    zone = f.zone
    if zone is None:
        return
    ns_repro = f.dig("NS", zone.zone)
    base = {
        "zone": zone.zone,
        "nameservers": {ns.name: list(ns.addresses) for ns in zone.nameservers},
    }
    if len(zone.nameservers) == 1:
        yield FindingDraft("dns.ns.single", base, reproduce=ns_repro)
    elif len(zone.nameservers) > 1 and len(zone.networks) == 1:
        yield FindingDraft(
            "dns.ns.same_subnet", {**base, "network": zone.networks[0]}, reproduce=ns_repro
        )
    lame = [entry for ns in zone.nameservers for entry in ns.lame]
    if lame:
        address = lame[0].split(":")[0]
        yield FindingDraft(
            "dns.ns.lame",
            {**base, "lame": lame},
            reproduce=zone.dig_at(address, f"+norecurse SOA {zone.zone}"),
        )
    open_ = [entry for ns in zone.nameservers for entry in ns.axfr_open]
    if open_:
        address = open_[0].split(":")[0]
        yield FindingDraft(
            "dns.axfr.open",
            {**base, "answered": open_},
            reproduce=zone.dig_at(address, f"AXFR {zone.zone}"),
        )


def name_rules(f: DnsEmailFacts) -> Iterator[FindingDraft]:
    if f.caa is not None and f.caa.found_at is None:
        yield FindingDraft(
            "dns.caa.missing",
            {"name": f.caa.name, "looked_at": list(f.caa.searched)},
            reproduce=f.dig("CAA", f.caa.name),
        )
    if f.cname is not None and f.cname.dangling:
        end = f.cname.chain[-1].rsplit(" ", 1)[-1]
        yield FindingDraft(
            "dns.cname.dangling",
            {"name": f.cname.name, "chain": list(f.cname.chain), "target_status": "NXDOMAIN"},
            reproduce=f"{f.dig('CNAME', f.cname.name)}; {f.dig('A', end, '+noall +comments')}",
        )


def _ids(*check_ids: str) -> frozenset[str]:
    return frozenset(check_ids)


# Each rule with the ids it may emit; the collector's check ids are their union.
RULES: RuleSet[DnsEmailFacts] = RuleSet(
    (
        Rule(
            spf_rules,
            _ids(
                "email.spf.missing",
                "email.spf.multiple",
                "email.spf.syntax_error",
                *_ALL_CHECKS.values(),
                "email.spf.too_many_lookups",
                "email.spf.too_many_void_lookups",
                "email.spf.include_loop",
                "email.spf.ptr_used",
                "email.spf.nonsending_not_restricted",
            ),
        ),
        Rule(
            dmarc_rules,
            _ids(
                "email.dmarc.missing",
                "email.dmarc.syntax_error",
                "email.dmarc.policy_none",
                "email.dmarc.pct_partial",
                "email.dmarc.no_rua",
                "email.dmarc.subdomain_policy_none",
                "email.dmarc.inherited_from_org_domain",
            ),
        ),
        Rule(
            dkim_rules,
            _ids(
                "email.dkim.not_found",
                "email.dkim.key_under_1024",
                "email.dkim.key_under_2048",
                "email.dkim.revoked_key",
                "email.dkim.testing",
            ),
        ),
        Rule(mx_rules, _ids("email.mx.missing", "email.mx.cname", "email.mx.unresolvable")),
        Rule(
            transport_rules,
            _ids(
                "email.mta_sts.missing",
                "email.mta_sts.policy_unavailable",
                *_MODE_CHECKS.values(),
                "email.mta_sts.mx_not_covered",
                "email.tlsrpt.missing",
                "email.dane.missing",
                "email.dane.mismatch",
            ),
        ),
        Rule(
            dnssec_rules,
            _ids(
                "dns.dnssec.unsigned",
                "dns.dnssec.bogus",
                "dns.dnssec.expiring_signatures",
                "dns.dnssec.weak_algorithm",
            ),
        ),
        Rule(
            zone_rules, _ids("dns.axfr.open", "dns.ns.single", "dns.ns.same_subnet", "dns.ns.lame")
        ),
        Rule(name_rules, _ids("dns.cname.dangling", "dns.caa.missing")),
    )
)
CHECK_IDS = RULES.check_ids


def judge_facts(facts: DnsEmailFacts) -> list[FindingDraft]:
    return RULES.judge(facts)
