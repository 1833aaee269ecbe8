"""Scans: the organisation's recent runs and the targets that could not be checked."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dash import html

from dashboard import ids
from dashboard.components import (
    PageContext,
    collector_label,
    error_kind_label,
    not_found,
    org_header,
    run_status_label,
    section,
    simple_table,
)
from dashboard.pages import Page
from dashboard.security import Permission
from riskiturva import views
from riskiturva.views import NotVisible


def _totals(context: PageContext, counts: Mapping[str, Any]) -> str:
    """The run's totals over all its organisations (shown only to who sees them all)."""
    return context._(
        "{targets} targets, {opened} new, {resolved} resolved, {errors} errors, {seconds} s",
        targets=counts.get("targets", 0),
        opened=counts.get("opened", 0),
        resolved=counts.get("resolved", 0),
        # Runs recorded before `failed`/`skipped` were counted kept one `errors` total.
        errors=counts.get("errors", counts.get("failed", 0) + counts.get("skipped", 0)),
        seconds=context.score(float(counts.get("duration_s", 0))),
    )


def _status(context: PageContext, run: views.RunView) -> str:
    """The run's status; a skipped one says which fire time it missed."""
    label = run_status_label(context._, run.status)
    if run.status == "skipped" and run.scheduled_for is not None:
        return context._(
            "{status}: not started at {when} (the scheduler was down for longer than the grace"
            " time)",
            status=label,
            when=context.when(run.scheduled_for),
        )
    return label


def layout(context: PageContext, slug: str) -> Any:
    _ = context._
    with context.sessions() as session:
        try:
            org = views.organisation(session, context.viewer.visible, slug)
            runs = views.runs(session, context.viewer.visible, slug, limit=30)
        except NotVisible:
            return not_found(context)
    header = org_header(context, org, "scans")
    run_rows = [
        [
            str(run.id),
            collector_label(_, run.collector),
            _status(context, run),
            context.when(run.started_at),
            context.when(run.finished_at),
            str(len(run.errors)),
            _totals(context, run.counts) if run.counts else "",
        ]
        for run in runs
    ]
    error_rows = [
        [
            str(run.id),
            collector_label(_, run.collector),
            error.subject,
            error_kind_label(_, error.kind),
            html.Code(error.message),  # the scanner's own words, technical detail
        ]
        for run in runs
        for error in run.errors
    ]
    return html.Div(
        [
            header,
            section(
                _("Recent scans"),
                simple_table(
                    [
                        _("Run"),
                        _("Collector"),
                        _("Status"),
                        _("Started"),
                        _("Finished"),
                        _("Errors"),
                        _("Totals"),
                    ],
                    run_rows,
                    id=ids.RUNS,
                ),
            ),
            section(
                _("Targets that could not be checked"),
                simple_table(
                    [_("Run"), _("Collector"), _("Subject"), _("Kind"), _("Message")], error_rows
                )
                if error_rows
                else html.P(_("None."), className="muted"),
            ),
        ]
    )


PAGE = Page("scans", r"/org/(?P<slug>[a-z0-9-]+)/scans", Permission.DETAILS, layout)
