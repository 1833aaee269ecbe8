"""What the web collector saw on one host name: the answers to a few plain requests."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from riskiturva.intel.software import SoftwareSighting


@dataclass(frozen=True)
class HttpAnswer:
    """One response: status and headers (names lower-cased, values kept as received)."""

    url: str
    status: int
    headers: tuple[tuple[str, str], ...]

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name), None)

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name]


@dataclass(frozen=True)
class Fetch:
    """A request and the redirects followed from it (within scope): answers, or an error."""

    answers: tuple[HttpAnswer, ...] = ()
    error: str | None = None  # an ErrorKind value ("refused", "timeout", …) when no answer came
    error_detail: str | None = None
    stopped: str | None = None  # why redirects were not followed further
    links: tuple[str, ...] = ()  # host names in absolute links of the final page (discovery)

    @property
    def final(self) -> HttpAnswer | None:
        return self.answers[-1] if self.answers else None


@dataclass(frozen=True)
class SecurityTxt:
    """`/.well-known/security.txt` (RFC 9116) as fetched over HTTPS."""

    status: int
    contact: tuple[str, ...]
    expires: dt.datetime | None
    expires_raw: str | None


@dataclass(frozen=True)
class WebFacts:
    hostname: str
    address: str
    scanned_at: dt.datetime
    http: Fetch  # http://<name>/
    https: Fetch  # https://<name>/
    certificate_verified: bool | None = None  # None: HTTPS not reached
    certificate_error: str | None = None
    security_txt: SecurityTxt | None = None
    security_txt_error: str | None = None
    other_addresses: tuple[str, ...] = ()
    software: tuple[SoftwareSighting, ...] = ()  # headers, generator tags, CMS version files
    software_error: str | None = None  # a CMS version file could not be read
