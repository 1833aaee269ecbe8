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

from riskiturva.checks import load_registry
from riskiturva.i18n import LOCALES, Translator, translator
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


# msgids of the labels the templates look up by key (all in reports.po).
SEVERITY_LABELS = {
    "critical": "Critical",
    "high": "High",
    "medium": "Medium",
    "low": "Low",
    "info": "Information",
}
CATEGORY_LABELS = {
    "tls": "Encrypted connections (TLS)",
    "email": "E-mail",
    "dns": "Name service (DNS)",
    "services": "Exposed services",
    "web": "Websites",
    "software": "Software up to date",
}
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
COLLECTOR_LABELS = {
    "tls": "TLS",
    "web": "Websites",
    "dns_email": "DNS and e-mail",
    "services": "Exposed services",
}
ERROR_LABELS = {
    "timeout": "no answer in time",
    "refused": "connection refused",
    "reset": "connection reset",
    "unreachable": "unreachable",
    "dns_failure": "name lookup failed",
    "out_of_scope": "outside the authorised scope",
    "protocol": "unexpected answer",
    "internal": "scanner error",
    "cancelled": "scan cancelled",
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
        severity=lambda key: label(SEVERITY_LABELS, key),
        category=lambda key: label(CATEGORY_LABELS, key),
        category_meaning=lambda key: label(CATEGORY_MEANINGS, key),
        collector=lambda key: label(COLLECTOR_LABELS, key),
        collectors=lambda keys: ", ".join(label(COLLECTOR_LABELS, key) for key in keys),
        error_kind=lambda key: label(ERROR_LABELS, key),
        month=lambda m: month_label(m, language),
        date=_.date,
        day=lambda t: _.date(local_day(t)),
        decision=lambda key: label(DECISION_LABELS, key),
        when=lambda t: _.datetime(t.astimezone(dt.UTC)) + " UTC",
        points=lambda score: format_score(round(score * 10), language),
        signed=signed,
        severity_order=[*SEVERITY_LABELS][:4],
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
    sentence = answer(
        report.score, report.actions, registry=registry, language=_.language, checked=report.checked
    )
    return (
        _environment(_)
        .get_template("organisation.html")
        .render(
            report=report,
            name=report.names.get(_.language, report.organisation),
            answer=sentence,
            trend_chart=_trend_chart(report.trend, report.trend_months, _),
        )
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
) -> RenderedReport:
    """One organisation's monthly report, rendered in `language` and `fmt`."""
    registry = load_registry()
    report = organisation_report(session, slug, month, visible=visible, now=now, registry=registry)
    _ = translator(language, DOMAIN)
    name = report.names.get(_.language, slug)
    summary = answer(
        report.score, report.actions, registry=registry, language=_.language, checked=report.checked
    )
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
