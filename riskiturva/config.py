"""Configuration: settings and organisations from TOML, validated with pydantic.

A bad file raises `ConfigError` naming the file, the line, the field path
(`organisations[2].assets[0].criticality`) and the offending value.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from riskiturva import __version__
from riskiturva._cron import parse_schedule
from riskiturva._toml_lines import locate_line

DEFAULT_CONFIG_PATH = Path("config/riskiturva.toml")
CONFIG_ENV_VAR = "RISKITURVA_CONFIG"
LANGUAGES = ("fi", "sv", "en")


class ConfigError(Exception):
    """A configuration file could not be read or did not validate."""

    def __init__(self, path: Path, problems: list[ConfigProblem]):
        self.path = path
        self.problems = problems
        super().__init__(self.describe())

    def describe(self) -> str:
        lines = [f"{self.path}: invalid configuration"]
        for problem in self.problems:
            where = f"line {problem.line}, " if problem.line else ""
            value = f" (value: {problem.value!r})" if problem.value is not None else ""
            lines.append(f"  {where}{problem.field or '<file>'}: {problem.message}{value}")
        return "\n".join(lines)


@dataclass(frozen=True)
class ConfigProblem:
    field: str
    message: str
    value: Any = None
    line: int | None = None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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


HostName = Annotated[str, Field(min_length=1, max_length=253)]


def normalise_name(name: str) -> str:
    """Lower-case a DNS name and drop a trailing dot; IDNs become their A-label form."""
    name = name.strip().rstrip(".").lower()
    try:
        return name.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ValueError(f"not a valid domain name: {name!r}") from exc


def _is_valid_name(name: str) -> bool:
    labels = name.split(".")
    return len(labels) >= 2 and all(
        0 < len(label) <= 63
        and label.replace("-", "").replace("_", "").isalnum()
        and not label.startswith("-")
        and not label.endswith("-")
        for label in labels
    )


def name_within(name: str, domain: str) -> bool:
    """True when `name` is `domain` or one of its subdomains."""
    return name == domain or name.endswith("." + domain)


class LocalisedName(_Model):
    fi: str = Field(min_length=1, description="in Finnish")
    sv: str = Field(min_length=1, description="in Swedish")
    en: str = Field(min_length=1, description="in English")

    def get(self, language: str) -> str:
        return getattr(self, language, self.fi)


class Scope(_Model):
    """What the organisation has authorised us to scan: domains and IP networks."""

    domains: tuple[str, ...] = Field((), description="domains (and their subdomains) authorised")
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = Field(
        (), description="IP networks authorised; every address scanned must lie inside"
    )

    @field_validator("domains", mode="before")
    @classmethod
    def _normalise_domains(cls, value: Iterable[str]) -> tuple[str, ...]:
        domains = tuple(normalise_name(d) for d in value)
        for domain in domains:
            if not _is_valid_name(domain):
                raise ValueError(f"not a valid domain name: {domain!r}")
        return domains

    @field_validator("networks", mode="before")
    @classmethod
    def _parse_networks(cls, value: Iterable[str]) -> tuple[Any, ...]:
        return tuple(ipaddress.ip_network(n, strict=True) for n in value)

    def covers_name(self, name: str) -> bool:
        return any(name_within(normalise_name(name), d) for d in self.domains)

    def covers_address(self, address: str) -> bool:
        ip = ipaddress.ip_address(address)
        return any(ip in network for network in self.networks)

    def covers_network(self, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
        return any(
            network.version == n.version and network.subnet_of(n)  # type: ignore[arg-type]
            for n in self.networks
        )


class Asset(_Model):
    kind: AssetKind = Field(description="domain, mail_domain, host, ip, network or url")
    value: str = Field(min_length=1, description="the name, address, network or URL")
    criticality: Criticality = Field(Criticality.MEDIUM, description="low, medium or high")
    tags: tuple[str, ...] = Field((), description="e.g. website, e-service, email, services")
    dkim_selectors: tuple[str, ...] = Field(
        (), description="mail_domain only: DKIM selectors in use, besides the common ones"
    )

    @model_validator(mode="after")
    def _check_value(self) -> Asset:
        kind, value = self.kind, self.value
        if kind in (AssetKind.DOMAIN, AssetKind.MAIL_DOMAIN, AssetKind.HOST):
            if not _is_valid_name(normalise_name(value)):
                raise ValueError(f"{kind} value is not a valid DNS name: {value!r}")
            object.__setattr__(self, "value", normalise_name(value))
        elif kind is AssetKind.IP:
            object.__setattr__(self, "value", str(ipaddress.ip_address(value)))
        elif kind is AssetKind.NETWORK:
            object.__setattr__(self, "value", str(ipaddress.ip_network(value, strict=True)))
        elif kind is AssetKind.URL:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"url must be http(s)://host/...: {value!r}")
        if self.dkim_selectors and kind is not AssetKind.MAIL_DOMAIN:
            raise ValueError("dkim_selectors is only meaningful on a mail_domain asset")
        return self

    @property
    def host_name(self) -> str | None:
        """The DNS name this asset is about, if it has one."""
        if self.kind is AssetKind.URL:
            return normalise_name(urlsplit(self.value).hostname or "")
        if self.kind in (AssetKind.DOMAIN, AssetKind.MAIL_DOMAIN, AssetKind.HOST):
            return self.value
        return None


class Organisation(_Model):
    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", description="short stable id")
    name: LocalisedName = Field(description="names as a table: { fi = …, sv = …, en = … }")
    scope: Scope = Field(description="what the organisation has authorised to be scanned")
    assets: tuple[Asset, ...] = Field((), description="[[organisations.assets]] tables")
    report_recipients: tuple[str, ...] = Field(
        (), description="e-mail addresses that receive the monthly report"
    )

    @model_validator(mode="after")
    def _assets_within_scope(self) -> Organisation:
        for index, asset in enumerate(self.assets):
            name = asset.host_name
            if name is not None and not self.scope.covers_name(name):
                raise _ScopeError(
                    index, asset.value, "host name outside the declared scope domains"
                )
            if asset.kind is AssetKind.IP and not self.scope.covers_address(asset.value):
                raise _ScopeError(index, asset.value, "address outside the declared scope networks")
            if asset.kind is AssetKind.NETWORK and not self.scope.covers_network(
                ipaddress.ip_network(asset.value)
            ):
                raise _ScopeError(index, asset.value, "network outside the declared scope networks")
        return self


class _ScopeError(ValueError):
    """Raised inside validation so the field path can point at the offending asset."""

    def __init__(self, index: int, value: str, message: str):
        self.index, self.value = index, value
        super().__init__(message)


class Partner(_Model):
    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", description="short stable id")
    name: str = Field(min_length=1, description="the partner's name")
    organisations: tuple[str, ...] = Field((), description="slugs of the organisations it runs")


class ResolverSettings(_Model):
    """The one DNS resolver every lookup in the product goes through."""

    nameservers: tuple[str, ...] = Field(
        ("127.0.0.53",), description="addresses of the resolvers every lookup goes through"
    )
    port: int = Field(53, ge=1, le=65535, description="their port")
    timeout: float = Field(3.0, gt=0, description="seconds per query attempt")
    retries: int = Field(1, ge=0, le=10, description="further attempts after a timeout")

    @field_validator("nameservers")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one nameserver address is needed")
        return tuple(str(ipaddress.ip_address(v)) for v in value)


class TimeoutSettings(_Model):
    connect: float = Field(5.0, gt=0, description="seconds to open a connection")
    read: float = Field(10.0, gt=0, description="seconds to wait for an answer")
    host: float = Field(300.0, gt=0, description="budget for one target, all checks together")


class ConcurrencySettings(_Model):
    targets: int = Field(20, ge=1, le=1000, description="targets scanned at once per collector")
    per_host_connections: int = Field(
        5, ge=1, le=100, description="connections open at once to one host"
    )
    requests_per_second: float = Field(
        10.0, gt=0, description="politeness limit for requests to one host"
    )


class TLSSettings(_Model):
    extra_ca_files: tuple[Path, ...] = Field(
        (), description="PEM CA files trusted besides Mozilla's store (an internal CA)"
    )


class DNSSECSettings(_Model):
    trust_anchors_file: Path | None = Field(
        None, description="DS/DNSKEY records in zone-file syntax; none means the IANA root anchors"
    )


class Schedules(_Model):
    """When each collector runs: cron (minute hour day month weekday) or `@every 6h`."""

    dns_email: str = Field("15 2 * * *", description="DNS and e-mail collector: daily")
    tls: str = Field("45 2 * * *", description="TLS collector: daily")
    web: str = Field("15 3 * * *", description="web collector: daily")
    services: str = Field("30 3 * * 1", description="exposed-services collector: weekly")
    jitter_seconds: int = Field(600, ge=0, description="random delay added to each start")
    misfire_grace_seconds: int = Field(
        3600, ge=1, description="how late a missed run may still start (e.g. after downtime)"
    )
    extra: dict[str, str] = Field(default_factory=dict, description="schedules of other collectors")

    timezone: str = Field("Europe/Helsinki", description="time zone of the cron expressions")

    @field_validator("dns_email", "tls", "web", "services")
    @classmethod
    def _valid_schedule(cls, value: str) -> str:
        parse_schedule(value)
        return value

    @field_validator("extra")
    @classmethod
    def _valid_extra(cls, value: dict[str, str]) -> dict[str, str]:
        for expression in value.values():
            parse_schedule(expression)
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


class DashboardSettings(_Model):
    """Sign-in, sessions and the sign-in throttle of the dashboard (docs/dashboard.md)."""

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
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = Field(
        (),
        description="reverse proxies (addresses or networks) whose X-Forwarded-For,"
        " X-Forwarded-Proto and X-Forwarded-Host are believed; none: the peer is the client",
    )

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _parse_proxies(cls, value: Iterable[str]) -> tuple[Any, ...]:
        if isinstance(value, str):
            raise ValueError('a list of addresses or networks, e.g. ["10.0.0.5", "10.1.0.0/24"]')
        return tuple(ipaddress.ip_network(str(n), strict=True) for n in value)

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

    host: str = Field("127.0.0.1", description="relay address, or a name for the resolver")
    port: int = Field(587, ge=1, le=65535, description="relay port: 587 for submission")
    starttls: bool = Field(True, description="upgrade to TLS before signing in (on by default)")
    username: str | None = Field(None, description="sign-in name; none sends without signing in")
    password: SecretStr | None = Field(None, description="sign-in password (or password_file)")
    password_file: Path | None = Field(
        None, description="file holding the password; relative to data_dir"
    )
    ca_file: Path | None = Field(
        None, description="CA certificates trusted for the relay; default: the system's"
    )
    from_address: str = Field(
        "riskiturva@localhost", description="sender of the report e-mails (From)"
    )
    timeout: float = Field(30.0, gt=0, description="seconds per SMTP operation")


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


class Settings(_Model):
    data_dir: Path = Field(Path("data"), description="database, secrets, reports and lab state")
    database_url: str = Field(
        "", description="SQLAlchemy URL; empty means SQLite in data_dir (PostgreSQL at scale)"
    )
    user_agent: str = Field(
        f"Riskiturva/{__version__} (security posture scanner; +https://riskiturva.example/scanner)",
        description="HTTP User-Agent of every request: names Riskiturva to the scanned site",
    )
    resolver: ResolverSettings = ResolverSettings()
    timeouts: TimeoutSettings = TimeoutSettings()
    concurrency: ConcurrencySettings = ConcurrencySettings()
    tls: TLSSettings = TLSSettings()
    dnssec: DNSSECSettings = DNSSECSettings()
    schedules: Schedules = Schedules()
    dashboard: DashboardSettings = DashboardSettings()
    reports: ReportSettings = ReportSettings()
    collectors: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="options per collector, validated by the collector"
    )

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'riskiturva.db'}"


class Config(_Model):
    settings: Settings = Settings()
    partners: tuple[Partner, ...] = ()
    organisations: tuple[Organisation, ...] = ()
    source: Path | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _unique_and_linked(self) -> Config:
        seen: set[str] = set()
        for index, organisation in enumerate(self.organisations):
            if organisation.slug in seen:
                raise _FieldError(
                    f"organisations[{index}].slug", "duplicate slug", organisation.slug
                )
            seen.add(organisation.slug)
        for index, partner in enumerate(self.partners):
            for member_index, slug in enumerate(partner.organisations):
                if slug not in seen:
                    raise _FieldError(
                        f"partners[{index}].organisations[{member_index}]",
                        "no organisation has this slug",
                        slug,
                    )
        return self

    def organisation(self, slug: str) -> Organisation:
        for organisation in self.organisations:
            if organisation.slug == slug:
                return organisation
        raise KeyError(slug)


class _FieldError(ValueError):
    def __init__(self, field: str, message: str, value: Any):
        self.field, self.value = field, value
        super().__init__(message)


def default_config_path() -> Path:
    return Path(os.environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_PATH)


def load_config(path: Path | str) -> Config:
    """Read and validate a configuration file; relative paths resolve against its folder."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(path, [ConfigProblem("", f"cannot read file: {exc.strerror}")]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(path, [ConfigProblem("", "file is not UTF-8")]) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # Python 3.11 keeps the position only in the message: "(at line 7, column 3)".
        match = re.search(r"at line (\d+)", str(exc))
        line = int(match.group(1)) if match else None
        raise ConfigError(
            path, [ConfigProblem("", f"TOML syntax error: {exc}", line=line)]
        ) from exc
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(path, _problems(exc, text)) from exc
    return _resolve_paths(config, path)


def _problems(error: ValidationError, text: str) -> list[ConfigProblem]:
    problems = []
    for item in error.errors():
        location: list[str | int] = list(item["loc"])
        value = item.get("input")
        message = item["msg"].removeprefix("Value error, ")
        cause = (item.get("ctx") or {}).get("error")
        if isinstance(cause, _ScopeError):
            location += ["assets", cause.index, "value"]
            value = cause.value
        elif isinstance(cause, _FieldError):
            location = _parse_path(cause.field)
            value = cause.value
        # pydantic adds the union member or validator name to some paths: drop non-fields.
        location = [p for p in location if not (isinstance(p, str) and "[" in p)]
        field = _format_path(location)
        if isinstance(value, dict):
            value = None
        problems.append(ConfigProblem(field, message, value, locate_line(text, location)))
    return problems


def _format_path(location: list[str | int]) -> str:
    out = ""
    for part in location:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _parse_path(field: str) -> list[str | int]:
    parts: list[str | int] = []
    for piece in field.replace("]", "").split("."):
        name, *indexes = piece.split("[")
        parts.append(name)
        parts.extend(int(i) for i in indexes)
    return parts


def _resolve_paths(config: Config, path: Path) -> Config:
    base = path.parent.resolve()

    def absolute(p: Path) -> Path:
        return (p if p.is_absolute() else base / p).resolve()

    settings = config.settings
    resolved = settings.model_copy(
        update={
            "data_dir": absolute(settings.data_dir),
            "tls": TLSSettings(
                extra_ca_files=tuple(absolute(p) for p in settings.tls.extra_ca_files)
            ),
            "dnssec": DNSSECSettings(
                trust_anchors_file=absolute(settings.dnssec.trust_anchors_file)
                if settings.dnssec.trust_anchors_file
                else None
            ),
        }
    )
    return config.model_copy(update={"settings": resolved, "source": path.resolve()})


LanguageCode = Literal["fi", "sv", "en"]
