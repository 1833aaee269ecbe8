"""The one asynchronous DNS seam (the DNS and e-mail collector, discovery): queries to the
configured resolver, errors as data.

Every lookup goes to the resolver address, port, timeout and retries of the configuration
(never the system resolver). Queries for SOA, DNSKEY and DS carry the DO bit, so signatures
come back for our own DNSSEC validation, and every query carries the CD bit, so a
validating resolver still hands us the data of a zone it considers bogus: Riskiturva
validates from its own trust anchors and never trusts an AD bit. SERVFAIL, REFUSED and
timeouts raise `LookupFailed` — a failure of the target, never "record missing". Answers
are kept per scan in a `DnsClient` (no module-level cache).
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from riskiturva.collector import ErrorKind, TargetError, error_kind
from riskiturva.config import ResolverSettings
from riskiturva.politeness import Politeness

_MAX_IN_FLIGHT = 64
EDNS_PAYLOAD = 1232
# The types whose signatures the DNSSEC validation reads; other answers come unsigned,
# which halves the parsing work (a signature per RRset) for everything else.
SIGNED_TYPES = frozenset({"SOA", "DNSKEY", "DS"})


class Outcome(enum.StrEnum):
    FOUND = "found"
    NXDOMAIN = "nxdomain"
    NODATA = "nodata"


class LookupFailed(Exception):
    """The resolver could not answer: the lookup says nothing about the record."""

    def __init__(self, name: str, rdtype: str, kind: ErrorKind, detail: str):
        self.name, self.rdtype, self.kind, self.detail = name, rdtype, kind, detail
        super().__init__(f"{rdtype} {name}: {kind} ({detail})")

    def as_error(self) -> TargetError:
        return TargetError(self.kind, str(self))


@dataclass(frozen=True)
class Answer:
    """One lookup's result: the records (if any), their signatures and the CNAMEs followed."""

    name: str
    rdtype: str
    outcome: Outcome
    rrset: dns.rrset.RRset | None = None
    rrsigs: dns.rrset.RRset | None = None
    cnames: tuple[str, ...] = ()  # owner → target steps followed, as `owner CNAME target`

    @property
    def records(self) -> tuple[str, ...]:
        """The records as presentation text (`dig +short`), sorted: resolvers rotate them,
        and evidence must not change when the records did not."""
        return tuple(sorted(r.to_text() for r in self.rrset)) if self.rrset is not None else ()

    @property
    def texts(self) -> tuple[str, ...]:
        """TXT records as strings (character-strings joined, RFC 7208 §3.3), sorted."""
        if self.rrset is None or self.rrset.rdtype != dns.rdatatype.TXT:
            return ()
        return tuple(sorted(txt_string(r.strings) for r in self.rrset))

    @property
    def void(self) -> bool:
        return self.outcome is not Outcome.FOUND


def txt_string(strings: tuple[bytes, ...]) -> str:
    """Join a TXT record's strings; bytes that are not UTF-8 stay visible as `\\xNN`."""
    return b"".join(strings).decode("utf-8", errors="backslashreplace")


def fetch_key(name: str, rdtype: str) -> tuple[str, str]:
    return dns.name.from_text(name).to_text(omit_final_dot=True).lower(), rdtype.upper()


QueryFunction = Callable[[str, str], Awaitable[Answer]]


class DnsClient:
    """Queries to the configured resolver, each one asked once per scan."""

    def __init__(
        self,
        settings: ResolverSettings,
        nameserver_port: int = 53,
        in_flight: int = _MAX_IN_FLIGHT,
        limits: Politeness | None = None,
    ):
        self.settings = settings
        # Queries straight to a target's name servers (not the resolver) keep to the
        # process's rate of new connections and probes.
        self.limits = limits
        self.nameserver_port = nameserver_port  # of authoritative servers asked directly
        self._answers: dict[tuple[str, str], asyncio.Future[Answer]] = {}
        self._in_flight = asyncio.Semaphore(in_flight)
        self.sent = 0  # DNS messages sent (retries and zone transfers included)

    @property
    def server(self) -> str:
        """`@address` (and `-p port`) for the reproduce commands."""
        port = "" if self.settings.port == 53 else f" -p {self.settings.port}"
        return f"@{self.settings.nameservers[0]}{port}"

    async def query(self, name: str, rdtype: str) -> Answer:
        """The answer for `name`/`rdtype`, asked once; raises `LookupFailed`."""
        key = fetch_key(name, rdtype)
        future = self._answers.get(key)
        if future is None:
            future = asyncio.ensure_future(self._ask(*key))
            self._answers[key] = future
        return await asyncio.shield(future)

    async def _ask(self, name: str, rdtype: str) -> Answer:
        request = dns.message.make_query(
            name, rdtype, want_dnssec=rdtype in SIGNED_TYPES, use_edns=0, payload=EDNS_PAYLOAD
        )
        request.flags |= dns.flags.CD
        last: LookupFailed | None = None
        for _attempt in range(self.settings.retries + 1):
            for server in self.settings.nameservers:
                try:
                    response = await self._send(request, server, self.settings.port)
                except LookupFailed as exc:
                    last = exc
                    continue
                rcode = response.rcode()
                if rcode in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
                    return answer_from(response, name, rdtype)
                kind = ErrorKind.REFUSED if rcode == dns.rcode.REFUSED else ErrorKind.DNS_FAILURE
                last = LookupFailed(
                    name, rdtype, kind, f"{server} answered {dns.rcode.to_text(rcode)}"
                )
        assert last is not None
        raise last

    async def _send(
        self, request: dns.message.Message, server: str, port: int
    ) -> dns.message.Message:
        async with self._in_flight:
            self.sent += 1
            try:
                response, _tcp = await dns.asyncquery.udp_with_fallback(
                    request, server, timeout=self.settings.timeout, port=port
                )
            except (OSError, dns.exception.DNSException) as exc:
                kind = error_kind(exc, default=ErrorKind.PROTOCOL)
                detail = (
                    f"no answer from {server} within {self.settings.timeout} s"
                    if kind is ErrorKind.TIMEOUT
                    else f"{server}: {exc}"
                )
                raise LookupFailed(
                    request.question[0].name.to_text(),
                    dns.rdatatype.to_text(request.question[0].rdtype),
                    kind,
                    detail,
                ) from exc
            return response

    async def message(self, name: str, rdtype: str) -> dns.message.Message:
        """The whole response (authority section included) of the configured resolver, asked
        with the DO and CD bits; NOERROR or NXDOMAIN, else raises `LookupFailed`."""
        request = dns.message.make_query(
            name, rdtype, want_dnssec=True, use_edns=0, payload=EDNS_PAYLOAD
        )
        request.flags |= dns.flags.CD
        last: LookupFailed | None = None
        for _attempt in range(self.settings.retries + 1):
            for server in self.settings.nameservers:
                try:
                    response = await self._send(request, server, self.settings.port)
                except LookupFailed as exc:
                    last = exc
                    continue
                if response.rcode() in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
                    return response
                last = LookupFailed(
                    name, rdtype, ErrorKind.DNS_FAILURE,
                    f"{server} answered {dns.rcode.to_text(response.rcode())}",
                )  # fmt: skip
        assert last is not None
        raise last

    async def _polite(self) -> None:
        if self.limits is not None:
            await asyncio.sleep(self.limits.reserve())

    async def zone_transfer(self, server: str, zone: str, limit: int) -> list[dns.rrset.RRset]:
        """The records of a whole AXFR of `zone` from `server` (at most `limit` RRsets);
        raises `LookupFailed` when refused or broken off."""

        def transfer() -> list[dns.rrset.RRset]:
            records: list[dns.rrset.RRset] = []
            for message in dns.query.xfr(
                server,
                zone,
                port=self.nameserver_port,
                timeout=self.settings.timeout,
                lifetime=self.settings.timeout * 10,
                relativize=False,
            ):
                self.sent += 1
                records.extend(message.answer)
                if len(records) >= limit:
                    break
            return records[:limit]

        await self._polite()
        async with self._in_flight:
            try:
                return await asyncio.to_thread(transfer)
            except dns.exception.Timeout as exc:
                raise LookupFailed(zone, "AXFR", ErrorKind.TIMEOUT, f"{server}: no answer") from exc
            except (OSError, EOFError, dns.exception.DNSException) as exc:
                kind = ErrorKind.REFUSED if "REFUSED" in str(exc) else ErrorKind.PROTOCOL
                raise LookupFailed(zone, "AXFR", kind, f"{server}: {exc}") from exc

    async def ask_server(self, server: str, name: str, rdtype: str) -> dns.message.Message:
        """One non-recursive query straight to an authoritative `server`; raises `LookupFailed`."""
        request = dns.message.make_query(name, rdtype, use_edns=0, payload=EDNS_PAYLOAD)
        request.flags &= ~dns.flags.RD
        last: LookupFailed | None = None
        for _attempt in range(self.settings.retries + 1):
            await self._polite()
            try:
                return await self._send(request, server, self.nameserver_port)
            except LookupFailed as exc:
                last = exc
        assert last is not None
        raise last

    async def zone_transfer_start(self, server: str, zone: str) -> dns.message.Message:
        """The first message of an AXFR of `zone` from `server` over TCP (nothing more is read)."""
        request = dns.message.make_query(zone, dns.rdatatype.AXFR)
        await self._polite()
        async with self._in_flight:
            self.sent += 1
            try:
                return await dns.asyncquery.tcp(
                    request, server, timeout=self.settings.timeout, port=self.nameserver_port
                )
            except (OSError, EOFError, dns.exception.DNSException) as exc:
                kind = error_kind(exc, default=ErrorKind.PROTOCOL)
                detail = str(exc) or "no answer"
                raise LookupFailed(zone, "AXFR", kind, f"{server}: {detail}") from exc


def answer_from(response: dns.message.Message, name: str, rdtype: str) -> Answer:
    """Turn a NOERROR/NXDOMAIN response into an `Answer`, following CNAMEs inside it."""
    qname = dns.name.from_text(name)
    qtype = dns.rdatatype.from_text(rdtype)
    cnames: list[str] = []
    owner = qname
    rrset = None
    for _step in range(16):
        rrset = response.get_rrset(response.answer, owner, dns.rdataclass.IN, qtype)
        if rrset is not None or qtype == dns.rdatatype.CNAME:
            break
        alias = response.get_rrset(response.answer, owner, dns.rdataclass.IN, dns.rdatatype.CNAME)
        if alias is None:
            break
        target = alias[0].target
        cnames.append(f"{owner.to_text(omit_final_dot=True)} CNAME {target.to_text()}")
        owner = target
    rrsigs = (
        response.get_rrset(response.answer, owner, dns.rdataclass.IN, dns.rdatatype.RRSIG, qtype)
        if rrset is not None
        else None
    )
    if rrset is not None:
        outcome = Outcome.FOUND
    elif response.rcode() == dns.rcode.NXDOMAIN:
        outcome = Outcome.NXDOMAIN
    else:
        outcome = Outcome.NODATA
    return Answer(
        name=name,
        rdtype=rdtype,
        outcome=outcome,
        rrset=rrset,
        rrsigs=rrsigs,
        cnames=tuple(cnames),
    )


@dataclass(frozen=True)
class Resolved:
    """A host name's addresses, with the aliases followed to reach them."""

    name: str
    cnames: tuple[str, ...]
    addresses: tuple[str, ...]
    nxdomain: bool  # the name (or the end of its CNAME chain) does not exist


async def resolve_host(query: QueryFunction, name: str) -> Resolved:
    """A and AAAA of `name`, following CNAMEs the resolver did not follow; raises `LookupFailed`."""
    cnames: list[str] = []
    current = name
    for _step in range(8):
        v4, v6 = await asyncio.gather(query(current, "A"), query(current, "AAAA"))
        cnames.extend(c for c in v4.cnames if c not in cnames)
        addresses = (*v4.records, *v6.records)
        if addresses or not v4.cnames:
            return Resolved(name, tuple(cnames), addresses, v4.outcome is Outcome.NXDOMAIN)
        if v4.outcome is Outcome.NXDOMAIN:
            return Resolved(name, tuple(cnames), (), True)
        current = v4.cnames[-1].rsplit(" ", 1)[-1]
    return Resolved(name, tuple(cnames), (), False)
