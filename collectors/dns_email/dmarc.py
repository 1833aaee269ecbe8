"""DMARC (RFC 7489): find the policy record (the domain's own, else the organisational
domain's, §6.6.3) and parse its tags precisely.

The organisational domain comes from the Public Suffix List of the `publicsuffixlist`
package (for a `.test` name its default `*` rule makes `x.test` the registrable domain).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from publicsuffixlist import PublicSuffixList

from riskiturva.dns_seam import QueryFunction

POLICIES = ("none", "quarantine", "reject")
_TAG = re.compile(r"^([a-z]+)\s*=\s*(.*)$", re.IGNORECASE | re.DOTALL)
_URI = re.compile(r"^[a-z][a-z0-9+.\-]*:[^\s,!]+(!\d+[kmgt]?)?$", re.IGNORECASE)


class DmarcSyntaxError(ValueError):
    """The record breaks RFC 7489's grammar; the message names the tag."""


@dataclass(frozen=True)
class DmarcRecord:
    policy: str
    subdomain_policy: str | None = None
    pct: int = 100
    rua: tuple[str, ...] = ()
    ruf: tuple[str, ...] = ()
    adkim: str = "r"
    aspf: str = "r"


def is_dmarc(text: str) -> bool:
    """Records that do not start with `v=DMARC1` are not DMARC records (§6.6.3)."""
    return re.match(r"^v\s*=\s*DMARC1\s*(;|$)", text) is not None


def _uris(tag: str, value: str) -> tuple[str, ...]:
    uris = tuple(u.strip() for u in value.split(",") if u.strip())
    for uri in uris:
        if not _URI.match(uri):
            raise DmarcSyntaxError(f"{tag}: {uri!r} is not a URI")
    return uris


def _choice(tag: str, value: str, allowed: tuple[str, ...]) -> str:
    lowered = value.strip().lower()
    if lowered not in allowed:
        raise DmarcSyntaxError(f"{tag}={value!r} is not one of {', '.join(allowed)}")
    return lowered


def parse_dmarc(text: str) -> DmarcRecord:
    """Parse a DMARC record; raises `DmarcSyntaxError`. Unknown tags are ignored (§6.3)."""
    if not is_dmarc(text):
        raise DmarcSyntaxError("the record must start with 'v=DMARC1'")
    tags: dict[str, str] = {}
    for part in text.split(";")[1:]:
        if not part.strip():
            continue
        match = _TAG.match(part.strip())
        if match is None:
            raise DmarcSyntaxError(f"unreadable tag {part.strip()!r}")
        name = match.group(1).lower()
        if name in tags:
            raise DmarcSyntaxError(f"tag {name} appears twice")
        tags[name] = match.group(2).strip()
    if "p" not in tags:
        raise DmarcSyntaxError("the required tag p= is missing")
    pct = tags.get("pct", "100")
    if not pct.isdigit() or int(pct) > 100:
        raise DmarcSyntaxError(f"pct={pct!r} is not a whole number 0–100")
    return DmarcRecord(
        policy=_choice("p", tags["p"], POLICIES),
        subdomain_policy=_choice("sp", tags["sp"], POLICIES) if "sp" in tags else None,
        pct=int(pct),
        rua=_uris("rua", tags.get("rua", "")),
        ruf=_uris("ruf", tags.get("ruf", "")),
        adkim=_choice("adkim", tags.get("adkim", "r"), ("r", "s")),
        aspf=_choice("aspf", tags.get("aspf", "r"), ("r", "s")),
    )


@dataclass(frozen=True)
class DmarcFacts:
    domain: str
    organisational_domain: str
    found_at: str | None  # `_dmarc.<domain>` or `_dmarc.<organisational domain>`
    records: tuple[str, ...] = ()
    record: DmarcRecord | None = None
    syntax_error: str | None = None

    @property
    def inherited(self) -> bool:
        return self.found_at is not None and self.found_at != f"_dmarc.{self.domain}"

    @property
    def is_organisational(self) -> bool:
        return self.domain == self.organisational_domain

    @property
    def effective_policy(self) -> str | None:
        """The policy applied to this domain's mail (§6.6.3: `sp` when inherited)."""
        if self.record is None:
            return None
        if self.inherited:
            return self.record.subdomain_policy or self.record.policy
        return self.record.policy


def organisational_domain(domain: str, psl: PublicSuffixList) -> str:
    return psl.privatesuffix(domain) or domain


async def find_dmarc(domain: str, query: QueryFunction, psl: PublicSuffixList) -> DmarcFacts:
    """The DMARC policy for `domain`; raises only `LookupFailed`."""
    organisational = organisational_domain(domain, psl)
    candidates = [domain] if domain == organisational else [domain, organisational]
    for candidate in candidates:
        name = f"_dmarc.{candidate}"
        records = tuple(t for t in (await query(name, "TXT")).texts if is_dmarc(t))
        if not records:
            continue
        if len(records) > 1:
            error = f"{len(records)} DMARC records at {name}: none applies (RFC 7489 §6.6.3)"
            return DmarcFacts(domain, organisational, name, records, syntax_error=error)
        try:
            return DmarcFacts(domain, organisational, name, records, parse_dmarc(records[0]))
        except DmarcSyntaxError as exc:
            return DmarcFacts(domain, organisational, name, records, syntax_error=str(exc))
    return DmarcFacts(domain, organisational, None)
