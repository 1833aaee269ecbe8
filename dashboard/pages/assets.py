"""Assets: the inventory with origin, state, criticality, tags and the last scan status per
collector."""

from __future__ import annotations

from typing import Any

from dash import html

from dashboard import ids
from dashboard.components import (
    PageContext,
    asset_kind_label,
    collector_label,
    not_found,
    org_header,
    section,
    simple_table,
)
from dashboard.pages import Page
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
            asset.value,
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


PAGE = Page("assets", r"/org/(?P<slug>[a-z0-9-]+)/assets", Permission.DETAILS, layout)
