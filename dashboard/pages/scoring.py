"""Scoring explanation: the grade line by line, the caps, and the plan to reach grade B.

Each line is what one problem costs — its share of the points lost, including its share of
what the caps cost — and is the same number as its gain in the recovery priorities.
"""

from __future__ import annotations

from typing import Any

from dash import html

from dashboard import ids
from dashboard.components import (
    PageContext,
    grade_badge,
    not_found,
    org_header,
    section,
    severity_badge,
    simple_table,
)
from dashboard.pages import Page
from dashboard.security import Permission
from riskiturva import views
from riskiturva.views import NotVisible

TARGET_GRADE = "B"


def layout(context: PageContext, slug: str) -> Any:
    _ = context._
    with context.sessions() as session:
        try:
            found = views.explanation(
                session,
                context.viewer.visible,
                slug,
                now=context.now,
                registry=context.registry,
                language=context.language,
                target=TARGET_GRADE,
            )
        except NotVisible:
            return not_found(context)
    document = found.document
    lines: list[list[Any]] = [
        [
            line.title,
            severity_badge(_, line.severity),
            str(line.instances),
            f"−{context.score(line.points_lost)}",
            _("of which {points} because of a cap", points=context.score(line.cap_points))
            if line.cap_points
            else "",
        ]
        for line in document.explanation
    ]
    lines.append([html.Strong(_("Score")), "", "", html.Strong(context.score(document.score)), ""])
    titles = {line.check_id: line.title for line in document.priorities}
    caps = [
        html.Li(
            [
                grade_badge(_, str(cap.grade)),
                " ",
                cap.reason,
                " ",
                html.Em(_("(sets the grade)")) if cap.binding else "",
            ]
        )
        for cap in document.caps
    ]
    plan = document.plan
    plan_body: list[Any]
    if not plan.check_ids:
        plan_body = [html.P(_("The grade is already {grade} or better.", grade=TARGET_GRADE))]
    else:
        plan_body = [
            html.Ol([html.Li(titles.get(c, c)) for c in plan.check_ids]),
            html.P(
                _(
                    "After these: {score} / 100, grade {grade}. Effort: {units} units.",
                    score=context.score(plan.score_after),
                    grade=str(plan.grade_after),
                    units=plan.effort_units,
                )
            ),
        ]
    return html.Div(
        [
            org_header(context, found.organisation, "score"),
            html.Div(
                [
                    grade_badge(_, str(document.grade), large=True),
                    html.Div(
                        [
                            html.P(document.answer, className="answer"),
                            html.P(
                                _("Situation at {moment}", moment=context.when(found.as_of)),
                                className="muted",
                            ),
                        ]
                    ),
                ],
                className="headline",
            ),
            section(
                _("How the score is made"),
                html.P(
                    _(
                        "100 points, minus what each open problem costs. A problem's cost is "
                        "also what fixing it gains in the recovery priorities."
                    ),
                    className="muted",
                ),
                simple_table(
                    [_("Problem"), _("Severity"), _("Instances"), _("Points"), ""],
                    lines,
                    id=ids.EXPLANATION,
                ),
                html.Ul(caps) if caps else "",
                html.P(
                    _("Scoring version {version}", version=document.scoring_version),
                    className="muted",
                ),
            ),
            section(_("Plan to reach grade {grade}", grade=TARGET_GRADE), *plan_body, id=ids.PLAN),
        ]
    )


PAGE = Page("score", r"/org/(?P<slug>[a-z0-9-]+)/score", Permission.READ, layout)
