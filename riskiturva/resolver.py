"""The one DNS seam: every name in the product is resolved through the configured resolver.

Never the system resolver — it may not be the one the user configured, and in the lab it
is not on loopback. Failures are `DnsFailure` with a kind, never "record missing".
"""

from __future__ import annotations

import ipaddress

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver
import dns.rrset

from riskiturva.config import ResolverSettings


class DnsFailure(Exception):
    """A lookup could not be answered: timeout, servfail, refused or no nameserver."""

    def __init__(self, name: str, kind: str, detail: str = ""):
        self.name, self.kind = name, kind
        super().__init__(f"{name}: {kind}" + (f" ({detail})" if detail else ""))


def _configure(resolver: dns.resolver.BaseResolver, settings: ResolverSettings) -> None:
    resolver.nameservers = list(settings.nameservers)
    resolver.port = settings.port
    resolver.timeout = settings.timeout
    resolver.lifetime = settings.timeout * (settings.retries + 1)
    resolver.retry_servfail = False
    resolver.cache = None


class Resolver:
    """Synchronous and asynchronous resolvers built from the configuration."""

    def __init__(self, settings: ResolverSettings):
        self.settings = settings
        self._sync = dns.resolver.Resolver(configure=False)
        _configure(self._sync, settings)

    def async_resolver(self) -> dns.asyncresolver.Resolver:
        """A fresh asyncio resolver with the same settings (one per event loop)."""
        resolver = dns.asyncresolver.Resolver(configure=False)
        _configure(resolver, self.settings)
        return resolver

    def lookup(self, name: str, rdtype: str) -> dns.rrset.RRset | None:
        """The answer RRset, or None when the name or the type does not exist."""
        try:
            return self._sync.resolve(name, rdtype, raise_on_no_answer=False).rrset
        except dns.resolver.NXDOMAIN:
            return None
        except (dns.resolver.NoNameservers, dns.resolver.LifetimeTimeout) as exc:
            kind = "timeout" if isinstance(exc, dns.resolver.LifetimeTimeout) else "servfail"
            raise DnsFailure(name, kind, str(exc)) from exc
        except dns.exception.DNSException as exc:
            raise DnsFailure(name, "error", str(exc)) from exc

    def addresses(self, name: str) -> list[str]:
        """IPv4 and IPv6 addresses of `name` (CNAMEs followed); empty when none exist."""
        try:
            ipaddress.ip_address(name)
            return [name]
        except ValueError:
            pass
        found: list[str] = []
        for rdtype in ("A", "AAAA"):
            rrset = self.lookup(name, rdtype)
            if rrset is not None:
                found.extend(r.to_text() for r in rrset)
        return found
