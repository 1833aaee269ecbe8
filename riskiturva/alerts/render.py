"""The words of an outbox message, in its destination's language, for each channel.

`load_message` reads a message's alerts from the store into frozen views (titles and
"why it matters" from the check registry, rule texts from the `alerts` gettext catalog);
`email_message`, `teams_payload`, `slack_payload` and `webhook_payload` turn a view into
what each channel takes. Text from scanned targets (subjects, proposed names) is data:
autoescaped in HTML, a TextRun (never markdown) in Adaptive Cards, a code span in Slack.
"""

from __future__ import annotations

import datetime as dt
import email.policy
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from riskiturva import terms
from riskiturva.alerts.models import Alert, AlertMessage, AlertNotification, MessageKind
from riskiturva.alerts.rules import Rule
from riskiturva.checks import Check, Severity, load_registry
from riskiturva.config import Config
from riskiturva.i18n import Translator, translator
from riskiturva.models import Finding, Organisation

DOMAIN = "alerts"
PAYLOAD_VERSION = 1
_SEVERITY_ORDER = [str(s) for s in Severity]  # critical first
_CARD_COLOURS = {"critical": "Attention", "high": "Warning", "medium": "Accent"}


@dataclass(frozen=True)
class AlertView:
    """One alert in words, in one language."""

    uid: str
    rule: str
    severity: str
    severity_label: str
    urgency: str
    organisation: str
    organisation_name: str
    created_at: dt.datetime
    title: str
    subject: str  # from the scanned world: always shown as plain text
    why: str
    url: str
    facts: tuple[tuple[str, str], ...]
    check_id: str | None
    finding: Mapping[str, Any] | None
    details: Mapping[str, Any]
    repeats: int


@dataclass(frozen=True)
class MessageView:
    key: str
    kind: str
    language: str
    created_at: dt.datetime
    heading: str
    summary: str
    alerts: tuple[AlertView, ...]  # in words, most severe first: all, or those shown
    shown: tuple[AlertView, ...]  # the ones listed in an e-mail or card
    total: int
    more: str | None  # "…and 970 more", counted by severity
    dashboard_url: str
    footer: str


def severity_label(_: Translator, severity: str) -> str:
    """The word the dashboard and the report use too (`riskiturva.terms`)."""
    return terms.term(terms.SEVERITY, severity, _.language)


def _local(moment: dt.datetime, timezone: str) -> dt.datetime:
    return moment.astimezone(ZoneInfo(timezone))


def _title_and_why(
    _: Translator, alert: Alert, check: Check | None, timezone: str
) -> tuple[str, str, list[tuple[str, str]]]:
    """The alert's headline, why it matters, and its facts as (label, value) rows."""
    details, language = alert.details or {}, _.language
    check_title = check.title_in(language) if check else (alert.check_id or "")
    guidance = check.guidance_in(language) if check else ""
    facts: list[tuple[str, str]] = []
    rule = alert.rule
    if rule == Rule.NEW_FINDING:
        title, why = check_title, guidance
        if details.get("new_service"):
            facts.append((_("Change"), _("This port was closed at the previous scan.")))
    elif rule == Rule.REOPENED_FINDING:
        title = _("Back again: {title}", title=check_title)
        why = _("It was fixed once and has returned. {guidance}", guidance=guidance)
    elif rule == Rule.RESOLVED_FINDING:
        title = _("Fixed: {title}", title=check_title)
        why = _("A complete scan no longer finds this problem.")
    elif rule == Rule.CERTIFICATE_EXPIRY:
        days = int(details.get("days_left", 0))
        title = _("Certificate expires within {days} days", days=details.get("threshold_days"))
        why = _(
            "When the certificate expires, browsers and mail servers refuse the service. Renew "
            "it now and automate renewal (e.g. ACME)."
        )
        not_after = dt.datetime.fromisoformat(str(details.get("not_after")))
        facts += [
            (_("Expires"), _.datetime(_local(not_after, timezone))),
            (_("Days left"), str(days)),
        ]
    elif rule == Rule.SCORE_DROP:
        before, now = details.get("grade_before"), details.get("grade")
        if before != now:
            title = _("Grade fell from {before} to {now}", before=before, now=now)
        else:
            title = _(
                "Score fell from {before} to {now}",
                before=_.number(details.get("score_before", 0), 1),
                now=_.number(details.get("score", 0), 1),
            )
        why = _(
            "Problems found since then lower the score. The dashboard shows which ones cost "
            "the most points and what to fix first."
        )
        since = dt.date.fromisoformat(str(details.get("since")))
        facts += [
            (_("Before ({day})", day=_.date(since)),
             f"{before} {_.number(details.get('score_before', 0), 1)}"),
            (_("Now"), f"{now} {_.number(details.get('score', 0), 1)}"),
        ]  # fmt: skip
    elif rule == Rule.NEW_SERVICE:
        title = check_title
        why = guidance
    elif rule == Rule.SCAN_FAILING:
        title = _(
            "Scans have failed {runs} times in a row ({collector})",
            runs=details.get("runs"),
            collector=details.get("collector"),
        )
        why = _(
            "While the scans fail, nothing new is found and nothing is marked fixed. Check "
            "that the targets are reachable from the scanner and the name servers answer."
        )
        if details.get("error"):
            facts.append((_("Last error"), str(details["error"])))
    elif rule == Rule.DECISION_EXPIRING:
        until = dt.datetime.fromisoformat(str(details.get("until")))
        title = _(
            "A decision expires on {day}: {title}",
            day=_.date(_local(until, timezone).date()),
            title=check_title,
        )
        if details.get("decision") == "accepted":
            why = _(
                "When the acceptance expires, the finding counts in the score again. Renew "
                "the decision with a justification, or fix the problem."
            )
        else:
            why = _(
                "When the false-positive marking expires, the finding counts in the score "
                "again. Check it again and renew the marking with a justification, or fix "
                "the problem."
            )
        if details.get("decided_by"):
            facts.append((_("Decided by"), str(details["decided_by"])))
    elif rule == Rule.ASSET_PROPOSED:
        title = _("Discovery proposes a new asset")
        why = _(
            "Nothing is scanned until someone accepts it. Accept it if it is yours, or reject it."
        )
        facts.append((_("Found in"), str(details.get("source", ""))))
    else:
        title, why = rule, ""
    return title, why, facts


def dashboard_path(alert: Alert, organisation: str) -> str:
    """The dashboard page about the alert: its finding, else the organisation's page."""
    if alert.finding_id is not None:
        return f"/findings/{alert.finding_id}"
    page = {
        Rule.SCORE_DROP: "/score",
        Rule.SCAN_FAILING: "/scans",
        Rule.ASSET_PROPOSED: "/assets",
    }.get(Rule(alert.rule), "")
    return f"/org/{organisation}{page}"


def alert_view(
    alert: Alert,
    organisation: Organisation,
    finding: Finding | None,
    config: Config,
    language: str,
    registry: Mapping[str, Check],
) -> AlertView:
    _ = translator(language, DOMAIN)
    timezone = config.settings.schedules.timezone
    check = registry.get(alert.check_id) if alert.check_id else None
    title, why, facts = _title_and_why(_, alert, check, timezone)
    return AlertView(
        uid=alert.uid,
        rule=alert.rule,
        severity=alert.severity,
        severity_label=severity_label(_, alert.severity),
        urgency=alert.urgency,
        organisation=organisation.slug,
        organisation_name=organisation.name(_.language),
        created_at=alert.created_at,
        title=title,
        subject=alert.subject,
        why=why,
        url=config.settings.alerts.dashboard_url + dashboard_path(alert, organisation.slug),
        facts=tuple(facts),
        check_id=alert.check_id,
        finding=None
        if finding is None
        else {
            "id": finding.id,
            "fingerprint": finding.fingerprint,
            "status": finding.status,
            "first_seen": finding.first_seen.isoformat(),
        },
        details=dict(alert.details or {}),
        repeats=alert.repeats,
    )


def message_view(
    *,
    key: str,
    kind: str,
    language: str,
    created_at: dt.datetime,
    alerts: Sequence[AlertView],
    total: int,
    hidden: Counter[str],
    organisations: Sequence[str],
    config: Config,
) -> MessageView:
    """The message around its alerts (most severe first; `hidden`: severities of those
    past `items_shown`, counted rather than listed)."""
    _ = translator(language, DOMAIN)
    settings = config.settings.alerts
    more = None
    if hidden:
        counts = ", ".join(
            f"{severity_label(_, s).lower()} {hidden[s]}" for s in _SEVERITY_ORDER if hidden[s]
        )
        more = _(
            "…and {n} more ({counts}) in the dashboard.", n=sum(hidden.values()), counts=counts
        )
    local = _local(created_at, config.settings.schedules.timezone)
    where = organisations[0] if len(organisations) == 1 else _(
        "{n} organisations", n=len(organisations)
    )  # fmt: skip
    if kind == MessageKind.TEST:
        heading = _("Riskiturva test message")
        summary = _("Alerts reach this destination. Nothing needs to be done.")
    elif kind == MessageKind.DIGEST:
        heading = _("Daily digest {day}: {where}", day=_.date(local.date()), where=where)
        summary = _("{n} alerts since the previous digest.", n=total)
    elif total == 1:
        heading = f"{alerts[0].organisation_name}: {alerts[0].title}"
        summary = _("An urgent alert from Riskiturva.")
    else:
        heading = _("{n} urgent alerts: {where}", n=total, where=where)
        summary = _("Urgent alerts from Riskiturva, most severe first.")
    footer = _(
        "Sent automatically by Riskiturva to the IT contacts and security teams named in its "
        "configuration. Message {key}.",
        key=key,
    )
    return MessageView(
        key, kind, language, created_at, heading, summary, tuple(alerts),
        tuple(alerts[: settings.items_shown]), total, more, settings.dashboard_url, footer,
    )  # fmt: skip


def load_message(
    session: Session, message: AlertMessage, config: Config, *, complete: bool = False
) -> MessageView:
    """The message's alerts from the store, in its language, most severe first: all of
    them in words when `complete` (the JSON webhook), else only the ones shown (a digest
    of 10,000 lists 30 and counts the rest, without loading them)."""
    members = list(
        session.execute(
            select(Alert.id, Alert.severity, Alert.created_at, Alert.uid, Organisation)
            .join(AlertNotification, AlertNotification.alert_id == Alert.id)
            .join(Organisation, Alert.organisation_id == Organisation.id)
            .where(AlertNotification.message_id == message.id)
        )
    )
    members.sort(key=lambda m: (_SEVERITY_ORDER.index(m[1]), m[4].slug, m[2], m[3]))
    shown = config.settings.alerts.items_shown
    wanted = [m[0] for m in (members if complete else members[:shown])]
    loaded: dict[int, Alert] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        query = (
            select(Alert)
            .where(Alert.id.in_(chunk))
            .options(selectinload(Alert.organisation), selectinload(Alert.finding))
        )
        loaded.update((a.id, a) for a in session.scalars(query))
    registry = load_registry()
    return message_view(
        key=message.key,
        kind=message.kind,
        language=message.language,
        created_at=message.created_at,
        alerts=[
            alert_view(a, a.organisation, a.finding, config, message.language, registry)
            for a in (loaded[i] for i in wanted)
        ],
        total=len(members),
        hidden=Counter(m[1] for m in members[shown:]),
        organisations=sorted({m[4].name(message.language) for m in members}),
        config=config,
    )


# --- e-mail ----------------------------------------------------------------------------


@cache
def _templates() -> Environment:
    return Environment(
        loader=PackageLoader("riskiturva.alerts", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _one_line(text: str, limit: int = 200) -> str:
    """A header-safe line: control characters and line breaks become spaces."""
    cleaned = "".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in text)
    cleaned = " ".join(cleaned.split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def plain_text(view: MessageView) -> str:
    _ = translator(view.language, DOMAIN)
    lines = [view.heading, "", view.summary, ""]
    for alert in view.shown:
        lines.append(f"[{alert.severity_label.upper()}] {alert.title}")
        lines.append(f"{alert.organisation_name} — {_one_line(alert.subject, 500)}")
        lines += [f"{label}: {_one_line(value, 500)}" for label, value in alert.facts]
        if alert.why:
            lines.append(_("Why it matters: {why}", why=alert.why))
        lines += [_("Open: {url}", url=alert.url), ""]
    if view.more:
        lines += [view.more, view.dashboard_url, ""]
    lines += ["-- ", view.footer]
    return "\n".join(lines) + "\n"


def email_message(
    view: MessageView, *, sender: str, recipient: str, now: dt.datetime
) -> EmailMessage:
    """Plain text and HTML; the Message-ID is the outbox key, the same on every attempt."""
    _ = translator(view.language, DOMAIN)
    # Python's header folding drops the space between two encoded words where it folds
    # ("(RDP) är" arrives as "(RDP)är"): lines up to RFC 5322's 998 and a subject of at
    # most 150 characters keep the Subject in one piece.
    message = EmailMessage(policy=email.policy.SMTP.clone(max_line_length=998))
    message["Subject"] = _one_line(f"[Riskiturva] {view.heading}", 150)
    message["From"] = sender
    message["To"] = recipient
    message["Date"] = format_datetime(now)
    message["Message-ID"] = f"<{view.key}@{sender.rpartition('@')[2] or 'riskiturva'}>"
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to this
    message["Content-Language"] = view.language
    message.set_content(plain_text(view))
    body = _templates().get_template("message.html").render(view=view, _=_)
    message.add_alternative(body, subtype="html")
    return message


# --- Microsoft Teams: an Adaptive Card for a Workflows webhook -------------------------


def _text_runs(*runs: tuple[str, Mapping[str, Any]]) -> dict[str, Any]:
    return {
        "type": "RichTextBlock",
        "inlines": [{"type": "TextRun", "text": text, **style} for text, style in runs],
    }


def adaptive_card(view: MessageView) -> dict[str, Any]:
    """An Adaptive Card 1.4: our own words in TextBlocks, scanned text only in TextRuns."""
    _ = translator(view.language, DOMAIN)
    body: list[dict[str, Any]] = [
        _text_runs((view.heading, {"weight": "Bolder", "size": "Medium"})),
        {"type": "TextBlock", "text": view.summary, "wrap": True, "isSubtle": True},
    ]
    for alert in view.shown:
        colour = _CARD_COLOURS.get(alert.severity, "Default")
        items: list[dict[str, Any]] = [
            _text_runs(
                (f"{alert.severity_label.upper()}  ", {"weight": "Bolder", "color": colour}),
                (alert.title, {"weight": "Bolder"}),
            ),
            _text_runs((f"{alert.organisation_name} — {alert.subject}", {"isSubtle": True})),
        ]
        items += [_text_runs((f"{label}: ", {"weight": "Bolder"}), (value, {}))
                  for label, value in alert.facts]  # fmt: skip
        if alert.why:
            items.append({"type": "TextBlock", "text": alert.why, "wrap": True, "size": "Small"})
        body.append(
            {
                "type": "Container",
                "separator": True,
                "spacing": "Medium",
                "items": items,
                "selectAction": {"type": "Action.OpenUrl", "url": alert.url},
            }
        )
    if view.more:
        body.append({"type": "TextBlock", "text": view.more, "wrap": True, "isSubtle": True})
    body.append({"type": "TextBlock", "text": view.footer, "wrap": True, "size": "Small",
                 "isSubtle": True})  # fmt: skip
    return {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.4",
        "lang": view.language,
        "body": body,
        "actions": [
            {"type": "Action.OpenUrl", "title": _("Open the dashboard"), "url": view.dashboard_url}
        ],
    }


def teams_payload(view: MessageView) -> dict[str, Any]:
    """What the Teams Workflows template "Post to a channel when a webhook request is
    received" takes: a message with the card as its attachment."""
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": adaptive_card(view),
            }
        ],
    }


# --- Slack-compatible ------------------------------------------------------------------


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_code(text: str) -> str:
    """Scanned text as a code span: no links, mentions or formatting inside."""
    return f"`{_slack_escape(_one_line(text, 300)).replace('`', 'ˋ')}`"


def slack_payload(view: MessageView) -> dict[str, Any]:
    """`text` for every Slack-compatible receiver (Mattermost, Rocket.Chat) and blocks for
    Slack itself."""
    _ = translator(view.language, DOMAIN)
    lines = [f"*{_slack_escape(view.heading)}*", _slack_escape(view.summary)]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _one_line(view.heading, 150)}},
        {"type": "context", "elements": [{"type": "plain_text", "text": view.summary}]},
    ]
    for alert in view.shown[:20]:  # Slack takes at most 50 blocks
        entry = (
            f"*{_slack_escape(alert.severity_label)}* {_slack_escape(alert.title)}\n"
            f"{_slack_escape(alert.organisation_name)} — {_slack_code(alert.subject)}\n"
            f"<{alert.url}|{_slack_escape(_('Open in the dashboard'))}>"
        )
        lines.append(entry)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": entry}})
    if len(view.shown) > 20 or view.more:
        rest = view.total - min(len(view.shown), 20)
        note = _("…and {n} more in the dashboard.", n=rest)
        lines.append(f"<{view.dashboard_url}|{_slack_escape(note)}>")
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": lines[-1]}})
    return {"text": "\n\n".join(lines), "blocks": blocks}


# --- the signed JSON webhook (docs/alert-webhook.schema.json) --------------------------


def webhook_payload(view: MessageView) -> dict[str, Any]:
    """Every alert of the message (never truncated), words and data both."""
    if len(view.alerts) != view.total:
        raise ValueError("the webhook payload needs every alert: load_message(complete=True)")
    return {
        "version": PAYLOAD_VERSION,
        "id": view.key,
        "kind": view.kind,
        "created_at": view.created_at.isoformat(),
        "language": view.language,
        "dashboard_url": view.dashboard_url,
        "total": view.total,
        "alerts": [
            {
                "id": a.uid,
                "rule": a.rule,
                "severity": a.severity,
                "urgency": a.urgency,
                "created_at": a.created_at.isoformat(),
                "organisation": {"slug": a.organisation, "name": a.organisation_name},
                "subject": a.subject,
                "check_id": a.check_id,
                "finding": dict(a.finding) if a.finding else None,
                "title": a.title,
                "why": a.why,
                "url": a.url,
                "details": dict(a.details),
                "repeats": a.repeats,
            }
            for a in view.alerts
        ],
    }
