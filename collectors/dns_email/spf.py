"""SPF (RFC 7208): parse a record precisely, then walk it through include and redirect.

`parse_spf` raises `SpfSyntaxError` naming the offending term. `expand_spf` looks the
domain's record up and follows every include and redirect (in parallel), counting the
DNS-querying terms (§4.6.4: at most 10) and void lookups (at most 2), and stopping at
loops, which it reports instead of following forever. It never raises for the record's
faults; only a failed lookup (`LookupFailed`) leaves the SPF result unknown.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from dataclasses import dataclass, field

from riskiturva.dns_seam import QueryFunction

MECHANISMS = frozenset({"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"})
# The terms that cost a DNS query and count against the limit of 10 (§4.6.4).
LOOKUP_TERMS = frozenset({"include", "a", "mx", "ptr", "exists", "redirect"})
LOOKUP_LIMIT = 10
VOID_LOOKUP_LIMIT = 2
_MODIFIER = re.compile(r"^([a-z][a-z0-9_.\-]*)=(.*)$", re.IGNORECASE)
_MECHANISM = re.compile(r"^([+\-~?]?)([a-z0-9_.\-]+)(.*)$", re.IGNORECASE)
_MACRO = re.compile(r"\{([slodiphcrtv])(\d*)(r?)([.\-+,/_=]*)\}", re.IGNORECASE)
_CIDR = re.compile(r"^(?:/(\d{1,2}))?(?://(\d{1,3}))?$")
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_\-]{0,61}[a-z0-9_])?$", re.IGNORECASE)
QUALIFIERS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}


class SpfSyntaxError(ValueError):
    """The record breaks RFC 7208's grammar; the message names the offending term."""


@dataclass(frozen=True)
class Term:
    name: str  # mechanism or modifier name, lower-case
    value: str | None = None  # domain-spec, network or modifier value
    qualifier: str = "+"  # mechanisms only; modifiers keep "+"
    is_modifier: bool = False


@dataclass(frozen=True)
class SpfRecord:
    terms: tuple[Term, ...]

    def mechanisms(self, name: str) -> tuple[Term, ...]:
        return tuple(t for t in self.terms if t.name == name and not t.is_modifier)

    @property
    def all_qualifier(self) -> str | None:
        found = self.mechanisms("all")
        return found[0].qualifier if found else None

    @property
    def redirect(self) -> str | None:
        found = [t.value for t in self.terms if t.is_modifier and t.name == "redirect"]
        return found[0] if found else None


def is_spf(text: str) -> bool:
    """A TXT record is an SPF record when it starts with `v=spf1` then a space or ends (§4.5)."""
    lowered = text.lower()
    return lowered == "v=spf1" or lowered.startswith("v=spf1 ")


def validate_macro_string(text: str, *, explanation: bool = False) -> bool:
    """Check RFC 7208 §7.1 macro syntax; True when the string contains macros."""
    has_macro = False
    index = 0
    while index < len(text):
        char = text[index]
        if char == "%":
            following = text[index + 1 : index + 2]
            if following in ("%", "_", "-"):
                index += 2
                continue
            match = _MACRO.match(text, index + 1)
            if following != "{" or match is None:
                raise SpfSyntaxError(f"bad macro at {text[index : index + 12]!r} in {text!r}")
            if match.group(1).lower() in "crt" and not explanation:
                raise SpfSyntaxError(f"macro %{{{match.group(1)}}} is only allowed in exp")
            has_macro = True
            index = match.end()
            continue
        if not 0x21 <= ord(char) <= 0x7E:
            raise SpfSyntaxError(f"character {char!r} is not allowed in {text!r}")
        index += 1
    return has_macro


def _domain_spec(term: str, value: str) -> str:
    if not value:
        raise SpfSyntaxError(f"{term}: a domain is required")
    if validate_macro_string(value):
        return value
    labels = value.rstrip(".").split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise SpfSyntaxError(f"{term}: {value!r} is not a domain name")
    if labels[-1].isdigit():
        raise SpfSyntaxError(f"{term}: {value!r} ends in a numeric label")
    return value


def _dual_cidr(term: str, text: str) -> None:
    match = _CIDR.match(text)
    if match is None:
        raise SpfSyntaxError(f"{term}: bad prefix length {text!r}")
    v4, v6 = match.groups()
    if (v4 and int(v4) > 32) or (v6 and int(v6) > 128):
        raise SpfSyntaxError(f"{term}: prefix length out of range")


def _mechanism(token: str) -> Term:
    match = _MECHANISM.match(token)
    if match is None:
        raise SpfSyntaxError(f"unreadable term {token!r}")
    qualifier, name, rest = match.group(1) or "+", match.group(2).lower(), match.group(3)
    if name not in MECHANISMS:
        raise SpfSyntaxError(f"unknown mechanism {name!r} in {token!r}")
    if name == "all":
        if rest:
            raise SpfSyntaxError(f"'all' takes no argument: {token!r}")
        return Term(name, None, qualifier)
    if name in ("ip4", "ip6"):
        if not rest.startswith(":"):
            raise SpfSyntaxError(f"{name} needs an address: {token!r}")
        network = rest[1:]
        try:
            parsed = ipaddress.ip_network(network, strict=False)
        except ValueError as exc:
            raise SpfSyntaxError(f"{token!r}: {exc}") from exc
        if parsed.version != int(name[-1]):
            raise SpfSyntaxError(f"{token!r}: not an IPv{name[-1]} address")
        return Term(name, network, qualifier)
    domain, cidr = rest, ""
    if name in ("a", "mx"):
        slash = rest.find("/")
        if slash >= 0:
            domain, cidr = rest[:slash], rest[slash:]
            _dual_cidr(token, cidr)
    if domain.startswith(":"):
        return Term(name, _domain_spec(token, domain[1:]), qualifier)
    if domain:
        raise SpfSyntaxError(f"unreadable term {token!r}")
    if name in ("include", "exists"):
        raise SpfSyntaxError(f"{name} needs a domain: {token!r}")
    return Term(name, None, qualifier)


def parse_spf(text: str) -> SpfRecord:
    """Parse one SPF record; raises `SpfSyntaxError` naming the first fault."""
    tokens = text.split(" ")
    if tokens[0].lower() != "v=spf1":
        raise SpfSyntaxError("the record must start with 'v=spf1'")
    terms: list[Term] = []
    for token in tokens[1:]:
        if not token:
            continue  # RFC 7208 allows 1*SP between terms
        modifier = _MODIFIER.match(token)
        if modifier is None:
            terms.append(_mechanism(token))
            continue
        name, value = modifier.group(1).lower(), modifier.group(2)
        if name in ("redirect", "exp"):
            if any(t.is_modifier and t.name == name for t in terms):
                raise SpfSyntaxError(f"{name}= appears more than once (§6)")
            _domain_spec(f"{name}=", value)
        else:
            validate_macro_string(value)
        terms.append(Term(name, value, is_modifier=True))
    return SpfRecord(tuple(terms))


@dataclass(frozen=True)
class SpfFacts:
    """The SPF picture of one domain, includes and redirects followed."""

    domain: str
    records: tuple[str, ...]  # every `v=spf1` TXT record at the domain
    syntax_error: str | None = None  # the domain's own record
    all_qualifier: str | None = None  # of the record in force, redirects followed
    lookups: int = 0
    void_lookups: int = 0
    loops: tuple[str, ...] = ()  # "a.test → b.test → a.test"
    problems: tuple[str, ...] = ()  # faults of included or redirected records
    ptr_in: tuple[str, ...] = ()  # domains whose record uses ptr
    seen: tuple[tuple[str, str], ...] = ()  # (domain, record) of every record followed
    unexpanded: tuple[str, ...] = ()  # targets with macros: resolved only at delivery time

    @property
    def only_fails(self) -> bool:
        """True for a record that authorises no sender at all (`v=spf1 -all`)."""
        if len(self.records) != 1 or self.syntax_error:
            return False
        terms = parse_spf(self.records[0]).terms
        return [(t.name, t.qualifier) for t in terms if not t.is_modifier] == [("all", "-")]


@dataclass
class _Walk:
    query: QueryFunction
    lookups: int = 0
    void_lookups: int = 0
    loops: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    ptr_in: list[str] = field(default_factory=list)
    seen: list[tuple[str, str]] = field(default_factory=list)
    parsed: dict[str, SpfRecord] = field(default_factory=dict)
    unexpanded: list[str] = field(default_factory=list)

    async def record(self, domain: str, text: str, path: tuple[str, ...]) -> None:
        self.seen.append((domain, text))
        try:
            record = parse_spf(text)
        except SpfSyntaxError as exc:  # an included record (the domain's own is parsed first)
            self.problems.append(f"{domain}: {exc}")
            return
        self.parsed[domain] = record
        steps = []
        for term in record.terms:
            if term.is_modifier and term.name != "redirect":
                continue
            if term.name == "redirect" and record.all_qualifier is not None:
                continue  # ignored when the record has `all` (§6.1)
            if term.name in LOOKUP_TERMS:
                self.lookups += 1
            if term.name == "ptr":
                self.ptr_in.append(domain)
            target = term.value or domain
            if "%" in target and term.name in LOOKUP_TERMS:
                self.unexpanded.append(f"{term.name}:{target}")
                continue
            if term.name in ("include", "redirect"):
                steps.append(self.follow(target, path, term.name))
            elif term.name in ("a", "exists"):
                steps.append(self.void_check(target, ("A", "AAAA") if term.name == "a" else ("A",)))
            elif term.name == "mx":
                steps.append(self.void_check(target, ("MX",)))
        await asyncio.gather(*steps)

    async def void_check(self, name: str, rdtypes: tuple[str, ...]) -> None:
        answers = await asyncio.gather(*(self.query(name, rdtype) for rdtype in rdtypes))
        if all(a.void for a in answers):
            self.void_lookups += 1

    async def follow(self, target: str, path: tuple[str, ...], via: str) -> None:
        key = target.rstrip(".").lower()
        if key in path:
            self.loops.append(" → ".join((*path, key)))
            return
        answer = await self.query(key, "TXT")
        if answer.void:
            self.void_lookups += 1
        found = [t for t in answer.texts if is_spf(t)]
        if len(found) != 1:
            what = "no SPF record" if not found else f"{len(found)} SPF records"
            self.problems.append(f"{via}:{key} has {what}")
            return
        await self.record(key, found[0], (*path, key))

    def effective_all(self, domain: str, visited: frozenset[str] = frozenset()) -> str | None:
        record = self.parsed.get(domain)
        if record is None or domain in visited:
            return None
        if record.all_qualifier is not None or record.redirect is None:
            return record.all_qualifier
        return self.effective_all(record.redirect.rstrip(".").lower(), visited | {domain})


async def expand_spf(domain: str, query: QueryFunction) -> SpfFacts:
    """Look up `domain`'s SPF and follow it; raises only `LookupFailed`."""
    answer = await query(domain, "TXT")
    records = tuple(t for t in answer.texts if is_spf(t))
    if len(records) != 1:
        return SpfFacts(domain, records)
    try:
        parse_spf(records[0])
    except SpfSyntaxError as exc:
        return SpfFacts(domain, records, syntax_error=str(exc), seen=((domain, records[0]),))
    walk = _Walk(query)
    await walk.record(domain, records[0], (domain,))
    # Includes finish in whatever order their answers arrive: sort, so that the same
    # records give the same facts (the domain's own record stays first).
    return SpfFacts(
        domain=domain,
        records=records,
        all_qualifier=walk.effective_all(domain),
        lookups=walk.lookups,
        void_lookups=walk.void_lookups,
        loops=tuple(sorted(walk.loops)),
        problems=tuple(sorted(walk.problems)),
        ptr_in=tuple(sorted(set(walk.ptr_in))),
        seen=(walk.seen[0], *sorted(walk.seen[1:])),
        unexpanded=tuple(sorted(walk.unexpanded)),
    )
