"""Pieces every page uses: the page context, grade and severity labels (text and colour,
never colour alone), localised dates, sparklines, the organisation's header and tabs.

Outside-world strings are only ever passed as component children or DataTable cell text,
which React escapes; nothing here renders raw HTML.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import dash_bootstrap_components as dbc
from dash import dcc, html
from dash.dash_table.DataTable import DataTable
from sqlalchemy.orm import Session, sessionmaker

from dashboard import ids
from dashboard.i18n import text
from dashboard.security import audit_in, audit_request
from riskiturva import terms
from riskiturva.auth import Viewer
from riskiturva.checks import Registry
from riskiturva.config import Config, Scope
from riskiturva.i18n import Translator
from riskiturva.store import NotVisible
from riskiturva.views import TIMEZONE, OrganisationRef, local_day

GRADES = ("A", "B", "C", "D", "F")
GRADE_COLOURS = {"A": "#1a7f37", "B": "#4d9e2f", "C": "#b58900", "D": "#d4661c", "F": "#c62828"}
SEVERITIES = ("critical", "high", "medium", "low", "info")
STATUSES = ("open", "resolved", "accepted", "false_positive")
CATEGORIES = ("tls", "email", "dns", "services", "web", "software")
FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif'
# DataTable styles: the page's font (DataTable's default is monospace), text that wraps.
TABLE_CELL = {
    "textAlign": "left",
    "fontFamily": FONT,
    "fontSize": "14px",
    "whiteSpace": "normal",
    "height": "auto",
    "padding": "4px 8px",
}
TABLE_HEADER = {"fontWeight": "bold", "fontFamily": FONT, "whiteSpace": "normal"}


@dataclass(frozen=True)
class PageContext:
    """What a page or callback needs about the request: who, which language, when."""

    viewer: Viewer
    language: str
    sessions: sessionmaker[Session]
    registry: Registry
    config: Config  # alerts, scopes, dashboard security, owners, profiles, peer groups
    now: dt.datetime
    query: Mapping[str, Sequence[str]]

    @property
    def scopes(self) -> dict[str, Scope]:
        """Each organisation's declared scope, by slug (the authorisation)."""
        return {o.slug: o.scope for o in self.config.organisations}

    @cached_property
    def _(self) -> Translator:
        return text(self.language)

    @property
    def today(self) -> dt.date:
        return local_day(self.now)

    def when(self, value: dt.datetime | None) -> str:
        return "–" if value is None else self._.datetime(value.astimezone(TIMEZONE))

    def day(self, value: dt.date | dt.datetime | None) -> str:
        if value is None:
            return "–"
        if isinstance(value, dt.datetime):
            value = value.astimezone(TIMEZONE).date()
        return self._.date(value)

    def score(self, value: float | None) -> str:
        return "–" if value is None else self._.number(value, 1)

    def signed(self, value: float | None) -> str:
        """A change in points with its sign: +3,2 / −1,0 / ±0,0."""
        if value is None:
            return "–"
        sign = "+" if value > 0 else "−" if value < 0 else "±"
        return sign + self._.number(abs(value), 1)

    def title(self, check_id: str) -> str:
        check = self.registry.get(check_id)
        return check.title_in(self.language) if check else check_id


def severity_label(_: Translator, severity: str) -> str:
    """The report's word for the severity (`riskiturva.terms`): one word on every face."""
    return terms.term(terms.SEVERITY, severity, _.language)


def status_label(_: Translator, status: str) -> str:
    return {
        "open": _("Open"),
        "resolved": _("Resolved"),
        "accepted": _("Accepted risk"),
        "false_positive": _("False positive"),
    }.get(status, status)


def category_label(_: Translator, category: str) -> str:
    return terms.term(terms.CATEGORY, category, _.language)


def collector_label(_: Translator, collector: str) -> str:
    return terms.term(terms.COLLECTOR, collector, _.language)


def error_kind_label(_: Translator, kind: str) -> str:
    return terms.term(terms.ERROR_KIND, kind, _.language)


def asset_kind_label(_: Translator, kind: str) -> str:
    return terms.term(terms.ASSET_KIND, kind, _.language)


def run_status_label(_: Translator, status: str) -> str:
    return {
        "running": _("Running"),
        "ok": _("OK"),
        "partial": _("Partial"),
        "failed": _("Failed"),
        "interrupted": _("Interrupted"),
        "skipped": _("Skipped"),
    }.get(status, status)


def effort_label(_: Translator, effort: str) -> str:
    return {"low": _("Small"), "medium": _("Moderate"), "high": _("Large")}.get(effort, effort)


def grade_badge(
    _: Translator, grade: str | None, *, large: bool = False, **props: Any
) -> html.Span:
    """The letter itself, on its colour, with a spoken label."""
    letter = grade or "–"
    return html.Span(
        letter,
        className=f"grade grade-{grade or 'none'}" + (" grade-large" if large else ""),
        title=_("Grade {grade}", grade=letter),
        role="img",
        **aria(_("Grade {grade}", grade=letter)),
        **props,
    )


def severity_badge(_: Translator, severity: str) -> html.Span:
    return html.Span(severity_label(_, severity), className=f"severity severity-{severity}")


_BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float]) -> str:
    """Scores 0–100 as block characters (fixed scale, so rows compare)."""
    return "".join(_BLOCKS[min(7, int(v / 100 * 8))] for v in values)


def _org_tabs(_: Translator) -> tuple[tuple[str, str, str, bool], ...]:
    """(key, path suffix, label, details only)"""
    return (
        ("overview", "", _("Overview"), False),
        ("findings", "/findings", _("Findings"), True),
        ("assets", "/assets", _("Assets"), True),
        ("proposals", "/proposals", _("Discovered"), True),
        ("score", "/score", _("Scoring explanation"), False),
        ("exceptions", "/exceptions", _("Exceptions"), False),
        ("reports", "/reports", _("Reports"), False),
        ("scans", "/scans", _("Scans"), True),
        ("alerts", "/alerts", _("Alerts"), True),
    )


def org_header(context: PageContext, org: OrganisationRef, active: str) -> html.Div:
    """The organisation's name and its tabs (detail tabs hidden from management viewers,
    who are refused those pages anyway)."""
    _ = context._
    tabs = [
        dbc.NavItem(
            dbc.NavLink(
                label,
                href=f"/org/{org.slug}{suffix}",
                active=key == active,
                id=f"tab-{key}",
            )
        )
        for key, suffix, label, details in _org_tabs(_)
        if context.viewer.sees_details or not details
    ]
    return html.Div(
        [html.H1(org.name(context.language), className="org-name"), dbc.Nav(tabs, pills=True)],
        className="org-header",
    )


def not_found(context: PageContext) -> html.Div:
    """The same answer for what does not exist and for what the viewer may not see."""
    _ = context._
    return html.Div(
        [html.H1(_("Not found")), html.P(_("There is nothing here, or it is not yours to see."))],
        className="not-found",
        id=ids.NOT_FOUND,
    )


def refused(context: PageContext) -> html.Div:
    _ = context._
    return html.Div(
        [html.H1(_("Not available")), html.P(_("Your role shows the overview and the scoring."))],
        className="not-found",
        id="refused",
    )


def simple_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], **props: Any) -> dbc.Table:
    """A table; on a phone each row becomes a card whose cells say their column's name
    (`data-label`, shown by the stylesheet), so no column is cut off."""
    return dbc.Table(
        [
            html.Thead(html.Tr([html.Th(h, scope="col") for h in headers])),
            html.Tbody(
                [
                    html.Tr(
                        [
                            html.Td(cell, **_labelled(h))
                            for h, cell in zip(headers, row, strict=True)
                        ]
                    )
                    for row in rows
                ]
            ),
        ],
        hover=True,
        size="sm",
        className="data-table",
        **props,
    )


def choice(component_id: str, legend: str, options: list[dict[str, str]], value: str) -> Any:
    """One of a few, as native radio buttons with their labels in a fieldset named by its
    legend (what screen readers and the keyboard expect; Dash's own RadioItems puts the
    inputs inside `role=option` labels of an unnamed listbox)."""
    return html.Fieldset(
        [
            html.Legend(legend, className="choice-legend"),
            dbc.RadioItems(id=component_id, options=options, value=value, name=component_id),
        ],
        className="choice",
    )


def dropdown(_: Translator, component_id: str, **props: Any) -> dcc.Dropdown:
    """A dcc.Dropdown whose own words (Select All, Search, No options found, the clear
    buttons' titles) are in the reader's language instead of Dash's English defaults."""
    labels: dcc.Dropdown.Labels = {
        "select_all": _("Select all"),
        "deselect_all": _("Deselect all"),
        "selected_count": _("{num_selected} selected", num_selected="{num_selected}"),
        "search": _("Search"),
        "clear_search": _("Clear search"),
        "clear_selection": _("Clear selection"),
        "no_options_found": _("No options found"),
    }
    return dcc.Dropdown(id=component_id, labels=labels, **props)


def section(title: str, *children: Any, **props: Any) -> html.Section:
    return html.Section([html.H2(title), *children], className="panel", **props)


def data_table(**props: Any) -> DataTable:
    """A DataTable in the page's fonts whose Markdown cells never render HTML (links made
    with `markdown_text` only). Dash's generated type hints are stricter than the
    component (they refuse None cells), so the properties pass through here untyped."""
    props.setdefault("markdown_options", {"html": False})
    props.setdefault("style_cell", TABLE_CELL)
    props.setdefault("style_header", TABLE_HEADER)
    props.setdefault("style_table", {"overflowX": "auto"})  # scrolls inside its panel
    assert props["markdown_options"].get("html") is False, "tables never render HTML"
    return DataTable(**props)


def _labelled(header: str) -> dict[str, Any]:
    """`data-label`: the column's name, for the phone layout's cards."""
    return {"data-label": header}


def aria(label: str) -> dict[str, Any]:
    """`aria-label` for a component (the attribute's dash is no keyword argument)."""
    return {"aria-label": label}


def graph(figure: Any, **props: Any) -> dcc.Graph:
    return dcc.Graph(figure=figure, config={"displaylogo": False, "displayModeBar": False}, **props)


@dataclass(frozen=True)
class Services:
    """What the app was created with: the store, the check registry, the configuration
    and the clock."""

    sessions: sessionmaker[Session]
    registry: Registry
    config: Config
    clock: Any  # () -> aware datetime

    @property
    def scopes(self) -> dict[str, Scope]:
        """Each organisation's declared scope, by slug (the authorisation)."""
        return {o.slug: o.scope for o in self.config.organisations}

    def context(
        self, viewer: Viewer, language: str, query: Mapping[str, Sequence[str]] | None = None
    ) -> PageContext:
        return PageContext(
            viewer, language, self.sessions, self.registry, self.config, self.clock(), query or {}
        )

    def audit(
        self, viewer: Viewer, action: str, *, session: Session | None = None, **fields: Any
    ) -> None:
        """Write what the viewer did in this request to the audit trail: in `session`'s
        transaction (with the change it records), else in one of its own."""
        if session is None:
            audit_request(self.sessions, self.clock(), viewer, action, **fields)
        else:
            audit_in(session, self.clock(), viewer, action, **fields)

    def refused(self, viewer: Viewer, what: str, target: Any) -> None:
        """Audit a request for something that does not exist or is not the viewer's to
        see (`what`: the kind of thing; `target`: as the browser named it). The viewer
        still gets the same "not found" either way."""
        self.audit(viewer, "access.refused", target=str(target), detail={"what": what})


def row_id(value: Any) -> int:
    """A database id from the browser: a positive 64-bit integer, else not found."""
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63:
        return value
    raise NotVisible(value)


def markdown_text(value: str) -> str:
    """Escape Markdown punctuation so text is shown as written, never as markup."""
    return "".join("\\" + c if c in "\\`*_{}[]()#+-.!<>|" else c for c in value)
