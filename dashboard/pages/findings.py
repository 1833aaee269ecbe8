"""Findings of one organisation: filters, a table sorted on the server (severity in
severity order), and CSV or XLSX export of what is shown
(`dashboard.exports`).

The filters live in the URL's query string (`?severity=high&due=overdue&check=…`): the
page opens with the filters its address names, and every change of a filter writes them
back into the address bar (`history.replaceState`, from `assets/riskiturva.js`), so a view
can be shared, bookmarked and reloaded. Other pages link here with the filters filled in:
a priority with its check, a heatmap cell or a category card with its category, an asset
with its asset."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import flask
from dash import ClientsideFunction, Input, Output, State, dcc, html
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
    dropdown,
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
from riskiturva.i18n import Translator
from riskiturva.requirements import load_profiles
from riskiturva.views import FindingRow, NotVisible, Timing

DEFAULT_STATUSES = ["open"]
_SEVERITY_ORDER = {s: i for i, s in enumerate(SEVERITIES)}
DUE_CHOICES = ("overdue", "7", "30")  # overdue, or due within so many days
NEW_CHOICES = ("month", "30")  # first seen this calendar month, or in the last 30 days
MULTI = ("category", "severity", "status", "asset", "requirement", "check")
_LONGEST = 200  # a value from the address bar longer than this filters on nothing


@dataclass(frozen=True)
class Filters:
    """What the findings are filtered on, as the filter controls and the URL say it."""

    category: list[str] = field(default_factory=list)
    severity: list[str] = field(default_factory=list)
    status: list[str] = field(default_factory=lambda: list(DEFAULT_STATUSES))
    asset: list[str] = field(default_factory=list)
    requirement: list[str] = field(default_factory=list)
    check: list[str] = field(default_factory=list)
    due: str | None = None
    new: str | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, Sequence[str]]) -> Filters:
        """From the URL: unknown values of fixed lists are dropped; no status named means
        the open findings."""
        fixed = {"category": CATEGORIES, "severity": SEVERITIES, "status": STATUSES}

        def values(key: str) -> list[str]:
            found = [v for v in query.get(key, ()) if len(v) <= _LONGEST]
            return [v for v in found if key not in fixed or v in fixed[key]]

        return cls.of(
            *(values(key) for key in MULTI),
            _single(query.get("due"), DUE_CHOICES),
            _single(query.get("new"), NEW_CHOICES),
        )

    @classmethod
    def of(cls, *values: Any) -> Filters:
        """From the filter controls' values, in `MULTI` order, then due and new."""
        lists = dict(zip(MULTI, map(_choices, values[: len(MULTI)]), strict=True))
        lists["status"] = lists["status"] or list(DEFAULT_STATUSES)
        due, new = values[len(MULTI) :]
        return cls(**lists, due=_single([due], DUE_CHOICES), new=_single([new], NEW_CHOICES))

    def search(self) -> str:
        """The URL query string that opens the page with these filters ("" for none)."""
        pairs = [(key, v) for key in MULTI for v in getattr(self, key)]
        if self.status == DEFAULT_STATUSES:
            pairs = [(k, v) for k, v in pairs if k != "status"]
        pairs += [(k, v) for k, v in (("due", self.due), ("new", self.new)) if v]
        return "?" + urlencode(pairs) if pairs else ""

    def exported(self, context: PageContext) -> tables.FindingFilters:
        """The same filters for the export (what is shown is what is downloaded)."""
        return tables.FindingFilters(
            statuses=tuple(self.status),
            categories=tuple(self.category),
            severities=tuple(self.severity),
            requirements=tuple(self.requirement),
            assets=tuple(self.asset),
            checks=tuple(self.check),
            timing=self.timing(context),
        )

    def timing(self, context: PageContext) -> Timing:
        today = context.today
        due_by = None if self.due in (None, "overdue") else today + dt.timedelta(int(self.due))
        since = None
        if self.new == "month":
            since = dt.datetime.combine(today.replace(day=1), dt.time(), views.TIMEZONE)
        elif self.new == "30":
            since = context.now - dt.timedelta(days=30)
        return Timing(today, overdue=self.due == "overdue", due_by=due_by, seen_since=since)


def _single(found: Sequence[Any] | None, allowed: Sequence[str]) -> str | None:
    return next((v for v in found or () if v in allowed), None)


def link(slug: str, **filters: str) -> str:
    """The findings page of `slug` filtered as named (`category="tls"`, `check=…`)."""
    return (
        f"/org/{slug}/findings" + Filters.from_query({k: [v] for k, v in filters.items()}).search()
    )


@dataclass(frozen=True)
class Found:
    rows: list[dict[str, Any]]  # the shown findings, worst first
    assets: list[str]  # every asset with findings of the chosen statuses
    checks: list[tuple[str, str]]  # (check id, title) of those findings


def _query(context: PageContext, slug: str, filters: Filters) -> Found | None:
    """The shown rows and the choices for the asset and check filters; None when the
    organisation is not visible."""
    with context.sessions() as session:
        try:
            views.organisation(session, context.viewer.visible, slug)
        except NotVisible:
            return None

        def read(**narrowed: Any) -> list[FindingRow]:
            return views.findings(
                session,
                context.viewer.visible,
                registry=context.registry,
                organisations=[slug],
                statuses=filters.status,
                **narrowed,
            )

        every = read()  # the choices of the asset and check filters
        shown = read(
            categories=filters.category,
            severities=filters.severity,
            requirements=filters.requirement,
            checks=filters.check,
            assets=filters.asset,
            timing=filters.timing(context),
        )
    checks = sorted({(f.check_id, context.title(f.check_id)) for f in every}, key=lambda c: c[1])
    return Found([_row(context, f) for f in shown], sorted({f.asset for f in every}), checks)


def _row(context: PageContext, finding: FindingRow) -> dict[str, Any]:
    _ = context._
    due = finding.due.isoformat() if finding.due else "–"
    if finding.overdue_on(context.today):
        due += " · " + _("Overdue")
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
        "due": due,
        "overdue": finding.overdue_on(context.today),
        "check_id": finding.check_id,
    }


def sorted_rows(rows: list[dict[str, Any]], sort_by: Any) -> list[dict[str, Any]]:
    """The rows in the order the table's headers ask (`sort_by` as DataTable sends it),
    severity by its rank (critical first when ascending), the rest by their text."""
    ordered = list(rows)
    for rule in reversed(sort_by if isinstance(sort_by, list) else []):
        column = rule.get("column_id") if isinstance(rule, dict) else None
        if column not in SORTABLE:
            continue
        key = "severity_rank" if column == "severity" else column
        ordered.sort(key=lambda r: str(r[key]) if key != "severity_rank" else r[key])
        if rule.get("direction") == "desc":
            ordered.reverse()
    return ordered


def _options(_: Any, values: Sequence[str], label: Any) -> list[dict[str, str]]:
    return [{"label": label(_, v), "value": v} for v in values]


def layout(context: PageContext, slug: str) -> Any:
    _ = context._
    filters = Filters.from_query(context.query)
    obligations = _requirement_options(context, slug)
    known = {o["value"] for o in obligations}
    filters = dataclasses.replace(
        filters, requirement=[r for r in filters.requirement if r in known]
    )
    found = _query(context, slug, filters)
    if found is None:
        return not_found(context)
    with context.sessions() as session:
        header = org_header(
            context, views.organisation(session, context.viewer.visible, slug), "findings"
        )
    due_options = [
        {"label": _("Overdue"), "value": "overdue"},
        {"label": _("Due within 7 days"), "value": "7"},
        {"label": _("Due within 30 days"), "value": "30"},
    ]
    new_options = [
        {"label": _("This month"), "value": "month"},
        {"label": _("In the last 30 days"), "value": "30"},
    ]
    return html.Div(
        [
            header,
            dcc.Store(id=ids.FINDINGS_ORG, data=slug),
            dcc.Store(id=ids.FINDINGS_QUERY, data=filters.search()),
            dcc.Store(id=ids.FINDINGS_QUERY_SHOWN),
            html.Div(
                [
                    _filter(
                        _,
                        ids.FILTER_CATEGORY,
                        _("Category"),
                        _options(_, CATEGORIES, category_label),
                        filters.category,
                    ),
                    _filter(
                        _,
                        ids.FILTER_SEVERITY,
                        _("Severity"),
                        _options(_, SEVERITIES, severity_label),
                        filters.severity,
                    ),
                    _filter(
                        _,
                        ids.FILTER_STATUS,
                        _("Status"),
                        _options(_, STATUSES, status_label),
                        filters.status,
                    ),
                    _filter(
                        _,
                        ids.FILTER_ASSET,
                        _("Asset"),
                        [{"label": a, "value": a} for a in found.assets],
                        filters.asset,
                    ),
                    _filter(
                        _, ids.FILTER_REQUIREMENT, _("Obligation"), obligations, filters.requirement
                    ),
                    _filter(
                        _,
                        ids.FILTER_CHECK,
                        _("Finding"),
                        [{"label": title, "value": check} for check, title in found.checks],
                        filters.check,
                    ),
                    _filter(_, ids.FILTER_DUE, _("Due"), due_options, filters.due, multi=False),
                    _filter(
                        _, ids.FILTER_NEW, _("First seen"), new_options, filters.new, multi=False
                    ),
                ],
                className="filters",
            ),
            html.Div(
                [
                    html.Span(_count(context, found.rows), id=ids.FINDINGS_COUNT, role="status"),
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
            table(context, found.rows),
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


def _filter(
    _: Translator,
    component_id: str,
    label: str,
    options: list[Any],
    value: Any,
    *,
    multi: bool = True,
) -> html.Div:
    return html.Div(
        [
            html.Label(label, htmlFor=component_id, id=f"{component_id}-label"),
            dropdown(_, component_id, options=options, value=value, multi=multi),
        ],
        className="filter",
    )


def _count(context: PageContext, rows: list[dict[str, Any]]) -> str:
    return context._("Findings shown: {count}", count=len(rows))


SORTABLE = (
    "severity",
    "title",
    "subject",
    "asset",
    "category",
    "status",
    "due",
    "first_seen",
    "last_seen",
)


def table(context: PageContext, rows: list[dict[str, Any]]) -> Any:
    _ = context._
    names = {
        "severity": _("Severity"),
        "title": _("Finding"),
        "subject": _("Subject"),
        "asset": _("Asset"),
        "category": _("Category"),
        "status": _("Status"),
        "due": _("Due"),
        "first_seen": _("First seen"),
        "last_seen": _("Last seen"),
    }
    return data_table(
        id=ids.FINDINGS_TABLE,
        columns=[
            {
                "id": key,
                "name": names[key],
                **({"presentation": "markdown"} if key == "title" else {}),
            }
            for key in SORTABLE
        ],
        data=rows,
        sort_action="custom",
        sort_mode="single",
        sort_by=[],
        page_size=50,
        cell_selectable=True,
        style_cell_conditional=[{"if": {"column_id": "title"}, "minWidth": "14rem"}],
        style_data_conditional=[
            {"if": {"filter_query": "{severity_rank} < 2"}, "fontWeight": "bold"},
            {"if": {"filter_query": "{overdue} eq true", "column_id": "due"}, "color": "#8e1b1b"},
        ],
    )


def _choices(value: Any) -> list[str]:
    """A dropdown's value from the browser: a list of strings, anything else is none."""
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


FILTER_IDS = (
    ids.FILTER_CATEGORY,
    ids.FILTER_SEVERITY,
    ids.FILTER_STATUS,
    ids.FILTER_ASSET,
    ids.FILTER_REQUIREMENT,
    ids.FILTER_CHECK,
    ids.FILTER_DUE,
    ids.FILTER_NEW,
)


def register(secure: SecureCallbacks, services: Services) -> None:
    filters = [State(ids.FINDINGS_ORG, "data"), *(Input(i, "value") for i in FILTER_IDS)]

    @secure.callback(
        Output(ids.FINDINGS_TABLE, "data"),
        Output(ids.FINDINGS_COUNT, "children"),
        Output(ids.FINDINGS_QUERY, "data"),
        *filters,
        Input(ids.FINDINGS_TABLE, "sort_by"),
        permission=Permission.DETAILS,
        prevent_initial_call=True,
    )
    def refilter(viewer: Viewer, slug: str, *values: Any) -> Any:
        context = services.context(viewer, flask.g.language)
        chosen = Filters.of(*values[:-1])
        found = _query(context, str(slug), chosen)
        if found is None:
            services.refused(viewer, "organisation", slug)
            return [], _count(context, []), ""
        rows = sorted_rows(found.rows, values[-1])
        return rows, _count(context, rows), chosen.search()

    # The address bar follows the filters (no request: the page already has the string).
    secure.browser_only(
        ClientsideFunction("riskiturva", "replaceQuery"),
        Output(ids.FINDINGS_QUERY_SHOWN, "data"),
        Input(ids.FINDINGS_QUERY, "data"),
    )

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
        context = services.context(viewer, flask.g.language)
        filters = Filters.of(*values).exported(context)
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
        dcc.Store(id=ids.FINDINGS_QUERY),
        dcc.Store(id=ids.FINDINGS_QUERY_SHOWN),
        *(dcc.Dropdown(id=i) for i in FILTER_IDS),
        data_table(id=ids.FINDINGS_TABLE),
        html.Span(id=ids.FINDINGS_COUNT),
        html.Button(id=ids.EXPORT),
        html.Button(id=ids.EXPORT_XLSX),
        dcc.Download(id=ids.DOWNLOAD),
    ]


PAGE = Page("findings", r"/org/(?P<slug>[a-z0-9-]+)/findings", Permission.DETAILS, layout)
