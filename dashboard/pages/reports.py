"""Reports: the monthly reports archived for an organisation (or for every organisation
the reader sees), their downloads, and this month's report made now.

Downloads are Flask routes, not callbacks: a browser saves the PDF as a file. Both go
through the guard (signed in, `no-store`) and read through the archive's queries with the
reader's visible organisations, so another organisation's report id or slug is *not
found* — the same 404 as one that does not exist, no bytes — and audited like every
other refusal (`access.refused`). Each download is audited (`report.downloaded`,
`report.rendered`).

The archive's queries and the renderer are imported when a page or download asks for
them: they load Matplotlib and WeasyPrint, which a dashboard that never shows a report
need not carry.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from typing import Any

import flask
from dash import html
from flask.typing import ResponseReturnValue

from dashboard.components import PageContext, Services, not_found, org_header, section
from dashboard.components import simple_table as table
from dashboard.i18n import LANGUAGES
from dashboard.pages import Page
from dashboard.security import Permission, SecureCallbacks, current_viewer
from riskiturva import views
from riskiturva.period import Month
from riskiturva.reports.models import ArchivedReport
from riskiturva.store import NotVisible
from riskiturva.views import OrganisationRef
from riskiturva.views.organisations import ref_of

PORTFOLIO_PATH = "/reports"
PORTFOLIO_MONTHS = 3
DOWNLOAD = "/reports/<int:report_id>"
RENDER_NOW = "/org/<slug>/reports/now/<language>"


def this_month(now: dt.datetime) -> Month:
    """The month a report made now covers (reports' months are UTC, like the job's)."""
    return Month.of(now.astimezone(dt.UTC).date())


def download_path(report_id: int) -> str:
    return f"/reports/{report_id}"


def render_now_path(slug: str, language: str) -> str:
    return f"/org/{slug}/reports/now/{language}"


@dataclass(frozen=True)
class _Row:
    id: int
    organisation: OrganisationRef
    month: Month
    language: str
    format: str
    size: int
    created_at: Any
    sent_at: Any
    delivery_error: str | None


def _archive(context: PageContext, organisation: str | None) -> list[_Row]:
    from riskiturva.reports.delivery import archived_reports

    with context.sessions() as session:
        return [
            _Row(
                row.id,
                ref_of(row.organisation),
                Month.parse(row.month),
                row.language,
                row.format,
                row.size,
                row.created_at,
                row.sent_at,
                row.delivery_error,
            )
            for row in archived_reports(session, context.viewer.visible, organisation=organisation)
        ]


def _size(context: PageContext, size: int) -> str:
    return context._("{kib} KiB", kib=context._.number(max(1, round(size / 1024)), 0))


def _mailed(context: PageContext, row: _Row) -> str:
    _ = context._
    if row.sent_at is not None:
        return _("Sent {when}", when=context.when(row.sent_at))
    if row.delivery_error is not None:
        return _("Sending failed")
    return _("Not sent")


def _archive_table(context: PageContext, rows: list[_Row], *, organisations: bool) -> Any:
    from riskiturva.reports.render import ReportFormat, month_label

    _ = context._
    if not rows:
        return html.P(
            _("No reports archived yet: the monthly job archives each month's report."),
            className="muted",
            id="reports-empty",
        )
    headers = [_("Month"), _("Language"), _("Size"), _("Made"), _("E-mail"), _("Report")]
    if organisations:
        headers.insert(0, _("Organisation"))
    body = []
    for row in rows:
        cells: list[Any] = [
            month_label(row.month, context.language),
            LANGUAGES.get(row.language, row.language),
            _size(context, row.size),
            context.when(row.created_at),
            _mailed(context, row),
            html.A(
                _("Download PDF") if row.format == ReportFormat.PDF else _("Download HTML"),
                href=download_path(row.id),
                id=f"report-{row.id}",
                className="report-download",
            ),
        ]
        if organisations:
            cells.insert(0, row.organisation.name(context.language))
        body.append(cells)
    return table(headers, body, id="report-archive")


def _render_now(context: PageContext, org: OrganisationRef) -> Any:
    from riskiturva.reports.render import month_label

    _ = context._
    month = this_month(context.now)
    return section(
        _("This month's report now"),
        html.P(
            _(
                "The report of {month} as things stand now. The month's own report is made"
                " and archived after the month ends.",
                month=month_label(month, context.language),
            )
        ),
        html.Div(
            [
                html.Span(_("Make it now, as a PDF:")),
                *(
                    html.A(
                        name,
                        href=render_now_path(org.slug, code),
                        lang=code,
                        className="report-now",
                        id=f"report-now-{code}",
                    )
                    for code, name in LANGUAGES.items()
                ),
            ],
            className="report-now-links",
        ),
    )


def layout(context: PageContext, slug: str) -> Any:
    _ = context._
    with context.sessions() as session:
        try:
            org = views.organisation(session, context.viewer.visible, slug)
        except NotVisible:
            return not_found(context)
    return html.Div(
        [
            org_header(context, org, "reports"),
            section(
                _("Archived monthly reports"),
                _archive_table(context, _archive(context, slug), organisations=False),
            ),
            _render_now(context, org),
        ]
    )


def portfolio_layout(context: PageContext) -> Any:
    """The latest months of every visible organisation (a partner's hundreds of
    organisations would otherwise list every month since the first); each organisation's
    own page has its whole archive."""
    _ = context._
    rows = _archive(context, None)
    if rows:
        since = rows[0].month.back(PORTFOLIO_MONTHS - 1)
        rows = [row for row in rows if row.month >= since]
    return html.Div(
        [
            html.H1(_("Reports")),
            section(
                _("Archived monthly reports"),
                html.P(
                    _(
                        "The last {months} months; each organisation's Reports tab has its"
                        " whole archive.",
                        months=PORTFOLIO_MONTHS,
                    ),
                    className="muted",
                ),
                _archive_table(context, rows, organisations=True),
            ),
        ]
    )


def _attachment(content: bytes, media_type: str, filename: str) -> flask.Response:
    return flask.send_file(
        io.BytesIO(content), mimetype=media_type, as_attachment=True, download_name=filename
    )


def register(secure: SecureCallbacks, services: Services) -> None:
    """The two downloads, as routes of the app's server (the guard runs before them)."""
    server: flask.Flask = secure.app.server

    def viewer_or_404() -> Any:
        viewer = current_viewer()
        if viewer is None:  # the guard answered already; never serve without one
            flask.abort(404)
        return viewer

    @server.route(DOWNLOAD)
    def download_report(report_id: int) -> ResponseReturnValue:
        from riskiturva.reports.delivery import ArchiveError, open_archived, reports_dir

        viewer = viewer_or_404()
        with services.sessions() as session:
            try:
                found = open_archived(
                    session,
                    report_id,
                    viewer.visible,
                    folder=reports_dir(services.config.settings),
                )
            except NotVisible:
                services.refused(viewer, "report", report_id)
                flask.abort(404)
            except ArchiveError as exc:
                flask.current_app.logger.error("archived report: %s", exc)
                flask.abort(404)
            slug = session.get_one(ArchivedReport, report_id).organisation.slug
        services.audit(viewer, "report.downloaded", organisation=slug, target=found.filename)
        return _attachment(found.content, found.media_type, found.filename)

    @server.route(RENDER_NOW)
    def render_report_now(slug: str, language: str) -> ResponseReturnValue:
        from riskiturva.reports.delivery import MEDIA_TYPES
        from riskiturva.reports.render import render_organisation

        viewer = viewer_or_404()
        if language not in LANGUAGES:
            flask.abort(404)
        now = services.clock()
        with services.sessions() as session:
            try:
                rendered = render_organisation(
                    session,
                    slug,
                    this_month(now),
                    visible=viewer.visible,
                    now=now,
                    language=language,
                    config=services.config,
                )
            except NotVisible:
                services.refused(viewer, "organisation", slug)
                flask.abort(404)
        services.audit(viewer, "report.rendered", organisation=slug, target=rendered.filename)
        return _attachment(rendered.content, MEDIA_TYPES[rendered.format], rendered.filename)


def validation_layout() -> list[Any]:
    return []


PAGE = Page("reports", r"/org/(?P<slug>[a-z0-9-]+)/reports", Permission.READ, layout)
PORTFOLIO_PAGE = Page("all-reports", PORTFOLIO_PATH, Permission.READ, portfolio_layout)
