"""Alerts: what was raised, for whom, and whether it arrived — per organisation and, for
who sees several, across them — and who hears of an organisation's alerts under which rules.

Everything comes from `riskiturva.views` (alerts, the outbox, the alert set-up); a digest
to a partner's team is listed only to readers who see all its organisations. Subjects and
errors are text from the outside world: passed as component children, which React escapes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from dash import dcc, html

from dashboard import ids
from dashboard.components import (
    PageContext,
    not_found,
    org_header,
    section,
    severity_badge,
    severity_label,
    simple_table,
)
from dashboard.i18n import LANGUAGES
from dashboard.pages import Page
from dashboard.security import Permission
from riskiturva import views
from riskiturva.i18n import Translator
from riskiturva.views import NotVisible

DAYS = 30
LIMIT = 200


def rule_label(_: Translator, rule: str) -> str:
    return {
        "new_finding": _("New finding"),
        "reopened_finding": _("Finding back again"),
        "resolved_finding": _("Finding fixed"),
        "certificate_expiry": _("Certificate expiring"),
        "score_drop": _("Grade or score fell"),
        "new_service": _("New open port"),
        "scan_failing": _("Scans failing"),
        "decision_expiring": _("Decision expiring"),
        "asset_proposed": _("Asset proposed by discovery"),
    }.get(rule, rule)


def _state_label(_: Translator, state: str) -> str:
    return {
        "waiting": _("Waiting"),
        "pending": _("Waiting"),
        "sending": _("Sending"),
        "sent": _("Delivered"),
        "failed": _("Failed"),
        "cancelled": _("Cancelled"),
    }.get(state, state)


def _kind_label(_: Translator, kind: str) -> str:
    return {
        "immediate": _("At once"),
        "digest": _("Daily digest"),
        "test": _("Test"),
    }.get(kind, kind)


def _via_label(_: Translator, via: str) -> str:
    return {
        "email": _("E-mail"),
        "teams": _("Microsoft Teams"),
        "slack": _("Slack-compatible chat"),
        "webhook": _("Signed webhook"),
    }.get(via, via)


def _destination(_: Translator, destination: str) -> str:
    """`email:it@…` / `channel:soc-teams` as the reader says it."""
    kind, _sep, name = destination.partition(":")
    return name if kind == "email" else _("channel {name}", name=name)


def _deliveries(context: PageContext, entry: views.AlertEntry) -> Any:
    _ = context._
    if not entry.deliveries:
        return html.Span(_("nobody is configured to receive it"), className="muted")
    return html.Ul(
        [
            html.Li(
                [
                    _destination(_, d.destination) + ": ",
                    html.Span(_state_label(_, d.state), className=f"delivery delivery-{d.state}"),
                ]
            )
            for d in entry.deliveries
        ],
        className="deliveries",
    )


def _alerts_table(
    context: PageContext, entries: Sequence[views.AlertEntry], *, organisations: bool
) -> Any:
    _ = context._
    if not entries:
        return html.P(
            _("No alerts in the last {days} days.", days=DAYS), className="muted", id=ids.ALERTS
        )
    headers = [_("Raised"), _("Severity"), _("Alert"), _("Subject"), _("Sent as"), _("Delivery")]
    if organisations:
        headers.insert(1, _("Organisation"))
    rows = []
    for entry in entries:
        alert: list[Any] = [
            dcc.Link(entry.title, href=entry.path),
            html.Br(),
            rule_label(_, entry.rule),
        ]
        if entry.repeats:
            alert += [
                html.Br(),
                _("happened {count} more times, not alerted again", count=entry.repeats),
            ]
        row = [
            context.when(entry.created_at),
            severity_badge(_, entry.severity),
            html.Span(alert),
            html.Code(entry.subject),
            _kind_label(_, entry.urgency),
            _deliveries(context, entry),
        ]
        if organisations:
            row.insert(1, entry.organisation.name(context.language))
        rows.append(row)
    return simple_table(headers, rows, id=ids.ALERTS)


def _outbox_table(context: PageContext, messages: Sequence[views.MessageEntry]) -> Any:
    _ = context._
    if not messages:
        return html.P(_("None."), className="muted", id=ids.ALERT_OUTBOX)
    rows = [
        [
            context.when(m.created_at),
            _destination(_, m.destination),
            _kind_label(_, m.kind),
            str(m.alerts),
            _state_label(_, m.status),
            str(m.attempts),
            context.when(m.sent_at) if m.sent_at else context.when(m.next_attempt_at),
            html.Code(m.last_error) if m.last_error else "",  # the relay's own words
        ]
        for m in messages
    ]
    return simple_table(
        [
            _("Created"),
            _("To"),
            _("Message"),
            _("Alerts"),
            _("Status"),
            _("Attempts"),
            _("Delivered or next attempt"),
            _("Last error"),
        ],
        rows,
        id=ids.ALERT_OUTBOX,
    )


def _setting_text(context: PageContext, settings: Mapping[str, Any]) -> str:
    _ = context._
    parts = []
    for key, value in settings.items():
        if key == "min_severity":
            parts.append(_("from severity {severity}", severity=severity_label(_, value).lower()))
        elif key == "severity":
            parts.append(_("severity {severity}", severity=severity_label(_, value).lower()))
        elif key == "days" and isinstance(value, list):
            parts.append(_("{days} days before", days=", ".join(str(d) for d in value)))
        elif key == "days":
            parts.append(_("{days} days before", days=value))
        elif key == "points":
            parts.append(_("a drop of {points} points", points=context.score(float(value))))
        elif key == "runs":
            parts.append(_("after {runs} failed runs in a row", runs=value))
    return "; ".join(parts)


def _setup(context: PageContext, setup: views.AlertSetup) -> list[Any]:
    _ = context._
    if not setup.enabled:
        return [html.P(_("Alerts are switched off in the configuration."), id=ids.ALERT_SETUP)]
    recipients = [
        [
            _destination(_, ("email:" if r.via == "email" else "channel:") + r.address),
            _via_label(_, r.via) + (f" ({r.host})" if r.host else ""),
            r.partner or setup.organisation.name(context.language),
            _("Only critical") if r.receives == "critical" else _("All"),
            _("At once and in the daily digest") if r.digest else _("Only what is sent at once"),
            LANGUAGES.get(r.language, r.language),
        ]
        for r in setup.recipients
    ]
    rules = [
        [
            rule_label(_, rule.rule),
            _("On") if rule.enabled else _("Off"),
            _setting_text(context, rule.settings),
            _("This organisation's own") if rule.own else _("Common default"),
        ]
        for rule in setup.rules
    ]
    return [
        html.P(
            _(
                "Alerts of severity {severity} or worse are sent at once; the rest in a daily"
                " digest at {time} ({zone}). Management receives the monthly report, not alerts.",
                severity=severity_label(_, setup.immediate_from).lower(),
                time=setup.digest_time,
                zone=setup.timezone,
            ),
            id=ids.ALERT_SETUP,
        ),
        simple_table(
            [_("Recipient"), _("Via"), _("For"), _("Receives"), _("When"), _("Language")],
            recipients,
            id=ids.ALERT_RECIPIENTS,
        )
        if recipients
        else html.P(
            _("Nobody receives this organisation's alerts: add contacts in the configuration."),
            className="alert alert-warning",
            id=ids.ALERT_RECIPIENTS,
        ),
        simple_table([_("Rule"), _("State"), _("Setting"), _("Source")], rules, id=ids.ALERT_RULES),
    ]


def layout(context: PageContext, slug: str) -> Any:
    _ = context._
    since = context.now - dt.timedelta(days=DAYS)
    visible = context.viewer.visible
    with context.sessions() as session:
        try:
            org = views.organisation(session, visible, slug)
            entries = views.alerts(
                session, visible, context.config, language=context.language,
                organisation=slug, since=since, limit=LIMIT,
            )  # fmt: skip
            # Only messages all about this organisation (a partner digest is on /alerts).
            messages = views.outbox(session, {slug}, limit=50)
            setup = views.alert_setup(session, visible, context.config, slug)
        except NotVisible:
            return not_found(context)
    return html.Div(
        [
            org_header(context, org, "alerts"),
            section(
                _("Alerts of the last {days} days", days=DAYS),
                _alerts_table(context, entries, organisations=False),
            ),
            section(_("Messages and their delivery"), _outbox_table(context, messages)),
            section(_("Who is alerted"), *_setup(context, setup)),
        ]
    )


def portfolio_layout(context: PageContext) -> Any:
    _ = context._
    since = context.now - dt.timedelta(days=DAYS)
    visible = context.viewer.visible
    with context.sessions() as session:
        entries = views.alerts(
            session, visible, context.config, language=context.language, since=since,
            limit=LIMIT,
        )  # fmt: skip
        messages = views.outbox(session, visible, limit=100)
    return html.Div(
        [
            html.H1(_("Alerts")),
            section(
                _("Alerts of the last {days} days", days=DAYS),
                _alerts_table(context, entries, organisations=True),
            ),
            section(_("Messages and their delivery"), _outbox_table(context, messages)),
        ]
    )


PAGE = Page("alerts", r"/org/(?P<slug>[a-z0-9-]+)/alerts", Permission.DETAILS, layout)
PORTFOLIO_PAGE = Page("all-alerts", r"/alerts", Permission.DETAILS, portfolio_layout)
