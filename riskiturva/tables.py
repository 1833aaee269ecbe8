"""Spreadsheet exports: findings, priorities, exceptions and the portfolio, as CSV or XLSX.

One step reads: `sheet(session, visible, kind, …)` asks the read model once and returns a
typed `Sheet` — columns with their type and a header in the reader's language (the
`exports` catalog), rows of typed values (text, whole numbers, decimals, days, moments,
flags), one column per asset tag where rows are about assets. Two writers consume it:
`csv_bytes` (for Excel: UTF-8 with a BOM, `;` between fields in Finnish and Swedish where
the decimal mark is a comma, `,` in English) and `xlsx_bytes` (typed cells, days as dates,
the header row frozen and filtered). `export(…)` does both steps: the one entry point for
the CLI, the dashboard and the API (organisations + kind + language → bytes).

Every text cell goes through `riskiturva.export.spreadsheet_text`, so a scanned value that
looks like a formula stays text in both formats; XLSX text cells are also typed as strings.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import Cell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from sqlalchemy.orm import Session

from riskiturva import views
from riskiturva.checks import Check
from riskiturva.export import spreadsheet_text
from riskiturva.i18n import Translator, translator
from riskiturva.terms import CATEGORY, SEVERITY, term
from riskiturva.views import TIMEZONE, local_day

DOMAIN = "exports"
POINT = 10  # the scoring counts tenths of a point


class Kind(StrEnum):
    FINDINGS = "findings"
    PRIORITIES = "priorities"
    EXCEPTIONS = "exceptions"
    PORTFOLIO = "portfolio"


class Format(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"


MEDIA_TYPES = {
    Format.CSV: "text/csv; charset=utf-8",
    Format.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


class CellType(StrEnum):
    TEXT = "text"
    INTEGER = "integer"
    DECIMAL = "decimal"  # one decimal: scores and points
    DATE = "date"  # a day (the local day in Finland)
    MOMENT = "moment"  # a day and a time of day, in Finland's time
    FLAG = "flag"  # 1 or 0: filterable and countable in every spreadsheet


Value = str | int | float | dt.date | dt.datetime | None


@dataclass(frozen=True, slots=True)
class Column:
    key: str  # stable, for programs: `tag:<tag>` for a tag column
    header: str  # in the reader's language
    type: CellType = CellType.TEXT


@dataclass(frozen=True, slots=True)
class Sheet:
    kind: Kind
    language: str
    title: str  # the worksheet's name
    columns: tuple[Column, ...]
    rows: tuple[tuple[Value, ...], ...]


@dataclass(frozen=True, slots=True)
class FindingFilters:
    """What the findings page filters by (empty: no filter); the export shows the same."""

    statuses: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    requirements: tuple[str, ...] = ()
    assets: tuple[str, ...] = ()
    checks: tuple[str, ...] = ()
    timing: views.Timing | None = None


@dataclass(frozen=True, slots=True)
class Export:
    content: bytes
    filename: str
    media_type: str
    rows: int


# --- words ----------------------------------------------------------------------------


def _labels(_: Translator) -> dict[str, dict[str, str]]:
    """The reader's words for the values the store keeps as identifiers (severities and
    areas in the words of every other face: `riskiturva.terms`)."""
    return {
        "severity": {key: term(SEVERITY, key, _.language) for key in SEVERITY},
        "status": {
            "open": _("Open"),
            "resolved": _("Resolved"),
            "accepted": _("Accepted risk"),
            "false_positive": _("False positive"),
        },
        "category": {key: term(CATEGORY, key, _.language) for key in CATEGORY},
        "effort": {"low": _("Small"), "medium": _("Moderate"), "high": _("Large")},
    }


def _titles(_: Translator) -> dict[Kind, str]:
    return {
        Kind.FINDINGS: _("Findings"),
        Kind.PRIORITIES: _("Recovery priorities"),
        Kind.EXCEPTIONS: _("Exceptions"),
        Kind.PORTFOLIO: _("Portfolio"),
    }


@dataclass(frozen=True)
class _Words:
    _: Translator
    registry: Mapping[str, Check]
    labels: dict[str, dict[str, str]] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", _labels(self._))

    def label(self, what: str, value: str) -> str:
        return self.labels[what].get(str(value), str(value))

    def title(self, check_id: str) -> str:
        check = self.registry.get(check_id)
        return check.title_in(self._.language) if check else check_id


def _tag_columns(_: Translator, tags: Iterable[str]) -> tuple[Column, ...]:
    return tuple(
        Column(f"tag:{t}", _("Tag: {tag}", tag=t), CellType.FLAG) for t in sorted(set(tags))
    )


def _flags(tags: Collection[str], columns: Sequence[Column]) -> tuple[int, ...]:
    return tuple(int(c.key.removeprefix("tag:") in tags) for c in columns)


def _about(_: Translator) -> tuple[Column, ...]:
    """The columns that say which finding a row is about (findings, exceptions)."""
    return (
        Column("organisation", _("Organisation")),
        Column("severity", _("Severity")),
        Column("title", _("Finding")),
        Column("subject", _("Subject")),
        Column("asset", _("Asset")),
        Column("category", _("Category")),
    )


def _about_cells(
    words: _Words, name: str, row: views.FindingRow | views.ExceptionEntry
) -> tuple[Value, ...]:
    return (
        name,
        words.label("severity", row.severity),
        words.title(row.check_id),
        row.subject,
        row.asset,
        words.label("category", row.category),
    )


def _day(moment: dt.datetime | None) -> dt.date | None:
    return None if moment is None else local_day(moment)


# --- the sheets -----------------------------------------------------------------------


def _findings(
    session: Session,
    visible: Collection[str],
    slugs: Sequence[str],
    words: _Words,
    filters: FindingFilters,
) -> tuple[tuple[Column, ...], list[tuple[Value, ...]]]:
    _ = words._
    found = views.findings(
        session,
        visible,
        registry=words.registry,
        organisations=slugs,
        statuses=filters.statuses,
        categories=filters.categories,
        severities=filters.severities,
        requirements=filters.requirements,
        checks=filters.checks,
        assets=filters.assets,
        timing=filters.timing,
    )
    names = _names(session, visible, slugs, _.language)
    tags = views.asset_tags(session, visible, slugs)
    tagged = _tag_columns(_, (t for f in found for t in tags[f.organisation].get(f.asset, ())))
    columns = (
        *_about(_),
        Column("status", _("Status")),
        Column("first_seen", _("First seen"), CellType.DATE),
        Column("last_seen", _("Last seen"), CellType.DATE),
        Column("resolved", _("Resolved on"), CellType.DATE),
        Column("check_id", _("Check")),
        Column("id", _("Number"), CellType.INTEGER),
        *tagged,
    )
    rows: list[tuple[Value, ...]] = [
        (
            *_about_cells(words, names[f.organisation], f),
            words.label("status", f.status),
            _day(f.first_seen),
            _day(f.last_seen),
            _day(f.resolved_at),
            f.check_id,
            f.id,
            *_flags(tags[f.organisation].get(f.asset, ()), tagged),
        )
        for f in found
    ]
    return columns, rows


def _priorities(
    session: Session,
    visible: Collection[str],
    slugs: Sequence[str],
    words: _Words,
    now: dt.datetime,
) -> tuple[tuple[Column, ...], list[tuple[Value, ...]]]:
    _ = words._
    tags = views.asset_tags(session, visible, slugs)
    plans = []
    for slug in slugs:
        overview = views.overview(session, visible, slug, now=now, registry=words.registry)
        for rank, action in enumerate(overview.actions, start=1):
            action_tags = {t for a in action.assets for t in tags[slug].get(a, ())}
            plans.append((overview.organisation.name(_.language), rank, action, action_tags))
    tagged = _tag_columns(_, (t for plan in plans for t in plan[3]))
    columns = (
        Column("organisation", _("Organisation")),
        Column("rank", _("Order"), CellType.INTEGER),
        Column("action", _("Action")),
        Column("severity", _("Severity")),
        Column("category", _("Category")),
        Column("instances", _("Instances"), CellType.INTEGER),
        Column("gain", _("Gain (points)"), CellType.DECIMAL),
        Column("effort", _("Effort")),
        Column("first_seen", _("First seen"), CellType.DATE),
        Column("due", _("Due"), CellType.DATE),
        Column("overdue", _("Overdue"), CellType.FLAG),
        Column("assets", _("Assets")),
        Column("check_id", _("Check")),
        *tagged,
    )
    rows: list[tuple[Value, ...]] = [
        (
            name,
            rank,
            words.title(a.check_id),
            words.label("severity", a.severity),
            words.label("category", a.category),
            a.instances,
            a.gain / POINT,
            words.label("effort", a.effort),
            a.first_seen,
            a.due,
            int(a.overdue),
            ", ".join(a.assets),
            a.check_id,
            *_flags(found, tagged),
        )
        for name, rank, a, found in plans
    ]
    return columns, rows


def _exceptions(
    session: Session,
    visible: Collection[str],
    slugs: Sequence[str],
    words: _Words,
    now: dt.datetime,
) -> tuple[tuple[Column, ...], list[tuple[Value, ...]]]:
    _ = words._
    names = _names(session, visible, slugs, _.language)
    tags = views.asset_tags(session, visible, slugs)
    entries = [
        (slug, e)
        for slug in slugs
        for e in views.exceptions(session, visible, slug, now=now, registry=words.registry).entries
    ]
    tagged = _tag_columns(_, (t for slug, e in entries for t in tags[slug].get(e.asset, ())))
    columns = (
        *_about(_),
        Column("decision", _("Decision")),
        Column("decided_by", _("Decided by")),
        Column("decided_on", _("Decided on"), CellType.DATE),
        Column("reason", _("Justification")),
        Column("until", _("Valid until"), CellType.DATE),
        Column("days_left", _("Days left"), CellType.INTEGER),
        Column("expiring", _("Ends within 14 days"), CellType.FLAG),
        Column("check_id", _("Check")),
        Column("finding", _("Finding number"), CellType.INTEGER),
        *tagged,
    )
    rows: list[tuple[Value, ...]] = [
        (
            *_about_cells(words, names[slug], e),
            words.label("status", e.decision),
            e.decided_by,
            _day(e.decided_at),
            e.reason,
            _day(e.until),
            e.days_left,
            int(e.expiring),
            e.check_id,
            e.finding_id,
            *_flags(tags[slug].get(e.asset, ()), tagged),
        )
        for slug, e in entries
    ]
    return columns, rows


PORTFOLIO_CATEGORIES = ("tls", "email", "dns", "services", "web", "software")
PORTFOLIO_SEVERITIES = ("critical", "high", "medium", "low")


def _portfolio(
    session: Session,
    visible: Collection[str],
    slugs: Sequence[str],
    words: _Words,
    now: dt.datetime,
) -> tuple[tuple[Column, ...], list[tuple[Value, ...]]]:
    _ = words._
    found = views.portfolio(session, slugs, now=now, registry=words.registry)
    columns = (
        Column("organisation", _("Organisation")),
        Column("grade", _("Grade")),
        Column("score", _("Score"), CellType.DECIMAL),
        Column("change_30d", _("Change in 30 days"), CellType.DECIMAL),
        *(
            Column(
                f"score_{c}",
                _("Score: {category}", category=words.label("category", c)),
                CellType.DECIMAL,
            )
            for c in PORTFOLIO_CATEGORIES
        ),
        *(
            Column(
                f"open_{s}",
                _("Open: {severity}", severity=words.label("severity", s)),
                CellType.INTEGER,
            )
            for s in PORTFOLIO_SEVERITIES
        ),
        Column("overdue", _("Overdue priorities"), CellType.INTEGER),
        Column("exceptions", _("Exceptions in force"), CellType.INTEGER),
        Column("expiring", _("Decisions ending in 14 days"), CellType.INTEGER),
        Column("last_success", _("Last successful scan"), CellType.MOMENT),
    )
    rows: list[tuple[Value, ...]] = []
    for r in found.rows:
        checked = r.checked  # never scanned: no grade or score yet, whatever the findings say
        rows.append(
            (
                r.organisation.name(_.language),
                str(r.grade) if checked else None,
                r.score if checked else None,
                r.change.delta if checked and r.change.baseline else None,
                *(r.categories.get(c) if checked else None for c in PORTFOLIO_CATEGORIES),
                *(r.open_counts.get(s, 0) for s in PORTFOLIO_SEVERITIES),
                r.overdue,
                sum(r.exceptions.values()),
                r.expiring,
                r.last_success,
            )
        )
    return columns, rows


def _names(
    session: Session, visible: Collection[str], slugs: Sequence[str], language: str
) -> dict[str, str]:
    return {o.slug: o.name(language) for o in views.organisations(session, visible, slugs=slugs)}


def sheet(
    session: Session,
    visible: Collection[str],
    kind: Kind | str,
    *,
    language: str,
    now: dt.datetime,
    registry: Mapping[str, Check],
    organisations: Collection[str] | None = None,
    filters: FindingFilters | None = None,
) -> Sheet:
    """The rows of `kind` for the visible organisations (or those of them named; the
    others read as absent), in `language`, at `now`. `filters` narrow the findings."""
    kind = Kind(kind)
    _ = translator(language, DOMAIN)
    words = _Words(_, registry)
    slugs = [o.slug for o in views.organisations(session, visible, slugs=organisations)]
    if kind is Kind.FINDINGS:
        columns, rows = _findings(session, visible, slugs, words, filters or FindingFilters())
    elif kind is Kind.PRIORITIES:
        columns, rows = _priorities(session, visible, slugs, words, now)
    elif kind is Kind.EXCEPTIONS:
        columns, rows = _exceptions(session, visible, slugs, words, now)
    else:
        columns, rows = _portfolio(session, visible, slugs, words, now)
    return Sheet(kind, _.language, _titles(_)[kind], columns, tuple(rows))


# --- the writers ----------------------------------------------------------------------

# Excel reads a CSV with the list separator of the reader's Windows locale: `;` where the
# decimal mark is a comma (Finnish, Swedish), `,` in English.
DELIMITERS = {"fi": ";", "sv": ";", "en": ","}
DECIMAL_MARKS = {"fi": ",", "sv": ",", "en": "."}
# Excel's number formats for the same days and times the CSV writes (riskiturva.i18n). The
# point between hours and minutes is quoted: unquoted, a spreadsheet in a Finnish locale
# reads it as the decimal mark and shows `11,05` (LibreOffice does).
DATE_FORMATS = {"fi": "d.m.yyyy", "sv": "d.m.yyyy", "en": "yyyy-mm-dd"}
MOMENT_FORMATS = {"fi": 'd.m.yyyy h"."mm', "sv": 'd.m.yyyy h"."mm', "en": "yyyy-mm-dd hh:mm"}
NUMBER_FORMATS = {CellType.INTEGER: "0", CellType.FLAG: "0", CellType.DECIMAL: "0.0"}


def _local(moment: dt.datetime) -> dt.datetime:
    """Spreadsheets have no time zones: the moment in Finland's time, without a zone."""
    return moment.astimezone(TIMEZONE).replace(tzinfo=None)


def _csv_text(value: Value, kind: CellType, _: Translator) -> str:
    if value is None:
        return ""
    if kind is CellType.DECIMAL:
        assert isinstance(value, int | float)
        return f"{value:.1f}".replace(".", DECIMAL_MARKS[_.language])
    if kind is CellType.DATE:
        assert isinstance(value, dt.date)
        return _.date(value)
    if kind is CellType.MOMENT:
        assert isinstance(value, dt.datetime)
        return _.datetime(value.astimezone(TIMEZONE))
    if kind is CellType.TEXT:
        return spreadsheet_text(str(value))
    return str(value)


def csv_bytes(table: Sheet) -> bytes:
    """The sheet as a CSV file Excel opens in the reader's locale without an import step."""
    _ = translator(table.language, DOMAIN)
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=DELIMITERS[table.language], lineterminator="\r\n")
    writer.writerow([spreadsheet_text(c.header) for c in table.columns])
    for row in table.rows:
        writer.writerow(_csv_text(v, c.type, _) for v, c in zip(row, table.columns, strict=True))
    return buffer.getvalue().encode("utf-8-sig")


def xlsx_bytes(table: Sheet) -> bytes:
    """The sheet as an XLSX workbook: typed cells (text as text, whatever it looks like),
    days as dates, the header row bold, frozen and with an autofilter."""
    workbook = Workbook(write_only=True)
    worksheet = workbook.create_sheet(title=table.title[:31])
    worksheet.freeze_panes = "A2"
    last = get_column_letter(max(len(table.columns), 1))
    worksheet.auto_filter.ref = f"A1:{last}{len(table.rows) + 1}"
    for index in range(len(table.columns)):
        worksheet.column_dimensions[get_column_letter(index + 1)].width = _width(table, index)
    bold = Font(bold=True)
    worksheet.append([_text_cell(worksheet, c.header, font=bold) for c in table.columns])
    language = table.language
    for row in table.rows:
        worksheet.append(
            [_cell(worksheet, v, c.type, language) for v, c in zip(row, table.columns, strict=True)]
        )
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _text_cell(worksheet: WriteOnlyWorksheet, value: str, font: Font | None = None) -> Cell:
    cell = WriteOnlyCell(worksheet, value=spreadsheet_text(value))
    cell.data_type = "s"  # a string, never a formula, whatever openpyxl would guess
    if font is not None:
        cell.font = font
    return cell


def _cell(worksheet: WriteOnlyWorksheet, value: Value, kind: CellType, language: str) -> Cell:
    if value is None:
        return WriteOnlyCell(worksheet, value=None)
    if kind is CellType.TEXT:
        return _text_cell(worksheet, str(value))
    if kind is CellType.MOMENT:
        assert isinstance(value, dt.datetime)
        cell = WriteOnlyCell(worksheet, value=_local(value))
        cell.number_format = MOMENT_FORMATS[language]
    elif kind is CellType.DATE:
        assert isinstance(value, dt.date)
        cell = WriteOnlyCell(worksheet, value=dt.datetime.combine(value, dt.time()))
        cell.number_format = DATE_FORMATS[language]
    else:
        assert isinstance(value, int | float)
        cell = WriteOnlyCell(worksheet, value=value)
        cell.number_format = NUMBER_FORMATS[kind]
    return cell


def _width(table: Sheet, index: int) -> float:
    """A column wide enough for its header and its usual value (at most 60 characters)."""
    header = len(table.columns[index].header)
    kind = table.columns[index].type
    if kind is not CellType.TEXT:
        return max(header, 12) + 2
    longest = max((len(str(r[index] or "")) for r in table.rows[:200]), default=0)
    return min(max(header, longest, 8), 60) + 2


WRITERS: dict[Format, Callable[[Sheet], bytes]] = {Format.CSV: csv_bytes, Format.XLSX: xlsx_bytes}


def export(
    session: Session,
    visible: Collection[str],
    kind: Kind | str,
    fmt: Format | str,
    *,
    language: str,
    now: dt.datetime,
    registry: Mapping[str, Check],
    organisations: Collection[str] | None = None,
    filters: FindingFilters | None = None,
) -> Export:
    """`sheet` written as `fmt`, with a file name (`findings-jokilaakso-2026-12-02.xlsx`;
    `…-all-…` for several organisations) and its media type."""
    fmt = Format(fmt)
    table = sheet(
        session,
        visible,
        kind,
        language=language,
        now=now,
        registry=registry,
        organisations=organisations,
        filters=filters,
    )
    named = sorted(organisations or ())
    scope = named[0] if len(named) == 1 else "all"
    filename = f"{table.kind}-{scope}-{local_day(now).isoformat()}.{fmt}"
    return Export(WRITERS[fmt](table), filename, MEDIA_TYPES[fmt], len(table.rows))
