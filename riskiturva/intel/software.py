"""Software identified on a subject, and how sure the identification is.

A `Software` is an observation, not a verdict: product, upstream version, CPE name, what was
seen (the evidence) and a confidence. The confidence knows about distribution builds: a
banner such as `OpenSSH_9.2p1 Debian-2+deb12u3` names the upstream version the package
started from, while Debian backports security fixes into it without changing that number.

Confidence levels (docs/vulnerabilities.md, "Confidence"):

* `high`   — the software states its exact upstream version and nothing says it is a
  distribution build (`Apache/2.4.49 (Unix)`, `OpenSSH_7.4`, Drupal's CHANGELOG.txt);
* `medium` — the version comes from a weaker hint (a generator meta tag) or names only a
  release cycle (`X-Generator: Drupal 7`), or is a distribution release derived from a
  package revision (`+deb12u3` → Debian 12);
* `low`    — a distribution build (`(Debian)`, `-4ubuntu0.5`, `+deb12u3`): fixes may be
  backported under the same version, so upstream CVEs are never certain.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property

from riskiturva.intel.matching import Cpe, CpeError, parse_cpe


class Confidence(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        return {"high": 2, "medium": 1, "low": 0}[self.value]


@dataclass(frozen=True)
class Software:
    """One piece of software seen on a subject."""

    product: str  # as the software names itself: "OpenSSH", "Apache httpd", "Drupal"
    cpe: str  # CPE 2.3 name, with the version when known
    evidence: str  # what was seen: "nmap -sV: OpenSSH 9.2p1 Debian 2+deb12u3"
    confidence: Confidence
    version: str = ""  # exact upstream version; "" when only a cycle or nothing is known
    cycle: str = ""  # a release cycle when the exact version is unknown ("7" for Drupal 7)
    distribution: str = ""  # "Debian 12", "Debian", "Ubuntu" for a distribution build
    package: str = ""  # the distribution's package revision, "2+deb12u3"

    @cached_property
    def key(self) -> str:
        """`vendor:product` of the product, by its canonical name (`igor_sysoev:nginx` is
        `f5:nginx`)."""
        return canonical_key(parse_cpe(self.cpe).key)

    @property
    def is_distribution_build(self) -> bool:
        return bool(self.distribution)


@dataclass(frozen=True)
class SoftwareSighting:
    """Software on a subject, as a collector hands it to the vulnerability rules."""

    subject: str  # what the collector scanned: "192.0.2.7:22/tcp", "www.kunta.fi"
    software: Software
    reproduce: str  # a command that shows what the identification was based on


def cpe_name(vendor: str, product: str, version: str = "", part: str = "a") -> str:
    return Cpe(part, vendor, product).with_version(version).formatted()


# --- distribution builds -----------------------------------------------------------------

# Comments and version suffixes that mark a distribution's build of upstream software.
_DISTRIBUTIONS = (
    ("debian", "Debian"),
    ("raspbian", "Raspbian"),
    ("ubuntu", "Ubuntu"),
    ("red hat", "Red Hat"),
    ("centos", "CentOS"),
    ("rocky", "Rocky Linux"),
    ("almalinux", "AlmaLinux"),
    ("fedora", "Fedora"),
    ("suse", "SUSE"),
    ("amazon", "Amazon Linux"),
    ("freebsd", "FreeBSD"),
)
_RPM_RELEASE = re.compile(r"\bel(\d+)\b")  # RHEL-family package releases: 1.0.2k-fips … .el7
_DEBIAN_RELEASE = re.compile(r"\bdeb(\d+)u\d+")  # Debian stable updates: +deb12u3, ~deb11u1


def distribution_of(text: str) -> tuple[str, str]:
    """(distribution name, release) named in a banner comment or package revision."""
    lowered = text.lower()
    if match := _DEBIAN_RELEASE.search(lowered):
        return "Debian", match.group(1)
    if match := _RPM_RELEASE.search(lowered):
        return "Red Hat", match.group(1)
    for marker, name in _DISTRIBUTIONS:
        if marker in lowered:
            return name, ""
    return "", ""


def distribution_software(name: str, release: str, evidence: str) -> Software | None:
    """The operating system a Debian package revision implies (`+deb12u3` → Debian 12)."""
    if name != "Debian" or not release:
        return None
    return Software(
        product="Debian",
        cpe=cpe_name("debian", "debian_linux", release, part="o"),
        evidence=f"{evidence} (a package built for Debian {release})",
        confidence=Confidence.MEDIUM,
        version=release,
    )


# --- products named in banners and headers -------------------------------------------------

# Product tokens as servers write them (`Server: Apache/2.4.49`, `X-Powered-By: PHP/8.2.7`)
# → (CPE vendor, CPE product, the product's name). Recognition data only: whether a version
# is vulnerable or unsupported comes from the intelligence store, never from here.
PRODUCT_TOKENS: dict[str, tuple[str, str, str]] = {
    "apache": ("apache", "http_server", "Apache httpd"),
    "nginx": ("f5", "nginx", "nginx"),
    "openresty": ("openresty", "openresty", "OpenResty"),
    "microsoft-iis": ("microsoft", "internet_information_services", "Microsoft IIS"),
    "php": ("php", "php", "PHP"),
    "openssl": ("openssl", "openssl", "OpenSSL"),
    "lighttpd": ("lighttpd", "lighttpd", "lighttpd"),
    "litespeed": ("litespeedtech", "litespeed_web_server", "LiteSpeed"),
    "jetty": ("eclipse", "jetty", "Jetty"),
    "exim": ("exim", "exim", "Exim"),
    "openssh": ("openbsd", "openssh", "OpenSSH"),
}
# One RFC 9110 product token (`name/version`) and the comment after it.
_PRODUCT = re.compile(
    r"(?P<name>[A-Za-z][\w.-]*)/(?P<version>[0-9][\w.+~:-]*)(?P<comment>\s*\([^)]*\))?"
)
_UPSTREAM = re.compile(
    r"^[0-9]+(?:\.[0-9]+)*(?:p[0-9]+|-?(?:alpha|beta|rc)[0-9]*|[a-z](?![a-z]))?", re.I
)


def split_version(raw: str) -> tuple[str, str]:
    """(upstream version, the rest): `7.4.3-4ubuntu2.18` → (`7.4.3`, `-4ubuntu2.18`)."""
    match = _UPSTREAM.match(raw.strip())
    if not match:
        return "", raw.strip()
    return match.group(0), raw.strip()[match.end() :]


def from_product_tokens(value: str, where: str) -> Iterator[Software]:
    """Software in a header such as `Apache/2.4.38 (Debian) OpenSSL/1.1.1n PHP/7.3.31`."""
    # A distribution named anywhere in the header applies to every product in it.
    header_distribution = distribution_of(value)
    for match in _PRODUCT.finditer(value):
        known = PRODUCT_TOKENS.get(match.group("name").lower())
        if known is None:
            continue
        vendor, product, name = known
        version, rest = split_version(match.group("version"))
        if not version:
            continue
        distribution = _named(*distribution_of(rest)) or _named(*header_distribution)
        yield Software(
            product=name,
            cpe=cpe_name(vendor, product, version),
            evidence=f"{where}: {value}"[:300],
            confidence=Confidence.LOW if distribution else Confidence.HIGH,
            version=version,
            distribution=distribution,
            package=rest.lstrip("-+~") if distribution else "",
        )


def _named(name: str, release: str) -> str:
    return f"{name} {release}".strip()


# Names that mean the same product: nmap's older CPE vendors and NVD's current ones. The
# first name of each group is the canonical one (NVD's current name), used in subjects.
CPE_ALIASES: tuple[tuple[str, ...], ...] = (
    ("f5:nginx", "igor_sysoev:nginx", "nginx:nginx"),
    ("oracle:mysql", "mysql:mysql"),
    ("microsoft:internet_information_services", "microsoft:iis"),
    ("vsftpd_project:vsftpd", "beasts:vsftpd", "vsftpd:vsftpd"),
    ("elastic:elasticsearch", "elasticsearch:elasticsearch"),
    ("redis:redis", "redislabs:redis"),
)


def equivalent_keys(key: str) -> tuple[str, ...]:
    """`vendor:product` and the other names of the same product, canonical name first."""
    for group in CPE_ALIASES:
        if key in group:
            return group
    return (key,)


def canonical_key(key: str) -> str:
    return equivalent_keys(key)[0]


def best_per_product(found: Iterable[Software]) -> tuple[Software, ...]:
    """One entry per product: an exact version beats a cycle, then the higher confidence."""
    best: dict[str, Software] = {}
    for software in found:
        try:
            key = software.key
        except CpeError:
            continue
        current = best.get(key)
        if current is None or _strength(software) > _strength(current):
            best[key] = software
    return tuple(best.values())


def _strength(software: Software) -> tuple[int, int, int]:
    return (bool(software.version), bool(software.cycle), software.confidence.rank)
