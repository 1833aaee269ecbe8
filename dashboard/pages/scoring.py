"""Scoring explanation: the grade line by line, the caps, and the plan to reach grade B."""

from __future__ import annotations

from typing import Any

from dash import html

from dashboard import ids, queries
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
from riskiturva.history import score_stored
from riskiturva.scoring import score_document

TARGET_GRADE = "B"


def layout(context: PageContext, slug: str) -> Any:
    _ = context._
    with context.sessions() as session:
        org = queries.organisation(session, context.viewer.visible, slug)
        if org is None:
            return not_found(context)
        header = org_header(context, org, "score")
        score = score_stored(session, org, now=context.now, registry=context.registry)
    document = score_document(
        score,
        registry=context.registry,
        today=context.today,
        language=context.language,
        target=TARGET_GRADE,
    )
    lines = [
        [
            line["title"] or "",
            severity_badge(_, line["severity"]) if line["severity"] else _("Cap"),
            str(line["instances"] or ""),
            f"−{context.score(line['points_lost'])}",
        ]
        for line in document["explanation"]
    ]
    lines.append([html.Strong(_("Score")), "", "", html.Strong(context.score(document["score"]))])
    plan = document["plan"]
    titles = {p["check_id"]: p["title"] for p in document["priorities"]}
    caps = [
        html.Li(
            [
                grade_badge(_, cap["grade"]),
                " ",
                cap["reason"],
                " ",
                html.Em(_("(sets the grade)")) if cap["binding"] else "",
            ]
        )
        for cap in document["caps"]
    ]
    plan_body: list[Any]
    if not plan["check_ids"]:
        plan_body = [html.P(_("The grade is already {grade} or better.", grade=TARGET_GRADE))]
    else:
        plan_body = [
            html.Ol([html.Li(titles.get(c, c)) for c in plan["check_ids"]]),
            html.P(
                _(
                    "After these: {score} / 100, grade {grade}. Effort: {units} units.",
                    score=context.score(plan["score_after"]),
                    grade=plan["grade_after"],
                    units=plan["effort_units"],
                )
            ),
        ]
    return html.Div(
        [
            header,
            html.Div(
                [
                    grade_badge(_, document["grade"], large=True),
                    html.P(document["answer"], className="answer"),
                ],
                className="headline",
            ),
            section(
                _("How the score is made"),
                html.P(_("100 points, minus what each open problem costs:"), className="muted"),
                simple_table(
                    [_("Problem"), _("Severity"), _("Instances"), _("Points")],
                    lines,
                    id=ids.EXPLANATION,
                ),
                html.Ul(caps) if caps else "",
                html.P(
                    _("Scoring version {version}", version=document["scoring_version"]),
                    className="muted",
                ),
            ),
            section(_("Plan to reach grade {grade}", grade=TARGET_GRADE), *plan_body, id=ids.PLAN),
        ]
    )


PAGE = Page("score", r"/org/(?P<slug>[a-z0-9-]+)/score", Permission.READ, layout)
