"""Organisation overview: the answer, grade and score, categories, trend, priorities,
what changed in the last month, and scan health."""

from __future__ import annotations

import datetime as dt
from typing import Any

import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import dcc, html

from dashboard import ids, queries
from dashboard.components import (
    CATEGORIES,
    GRADE_COLOURS,
    PageContext,
    category_label,
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
from dashboard.pages import Page
from dashboard.security import Permission
from riskiturva.history import has_been_checked, score_history, score_stored
from riskiturva.scoring import GRADE_FLOORS, POINT, Action, answer, priorities

TREND_DAYS = 90
CHANGE_DAYS = 30
TOP_PRIORITIES = 5


def layout(context: PageContext, slug: str) -> Any:
    _ = context._
    visible = context.viewer.visible
    with context.sessions() as session:
        org = queries.organisation(session, visible, slug)
        if org is None:
            return not_found(context)
        score = score_stored(session, org, now=context.now, registry=context.registry)
        actions = priorities(score, registry=context.registry, today=context.today)
        sentence = answer(
            score,
            actions,
            registry=context.registry,
            language=context.language,
            checked=has_been_checked(session, org),
        )
        history = score_history(
            session,
            visible,
            since=context.today - dt.timedelta(days=TREND_DAYS),
            until=context.today,
            organisation=slug,
        ).get(slug, [])
        changes = queries.changes_since(
            session, visible, slug, since=context.now - dt.timedelta(days=CHANGE_DAYS)
        )
        runs = queries.runs_for(session, visible, slug, limit=8)
        header = org_header(context, org, "overview")
        changes_panel = _changes(context, changes)
        health = _scan_health(context, runs)
    categories = [
        dbc.Card(
            dbc.CardBody(
                [
                    html.Div(category_label(_, c), className="category-name"),
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
        )
        for c in CATEGORIES
    ]
    return html.Div(
        [
            header,
            html.Div(
                [
                    grade_badge(_, str(score.grade), large=True, id=ids.GRADE),
                    html.Div(
                        [
                            html.P(sentence, id=ids.ANSWER, className="answer"),
                            html.P(
                                _("Score {score} / 100", score=context.score(score.score)),
                                className="score-line",
                            ),
                        ]
                    ),
                ],
                className="headline",
            ),
            section(
                _("Categories"),
                html.Div(categories, className="category-row"),
                id=ids.CATEGORY_SCORES,
            ),
            html.Div(
                [
                    section(_("Score, last 90 days"), _trend(context, history), id=ids.TREND),
                    section(_("Changes in the last 30 days"), changes_panel, id=ids.CHANGES),
                ],
                className="two-columns",
            ),
            section(
                _("Recovery priorities"),
                _priorities(context, actions[:TOP_PRIORITIES], slug),
                id=ids.PRIORITIES,
            ),
            section(_("Scan health"), health, id=ids.SCAN_HEALTH),
        ]
    )


def _trend(context: PageContext, history: list[Any]) -> Any:
    _ = context._
    if len(history) < 2:
        return html.P(_("Not enough daily scores yet for a trend."), className="muted")
    tick = "%d/%m" if context.language == "en" else "%-d.%-m."
    figure = go.Figure(
        go.Scatter(
            x=[p.day for p in history],
            y=[p.score for p in history],
            mode="lines+markers",
            text=[f"{context.day(p.day)}: {context.score(p.score)} ({p.grade})" for p in history],
            hovertemplate="%{text}<extra></extra>",
            line={"color": "#1f4e79"},
        )
    )
    # Grade bands behind the line, each labelled with its letter (not colour alone).
    ceiling = 100.0
    for letter, floor in GRADE_FLOORS:
        low = floor / POINT
        figure.add_hrect(
            y0=low,
            y1=ceiling,
            fillcolor=GRADE_COLOURS[str(letter)],
            opacity=0.08,
            line_width=0,
            annotation_text=str(letter),
            annotation_position="right",
        )
        ceiling = low
    figure.update_layout(
        height=260,
        margin={"l": 40, "r": 30, "t": 10, "b": 30},
        yaxis={"range": [0, 100], "title": _("Score")},
        xaxis={"tickformat": tick},
        plot_bgcolor="white",
    )
    return graph(figure)


def _priorities(context: PageContext, actions: list[Action], slug: str) -> Any:
    _ = context._
    if not actions:
        return html.P(_("Nothing to fix."), className="muted")
    rows = [
        [
            context.title(a.check_id),
            severity_badge(_, str(a.severity)),
            str(a.instances),
            _("+{points} points", points=context.score(a.gain / 10)),
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
        ]
    )


def _changes(context: PageContext, changes: queries.Changes) -> Any:
    _ = context._

    def listing(findings: list[Any]) -> Any:
        if not findings:
            return html.P(_("None."), className="muted")
        items = [
            html.Li([context.title(f.check_id), " — ", html.Code(f.subject)]) for f in findings[:10]
        ]
        more = len(findings) - 10
        if more > 0:
            items.append(html.Li(_("… and {count} more", count=more)))
        return html.Ul(items)

    return html.Div(
        [
            html.H3(_("New ({count})", count=len(changes.new))),
            listing(changes.new),
            html.H3(_("Resolved ({count})", count=len(changes.resolved))),
            listing(changes.resolved),
        ]
    )


def _scan_health(context: PageContext, runs: list[queries.RunView]) -> Any:
    _ = context._
    if not runs:
        return html.P(_("No scans yet."), className="muted")
    rows = [
        [
            run.collector,
            run_status_label(_, run.status),
            context.when(run.started_at),
            str(len(run.errors)),
        ]
        for run in runs
    ]
    return simple_table([_("Collector"), _("Status"), _("Started"), _("Errors")], rows)


PAGE = Page("organisation", r"/org/(?P<slug>[a-z0-9-]+)", Permission.READ, layout)
