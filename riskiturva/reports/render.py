"""Reports as HTML (Jinja2, autoescaped) and PDF (WeasyPrint from the same HTML).

The words come from the `reports` gettext domain and the check registry, in the reader's
language; everything from the outside world (subjects, organisation names) is escaped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from babel.dates import format_date
from jinja2 import Environment, PackageLoader, StrictUndefined
from sqlalchemy.orm import Session

from riskiturva import terms
from riskiturva.checks import Check, load_registry
from riskiturva.config import Config
from riskiturva.i18n import LOCALES, Translator, translator
from riskiturva.owners import Responsible
from riskiturva.period import Month
from riskiturva.reports import charts
from riskiturva.scoring import SCORING_VERSION, answer, format_score
from riskiturva.views.clock import local_day
from riskiturva.views.period import (
    MonthPoint,
    OrganisationReport,
    PortfolioReport,
    organisation_report,
    portfolio_report,
)

DOMAIN = "reports"


class ReportFormat(StrEnum):
    PDF = "pdf"
    HTML = "html"


# msgids of the labels the templates look up by key (all in reports.po; the words shared
# with the dashboard and the alerts are in riskiturva.terms).
CATEGORY_MEANINGS = {
    "tls": "Whether connections to your web and mail servers are encrypted with current "
    "protocols and valid certificates.",
    "email": "Whether others can send forged e-mail in your name, and whether your mail "
    "travels encrypted.",
    "dns": "Whether the name service that points your addresses to your servers is "
    "protected against tampering and leaks.",
    "services": "Whether remote access, databases or other services that should be internal "
    "can be reached from the internet.",
    "web": "Whether your websites use the protections browsers offer: forced HTTPS, "
    "security headers and safe cookies.",
    "software": "Whether the software your services run still gets security updates and is "
    "free of vulnerabilities known to be exploited.",
}
DECISION_LABELS = {"accepted": "Accepted risk", "false_positive": "False positive"}
OWNER_LABELS = {
    "own_it": "Own IT",
    "service_provider": "Service provider",
    "partner": "Partner",
}
OBLIGATION_LABELS = {
    "met": "No gaps found",
    "not_met": "Not met",
    "not_checked": "Not checked",
    "not_applicable": "Does not apply",
}
POSITION_LABELS = {
    "top": "in the best quarter",
    "upper": "above the median",
    "lower": "below the median",
    "bottom": "in the weakest quarter",
}
NO_PEERS_LABELS = {
    "no_partner": "No comparison with others: no shared-service partner is configured for "
    "your organisation.",
    "opted_out": "No comparison with others: your organisation has chosen not to take part.",
    "too_few": "No comparison with others yet: fewer than five organisations of your partner "
    "take part, too few to compare anonymously.",
}


def month_label(month: Month, language: str) -> str:
    """`lokakuu 2026`, `oktober 2026`, `October 2026`."""
    return format_date(month.first_day, "LLLL yyyy", locale=LOCALES[language])


def _short_month(month: Month, language: str) -> str:
    return format_date(month.first_day, "LLL", locale=LOCALES[language]).rstrip(".")


def _environment(_: Translator) -> Environment:
    registry = load_registry()
    language = _.language
    environment = Environment(
        loader=PackageLoader("riskiturva.reports", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )

    def title(check_id: str) -> str:
        check = registry.get(check_id)
        return check.title_in(language) if check else check_id

    def guidance(check_id: str) -> str:
        check = registry.get(check_id)
        return check.guidance_in(language) if check else ""

    def impact(check_id: str) -> str:
        check = registry.get(check_id)
        return check.impact_in(language) if check else ""

    def headline(check_id: str) -> str:
        check = registry.get(check_id)
        return check.headline_in(language) if check else check_id

    def owner(responsible: Responsible) -> str:
        role = label(OWNER_LABELS, str(responsible.role))
        if responsible.name is None:
            return role
        return f"{responsible.name} ({role[:1].lower() + role[1:]})"

    def label(table: Mapping[str, str], key: str) -> str:
        return _(table[key]) if key in table else key

    def signed(delta: float) -> str:
        text = _.number(abs(delta), 1)
        return ("+" if delta > 0 else "−" if delta < 0 else "±") + text

    environment.globals.update(
        _=_,
        lang=language,
        title=title,
        guidance=guidance,
        impact=impact,
        headline=headline,
        owner=owner,
        obligation_status=lambda key: label(OBLIGATION_LABELS, key),
        position=lambda key: label(POSITION_LABELS, key),
        no_peers=lambda key: label(NO_PEERS_LABELS, key),
        severity=lambda key: terms.term(terms.SEVERITY, key, language),
        category=lambda key: terms.term(terms.CATEGORY, key, language),
        category_meaning=lambda key: label(CATEGORY_MEANINGS, key),
        collector=lambda key: terms.term(terms.COLLECTOR, key, language),
        collectors=lambda keys: ", ".join(terms.term(terms.COLLECTOR, k, language) for k in keys),
        error_kind=lambda key: terms.term(terms.ERROR_KIND, key, language),
        month=lambda m: month_label(m, language),
        date=_.date,
        day=lambda t: _.date(local_day(t)),
        decision=lambda key: label(DECISION_LABELS, key),
        when=lambda t: _.datetime(t.astimezone(dt.UTC)) + " UTC",
        points=lambda score: format_score(round(score * 10), language),
        signed=signed,
        severity_order=[*terms.SEVERITY][:4],
        version=SCORING_VERSION,
    )
    return environment


def _trend_chart(
    points: Sequence[MonthPoint | None], months: Sequence[Month], _: Translator
) -> str:
    svg = charts.trend_chart(
        [_short_month(m, _.language) for m in months],
        [p.score if p else None for p in points],
        [p.grade if p else None for p in points],
        score_label=_("Score"),
    )
    return charts.data_uri(svg)


def organisation_html(report: OrganisationReport, language: str) -> str:
    """The organisation's monthly report as a standalone HTML page."""
    _ = translator(language, DOMAIN)
    registry = load_registry()
    name = report.names.get(_.language, report.organisation)
    peers = report.management.peers
    peer_chart = None
    if peers is not None:
        figure = peers.score
        svg = charts.peer_chart(
            figure.own,
            figure.group.lower_quartile,
            figure.group.median,
            figure.group.upper_quartile,
            own_label=name,
            group_label=_("median of {n}", n=peers.count),
        )
        peer_chart = charts.data_uri(svg)
    return (
        _environment(_)
        .get_template("organisation.html")
        .render(
            report=report,
            name=name,
            answer=summary_sentence(report, _.language, registry=registry),
            trend_chart=_trend_chart(report.trend, report.trend_months, _),
            peer_chart=peer_chart,
        )
    )


def summary_sentence(
    report: OrganisationReport, language: str, *, registry: Mapping[str, Check]
) -> str:
    """The report's answer in one sentence, for a manager: the first action by its impact."""
    return answer(
        report.score,
        report.actions,
        registry=registry,
        language=language,
        checked=report.checked,
        plain=True,
    )


def portfolio_html(report: PortfolioReport, language: str, partner_name: str | None = None) -> str:
    """The partner's portfolio report as a standalone HTML page."""
    _ = translator(language, DOMAIN)
    sparklines = {
        row.organisation: charts.data_uri(
            charts.sparkline([p.score if p else None for p in row.trend])
        )
        for row in report.rows
    }
    return (
        _environment(_)
        .get_template("portfolio.html")
        .render(report=report, partner_name=partner_name or report.partner, sparklines=sparklines)
    )


def pdf_from_html(html: str) -> bytes:
    """Lay the HTML out on A4 pages with WeasyPrint (system fonts; fetches nothing).

    Reports embed their charts as `data:` URIs; any other URL (say, in a hostile string
    that escaped nothing but still names an address) is refused by the fetcher.
    """
    from weasyprint import HTML, URLFetcher  # on use: loading Pango takes a moment

    fetcher = URLFetcher(allowed_protocols={"data"}, fail_on_errors=False)
    pdf: bytes = HTML(string=html, base_url=None, url_fetcher=fetcher).write_pdf()
    return pdf


def render(html: str, fmt: ReportFormat | str) -> bytes:
    """The report's bytes in `fmt`."""
    if ReportFormat(fmt) is ReportFormat.PDF:
        return pdf_from_html(html)
    return html.encode("utf-8")


# --- one call from the store to the bytes ------------------------------------------------


@dataclass(frozen=True)
class RenderedReport:
    organisation: str  # or the partner, for a portfolio
    month: Month
    language: str
    format: ReportFormat
    subject: str  # the e-mail subject and document title
    summary: str  # the answer sentence (for an e-mail body)
    content: bytes

    @property
    def filename(self) -> str:
        return f"riskiturva-{self.organisation}-{self.month}-{self.language}.{self.format}"


def render_organisation(
    session: Session,
    slug: str,
    month: Month,
    *,
    visible: Collection[str],
    now: dt.datetime,
    language: str,
    fmt: ReportFormat | str = ReportFormat.PDF,
    config: Config | None = None,
) -> RenderedReport:
    """One organisation's monthly report, rendered in `language` and `fmt`; `config` gives
    its owners, requirement profiles and peer group (`views.management`)."""
    registry = load_registry()
    report = organisation_report(
        session, slug, month, visible=visible, now=now, registry=registry, config=config
    )
    _ = translator(language, DOMAIN)
    name = report.names.get(_.language, slug)
    summary = summary_sentence(report, _.language, registry=registry)
    return RenderedReport(
        organisation=slug,
        month=month,
        language=_.language,
        format=ReportFormat(fmt),
        subject=_("Information security report") + f": {name}, {month_label(month, _.language)}",
        summary=summary,
        content=render(organisation_html(report, _.language), fmt),
    )


def render_portfolio(
    session: Session,
    partner: str,
    month: Month,
    *,
    visible: Collection[str],
    now: dt.datetime,
    language: str,
    fmt: ReportFormat | str = ReportFormat.PDF,
    partner_name: str | None = None,
) -> RenderedReport:
    """A partner's portfolio report (its visible organisations), in `language` and `fmt`."""
    report = portfolio_report(
        session, partner, month, visible=visible, now=now, registry=load_registry()
    )
    _ = translator(language, DOMAIN)
    name = partner_name or partner
    return RenderedReport(
        organisation=partner,
        month=month,
        language=_.language,
        format=ReportFormat(fmt),
        subject=_("Portfolio report") + f": {name}, {month_label(month, _.language)}",
        summary="",
        content=render(portfolio_html(report, _.language, name), fmt),
    )
