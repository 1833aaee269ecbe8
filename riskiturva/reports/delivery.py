"""The monthly job: render every organisation's report, archive it, e-mail it.

The archive is a database row per organisation, month, language and format, and the file
under `<data_dir>/reports/<organisation>/`. Its queries take the caller's visible
organisations, so the dashboard serves downloads under the same rules as every page.
Delivery failures are data: they are kept on the row and returned, never raised, so one
unreachable relay or bad address does not stop the other organisations' reports.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from riskiturva._files import write_private
from riskiturva.config import Config, Settings
from riskiturva.i18n import translator
from riskiturva.mail import DeliveryError, send
from riskiturva.models import Organisation
from riskiturva.period import Month, previous_month
from riskiturva.reports.models import ArchivedReport
from riskiturva.reports.render import DOMAIN, RenderedReport, ReportFormat, render_organisation
from riskiturva.store import NotVisible

MEDIA_TYPES = {ReportFormat.PDF: "application/pdf", ReportFormat.HTML: "text/html; charset=utf-8"}


class ArchiveError(RuntimeError):
    """An archived report's file is missing or does not match its recorded checksum."""


@dataclass(frozen=True)
class ArchivedFile:
    filename: str
    media_type: str
    content: bytes


@dataclass(frozen=True)
class Delivery:
    """What the monthly job did for one organisation."""

    organisation: str
    month: Month
    report_id: int
    recipients: tuple[str, ...]
    sent: bool
    error: str | None = None


def reports_dir(settings: Settings) -> Path:
    return settings.data_dir / "reports"


# --- the archive -----------------------------------------------------------------------


def archive(
    session: Session, rendered: RenderedReport, *, folder: Path, now: dt.datetime
) -> ArchivedReport:
    """Write the file (atomically) and insert or replace its archive row."""
    organisation = session.scalar(
        select(Organisation).where(Organisation.slug == rendered.organisation)
    )
    if organisation is None:
        raise NotVisible(rendered.organisation)
    relative = Path(rendered.organisation) / rendered.filename
    target = folder / relative
    write_private(target, rendered.content)
    row = session.scalar(
        select(ArchivedReport).where(
            ArchivedReport.organisation_id == organisation.id,
            ArchivedReport.month == str(rendered.month),
            ArchivedReport.language == rendered.language,
            ArchivedReport.format == str(rendered.format),
        )
    )
    if row is None:
        row = ArchivedReport(
            organisation_id=organisation.id,
            month=str(rendered.month),
            language=rendered.language,
            format=str(rendered.format),
        )
        session.add(row)
    row.path, row.size = relative.as_posix(), len(rendered.content)
    row.sha256 = hashlib.sha256(rendered.content).hexdigest()
    row.created_at = now
    session.flush()
    return row


def archived_reports(
    session: Session, visible: Collection[str], *, organisation: str | None = None
) -> list[ArchivedReport]:
    """Archived reports of the visible organisations, newest month first."""
    slugs = [s for s in visible if organisation is None or s == organisation]
    return list(
        session.scalars(
            select(ArchivedReport)
            .join(Organisation, ArchivedReport.organisation_id == Organisation.id)
            .where(Organisation.slug.in_(slugs))
            .order_by(ArchivedReport.month.desc(), Organisation.slug, ArchivedReport.language)
        )
    )


def open_archived(
    session: Session, report_id: int, visible: Collection[str], *, folder: Path
) -> ArchivedFile:
    """An archived report's bytes, if its organisation is visible (else `NotVisible`)."""
    row = session.scalar(
        select(ArchivedReport)
        .join(Organisation, ArchivedReport.organisation_id == Organisation.id)
        .where(ArchivedReport.id == report_id, Organisation.slug.in_(list(visible)))
    )
    if row is None:
        raise NotVisible(report_id)
    root = folder.resolve()
    path = (root / row.path).resolve()
    if not path.is_relative_to(root):
        raise ArchiveError(f"report {report_id}: path outside the reports folder")
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise ArchiveError(f"report {report_id}: {exc.strerror}") from exc
    if hashlib.sha256(content).hexdigest() != row.sha256:
        raise ArchiveError(f"report {report_id}: file does not match its checksum")
    return ArchivedFile(path.name, MEDIA_TYPES[ReportFormat(row.format)], content)


# --- e-mail ----------------------------------------------------------------------------


def build_message(
    rendered: RenderedReport, *, sender: str, recipients: Sequence[str], now: dt.datetime
) -> EmailMessage:
    _ = translator(rendered.language, DOMAIN)
    message = EmailMessage()
    message["Subject"] = rendered.subject
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "riskiturva")
    message.set_content(
        "\n\n".join(
            [
                rendered.summary,
                _("The monthly information security report is attached."),
                _("This message was sent automatically by Riskiturva."),
            ]
        )
        + "\n"
    )
    maintype, subtype = MEDIA_TYPES[rendered.format].split(";")[0].split("/")
    message.add_attachment(
        rendered.content, maintype=maintype, subtype=subtype, filename=rendered.filename
    )
    return message


# --- the monthly job -------------------------------------------------------------------


def deliver_monthly(
    sessions: sessionmaker[Session],
    config: Config,
    month: Month | str | None = None,
    now: dt.datetime | None = None,
) -> list[Delivery]:
    """Render, archive and e-mail every configured organisation's report for `month`.

    `month` defaults to the one before `now`'s (the job runs on the 1st). Running it again
    re-renders and re-archives, but a report already e-mailed is not sent twice.
    """
    now = now or dt.datetime.now(dt.UTC)
    month = Month.parse(month) if isinstance(month, str) else month or previous_month(now)
    settings = config.settings
    language = settings.reports.language
    folder = reports_dir(settings)
    configured = {o.slug: o for o in config.organisations}
    deliveries = []
    with sessions() as session:
        present = set(session.scalars(select(Organisation.slug)))
    for slug in sorted(configured.keys() & present):
        recipients = tuple(configured[slug].report_recipients)
        with sessions.begin() as session:
            rendered = render_organisation(
                session, slug, month, visible=[slug], now=now, language=language
            )
            row = archive(session, rendered, folder=folder, now=now)
            report_id, already_sent = row.id, row.sent_at is not None
        if already_sent or not recipients:
            deliveries.append(Delivery(slug, month, report_id, recipients, already_sent))
            continue
        message = build_message(
            rendered, sender=settings.reports.smtp.from_address, recipients=recipients, now=now
        )
        error = None
        try:
            send(message, settings)
        except DeliveryError as exc:
            error = str(exc)
        with sessions.begin() as session:
            row = session.get_one(ArchivedReport, report_id)
            row.recipients = list(recipients)
            row.delivery_error = error
            if error is None:
                row.sent_at = now
        deliveries.append(Delivery(slug, month, report_id, recipients, error is None, error))
    return deliveries
