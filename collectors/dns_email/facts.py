"""What the collector saw on one name: one frozen dataclass per protocol, all optional.

A section is None when it does not apply to the name's roles (or the domain receives no
mail), and is named in `not_checked` when it applies but could not be looked at; the rules
judge only what is present.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from collectors.dns_email.dkim import DkimFacts
from collectors.dns_email.dmarc import DmarcFacts
from collectors.dns_email.dnssec import DnssecFacts
from collectors.dns_email.mail import DaneHost, MtaStsFacts, MxFacts, TlsRptFacts
from collectors.dns_email.spf import SpfFacts
from collectors.dns_email.zone import CaaFacts, CnameFacts, ZoneFacts


@dataclass(frozen=True)
class DnsEmailFacts:
    name: str
    roles: tuple[str, ...]  # the asset kinds that asked for it: domain, mail_domain, host, url
    server: str  # the resolver, as `@address [-p port]` for reproduce commands
    checked_at: dt.datetime
    spf: SpfFacts | None = None
    dmarc: DmarcFacts | None = None
    mx: MxFacts | None = None
    dkim: DkimFacts | None = None
    mta_sts: MtaStsFacts | None = None
    tlsrpt: TlsRptFacts | None = None
    dane: tuple[DaneHost, ...] | None = None
    dnssec: DnssecFacts | None = None
    zone: ZoneFacts | None = None
    caa: CaaFacts | None = None
    cname: CnameFacts | None = None
    not_checked: tuple[str, ...] = ()  # `section: why` (lookup failed, address out of scope)

    def dig(self, rdtype: str, name: str, extra: str = "+short") -> str:
        return f"dig {extra} {rdtype} {name} {self.server}"
