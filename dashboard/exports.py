"""Download buttons for spreadsheets: CSV (for Excel) and XLSX, built by `riskiturva.tables`.

`buttons(context, kind, slug)` is what a page shows; one callback serves the priorities
(organisation page), the exceptions register and the portfolio. The findings page has its
own (it exports what its filters show) and calls `download` too. Each export reads through
the viewer's visible organisations — another tenant's slug reads as absent and is audited
as refused — and each is audited as `<kind>.exported` with the format and the row count.
"""

from __future__ import annotations

import base64
from typing import Any

import flask
from dash import Input, Output, State, ctx, dcc, html
from dash.exceptions import PreventUpdate

from dashboard import ids
from dashboard.components import PageContext, Services
from dashboard.security import Permission, SecureCallbacks
from riskiturva import tables, views
from riskiturva.auth import Viewer
from riskiturva.store import NotVisible

# What the shared callback serves: the findings page has its own, with its filters.
SHARED_KINDS = (tables.Kind.PRIORITIES, tables.Kind.EXCEPTIONS, tables.Kind.PORTFOLIO)


def buttons(context: PageContext, kind: tables.Kind, slug: str | None = None) -> html.Div:
    """Two download buttons for `kind` (of the organisation `slug`; none: the portfolio)."""
    _ = context._
    return html.Div(
        [
            dcc.Store(id=ids.SHEET_SCOPE, data={"kind": str(kind), "organisation": slug}),
            html.Button(_("Export CSV"), id=ids.SHEET_CSV, className="btn btn-secondary"),
            html.Button(_("Export XLSX"), id=ids.SHEET_XLSX, className="btn btn-secondary"),
            dcc.Download(id=ids.SHEET_DOWNLOAD),
        ],
        className="downloads",
    )


def exported(
    services: Services,
    viewer: Viewer,
    kind: tables.Kind,
    fmt: tables.Format,
    *,
    language: str,
    organisations: list[str] | None,
    filters: tables.FindingFilters | None = None,
    via: dict[str, Any] | None = None,
) -> tables.Export:
    """The file of `kind` for the viewer's visible organisations (or those of them named),
    audited as `<kind>.exported` (filed under the one organisation named, if one); `via`:
    more detail for the audit row (the API's token)."""
    with services.sessions() as session:
        done = tables.export(
            session,
            viewer.visible,
            kind,
            fmt,
            language=language,
            now=services.clock(),
            registry=services.registry,
            organisations=organisations,
            filters=filters,
        )
    services.audit(
        viewer,
        f"{kind}.exported",
        organisation=organisations[0] if organisations and len(organisations) == 1 else None,
        detail={"rows": done.rows, "format": str(fmt), **(via or {})},
    )
    return done


def download(
    services: Services,
    context: PageContext,
    kind: tables.Kind,
    fmt: tables.Format,
    *,
    organisation: str | None,
    filters: tables.FindingFilters | None = None,
) -> dict[str, Any]:
    """The file for `dcc.Download`, audited; `NotVisible` when `organisation` is not the
    viewer's (the caller audits the refusal)."""
    if organisation is not None:
        with context.sessions() as session:
            views.organisation(session, context.viewer.visible, organisation)
    done = exported(
        services,
        context.viewer,
        kind,
        fmt,
        language=context.language,
        organisations=None if organisation is None else [organisation],
        filters=filters,
    )
    # What `dcc.send_bytes` builds: the bytes as they are (the CSV's BOM included).
    return {
        "content": base64.b64encode(done.content).decode("ascii"),
        "filename": done.filename,
        "type": done.media_type,
        "base64": True,
    }


def chosen_format(csv_button: str, xlsx_button: str) -> tables.Format:
    """Which of the two buttons was clicked."""
    if ctx.triggered_id == csv_button:
        return tables.Format.CSV
    if ctx.triggered_id == xlsx_button:
        return tables.Format.XLSX
    raise PreventUpdate


def register(secure: SecureCallbacks, services: Services) -> None:
    @secure.callback(
        Output(ids.SHEET_DOWNLOAD, "data"),
        Input(ids.SHEET_CSV, "n_clicks"),
        Input(ids.SHEET_XLSX, "n_clicks"),
        State(ids.SHEET_SCOPE, "data"),
        permission=Permission.READ,
        prevent_initial_call=True,
    )
    def export(viewer: Viewer, _csv: Any, _xlsx: Any, scope: Any) -> Any:
        fmt = chosen_format(ids.SHEET_CSV, ids.SHEET_XLSX)
        scope = scope if isinstance(scope, dict) else {}
        kind = next((k for k in SHARED_KINDS if k == scope.get("kind")), None)
        organisation = scope.get("organisation")
        if (
            kind is None
            or (organisation is not None and not isinstance(organisation, str))
            or (kind is tables.Kind.PORTFOLIO) != (organisation is None)
            or (kind is tables.Kind.PRIORITIES and not viewer.sees_details)  # names assets
        ):
            services.refused(viewer, "export", scope)
            raise PreventUpdate
        context = services.context(viewer, flask.g.language)
        try:
            return download(services, context, kind, fmt, organisation=organisation)
        except NotVisible:
            services.refused(viewer, "organisation", organisation)
            raise PreventUpdate from None


def validation_layout() -> list[Any]:
    return [
        dcc.Store(id=ids.SHEET_SCOPE),
        html.Button(id=ids.SHEET_CSV),
        html.Button(id=ids.SHEET_XLSX),
        dcc.Download(id=ids.SHEET_DOWNLOAD),
    ]
