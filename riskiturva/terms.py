"""The words every face uses for the same things: severities, areas (categories),
collectors, error kinds and asset kinds — one msgid each in the `terms` catalog, so that
the dashboard, the monthly report and the alerts call a high-severity problem by the same
word ("Vakava", "Allvarlig") and never show the internal key (`dns_email`, `web_host`).

Words that look alike but mean something else keep their own catalogs: an asset's
criticality "high" is "Korkea" on the dashboard, a finding's severity "high" is "Vakava".
"""

from __future__ import annotations

from collections.abc import Mapping

from riskiturva.i18n import translator

DOMAIN = "terms"

SEVERITY = {
    "critical": "Critical",
    "high": "High",
    "medium": "Medium",
    "low": "Low",
    "info": "Information",
}
CATEGORY = {
    "tls": "Encrypted connections (TLS)",
    "email": "E-mail",
    "dns": "Name service (DNS)",
    "services": "Exposed services",
    "web": "Websites",
    "software": "Software up to date",
}
COLLECTOR = {
    "tls": "TLS",
    "web": "Websites",
    "dns_email": "DNS and e-mail",
    "services": "Exposed services",
    "discovery": "Discovery",
}
ERROR_KIND = {
    "timeout": "no answer in time",
    "refused": "connection refused",
    "reset": "connection reset",
    "unreachable": "unreachable",
    "dns_failure": "name lookup failed",
    "out_of_scope": "outside the authorised scope",
    "protocol": "unexpected answer",
    "internal": "scanner error",
    "cancelled": "scan cancelled",
}
ASSET_KIND = {
    "domain": "Domain",
    "mail_domain": "Mail domain",
    "host": "Host name",
    "ip": "IP address",
    "network": "Network",
    "url": "Web address",
}
TABLES: tuple[Mapping[str, str], ...] = (SEVERITY, CATEGORY, COLLECTOR, ERROR_KIND, ASSET_KIND)


def term(table: Mapping[str, str], key: str, language: str) -> str:
    """The word for `key` in `language` (a key the table does not know, as it is)."""
    return translator(language, DOMAIN)(table[key]) if key in table else key
