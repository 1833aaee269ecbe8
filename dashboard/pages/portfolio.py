"""Portfolio: every visible organisation in one table, a category heatmap and the grades.

Everything but the trend is live (the overview shows the same numbers at the same moment);
the trend and the 30-day change come from the daily snapshots."""

from __future__ import annotations

from collections import Counter
from typing import Any

from dash import dcc, html

from dashboard import exports, ids
from dashboard.components import (
    CATEGORIES,
    GRADE_COLOURS,
    GRADES,
    PageContext,
    category_label,
    data_table,
    graph,
    markdown_text,
    section,
    sparkline,
)
from dashboard.pages import Page, findings
from dashboard.security import Permission
from riskiturva import tables, views
from riskiturva.scoring import POINT, grade_for
from riskiturva.views import TIMEZONE


def layout(context: PageContext) -> Any:
    if len(context.viewer.visible) == 1:
        from dashboard.pages import organisation

        return organisation.layout(context, slug=next(iter(context.viewer.visible)))
    _ = context._
    with context.sessions() as session:
        found = views.portfolio(
            session, context.viewer.visible, now=context.now, registry=context.registry
        )
    rows = list(found.rows)
    return html.Div(
        [
            html.H1(_("Portfolio")),
            html.P(
                [
                    _("{count} organisations. Sort or filter by any column.", count=len(rows)),
                    " ",
                    _(
                        "Scores as of {moment}; the trend and the 30-day change come from the "
                        "daily scores.",
                        moment=context.when(found.as_of),
                    ),
                ],
                className="muted",
                id=ids.PORTFOLIO_AS_OF,
            ),
            section(
                _("Organisations"),
                _table(context, rows),
                exports.buttons(context, tables.Kind.PORTFOLIO),
            ),
            html.Div(
                [
                    section(_("Grades"), graph(_grades(context, rows), id=ids.PORTFOLIO_GRADES)),
                    section(_("Category scores"), _heatmap(context, rows)),
                ],
                className="two-columns",
            ),
        ]
    )


def _table(context: PageContext, rows: list[views.PortfolioRow]) -> Any:
    _ = context._
    # DataTable's number formats (what dash_table.Format builds), one decimal.
    locale = {"decimal": "." if context.language == "en" else ","}
    number = {"locale": locale, "nully": "", "specifier": ".1f"}
    delta = {"locale": locale, "nully": "", "specifier": "+.1f"}
    columns = [
        {"id": "name", "name": _("Organisation"), "presentation": "markdown"},
        {"id": "grade", "name": _("Grade")},
        {"id": "score", "name": _("Score"), "type": "numeric", "format": number},
        {"id": "delta", "name": _("30 days"), "type": "numeric", "format": delta},
        {"id": "trend", "name": _("Trend (90 days)")},
        {"id": "critical", "name": _("Open critical"), "type": "numeric"},
        {"id": "high", "name": _("Open high"), "type": "numeric"},
        {"id": "overdue", "name": _("Overdue priorities"), "type": "numeric"},
        {"id": "accepted", "name": _("Accepted critical or high"), "type": "numeric"},
        {"id": "expiring", "name": _("Decisions ending in 14 days"), "type": "numeric"},
        {"id": "last_success", "name": _("Last successful scan")},
    ]
    data = [
        {
            # Names come from the configuration; links are built from slugs ([a-z0-9-]).
            "name": f"[{markdown_text(r.organisation.name(context.language))}]"
            f"(/org/{r.organisation.slug})",
            "slug": r.organisation.slug,
            # An organisation never scanned has no grade yet, whatever its findings say.
            "grade": str(r.grade) if r.checked else "–",
            "score": r.score if r.checked else None,
            "delta": r.change.delta if r.checked else None,
            "trend": f"{_arrow(r.change.delta)} {sparkline(r.trend if r.checked else ())}",
            "critical": r.open_counts.get("critical", 0),
            "high": r.open_counts.get("high", 0),
            "overdue": r.overdue,
            "accepted": r.exceptions.get("critical", 0) + r.exceptions.get("high", 0),
            "expiring": r.expiring,
            # ISO 8601 in local time: it sorts as text, and Finnish usage accepts it.
            "last_success": (
                r.last_success.astimezone(TIMEZONE).strftime("%Y-%m-%d %H:%M")
                if r.last_success
                else "–"
            ),
        }
        for r in rows
    ]
    grade_styles = [
        {
            "if": {"filter_query": f'{{grade}} = "{g}"', "column_id": "grade"},
            "backgroundColor": GRADE_COLOURS[g],
            "color": "white",
            "fontWeight": "bold",
        }
        for g in GRADES
    ]
    return data_table(
        id=ids.PORTFOLIO_TABLE,
        columns=columns,
        data=data,
        sort_action="native",
        filter_action="native",
        page_size=50,
        filter_options={"placeholder_text": _("Filter…"), "case": "insensitive"},
        style_cell_conditional=[
            {"if": {"column_id": "trend"}, "whiteSpace": "nowrap", "letterSpacing": "-1px"}
        ],
        style_data_conditional=[
            *grade_styles,
            {
                "if": {"filter_query": "{critical} > 0", "column_id": "critical"},
                "fontWeight": "bold",
            },
            {"if": {"filter_query": "{overdue} > 0", "column_id": "overdue"}, "fontWeight": "bold"},
            {
                "if": {"filter_query": "{accepted} > 0", "column_id": "accepted"},
                "fontWeight": "bold",
            },
            {
                "if": {"filter_query": "{expiring} > 0", "column_id": "expiring"},
                "fontWeight": "bold",
            },
        ],
    )


def _arrow(delta: float | None) -> str:
    """The direction of the last 30 days; the signed number is in its own column."""
    if delta is None:
        return "·"
    return "↑" if delta > 0 else "↓" if delta < 0 else "→"


# The figures are Plotly's JSON as plain dicts: plotly.graph_objects validates every
# property in Python, which for the heatmap of a few hundred organisations cost more than
# reading and scoring them.


def _grades(context: PageContext, rows: list[views.PortfolioRow]) -> dict[str, Any]:
    counts = Counter(str(r.grade) for r in rows if r.checked)
    return {
        "data": [
            {
                "type": "bar",
                "x": list(GRADES),
                "y": [counts.get(g, 0) for g in GRADES],
                "marker": {"color": [GRADE_COLOURS[g] for g in GRADES]},
                "text": [f"{g}: {counts.get(g, 0)}" for g in GRADES],
                "textposition": "outside",
                "hoverinfo": "skip",
            }
        ],
        "layout": {
            "height": 300,
            "margin": {"l": 40, "r": 10, "t": 10, "b": 30},
            "yaxis": {
                "title": {"text": context._("Organisations")},
                "dtick": 1,
                "rangemode": "nonnegative",
            },
            "plot_bgcolor": "white",
        },
    }


def _heatmap(context: PageContext, rows: list[views.PortfolioRow]) -> html.Div:
    """Category scores as a table: each cell says its number on the colour of its grade
    band (never colour alone), scrolls inside its panel on a phone with the names kept in
    view, and leads (for those who see findings) to that category's open findings."""
    _ = context._
    details = context.viewer.sees_details
    decimal = "." if context.language == "en" else ","
    header = html.Tr(
        [
            html.Th(_("Organisation"), scope="col"),
            *(html.Th(category_label(_, c), scope="col") for c in CATEGORIES),
        ]
    )
    body = []
    for r in (r for r in rows if r.checked):
        slug = r.organisation.slug
        cells: list[Any] = [
            html.Th(
                dcc.Link(r.organisation.name(context.language), href=f"/org/{slug}"), scope="row"
            )
        ]
        for c in CATEGORIES:
            value = r.categories.get(c)
            # Scores are 0–100 with one decimal: the decimal mark is all a locale changes,
            # and Babel for every one of hundreds × 6 cells costs more than the page.
            label = "–" if value is None else f"{value:.1f}".replace(".", decimal)
            band = "none" if value is None else str(grade_for(round(value * POINT)))
            cells.append(
                html.Td(
                    dcc.Link(label, href=findings.link(slug, category=c))
                    if details and value is not None
                    else label,
                    className=f"heat heat-{band}",
                    id=ids.heatmap_cell(slug, c),
                )
            )
        body.append(html.Tr(cells))
    return html.Div(
        html.Table([html.Thead(header), html.Tbody(body)], className="heatmap"),
        className="table-scroll",
        id=ids.PORTFOLIO_HEATMAP,
    )


PAGE = Page("portfolio", r"/(?:portfolio)?", Permission.READ, layout)
