"""The words every face uses for the same things: severities, areas (categories),
collectors, error kinds, asset kinds and evidence keys — one msgid each in the `terms`
catalog, so that the dashboard, the monthly report and the alerts call a high-severity
problem by the same word ("Vakava", "Allvarlig") and never show the internal key
(`dns_email`, `web_host`, `days_left`).

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
# The top-level keys of a finding's evidence, as the finding page labels them.
EVIDENCE = {
    "address": "Address",
    "algorithms": "Algorithms",
    "aliases": "Aliases (CNAME)",
    "also_looked_at": "Also looked up",
    "all": "Catch-all mechanism",
    "answered": "Answered",
    "ccs_injection": "CCS injection",
    "certificate_sha256": "Certificate SHA-256",
    "chain": "Chain of trust",
    "chain_length": "Certificate chain length",
    "compression": "TLS compression",
    "confidence": "Confidence",
    "contact": "Contact",
    "cookies": "Cookies",
    "cpe": "Product identifier (CPE)",
    "cycle": "Release series",
    "data_as_of": "Data as of",
    "days_left": "Days left",
    "deviations": "Deviations",
    "distribution": "Distribution",
    "dns_names": "Names in the certificate",
    "domain": "Domain",
    "endpoint": "Endpoint",
    "epss_threshold": "EPSS threshold",
    "error": "Error",
    "errors": "Errors",
    "expected": "Expected",
    "expected_name": "Expected name",
    "expires": "Expires",
    "extended_support_until": "Extended support until",
    "extrainfo": "Additional information",
    "fallback_scsv": "Downgrade protection (TLS_FALLBACK_SCSV)",
    "followed": "Followed",
    "grade": "Grade",
    "grade_ignoring_trust": "Grade ignoring trust",
    "headers": "Headers",
    "heartbleed": "Heartbleed",
    "host": "Host name",
    "identified_by": "Identified by",
    "inferred_from_cycle": "Inferred from release series",
    "ip_addresses": "IP addresses in the certificate",
    "issuer": "Issuer",
    "key_bits": "Key length (bits)",
    "key_type": "Key type",
    "keys": "Keys",
    "lame": "Name servers not answering for the zone",
    "latest_in_cycle": "Latest in the series",
    "lifecycle": "Lifecycle",
    "limit": "Limit",
    "location": "Redirect location",
    "looked_at": "Looked at",
    "lookups": "Lookups",
    "loops": "Loops",
    "matched_by": "Matched by",
    "max_age": "Max age (seconds)",
    "minimum": "Minimum",
    "mode": "Mode",
    "mx": "Mail servers (MX)",
    "mx_without_tlsa": "Mail servers without TLSA",
    "name": "Name",
    "nameservers": "Name servers",
    "network": "Network",
    "not_after": "Valid until",
    "not_before": "Valid from",
    "ocsp_stapled": "OCSP stapled",
    "organisational_domain": "Organisational domain",
    "output": "Output",
    "package": "Package",
    "pct": "Percentage applied",
    "policy": "Policy",
    "policy_url": "Policy address",
    "port": "Port",
    "previously_open": "Previously open",
    "problem": "Problem",
    "product": "Product",
    "profile": "Profile",
    "proof": "Proof",
    "protocol": "Protocol",
    "protocols_offered": "Protocols offered",
    "ptr_in": "PTR mechanism in",
    "reason": "Reason",
    "records": "Records",
    "response": "Response",
    "robot": "ROBOT",
    "secure_renegotiation": "Secure renegotiation",
    "selectors_tried": "Selectors tried",
    "service": "Service",
    "sha256_fingerprint": "SHA-256 fingerprint",
    "signature_hash": "Signature hash",
    "software": "Software",
    "sp": "Subdomain policy",
    "starttls_offered": "STARTTLS offered",
    "status": "Status",
    "strict_transport_security": "Strict-Transport-Security header",
    "subject": "Certificate subject",
    "suites": "Cipher suites",
    "support_ended": "Support ended",
    "supported_newer": "Supported newer series",
    "target_status": "Target status",
    "tlsa": "TLSA records",
    "trust_error": "Trust error",
    "tunnel": "Tunnel",
    "uncovered_mx": "Mail servers not covered",
    "unresolvable": "Unresolvable",
    "url": "Web address",
    "verify": "How to verify",
    "version": "Version",
    "void_lookups": "Lookups with no result",
    "vulnerabilities": "Vulnerabilities",
    "x_content_type_options": "X-Content-Type-Options header",
    "zone": "Zone",
}
TABLES: tuple[Mapping[str, str], ...] = (
    SEVERITY,
    CATEGORY,
    COLLECTOR,
    ERROR_KIND,
    ASSET_KIND,
    EVIDENCE,
)


def term(table: Mapping[str, str], key: str, language: str) -> str:
    """The word for `key` in `language` (a key the table does not know, as it is)."""
    return translator(language, DOMAIN)(table[key]) if key in table else key
