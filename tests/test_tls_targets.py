"""Endpoint planning: MX expansion through the resolver, the scope guard, one address per name.

The resolver here is a small stand-in answering from a table (DNS is not what is tested);
the scope guard and configuration are the real ones.
"""

from __future__ import annotations

import tomllib

import dns.rdataclass
import dns.rdatatype
import dns.rrset

from collectors.tls import plan_endpoints
from riskiturva.collector import ErrorKind, ScanContext, ScanTask, Target
from riskiturva.config import AssetKind, Config
from riskiturva.resolver import DnsFailure
from riskiturva.scope import ScopeGuard

CONFIG = """
[[organisations]]
slug = "kunta"
name = { fi = "Kunta", sv = "Kommun", en = "Municipality" }
scope = { domains = ["kunta.test"], networks = ["127.60.9.0/24"] }
assets = [{ kind = "mail_domain", value = "kunta.test" }]
"""


class TableResolver:
    def __init__(self, mx: dict[str, list[str]], addresses: dict[str, list[str] | Exception]):
        self.mx, self.table = mx, addresses

    def lookup(self, name: str, rdtype: str) -> dns.rrset.RRset | None:
        assert rdtype == "MX"
        if name not in self.mx:
            return None
        return dns.rrset.from_text_list(
            name + ".", 300, dns.rdataclass.IN, dns.rdatatype.MX, self.mx[name]
        )

    def addresses(self, name: str) -> list[str]:
        found = self.table[name]
        if isinstance(found, Exception):
            raise found
        return found


def context(resolver: TableResolver) -> ScanContext:
    config = Config.model_validate(tomllib.loads(CONFIG))
    return ScanContext(config.settings, resolver, ScopeGuard(config.organisations))  # type: ignore[arg-type]


def test_mail_domain_expands_to_in_scope_mx_hosts_and_records_the_rest():
    resolver = TableResolver(
        {"kunta.test": ["10 mx1.kunta.test.", "20 mx.hosting.test.", "30 mx2.kunta.test."]},
        {
            "mx1.kunta.test": ["127.60.9.26", "127.60.9.25"],
            "mx.hosting.test": ["192.0.2.25"],
            "mx2.kunta.test": DnsFailure("mx2.kunta.test", "timeout"),
        },
    )
    task = ScanTask(1, "kunta", "tls", (Target("kunta.test", AssetKind.MAIL_DOMAIN, "kunta.test"),))
    endpoints, errors = plan_endpoints(task, context(resolver))
    # One endpoint per MX name, at its lowest address; the other is kept.
    assert [(e.subject, e.address, e.service, e.other_addresses) for e in endpoints] == [
        ("mx1.kunta.test:25", "127.60.9.25", "smtp", ("127.60.9.26",))
    ]
    assert {(o.subject, o.error.kind) for o in errors} == {
        ("mx.hosting.test:25", ErrorKind.OUT_OF_SCOPE),
        ("mx2.kunta.test:25", ErrorKind.DNS_FAILURE),
    }


def test_names_with_several_addresses_are_scanned_once_at_the_lowest():
    targets = tuple(
        Target("www.kunta.test", AssetKind.HOST, "www.kunta.test", ip)
        for ip in ("127.60.9.11", "127.60.9.9", "127.60.9.10")
    )
    endpoints, errors = plan_endpoints(
        ScanTask(1, "kunta", "tls", targets), context(TableResolver({}, {}))
    )
    assert errors == []
    assert [(e.subject, e.address, e.other_addresses) for e in endpoints] == [
        ("www.kunta.test:443", "127.60.9.9", ("127.60.9.10", "127.60.9.11"))
    ]


def test_https_url_with_a_port_is_scanned_on_that_port():
    url = "https://asiointi.kunta.test:8443/palvelu"
    target = Target(url, AssetKind.URL, "asiointi.kunta.test", "127.60.9.12", url=url)
    endpoints, _ = plan_endpoints(
        ScanTask(1, "kunta", "tls", (target,)), context(TableResolver({}, {}))
    )
    assert [e.subject for e in endpoints] == ["asiointi.kunta.test:8443"]


def test_mail_domain_without_mx_plans_nothing():
    task = ScanTask(1, "kunta", "tls", (Target("kunta.test", AssetKind.MAIL_DOMAIN, "kunta.test"),))
    assert plan_endpoints(task, context(TableResolver({}, {}))) == ([], [])


def test_null_mx_is_skipped():
    resolver = TableResolver({"kunta.test": ["0 ."]}, {})
    task = ScanTask(1, "kunta", "tls", (Target("kunta.test", AssetKind.MAIL_DOMAIN, "kunta.test"),))
    assert plan_endpoints(task, context(resolver)) == ([], [])
