"""Findings of one organisation: filters, a sortable table, and CSV or XLSX export of what
is shown (`dashboard.exports`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flask
from dash import Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate

from dashboard import exports, ids
from dashboard.components import (
    CATEGORIES,
    SEVERITIES,
    STATUSES,
    PageContext,
    Services,
    category_label,
    data_table,
    markdown_text,
    not_found,
    org_header,
    severity_label,
    status_label,
)
from dashboard.pages import Page
from dashboard.security import Permission, SecureCallbacks
from riskiturva import tables, views
from riskiturva.auth import Viewer
from riskiturva.requirements import load_profiles
from riskiturva.views import FindingRow, NotVisible

DEFAULT_STATUSES = ["open"]
_SEVERITY_ORDER = {s: i for i, s in enumerate(SEVERITIES)}


def _query(
    context: PageContext,
    slug: str,
    categories: Sequence[str] | None,
    severities: Sequence[str] | None,
    statuses: Sequence[str] | None,
    assets: Sequence[str] | None,
    requirements: Sequence[str] | None = None,
) -> tuple[list[dict[str, Any]], list[str]] | None:
    """The shown rows (worst first) and every asset with findings; None when the
    organisation is not visible."""
    with context.sessions() as session:
        try:
            views.organisation(session, context.viewer.visible, slug)
        except NotVisible:
            return None
        findings = views.findings(
            session,
            context.viewer.visible,
            registry=context.registry,
            organisations=[slug],
            statuses=statuses,
            categories=categories,
            severities=severities,
            requirements=requirements,
        )
    all_assets = sorted({f.asset for f in findings})
    shown = [f for f in findings if not assets or f.asset in assets]
    return [_row(context, f) for f in shown], all_assets


def _row(context: PageContext, finding: FindingRow) -> dict[str, Any]:
    _ = context._
    return {
        "id": finding.id,
        "title": f"[{markdown_text(context.title(finding.check_id))}](/findings/{finding.id})",
        "severity": severity_label(_, finding.severity),
        "severity_rank": _SEVERITY_ORDER.get(finding.severity, 9),
        "status": status_label(_, finding.status),
        "category": category_label(_, finding.category),
        "subject": finding.subject,
        "asset": finding.asset,
        "first_seen": finding.first_seen.strftime("%Y-%m-%d"),
        "last_seen": finding.last_seen.strftime("%Y-%m-%d"),
        "check_id": finding.check_id,
    }


def _options(_: Any, values: Sequence[str], label: Any) -> list[dict[str, str]]:
    return [{"label": label(_, v), "value": v} for v in values]


def layout(context: PageContext, slug: str) -> Any:
    _ = context._
    initial = {
        key: [v for v in context.query.get(key, ()) if v in allowed]
        for key, allowed in (
            ("category", CATEGORIES),
            ("severity", SEVERITIES),
            ("status", STATUSES),
        )
    }
    statuses = initial["status"] or DEFAULT_STATUSES
    obligations = _requirement_options(context, slug)
    known = {o["value"] for o in obligations}
    requirements = [r for r in context.query.get("requirement", ()) if r in known]
    found = _query(
        context, slug, initial["category"], initial["severity"], statuses, None, requirements
    )
    if found is None:
        return not_found(context)
    rows, all_assets = found
    with context.sessions() as session:
        header = org_header(
            context, views.organisation(session, context.viewer.visible, slug), "findings"
        )
    return html.Div(
        [
            header,
            dcc.Store(id=ids.FINDINGS_ORG, data=slug),
            html.Div(
                [
                    _filter(
                        ids.FILTER_CATEGORY,
                        _("Category"),
                        _options(_, CATEGORIES, category_label),
                        initial["category"],
                    ),
                    _filter(
                        ids.FILTER_SEVERITY,
                        _("Severity"),
                        _options(_, SEVERITIES, severity_label),
                        initial["severity"],
                    ),
                    _filter(
                        ids.FILTER_STATUS,
                        _("Status"),
                        _options(_, STATUSES, status_label),
                        statuses,
                    ),
                    _filter(
                        ids.FILTER_ASSET,
                        _("Asset"),
                        [{"label": a, "value": a} for a in all_assets],
                        [],
                    ),
                    _filter(ids.FILTER_REQUIREMENT, _("Obligation"), obligations, requirements),
                ],
                className="filters",
            ),
            html.Div(
                [
                    html.Span(_count(context, rows), id=ids.FINDINGS_COUNT, role="status"),
                    html.Div(
                        [
                            html.Button(
                                _("Export CSV"), id=ids.EXPORT, className="btn btn-secondary"
                            ),
                            html.Button(
                                _("Export XLSX"), id=ids.EXPORT_XLSX, className="btn btn-secondary"
                            ),
                            dcc.Download(id=ids.DOWNLOAD),
                        ],
                        className="downloads",
                    ),
                ],
                className="table-tools",
            ),
            table(context, rows),
        ]
    )


def _requirement_options(context: PageContext, slug: str) -> list[dict[str, str]]:
    """The requirements of the profiles that apply to the organisation (every profile's
    when the app has no configuration)."""
    profiles = load_profiles()
    configured = None
    if context.config is not None:
        configured = next((o for o in context.config.organisations if o.slug == slug), None)
    chosen = configured.requirements if configured is not None else tuple(profiles)
    return [
        {
            "label": f"{profiles[p].name_in(context.language)}: {r.title_in(context.language)}",
            "value": r.id,
        }
        for p in chosen
        for r in profiles[p].requirements
    ]


def _filter(component_id: str, label: str, options: list[Any], value: list[str]) -> html.Div:
    return html.Div(
        [
            html.Label(label, htmlFor=component_id),
            dcc.Dropdown(id=component_id, options=options, value=value, multi=True),
        ],
        className="filter",
    )


def _count(context: PageContext, rows: list[dict[str, Any]]) -> str:
    return context._("Findings shown: {count}", count=len(rows))


def table(context: PageContext, rows: list[dict[str, Any]]) -> Any:
    _ = context._
    columns = [
        ("severity", _("Severity")),
        ("title", _("Finding")),
        ("subject", _("Subject")),
        ("asset", _("Asset")),
        ("category", _("Category")),
        ("status", _("Status")),
        ("first_seen", _("First seen")),
        ("last_seen", _("Last seen")),
    ]
    return data_table(
        id=ids.FINDINGS_TABLE,
        columns=[
            {"id": key, "name": name, **({"presentation": "markdown"} if key == "title" else {})}
            for key, name in columns
        ],
        data=rows,
        sort_action="native",
        page_size=50,
        cell_selectable=True,
        style_data_conditional=[
            {"if": {"filter_query": "{severity_rank} < 2"}, "fontWeight": "bold"},
        ],
    )


def _choices(value: Any) -> list[str]:
    """A dropdown's value from the browser: a list of strings, anything else is none."""
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def register(secure: SecureCallbacks, services: Services) -> None:
    filters = [
        State(ids.FINDINGS_ORG, "data"),
        Input(ids.FILTER_CATEGORY, "value"),
        Input(ids.FILTER_SEVERITY, "value"),
        Input(ids.FILTER_STATUS, "value"),
        Input(ids.FILTER_ASSET, "value"),
        Input(ids.FILTER_REQUIREMENT, "value"),
    ]

    @secure.callback(
        Output(ids.FINDINGS_TABLE, "data"),
        Output(ids.FINDINGS_COUNT, "children"),
        *filters,
        permission=Permission.DETAILS,
        prevent_initial_call=True,
    )
    def refilter(viewer: Viewer, slug: str, *values: Any) -> Any:
        context = services.context(viewer, flask.g.language)
        found = _query(context, str(slug), *map(_choices, values))
        if found is None:
            services.refused(viewer, "organisation", slug)
        rows = [] if found is None else found[0]
        return rows, _count(context, rows)

    @secure.callback(
        Output(ids.DOWNLOAD, "data"),
        Input(ids.EXPORT, "n_clicks"),
        Input(ids.EXPORT_XLSX, "n_clicks"),
        *(State(f.component_id, f.component_property) for f in filters),
        permission=Permission.DETAILS,
        prevent_initial_call=True,
    )
    def export(viewer: Viewer, _csv: Any, _xlsx: Any, slug: str, *values: Any) -> Any:
        fmt = exports.chosen_format(ids.EXPORT, ids.EXPORT_XLSX)
        categories, severities, statuses, assets, requirements = map(_choices, values)
        filters = tables.FindingFilters(
            statuses=tuple(statuses),
            categories=tuple(categories),
            severities=tuple(severities),
            requirements=tuple(requirements),
            assets=tuple(assets),
        )
        context = services.context(viewer, flask.g.language)
        try:
            return exports.download(
                services, context, tables.Kind.FINDINGS, fmt, organisation=str(slug),
                filters=filters,
            )  # fmt: skip
        except NotVisible:
            services.refused(viewer, "organisation", slug)
            raise PreventUpdate from None


def validation_layout() -> list[Any]:
    return [
        dcc.Store(id=ids.FINDINGS_ORG),
        *(
            dcc.Dropdown(id=i)
            for i in (
                ids.FILTER_CATEGORY,
                ids.FILTER_SEVERITY,
                ids.FILTER_STATUS,
                ids.FILTER_ASSET,
                ids.FILTER_REQUIREMENT,
            )
        ),
        data_table(id=ids.FINDINGS_TABLE),
        html.Span(id=ids.FINDINGS_COUNT),
        html.Button(id=ids.EXPORT),
        html.Button(id=ids.EXPORT_XLSX),
        dcc.Download(id=ids.DOWNLOAD),
    ]


PAGE = Page("findings", r"/org/(?P<slug>[a-z0-9-]+)/findings", Permission.DETAILS, layout)
