"""The organisation overview's management section: compared with others, what to do first
and who does it, and the obligations the findings touch (each links to its findings).

Plain words from the registry's impact texts; the technical title stays for the staff.
Read through `views.organisation_management`; the configuration (owners, requirement
profiles, peer groups) comes with the app.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from dash import dcc, html

from dashboard import ids
from dashboard.components import PageContext, grade_badge, section, severity_label, simple_table
from riskiturva import views
from riskiturva.i18n import Translator
from riskiturva.owners import Responsible
from riskiturva.peers import PeerComparison


def _owner_labels(_: Translator) -> dict[str, str]:
    return {
        "own_it": _("Own IT"),
        "service_provider": _("Service provider"),
        "partner": _("Partner"),
    }


def _position_labels(_: Translator) -> dict[str, str]:
    return {
        "top": _("in the best quarter"),
        "upper": _("above the median"),
        "lower": _("below the median"),
        "bottom": _("in the weakest quarter"),
    }


def _no_peers_labels(_: Translator) -> dict[str, str]:
    return {
        "no_partner": _("No comparison with others: no shared-service partner is configured."),
        "opted_out": _("No comparison with others: this organisation does not take part."),
        "too_few": _("No comparison with others yet: fewer than five organisations take part."),
    }


def _obligation_labels(_: Translator) -> dict[str, str]:
    return {
        "met": _("No gaps found"),
        "not_met": _("Not met"),
        "not_checked": _("Not checked"),
    }


def management_section(context: PageContext, management: views.Management, slug: str) -> Any:
    _ = context._
    return section(
        _("For management"),
        _peers(context, management),
        html.H3(_("What must be done first, and by whom")),
        _plan(context, management),
        html.H3(_("Obligations the findings touch")),
        _obligations(context, management, slug),
        id=ids.MANAGEMENT,
    )


def _peers(context: PageContext, management: views.Management) -> Any:
    _ = context._
    peers: PeerComparison | None = management.peers
    if peers is None:
        reason = _no_peers_labels(_)[str(management.no_peers or "no_partner")]
        return html.P(reason, id=ids.PEERS, className="muted")
    group = peers.score.group
    return html.P(
        _(
            "Compared with the {n} organisations of {partner}: {position} (median {median},"
            " middle half {lower}–{upper}). Anonymous: no other organisation is named.",
            n=peers.count,
            partner=peers.partner_name,
            position=_position_labels(_)[str(peers.score.position)],
            median=group.median,
            lower=group.lower_quartile,
            upper=group.upper_quartile,
        ),
        id=ids.PEERS,
    )


def owner_label(context: PageContext, responsible: Responsible) -> str:
    role = _owner_labels(context._)[str(responsible.role)]
    return role if responsible.name is None else f"{responsible.name} ({role})"


def _plan(context: PageContext, management: views.Management) -> Any:
    _ = context._
    if not management.plan:
        return html.P(_("Nothing to fix."), className="muted")
    rows = []
    for item in management.plan:
        action = item.action
        check = context.registry.get(action.check_id)
        rows.append(
            [
                html.Div(
                    [
                        html.Strong(check.headline_in(context.language) if check else ""),
                        html.Div(
                            f"{severity_label(_, str(action.severity))} · "
                            f"{context.title(action.check_id)}",
                            className="muted",
                        ),
                    ]
                ),
                ", ".join(owner_label(context, o) for o in item.owners),
                [
                    context.day(action.due),
                    html.Strong(" " + _("Overdue"), className="overdue") if action.overdue else "",
                ],
                grade_badge(_, item.grade_after),
            ]
        )
    headers = [_("What can happen"), _("Who fixes it"), _("Due"), _("Grade after")]
    return html.Div(
        [
            simple_table(headers, rows, id=ids.MANAGEMENT_PLAN),
            html.P(
                _("The grade after each step assumes the steps before it are done."),
                className="muted",
            ),
        ]
    )


def _obligations(context: PageContext, management: views.Management, slug: str) -> Any:
    _ = context._
    labels = _obligation_labels(_)
    rows = []
    language = context.language
    for profile in management.obligations:
        for result in profile.results:
            status = str(result.status)
            if status not in labels:
                continue  # not applicable to this organisation's assets
            query = urlencode({"requirement": result.requirement.id, "status": "open"})
            rows.append(
                [
                    result.requirement.title_in(language),
                    f"{profile.profile.name_in(language)}, "
                    f"{result.requirement.sections_in(language)}",
                    html.Span(labels[status], className=f"obligation-{status}"),
                    dcc.Link(
                        _("Findings ({count})", count=result.findings),
                        href=f"/org/{slug}/findings?{query}",
                    )
                    if result.findings
                    else "",
                ]
            )
    if not rows:
        return html.P(
            _("No requirement profile applies to this organisation's assets."), className="muted"
        )
    return html.Div(
        [
            simple_table(
                [_("Requirement"), _("Source"), _("Status"), ""], rows, id=ids.OBLIGATIONS
            ),
            html.P(
                _(
                    "A scan sees only what is visible from the internet: “no gaps found” is not a"
                    " certificate of compliance (docs/requirements.md)."
                ),
                className="muted",
            ),
        ]
    )
