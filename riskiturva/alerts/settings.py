"""The alert tables of the configuration: rules, channels and who receives what.

`[settings.alerts]` holds the defaults of every rule, the channels (Teams, Slack-compatible
and signed JSON webhooks) and the sender's timing; `[organisations.alerts]` names an
organisation's IT contacts and channels and may override rules; `[partners.alerts]` names
the partner's security team, which receives the alerts of all its organisations (or only
the critical ones). Management (the report recipients) receives no alerts.

Secrets (webhook URLs carry their own signature; the HMAC key) come from the file or from
an environment variable named in it, are held as `SecretStr` and never shown.
"""

from __future__ import annotations

import ipaddress
import os
import re
from enum import StrEnum
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, PrivateAttr, SecretStr, field_validator, model_validator

from riskiturva._config_types import CACertificateFile, EmailAddress
from riskiturva._config_types import ConfigModel as _Model
from riskiturva._cron import parse_schedule
from riskiturva.checks import Severity

Language = Literal["fi", "sv", "en"]
_NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# --- rules -----------------------------------------------------------------------------


class FindingRule(_Model):
    """A finding opened, reopened or resolved, at or above a severity."""

    enabled: bool = Field(True, description="whether the rule raises alerts")
    min_severity: Severity = Field(
        Severity.MEDIUM, description="lowest finding severity that alerts"
    )


class ResolvedRule(_Model):
    """A finding that was alerted is resolved: the loop closes (always in the digest)."""

    enabled: bool = Field(True, description="whether the rule raises alerts")


class CertificateExpiryRule(_Model):
    """A certificate expires within one of the thresholds: one alert per threshold."""

    enabled: bool = Field(True, description="whether the rule raises alerts")
    days: tuple[int, ...] = Field(
        (30, 14, 7), description="thresholds in days before expiry, one alert each"
    )

    @field_validator("days")
    @classmethod
    def _thresholds(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(d < 1 or d > 365 for d in value):
            raise ValueError("give one or more thresholds between 1 and 365 days")
        return tuple(sorted(set(value), reverse=True))


class ScoreDropRule(_Model):
    """The grade fell, or the score fell by at least `points`, since the previous day."""

    enabled: bool = Field(True, description="whether the rule raises alerts")
    points: float = Field(10.0, gt=0, le=100, description="score drop that alerts")


class NewServiceRule(_Model):
    """A port that was closed at the previous scan of a host is open now."""

    enabled: bool = Field(True, description="whether the rule raises alerts")
    severity: Severity = Field(
        Severity.HIGH, description="how urgent a new open port is (high: told at once)"
    )


class ScanFailingRule(_Model):
    """An organisation could not be scanned by a collector on this many runs in a row."""

    enabled: bool = Field(True, description="whether the rule raises alerts")
    runs: int = Field(3, ge=1, le=100, description="consecutive failed runs that alert")


class DecisionExpiringRule(_Model):
    """An accepted risk or false positive expires within `days`."""

    enabled: bool = Field(True, description="whether the rule raises alerts")
    days: int = Field(14, ge=1, le=365, description="warn this many days before expiry")


class AssetProposedRule(_Model):
    """Discovery proposed an asset for someone to accept or reject."""

    enabled: bool = Field(True, description="whether the rule raises alerts")


class Rules(_Model):
    """Every rule with its settings; defaults fit a municipality (docs/alerts.md)."""

    new_finding: FindingRule = FindingRule()
    reopened_finding: FindingRule = FindingRule()
    resolved_finding: ResolvedRule = ResolvedRule()
    certificate_expiry: CertificateExpiryRule = CertificateExpiryRule()
    score_drop: ScoreDropRule = ScoreDropRule()
    new_service: NewServiceRule = NewServiceRule()
    scan_failing: ScanFailingRule = ScanFailingRule()
    decision_expiring: DecisionExpiringRule = DecisionExpiringRule()
    asset_proposed: AssetProposedRule = AssetProposedRule()

    def overridden_by(self, overrides: Rules) -> Rules:
        """These rules with what `overrides` writes explicitly (rule by rule, key by key)."""
        update = {}
        for name in overrides.model_fields_set:
            rule = getattr(overrides, name)
            written = {key: getattr(rule, key) for key in rule.model_fields_set}
            update[name] = getattr(self, name).model_copy(update=written)
        return self.model_copy(update=update)


# --- recipients ------------------------------------------------------------------------


class Contact(_Model):
    """A person or mailbox that receives alerts by e-mail."""

    email: EmailAddress = Field(description="the address (no display name)")
    language: Language = Field("fi", description="language of the alerts: fi, sv or en")


class OrganisationAlerts(_Model):
    """Who hears of an organisation's alerts, and its own rule settings."""

    contacts: tuple[Contact, ...] = Field(
        (), description="its IT contacts: { email = …, language = … } (all its alerts)"
    )
    channels: tuple[str, ...] = Field(
        (), description="names of `[[settings.alerts.channels]]` that receive all its alerts"
    )
    rules: Rules = Field(
        Rules(),
        description="overrides of `[settings.alerts.rules]`, key by key, for this organisation",
        json_schema_extra={"same_as": "settings.alerts.rules"},
    )


class PartnerAlerts(_Model):
    """The partner's security team: alerts of every organisation the partner runs."""

    contacts: tuple[Contact, ...] = Field((), description="its security team's addresses")
    channels: tuple[str, ...] = Field((), description="names of channels of the team")
    receives: Literal["all", "critical"] = Field(
        "all", description="'all' alerts of its organisations, or only 'critical' ones"
    )


# --- channels --------------------------------------------------------------------------


class ChannelKind(StrEnum):
    TEAMS = "teams"  # a Microsoft Teams Workflows webhook: an Adaptive Card
    SLACK = "slack"  # a Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat)
    WEBHOOK = "webhook"  # JSON (docs/alert-webhook.schema.json) signed with HMAC-SHA256


def _secret_from(value: SecretStr | None, env: str | None, what: str) -> SecretStr | None:
    if value is not None and env is not None:
        raise ValueError(f"give {what} or {what}_env, not both")
    if env is not None:
        return SecretStr(os.environ[env])
    return value


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("the URL must be https://host/…")
    if parts.scheme == "http":
        try:
            loopback = ipaddress.ip_address(parts.hostname).is_loopback
        except ValueError:
            loopback = parts.hostname == "localhost"
        if not loopback:
            raise ValueError("the URL must use https (http only for a loopback address)")


class Channel(_Model):
    """A chat channel or ticketing system that receives alerts over HTTPS."""

    name: str = Field(pattern=_NAME, description="short id, named by organisations and partners")
    kind: ChannelKind = Field(description="teams, slack or webhook")
    url: SecretStr | None = Field(None, description="the webhook URL (a secret: it authorises)")
    url_env: str | None = Field(None, description="environment variable holding the URL instead")
    secret: SecretStr | None = Field(
        None, description="webhook only: the HMAC-SHA256 key (X-Riskiturva-Signature)"
    )
    secret_env: str | None = Field(None, description="environment variable holding the key")
    language: Language = Field("fi", description="language of the messages: fi, sv or en")
    digest: bool = Field(
        True, description="also the daily digest of non-urgent alerts (false: urgent only)"
    )
    ca_file: CACertificateFile | None = Field(
        None, description="CA certificates trusted for the receiver; default: the system's"
    )
    timeout: float = Field(15.0, gt=0, le=300, description="seconds per request")
    _url: SecretStr = PrivateAttr()
    _secret: SecretStr | None = PrivateAttr(None)

    @field_validator("url_env", "secret_env")
    @classmethod
    def _env_set(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not _ENV_NAME.match(value):
            raise ValueError(f"not an environment variable name: {value!r}")
        if not os.environ.get(value):
            raise ValueError(f"the environment variable {value} is not set")
        return value

    @model_validator(mode="after")
    def _resolve(self) -> Channel:
        url = _secret_from(self.url, self.url_env, "url")
        if url is None:
            raise ValueError("give the webhook's url or url_env")
        _check_url(url.get_secret_value())
        secret = _secret_from(self.secret, self.secret_env, "secret")
        if self.kind is ChannelKind.WEBHOOK and (secret is None or len(secret) < 16):
            raise ValueError("a webhook channel needs a secret (or secret_env) of 16+ characters")
        if self.kind is not ChannelKind.WEBHOOK and secret is not None:
            raise ValueError("only a webhook channel is signed: remove the secret")
        self._url, self._secret = url, secret
        return self

    @property
    def resolved_url(self) -> str:
        return self._url.get_secret_value()

    @property
    def signing_key(self) -> bytes | None:
        return self._secret.get_secret_value().encode() if self._secret else None

    @property
    def host(self) -> str:
        """The receiver's host name: all of the URL that may be shown in errors and logs."""
        return urlsplit(self.resolved_url).hostname or ""


# --- the whole table -------------------------------------------------------------------


class AlertSettings(_Model):
    """Alerts between the monthly reports (docs/alerts.md)."""

    enabled: bool = Field(True, description="record alerts at every reconcile and send them")
    dashboard_url: str = Field(
        "http://127.0.0.1:8050", description="base of the dashboard links in every alert"
    )
    immediate_from: Severity = Field(
        Severity.HIGH, description="alerts this severe or worse go out at once; others in a digest"
    )
    digest_time: str = Field(
        "07:00", description="local time (settings.schedules.timezone) of the daily digest"
    )
    sender_schedule: str = Field(
        "@every 5m",
        description="how often the scheduler's sender looks for due messages and retries"
        " (a scheduled scan's urgent alerts go out right after it)",
    )
    max_attempts: int = Field(
        20, ge=1, le=1000, description="delivery attempts before a message is marked failed"
    )
    retry_seconds: float = Field(30.0, gt=0, description="wait after the first failed attempt")
    retry_max_seconds: float = Field(
        3600.0, gt=0, description="longest wait between attempts (the backoff doubles up to it)"
    )
    lease_seconds: int = Field(
        300, ge=10, description="a message being sent is retried if not settled within this"
    )
    flap_window_hours: float = Field(
        168.0, gt=0, description="a finding reopened or resolved again within this is throttled"
    )
    items_shown: int = Field(
        30, ge=1, le=200, description="alerts listed in one e-mail or card; the rest are counted"
    )
    channels: tuple[Channel, ...] = Field(
        (), description="[[settings.alerts.channels]]: Teams, Slack and webhook receivers"
    )
    rules: Rules = Rules()

    @field_validator("dashboard_url")
    @classmethod
    def _dashboard(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("dashboard_url must be http(s)://host[:port][/path]")
        return value.rstrip("/")

    @field_validator("digest_time")
    @classmethod
    def _clock(cls, value: str) -> str:
        match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", value.strip())
        if not match:
            raise ValueError("a time of day as HH:MM, e.g. 07:00")
        return f"{int(match.group(1)):02d}:{match.group(2)}"

    @field_validator("sender_schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        parse_schedule(value)
        return value

    @model_validator(mode="after")
    def _unique_channels(self) -> AlertSettings:
        names = [c.name for c in self.channels]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"channel names must be unique: {', '.join(duplicates)}")
        if self.retry_max_seconds < self.retry_seconds:
            raise ValueError("retry_max_seconds must be at least retry_seconds")
        slow = [c.name for c in self.channels if 2 * c.timeout > self.lease_seconds]
        if slow:
            raise ValueError(
                f"lease_seconds must be at least twice a channel's timeout ({', '.join(slow)}):"
                " a message still being sent must not be taken over"
            )
        return self

    def channel(self, name: str) -> Channel | None:
        return next((c for c in self.channels if c.name == name), None)
