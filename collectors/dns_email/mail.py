"""Mail transport in DNS: MX (RFC 5321, null MX RFC 7505), MTA-STS (RFC 8461), TLS-RPT
(RFC 8460) and DANE for SMTP (RFC 7672).

Parsers raise precise errors; the fetchers (`fetch_mta_sts_policy`, `smtp_certificate`)
connect only to addresses the caller has passed through the scope guard, and report what
went wrong as data.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass, replace

import dns.rdtypes.ANY.TLSA
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from riskiturva.dns_seam import QueryFunction, resolve_host

POLICY_PATH = "/.well-known/mta-sts.txt"
MAX_POLICY_BYTES = 64 * 1024  # RFC 8461 §3.3 leaves the limit to senders; this is ample
MTA_STS_MODES = ("enforce", "testing", "none")


# ---- MX ------------------------------------------------------------------------------


@dataclass(frozen=True)
class MxHost:
    preference: int
    name: str
    cnames: tuple[str, ...]  # aliases followed (an MX must not point at one, RFC 2181 §10.3)
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class MxFacts:
    domain: str
    records: tuple[str, ...]
    hosts: tuple[MxHost, ...]

    @property
    def null_mx(self) -> bool:
        """RFC 7505: a single `MX 0 .` says the domain accepts no mail, on purpose."""
        return len(self.hosts) == 1 and self.hosts[0].name == "."

    @property
    def receives_mail(self) -> bool:
        return bool(self.hosts) and not self.null_mx


async def find_mx(domain: str, query: QueryFunction) -> MxFacts:
    answer = await query(domain, "MX")
    if answer.rrset is None:
        return MxFacts(domain, (), ())
    targets = sorted(
        (r.preference, r.exchange.to_text(omit_final_dot=True) or ".") for r in answer.rrset
    )
    resolved = await asyncio.gather(
        *(resolve_host(query, name) for _pref, name in targets if name != ".")
    )
    by_name = {r.name: r for r in resolved}
    hosts = tuple(
        MxHost(pref, name, by_name[name].cnames, by_name[name].addresses)
        if name in by_name
        else MxHost(pref, name, (), ())
        for pref, name in targets
    )
    return MxFacts(domain, answer.records, hosts)


# ---- TLS-RPT ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsRptFacts:
    domain: str
    records: tuple[str, ...]


async def find_tlsrpt(domain: str, query: QueryFunction) -> TlsRptFacts:
    texts = (await query(f"_smtp._tls.{domain}", "TXT")).texts
    return TlsRptFacts(domain, tuple(t for t in texts if re.match(r"^v=TLSRPTv1\s*;", t)))


# ---- MTA-STS ---------------------------------------------------------------------------


class MtaStsPolicyError(ValueError):
    """The policy file breaks RFC 8461 §3.2."""


@dataclass(frozen=True)
class MtaStsPolicy:
    mode: str
    mx: tuple[str, ...]
    max_age: int


def parse_mta_sts_policy(text: str) -> MtaStsPolicy:
    fields: dict[str, list[str]] = {}
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise MtaStsPolicyError(f"unreadable line {line[:80]!r}")
        fields.setdefault(key.strip().lower(), []).append(value.strip())
    if fields.get("version") != ["STSv1"]:
        raise MtaStsPolicyError("version: STSv1 is required")
    mode = (fields.get("mode") or [""])[0]
    if mode not in MTA_STS_MODES:
        raise MtaStsPolicyError(f"mode {mode!r} is not one of {', '.join(MTA_STS_MODES)}")
    max_age = (fields.get("max_age") or [""])[0]
    if not max_age.isdigit():
        raise MtaStsPolicyError(f"max_age {max_age!r} is not a number of seconds")
    mx = tuple(m.lower().rstrip(".") for m in fields.get("mx", ()))
    if mode != "none" and not mx:
        raise MtaStsPolicyError(f"mode {mode} needs at least one mx: line")
    return MtaStsPolicy(mode, mx, int(max_age))


async def find_mta_sts_record(domain: str, query: QueryFunction) -> MtaStsFacts:
    texts = (await query(f"_mta-sts.{domain}", "TXT")).texts
    return MtaStsFacts(domain, tuple(t for t in texts if re.match(r"^v=STSv1\s*;", t)))


def mx_matches(pattern: str, host: str) -> bool:
    """RFC 8461 §4.1: exact, or `*.` matching exactly one leftmost label."""
    host = host.lower().rstrip(".")
    if pattern.startswith("*."):
        head, _, tail = host.partition(".")
        return bool(head) and tail == pattern[2:]
    return host == pattern


@dataclass(frozen=True)
class MtaStsFacts:
    domain: str
    records: tuple[str, ...]  # `v=STSv1` TXT records at `_mta-sts.<domain>`
    policy_url: str | None = None
    address: str | None = None
    policy_text: str | None = None
    policy: MtaStsPolicy | None = None
    problem: str | None = None  # why the policy could not be used
    uncovered_mx: tuple[str, ...] = ()


@dataclass(frozen=True)
class Fetched:
    status: int
    content_type: str
    body: bytes


async def https_get(
    address: str, host: str, path: str, context: ssl.SSLContext, user_agent: str, timeout: float
) -> Fetched:
    """One HTTP/1.1 GET over TLS to `address` with SNI and Host `host`; no redirects followed."""
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(
            address, 443, ssl=context, server_hostname=host
        )
        try:
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {user_agent}\r\n"
                "Accept: text/plain\r\nConnection: close\r\n\r\n".encode()
            )
            await writer.drain()
            raw = await reader.read(MAX_POLICY_BYTES + 16 * 1024)
            while len(raw) < MAX_POLICY_BYTES and (chunk := await reader.read(65536)):
                raw += chunk
        finally:
            writer.close()
    return parse_http_response(raw)


def parse_http_response(raw: bytes) -> Fetched:
    """Status, content type and body of a raw HTTP/1.1 response; never raises."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("iso-8859-1").split("\r\n")
    status_line = re.match(r"^HTTP/\d(?:\.\d)? (\d{3})", lines[0])
    status = int(status_line.group(1)) if status_line else 0  # 0: not an HTTP response
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
    }
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body)
    return Fetched(status, headers.get("content-type", ""), body[:MAX_POLICY_BYTES])


def _dechunk(body: bytes) -> bytes:
    """Undo chunked transfer coding; a malformed chunk size ends the body there."""
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0] or b"0", 16)
        except ValueError:
            break
        if size == 0:
            break
        out, body = out + rest[:size], rest[size + 2 :]
    return out


def tls_client_context(extra_ca_files: tuple[object, ...]) -> ssl.SSLContext:
    context = ssl.create_default_context()
    for ca_file in extra_ca_files:
        context.load_verify_locations(cafile=str(ca_file))
    return context


async def fetch_mta_sts_policy(
    facts: MtaStsFacts,
    address: str,
    context: ssl.SSLContext,
    user_agent: str,
    timeout: float,
    mx_hosts: tuple[str, ...],
) -> MtaStsFacts:
    """Fetch and judge-ready parse of the policy; raises only `TimeoutError`."""
    host = f"mta-sts.{facts.domain}"
    base = MtaStsFacts(facts.domain, facts.records, f"https://{host}{POLICY_PATH}", address)
    try:
        fetched = await https_get(address, host, POLICY_PATH, context, user_agent, timeout)
    except ssl.SSLError as exc:
        return replace(base, problem=f"TLS failed: {exc.reason or exc}")
    except OSError as exc:
        return replace(base, problem=f"connection failed: {exc.strerror or exc}")
    text = fetched.body.decode("utf-8", errors="backslashreplace")
    if fetched.status != 200:
        return replace(base, policy_text=text[:2048], problem=f"HTTP status {fetched.status}")
    if not fetched.content_type.lower().startswith("text/plain"):
        problem = f"content type {fetched.content_type!r}, not text/plain (RFC 8461 §3.3)"
        return replace(base, policy_text=text[:2048], problem=problem)
    try:
        policy = parse_mta_sts_policy(text)
    except MtaStsPolicyError as exc:
        return replace(base, policy_text=text[:2048], problem=f"invalid policy: {exc}")
    uncovered = tuple(h for h in mx_hosts if not any(mx_matches(p, h) for p in policy.mx))
    return replace(base, policy_text=text, policy=policy, uncovered_mx=uncovered)


# ---- DANE ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DaneHost:
    host: str
    tlsa: tuple[str, ...]  # records at `_25._tcp.<host>`
    address: str | None = None  # where the certificate was fetched
    certificate_sha256: str | None = None
    matched: bool | None = None  # None: not verified (see note)
    note: str | None = None


def tlsa_matches(record: dns.rdtypes.ANY.TLSA.TLSA, certificate_der: bytes) -> bool | None:
    """RFC 6698 §2.1 for end-entity records (usage 1 and 3); None for CA records (0, 2)."""
    if record.usage not in (1, 3):
        return None
    if record.selector == 0:
        data = certificate_der
    else:
        certificate = x509.load_der_x509_certificate(certificate_der)
        data = certificate.public_key().public_bytes(
            Encoding.DER, PublicFormat.SubjectPublicKeyInfo
        )
    if record.mtype == 1:
        data = hashlib.sha256(data).digest()
    elif record.mtype == 2:
        data = hashlib.sha512(data).digest()
    return data == record.cert


async def smtp_certificate(address: str, host: str, timeout: float) -> bytes | str:
    """The certificate the MX serves after STARTTLS (DER), or why none could be had."""
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(address, 25)
        try:
            if not (await _smtp_reply(reader)).startswith("220"):
                return "the server did not greet with 220"
            writer.write(b"EHLO riskiturva.invalid\r\n")
            ehlo = await _smtp_reply(reader)
            if "STARTTLS" not in ehlo.upper():
                return "STARTTLS is not offered"
            writer.write(b"STARTTLS\r\n")
            if not (await _smtp_reply(reader)).startswith("220"):
                return "STARTTLS was refused"
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE  # DANE, not the web PKI, decides here
            await writer.start_tls(context, server_hostname=host)
            ssl_object = writer.get_extra_info("ssl_object")
            certificate = ssl_object.getpeercert(binary_form=True) if ssl_object else None
            writer.write(b"QUIT\r\n")
            return certificate or "no certificate was presented"
        finally:
            writer.close()


async def _smtp_reply(reader: asyncio.StreamReader) -> str:
    """One (possibly multi-line) SMTP reply."""
    lines = []
    while True:
        line = (await reader.readline()).decode("ascii", errors="replace")
        lines.append(line.rstrip("\r\n"))
        if len(line) < 4 or line[3] != "-":
            return "\n".join(lines)


async def find_dane(
    mx: MxFacts,
    query: QueryFunction,
    allowed: Callable[[str], bool],
    timeout: float,
) -> tuple[DaneHost, ...]:
    """TLSA records of each MX and whether the served certificate matches them."""

    async def one(host: MxHost) -> DaneHost:
        answer = await query(f"_25._tcp.{host.name}", "TLSA")
        if answer.rrset is None:
            return DaneHost(host.name, ())
        records = answer.records
        address = next((a for a in host.addresses if allowed(a)), None)
        if address is None:
            return DaneHost(host.name, records, note="no in-scope address: certificate not checked")
        try:
            certificate = await smtp_certificate(address, host.name, timeout)
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            return DaneHost(host.name, records, address, note=f"SMTP failed: {exc!r}")
        if isinstance(certificate, str):
            return DaneHost(host.name, records, address, note=certificate)
        verdicts = [tlsa_matches(r, certificate) for r in answer.rrset]
        matched = True if any(verdicts) else (False if False in verdicts else None)
        note = None if matched is not None else "only CA records (usage 0/2): chain not checked"
        digest = hashlib.sha256(certificate).hexdigest()
        return DaneHost(host.name, records, address, digest, matched, note)

    return tuple(await asyncio.gather(*(one(h) for h in mx.hosts if h.addresses)))
