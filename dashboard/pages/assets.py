"""Assets: the inventory with origin, state, criticality, tags and the last scan status per
collector; and a page per asset with its score, its findings and its last scan per
collector."""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from dashboard import ids
from dashboard.components import (
    PageContext,
    asset_kind_label,
    collector_label,
    grade_badge,
    not_found,
    org_header,
    row_id,
    section,
    severity_badge,
    simple_table,
    status_label,
)
from dashboard.pages import Page, findings
from dashboard.security import Permission
from riskiturva import views
from riskiturva.views import NotVisible


def _criticality(context: PageContext, value: str) -> str:
    _ = context._
    return {"low": _("Low"), "medium": _("Medium"), "high": _("High")}.get(value, value)


def state_label(context: PageContext, state: str) -> str:
    _ = context._
    return {
        "proposed": _("Proposed, waiting for a decision"),
        "active": _("In the inventory"),
        "rejected": _("Rejected"),
        "retired": _("Retired"),
    }.get(state, state)


def origin_label(context: PageContext, origin: str) -> str:
    _ = context._
    return {
        "configuration": _("Configuration"),
        "discovered": _("Found by discovery"),
        "added": _("Added by hand"),
    }.get(origin, origin)


def _scan_status(context: PageContext, status: str) -> str:
    _ = context._
    return {
        "ok": _("OK"),
        "partial": _("Partial"),
        "error": _("Error"),
        "skipped": _("Skipped"),
    }.get(status, status)


def _state_line(context: PageContext, state: views.SubjectStateView) -> html.Li:
    parts: list[Any] = [
        html.Strong(collector_label(context._, state.collector)),
        f" {state.subject}: ",
        _scan_status(context, state.last_status),
        f" · {context.when(state.last_scanned_at)}",
    ]
    if state.last_error:
        parts += [" · ", html.Code(state.last_error)]  # the scanner's own words
    return html.Li(parts)


def layout(context: PageContext, slug: str) -> Any:
    _ = context._
    with context.sessions() as session:
        try:
            org = views.organisation(session, context.viewer.visible, slug)
            found = views.assets(session, context.viewer.visible, slug)
        except NotVisible:
            return not_found(context)
    rows: list[list[Any]] = [
        [
            asset_kind_label(context._, asset.kind),
            dcc.Link(asset.value, href=f"/org/{slug}/assets/{asset.id}"),
            _criticality(context, asset.criticality),
            ", ".join(asset.tags),
            origin_label(context, asset.origin),
            state_label(context, asset.state),
            html.Ul([_state_line(context, state) for state in asset.states])
            if asset.states
            else _("Not scanned yet"),
        ]
        for asset in found
    ]
    header = org_header(context, org, "assets")
    return html.Div(
        [
            header,
            section(
                _("Assets"),
                simple_table(
                    [
                        _("Kind"),
                        _("Asset"),
                        _("Criticality"),
                        _("Tags"),
                        _("Origin"),
                        _("State"),
                        _("Last scans"),
                    ],
                    rows,
                    id=ids.ASSETS_TABLE,
                ),
            ),
        ]
    )


def asset_layout(context: PageContext, slug: str, asset_id: str) -> Any:
    _ = context._
    with context.sessions() as session:
        try:
            detail = views.asset_detail(
                session,
                context.viewer.visible,
                slug,
                row_id(asset_id),
                now=context.now,
                registry=context.registry,
            )
        except NotVisible:
            return not_found(context)
    asset, score = detail.asset, detail.score
    facts = simple_table(
        [_("Kind"), _("Criticality"), _("Tags"), _("Origin"), _("State")],
        [
            [
                asset_kind_label(_, asset.kind),
                _criticality(context, asset.criticality),
                ", ".join(asset.tags) or "–",
                origin_label(context, asset.origin),
                state_label(context, asset.state),
            ]
        ],
    )
    scored = (
        html.P(
            [
                grade_badge(_, str(score.grade)),
                " ",
                _("Score {score} / 100", score=context.score(score.score)),
            ],
            id=ids.ASSET_SCORE,
        )
        if score is not None
        else html.P(_("No score: nothing scored on this asset."), id=ids.ASSET_SCORE)
    )
    rows = [
        [
            severity_badge(_, str(f.severity)),
            dcc.Link(context.title(f.check_id), href=f"/findings/{f.id}"),
            f.subject,
            status_label(_, f.status),
            context.day(f.due) if f.due and f.status == "open" else "–",
        ]
        for f in detail.findings
    ]
    scans = [
        [
            collector_label(_, state.collector),
            state.subject,
            _scan_status(context, state.last_status),
            context.when(state.last_scanned_at),
            context.when(state.last_success_at),
            html.Code(state.last_error) if state.last_error else "",  # the scanner's words
        ]
        for state in asset.states
    ]
    return html.Div(
        [
            org_header(context, detail.organisation, "assets"),
            html.H2(asset.value, className="asset-name"),
            section(_("Asset"), facts, scored),
            section(
                _("Findings"),
                simple_table(
                    [_("Severity"), _("Finding"), _("Subject"), _("Status"), _("Due")],
                    rows,
                    id=ids.ASSET_FINDINGS,
                )
                if rows
                else html.P(_("No findings."), className="muted"),
                dcc.Link(
                    _("Open findings of this asset"), href=findings.link(slug, asset=asset.value)
                ),
            ),
            section(
                _("Last scans"),
                simple_table(
                    [
                        _("Collector"),
                        _("Subject"),
                        _("Status"),
                        _("Scanned"),
                        _("Last success"),
                        _("Error"),
                    ],
                    scans,
                    id=ids.ASSET_SCANS,
                )
                if scans
                else html.P(_("Not scanned yet"), className="muted"),
            ),
        ]
    )


PAGE = Page("assets", r"/org/(?P<slug>[a-z0-9-]+)/assets", Permission.DETAILS, layout)
ASSET_PAGE = Page(
    "asset",
    r"/org/(?P<slug>[a-z0-9-]+)/assets/(?P<asset_id>[0-9]{1,12})",
    Permission.DETAILS,
    asset_layout,
)
