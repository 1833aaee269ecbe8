"""Plain HTTP(S) requests to an address with the Host header and SNI set to the name.

Nothing here resolves through the system: the caller gives the address, and redirects to
another name are resolved through the configured resolver and checked against the scope.
"""

from __future__ import annotations

import datetime as dt
import re
import ssl
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import urllib3
from urllib3.exceptions import NewConnectionError

from collectors.web.facts import Fetch, HttpAnswer, SecurityTxt
from riskiturva.collector import ErrorKind, error_kind
from riskiturva.politeness import Politeness

MAX_REDIRECTS = 5
# Unverified fetches are deliberate (certificates are the TLS collector's to judge), and
# `warnings.catch_warnings` is not thread-safe, so this warning is silenced process-wide.
warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
MAX_HEADER_VALUE = 4096
MAX_SECURITY_TXT = 32_768
MAX_PAGE = 262_144  # bytes of a page read for its links
MAX_LINKS = 200

# name → address to connect to, or None when the name may not be contacted (out of scope).
Locate = Callable[[str], str | None]


@dataclass(frozen=True)
class Client:
    user_agent: str
    connect_timeout: float
    read_timeout: float
    verifying: ssl.SSLContext
    limits: Politeness  # every GET is one new connection to the address

    def _pool(
        self, scheme: str, name: str, address: str, port: int, verify: bool
    ) -> urllib3.HTTPConnectionPool:
        timeout = urllib3.Timeout(connect=self.connect_timeout, read=self.read_timeout)
        if scheme == "http":
            return urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False)
        return urllib3.HTTPSConnectionPool(
            address,
            port,
            timeout=timeout,
            retries=False,
            server_hostname=name,
            assert_hostname=name if verify else False,
            cert_reqs="CERT_REQUIRED" if verify else "CERT_NONE",
            ssl_context=self.verifying if verify else _lenient_context(),
        )

    def get(
        self, url: str, address: str, verify: bool = False, limit: int = 0
    ) -> tuple[HttpAnswer, bytes]:
        """One GET, no redirects; raises urllib3's errors."""
        parts = urlsplit(url)
        name = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        pool = self._pool(parts.scheme, name, address, port, verify)
        host = name if parts.port is None else f"{name}:{port}"
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            with self.limits.connection(address):
                response = pool.request(
                    "GET",
                    path,
                    headers={"Host": host, "User-Agent": self.user_agent, "Accept": "*/*"},
                    redirect=False,
                    preload_content=False,
                )
                body = response.read(limit) if limit else b""
                response.release_conn()
        finally:
            pool.close()
        headers = tuple((k.lower(), v[:MAX_HEADER_VALUE]) for k, v in response.headers.iteritems())
        return HttpAnswer(url, response.status, headers), body

    def follow(self, url: str, address: str, locate: Locate) -> Fetch:
        """GET `url` and the redirects after it, as long as they stay in scope."""
        answers: list[HttpAnswer] = []
        for _ in range(MAX_REDIRECTS + 1):
            try:
                answer, body = self.get(url, address, limit=MAX_PAGE)
            except Exception as exc:
                kind = classify(exc)
                if kind is None:
                    raise
                return Fetch(tuple(answers), str(kind), str(exc)[:500])
            answers.append(answer)
            location = answer.header("location")
            if answer.status not in (301, 302, 303, 307, 308) or not location:
                return Fetch(tuple(answers), links=link_hosts(body))
            url = urljoin(url, location)
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                return Fetch(tuple(answers), stopped=f"redirect to {url[:200]}")
            if parts.hostname != urlsplit(answer.url).hostname:
                found = locate(parts.hostname)
                if found is None:
                    return Fetch(tuple(answers), stopped=f"redirect leaves scope: {url[:200]}")
                address = found
        return Fetch(tuple(answers), stopped="too many redirects")


class _LinkParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hosts: dict[str, None] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src", "action") and value and len(self.hosts) < MAX_LINKS:
                parts = urlsplit(value.strip())
                if parts.scheme in ("http", "https") and parts.hostname:
                    self.hosts[parts.hostname.lower()] = None


def link_hosts(body: bytes) -> tuple[str, ...]:
    """Host names of the absolute http(s) links in an HTML page (what discovery follows up)."""
    parser = _LinkParser()
    try:
        parser.feed(body.decode("utf-8", errors="replace"))
        parser.close()
    except AssertionError:  # html.parser gives up on some broken markup
        pass
    return tuple(parser.hosts)


def _lenient_context() -> ssl.SSLContext:
    """For reading headers from a server whose certificate fails: the TLS collector judges it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.set_ciphers("ALL:@SECLEVEL=0")
    return context


def classify(exc: BaseException) -> ErrorKind | None:
    """The error kind of a failed request, by its cause; None for an unexpected exception."""
    if not isinstance(exc, urllib3.exceptions.HTTPError | OSError):
        return None
    if isinstance(exc, NewConnectionError):  # before timeouts: it subclasses ConnectTimeoutError
        default = ErrorKind.UNREACHABLE
    elif isinstance(exc, urllib3.exceptions.TimeoutError):
        default = ErrorKind.TIMEOUT
    else:
        default = ErrorKind.PROTOCOL
    return error_kind(exc, default)


def parse_security_txt(status: int, body: bytes) -> SecurityTxt:
    """RFC 9116 fields that matter here: Contact and Expires (tolerant of any bytes)."""
    text = body.decode("utf-8", errors="replace") if status == 200 else ""
    contact, expires_raw = [], None
    for line in text.splitlines():
        field, sep, value = line.partition(":")
        if not sep or line.lstrip().startswith("#"):
            continue
        field, value = field.strip().lower(), value.strip()
        if field == "contact":
            contact.append(value[:500])
        elif field == "expires" and expires_raw is None:
            expires_raw = value[:100]
    return SecurityTxt(status, tuple(contact), _parse_time(expires_raw), expires_raw)


def _parse_time(value: str | None) -> dt.datetime | None:
    if not value or not re.match(r"^\d{4}-\d{2}-\d{2}T", value):
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
