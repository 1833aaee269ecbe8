"""Organisation overview: the answer, grade and score (live, with the moment), the line about
known-exploited vulnerabilities and end of support, the management section (peers, the first
actions and their owners, obligations), categories,
trend, priorities, what changed in the last 30 days, the exceptions register, and scan
health. Management viewers read all of it."""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard import exports, ids
from dashboard.components import (
    CATEGORIES,
    GRADE_COLOURS,
    PageContext,
    category_label,
    collector_label,
    effort_label,
    grade_badge,
    graph,
    not_found,
    org_header,
    run_status_label,
    section,
    severity_badge,
    simple_table,
)
from dashboard.management import management_section
from dashboard.pages import Page, exceptions, findings
from dashboard.security import Permission
from riskiturva import tables, views
from riskiturva.scoring import GRADE_FLOORS, POINT, Action
from riskiturva.views import ChangeKind, NotVisible

TOP_PRIORITIES = 5


def layout(context: PageContext, slug: str) -> Any:
    _ = context._
    with context.sessions() as session:
        try:
            view = views.overview(
                session, context.viewer.visible, slug, now=context.now, registry=context.registry
            )
            management = views.organisation_management(
                session,
                context.viewer.visible,
                slug,
                now=context.now,
                registry=context.registry,
                config=context.config,
            )
        except NotVisible:
            return not_found(context)
    score = view.score
    categories = [
        dbc.Card(
            dbc.CardBody(
                [
                    html.Div(
                        dcc.Link(category_label(_, c), href=findings.link(slug, category=c))
                        if context.viewer.sees_details
                        else category_label(_, c),
                        className="category-name",
                    ),
                    grade_badge(
                        _, str(score.categories[c].grade) if c in score.categories else None
                    ),
                    html.Span(
                        context.score(score.categories[c].score if c in score.categories else None),
                        className="category-score",
                    ),
                ]
            ),
            className="category-card",
            id=ids.category_card(c),
        )
        for c in CATEGORIES
    ]
    return html.Div(
        [
            org_header(context, view.organisation, "overview"),
            html.Div(
                [
                    grade_badge(_, str(score.grade), large=True, id=ids.GRADE),
                    html.Div(
                        [
                            html.P(
                                view.answer(registry=context.registry, language=context.language),
                                id=ids.ANSWER,
                                className="answer",
                            ),
                            html.P(
                                _score_line(context, view),
                                id=ids.SCORE_LINE,
                                className="score-line",
                            ),
                            html.P(
                                view.patch.line(context.language),
                                id=ids.PATCH_LINE,
                                className="patch-line",
                            ),
                            html.P(
                                _("Situation at {moment}", moment=context.when(view.as_of)),
                                id=ids.AS_OF,
                                className="muted",
                            ),
                        ]
                    ),
                ],
                className="headline",
            ),
            *_exception_warnings(context, view.exceptions),
            management_section(context, management, slug),
            section(
                _("Categories"),
                html.Div(categories, className="category-row"),
                id=ids.CATEGORY_SCORES,
            ),
            html.Div(
                [
                    section(_("Score, last 90 days"), _trend(context, view), id=ids.TREND),
                    section(
                        _("Changes in the last 30 days"),
                        _changes(context, view.changes),
                        id=ids.CHANGES,
                    ),
                ],
                className="two-columns",
            ),
            section(
                _("Recovery priorities"),
                _priorities(context, list(view.actions[:TOP_PRIORITIES]), slug),
                id=ids.PRIORITIES,
            ),
            section(
                _("Accepted risks and false positives"),
                exceptions.summary(context, view.exceptions, slug),
                id=ids.EXCEPTIONS,
            ),
            section(_("Scan health"), _scan_health(context, list(view.runs)), id=ids.SCAN_HEALTH),
        ]
    )


def _score_line(context: PageContext, view: views.Overview) -> str:
    _ = context._
    line = _("Score {score} / 100", score=context.score(view.score.score))
    change = view.change
    if change.baseline is not None:
        line += " · " + _(
            "{delta} since {day}", delta=context.signed(change.delta), day=context.day(change.since)
        )
        if not change.comparable:
            line += " " + _("(the scoring model changed in between)")
    return line


def _exception_warnings(context: PageContext, register: views.ExceptionsRegister) -> list[Any]:
    """Accepted critical and high problems and decisions about to end, above everything:
    what a person decided never leaves the management view unnoticed."""
    _ = context._
    serious = register.by_severity()
    warnings = []
    if serious["critical"] or serious["high"]:
        warnings.append(
            dbc.Alert(
                _(
                    "Not counted in the score because of a person's decision: {critical} critical "
                    "and {high} high problems. See the accepted risks below.",
                    critical=serious["critical"],
                    high=serious["high"],
                ),
                color="warning",
                id=ids.ACCEPTED_WARNING,
            )
        )
    if register.expiring:
        warnings.append(
            dbc.Alert(
                _(
                    "Decisions ending within {days} days: {count}. Renew them or fix the "
                    "problems, or they count in the score again.",
                    days=views.EXPIRY_WARNING_DAYS,
                    count=len(register.expiring),
                ),
                color="warning",
                id=ids.EXPIRING_WARNING,
            )
        )
    return warnings


def _trend(context: PageContext, view: views.Overview) -> Any:
    _ = context._
    history = view.trend
    if len(history) < 2:
        return html.P(_("Not enough daily scores yet for a trend."), className="muted")
    tick = "%d/%m" if context.language == "en" else "%-d.%-m."
    live = view.score
    # Grade bands behind the line, each labelled with its letter (not colour alone).
    shapes: list[dict[str, Any]] = []
    letters: list[dict[str, Any]] = []
    ceiling = 100.0
    for letter, floor in GRADE_FLOORS:
        low = floor / POINT
        shapes.append(
            {
                "type": "rect",
                "xref": "paper",
                "x0": 0,
                "x1": 1,
                "yref": "y",
                "y0": low,
                "y1": ceiling,
                "fillcolor": GRADE_COLOURS[str(letter)],
                "opacity": 0.08,
                "line": {"width": 0},
                "layer": "below",
            }
        )
        letters.append(
            {
                "xref": "paper",
                "x": 1,
                "xanchor": "right",
                "yref": "y",
                "y": (low + ceiling) / 2,
                "text": str(letter),
                "showarrow": False,
            }
        )
        ceiling = low
    # Plotly's JSON as a plain dict: plotly.graph_objects' validation costs more than the
    # rest of the page.
    figure = {
        "data": [
            {
                "type": "scatter",
                "x": [p.day.isoformat() for p in history],
                "y": [p.score for p in history],
                "mode": "lines+markers",
                "text": [
                    f"{context.day(p.day)}: {context.score(p.score)} ({p.grade})" for p in history
                ],
                "hovertemplate": "%{text}<extra></extra>",
                "line": {"color": "#1f4e79"},
                "name": _("Daily score"),
            },
            # The live score now, apart from the daily scores (which each say their day).
            {
                "type": "scatter",
                "x": [context.today.isoformat()],
                "y": [live.score],
                "mode": "markers",
                "marker": {"color": "#1f4e79", "size": 11, "symbol": "diamond"},
                "text": [
                    _("Now: {score} ({grade})", score=context.score(live.score), grade=live.grade)
                ],
                "hovertemplate": "%{text}<extra></extra>",
                "name": _("Now"),
            },
        ],
        "layout": {
            "height": 260,
            "margin": {"l": 40, "r": 30, "t": 10, "b": 30},
            "yaxis": {"range": [0, 100], "title": {"text": _("Score")}},
            "xaxis": {"tickformat": tick},
            "showlegend": False,
            "plot_bgcolor": "white",
            "shapes": shapes,
            "annotations": letters,
        },
    }
    return graph(figure)


def _priorities(context: PageContext, actions: list[Action], slug: str) -> Any:
    _ = context._
    if not actions:
        return html.P(_("Nothing to fix."), className="muted")
    # The spreadsheet lists every priority with its assets: for those who see details.
    tools = [exports.buttons(context, tables.Kind.PRIORITIES, slug)]
    tools = tools if context.viewer.sees_details else []
    rows = [
        [
            dcc.Link(context.title(a.check_id), href=findings.link(slug, check=a.check_id))
            if context.viewer.sees_details
            else context.title(a.check_id),
            severity_badge(_, str(a.severity)),
            str(a.instances),
            _("+{points} points", points=context.score(a.gain / POINT)),
            effort_label(_, str(a.effort)),
            context.day(a.due),
            html.Strong(_("Overdue"), className="overdue") if a.overdue else "",
        ]
        for a in actions
    ]
    headers = [
        _("Action"),
        _("Severity"),
        _("Instances"),
        _("Gain"),
        _("Effort"),
        _("Due"),
        "",
    ]
    return html.Div(
        [
            simple_table(headers, rows),
            dcc.Link(
                _("How the grade is made, and the plan to reach B"), href=f"/org/{slug}/score"
            ),
            *tools,
        ]
    )


def _change_labels(context: PageContext) -> dict[ChangeKind, str]:
    _ = context._
    return {
        ChangeKind.NEW: _("New ({count})"),
        ChangeKind.RESOLVED: _("Resolved ({count})"),
        ChangeKind.REOPENED: _("Reopened ({count})"),
        ChangeKind.ACCEPTED: _("Accepted or marked false positive ({count})"),
        ChangeKind.EXPIRED: _("Decisions expired ({count})"),
        ChangeKind.REVOKED: _("Decisions revoked ({count})"),
    }


def _changes(context: PageContext, changes: views.Changes) -> Any:
    _ = context._
    shown = 10
    parts: list[Any] = []
    for kind, label in _change_labels(context).items():
        found = changes.of(kind)
        if not found and kind not in (ChangeKind.NEW, ChangeKind.RESOLVED):
            continue  # new and resolved are always stated, the rest when they happened
        parts.append(html.H3(label.format(count=len(found))))
        if not found:
            parts.append(html.P(_("None."), className="muted"))
            continue
        items = [
            html.Li(
                [
                    dcc.Link(context.title(c.check_id), href=f"/findings/{c.finding_id}")
                    if context.viewer.sees_details
                    else context.title(c.check_id),
                    " — ",
                    html.Code(c.subject),
                ]
            )
            for c in found[:shown]
        ]
        if len(found) > shown:
            items.append(html.Li(_("… and {count} more", count=len(found) - shown)))
        parts.append(html.Ul(items, id=ids.changes_list(kind)))
    parts += _estate_changes(context, changes)
    return html.Div(parts)


def estate_label(context: PageContext, kind: str) -> str:
    _ = context._
    return {
        "asset.proposed": _("New asset proposed"),
        "asset.accepted": _("Asset accepted into the inventory"),
        "asset.rejected": _("Proposal rejected"),
        "asset.retired": _("Asset retired"),
        "asset.added": _("Asset added by hand"),
        "asset.gone": _("Gone: proposed for retirement"),
        "asset.returned": _("Exists again"),
        "scope.seen_outside": _("Seen outside the scope"),
        "service.port_opened": _("New open port"),
        "certificate.new": _("New certificate"),
    }.get(kind, kind)


def _estate_changes(context: PageContext, changes: views.Changes) -> list[Any]:
    """The estate's changes: assets proposed, decided or gone, new ports and certificates."""
    _ = context._
    shown = 10
    found = changes.estate
    parts: list[Any] = [html.H3(_("In the inventory ({count})", count=len(found)))]
    if not found:
        return [*parts, html.P(_("None."), className="muted")]
    items = [
        html.Li(
            [
                estate_label(context, c.kind),
                " — ",
                html.Code(c.subject),
                f" · {context.day(c.at)}",
                *([f" · {c.actor}"] if c.actor else []),
            ]
        )
        for c in found[:shown]
    ]
    if len(found) > shown:
        items.append(html.Li(_("… and {count} more", count=len(found) - shown)))
    parts.append(html.Ul(items, id=ids.ESTATE_CHANGES))
    if context.viewer.sees_details:
        parts.append(
            dcc.Link(_("Discovered assets and their evidence"),
                     href=f"/org/{changes.organisation}/proposals")
        )  # fmt: skip
    return parts


def _scan_health(context: PageContext, runs: list[views.RunView]) -> Any:
    _ = context._
    if not runs:
        return html.P(_("No scans yet."), className="muted")
    rows = [
        [
            collector_label(_, run.collector),
            run_status_label(_, run.status),
            context.when(run.started_at),
            str(len(run.errors)),
        ]
        for run in runs
    ]
    return simple_table([_("Collector"), _("Status"), _("Started"), _("Errors")], rows)


PAGE = Page("organisation", r"/org/(?P<slug>[a-z0-9-]+)", Permission.READ, layout)
