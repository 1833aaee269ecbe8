"""Configuration: settings and organisations from TOML, validated with pydantic.

`load_config` checks everything a scan will need before anything runs: the types exactly
as TOML wrote them (`port = "53"` is an error, not 53), every collector's options, the
files the settings point at (PEM CA certificates, DS/DNSKEY trust anchors), the database
URL, and the organisations' scopes (no public suffix, no network wider than the limit, no
two organisations claiming the same domain or network unless `[[shared_scope]]` says so).

A bad file raises `ConfigError` naming the file, and for every problem its line, field
path (`organisations[2].assets[0].criticality`) and value — never the value of a secret.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib.util
import ipaddress
import json
import os
from collections.abc import Iterator, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    PlainValidator,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from riskiturva import __version__
from riskiturva._config_problems import (
    ConfigError as ConfigError,
)
from riskiturva._config_problems import (
    ConfigProblem,
    Location,
    hidden_password,
    invalid,
    parse_toml,
    problems_of,
)
from riskiturva._config_types import CACertificateFile, EmailAddress, resolved
from riskiturva._config_types import ConfigModel as _Model
from riskiturva._cron import parse_schedule
from riskiturva.alerts.settings import AlertSettings, OrganisationAlerts, PartnerAlerts
from riskiturva.checks import OwnerRole, load_registry
from riskiturva.requirements import load_profiles

Problem = tuple[Location, str, Any]  # where, what is wrong, the value (None: not shown)
DEFAULT_CONFIG_PATH = Path("config/riskiturva.toml")
CONFIG_ENV_VAR = "RISKITURVA_CONFIG"
LANGUAGES = ("fi", "sv", "en")
SUPPORTED_DATABASES = ("sqlite", "postgresql")


class CollectorOptions(_Model):
    """Base of a collector's options model (`[settings.collectors.<name>]`).

    Unknown keys are errors and numbers must be finite; `load_config` validates the table
    with TOML's own types (a string is never read as a number)."""


def _anchors_file(path: Path, info: ValidationInfo) -> Path:
    from riskiturva.trust_files import read_trust_anchors

    path = resolved(path, info)
    read_trust_anchors(path)
    return path


def _data_dir(path: Path, info: ValidationInfo) -> Path:
    path = resolved(path, info)
    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        what = "is a file" if existing == path else f"cannot be created: {existing} is a file"
        raise ValueError(f"must be a folder; {path} {what}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"the folder {existing} is not writable")
    return path


TrustAnchorsFile = Annotated[Path, AfterValidator(_anchors_file)]


class Criticality(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class AssetKind(StrEnum):
    DOMAIN = "domain"
    MAIL_DOMAIN = "mail_domain"
    HOST = "host"
    IP = "ip"
    NETWORK = "network"
    URL = "url"


# Requirement profiles that apply to an organisation unless its configuration says otherwise:
# what binds or is recommended to every Finnish municipality. The Cybersecurity Act (NIS2) is
# declared by the organisations in its scope: `requirements = [..., "kyberturvallisuuslaki"]`.
DEFAULT_REQUIREMENTS = ("tiedonhallintalaki", "traficom-m68", "kyberturvallisuuskeskus")


class Owner(_Model):
    """Who fixes a problem: a role, and optionally who exactly (a company or a team)."""

    role: OwnerRole = Field(description="own_it, service_provider or partner")
    name: str | None = Field(
        None, min_length=1, description="e.g. the provider's name; a partner's is its own"
    )

    @model_validator(mode="before")
    @classmethod
    def _role_alone(cls, value: Any) -> Any:
        return {"role": value} if isinstance(value, str) else value


def normalise_name(name: str) -> str:
    """Lower-case a DNS name and drop a trailing dot; IDNs become their A-label form."""
    name = name.strip().rstrip(".").lower()
    try:
        return name.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ValueError(f"not a valid domain name: {name!r}") from exc


def _is_valid_label(label: str) -> bool:
    return (
        0 < len(label) <= 63
        and label.replace("-", "").replace("_", "").isalnum()
        and label.isascii()
        and not label.startswith("-")
        and not label.endswith("-")
    )


def _is_valid_name(name: str) -> bool:
    labels = name.split(".")
    return len(name) <= 253 and len(labels) >= 2 and all(_is_valid_label(x) for x in labels)


def name_within(name: str, domain: str) -> bool:
    """True when `name` is `domain` or one of its subdomains."""
    return name == domain or name.endswith("." + domain)


AnyNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def network_within(network: AnyNetwork, other: AnyNetwork) -> bool:
    """True when `network` is `other` or lies inside it (same address family)."""
    return network.version == other.version and network.subnet_of(other)  # type: ignore[arg-type]


@functools.cache
def _public_suffixes() -> Any:
    """The packaged Public Suffix List (static reference data, parsed once per process)."""
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


def _scope_domain(value: str) -> str:
    domain = normalise_name(value)
    if not _is_valid_name(domain):
        raise ValueError(f"not a valid domain name: {value!r}")
    if _public_suffixes().is_public(domain):
        raise ValueError(
            f"{domain!r} is a public suffix (anyone can register names under it): declare "
            "the organisation's own registered domains instead"
        )
    return domain


def _network(value: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return value
    if not isinstance(value, str):
        raise ValueError('must be a network in CIDR notation as a string, e.g. "192.0.2.0/24"')
    try:
        return ipaddress.ip_network(value.strip(), strict=True)
    except ValueError as exc:
        raise ValueError(f"not an IP network in CIDR notation: {exc}") from exc


def _address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError as exc:
        raise ValueError(f"not an IP address: {value!r}") from exc


def _selector(value: str) -> str:
    selector = value.strip().lower()
    if not selector or not all(_is_valid_label(x) for x in selector.split(".")):
        raise ValueError(f"not a DKIM selector (DNS labels such as 's2026'): {value!r}")
    return selector


ScopeDomain = Annotated[str, AfterValidator(_scope_domain)]
Network = Annotated[ipaddress.IPv4Network | ipaddress.IPv6Network, PlainValidator(_network)]
IPAddress = Annotated[str, AfterValidator(_address)]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]


class LocalisedName(_Model):
    fi: str = Field(min_length=1, description="in Finnish")
    sv: str = Field(min_length=1, description="in Swedish")
    en: str = Field(min_length=1, description="in English")

    def get(self, language: str) -> str:
        return getattr(self, language, self.fi)


class Scope(_Model):
    """What the organisation has authorised us to scan: domains and IP networks."""

    domains: tuple[ScopeDomain, ...] = Field(
        (), description="domains (and their subdomains) authorised; never a public suffix"
    )
    networks: tuple[Network, ...] = Field(
        (), description="IP networks authorised; every address scanned must lie inside"
    )
    allow_wide_networks: bool = Field(
        False,
        description="accept networks wider than `settings.scope` allows (the owner authorised"
        " every address in them)",
    )

    @model_validator(mode="after")
    def _not_empty(self) -> Scope:
        if not self.domains and not self.networks:
            raise ValueError(
                "the scope declares no domains and no networks: nothing may be scanned"
            )
        return self

    def covers_name(self, name: str) -> bool:
        return any(name_within(normalise_name(name), d) for d in self.domains)

    def covers_address(self, address: str) -> bool:
        ip = ipaddress.ip_address(address)
        return any(ip in network for network in self.networks)

    def covers_network(self, network: AnyNetwork) -> bool:
        return any(network_within(network, n) for n in self.networks)


class Asset(_Model):
    kind: AssetKind = Field(description="domain, mail_domain, host, ip, network or url")
    value: str = Field(min_length=1, description="the name, address, network or URL")
    criticality: Criticality = Field(Criticality.MEDIUM, description="low, medium or high")
    tags: tuple[str, ...] = Field((), description="e.g. website, e-service, email, services")
    dkim_selectors: tuple[Annotated[str, AfterValidator(_selector)], ...] = Field(
        (), description="mail_domain only: DKIM selectors in use, besides the common ones"
    )
    owner: Owner | None = Field(
        None,
        description='who fixes problems on this asset: "service_provider" or'
        ' { role = "service_provider", name = "Web agency Oy" }; overrides owners',
    )

    @model_validator(mode="after")
    def _check_value(self) -> Asset:
        kind, value = self.kind, self.value
        try:
            if kind in (AssetKind.DOMAIN, AssetKind.MAIL_DOMAIN, AssetKind.HOST):
                if not _is_valid_name(normalise_name(value)):
                    raise ValueError(f"{kind} value is not a valid DNS name: {value!r}")
                object.__setattr__(self, "value", normalise_name(value))
            elif kind is AssetKind.IP:
                object.__setattr__(self, "value", _address(value))
            elif kind is AssetKind.NETWORK:
                object.__setattr__(self, "value", str(_network(value)))
            elif kind is AssetKind.URL:
                parts = urlsplit(value)
                if parts.scheme not in ("http", "https") or not parts.hostname:
                    raise ValueError(f"url must be http(s)://host/...: {value!r}")
                parts.port  # noqa: B018 — raises ValueError for a port out of range
        except ValueError as exc:
            raise invalid("Asset", [(("value",), str(exc), value)]) from None
        if self.dkim_selectors and kind is not AssetKind.MAIL_DOMAIN:
            raise invalid(
                "Asset",
                [(("dkim_selectors",), "only meaningful on a mail_domain asset", None)],
            )
        return self

    @property
    def host_name(self) -> str | None:
        """The DNS name this asset is about, if it has one."""
        if self.kind is AssetKind.URL:
            return normalise_name(urlsplit(self.value).hostname or "")
        if self.kind in (AssetKind.DOMAIN, AssetKind.MAIL_DOMAIN, AssetKind.HOST):
            return self.value
        return None


def _evidence_source(value: str) -> str:
    from riskiturva.discovery.facts import Source

    if value not in set(Source):
        raise ValueError(f"not an evidence source ({', '.join(Source)}): {value!r}")
    return value


class AutoAcceptRule(_Model):
    """A discovery proposal this organisation accepts without review (docs/discovery.md)."""

    kinds: tuple[AssetKind, ...] = Field(
        (AssetKind.HOST,), description="asset kinds the rule accepts"
    )
    sources: tuple[Annotated[str, AfterValidator(_evidence_source)], ...] = Field(
        (), description="evidence sources (e.g. nsec, axfr, ptr); empty: any"
    )
    networks: tuple[Network, ...] = Field(
        (), description="every address must lie in these; empty: the declared scope networks"
    )
    criticality: Criticality = Field(Criticality.LOW, description="criticality given")
    tags: tuple[str, ...] = Field((), description="tags given")


class OrganisationDiscovery(_Model):
    """`[organisations.discovery]`: discovery for this organisation."""

    enabled: bool = Field(True, description="run discovery for this organisation")
    auto_accept: tuple[AutoAcceptRule, ...] = Field(
        (), description="[[organisations.discovery.auto_accept]] rules"
    )


class Organisation(_Model):
    slug: Slug = Field(description="short stable id")
    name: LocalisedName = Field(description="names as a table: { fi = …, sv = …, en = … }")
    scope: Scope = Field(description="what the organisation has authorised to be scanned")
    assets: tuple[Asset, ...] = Field(
        (),
        description="[[organisations.assets]] tables: the seed inventory; none only when"
        " discovery is on for the organisation",
    )
    report_recipients: tuple[EmailAddress, ...] = Field(
        (), description="e-mail addresses that receive the monthly report"
    )
    owners: dict[str, Owner] = Field(
        default_factory=dict,
        description='who fixes what, by check id or its prefix ("web", "email.dmarc") or "*"'
        " for everything; the longest match wins, else the check's default (docs/reports.md)",
    )
    requirements: tuple[str, ...] = Field(
        DEFAULT_REQUIREMENTS,
        description="requirement profiles that apply (docs/requirements.md); add"
        ' "kyberturvallisuuslaki" if the organisation is in the Cybersecurity Act\'s scope',
    )
    peer_comparison: bool = Field(
        True,
        description="take part, anonymised, in the partner's peer figures (false: neither"
        " counted nor shown them)",
    )

    @field_validator("owners")
    @classmethod
    def _known_check_prefixes(cls, value: dict[str, Owner]) -> dict[str, Owner]:
        registry = load_registry()
        for key in value:
            if key != "*" and not any(c == key or c.startswith(key + ".") for c in registry):
                raise ValueError(f'no check id is or starts with {key!r} (or use "*")')
        return value

    @field_validator("requirements")
    @classmethod
    def _known_profiles(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        profiles = load_profiles()
        unknown = [p for p in value if p not in profiles]
        if unknown:
            raise ValueError(f"unknown requirement profiles {unknown}; known: {sorted(profiles)}")
        return tuple(dict.fromkeys(value))

    discovery: OrganisationDiscovery = Field(
        OrganisationDiscovery(), description="`[organisations.discovery]` (docs/discovery.md)"
    )
    alerts: OrganisationAlerts = OrganisationAlerts()

    @model_validator(mode="after")
    def _assets_within_scope(self) -> Organisation:
        problems: list[Problem] = []
        for index, asset in enumerate(self.assets):
            name = asset.host_name
            message = None
            if name is not None and not self.scope.covers_name(name):
                message = "host name outside the declared scope domains"
            elif asset.kind is AssetKind.IP and not self.scope.covers_address(asset.value):
                message = "address outside the declared scope networks"
            elif asset.kind is AssetKind.NETWORK and not self.scope.covers_network(
                ipaddress.ip_network(asset.value)
            ):
                message = "network outside the declared scope networks"
            if message:
                problems.append((("assets", index, "value"), message, asset.value))
        if not self.assets and not self.discovery.enabled:
            message = "no assets and discovery is off: nothing would ever be scanned"
            problems.append((("assets",), message, None))
        for rule_index, rule in enumerate(self.discovery.auto_accept):
            for network_index, network in enumerate(rule.networks):
                if not self.scope.covers_network(network):
                    location = ("discovery", "auto_accept", rule_index, "networks", network_index)
                    message = "network outside the declared scope networks"
                    problems.append((location, message, str(network)))
        if problems:
            raise invalid("Organisation", problems)
        return self


class Partner(_Model):
    slug: Slug = Field(description="short stable id")
    name: str = Field(min_length=1, description="the partner's name")
    organisations: tuple[str, ...] = Field((), description="slugs of the organisations it runs")
    alerts: PartnerAlerts = PartnerAlerts()


class SharedScope(_Model):
    """Scope that several organisations declare on purpose: a partner's name servers or
    mail relay, a joint service. Each organisation listed sees findings about it."""

    organisations: tuple[str, ...] = Field(
        min_length=2, description="slugs of the organisations that share it (two or more)"
    )
    domains: tuple[ScopeDomain, ...] = Field(
        (), description="shared domains: each must be in every listed organisation's scope"
    )
    networks: tuple[Network, ...] = Field(
        (), description="shared networks: each must be in every listed organisation's scope"
    )
    reason: str = Field(min_length=1, description="why they share it (shown in reviews)")

    @model_validator(mode="after")
    def _something_shared(self) -> SharedScope:
        if not self.domains and not self.networks:
            raise ValueError("declares no shared domains and no shared networks")
        return self

    def shares(self, a: str, b: str) -> bool:
        return a in self.organisations and b in self.organisations


class ScopeLimits(_Model):
    """How wide a scope network may be. A wider one is refused unless the organisation's
    scope sets `allow_wide_networks = true`; a /0 (the whole address space) is always refused."""

    widest_ipv4_network: int = Field(
        16, ge=1, le=32, description="the shortest IPv4 prefix a scope may declare (/16)"
    )
    widest_ipv6_network: int = Field(
        48, ge=1, le=128, description="the shortest IPv6 prefix a scope may declare (/48)"
    )

    def widest(self, version: int) -> int:
        return self.widest_ipv4_network if version == 4 else self.widest_ipv6_network


class ResolverSettings(_Model):
    """The one DNS resolver every lookup in the product goes through."""

    nameservers: tuple[IPAddress, ...] = Field(
        ("127.0.0.53",),
        min_length=1,
        description="addresses of the resolvers every lookup goes through",
    )
    port: int = Field(53, ge=1, le=65535, description="their port")
    timeout: float = Field(3.0, gt=0, le=60, description="seconds per query attempt")
    retries: int = Field(1, ge=0, le=10, description="further attempts after a timeout")


class TimeoutSettings(_Model):
    connect: float = Field(5.0, gt=0, le=600, description="seconds to open a connection")
    read: float = Field(10.0, gt=0, le=3600, description="seconds to wait for an answer")
    host: float = Field(
        300.0, gt=0, le=86400, description="budget for one target, all checks together"
    )


class ConcurrencySettings(_Model):
    tasks: int = Field(
        4,
        ge=1,
        le=256,
        description="tasks (an organisation's batch of targets) each collector runs at once:"
        " nmap processes for services, worker processes for TLS; 1 scans the organisations"
        " one after another",
    )
    targets: int = Field(20, ge=1, le=1000, description="targets scanned at once per task")
    per_host_connections: int = Field(
        5, ge=1, le=100, description="connections open at once to one host"
    )
    requests_per_second: float = Field(
        10.0, gt=0, le=1000, description="politeness limit for requests to one host"
    )


class NetworkLimit(_Model):
    """A network that shares one provider's capacity (a hosting company, a shared-service
    data centre): all its addresses together get `connections` at once."""

    network: Network = Field(description="the network, e.g. 192.0.2.0/22")
    connections: int = Field(ge=1, le=1000, description="connections open at once to it")
    reason: str = Field("", description="why (who runs it), for the next reader")


class PolitenessSettings(_Model):
    """What the scanner may ask of other people's networks at once, across collectors.

    Many municipalities sit on one hosting provider: names differ, addresses repeat. So
    limits are per destination address and per network (an IPv4 /24 or an IPv6 /48, or a
    network listed here), and there is one rate of new connections and probes for the
    whole process. docs/operations.md says how to make the scanner recognisable.
    """

    connections_per_address: int = Field(
        4, ge=1, le=1000, description="connections open at once to one address, all names on it"
    )
    connections_per_network: int = Field(
        16,
        ge=1,
        le=10000,
        description="connections open at once to one network (the /24 or /48 of an address,"
        " or a network in `networks`)",
    )
    ipv4_prefix: int = Field(24, ge=8, le=32, description="an IPv4 address's network (/24)")
    ipv6_prefix: int = Field(48, ge=16, le=128, description="an IPv6 address's network (/48)")
    new_per_second: float = Field(
        100.0,
        gt=0,
        le=100000,
        description="new connections and probes per second, all collectors of a process together",
    )
    burst: int = Field(
        20, ge=1, le=10000, description="new connections allowed at once after a pause"
    )
    networks: tuple[NetworkLimit, ...] = Field(
        (), description="networks with a limit of their own: `[[settings.politeness.networks]]`"
    )

    @model_validator(mode="after")
    def _consistent(self) -> PolitenessSettings:
        if self.connections_per_address > self.connections_per_network:
            raise ValueError(
                f"connections_per_address ({self.connections_per_address}) is more than"
                f" connections_per_network ({self.connections_per_network}): it could never be used"
            )
        seen: list[AnyNetwork] = []
        for limit in self.networks:
            for other in seen:
                if limit.network.version == other.version and limit.network.overlaps(other):
                    raise ValueError(
                        f"networks {other} and {limit.network} overlap: list each address once"
                    )
            seen.append(limit.network)
        return self


class TLSSettings(_Model):
    extra_ca_files: tuple[CACertificateFile, ...] = Field(
        (),
        description="PEM CA certificates trusted besides Mozilla's store (an internal CA);"
        " each file must exist and hold CA certificates",
    )


class DNSSECSettings(_Model):
    trust_anchors_file: TrustAnchorsFile | None = Field(
        None,
        description="DS/DNSKEY records in zone-file syntax, checked when loaded; none means"
        " the IANA root anchors",
    )


class Schedules(_Model):
    """When each collector runs: cron (minute hour day month weekday) or `@every 6h`."""

    dns_email: str = Field("15 2 * * *", description="DNS and e-mail collector: daily")
    tls: str = Field("45 2 * * *", description="TLS collector: daily")
    web: str = Field("15 3 * * *", description="web collector: daily")
    services: str = Field("30 3 * * 1", description="exposed-services collector: weekly")
    discovery: str = Field("30 1 * * *", description="asset discovery: daily, before the scans")
    jitter_seconds: int = Field(600, ge=0, le=86400, description="random delay added to each start")
    misfire_grace_seconds: int = Field(
        3600, ge=1, description="how late a missed run may still start (e.g. after downtime)"
    )
    extra: dict[str, str] = Field(
        default_factory=dict, description="schedules of other installed collectors, by name"
    )
    leader_lease_seconds: float = Field(
        30.0,
        ge=2,
        le=600,
        description="one scheduler leads: on SQLite a standby takes over this long after the"
        " leader's last heartbeat (at once when the leader's process on this host is gone)",
    )

    timezone: str = Field("Europe/Helsinki", description="time zone of the cron expressions")

    @field_validator("dns_email", "tls", "web", "services", "discovery")
    @classmethod
    def _valid_schedule(cls, value: str) -> str:
        parse_schedule(value)
        return value

    @field_validator("extra")
    @classmethod
    def _valid_extra(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        installed = _option_models(info.context)
        problems: list[Problem] = []
        for name, expression in value.items():
            if name in cls.model_fields:
                problems.append(((name,), f"has its own key: settings.schedules.{name}", None))
            elif name not in installed:
                known = ", ".join(installed) or "none"
                problems.append(((name,), f"no collector {name!r} is installed ({known})", None))
            else:
                try:
                    parse_schedule(expression)
                except ValueError as exc:
                    problems.append(((name,), str(exc), expression))
        if problems:
            raise invalid("Schedules", problems)
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    def for_collector(self, name: str) -> str | None:
        return self.extra.get(name) or getattr(self, name, None)


def _loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _https_url(value: str) -> str:
    """An https URL (http only to a loopback address, for a provider on this machine)."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError as exc:
        raise ValueError(f"not a URL: {exc}") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("must be an https:// URL")
    if parts.scheme == "http" and not _loopback_host(parts.hostname):
        raise ValueError("must be https:// (http:// only on a loopback address)")
    if parts.query or parts.fragment:
        raise ValueError("must have no ?query or #fragment")
    return value


WebURL = Annotated[str, AfterValidator(_https_url)]


class OIDCMapping(_Model):
    """One claim value (an Entra ID app role, a group) and the access it grants."""

    value: str = Field(
        min_length=1,
        description="a value of the claim: an app role's value (Entra ID `roles`) or a"
        " group's id (`groups`)",
    )
    claim: str | None = Field(
        None, min_length=1, description="the claim to look in; default: the provider's `claim`"
    )
    role: Literal["partner_admin", "org_staff", "viewer"] = Field(
        description="the dashboard role it grants"
    )
    organisations: tuple[str, ...] = Field(
        (),
        description="organisation slugs: exactly one for org_staff and viewer; for"
        " partner_admin those named, or none for every organisation",
    )


class OIDCSettings(_Model):
    """Sign-in through the organisation's OpenID Connect provider (docs/dashboard.md)."""

    name: str = Field(
        min_length=1, max_length=60, description="the provider as the sign-in button names it"
    )
    issuer: WebURL = Field(
        description="the issuer exactly as the provider's discovery document and ID tokens"
        " say it (Entra ID: https://login.microsoftonline.com/<tenant id>/v2.0)"
    )
    client_id: str = Field(min_length=1, description="the dashboard's client (application) id")
    client_secret_file: Path | None = Field(
        None,
        description="file holding the client secret, relative to data_dir; none: a public"
        " client (PKCE only)",
    )
    public_url: WebURL = Field(
        description="the dashboard's address as people reach it; the redirect URI to register"
        " is this followed by /login/oidc/callback (never taken from the Host header)"
    )
    scopes: tuple[str, ...] = Field(
        ("openid", "profile", "email"), description="scopes asked for; must include openid"
    )
    claim: str = Field(
        "roles",
        min_length=1,
        description="the ID-token claim the mappings look in (Entra ID app roles: roles)",
    )
    username_claim: str = Field(
        "preferred_username",
        min_length=1,
        description="the claim that names the account in the dashboard and the audit trail",
    )
    name_claim: str = Field("name", min_length=1, description="the claim with the person's name")
    timeout_seconds: float = Field(
        10.0, gt=0, le=120, description="each request to the provider (discovery, token, keys)"
    )
    mappings: tuple[OIDCMapping, ...] = Field(
        min_length=1,
        description="[[settings.dashboard.oidc.mappings]]: the first whose value the person's"
        " claim holds decides their role and organisations; no match: refused",
    )

    @field_validator("scopes")
    @classmethod
    def _openid_scope(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if "openid" not in value:
            raise ValueError("must include 'openid'")
        return value

    @property
    def redirect_uri(self) -> str:
        return self.public_url.rstrip("/") + "/login/oidc/callback"


class DashboardSettings(_Model):
    """Sign-in, sessions and the sign-in throttle of the dashboard (docs/dashboard.md), and
    the API's rate limit (docs/api.md)."""

    secret_key_file: Path | None = Field(
        None,
        description="signs session cookies; relative to data_dir; default: generated once"
        " into <data_dir>/dashboard-secret.key",
    )
    session_hours: float = Field(
        12.0, gt=0, le=720, description="a sign-in ends this long after it began, however used"
    )
    session_idle_minutes: int = Field(
        60,
        ge=1,
        le=43200,
        description="a sign-in ends after this long without a request (at most session_hours)",
    )
    secure_cookies: bool = Field(False, description="mark cookies Secure (served over HTTPS)")
    login_attempts: int = Field(
        5,
        ge=1,
        le=100,
        description="failed sign-ins per (user name, client address) per window before backoff",
    )
    login_window_seconds: int = Field(
        900, ge=10, le=86400, description="the window failures are counted in; the longest wait"
    )
    login_backoff_seconds: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="the first wait after the free failures; doubles with each further failure",
    )
    login_account_attempts: int = Field(
        100,
        ge=1,
        le=100000,
        description="failed sign-ins to one user name from all clients per account window before"
        " clients not known to the account wait too (a distributed attack)",
    )
    login_account_window_hours: float = Field(
        24.0, gt=0, le=720, description="the window account-wide failures are counted in"
    )
    known_device_days: int = Field(
        90,
        ge=1,
        le=730,
        description="a browser that signed in to an account stays known to it this long"
        " (exempt from the account-wide wait)",
    )
    api_requests_per_minute: int = Field(
        120,
        ge=1,
        le=100000,
        description="requests one API token may make in any minute (a moving window, per"
        " server process); more are refused with 429 and Retry-After",
    )
    trusted_proxies: tuple[Network, ...] = Field(
        (),
        description="reverse proxies (addresses or networks) whose X-Forwarded-For,"
        " X-Forwarded-Proto and X-Forwarded-Host are believed; none: the peer is the client",
    )
    totp_issuer: str = Field(
        "Riskiturva",
        min_length=1,
        max_length=60,
        description="the name authenticator apps show for a second factor enrolled here",
    )
    oidc: OIDCSettings | None = Field(
        None,
        description="[settings.dashboard.oidc]: sign-in through an OpenID Connect provider"
        " (local accounts stay)",
    )

    @model_validator(mode="after")
    def _idle_within_lifetime(self) -> DashboardSettings:
        if self.session_idle_minutes > self.session_hours * 60:
            raise ValueError(
                f"session_idle_minutes ({self.session_idle_minutes}) is longer than"
                f" session_hours ({self.session_hours} h)"
            )
        return self


class SMTPSettings(_Model):
    """The mail relay that sends the monthly reports (docs/reports.md)."""

    host: str = Field(
        "127.0.0.1", min_length=1, description="relay address, or a name for the resolver"
    )
    port: int = Field(587, ge=1, le=65535, description="relay port: 587 for submission")
    starttls: bool = Field(True, description="upgrade to TLS before signing in (on by default)")
    username: str | None = Field(None, description="sign-in name; none sends without signing in")
    password: SecretStr | None = Field(None, description="sign-in password (or password_file)")
    password_file: Path | None = Field(
        None, description="file holding the password; relative to data_dir; must exist"
    )
    ca_file: CACertificateFile | None = Field(
        None, description="CA certificates trusted for the relay; default: the system's"
    )
    from_address: str = Field(
        "riskiturva@localhost", description="sender of the report e-mails (From)"
    )
    timeout: float = Field(30.0, gt=0, le=600, description="seconds per SMTP operation")

    @model_validator(mode="after")
    def _one_password(self) -> SMTPSettings:
        if self.password is not None and self.password_file is not None:
            raise invalid(
                "SMTPSettings", [(("password_file",), "give password or password_file", None)]
            )
        return self


class ReportSettings(_Model):
    """The monthly management reports and their delivery (docs/reports.md)."""

    schedule: str = Field(
        "0 6 1 * *", description="when the monthly job runs (cron): reports the previous month"
    )
    language: Literal["fi", "sv", "en"] = Field("fi", description="language of delivered reports")
    smtp: SMTPSettings = SMTPSettings()

    @field_validator("schedule")
    @classmethod
    def _valid_schedule(cls, value: str) -> str:
        parse_schedule(value)
        return value


class DiscoverySource(StrEnum):
    """The discovery sources that can be turned on and off (docs/discovery.md)."""

    DNS_RECORDS = "dns_records"  # NS, MX, SRV, CNAME, SPF names, TXT verification records
    NSEC = "nsec"  # walking an NSEC-signed zone
    AXFR = "axfr"  # the records of an open zone transfer
    WORDLIST = "wordlist"  # common and Finnish municipal labels, with wildcard detection
    PARTNER_LABELS = "partner_labels"  # labels of the partner's other organisations
    TLS_SAN = "tls_san"  # names in certificates the TLS collector saw
    WEB_LINKS = "web_links"  # names in redirects and links the web collector saw
    CT = "ct"  # Certificate Transparency search (sends the domains to the CT service)
    PTR = "ptr"  # reverse DNS of the declared networks
    PING_SWEEP = "ping_sweep"  # nmap -sn of the declared networks (sends probes to them)


# Off unless listed: CT sends the domains to a third party; a sweep probes every address.
DEFAULT_DISCOVERY_SOURCES = tuple(
    s for s in DiscoverySource if s not in (DiscoverySource.CT, DiscoverySource.PING_SWEEP)
)


class CertificateTransparencySettings(_Model):
    """`[settings.discovery.ct]`: the Certificate Transparency search service."""

    source: Literal["crtsh"] = Field("crtsh", description="the service's interface")
    url: str = Field("https://crt.sh/", description="its address (crt.sh's JSON interface)")
    timeout: float = Field(60.0, gt=0, le=600, description="seconds per search")
    min_interval_seconds: float = Field(
        5.0, ge=0, le=3600, description="pause between two searches (the service is shared)"
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"url must be http(s)://host/...: {value!r}")
        return value


def _guessed_label(value: str) -> str:
    try:
        label = normalise_name(value)
    except ValueError:
        label = ""
    if not label or not all(_is_valid_label(x) for x in label.split(".")):
        raise ValueError(f"not a DNS label (such as 'ajanvaraus' or 'www.intra'): {value!r}")
    return label


class DiscoverySettings(_Model):
    """`[settings.discovery]`: the asset discovery stage (docs/discovery.md)."""

    sources: tuple[DiscoverySource, ...] = Field(
        DEFAULT_DISCOVERY_SOURCES,
        description="sources to use; ct and ping_sweep are off unless listed",
    )
    extra_labels: tuple[Annotated[str, AfterValidator(_guessed_label)], ...] = Field(
        (), description="labels tried besides the built-in word list"
    )
    gone_after_runs: int = Field(
        3, ge=1, le=100, description="NXDOMAIN this many runs in a row: retirement proposed"
    )
    ptr_max_addresses: int = Field(
        1024,
        ge=0,
        le=65536,
        description="reverse lookups per declared network at most (larger: skipped)",
    )
    sweep_max_addresses: int = Field(
        4096,
        ge=0,
        le=65536,
        description="addresses per declared network the ping sweep covers at most",
    )
    walk_max_names: int = Field(
        10000, ge=1, le=1_000_000, description="names one NSEC walk or AXFR reads"
    )
    dns_in_flight: int = Field(64, ge=1, le=1000, description="DNS queries in flight at once")
    ct: CertificateTransparencySettings = CertificateTransparencySettings()


# endoflife.date products fetched by default: server software, CMSs and operating systems
# that the collectors can recognise in banners and headers.
DEFAULT_EOL_PRODUCTS: tuple[str, ...] = (
    "apache-http-server", "nginx", "iis", "php", "openssl", "tomcat", "exim", "postfix",
    "proftpd", "mysql", "mariadb", "postgresql", "redis", "elasticsearch", "mongodb",
    "wordpress", "drupal", "joomla", "debian", "ubuntu", "rhel", "centos", "windows-server",
)  # fmt: skip


class IntelSettings(_Model):
    """Vulnerability intelligence: where the feeds come from and how old they may be."""

    max_age_days: int = Field(
        14,
        ge=1,
        le=365,
        description="older data is refused: the scan records 'vulnerability data out of date'",
    )
    epss_threshold: float = Field(
        0.1, gt=0, le=1, description="EPSS score from which a CVE counts as likely exploited"
    )
    kev_url: str = Field(
        "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json",
        description="CISA KEV catalogue (JSON)",
    )
    nvd_url: str = Field(
        "https://services.nvd.nist.gov/rest/json/cves/2.0", description="NVD CVE API 2.0"
    )
    nvd_api_key_file: Path | None = Field(
        None, description="file holding an NVD API key (faster paging); relative to data_dir"
    )
    nvd_page_size: int = Field(2000, ge=1, le=2000, description="CVEs per NVD request")
    nvd_request_delay: float = Field(
        6.0, ge=0, description="seconds between NVD requests (NVD asks 6 s without a key)"
    )
    epss_url: str = Field(
        "https://epss.cyentia.com/epss_scores-current.csv.gz",
        description="FIRST EPSS daily scores (CSV, gzip)",
    )
    eol_url: str = Field(
        "https://endoflife.date/api/v1/products/{product}",
        description="endoflife.date API v1 product URL ({product} is replaced)",
    )
    eol_products: tuple[str, ...] = Field(
        DEFAULT_EOL_PRODUCTS, description="endoflife.date products to fetch"
    )
    schedule: str = Field("20 1 * * *", description="when `intel update` runs (cron): daily")
    timeout: float = Field(60.0, gt=0, description="seconds per feed request")

    @field_validator("kev_url", "nvd_url", "epss_url", "eol_url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL")
        return value

    @field_validator("schedule")
    @classmethod
    def _valid_schedule(cls, value: str) -> str:
        parse_schedule(value)
        return value


class QueueSettings(_Model):
    """Who scans: this process (the default), or `riskiturva worker` processes that take the
    tasks from a Dramatiq queue on Redis (docs/deployment.md). Workers need PostgreSQL."""

    runner: Literal["in_process", "workers"] = Field(
        "in_process",
        description="in_process: each scan runs its tasks itself; workers: `scan` and the"
        " scheduler only enqueue, `riskiturva worker` processes scan and save",
    )
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        description="the Redis the queue lives on: redis://HOST:PORT/DB (rediss:// for TLS)",
    )
    queue_name: str = Field(
        "riskiturva-scan", pattern=r"^[A-Za-z0-9_.-]{1,100}$", description="the queue's name"
    )
    workers: int = Field(
        1,
        ge=1,
        le=1024,
        description="`riskiturva worker` processes on this queue, every machine's together:"
        " each keeps to its share of [settings.politeness], so that together they hold it",
    )
    task_time_limit_seconds: float = Field(
        3600.0,
        gt=0,
        le=86400,
        description="a task running longer is stopped and retried",
    )
    visibility_timeout_seconds: float = Field(
        7200.0,
        gt=0,
        le=172800,
        description="a worker silent this long is taken for dead and its task given to"
        " another; longer than task_time_limit_seconds",
    )
    requeue_checks_per_million: int = Field(
        10000,
        ge=1,
        le=1000000,
        description="share of queue commands (per million) that also look for dead workers'"
        " tasks to give back to the queue",
    )
    max_retries: int = Field(
        5,
        ge=0,
        le=100,
        description="a task that outlasts its time limit or fails to save is tried this many"
        " more times, then saved as failed (its organisation resolves nothing in that run)",
    )
    min_backoff_seconds: float = Field(
        15.0, gt=0, le=3600, description="first wait before a retry (then doubling)"
    )
    max_backoff_seconds: float = Field(
        900.0, gt=0, le=86400, description="longest wait between retries"
    )

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if urlsplit(value).scheme not in ("redis", "rediss", "unix"):
            raise ValueError("not a Redis URL such as redis://127.0.0.1:6379/0")
        return value

    @model_validator(mode="after")
    def _limits_in_order(self) -> QueueSettings:
        problems: list[Problem] = []
        if self.visibility_timeout_seconds <= self.task_time_limit_seconds:
            problems.append(
                (
                    ("visibility_timeout_seconds",),
                    "must be longer than task_time_limit_seconds"
                    f" ({self.task_time_limit_seconds:g}): a worker still scanning would be"
                    " taken for dead",
                    None,
                )
            )
        if self.max_backoff_seconds < self.min_backoff_seconds:
            problems.append((("max_backoff_seconds",), "is shorter than min_backoff_seconds", None))
        if problems:
            raise invalid("QueueSettings", problems)
        return self


class RetentionSettings(_Model):
    """How long run history is kept (docs/operations.md). Findings and their events are
    never deleted."""

    run_history_days: int = Field(
        400, ge=30, description="scan runs and their target errors older than this are pruned"
    )
    prune_schedule: str = Field("20 4 * * 0", description="when the prune job runs (cron)")
    vacuum_schedule: str = Field(
        "40 4 * * 0", description="when SQLite's file is compacted (VACUUM; not on PostgreSQL)"
    )

    @field_validator("prune_schedule", "vacuum_schedule")
    @classmethod
    def _valid_schedule(cls, value: str) -> str:
        parse_schedule(value)
        return value


def _option_models(context: Any) -> Mapping[str, type[CollectorOptions]]:
    """The options model of each collector: given in the validation context, else the
    installed collectors' (the `riskiturva.collectors` entry points)."""
    if isinstance(context, Mapping) and "collectors" in context:
        given: Mapping[str, type[CollectorOptions]] = context["collectors"]
        return given
    from riskiturva.collector import collector_classes

    return {name: cls.options_model for name, cls in collector_classes().items()}


@functools.cache
def _options_table(models: tuple[tuple[str, type[CollectorOptions]], ...]) -> type[_Model]:
    """A model of `[settings.collectors]`: one optional table per installed collector."""
    fields: Any = {name: (model, Field(default_factory=model)) for name, model in models}
    return create_model("CollectorOptionsTable", __base__=_Model, **fields)


def _json_value(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


class Settings(_Model):
    data_dir: Annotated[Path, AfterValidator(_data_dir)] = Field(
        Path("data"), description="database, secrets, reports and lab state (a folder)"
    )
    database_url: str = Field(
        "",
        description="SQLAlchemy URL: sqlite:///PATH or postgresql+psycopg://USER@HOST/DB;"
        " empty means SQLite in data_dir",
    )
    user_agent: str = Field(
        f"Riskiturva/{__version__} (security posture scanner; +https://riskiturva.example/scanner)",
        min_length=1,
        description="HTTP User-Agent of every request: names Riskiturva to the scanned site",
    )
    write_retry_seconds: float = Field(
        120.0,
        ge=0,
        le=3600,
        description="how long a write that meets a lock or a restarting database server is"
        " retried before the run is recorded as failed",
    )
    resolver: ResolverSettings = ResolverSettings()
    timeouts: TimeoutSettings = TimeoutSettings()
    concurrency: ConcurrencySettings = ConcurrencySettings()
    politeness: PolitenessSettings = PolitenessSettings()
    scope: ScopeLimits = ScopeLimits()
    tls: TLSSettings = TLSSettings()
    dnssec: DNSSECSettings = DNSSECSettings()
    schedules: Schedules = Schedules()
    dashboard: DashboardSettings = DashboardSettings()
    reports: ReportSettings = ReportSettings()
    discovery: DiscoverySettings = DiscoverySettings()
    intel: IntelSettings = IntelSettings()
    alerts: AlertSettings = AlertSettings()
    retention: RetentionSettings = RetentionSettings()
    queue: QueueSettings = QueueSettings()
    collectors: Mapping[str, CollectorOptions] = Field(
        default_factory=dict,
        description="`[settings.collectors.<name>]`: each installed collector's options"
        " (below); an unknown collector or key is an error",
    )

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        if value:
            check_database_url(value)
        return value

    @field_validator("collectors", mode="plain")
    @classmethod
    def _collector_options(cls, value: Any, info: ValidationInfo) -> dict[str, CollectorOptions]:
        if not isinstance(value, Mapping):
            raise ValueError("must be a table of [settings.collectors.<name>] tables")
        models = _option_models(info.context)
        table = _options_table(tuple(models.items()))
        # TOML's types exactly, whoever calls: a string is never read as a number.
        validated = table.model_validate_json(
            json.dumps(value, default=_json_value), strict=True, context=info.context
        )
        return {name: getattr(validated, name) for name in models}

    @model_validator(mode="after")
    def _files_in_data_dir(self) -> Settings:
        problems: list[Problem] = []
        if self.queue.runner == "workers" and not self.effective_database_url.startswith(
            "postgresql"
        ):
            problems.append(
                (
                    ("queue", "runner"),
                    "workers share one database: set database_url to PostgreSQL"
                    " (postgresql+psycopg://…); SQLite is for one machine",
                    None,
                )
            )
        smtp = self.reports.smtp
        if smtp.password_file is not None:
            path = self.data_dir / smtp.password_file
            if not path.is_file():
                problems.append(
                    (("reports", "smtp", "password_file"), f"no such file: {path}", None)
                )
        key_file = self.dashboard.secret_key_file
        if key_file is not None:
            path = self.data_dir / key_file
            location: Location = ("dashboard", "secret_key_file")
            if path.exists() and not path.is_file():
                problems.append((location, f"not a file: {path}", None))
            elif path.is_file() and len(path.read_bytes().strip()) < 32:
                problems.append(
                    (location, f"the key in {path} is shorter than 32 characters", None)
                )
        oidc = self.dashboard.oidc
        if oidc is not None and oidc.client_secret_file is not None:
            path = self.data_dir / oidc.client_secret_file
            if not path.is_file() or not path.read_bytes().strip():
                problems.append(
                    (
                        ("dashboard", "oidc", "client_secret_file"),
                        f"no such file, or it is empty: {path}",
                        None,
                    )
                )
        if problems:
            raise invalid("Settings", problems)
        return self

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'riskiturva.db'}"

    @property
    def shown_database_url(self) -> str:
        """The database URL with any password hidden, for messages."""
        return hidden_password(self.effective_database_url)


def check_database_url(url: str) -> None:
    """ValueError unless `url` names a supported database whose driver is installed."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError(
            "not a database URL such as sqlite:///PATH or postgresql+psycopg://…"
        ) from None
    if parsed.get_backend_name() not in SUPPORTED_DATABASES:
        raise ValueError(
            f"unsupported database {parsed.get_backend_name()!r}: use "
            + " or ".join(SUPPORTED_DATABASES)
        )
    try:
        dialect = parsed.get_dialect()
    except NoSuchModuleError:
        raise ValueError(f"unknown driver {parsed.get_driver_name()!r}") from None
    if getattr(dialect, "is_async", False):
        raise ValueError(f"the driver {parsed.get_driver_name()!r} is asynchronous: use psycopg")
    module = {"pysqlite": "sqlite3"}.get(dialect.driver, dialect.driver)
    if importlib.util.find_spec(module) is None:
        raise ValueError(
            f"the driver {module!r} is not installed (PostgreSQL: pip install -e '.[postgres]')"
        )


class Config(_Model):
    settings: Settings = Settings()
    partners: tuple[Partner, ...] = Field((), description="[[partners]] tables")
    organisations: tuple[Organisation, ...] = Field(
        min_length=1, description="[[organisations]] tables: at least one"
    )
    shared_scope: tuple[SharedScope, ...] = Field(
        (), description="[[shared_scope]] tables: scope that organisations share on purpose"
    )
    _source: Path | None = PrivateAttr(None)

    @property
    def source(self) -> Path | None:
        """The file this configuration was read from."""
        return self._source

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        found = [
            *_organisation_problems(self),
            *_partner_problems(self),
            *_shared_scope_problems(self),
            *_wide_network_problems(self),
            *_overlap_problems(self),
            *_owner_problems(self),
            *_channel_problems(self),
            *_oidc_problems(self),
        ]
        if found:
            raise invalid("Config", found)
        return self

    def organisation(self, slug: str) -> Organisation:
        for organisation in self.organisations:
            if organisation.slug == slug:
                return organisation
        raise KeyError(slug)

    def partner_of(self, slug: str) -> Partner | None:
        """The partner that runs the organisation, if any (one partner each)."""
        return next((p for p in self.partners if slug in p.organisations), None)


def _oidc_problems(config: Config) -> Iterator[Problem]:
    oidc = config.settings.dashboard.oidc
    if oidc is None:
        return
    known = {o.slug for o in config.organisations}
    for index, mapping in enumerate(oidc.mappings):
        location = ("settings", "dashboard", "oidc", "mappings", index, "organisations")
        unknown = [slug for slug in mapping.organisations if slug not in known]
        if unknown:
            yield location, f"unknown organisation(s): {', '.join(unknown)}", None
        elif mapping.role != "partner_admin" and len(mapping.organisations) != 1:
            yield location, f"a {mapping.role} mapping names exactly one organisation", None


def _organisation_problems(config: Config) -> Iterator[Problem]:
    seen: set[str] = set()
    for index, organisation in enumerate(config.organisations):
        if organisation.slug in seen:
            yield ("organisations", index, "slug"), "duplicate slug", organisation.slug
        seen.add(organisation.slug)


def _partner_problems(config: Config) -> Iterator[Problem]:
    known = {o.slug for o in config.organisations}
    slugs: set[str] = set()
    member_of: dict[str, str] = {}
    for index, partner in enumerate(config.partners):
        if partner.slug in slugs:
            yield ("partners", index, "slug"), "duplicate partner slug", partner.slug
        slugs.add(partner.slug)
        listed: set[str] = set()
        for member_index, slug in enumerate(partner.organisations):
            location = ("partners", index, "organisations", member_index)
            if slug not in known:
                yield location, "no organisation has this slug", slug
            elif slug in listed:
                yield location, "listed twice", slug
            elif slug in member_of and member_of[slug] != partner.slug:
                message = f"already run by partner {member_of[slug]!r}: one partner each"
                yield location, message, slug
            listed.add(slug)
            member_of.setdefault(slug, partner.slug)


def _channel_problems(config: Config) -> Iterator[Problem]:
    """Every channel an organisation or partner names is declared in settings.alerts."""
    declared = {c.name for c in config.settings.alerts.channels}
    tables: list[tuple[str, int, OrganisationAlerts | PartnerAlerts]] = [
        ("organisations", i, o.alerts) for i, o in enumerate(config.organisations)
    ]
    tables += [("partners", i, p.alerts) for i, p in enumerate(config.partners)]
    for kind, index, alerts in tables:
        for position, name in enumerate(alerts.channels):
            if name not in declared:
                location = (kind, index, "alerts", "channels", position)
                yield location, "no [[settings.alerts.channels]] has this name", name


def _shared_scope_problems(config: Config) -> Iterator[Problem]:
    scopes = {o.slug: o.scope for o in config.organisations}
    for index, shared in enumerate(config.shared_scope):
        for member_index, slug in enumerate(shared.organisations):
            if slug not in scopes:
                location = ("shared_scope", index, "organisations", member_index)
                yield location, "no organisation has this slug", slug
        members = [s for s in dict.fromkeys(shared.organisations) if s in scopes]
        for domain_index, domain in enumerate(shared.domains):
            outside = [s for s in members if not scopes[s].covers_name(domain)]
            if outside:
                location = ("shared_scope", index, "domains", domain_index)
                yield location, f"not in the scope of {', '.join(outside)}", domain
        for network_index, network in enumerate(shared.networks):
            outside = [s for s in members if not scopes[s].covers_network(network)]
            if outside:
                location = ("shared_scope", index, "networks", network_index)
                yield location, f"not in the scope of {', '.join(outside)}", str(network)


def _wide_network_problems(config: Config) -> Iterator[Problem]:
    limits = config.settings.scope
    for index, organisation in enumerate(config.organisations):
        for network_index, network in enumerate(organisation.scope.networks):
            location = ("organisations", index, "scope", "networks", network_index)
            widest = limits.widest(network.version)
            if network.prefixlen == 0:
                message = "the whole address space is nobody's to authorise"
                yield location, message, str(network)
            elif network.prefixlen < widest and not organisation.scope.allow_wide_networks:
                field = f"widest_ipv{network.version}_network"
                message = (
                    f"wider than /{widest} ({network.num_addresses:,} addresses; limit:"
                    f" settings.scope.{field}); if the owner authorised every address, set"
                    " allow_wide_networks = true in this scope"
                )
                yield location, message, str(network)


def _overlap_problems(config: Config) -> Iterator[Problem]:
    """Two organisations may declare the same domain or network only if it is shared on
    purpose: otherwise one tenant's staff would see findings about another's asset."""
    organisations = config.organisations
    for later_index, later in enumerate(organisations):
        for earlier in organisations[:later_index]:
            if earlier.slug == later.slug:
                continue
            for domain_index, domain in enumerate(later.scope.domains):
                for other in earlier.scope.domains:
                    if not (name_within(domain, other) or name_within(other, domain)):
                        continue
                    narrower = domain if name_within(domain, other) else other
                    if any(
                        s.shares(earlier.slug, later.slug)
                        and any(name_within(narrower, d) for d in s.domains)
                        for s in config.shared_scope
                    ):
                        continue
                    location = ("organisations", later_index, "scope", "domains", domain_index)
                    yield location, _overlap_message(earlier.slug, other), domain
            for network_index, network in enumerate(later.scope.networks):
                for other_network in earlier.scope.networks:
                    # Two CIDR networks overlap only when one holds the other.
                    if network_within(network, other_network):
                        inner = network
                    elif network_within(other_network, network):
                        inner = other_network
                    else:
                        continue
                    if any(
                        s.shares(earlier.slug, later.slug)
                        and any(network_within(inner, n) for n in s.networks)
                        for s in config.shared_scope
                    ):
                        continue
                    location = ("organisations", later_index, "scope", "networks", network_index)
                    yield location, _overlap_message(earlier.slug, str(other_network)), str(network)


def _owner_problems(config: Config) -> Iterator[Problem]:
    """An owner with the role partner needs a partner that runs the organisation."""
    for index, organisation in enumerate(config.organisations):
        if config.partner_of(organisation.slug) is not None:
            continue
        message = "role partner, but no partner runs this organisation"
        for key, owner in organisation.owners.items():
            if owner.role is OwnerRole.PARTNER:
                yield ("organisations", index, "owners", key, "role"), message, owner.role.value
        for asset_index, asset in enumerate(organisation.assets):
            if asset.owner is not None and asset.owner.role is OwnerRole.PARTNER:
                location = ("organisations", index, "assets", asset_index, "owner", "role")
                yield location, message, asset.owner.role.value


def _overlap_message(slug: str, theirs: str) -> str:
    return (
        f"overlaps the scope of organisation {slug!r} ({theirs}): one tenant would see"
        " findings about another's asset; remove it, or declare it in [[shared_scope]]"
    )


def default_config_path() -> Path:
    return Path(os.environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_PATH)


def load_config(
    path: Path | str, *, collectors: Mapping[str, type[CollectorOptions]] | None = None
) -> Config:
    """Read and validate a configuration file; relative paths resolve against its folder.

    `collectors` maps collector names to their options models; by default the installed
    collectors' (a configuration may only configure collectors that exist).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(path, [ConfigProblem("", "file is not UTF-8")]) from exc
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(path, [ConfigProblem("", f"cannot read file: {reason}")]) from exc
    data = parse_toml(path, text)
    models = dict(collectors) if collectors is not None else dict(_option_models(None))
    context = {"base": path.parent.resolve(), "collectors": models}
    try:
        # Through JSON in strict mode: TOML's types exactly (no "53" for 53, no 1 for true).
        config = Config.model_validate_json(
            json.dumps(data, default=_json_value), strict=True, context=context
        )
    except ValidationError as exc:
        raise ConfigError(path, problems_of(exc, text, Config, models)) from exc
    config._source = path.resolve()
    return config
