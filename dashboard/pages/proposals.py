"""Discovered: what discovery proposes for the inventory, with its evidence, for a person to
accept (scanned from the next run on) or reject, one by one or in bulk, setting criticality
and tags; what it saw outside the declared scope (never resolved further, contacted or
scanned), saying when that lies in another organisation's scope; and the cloud services
the domains' TXT records name. Organisation staff and partner administrators decide; every
decision is audited. Names and evidence come from DNS, certificates and web pages: they are
shown as text only.
"""

from __future__ import annotations

import json
from typing import Any

import dash_bootstrap_components as dbc
import flask
from dash import Input, Output, State, dcc, html, no_update

from dashboard import ids
from dashboard.components import (
    PageContext,
    Services,
    asset_kind_label,
    choice,
    data_table,
    dropdown,
    not_found,
    org_header,
    row_id,
    section,
    simple_table,
)
from dashboard.pages import Page
from dashboard.security import Permission, SecureCallbacks
from riskiturva import views
from riskiturva.auth import Viewer
from riskiturva.config import Criticality
from riskiturva.inventory import InventoryError, accept, reject
from riskiturva.store import NotVisible

COLUMNS = ("value", "kind", "proposal", "sources", "first_seen", "last_seen")
MAX_TAGS = 20
ACCEPT, REJECT = "accept", "reject"


def source_label(context: PageContext, source: str) -> str:
    _ = context._
    return {
        "ns": _("NS record"),
        "mx": _("MX record"),
        "srv": _("SRV record"),
        "cname": _("CNAME record"),
        "spf": _("SPF record"),
        "txt_verification": _("TXT verification record"),
        "nsec": _("NSEC chain (zone walk)"),
        "axfr": _("Zone transfer (AXFR)"),
        "wordlist": _("Word list"),
        "partner_label": _("Name used at another organisation of the partner"),
        "tls_san": _("Certificate (SAN)"),
        "web_redirect": _("Web redirect"),
        "web_link": _("Link on a web page"),
        "ct": _("Certificate Transparency log"),
        "ptr": _("Reverse DNS (PTR)"),
        "ping_sweep": _("Ping sweep of a declared network"),
        "address": _("Address of a discovered name"),
    }.get(source, source)


def _proposal_label(context: PageContext, asset: views.InventoryAsset) -> str:
    _ = context._
    if asset.proposal is views.ProposalKind.RETIREMENT:
        return _("Retire: gone on {runs} runs", runs=asset.gone_runs)
    return _("New asset")


def _rows(context: PageContext, queue: views.ReviewQueue) -> list[dict[str, Any]]:
    return [
        {
            "id": a.id,
            "value": a.value,
            "kind": asset_kind_label(context._, a.kind),
            "proposal": _proposal_label(context, a),
            "sources": ", ".join(source_label(context, s) for s in a.sources),
            "first_seen": context.when(a.first_seen),
            "last_seen": context.when(a.last_seen),
        }
        for a in queue.proposals
    ]


def _evidence(context: PageContext, queue: views.ReviewQueue) -> Any:
    """Each proposal's evidence: where it was seen, when, and what was read there."""
    _ = context._
    if not queue.proposals:
        return html.P(_("Nothing waits for a decision."), className="muted")
    items = []
    for asset in queue.proposals:
        lines = []
        for e in asset.evidence:
            line: list[Any] = [
                html.Strong(source_label(context, e.source)),
                " · ",
                e.via,
                " · ",
                _("seen {first} – {last}", first=context.when(e.first_seen),
                  last=context.when(e.last_seen)),
            ]  # fmt: skip
            if e.detail:
                detail = json.dumps(e.detail, ensure_ascii=False, indent=1, default=str)
                line.append(html.Pre(detail, className="evidence"))
            lines.append(html.Li(line))
        if asset.proposal is views.ProposalKind.RETIREMENT:
            lines.append(
                html.Li(_("The name did not exist (NXDOMAIN) on {runs} consecutive discovery "
                          "runs; it is still scanned until someone decides.", runs=asset.gone_runs))
            )  # fmt: skip
        items.append(
            html.Details(
                [
                    html.Summary(
                        [html.Code(asset.value), f" ({asset_kind_label(context._, asset.kind)})"]
                    ),
                    html.Ul(lines),
                ],
                className="proposal-evidence",
            )
        )
    return html.Div(items)


def _scope_note(context: PageContext, seen: views.SightingView) -> str:
    _ = context._
    if seen.in_scope_of:
        names = ", ".join(o.name(context.language) for o in seen.in_scope_of)
        return _("In the scope of {organisations}", organisations=names)
    if seen.in_another_scope:
        return _("In another organisation's scope")
    return _("In no declared scope: extend the authorisation if it is yours")


def _outside(context: PageContext, queue: views.ReviewQueue) -> Any:
    _ = context._
    if not queue.outside_scope:
        return html.P(_("Discovery has seen nothing outside the scope."), className="muted")
    rows = [
        [
            html.Code(s.value),
            source_label(context, s.source) + " · " + s.via,
            context.when(s.last_seen),
            _scope_note(context, s),
        ]
        for s in queue.outside_scope
    ]
    return simple_table(
        [_("Name or address"), _("Seen in"), _("Last seen"), _("Scope")], rows, id=ids.OUTSIDE_SCOPE
    )


def _services(context: PageContext, queue: views.ReviewQueue) -> Any:
    _ = context._
    if not queue.services:
        return html.P(_("No verification records found."), className="muted")
    rows = [[h.domain, h.service, html.Code(h.record)] for h in queue.services]
    return simple_table([_("Domain"), _("Service"), _("Record")], rows, id=ids.SERVICE_HINTS)


def _count(context: PageContext, queue: views.ReviewQueue) -> str:
    _ = context._
    return _(
        "New assets proposed: {new} · proposed for retirement: {retire}",
        new=len(queue.new_assets),
        retire=len(queue.retirements),
    )


def _decision_controls(context: PageContext) -> list[Any]:
    _ = context._
    return [
        html.Div(
            [
                html.Div(
                    [
                        html.Label(_("Criticality"), htmlFor=ids.PROPOSAL_CRITICALITY),
                        dropdown(
                            _,
                            ids.PROPOSAL_CRITICALITY,
                            options=[
                                {"label": _("Low"), "value": Criticality.LOW.value},
                                {"label": _("Medium"), "value": Criticality.MEDIUM.value},
                                {"label": _("High"), "value": Criticality.HIGH.value},
                            ],
                            value=Criticality.MEDIUM.value,
                            clearable=False,
                        ),
                    ]
                ),
                html.Div(
                    [
                        html.Label(_("Tags (comma-separated)"), htmlFor=ids.PROPOSAL_TAGS),
                        dcc.Input(id=ids.PROPOSAL_TAGS, className="form-control", maxLength=300),
                    ]
                ),
            ],
            className="two-columns",
        ),
        choice(
            ids.PROPOSAL_DECISION,
            _("Decision"),
            [
                {"label": _("Accept the selected"), "value": ACCEPT},
                {"label": _("Reject the selected"), "value": REJECT},
            ],
            ACCEPT,
        ),
        html.Label(_("Reason (required to reject)"), htmlFor=ids.PROPOSAL_REASON),
        dcc.Textarea(id=ids.PROPOSAL_REASON, className="form-control", maxLength=2000),
        html.Button(_("Save decision"), id=ids.PROPOSAL_SUBMIT, className="btn btn-primary"),
        html.Div(id=ids.PROPOSAL_MESSAGE, role="status"),
    ]


def layout(context: PageContext, slug: str) -> Any:
    _ = context._
    with context.sessions() as session:
        try:
            queue = views.review_queue(session, context.viewer.visible, slug, scopes=context.scopes)
        except NotVisible:
            return not_found(context)
    deciding = context.viewer.can_review_assets
    review: list[Any] = [
        html.P(
            _(
                "Discovery found these in DNS, certificates, web pages and the declared "
                "networks. Nothing here is scanned until someone accepts it; a rejected "
                "asset stays out even when it is seen again."
            ),
            className="muted",
        ),
        html.P(
            _("Last discovery: {moment}", moment=context.when(queue.last_discovery)),
            className="muted",
        ),
        html.P(_count(context, queue), id=ids.PROPOSALS_COUNT),
        dcc.Store(id=ids.PROPOSALS_ORG, data=slug),
        data_table(
            id=ids.PROPOSALS_TABLE,
            columns=[{"id": c, "name": _headers(context)[c]} for c in COLUMNS],
            data=_rows(context, queue),
            row_selectable="multi" if deciding else False,
            selected_row_ids=[],
            sort_action="native",
            filter_action="native",
            filter_options={"placeholder_text": _("Filter…"), "case": "insensitive"},
            page_size=50,
        ),
    ]
    if deciding:
        review += _decision_controls(context)
    return html.Div(
        [
            org_header(context, queue.organisation, "proposals"),
            section(_("Proposals"), *review, id=ids.PROPOSALS),
            section(
                _("Evidence"),
                html.Div(_evidence(context, queue), id=ids.PROPOSAL_EVIDENCE),
            ),
            section(
                _("Seen outside the scope"),
                html.P(
                    _(
                        "Names and addresses discovery saw that lie outside the declared scope. "
                        "They were not resolved further, contacted or scanned. If one is yours, "
                        "extend the organisation's scope in writing, then in the configuration."
                    ),
                    className="muted",
                ),
                _outside(context, queue),
            ),
            section(
                _("Cloud services named in TXT records"),
                html.P(_("Shown, never scanned."), className="muted"),
                _services(context, queue),
            ),
        ]
    )


def _headers(context: PageContext) -> dict[str, str]:
    _ = context._
    return {
        "value": _("Name or address"),
        "kind": _("Kind"),
        "proposal": _("Proposal"),
        "sources": _("Seen by"),
        "first_seen": _("First seen"),
        "last_seen": _("Last seen"),
    }


def _selection(value: Any) -> list[int]:
    if not isinstance(value, list) or not value:
        raise ValueError("nothing selected")
    return [row_id(v) for v in value]


def _tags(value: Any) -> list[str]:
    tags = [t.strip() for t in str(value or "").split(",") if t.strip()]
    if len(tags) > MAX_TAGS or any(len(t) > 50 for t in tags):
        raise ValueError("too many or too long tags")
    return tags


def register(secure: SecureCallbacks, services: Services) -> None:
    @secure.callback(
        Output(ids.PROPOSAL_MESSAGE, "children"),
        Output(ids.PROPOSALS_TABLE, "data"),
        Output(ids.PROPOSALS_TABLE, "selected_row_ids"),
        Output(ids.PROPOSAL_EVIDENCE, "children"),
        Output(ids.PROPOSALS_COUNT, "children"),
        Input(ids.PROPOSAL_SUBMIT, "n_clicks"),
        State(ids.PROPOSAL_DECISION, "value"),
        State(ids.PROPOSALS_ORG, "data"),
        State(ids.PROPOSALS_TABLE, "selected_row_ids"),
        State(ids.PROPOSAL_CRITICALITY, "value"),
        State(ids.PROPOSAL_TAGS, "value"),
        State(ids.PROPOSAL_REASON, "value"),
        permission=Permission.REVIEW_ASSETS,
        prevent_initial_call=True,
    )
    def decide(
        viewer: Viewer,
        _clicks: Any,
        decision: Any,
        slug: Any,
        selected: Any,
        criticality: Any,
        tags: Any,
        reason: Any,
    ) -> Any:
        context = services.context(viewer, flask.g.language)
        _ = context._
        rejecting = decision == REJECT
        unchanged = (no_update, no_update, no_update, no_update)
        try:
            if decision not in (ACCEPT, REJECT):
                raise ValueError("no such decision")
            asset_ids = _selection(selected)
            note = str(reason or "").strip()[:2000]
            if rejecting and not note:
                raise ValueError("a rejection needs its reason")
            # All or nothing: one asset not the viewer's undoes the whole request.
            with services.sessions.begin() as session:
                if rejecting:
                    decided = reject(
                        session,
                        asset_ids,
                        visible=viewer.visible,
                        actor=viewer.username,
                        now=context.now,
                        reason=note,
                    )
                else:
                    decided = accept(
                        session,
                        asset_ids,
                        visible=viewer.visible,
                        actor=viewer.username,
                        now=context.now,
                        criticality=Criticality(str(criticality)).value,
                        tags=_tags(tags),
                        note=note or None,
                    )
                queue = views.review_queue(
                    session, viewer.visible, str(slug), scopes=services.scopes
                )
        except NotVisible:
            services.refused(viewer, "asset", selected)
            return dbc.Alert(_("Not found"), color="danger"), *unchanged
        except InventoryError as exc:
            return dbc.Alert(_("Not saved: {detail}", detail=str(exc)), color="warning"), *unchanged
        except (ValueError, TypeError):
            return (
                dbc.Alert(
                    _("Select the proposals first; a rejection needs its reason."),
                    color="warning",
                ),
                *unchanged,
            )
        message = (
            _("Rejected: {count}", count=len(decided))
            if rejecting
            else _("Accepted: {count}. They are scanned from the next run on.", count=len(decided))
        )
        return (
            dbc.Alert(message, color="success"),
            _rows(context, queue),
            [],
            _evidence(context, queue),
            _count(context, queue),
        )


def validation_layout() -> list[Any]:
    return [
        dcc.Store(id=ids.PROPOSALS_ORG),
        data_table(id=ids.PROPOSALS_TABLE),
        html.Div(id=ids.PROPOSAL_EVIDENCE),
        html.P(id=ids.PROPOSALS_COUNT),
        dcc.Dropdown(id=ids.PROPOSAL_CRITICALITY),
        dcc.Input(id=ids.PROPOSAL_TAGS),
        dcc.Textarea(id=ids.PROPOSAL_REASON),
        dbc.RadioItems(id=ids.PROPOSAL_DECISION),
        html.Button(id=ids.PROPOSAL_SUBMIT),
        html.Div(id=ids.PROPOSAL_MESSAGE),
    ]


PAGE = Page("proposals", r"/org/(?P<slug>[a-z0-9-]+)/proposals", Permission.DETAILS, layout)
