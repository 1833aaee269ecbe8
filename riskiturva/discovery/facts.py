"""What discovery saw: typed, frozen observations, judged into proposals by `judge`.

Gathering already keeps to the scope: a name outside the declared domains is recorded as
an `OutsideSighting` and never resolved; an address is asked about (PTR) or pinged only
inside the declared networks.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class Source(enum.StrEnum):
    """Where a name or address was seen: the evidence of a proposal."""

    NS = "ns"
    MX = "mx"
    SRV = "srv"
    CNAME = "cname"
    SPF = "spf"
    TXT_VERIFICATION = "txt_verification"
    NSEC = "nsec"
    AXFR = "axfr"
    WORDLIST = "wordlist"
    PARTNER_LABEL = "partner_label"
    TLS_SAN = "tls_san"
    WEB_REDIRECT = "web_redirect"
    WEB_LINK = "web_link"
    CT = "ct"
    PTR = "ptr"
    PING_SWEEP = "ping_sweep"
    ADDRESS = "address"  # the address a discovered name resolves to


# Sources that guess names: their hits count only when they differ from a zone's wildcard.
GUESSES = frozenset({Source.WORDLIST, Source.PARTNER_LABEL})


@dataclass(frozen=True)
class Sighting:
    """An in-scope name seen by a source (`kind`: host, or domain for a zone cut)."""

    name: str
    source: Source
    via: str  # where: "NSEC chain of hyvala.test", "certificate of www.sekala.test:443"
    kind: str = "host"
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OutsideSighting:
    """A name or address outside the declared scope: listed, never resolved or contacted."""

    value: str
    kind: str  # "name" or "address"
    source: Source
    via: str
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Resolution:
    """A and AAAA of an in-scope name through the configured resolver."""

    name: str
    addresses: tuple[str, ...] = ()
    cnames: tuple[str, ...] = ()  # `owner CNAME target` steps the answer followed
    nxdomain: bool = False
    failed: str | None = None  # timeout, SERVFAIL…: nothing is concluded


@dataclass(frozen=True)
class AddressSighting:
    """An in-scope address: answered a ping sweep, or has a PTR record."""

    address: str
    source: Source
    via: str
    names: tuple[str, ...] = ()  # PTR targets


@dataclass(frozen=True)
class ServiceHint:
    """A TXT verification record: a cloud service the domain uses (shown, not scanned)."""

    domain: str
    service: str
    record: str


@dataclass(frozen=True)
class CtEntry:
    """One certificate in a Certificate Transparency log."""

    id: int
    names: tuple[str, ...]
    issuer: str
    not_before: str
    not_after: str


@dataclass(frozen=True)
class ZoneFacts:
    """One zone (a scope domain or a zone cut under it) and how it could be enumerated."""

    zone: str
    walk: str  # "complete", "nsec3", "unsigned", "failed: …", "skipped"
    axfr: str  # "open at …", "refused", "no nameserver in scope", "skipped"
    wildcard: tuple[str, ...] = ()  # addresses random labels resolve to (a wildcard)
    labels_tried: int = 0

    @property
    def enumerated(self) -> bool:
        """Every name of the zone was read (walk or transfer): guessing adds nothing."""
        return self.walk == "complete" or self.axfr.startswith("open")


@dataclass(frozen=True)
class Observations:
    """Everything one discovery run gathered for one organisation."""

    organisation: str
    scanned_at: dt.datetime
    sightings: tuple[Sighting, ...] = ()
    resolutions: Mapping[str, Resolution] = field(default_factory=dict)
    zones: tuple[ZoneFacts, ...] = ()
    addresses: tuple[AddressSighting, ...] = ()
    outside: tuple[OutsideSighting, ...] = ()
    hints: tuple[ServiceHint, ...] = ()
    certificates: Mapping[str, tuple[CtEntry, ...]] = field(default_factory=dict)  # by domain
    errors: tuple[str, ...] = ()
